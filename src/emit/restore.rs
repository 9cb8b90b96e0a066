//! `pkgs/generated/restore.nix`: for each kernel of the matrix, every RDMA driver of
//! its series' source (the `[[kernel_source]]` its modules are built from), planned
//! for an out-of-tree build where the kernel's config leaves it unset (its modules,
//! the config symbols make gets, the restored drivers it needs first, the source
//! directories it includes), or the reason it isn't built there; and the default set.
//! The plans come from the source's Kconfig and Kbuild files (`kernel::restore`);
//! `pkgs/kernel-modules/restored.nix` builds an entry. `series` plans every driver of
//! each series' source for kernels outside the matrix (nixpkgs' kernels of a series).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::nix_expr::Value;
use super::GeneratedFile;
use super::GENERATED_DIR;
use crate::fetch::{expected_store_path, kernel_source_store_path};
use crate::kernel::drivers::{self, Driver, SourceDrivers};
use crate::kernel::inspect::{LoadedKernel, MAX_SOURCE_FILE};
use crate::kernel::kbuild::Condition;
use crate::kernel::restore;
use crate::kernel::source::read_dir_files;
use crate::manifest::Manifest;

/// The generated file and what it plans for the default set.
pub struct Restored {
    pub file: GeneratedFile,
    /// Kernel × default driver pairs built out of tree.
    pub builds: usize,
    /// Kernel × default driver pairs the kernel has already.
    pub in_tree: usize,
    /// Kernel × default driver pairs that can't be built (absent, unmet dependency).
    pub refused: usize,
    /// Every driver built out of tree, per kernel, with the drivers it needs.
    pub needs: crate::emit::kernel_modules::RestoredNeeds,
}

/// The RDMA subsystem headers (`rdma/…`, from `include/rdma` and
/// `include/uapi/rdma`) a kernel's headers packages ship.
fn rdma_headers(debs: &[PathBuf]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for deb in debs {
        crate::archive::deb::for_each_entry(deb, crate::archive::DEFAULT_MAX_UNPACKED, |e| {
            let p = e.path.to_string_lossy();
            // usr/src/linux-headers-<release>/include/rdma/iter.h
            for dir in ["/include/rdma/", "/include/uapi/rdma/"] {
                if let Some((_, h)) = p.split_once(dir) {
                    out.insert(format!("rdma/{h}"));
                }
            }
            Ok(true)
        })
        .with_context(|| format!("{}: headers package", deb.display()))?;
    }
    Ok(out)
}

