//! `pkgs/generated/kernel-modules.nix`: for each soft-RDMA and restored driver on each
//! kernel of the matrix, build it there or reuse the build of an older kernel of its
//! series (the weak-updates idea, decided ahead of time). `rdma-nix update` decides
//! ([`decide`]: from the builds themselves, their modules' imports against the new
//! kernel's Module.symvers) and keeps each decision with its evidence in the lock;
//! `rdma-nix generate` only renders the lock's decisions ([`plan_builds`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::nix_expr::Value;
use super::GeneratedFile;
use super::GENERATED_DIR;
use crate::debian::version::Version;
use crate::fetch::expected_store_path;
use crate::kernel::inspect::{self, LoadedKernel};
use crate::kernel::kabi;
use crate::kernel::module::{self, ModuleInfo};
use crate::kernel::symvers::Symvers;
pub use crate::manifest::ModuleDecision as Decision;
use crate::manifest::{Kernel, Manifest};

/// A refusal because the candidate's build comes with the same update: a decision
/// saying so is made again by the next update.
pub const PENDING: &str = "its build comes with this update";

/// The soft-RDMA pair, decided on every kernel (its own build is a package whether
/// or not the kernel ships the driver).
const SOFT: [&str; 2] = ["rxe", "siw"];

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
/// needs), from `restore::plan_matrix`.
pub type RestoredNeeds = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// The kernel's series (`6.1`): the one `rdma-nix update` locked it for, else its
/// image's upstream version's first two numbers.
fn series_of(m: &Manifest, k: &Kernel) -> String {
    k.series.clone().unwrap_or_else(|| {
        let v = &m.package(&k.image).expect("validated").version;
        v.split(['.', '-', '+'])
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    })
}

fn version_of(m: &Manifest, k: &Kernel) -> Option<Version> {
    Version::parse(&m.package(&k.image)?.version)
}

/// Every (kernel, driver) with a module build, in the order decisions are made:
/// kernels by series and version, a kernel's drivers after those they need.
pub fn wanted(m: &Manifest, restored: &RestoredNeeds) -> Result<Vec<(String, String)>> {
    let mut kernels: Vec<&Kernel> = m.kernels.iter().collect();
    kernels.sort_by_key(|k| (series_of(m, k), version_of(m, k)));
    let mut pairs = Vec::new();
    for k in kernels {
        let needs = restored.get(&k.name).cloned().unwrap_or_default();
        let mut order: Vec<String> = SOFT.iter().map(|s| s.to_string()).collect();
        let mut rest: Vec<&String> = needs.keys().filter(|d| !order.contains(d)).collect();
        while !rest.is_empty() {
            let before = rest.len();
            rest.retain(|d| {
                let ready = needs[*d].iter().all(|n| order.contains(n));
                if ready {
                    order.push((*d).clone());
                }
                !ready
            });
            anyhow::ensure!(
                rest.len() < before,
                "kernel {}: restored drivers {rest:?} need each other in a cycle",
                k.name
            );
        }
        pairs.extend(order.into_iter().map(|d| (k.name.clone(), d)));
    }
    Ok(pairs)
}

/// `kernel-modules.nix` from the lock's decisions; a module the lock doesn't decide
/// (a kernel pinned by hand) is built for its kernel.
pub fn plan_builds(m: &Manifest, restored: &RestoredNeeds, source: &str) -> Result<Plan> {
    let mut decisions = Vec::new();
    for (kernel, driver) in wanted(m, restored)? {
        let locked = m
            .modules
            .iter()
            .find(|d| d.kernel == kernel && d.driver == driver);
        decisions.push(locked.cloned().unwrap_or(Decision {
            kernel,
            driver,
            reuse: None,
            reason: "built here: stack.lock has no kABI decision for it (`rdma-nix update` makes one)"
                .into(),
        }));
    }
    for d in &decisions {
        if let Some(from) = &d.reuse {
            let own = decisions
                .iter()
                .any(|o| &o.kernel == from && o.driver == d.driver && o.reuse.is_none());
            anyhow::ensure!(
                own,
                "stack.lock: module {} on {} reuses {from}, which builds no {} of its own: run `rdma-nix update`",
                d.driver,
                d.kernel,
                d.driver
            );
        }
    }
    Ok(render(decisions, source))
}

