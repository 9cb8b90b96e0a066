//! `pkgs/generated/kernel-modules.nix`: for each soft-RDMA driver and each kernel of
//! the matrix, build it there or reuse a recorded build whose every imported symbol
//! has the same CRC in that kernel (the weak-updates idea, decided ahead of time).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::nix_expr::Value;
use super::stack::GENERATED_DIR;
use super::GeneratedFile;
use crate::fetch::expected_store_path;
use crate::kernel::inspect::{self, LoadedKernel};
use crate::kernel::kabi;
use crate::kernel::module::ModuleInfo;
use crate::manifest::Manifest;

/// A record's text, read relative to the manifest's directory.
fn read_record(file: &str, dir: &Path) -> Result<(String, String)> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read the kABI record", path.display()))?;
    Ok((path.display().to_string(), text))
}

/// One driver on one kernel: a build of its own, or a reuse, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    pub driver: String,
    pub kernel: String,
    /// The kernel whose build is reused; None: built for this kernel.
    pub reuse: Option<String>,
    pub reason: String,
}

/// The generated file and how many packages build versus reuse.
pub struct Plan {
    pub file: GeneratedFile,
    pub builds: usize,
    pub reused: usize,
    pub decisions: Vec<Decision>,
}

/// Each kernel of the matrix as read from its headers package (Module.symvers, the
/// config), by name.
pub fn load_kernels(m: &Manifest) -> Result<Vec<(String, LoadedKernel)>> {
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
    Ok(loaded)
}

/// Restored drivers built per kernel (kernel → driver → the restored drivers it
/// needs), from `restore::plan`: where a record's driver is restored, its reuse is
/// decided; the soft-RDMA pair is decided on every kernel.
pub type RestoredNeeds = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// One recorded module: what it imports, and what it exports to the drivers on it.
struct Recorded {
    module: ModuleInfo,
    provides: HashMap<String, u32>,
}

pub fn plan(
    m: &Manifest,
    loaded: &[(String, LoadedKernel)],
    restored: &RestoredNeeds,
    source: &str,
) -> Result<Plan> {
    const SOFT: [&str; 2] = ["rxe", "siw"];
    // Each driver's recorded builds, read once, grouped by the kernel they were built
    // for (one record per module), in the manifest's order.
    let mut groups: BTreeMap<String, Vec<(String, Vec<Recorded>)>> = BTreeMap::new();
    for r in &m.kabi_records {
        let (path, text) = read_record(&r.file, &m.dir)?;
        let rec: kabi::Record =
            serde_json::from_str(&text).with_context(|| format!("{path}: not a kABI record"))?;
        let module = rec
            .to_module()
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let provides = rec.provided().map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let g = groups.entry(r.driver.clone()).or_default();
        let rec = Recorded { module, provides };
        match g.iter_mut().find(|(k, _)| k == &r.kernel) {
            Some((_, mods)) => mods.push(rec),
            None => g.push((r.kernel.clone(), vec![rec])),
        }
    }
    let needs_of = |kernel: &str, driver: &str| -> Vec<String> {
        restored
            .get(kernel)
            .and_then(|d| d.get(driver))
            .cloned()
            .unwrap_or_default()
    };
    // Drivers in an order where those a driver needs come first.
    let mut order: Vec<String> = SOFT.iter().map(|s| s.to_string()).collect();
    let mut rest: Vec<String> = groups
        .keys()
        .filter(|d| !order.contains(d))
        .cloned()
        .collect();
    while !rest.is_empty() {
        let before = rest.len();
        rest.retain(|d| {
            let ready = restored
                .values()
                .filter_map(|k| k.get(d))
                .flatten()
                .all(|n| order.contains(n) || !groups.contains_key(n));
            if ready {
                order.push(d.clone());
            }
            !ready
        });
        anyhow::ensure!(
            rest.len() < before,
            "kABI records: drivers {rest:?} need each other in a cycle"
        );
    }
    // (driver, kernel) → the kernel whose build it reuses.
    let mut reuses: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut drivers = Vec::new();
    let mut decisions = Vec::new();
    let (mut builds, mut reused) = (0, 0);
    for driver in &order {
        let records = groups.get(driver).map(Vec::as_slice).unwrap_or_default();
        let soft = SOFT.contains(&driver.as_str());
        let mut per_kernel = Vec::new();
        for (name, kernel) in loaded {
            let built_here = restored.get(name).is_some_and(|d| d.contains_key(driver));
            if !soft && !built_here {
                continue;
            }
            let own = records.iter().any(|(k, _)| k == name);
            let needs = needs_of(name, driver);
            let mut refusals = Vec::new();
            let mut chosen = None;
            for (base, mods) in records.iter().filter(|_| !own) {
                // The drivers it links against must come from the same build.
                if let Some(n) = needs
                    .iter()
                    .find(|n| reuses.get(&((*n).clone(), name.clone())) != Some(base))
                {
                    refusals.push(format!("{base}: needs {n}, which is not reused from there"));
                    continue;
                }
                let mut beside: HashMap<String, u32> = HashMap::new();
                for r in mods {
                    beside.extend(r.provides.iter().map(|(k, v)| (k.clone(), *v)));
                }
                for n in &needs {
                    for (_, nm) in groups[n].iter().filter(|(k, _)| k == base) {
                        for r in nm {
                            beside.extend(r.provides.iter().map(|(k, v)| (k.clone(), *v)));
                        }
                    }
                }
                let verdicts: Vec<kabi::Verdict> = mods
                    .iter()
                    .map(|r| kabi::decide_with(&r.module, kernel, &beside))
                    .collect();
                match verdicts.iter().zip(mods).find(|(v, _)| !v.loads) {
                    None if verdicts.len() == 1 => {
                        chosen = Some((base.clone(), verdicts[0].reason.clone()));
                    }
                    None => {
                        let imports: usize = mods.iter().map(|r| r.module.imports.len()).sum();
                        chosen = Some((
                            base.clone(),
                            format!(
                                "reusable: all {imports} imported symbols of its {} modules have the same CRC here",
                                mods.len()
                            ),
                        ));
                    }
                    Some((v, r)) => {
                        let what = if mods.len() == 1 {
                            v.reason.clone()
                        } else {
                            format!("{}: {}", r.module.name.as_deref().unwrap_or("?"), v.reason)
                        };
                        refusals.push(format!("{base}: {what}"));
                        continue;
                    }
                }
                break;
            }
            let (reuse, reason) = match chosen {
                Some((base, reason)) => {
                    reused += 1;
                    reuses.insert((driver.clone(), name.clone()), base.clone());
                    (Some(base), reason)
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
                    (None, why)
                }
            };
            let value = Value::attrs([
                ("reuse", reuse.as_ref().map_or(Value::Null, Value::str)),
                ("reason", Value::str(&reason)),
            ]);
            per_kernel.push((name.clone(), value));
            decisions.push(Decision {
                driver: driver.clone(),
                kernel: name.clone(),
                reuse,
                reason,
            });
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
        decisions,
    })
}
