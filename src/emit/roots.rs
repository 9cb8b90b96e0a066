//! Build roots of the hermetic platform: `roots/<name>.toml` names a Debian suite and
//! the packages its builders need; `rdma-nix root refresh` resolves their closure from
//! the suite's package index and writes the pins to `pkgs/generated/roots/<name>.nix`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::nix_expr::Value;
use super::GeneratedFile;
use super::GENERATED_DIR;
use crate::debian::index::{parse_relations, Index, Rel};
use crate::debian::resolve::{resolve, Closure, ResolveError};
use crate::manifest::DebianPackage;
use crate::nix::{HashAlgo, NixHash};

/// Where root definitions live, relative to the repository root.
pub const ROOTS_DIR: &str = "roots";

#[derive(Debug, Error)]
pub enum RootError {
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("{file}: {source}")]
    Resolve {
        file: PathBuf,
        #[source]
        source: ResolveError,
    },
}

/// `roots/<name>.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RootSpec {
    /// The Debian suite whose package index the closure is resolved from.
    pub suite: String,
    /// Add every Essential package (what a Debian userland assumes).
    #[serde(default = "yes")]
    pub essential: bool,
    /// Packages the builders need (one relation each: `gcc-12` or `gcc-12 (>= 12.2)`).
    pub packages: Vec<String>,
}

