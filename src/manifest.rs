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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub name: String,
    pub image: String,
    pub headers: String,
    pub headers_common: String,
    pub kbuild: String,
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

fn is_pool_path(s: &str) -> bool {
    s.starts_with("pool/")
        && s.ends_with(".deb")
        && !s
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+-._~%".contains(c))
}

impl DebianPackage {
    /// The pinned hash.
    pub fn hash(&self) -> NixHash {
        NixHash::parse(&self.sha256, Some(HashAlgo::Sha256)).expect("validated at load")
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
                    "package {}: path {:?} is not a pool/…/.deb path",
                    p.name, p.path
                )));
            }
            NixHash::parse(&p.sha256, Some(HashAlgo::Sha256))
                .map_err(|e| bad(format!("package {}: {e}", p.name)))?;
            store_path::validate_name(&p.store_name())
                .map_err(|e| bad(format!("package {}: {e}", p.name)))?;
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
            for (role, pkg) in [
                ("image", &k.image),
                ("headers", &k.headers),
                ("headers_common", &k.headers_common),
                ("kbuild", &k.kbuild),
            ] {
                if !names.contains(pkg.as_str()) {
                    return Err(bad(format!(
                        "kernel {}: {role} package {pkg:?} is not pinned in [[debian.package]]",
                        k.name
                    )));
                }
            }
        }
        Ok(m)
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