/// Each driver's `#include <rdma/…>` lines (its .c and .h files), by driver name.
fn rdma_includes(tree: &Path, src: &SourceDrivers) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let code = |p: &Path| p.extension().is_some_and(|x| x == "c" || x == "h");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in &src.drivers {
        let dir = tree.join(&d.dir);
        let files = read_dir_files(&dir, MAX_SOURCE_FILE, &code)?;
        let set = out.entry(d.name.clone()).or_default();
        for text in files.values() {
            for line in text.lines() {
                let l = line.trim_start();
                let Some(rest) = l.strip_prefix("#include") else {
                    continue;
                };
                let rest = rest.trim_start();
                if let Some(h) = rest.strip_prefix('<').and_then(|r| r.split_once('>')) {
                    if h.0.starts_with("rdma/") {
                        set.insert(h.0.to_string());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// What a kernel's plan does with a driver.
enum Outcome {
    Build,
    InTree,
    Refused,
}

/// A kernel's RDMA headers and its source's drivers' `<rdma/…>` includes.
struct Headers<'a> {
    release: &'a str,
    have: &'a BTreeSet<String>,
    wants: &'a BTreeMap<String, BTreeSet<String>>,
}

/// One driver's entry for one kernel from its plan `p`: the build, or why not. `tree`
/// is the source subset the build gets, if not the whole source: a driver that
/// includes a directory outside it is refused, naming the directory. `headers`, where
/// known: a driver (or one it needs) of a newer point release than the kernel may
/// include an RDMA header the kernel's headers lack, and is refused naming it.
fn entry(
    p: &restore::Plan,
    src: &SourceDrivers,
    tree: Option<&Path>,
    name: &str,
    headers: Option<Headers<'_>>,
) -> Result<(Value, Outcome, Option<Vec<String>>)> {
    let build = p.build.iter().find(|b| b.driver == name);
    if let (Some(b), Some(hd)) = (build, headers) {
        let release = hd.release;
        let missing = std::iter::once(name)
            .chain(b.needs.iter().map(String::as_str))
            .flat_map(|d| hd.wants.get(d).into_iter().flatten())
            .find(|h| !hd.have.contains(*h));
        if let Some(h) = missing {
            let reason = format!(
                "its source (linux {}) includes <{h}>, which {release}'s headers lack (a newer point release's driver)",
                src.version
            );
            return Ok((
                Value::attrs([("skip", Value::str(reason)), ("inTree", Value::Bool(false))]),
                Outcome::Refused,
                None,
            ));
        }
    }
    let outside = build.and_then(|b| {
        b.includes
            .iter()
            .find(|i| tree.is_some_and(|t| !t.join(i).is_dir()))
    });
    if let Some(dir) = outside {
        let reason = format!(
            "its build includes {dir}, which the kernel source subset lacks (add it to the [[kernel_source]]'s subdirs)"
        );
        return Ok((
            Value::attrs([("skip", Value::str(reason)), ("inTree", Value::Bool(false))]),
            Outcome::Refused,
            None,
        ));
    }
    if let Some(b) = build {
        return Ok((
            Value::attrs([
                ("dir", Value::str(b.dir.as_str())),
                ("modules", Value::strs(&b.modules)),
                (
                    "symbols",
                    Value::attrs(
                        b.symbols
                            .iter()
                            .map(|(s, v)| (format!("CONFIG_{s}"), Value::str(v.as_str()))),
                    ),
                ),
                ("needs", Value::strs(&b.needs)),
                ("includes", Value::strs(&b.includes)),
            ]),
            Outcome::Build,
            Some(b.needs.clone()),
        ));
    }
    let s = p
        .skip
        .iter()
        .find(|s| s.driver == name)
        .with_context(|| format!("linux {}: no plan for {name}", src.version))?;
    let outcome = if s.in_tree {
        Outcome::InTree
    } else {
        Outcome::Refused
    };
    Ok((
        Value::attrs([
            ("skip", Value::str(s.reason.as_str())),
            ("inTree", Value::Bool(s.in_tree)),
        ]),
        outcome,
        None,
    ))
}

/// What each symbol a recipe sets requires of the kernel's config: its `depends on`
/// expressions, and the symbols it selects that no RDMA driver of the source defines
/// (those a driver defines are restored with it, as `needs`), `CONFIG_`-less as in
/// Kconfig: `[ { symbol; depends = [ expr … ]; selects = [ … ]; } … ]`.
fn requires(src: &SourceDrivers, d: &Driver, b: &restore::Restore) -> Value {
    let owned = |s: &str| {
        src.drivers
            .iter()
            .any(|o| o.symbols.iter().any(|e| e.symbol == s))
    };
    Value::List(
        d.symbols
            .iter()
            .filter(|e| b.symbols.contains_key(&e.symbol))
            .map(|e| {
                Value::attrs([
                    ("symbol", Value::str(e.symbol.as_str())),
                    ("depends", Value::strs(&e.depends_on)),
                    (
                        "selects",
                        Value::strs(e.selects.iter().filter(|s| !owned(s))),
                    ),
                ])
            })
            .collect(),
    )
}

/// The config symbols a driver's modules are built on (`obj-$(CONFIG_X)`), `CONFIG_`
/// named; a module built on a computed condition has none (its state is unknown).
fn module_symbols(d: &Driver) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in &d.modules {
        if let Condition::Symbol(s) = &m.condition {
            let s = format!("CONFIG_{s}");
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Plans every driver of every kernel's source; `kernels` are the matrix's, by name,
/// as read from their headers (`kernel_modules::load_kernels`).
pub fn plan_matrix(
    m: &Manifest,
    kernels: &[(String, LoadedKernel)],
    source: &str,
) -> Result<Restored> {
    // Each source tree scanned once.
    let mut scanned: BTreeMap<String, (PathBuf, SourceDrivers)> = BTreeMap::new();
    for k in &m.kernels {
        if scanned.contains_key(&k.module_source) {
            continue;
        }
        let ks = m.kernel_source(&k.module_source).expect("validated");
        let dir = PathBuf::from(kernel_source_store_path(ks).to_string());
        if !dir.is_dir() {
            anyhow::bail!(
                "{}: kernel source {} is not in the Nix store; run `rdma-nix fetch` first",
                dir.display(),
                ks.name
            );
        }
        let files = read_dir_files(&dir, MAX_SOURCE_FILE, &drivers::wanted)?;
        let src = drivers::scan(&files)
            .with_context(|| format!("{}: kernel source {}", dir.display(), ks.name))?;
        anyhow::ensure!(
            !src.drivers.is_empty(),
            "{}: kernel source {} holds no RDMA driver (its subdirs must include drivers/infiniband)",
            dir.display(),
            ks.name
        );
        scanned.insert(k.module_source.clone(), (dir, src));
    }
    let defaults = drivers::default_restore_names();
    // Every driver any source has, and the default set: each is planned (or refused
    // by name) on every kernel.
    let names: BTreeSet<String> = scanned
        .values()
        .flat_map(|(_, s)| s.drivers.iter().map(|d| d.name.clone()))
        .chain(defaults.iter().cloned())
        .collect();
    let (mut builds, mut in_tree, mut refused) = (0, 0, 0);
    let mut restored_needs = crate::emit::kernel_modules::RestoredNeeds::new();
    let mut includes: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut per_kernel = Vec::new();
    for k in &m.kernels {
        let (_, loaded) = kernels
            .iter()
            .find(|(n, _)| n == &k.name)
            .with_context(|| format!("kernel {}: not loaded", k.name))?;
        let (tree, src) = &scanned[&k.module_source];
        let config = loaded
            .config
            .as_ref()
            .with_context(|| format!("kernel {}: no config in its headers", k.name))?;
        eprintln!(
            "rdma-nix: restore: planning {} (linux {})",
            k.name, src.version
        );
        // Headers of another point release than the source's may lack what its
        // drivers include; those of the same release have it (read only when needed:
        // each headers package is a stream of some MB).
        let headers_pkg = m.package(&k.headers).expect("validated");
        let same_release = headers_pkg.version.split('-').next() == Some(src.version.as_str());
        let have = if same_release {
            None
        } else {
            let debs: Vec<PathBuf> = [&k.headers, &k.headers_common]
                .iter()
                .map(|p| {
                    PathBuf::from(expected_store_path(m.package(p).expect("validated")).to_string())
                })
                .collect();
            if !includes.contains_key(&k.module_source) {
                includes.insert(k.module_source.clone(), rdma_includes(tree, src)?);
            }
            Some(rdma_headers(&debs)?)
        };
        let mut entries = Vec::new();
        for name in &names {
            let headers = have.as_ref().map(|have| Headers {
                release: &loaded.release,
                have,
                wants: &includes[&k.module_source],
            });
            let p = restore::plan_restore(src, config, std::slice::from_ref(name));
            let (e, outcome, needs) = entry(&p, src, Some(tree), name, headers)?;
            if let Some(n) = needs {
                restored_needs
                    .entry(k.name.clone())
                    .or_default()
                    .insert(name.clone(), n);
            }
            if defaults.contains(name) {
                match outcome {
                    Outcome::Build => builds += 1,
                    Outcome::InTree => in_tree += 1,
                    Outcome::Refused => refused += 1,
                }
            }
            entries.push((name.clone(), e));
        }
        per_kernel.push((
            k.name.clone(),
            Value::attrs([
                ("source", Value::str(src.version.as_str())),
                ("drivers", Value::attrs(entries)),
            ]),
        ));
    }
    // Per series, for kernels outside the matrix (nixpkgs' of the same series, built
    // from their whole source, `kernel.src`): each driver's recipe from the source
    // alone (`restore::recipe`), no distribution's config in it; the kernel's own
    // .config decides when the module is built.
    let mut per_series: Vec<(String, Value)> = Vec::new();
    for k in &m.kernels {
        let (_, src) = &scanned[&k.module_source];
        if per_series.iter().any(|(s, _)| s == &src.series) {
            continue;
        }
        let mut entries = Vec::new();
        for d in &src.drivers {
            let p = restore::recipe(src, std::slice::from_ref(&d.name));
            let (mut e, _, _) = entry(&p, src, None, &d.name, None)?;
            // The symbols its modules are built on, so a kernel of the series reports
            // whether it builds the driver itself (pkgs/kernel-modules/driver-states.nix
            // reads them from its .config, as `kernel inspect` does), and what the
            // symbols it sets require of that config.
            if let Value::Attrs(items) = &mut e {
                items.push(("kconfig".into(), Value::strs(module_symbols(d))));
                if let Some(b) = p.build.iter().find(|b| b.driver == d.name) {
                    items.push(("requires".into(), requires(src, d, b)));
                }
            }
            entries.push((d.name.clone(), e));
        }
        per_series.push((
            src.series.clone(),
            Value::attrs([
                ("source", Value::str(src.version.as_str())),
                ("drivers", Value::attrs(entries)),
            ]),
        ));
    }
    let body = Value::attrs([
        ("default", Value::strs(&defaults)),
        ("kernels", Value::attrs(per_kernel)),
        ("series", Value::attrs(per_series)),
    ]);
    Ok(Restored {
        file: GeneratedFile::nix(
            format!("{GENERATED_DIR}/restore.nix"),
            source,
            &body.render(),
        ),
        builds,
        in_tree,
        refused,
        needs: restored_needs,
    })
}
