//! `stack.toml`: what the stack is made of. The default is embedded in the binary.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::nix::store_path;
use crate::nix::{HashAlgo, NixHash};

/// The stack.toml shipped in the repository, compiled in.
pub const DEFAULT: &str = include_str!("../stack.toml");

#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub debian: Debian,
    #[serde(default, rename = "kernel")]
    pub kernels: Vec<Kernel>,
    #[serde(default, rename = "rdma_core")]
    pub rdma_core: Vec<RdmaCoreRelease>,
    #[serde(default, rename = "kernel_source")]
    pub kernel_sources: Vec<KernelSource>,
    #[serde(default, rename = "kabi_record")]
    pub kabi_records: Vec<KabiRecord>,
    pub bootstrap: Option<Bootstrap>,
}

/// The one file every hermetic build starts from (the builder of the roots and of
/// every derivation that enters one): a static executable taken out of a pinned
/// package by `rdma-nix fetch` (in Rust) and added to the store, at its path in the
/// package, as a fixed-output path pinned by its NAR hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    /// Store path name (`busybox`).
    pub name: String,
    /// The pinned `[[debian.package]]` holding it.
    pub package: String,
    /// Its path inside the package (`bin/busybox`).
    pub file: String,
    /// SRI sha256 of the NAR serialisation of a tree holding just that file, at its
    /// path in the package.
    pub hash: String,
}

impl Bootstrap {
    pub fn nar_hash(&self) -> NixHash {
        NixHash::parse(&self.hash, Some(HashAlgo::Sha256)).expect("validated at load")
    }
}

/// A module built for one kernel of the matrix, recorded with `rdma-nix kabi --record`:
/// the generator reuses that build on every kernel where it loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KabiRecord {
    /// The driver (its directory's name: `siw`, `rxe`, `rtrs`, …); a driver of
    /// several modules has a record for each.
    pub driver: String,
    /// The matrix kernel it was built for.
    pub kernel: String,
    /// The record, relative to the repository root.
    pub file: String,
}

/// Subtrees of a kernel source package, extracted by `rdma-nix fetch` (in Rust) and
/// added to the store as a fixed-output path pinned by its NAR hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSource {
    /// Store path name (`linux-6.1.192-rdma`).
    pub name: String,
    /// The pinned `linux-source-*` package it comes from.
    pub package: String,
    /// Paths below the tarball's top directory.
    pub subdirs: Vec<String>,
    /// SRI sha256 of the extracted tree's NAR serialisation.
    pub hash: String,
}

impl KernelSource {
    pub fn nar_hash(&self) -> NixHash {
        NixHash::parse(&self.hash, Some(HashAlgo::Sha256)).expect("validated at load")
    }
}

