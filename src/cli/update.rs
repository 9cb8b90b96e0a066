//! `rdma-nix update`: reads the tracked suites' signed indexes, adds the series' new
//! kernel ABIs to the lock and retires old ones by the keep policy, fetches the new
//! kernels' packages into the store, regenerates `pkgs/generated/` and prints a
//! changelog (`--json` for scripts). `--dry-run` writes nothing; `--check` exits 2
//! when the lock is behind the suites.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::debian::index::Index;
use crate::debian::version::Version;
use crate::emit::{self, kernel_modules::Decision, GeneratedFile};
use crate::fetch::fetch_package;
use crate::kernel::inspect;
use crate::manifest::{Kernel, Manifest, LOCK_FILE};
use crate::update::{self, AbiChange, AbiStatus, Expiry};

/// Exit status of `--check` when the lock is behind the suites.
pub const BEHIND: u8 = 2;

#[derive(clap::Args)]
pub struct Args {
    /// The intent file (default: stack.toml of the working tree); the lock is
    /// written beside it.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Print what would change; write nothing (packages of new kernels are still
    /// fetched into the Nix store, to decide their kABI).
    #[arg(long)]
    dry_run: bool,
    /// Like --dry-run, and exit 2 when anything is new (for a scheduled CI job).
    #[arg(long)]
    check: bool,
    /// Print the changelog as JSON.
    #[arg(long)]
    json: bool,
    /// Read a suite whose Release is past its Valid-Until (a snapshot mirror), as
    /// apt's Acquire::Check-Valid-Until=false does; the changelog names it.
    #[arg(long)]
    allow_expired: bool,
    /// After writing, build each added kernel's VM checks (rxe, siw, the restored
    /// drivers' load check) with nix-build; exit 1 naming every kernel and check that
    /// failed (a bot then opens an issue instead of a change).
    #[arg(long, conflicts_with_all = ["dry_run", "check"])]
    prove: bool,
    /// Only these series (their `linux`, e.g. 6.1); the others' kernels stay as locked.
    #[arg(long = "series", value_name = "LINUX")]
    only: Vec<String>,
    /// Read the indexes from this archive root (an http(s) or file URL) instead of
    /// the mirrors of the machine's apt; repeatable, tried in order.
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
}

#[derive(Serialize)]
struct SeriesLog {
    linux: String,
    suites: Vec<String>,
    /// Suites read past their Valid-Until (--allow-expired).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    expired: Vec<String>,
    abis: Vec<AbiLog>,
    /// ABIs newer than the lock that the suites have only in part.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    incomplete: Vec<update::Incomplete>,
}

#[derive(Serialize)]
struct AbiLog {
    #[serde(flatten)]
    change: AbiChange,
    /// The soft drivers the kernel's config builds (`rxe`, `siw`), for added ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    rdma_in_tree: Option<Vec<String>>,
    /// Each module build on this kernel: reused or rebuilt, and why (added ones).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    modules: Vec<Decision>,
}

#[derive(Serialize)]
struct Changelog {
    series: Vec<SeriesLog>,
    /// Kernel sources new to the lock (a new kernel's point release), by name.
    new_sources: Vec<String>,
    /// Packages dropped from the lock with the kernels retired.
    dropped_packages: Vec<String>,
    /// Files written (none for --dry-run, --check or when nothing changed).
    written: Vec<String>,
    /// With --prove: each added kernel's checks and their outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    proof: Vec<Proof>,
}

/// One VM check of an added kernel, built by `--prove`.
#[derive(Serialize)]
struct Proof {
    kernel: String,
    check: String,
    passed: bool,
    /// The check's output (result.json, serial.log) when it passed; the last lines
    /// of nix-build's log when it failed.
    detail: String,
}

/// The checks `--prove` builds for a kernel: `checks.<kernel>.<name>` of the offline set.
const PROOF_CHECKS: [&str; 3] = ["rxe", "siw", "restored"];

fn prove(dir: &Path, kernels: &[String]) -> Result<Vec<Proof>> {
    let mut out = Vec::new();
    for k in kernels {
        for c in PROOF_CHECKS {
            eprint!("rdma-nix: proving {k}: {c} … ");
            let o = std::process::Command::new("nix-build")
                .current_dir(dir)
                .args([
                    "-Q",
                    "--no-out-link",
                    "--option",
                    "substituters",
                    "",
                    "pkgs/offline",
                    "-A",
                ])
                .arg(format!("checks.\"{k}\".{c}"))
                .output()
                .context("cannot run nix-build")?;
            let passed = o.status.success();
            eprintln!("{}", if passed { "passed" } else { "FAILED" });
            let detail = if passed {
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            } else {
                let err = String::from_utf8_lossy(&o.stderr);
                let lines: Vec<&str> = err.lines().collect();
                lines[lines.len().saturating_sub(15)..].join("\n")
            };
            out.push(Proof {
                kernel: k.clone(),
                check: c.into(),
                passed,
                detail,
            });
        }
    }
    Ok(out)
}