fn render(decisions: Vec<Decision>, source: &str) -> Plan {
    let mut by_driver: BTreeMap<&str, Vec<(String, Value)>> = BTreeMap::new();
    for d in &decisions {
        let value = Value::attrs([
            ("reuse", d.reuse.as_ref().map_or(Value::Null, Value::str)),
            ("reason", Value::str(&d.reason)),
        ]);
        by_driver
            .entry(&d.driver)
            .or_default()
            .push((d.kernel.clone(), value));
    }
    let body = Value::attrs(
        by_driver
            .into_iter()
            .map(|(driver, kernels)| (driver.to_string(), Value::attrs(kernels))),
    );
    let reused = decisions.iter().filter(|d| d.reuse.is_some()).count();
    Plan {
        file: GeneratedFile::nix(
            format!("{GENERATED_DIR}/kernel-modules.nix"),
            source,
            &body.render(),
        ),
        builds: decisions.len() - reused,
        reused,
        decisions,
    }
}

/// One driver's build for one kernel, as read from its output: its modules (what each
/// imports, with CRCs) and what they export (its Module.symvers) to the drivers built
/// on it.
pub struct Build {
    pub modules: Vec<ModuleInfo>,
    pub provides: HashMap<String, u32>,
}

impl Build {
    /// Reads `out/lib/modules/*/updates/*.ko` and `out/share/rdma-nix/DRIVER/Module.symvers`.
    pub fn read(out: &Path, driver: &str) -> Result<Build> {
        let mut modules = Vec::new();
        let lib = out.join("lib/modules");
        let releases =
            std::fs::read_dir(&lib).with_context(|| format!("{}: cannot read", lib.display()))?;
        for rel in releases {
            let dir = rel?.path().join("updates");
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut kos: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "ko"))
                .collect();
            kos.sort();
            for ko in kos {
                let bytes =
                    std::fs::read(&ko).with_context(|| format!("{}: cannot read", ko.display()))?;
                modules.push(module::parse(&bytes).with_context(|| ko.display().to_string())?);
            }
        }
        anyhow::ensure!(!modules.is_empty(), "{}: no module built", out.display());
        let symvers = out.join(format!("share/rdma-nix/{driver}/Module.symvers"));
        let provides = match std::fs::File::open(&symvers) {
            Ok(f) => Symvers::parse(std::io::BufReader::new(f))
                .with_context(|| format!("{}: not a Module.symvers", symvers.display()))?
                .symbols
                .into_iter()
                .map(|(s, e)| (s, e.crc))
                .collect(),
            // A driver nothing links against installs none (the soft pair).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", symvers.display())),
        };
        Ok(Build { modules, provides })
    }
}

