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

/// The generated file and how many packages build versus reuse.
pub struct Plan {
    pub file: GeneratedFile,
    pub builds: usize,
    pub reused: usize,
}

pub fn plan(m: &Manifest, manifest_dir: Option<&Path>, source: &str) -> Result<Plan> {
    // Module.symvers and the config of each kernel, from its headers package.
    let mut loaded = Vec::new();
    for k in &m.kernels {
        let headers = PathBuf::from(
            expected_store_path(m.package(&k.headers).expect("validated")).to_string(),
        );
        if !headers.is_file() {
            anyhow::bail!(
                "{}: headers of kernel {} are not in the Nix store; run `rdma-nix fetch` first",
                headers.display(),
                k.name
            );
        }
        let mut ks = inspect::load(std::slice::from_ref(&headers))?;
        anyhow::ensure!(ks.len() == 1, "{}: expected one kernel", headers.display());
        loaded.push((k.name.clone(), ks.remove(0)));
    }
    let mut drivers = Vec::new();
    let (mut builds, mut reused) = (0, 0);
    for driver in ["rxe", "siw"] {
        // Each recorded build of this driver, read once: (kernel it was built for, module).
        let mut records = Vec::new();
        for r in m.kabi_records.iter().filter(|r| r.driver == driver) {
            let (path, text) = read_record(&r.file, manifest_dir)?;
            let rec: kabi::Record = serde_json::from_str(&text)
                .with_context(|| format!("{path}: not a kABI record"))?;
            let module = rec
                .to_module()
                .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            records.push((r.kernel.clone(), module));
        }
        let mut per_kernel = Vec::new();
        for (name, kernel) in &loaded {
            let own = records.iter().any(|(k, _)| k == name);
            let mut refusals = Vec::new();
            let mut chosen = None;
            if !own {
                for (base, module) in &records {
                    let v = kabi::decide(module, kernel);
                    if v.loads {
                        chosen = Some((base.clone(), v.reason));
                        break;
                    }
                    refusals.push(format!("{base}: {}", v.reason));
                }
            }
            let value = match chosen {
                Some((base, reason)) => {
                    reused += 1;
                    Value::attrs([("reuse", Value::str(base)), ("reason", Value::str(reason))])
                }
                None => {
                    builds += 1;
                    let why = if own {
                        "recorded build".to_string()
                    } else if refusals.is_empty() {
                        "no recorded build to reuse".to_string()
                    } else {
                        format!("no recorded build loads here: {}", refusals.join("; "))
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