impl Changelog {
    fn changed(&self) -> bool {
        self.series
            .iter()
            .flat_map(|s| &s.abis)
            .any(|a| matches!(a.change.status, AbiStatus::Added | AbiStatus::Retired))
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Result<Scratch> {
    let dir = std::env::temp_dir().join(format!("rdma-nix-update-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    Ok(Scratch(dir))
}

fn keyring(m: &Manifest, dir: &Path) -> Result<PathBuf> {
    let name = m
        .debian
        .keyring
        .as_deref()
        .context("stack.toml: [debian] names no `keyring`: indexes can't be verified")?;
    let p = m.package(name).expect("validated");
    let f = fetch_package(p, None)?;
    update::extract_keyring(Path::new(&f.store_path), dir)
}

/// The soft drivers (`rxe`, `siw`) a new kernel's config builds, read from its image
/// and headers.
fn rdma_in_tree(m: &Manifest, k: &Kernel) -> Result<Vec<String>> {
    let files: Vec<PathBuf> = std::iter::once(&k.image)
        .chain(&k.image_parts)
        .chain([&k.headers])
        .map(|n| -> Result<PathBuf> {
            let p = m.package(n).expect("pinned");
            Ok(PathBuf::from(fetch_package(p, None)?.store_path))
        })
        .collect::<Result<_>>()?;
    let loaded = inspect::load(&files)?;
    let config = loaded
        .iter()
        .find_map(|l| l.config.as_ref())
        .with_context(|| format!("kernel {}: no config in its image or headers", k.name))?;
    Ok([("rxe", "RDMA_RXE"), ("siw", "RDMA_SIW")]
        .into_iter()
        .filter(|(_, sym)| config.is_enabled(sym))
        .map(|(d, _)| d.to_string())
        .collect())
}

/// Adds a new ABI's kernel and packages to the manifest (a shared package the lock
/// already pins, such as a series' kbuild, keeps its pin). Its modules are built from
/// the series' source when that is of the kernel's point release, else from the
/// point release's `linux-source` (a new `[[kernel_source]]`, hashed once fetched):
/// a stable release changes RDMA APIs (5.10.262's rdma_for_each_block).
fn add_kernel(
    m: &mut Manifest,
    s: &crate::manifest::Series,
    a: &update::Abi,
    index: &Index,
) -> Result<()> {
    let series_source = m
        .kernels
        .iter()
        .rev()
        .find(|k| k.series.as_deref() == Some(&s.linux))
        .map(|k| k.module_source.clone())
        .with_context(|| {
            format!("series {}: the lock has no kernel of it whose [[kernel_source]] the new kernel can build from", s.linux)
        })?;
    let point = a.image.version.upstream.clone();
    let ks = m.kernel_source(&series_source).expect("validated").clone();
    let ks_version = &m.package(&ks.package).expect("validated").version;
    let source = if Version::parse(ks_version).is_some_and(|v| v.upstream == point) {
        series_source
    } else if let Some(pkg) = update::source_of(index, &s.linux, &point) {
        let name = format!("linux-{point}-rdma");
        if m.kernel_source(&name).is_none() {
            let mut pin = update::pin(pkg);
            pin.name = format!("linux-source-{point}");
            m.kernel_sources.push(crate::manifest::KernelSource {
                name: name.clone(),
                package: pin.name.clone(),
                subdirs: ks.subdirs.clone(),
                hash: String::new(),
            });
            if m.package(&pin.name).is_none() {
                m.debian.packages.push(pin);
            }
        }
        name
    } else {
        series_source
    };
    for p in
        std::iter::once(&a.image)
            .chain(&a.parts)
            .chain([&a.headers, &a.headers_common, &a.kbuild])
    {
        if m.package(&p.name).is_none() {
            m.debian.packages.push(update::pin(p));
        }
    }
    m.kernels.push(Kernel {
        name: update::kernel_name(&a.abi),
        series: Some(s.linux.clone()),
        abi: Some(a.abi.clone()),
        root: s.root.clone(),
        image: a.image.name.clone(),
        image_parts: a.parts.iter().map(|p| p.name.clone()).collect(),
        headers: a.headers.name.clone(),
        headers_common: a.headers_common.name.clone(),
        kbuild: a.kbuild.name.clone(),
        module_source: source,
        rdma_in_tree: Vec::new(),
    });
    Ok(())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn run(a: Args) -> Result<ExitCode> {
    let m = Manifest::load(a.manifest.as_deref())?;
    let work = scratch()?;
    let keyring = keyring(&m, &work.0)?;
    let mut next = m.clone();
    let mut log = Changelog {
        series: Vec::new(),
        new_sources: Vec::new(),
        dropped_packages: Vec::new(),
        written: Vec::new(),
        proof: Vec::new(),
    };
    let mut added: Vec<String> = Vec::new();
    for o in &a.only {
        if !m.series.iter().any(|s| &s.linux == o) {
            anyhow::bail!(
                "--series {o}: not a [[series]] of {}",
                m.dir.join(crate::manifest::INTENT_FILE).display()
            );
        }
    }
    let mirrors = update::mirrors(&a.mirrors)?;
    for s in m
        .series
        .iter()
        .filter(|s| a.only.is_empty() || a.only.contains(&s.linux))
    {
        let mut index = Index::default();
        let mut expired = Vec::new();
        let expiry = if a.allow_expired {
            Expiry::Allow
        } else {
            Expiry::Refuse
        };
        for suite in &s.suites {
            eprint!("rdma-nix: {suite}: InRelease … ");
            let r = update::read_release(suite, &mirrors, &keyring, &work.0, now(), expiry)
                .inspect_err(|_| eprintln!("refused"))?;
            let n = update::read_packages(&r, &m.debian.arch, &work.0, &mut index)?;
            eprintln!(
                "verified{}; {n} packages",
                if r.expired { " (expired, allowed)" } else { "" }
            );
            if r.expired {
                expired.push(suite.clone());
            }
        }
        let (found, incomplete) = update::discover(s, &index);
        let locked: Vec<(&Kernel, Version)> = m
            .kernels
            .iter()
            .filter(|k| k.series.as_deref() == Some(&s.linux))
            .map(|k| {
                let v = m.package(&k.image).expect("validated").version.as_str();
                (k, Version::parse(v).expect("validated"))
            })
            .collect();
        let changes = update::plan_series(s, &locked, &found);
        let newest_locked = locked.iter().map(|(_, v)| v).max();
        let incomplete: Vec<_> = incomplete
            .into_iter()
            .filter(|i| {
                newest_locked.is_none_or(|n| Version::parse(&i.version).is_some_and(|v| &v > n))
            })
            .collect();
        for c in &changes {
            match c.status {
                AbiStatus::Added => {
                    let abi = found.iter().find(|f| f.abi == c.abi).expect("found");
                    add_kernel(&mut next, s, abi, &index)?;
                    added.push(c.kernel.clone());
                }
                AbiStatus::Retired => {
                    next.kernels.retain(|k| k.name != c.kernel);
                    next.kabi_records.retain(|r| r.kernel != c.kernel);
                }
                _ => {}
            }
        }
        let abis: Vec<AbiLog> = changes
            .into_iter()
            .map(|change| AbiLog {
                change,
                rdma_in_tree: None,
                modules: Vec::new(),
            })
            .collect();
        log.series.push(SeriesLog {
            linux: s.linux.clone(),
            suites: s.suites.clone(),
            expired,
            abis,
            incomplete,
        });
    }
    log.dropped_packages = update::unreferenced(&next);
    next.debian
        .packages
        .retain(|p| !log.dropped_packages.contains(&p.name));
    // The new kernels' packages into the store, and their config read.
    // Every package the new lock pins and the old one doesn't, into the store (the
    // generator reads headers and configs from there).
    let new: Vec<_> = next
        .debian
        .packages
        .iter()
        .filter(|p| m.package(&p.name).is_none_or(|q| q.sha256 != p.sha256))
        .collect();
    for (i, p) in new.iter().enumerate() {
        eprint!("[{}/{}] {} {} … ", i + 1, new.len(), p.name, p.version);
        let f = fetch_package(p, None).inspect_err(|_| eprintln!("failed"))?;
        eprintln!(
            "{}",
            if f.outcome == crate::fetch::Outcome::Added {
                "verified, added"
            } else {
                "in the store"
            }
        );
    }
    // New kernel sources: their subtrees extracted and hashed, then added.
    for i in 0..next.kernel_sources.len() {
        if !next.kernel_sources[i].hash.is_empty() {
            continue;
        }
        let ks = next.kernel_sources[i].clone();
        log.new_sources.push(ks.name.clone());
        eprintln!(
            "rdma-nix: {}: extracting and hashing {}",
            ks.name,
            ks.subdirs.join(", ")
        );
        let pkg = next.package(&ks.package).expect("pinned").clone();
        let hash = crate::fetch::kernel_source_hash(&ks, &pkg)?;
        next.kernel_sources[i].hash = hash.to_sri();
        crate::fetch::fetch_kernel_source(&next.kernel_sources[i], &pkg)?;
    }
    let mut in_tree = Vec::new();
    for k in next.kernels.iter().filter(|k| added.contains(&k.name)) {
        eprintln!("rdma-nix: {}: fetching and reading its packages", k.name);
        in_tree.push((k.name.clone(), rdma_in_tree(&next, k)?));
    }
    for (name, drivers) in in_tree {
        let k = next
            .kernels
            .iter_mut()
            .find(|k| k.name == name)
            .expect("added");
        k.rdma_in_tree = drivers;
    }
    let generated = emit::generate(&next)?;
    for s in &mut log.series {
        for abi in s
            .abis
            .iter_mut()
            .filter(|a| a.change.status == AbiStatus::Added)
        {
            let k = next
                .kernels
                .iter()
                .find(|k| k.name == abi.change.kernel)
                .expect("added");
            abi.rdma_in_tree = Some(k.rdma_in_tree.clone());
            abi.modules = generated
                .decisions
                .iter()
                .filter(|d| d.kernel == k.name)
                .cloned()
                .collect();
        }
    }
    let write = !(a.dry_run || a.check);
    let mut proved = true;
    if write && log.changed() {
        let mut files = generated.files;
        files.push(GeneratedFile {
            path: LOCK_FILE.into(),
            contents: next.render_lock(),
        });
        for (path, status) in emit::write_all(&m.dir, &files)? {
            if status != emit::Status::Unchanged {
                log.written.push(path.display().to_string());
            }
        }
    }
    if a.prove && !added.is_empty() {
        log.proof = prove(&m.dir, &added)?;
        proved = log.proof.iter().all(|p| p.passed);
    }
    if a.json {
        super::print_json(&log)?;
    } else {
        print_changelog(&log, write);
    }
    Ok(if !proved {
        ExitCode::FAILURE
    } else if a.check && log.changed() {
        ExitCode::from(BEHIND)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_changelog(log: &Changelog, write: bool) {
    if !log.changed() {
        println!("rdma-nix update: the lock is up to date with every tracked suite");
    }
    for s in &log.series {
        println!("linux {} ({}):", s.linux, s.suites.join(", "));
        if !s.expired.is_empty() {
            println!(
                "  read past Valid-Until (--allow-expired): {}",
                s.expired.join(", ")
            );
        }
        for a in &s.abis {
            let what = match a.change.status {
                AbiStatus::Locked => "kept",
                AbiStatus::Added => "added",
                AbiStatus::SkippedByKeep => "not added (keep policy)",
                AbiStatus::Retired => "retired",
            };
            println!(
                "  {what}: {} ({}, {})",
                a.change.kernel, a.change.abi, a.change.version
            );
            if let Some(t) = &a.rdma_in_tree {
                println!(
                    "    soft drivers in the kernel: {}",
                    if t.is_empty() {
                        "none".into()
                    } else {
                        t.join(", ")
                    }
                );
            }
            for d in &a.modules {
                match &d.reuse {
                    Some(from) => println!("    {}: reused from {from}: {}", d.driver, d.reason),
                    None => println!("    {}: rebuilt: {}", d.driver, d.reason),
                }
            }
        }
    }
    for s in &log.series {
        for i in &s.incomplete {
            println!(
                "linux {}: not added: {} ({}): {}",
                s.linux,
                update::kernel_name(&i.abi),
                i.abi,
                i.why
            );
        }
    }
    for s in &log.new_sources {
        println!("new kernel source (a new kernel's point release): {s}");
    }
    for p in &log.dropped_packages {
        println!("dropped from the lock: {p}");
    }
    for p in &log.proof {
        let word = if p.passed { "passed" } else { "FAILED" };
        println!("proof: {} {}: {word}", p.kernel, p.check);
        if !p.passed {
            for l in p.detail.lines() {
                println!("    {l}");
            }
        }
    }
    if write {
        for f in &log.written {
            println!("wrote {f}");
        }
    } else if log.changed() {
        println!("(dry run: nothing written)");
    }
}