/// The lock's decisions brought up to date: kept where they still hold (their kernel,
/// and the build they reuse, still in the lock), made for every other module. A
/// module is reused from the newest older kernel of its series with a build of its
/// own whose every module loads here (every import's CRC the same, the vermagic the
/// same apart from the release; imports from a driver it needs, when that driver is
/// reused from the same kernel); else built here, with each candidate's refusal.
/// `build(kernel, driver)` gives a kernel's own build, or None for a kernel whose
/// build can't be made yet (one this update adds): refused for now, with a reason
/// ([`PENDING`]) that has the next update decide again.
pub fn decide(
    m: &Manifest,
    loaded: &[(String, LoadedKernel)],
    restored: &RestoredNeeds,
    build: &mut dyn FnMut(&str, &str) -> Result<Option<Build>>,
) -> Result<Vec<Decision>> {
    let wanted = wanted(m, restored)?;
    let locked: Vec<&Decision> = m
        .modules
        .iter()
        .filter(|d| {
            wanted
                .iter()
                .any(|(k, dr)| k == &d.kernel && dr == &d.driver)
        })
        .collect();
    let kept: Vec<Decision> = locked
        .iter()
        .filter(|d| !d.reason.contains(PENDING))
        .filter(|d| {
            d.reuse.as_ref().is_none_or(|from| {
                locked
                    .iter()
                    .any(|o| &o.kernel == from && o.driver == d.driver && o.reuse.is_none())
            })
        })
        .map(|d| (*d).clone())
        .collect();
    let mut decisions = Vec::new();
    for (kernel, driver) in &wanted {
        if let Some(d) = kept
            .iter()
            .find(|d| &d.kernel == kernel && &d.driver == driver)
        {
            decisions.push(d.clone());
            continue;
        }
        let k = m
            .kernels
            .iter()
            .find(|k| &k.name == kernel)
            .expect("wanted");
        let here = &loaded.iter().find(|(n, _)| n == kernel).expect("loaded").1;
        let needs = restored
            .get(kernel)
            .and_then(|d| d.get(driver))
            .cloned()
            .unwrap_or_default();
        let own: Vec<&Decision> = decisions.iter().chain(&kept).collect();
        let candidates = candidates(m, k, driver, &own);
        let mut refusals = Vec::new();
        let mut chosen = None;
        for from in candidates {
            match reusable(&from, driver, &needs, kernel, here, &decisions, build)? {
                Ok(evidence) => {
                    chosen = Some((from, evidence));
                    break;
                }
                Err(why) => refusals.push(format!("{from}: {why}")),
            }
        }
        let (reuse, reason) = match chosen {
            Some((from, evidence)) => (Some(from), evidence),
            None if refusals.is_empty() => (
                None,
                "built here: no other kernel of the series builds it".to_string(),
            ),
            None => (
                None,
                format!(
                    "built here: no other build of the series loads: {}",
                    refusals.join("; ")
                ),
            ),
        };
        decisions.push(Decision {
            kernel: kernel.clone(),
            driver: driver.clone(),
            reuse,
            reason,
        });
    }
    settle_needs(&mut decisions, restored);
    Ok(decisions)
}

/// Drivers linked against each other (rnbd on rtrs) come from one build on a kernel:
/// a driver built here takes the drivers it needs built here too (its build links
/// against theirs), and a driver reused from a kernel whose needs are not all reused
/// from there is built here; until nothing changes (kept decisions included).
fn settle_needs(decisions: &mut [Decision], restored: &RestoredNeeds) {
    loop {
        let mut change = None;
        'find: for d in decisions.iter() {
            let needs = restored.get(&d.kernel).and_then(|n| n.get(&d.driver));
            for n in needs.into_iter().flatten() {
                let Some(need) = decisions
                    .iter()
                    .find(|o| o.kernel == d.kernel && &o.driver == n)
                else {
                    continue;
                };
                match (&d.reuse, &need.reuse) {
                    (None, Some(_)) => {
                        let why = format!(
                            "built here: {}, built here, links against this build",
                            d.driver
                        );
                        change = Some((need.driver.clone(), d.kernel.clone(), why));
                        break 'find;
                    }
                    (Some(from), r) if r.as_ref() != Some(from) => {
                        let why = format!("built here: needs {n}, which is not reused from {from}");
                        change = Some((d.driver.clone(), d.kernel.clone(), why));
                        break 'find;
                    }
                    _ => {}
                }
            }
        }
        let Some((driver, kernel, why)) = change else {
            return;
        };
        let d = decisions
            .iter_mut()
            .find(|d| d.driver == driver && d.kernel == kernel)
            .expect("found above");
        d.reuse = None;
        d.reason = why;
    }
}

/// The other kernels of `k`'s series with a build of their own of `driver` (among
/// `decided`): the older ones newest first, then the newer ones oldest first (a kernel
/// kept by `keep_abis` older than the lock's builds).
fn candidates(m: &Manifest, k: &Kernel, driver: &str, decided: &[&Decision]) -> Vec<String> {
    let (series, version) = (series_of(m, k), version_of(m, k));
    let mut others: Vec<(&Kernel, Option<Version>)> = m
        .kernels
        .iter()
        .filter(|o| o.name != k.name && series_of(m, o) == series)
        .map(|o| (o, version_of(m, o)))
        .filter(|(o, _)| {
            decided
                .iter()
                .any(|d| d.kernel == o.name && d.driver == driver && d.reuse.is_none())
        })
        .collect();
    others.sort_by(|a, b| match (a.1 < version, b.1 < version) {
        (true, true) => b.1.cmp(&a.1),
        (false, false) => a.1.cmp(&b.1),
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
    });
    others.into_iter().map(|(o, _)| o.name.clone()).collect()
}