/// An rdma-core release the generator scans and emits Nix for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdmaCoreRelease {
    /// The release (`65.0`); checked against the tarball's PACKAGE_VERSION.
    pub version: String,
    /// The pinned `[[debian.package]]` holding its source tarball.
    pub source: String,
    /// The release the package set builds by default (exactly one).
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debian {
    pub arch: String,
    #[serde(default, rename = "package")]
    pub packages: Vec<DebianPackage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianPackage {
    pub name: String,
    pub version: String,
    /// Path below the archive root (`pool/main/...`).
    pub path: String,
    /// sha256 of the file, base16.
    pub sha256: String,
    /// For a source tarball: the NAR hash (SRI sha256) of the tree it unpacks to, top
    /// directory stripped. That tree is what packages build from (`fetchzip`), so any
    /// tarball of the same tree matches the pin, whatever its bytes.
    #[serde(default)]
    pub tree: Option<String>,
    /// URLs of other tarballs of the same tree, listed before Debian's pool in the
    /// generated `urls` (upstream first, for nixpkgs users).
    #[serde(default)]
    pub upstream: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub name: String,
    /// The build root (roots/NAME.toml) of the kernel's Debian suite: its modules are
    /// built there, with that suite's compiler.
    pub root: String,
    pub image: String,
    /// More packages of the image, for kernels Debian splits (`linux-base-*`,
    /// `linux-binary-*`, `linux-modules-*`): unpacked with it.
    #[serde(default)]
    pub image_parts: Vec<String>,
    pub headers: String,
    pub headers_common: String,
    pub kbuild: String,
    /// The `[[kernel_source]]` its out-of-tree modules are built from.
    pub module_source: String,
    /// The soft-RDMA drivers (`rxe`, `siw`) the kernel ships as modules; the others
    /// are built by rdma-nix. Checked against the image's config by the tests.
    pub rdma_in_tree: Vec<String>,
}

fn is_debian_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn is_debian_version(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-~:".contains(c))
}

/// Binary packages (`.deb`) and source tarballs (`.orig.tar.gz`, `.orig.tar.xz`).
fn is_pool_path(s: &str) -> bool {
    s.starts_with("pool/")
        && [".deb", ".tar.gz", ".tar.xz"]
            .iter()
            .any(|x| s.ends_with(x))
        && !s
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+-._~%".contains(c))
}

impl DebianPackage {
    /// A binary package (`.deb`), not a source tarball.
    pub fn is_deb(&self) -> bool {
        self.path.ends_with(".deb")
    }

    /// The pinned hash.
    pub fn hash(&self) -> NixHash {
        NixHash::parse(&self.sha256, Some(HashAlgo::Sha256)).expect("validated at load")
    }

    /// The pinned tree, for a source tarball pinned with `tree`.
    pub fn tree_hash(&self) -> Option<NixHash> {
        self.tree
            .as_deref()
            .map(|t| NixHash::parse(t, Some(HashAlgo::Sha256)).expect("validated at load"))
    }

    /// Where the tree can be fetched: `upstream` first, then Debian's pool.
    pub fn tree_urls(&self) -> Vec<String> {
        let mut urls = self.upstream.clone();
        urls.push(format!("mirror://debian/{}", self.path));
        urls
    }

    /// The file name in the pool (`busybox-static_1.35.0-4+deb12u1+b1_amd64.deb`).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The store path name: the pool file name with characters a store path can't
    /// hold (the `%` of an epoch, `~`) replaced by `_`.
    pub fn store_name(&self) -> String {
        self.file_name()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+-._?=".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

impl Manifest {
    pub fn load(path: Option<&Path>) -> Result<Self, ManifestError> {
        match path {
            None => Self::parse(DEFAULT, "stack.toml (embedded default)"),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ManifestError::Invalid {
                    file: p.display().to_string(),
                    message: format!("cannot read: {e}"),
                })?;
                Self::parse(&text, &p.display().to_string())
            }
        }
    }

    pub fn parse(text: &str, file: &str) -> Result<Self, ManifestError> {
        let bad = |message: String| ManifestError::Invalid {
            file: file.to_string(),
            message,
        };
        let m: Manifest =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
        if !matches!(m.debian.arch.as_str(), "amd64") {
            return Err(bad(format!(
                "debian.arch {:?}: only amd64 is supported",
                m.debian.arch
            )));
        }
        let mut names = BTreeSet::new();
        for p in &m.debian.packages {
            if !is_debian_name(&p.name) {
                return Err(bad(format!(
                    "package name {:?} is not a Debian package name",
                    p.name
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!("package {:?} is listed twice", p.name)));
            }
            if !is_debian_version(&p.version) {
                return Err(bad(format!(
                    "package {}: version {:?} is not a Debian version",
                    p.name, p.version
                )));
            }
            if !is_pool_path(&p.path) {
                return Err(bad(format!(
                    "package {}: path {:?} is not a pool/… path to a .deb or a source tarball",
                    p.name, p.path
                )));
            }
            NixHash::parse(&p.sha256, Some(HashAlgo::Sha256))
                .map_err(|e| bad(format!("package {}: {e}", p.name)))?;
            store_path::validate_name(&p.store_name())
                .map_err(|e| bad(format!("package {}: {e}", p.name)))?;
            if let Some(t) = &p.tree {
                if p.is_deb() {
                    return Err(bad(format!(
                        "package {}: `tree` pins a source tarball's tree, not a .deb",
                        p.name
                    )));
                }
                NixHash::parse(t, Some(HashAlgo::Sha256))
                    .map_err(|e| bad(format!("package {}: tree: {e}", p.name)))?;
            } else if !p.upstream.is_empty() {
                return Err(bad(format!(
                    "package {}: `upstream` URLs need a `tree` pin (a tarball's bytes differ between hosts)",
                    p.name
                )));
            }
            for u in &p.upstream {
                if !(u.starts_with("https://") || u.starts_with("http://"))
                    || u.chars()
                        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
                {
                    return Err(bad(format!(
                        "package {}: upstream {u:?} is not an http(s) URL",
                        p.name
                    )));
                }
            }
        }
        let mut kernels = BTreeSet::new();
        for k in &m.kernels {
            if !k
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                || k.name.is_empty()
            {
                return Err(bad(format!(
                    "kernel name {:?} may only hold letters, digits, - . _",
                    k.name
                )));
            }
            if !kernels.insert(k.name.as_str()) {
                return Err(bad(format!("kernel {:?} is listed twice", k.name)));
            }
            if !k
                .root
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                || k.root.is_empty()
            {
                return Err(bad(format!(
                    "kernel {}: root {:?} is not a root name (roots/NAME.toml)",
                    k.name, k.root
                )));
            }
            let roles = [
                ("image", &k.image),
                ("headers", &k.headers),
                ("headers_common", &k.headers_common),
                ("kbuild", &k.kbuild),
            ];
            let parts = k.image_parts.iter().map(|p| ("image_parts", p));
            for (role, pkg) in roles.into_iter().chain(parts) {
                if !names.contains(pkg.as_str()) {
                    return Err(bad(format!(
                        "kernel {}: {role} package {pkg:?} is not pinned in [[debian.package]]",
                        k.name
                    )));
                }
            }
        }
        let mut sources = BTreeSet::new();
        for ks in &m.kernel_sources {
            store_path::validate_name(&ks.name)
                .map_err(|e| bad(format!("kernel_source {}: {e}", ks.name)))?;
            if !sources.insert(ks.name.as_str()) {
                return Err(bad(format!("kernel_source {:?} is listed twice", ks.name)));
            }
            if !names.contains(ks.package.as_str()) {
                return Err(bad(format!(
                    "kernel_source {}: package {:?} is not pinned in [[debian.package]]",
                    ks.name, ks.package
                )));
            }
            for d in &ks.subdirs {
                let ok = !d.is_empty()
                    && d.split('/')
                        .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
                    && d.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c));
                if !ok {
                    return Err(bad(format!(
                        "kernel_source {}: subdir {d:?} is not a plain relative path",
                        ks.name
                    )));
                }
            }
            NixHash::parse(&ks.hash, Some(HashAlgo::Sha256))
                .map_err(|e| bad(format!("kernel_source {}: {e}", ks.name)))?;
        }
        for k in &m.kernels {
            if !sources.contains(k.module_source.as_str()) {
                return Err(bad(format!(
                    "kernel {}: module_source {:?} is not a [[kernel_source]]",
                    k.name, k.module_source
                )));
            }
            if let Some(d) = k
                .rdma_in_tree
                .iter()
                .find(|d| !matches!(d.as_str(), "siw" | "rxe"))
            {
                return Err(bad(format!(
                    "kernel {}: rdma_in_tree: {d:?} is not siw or rxe",
                    k.name
                )));
            }
        }
        if let Some(b) = &m.bootstrap {
            store_path::validate_name(&b.name).map_err(|e| bad(format!("bootstrap: {e}")))?;
            if !names.contains(b.package.as_str()) {
                return Err(bad(format!(
                    "bootstrap: package {:?} is not pinned in [[debian.package]]",
                    b.package
                )));
            }
            if crate::archive::deb::safe_relative(Path::new(&b.file))
                .is_none_or(|p| p.as_os_str().is_empty())
            {
                return Err(bad(format!(
                    "bootstrap: file {:?} is not a plain relative path",
                    b.file
                )));
            }
            NixHash::parse(&b.hash, Some(HashAlgo::Sha256))
                .map_err(|e| bad(format!("bootstrap: {e}")))?;
        }
        for r in &m.kabi_records {
            let plain = !r.driver.is_empty()
                && r.driver
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !plain {
                return Err(bad(format!(
                    "kabi_record: driver {:?} is not a driver's name (its directory: siw, rxe, rtrs, …)",
                    r.driver
                )));
            }
            if !kernels.contains(r.kernel.as_str()) {
                return Err(bad(format!(
                    "kabi_record: kernel {:?} is not a [[kernel]]",
                    r.kernel
                )));
            }
            let ok = r.file.starts_with("pkgs/kabi/")
                && r.file.ends_with(".json")
                && !r.file.contains("..");
            if !ok {
                return Err(bad(format!(
                    "kabi_record: file {:?} must be pkgs/kabi/*.json",
                    r.file
                )));
            }
        }
        let mut versions = BTreeSet::new();
        for r in &m.rdma_core {
            if r.version.is_empty() || !r.version.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(bad(format!("rdma_core version {:?} is not N.N", r.version)));
            }
            if !versions.insert(r.version.as_str()) {
                return Err(bad(format!("rdma_core {} is listed twice", r.version)));
            }
            match m.debian.packages.iter().find(|p| p.name == r.source) {
                Some(p) if !p.is_deb() => {}
                Some(_) => {
                    return Err(bad(format!(
                        "rdma_core {}: source {:?} is a .deb, not a source tarball",
                        r.version, r.source
                    )))
                }
                None => {
                    return Err(bad(format!(
                        "rdma_core {}: source {:?} is not pinned in [[debian.package]]",
                        r.version, r.source
                    )))
                }
            }
        }
        let defaults = m.rdma_core.iter().filter(|r| r.default).count();
        if !m.rdma_core.is_empty() && defaults != 1 {
            return Err(bad(format!(
                "exactly one [[rdma_core]] must be `default = true`, found {defaults}"
            )));
        }
        Ok(m)
    }

    /// The default rdma-core release.
    pub fn default_rdma_core(&self) -> Option<&RdmaCoreRelease> {
        self.rdma_core.iter().find(|r| r.default)
    }

    pub fn kernel_source(&self, name: &str) -> Option<&KernelSource> {
        self.kernel_sources.iter().find(|k| k.name == name)
    }

    pub fn package(&self, name: &str) -> Option<&DebianPackage> {
        self.debian.packages.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_manifest_is_valid() {
        let m = Manifest::load(None).unwrap();
        assert!(m.package("busybox-static").is_some());
        assert_eq!(
            m.package("busybox-static").unwrap().store_name(),
            "busybox-static_1.35.0-4+deb12u1+b1_amd64.deb"
        );
        assert!(!m.kernels.is_empty());
    }

    #[test]
    fn rejects_bad_manifests() {
        let base = DEFAULT;
        for (needle, replacement, msg) in [
            (
                "name = \"busybox-static\"",
                "name = \"Busy${box}\"",
                "not a Debian package name",
            ),
            (
                "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744",
                "abc",
                "3 characters",
            ),
            ("pool/main/b/busybox/", "pool/../../etc/", "not a pool"),
            (
                "kbuild = \"linux-kbuild-6.1\"",
                "kbuild = \"linux-kbuild-9\"",
                "not pinned",
            ),
            (
                "arch = \"amd64\"",
                "arch = \"amd64\"\nsurprise = 1",
                "unknown field",
            ),
        ] {
            let text = base.replacen(needle, replacement, 1);
            let e = Manifest::parse(&text, "x.toml").unwrap_err().to_string();
            assert!(e.starts_with("x.toml: ") && e.contains(msg), "{e}");
        }
    }
}