fn yes() -> bool {
    true
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl RootSpec {
    pub fn path(repo: &Path, name: &str) -> PathBuf {
        repo.join(ROOTS_DIR).join(format!("{name}.toml"))
    }

    pub fn load(repo: &Path, name: &str) -> Result<RootSpec, RootError> {
        let file = Self::path(repo, name);
        let bad = |message: String| RootError::Invalid {
            file: file.clone(),
            message,
        };
        if !valid_name(name) {
            return Err(bad(format!(
                "root name {name:?}: lowercase letters, digits and -"
            )));
        }
        let text = fs::read_to_string(&file).map_err(|e| bad(format!("cannot read: {e}")))?;
        let spec: RootSpec =
            toml::from_str(&text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
        spec.roots().map_err(bad)?;
        Ok(spec)
    }

    /// The packages as relations.
    pub fn roots(&self) -> Result<Vec<Rel>, String> {
        if self.packages.is_empty() {
            return Err("no packages".into());
        }
        self.packages
            .iter()
            .map(|p| match parse_relations(p) {
                Ok(mut r) if r.len() == 1 && r[0].len() == 1 => Ok(r.remove(0).remove(0)),
                Ok(_) => Err(format!("package {p:?}: one package per entry")),
                Err(e) => Err(format!("package {e}")),
            })
            .collect()
    }

    /// The file's text: a fixed comment, then the fields (sorted, deduplicated packages).
    pub fn render(&self, name: &str) -> String {
        let mut spec = self.clone();
        spec.packages.sort();
        spec.packages.dedup();
        format!(
            "# The build root `{name}`: these packages of Debian {suite} and the closure\n\
             # `rdma-nix root refresh {name}` resolves from the suite's package index (pins in\n\
             # {GENERATED_DIR}/roots/{name}.nix). `rdma-nix root add {name} PKG...` adds packages.\n{}",
            toml::to_string(&spec).expect("serialisable"),
            suite = spec.suite,
        )
    }
}

/// Resolve a root's closure in `index`.
pub fn resolve_root(
    repo: &Path,
    name: &str,
    spec: &RootSpec,
    index: &Index,
) -> Result<Closure, RootError> {
    let roots = spec.roots().map_err(|message| RootError::Invalid {
        file: RootSpec::path(repo, name),
        message,
    })?;
    resolve(index, &roots, spec.essential).map_err(|source| RootError::Resolve {
        file: RootSpec::path(repo, name),
        source,
    })
}

/// `pkgs/generated/roots/<name>.nix`: the pins, by package name.
pub fn root_file(name: &str, spec: &RootSpec, closure: &Closure) -> GeneratedFile {
    let size: u64 = closure.packages.iter().map(|p| p.size).sum();
    let body = Value::attrs([
        ("suite", Value::str(&spec.suite)),
        ("downloadSize", Value::Int(size as i64)),
        (
            "packages",
            Value::attrs(closure.packages.iter().map(|p| {
                let hash = NixHash::parse(&p.sha256, Some(HashAlgo::Sha256))
                    .expect("the index checked 64 hex digits");
                (
                    p.name.clone(),
                    Value::attrs([
                        ("version", Value::str(&p.version)),
                        ("url", Value::str(format!("mirror://debian/{}", p.path))),
                        ("hash", Value::str(hash.to_sri())),
                    ]),
                )
            })),
        ),
        (
            "choices",
            Value::List(
                closure
                    .choices
                    .iter()
                    .map(|c| {
                        Value::str(format!(
                            "{} needs {}: {} (of {})",
                            c.needed_by,
                            c.relation,
                            c.chosen,
                            c.candidates.join(", ")
                        ))
                    })
                    .collect(),
            ),
        ),
    ]);
    GeneratedFile::nix_by(
        format!("{GENERATED_DIR}/roots/{name}.nix"),
        &format!("rdma-nix root refresh {name}"),
        &format!(
            "{ROOTS_DIR}/{name}.toml and Debian {}'s package index",
            spec.suite
        ),
        &body.render(),
    )
}

/// A root's pins as `pkgs/generated/roots/<name>.nix` states them.
#[derive(Debug, Deserialize)]
struct PinnedRoot {
    packages: std::collections::BTreeMap<String, PinnedPackage>,
}

#[derive(Debug, Deserialize)]
struct PinnedPackage {
    version: String,
    url: String,
    hash: String,
}

/// The names of the roots in `roots/`, sorted.
pub fn root_names(repo: &Path) -> Result<Vec<String>, RootError> {
    let dir = repo.join(ROOTS_DIR);
    let bad = |message: String| RootError::Invalid {
        file: dir.clone(),
        message,
    };
    let mut names = Vec::new();
    for e in fs::read_dir(&dir).map_err(|e| bad(format!("cannot read: {e}")))? {
        let e = e.map_err(|e| bad(e.to_string()))?;
        let file = e.file_name().to_string_lossy().into_owned();
        if let Some(name) = file.strip_suffix(".toml") {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The packages a root pins, read from its generated file by the real `nix`
/// (`nix-instantiate --eval`), as pool packages `rdma-nix fetch` can fetch.
pub fn pinned_packages(repo: &Path, name: &str) -> Result<Vec<DebianPackage>, RootError> {
    let file = repo
        .join(GENERATED_DIR)
        .join("roots")
        .join(format!("{name}.nix"));
    let bad = |message: String| RootError::Invalid {
        file: file.clone(),
        message,
    };
    if !file.is_file() {
        return Err(bad(format!("no pins: run `rdma-nix root refresh {name}`")));
    }
    let out = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(&file)
        .output()
        .map_err(|e| bad(format!("cannot run nix-instantiate: {e}")))?;
    if !out.status.success() {
        return Err(bad(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let root: PinnedRoot =
        serde_json::from_slice(&out.stdout).map_err(|e| bad(format!("unexpected shape: {e}")))?;
    root.packages
        .into_iter()
        .map(|(pname, p)| {
            let path = p
                .url
                .strip_prefix("mirror://debian/")
                .ok_or_else(|| bad(format!("{pname}: url {} is not mirror://debian/", p.url)))?;
            let hash = NixHash::parse(&p.hash, Some(HashAlgo::Sha256))
                .map_err(|e| bad(format!("{pname}: {e}")))?;
            Ok(DebianPackage {
                name: pname,
                version: p.version,
                path: path.to_string(),
                sha256: hash.to_base16(),
                tree: None,
                upstream: Vec::new(),
            })
        })
        .collect()
}