/// Whether `from`'s build of `driver` loads on `kernel`: Ok(the evidence) or Err(why not).
fn reusable(
    from: &str,
    driver: &str,
    needs: &[String],
    kernel: &str,
    here: &LoadedKernel,
    decided: &[Decision],
    build: &mut dyn FnMut(&str, &str) -> Result<Option<Build>>,
) -> Result<std::result::Result<String, String>> {
    // The drivers it links against must come from the same build.
    let reused_from = |n: &String| {
        decided
            .iter()
            .find(|d| d.kernel == kernel && &d.driver == n)
            .and_then(|d| d.reuse.as_deref())
    };
    if let Some(n) = needs.iter().find(|n| reused_from(n) != Some(from)) {
        return Ok(Err(format!("needs {n}, which is not reused from there")));
    }
    let Some(own) = build(from, driver)? else {
        return Ok(Err(format!("{PENDING}; compared at the next update")));
    };
    let mut beside = own.provides.clone();
    for n in needs {
        let Some(b) = build(from, n)? else {
            return Ok(Err(format!("{PENDING}; compared at the next update")));
        };
        beside.extend(b.provides);
    }
    let verdicts: Vec<kabi::Verdict> = own
        .modules
        .iter()
        .map(|m| kabi::decide_with(m, here, &beside))
        .collect();
    if let Some((v, m)) = verdicts.iter().zip(&own.modules).find(|(v, _)| !v.loads) {
        return Ok(Err(if own.modules.len() == 1 {
            v.reason.clone()
        } else {
            format!("{}: {}", m.name.as_deref().unwrap_or("?"), v.reason)
        }));
    }
    let imports: usize = own.modules.iter().map(|m| m.imports.len()).sum();
    Ok(Ok(if own.modules.len() == 1 {
        verdicts[0].reason.clone()
    } else {
        format!(
            "reusable: all {imports} imported symbols of its {} modules have the same CRC here",
            own.modules.len()
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(kernel: &str, driver: &str, reuse: Option<&str>) -> Decision {
        Decision {
            kernel: kernel.into(),
            driver: driver.into(),
            reuse: reuse.map(Into::into),
            reason: "r".into(),
        }
    }

    fn rnbd_on_rtrs(kernel: &str) -> RestoredNeeds {
        let mut drivers = BTreeMap::new();
        drivers.insert("rtrs".to_string(), vec![]);
        drivers.insert("rnbd".to_string(), vec!["rtrs".to_string()]);
        BTreeMap::from([(kernel.to_string(), drivers)])
    }

    #[test]
    fn a_driver_built_here_takes_what_it_links_against_from_its_own_build() {
        let mut ds = vec![d("k", "rtrs", Some("j")), d("k", "rnbd", None)];
        settle_needs(&mut ds, &rnbd_on_rtrs("k"));
        assert_eq!(ds[0].reuse, None, "{:?}", ds[0]);
        assert!(ds[0].reason.contains("rnbd, built here"), "{:?}", ds[0]);
    }

    #[test]
    fn a_reused_driver_whose_need_is_not_reused_from_the_same_kernel_is_built_here() {
        // Kept from an older lock: rnbd reused from j, rtrs now from i.
        let mut ds = vec![d("k", "rtrs", Some("i")), d("k", "rnbd", Some("j"))];
        settle_needs(&mut ds, &rnbd_on_rtrs("k"));
        assert_eq!(ds[1].reuse, None);
        assert!(ds[1]
            .reason
            .contains("needs rtrs, which is not reused from j"));
        // … and then rtrs is built here as well, for the rnbd built here.
        assert_eq!(ds[0].reuse, None);
    }

    #[test]
    fn consistent_decisions_stay() {
        let mut ds = vec![d("k", "rtrs", Some("j")), d("k", "rnbd", Some("j"))];
        let before = ds.clone();
        settle_needs(&mut ds, &rnbd_on_rtrs("k"));
        assert_eq!(ds, before);
    }
}
