//! The lock's pins as one type: every input the stack builds from, by kind (as npins
//! has one `Pin` enum), each with the store path it has once fetched and the way to
//! fetch it. `rdma-nix fetch` fetches every pin, `rdma-nix update` the ones its new
//! lock adds, and `generate` reads the packages, trees and sources from the store.

use std::path::Path;

use serde::Serialize;

use crate::fetch::{self, FetchError, Fetched};
use crate::manifest::{Bootstrap, DebianPackage, KernelSource, Manifest};
use crate::nix::store_path::StorePath;

/// What kind of input a pin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinKind {
    /// A Debian package or source tarball, by pool path and sha256.
    Package,
    /// A source tarball's tree, unpacked (its package's `tree` hash).
    Tree,
    /// Subtrees of a `linux-source` package, extracted (NAR hash).
    KernelSource,
    /// The bootstrap executable, taken out of its package (NAR hash).
    Bootstrap,
}

/// One pin of the lock.
#[derive(Debug, Clone, Copy)]
pub enum Pin<'a> {
    Package(&'a DebianPackage),
    Tree(&'a DebianPackage),
    KernelSource(&'a KernelSource, &'a DebianPackage),
    Bootstrap(&'a Bootstrap, &'a DebianPackage),
}

impl<'a> Pin<'a> {
    pub fn kind(&self) -> PinKind {
        match self {
            Pin::Package(_) => PinKind::Package,
            Pin::Tree(_) => PinKind::Tree,
            Pin::KernelSource(..) => PinKind::KernelSource,
            Pin::Bootstrap(..) => PinKind::Bootstrap,
        }
    }

    /// The pin's name in the lock.
    pub fn name(&self) -> &'a str {
        match self {
            Pin::Package(p) | Pin::Tree(p) => &p.name,
            Pin::KernelSource(ks, _) => &ks.name,
            Pin::Bootstrap(b, _) => &b.name,
        }
    }

    /// Its name in `fetch --json` (a tree as `<package> tree`).
    pub fn record_name(&self) -> String {
        match self {
            Pin::Tree(p) => format!("{} tree", p.name),
            _ => self.name().to_string(),
        }
    }

    /// The Debian package it is, or comes out of.
    pub fn package(&self) -> &'a DebianPackage {
        match self {
            Pin::Package(p) | Pin::Tree(p) => p,
            Pin::KernelSource(_, p) | Pin::Bootstrap(_, p) => p,
        }
    }

    /// Where it is in the store once fetched.
    pub fn store_path(&self) -> StorePath {
        match self {
            Pin::Package(p) => fetch::expected_store_path(p),
            Pin::Tree(p) => fetch::tree_store_path(p).expect("a tree pin has a tree hash"),
            Pin::KernelSource(ks, _) => fetch::kernel_source_store_path(ks),
            Pin::Bootstrap(b, _) => fetch::bootstrap_store_path(b),
        }
    }

    /// Makes it valid in the store (a pin made from a package needs the package
    /// fetched first: [`Manifest::pins`] lists packages first).
    pub fn fetch(&self, from: Option<&Path>) -> Result<Fetched, FetchError> {
        match self {
            Pin::Package(p) => fetch::fetch_package(p, from),
            Pin::Tree(p) => Ok(fetch::fetch_tree(p)?.expect("a tree pin has a tree hash")),
            Pin::KernelSource(ks, p) => fetch::fetch_kernel_source(ks, p),
            Pin::Bootstrap(b, p) => fetch::fetch_bootstrap(b, p),
        }
    }
}

impl Manifest {
    /// Every pin of the lock, packages first (the other kinds are made from them).
    pub fn pins(&self) -> Vec<Pin<'_>> {
        let package = |name: &str| self.package(name).expect("validated with the manifest");
        let packages = &self.debian.packages;
        let mut pins: Vec<Pin> = packages.iter().map(Pin::Package).collect();
        pins.extend(packages.iter().filter(|p| p.tree.is_some()).map(Pin::Tree));
        pins.extend(
            self.kernel_sources
                .iter()
                .map(|ks| Pin::KernelSource(ks, package(&ks.package))),
        );
        pins.extend(
            self.bootstrap
                .iter()
                .map(|b| Pin::Bootstrap(b, package(&b.package))),
        );
        pins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repositorys_lock_lists_every_pin_once_packages_first() {
        let m = Manifest::load(Some(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(crate::manifest::INTENT_FILE),
        ))
        .unwrap();
        let pins = m.pins();
        let first_other = pins.iter().position(|p| p.kind() != PinKind::Package);
        assert_eq!(first_other, Some(m.debian.packages.len()));
        assert!(pins[m.debian.packages.len()..]
            .iter()
            .all(|p| p.kind() != PinKind::Package));
        let count = |k: PinKind| pins.iter().filter(|p| p.kind() == k).count();
        assert_eq!(count(PinKind::KernelSource), m.kernel_sources.len());
        assert_eq!(count(PinKind::Bootstrap), 1);
        assert!(count(PinKind::Tree) >= 1);
        let mut paths: Vec<String> = pins.iter().map(|p| p.store_path().to_string()).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), pins.len(), "two pins share a store path");
    }
}
