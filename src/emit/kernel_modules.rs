//! `pkgs/generated/kernel-modules.nix`: for each soft-RDMA driver and each kernel of
//! the matrix, build it there or reuse a recorded build whose every imported symbol
//! has the same CRC in that kernel (the weak-updates idea, decided ahead of time).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::nix_expr::Value;
use super::stack::GENERATED_DIR;
use super::GeneratedFile;
use crate::fetch::expected_store_path;
use crate::kernel::{inspect, kabi};
use crate::manifest::Manifest;

/// The records the embedded default stack.toml names, compiled in with it.
const EMBEDDED_RECORDS: &[(&str, &str)] = &[
    (
        "pkgs/kabi/siw-6.1.0-55-amd64.json",
        include_str!("../../pkgs/kabi/siw-6.1.0-55-amd64.json"),
    ),
    (
        "pkgs/kabi/rdma_rxe-6.1.0-55-amd64.json",
        include_str!("../../pkgs/kabi/rdma_rxe-6.1.0-55-amd64.json"),
    ),
];

/// A record's text: from beside the given manifest, or compiled in for the default.
fn read_record(file: &str, manifest_dir: Option<&Path>) -> Result<(String, String)> {
    match manifest_dir {
        Some(dir) => {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{}: cannot read the kABI record", path.display()))?;
            Ok((path.display().to_string(), text))
        }
        None => EMBEDDED_RECORDS
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(f, t)| (format!("{f} (embedded)"), t.to_string()))
            .with_context(|| format!("{file}: not a record of the embedded stack.toml")),
    }
}

/// Per driver: kernel → Some(base kernel it reuses) or None (built there).
pub struct Plan {
    pub file: GeneratedFile,
    pub builds: usize,
    pub reused: usize,
}

pub fn plan(m: &Manifest, manifest_dir: Option<&Path>, source: &str) -> Result<Plan> {
    let mut drivers = Vec::new();
    let (mut builds, mut reused) = (0, 0);
    let mut loaded = Vec::new();
    for k in &m.kernels {
        let pins = [&k.headers, &k.image];
        let files: Vec<PathBuf> = pins
            .iter()
            .map(|p| {
                PathBuf::from(expected_store_path(m.package(p).expect("validated")).to_string())
            })
            .collect();
        // Module.symvers and the config are in the headers package.
        if !files[0].is_file() {
            anyhow::bail!(
                "{}: headers of kernel {} are not in the Nix store; run `rdma-nix fetch` first",
                files[0].display(),
                k.name
            );
        }
        let mut ks = inspect::load(&files[..1])?;
        anyhow::ensure!(ks.len() == 1, "{}: expected one kernel", files[0].display());
        loaded.push((k.name.clone(), ks.remove(0)));
    }
    for driver in ["rxe", "siw"] {
        let records: Vec<_> = m
            .kabi_records
            .iter()
            .filter(|r| r.driver == driver)
            .collect();
        let mut per_kernel = Vec::new();
        for (name, kernel) in &loaded {
            let mut entry = vec![];
            let mut chosen: Option<(String, String)> = None;
            for r in &records {
                if &r.kernel == name {
                    chosen = None;
                    break;
                }
                let (path, text) = read_record(&r.file, manifest_dir)?;
                let rec: kabi::Record = serde_json::from_str(&text)
                    .with_context(|| format!("{path}: not a kABI record"))?;
                let module = rec
                    .to_module()
                    .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
                let v = kabi::decide(&module, kernel);
                if v.loads {
                    chosen = Some((r.kernel.clone(), v.reason));
                    break;
                }
                entry.push(format!("{}: {}", r.kernel, v.reason));
            }
            let value = match chosen {
                Some((base, reason)) => {
                    reused += 1;
                    Value::attrs([("reuse", Value::str(base)), ("reason", Value::str(reason))])
                }
                None => {
                    builds += 1;
                    let why = if records.iter().any(|r| &r.kernel == name) {
                        "recorded build".to_string()
                    } else if entry.is_empty() {
                        "no recorded build to reuse".to_string()
                    } else {
                        format!("no recorded build loads here: {}", entry.join("; "))
                    };
                    Value::attrs([("reuse", Value::Null), ("reason", Value::str(why))])
                }
            };
            per_kernel.push((name.clone(), value));
        }
        drivers.push((driver.to_string(), Value::attrs(per_kernel)));
    }
    Ok(Plan {
        file: GeneratedFile::nix(
            format!("{GENERATED_DIR}/kernel-modules.nix"),
            source,
            &Value::attrs(drivers).render(),
        ),
        builds,
        reused,
    })
}
