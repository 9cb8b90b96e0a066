//! The files generated for each pinned rdma-core release: the source pin (the NAR
//! hash of the unpacked tree scanned, with upstream's URLs before Debian's) and what
//! the scan found, as Nix data the hand-written package files in pkgs/rdma-core/
//! consume.

use std::path::PathBuf;

use thiserror::Error;

use super::nix_expr::Value;
use super::GeneratedFile;
use super::GENERATED_DIR;
use crate::fetch::expected_store_path;
use crate::manifest::{Manifest, RdmaCoreRelease};
use crate::rdma_core::{scan_file, Provider, Release, ScanError};

#[derive(Debug, Error)]
pub enum RdmaCoreEmitError {
    #[error(
        "{path}: source of rdma-core {version} is not in the Nix store; run `rdma-nix fetch` first"
    )]
    NotFetched { path: PathBuf, version: String },
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("{path}: the manifest pins rdma-core {pinned} but the tarball is {found}")]
    VersionMismatch {
        path: PathBuf,
        pinned: String,
        found: String,
    },
    #[error("{path}: the unpacked tree's NAR hash is {scanned}, but the manifest's `tree` pin is {pinned}")]
    TreeMismatch {
        path: PathBuf,
        scanned: String,
        pinned: String,
    },
    #[error("stack.lock: package {package} (the source of rdma-core {version}) has no `tree` pin; add `tree = \"{scanned}\"` (the NAR hash of its unpacked tree)")]
    NoTreePin {
        package: String,
        version: String,
        scanned: String,
    },
    #[error("{path}: scanned sha256 {scanned} differs from the pin {pinned}")]
    HashMismatch {
        path: PathBuf,
        scanned: String,
        pinned: String,
    },
}

/// Scan the pinned tarball of one release from the store.
pub fn scan_pinned(m: &Manifest, r: &RdmaCoreRelease) -> Result<Release, RdmaCoreEmitError> {
    let pin = m.package(&r.source).expect("validated with the manifest");
    let path = PathBuf::from(expected_store_path(pin).to_string());
    if !path.is_file() {
        return Err(RdmaCoreEmitError::NotFetched {
            path,
            version: r.version.clone(),
        });
    }
    let rel = scan_file(&path)?;
    if rel.version != r.version {
        return Err(RdmaCoreEmitError::VersionMismatch {
            path,
            pinned: r.version.clone(),
            found: rel.version,
        });
    }
    if rel.sha256 != pin.hash().to_sri() {
        return Err(RdmaCoreEmitError::HashMismatch {
            path,
            scanned: rel.sha256,
            pinned: pin.hash().to_sri(),
        });
    }
    match pin.tree_hash() {
        None => Err(RdmaCoreEmitError::NoTreePin {
            package: pin.name.clone(),
            version: r.version.clone(),
            scanned: rel.tree.nar_hash,
        }),
        Some(t) if t.to_sri() != rel.tree.nar_hash => Err(RdmaCoreEmitError::TreeMismatch {
            path,
            scanned: rel.tree.nar_hash,
            pinned: t.to_sri(),
        }),
        Some(_) => Ok(rel),
    }
}

fn provider(p: &Provider) -> Value {
    let public = match &p.public_library {
        None => Value::Null,
        Some(l) => Value::attrs([
            ("name", Value::str(&l.name)),
            ("soversion", Value::str(&l.soversion)),
            ("version", Value::str(&l.version)),
            ("headers", Value::strs(&l.headers)),
            (
                "pkgConfig",
                l.pkg_config
                    .as_deref()
                    .map(Value::str)
                    .unwrap_or(Value::Null),
            ),
        ]),
    };
    Value::attrs([
        ("directory", Value::str(&p.directory)),
        ("plugin", Value::str(&p.plugin)),
        ("driverFile", Value::str(&p.driver_file)),
        ("publicLibrary", public),
        ("kernelModules", Value::strs(&p.kernel_modules)),
        ("needsCoherentDma", Value::Bool(p.needs_coherent_dma)),
        (
            "extraFiles",
            Value::List(
                p.extra_files
                    .iter()
                    .map(|f| {
                        Value::attrs([
                            ("file", Value::str(&f.file)),
                            ("destination", Value::str(&f.destination)),
                        ])
                    })
                    .collect(),
            ),
        ),
        ("manPages", Value::strs(&p.man_pages)),
    ])
}

/// `pkgs/generated/rdma-core/<version>.nix` for one scanned release.
pub fn release_file(m: &Manifest, r: &RdmaCoreRelease, rel: &Release) -> GeneratedFile {
    let pin = m.package(&r.source).expect("validated with the manifest");
    let body = Value::attrs([
        ("version", Value::str(&rel.version)),
        ("pabi", Value::Int(rel.pabi.into())),
        (
            "src",
            Value::attrs([
                ("name", Value::str(crate::fetch::TREE_NAME)),
                ("urls", Value::strs(pin.tree_urls())),
                ("hash", Value::str(&rel.tree.nar_hash)),
            ]),
        ),
        (
            "coreLibraries",
            Value::attrs(rel.core_libraries.iter().map(|l| {
                (
                    l.name.clone(),
                    Value::attrs([
                        ("soversion", Value::str(&l.soversion)),
                        ("version", Value::str(&l.version)),
                    ]),
                )
            })),
        ),
        (
            "tools",
            Value::strs(rel.tools.iter().filter(|t| !t.sbin).map(|t| &t.name)),
        ),
        (
            "sbinTools",
            Value::strs(rel.tools.iter().filter(|t| t.sbin).map(|t| &t.name)),
        ),
        (
            "providers",
            Value::attrs(rel.providers.iter().map(|p| (p.name.clone(), provider(p)))),
        ),
    ]);
    GeneratedFile::nix(
        format!("{GENERATED_DIR}/rdma-core/{}.nix", rel.version),
        &format!("{} (scan of {})", m.label, pin.file_name()),
        &body.render(),
    )
}

/// `pkgs/generated/rdma-core/default.nix`: the releases and the default.
pub fn index_file(m: &Manifest, source: &str) -> GeneratedFile {
    let mut body = String::from("{\n");
    if let Some(d) = m.default_rdma_core() {
        body.push_str(&format!(
            "  default = {};\n",
            super::nix_expr::string(&d.version)
        ));
    }
    body.push_str("  releases = {\n");
    for r in &m.rdma_core {
        body.push_str(&format!(
            "    {} = import ./{}.nix;\n",
            super::nix_expr::attr_name(&r.version),
            r.version
        ));
    }
    body.push_str("  };\n}\n");
    GeneratedFile::nix(
        format!("{GENERATED_DIR}/rdma-core/default.nix"),
        source,
        &body,
    )
}
