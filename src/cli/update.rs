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
use crate::fetch::{expected_store_path, fetch_package};
use crate::kernel::inspect;
use crate::manifest::{DebianPackage, Kernel, Manifest, Series, LOCK_FILE};
use crate::pin::{Pin, PinKind};
use crate::report::update::{Added, LastUpdate, LAST_UPDATE};
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
    /// Only these series (their `linux`, e.g. 6.1); the others' kernels, and the
    /// upstream releases unless --upstream, stay as locked.
    #[arg(long = "series", value_name = "LINUX")]
    only: Vec<String>,
    /// Only the upstream releases (`[upstream]`: rdma-core, perftest), with the
    /// series named by --series if any.
    #[arg(long)]
    upstream: bool,
    /// Read the indexes from this archive root (an http(s) or file URL) instead of
    /// the mirrors of the machine's apt; repeatable, tried in order.
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// Also refresh each series' build root (roots/NAME.toml) from the suites read
    /// (their security and updates suites included): every derivation built in it
    /// changes, so only on request.
    #[arg(long)]
    roots: bool,
}

/// An upstream release `[upstream]` brought: perftest moved, or an rdma-core release
/// added beside the pinned ones.
#[derive(Serialize)]
struct ReleaseLog {
    package: String,
    /// The release it replaces (perftest's previous one, a previously tracked
    /// rdma-core release).
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    to: String,
    suite_version: String,
}

/// A build root refreshed by `--roots`.
#[derive(Serialize)]
struct RootLog {
    name: String,
    packages: usize,
    /// Packages whose pin changed (name: old → new version), added or dropped.
    changed: Vec<String>,
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

#[derive(Serialize, Default)]
struct Changelog {
    series: Vec<SeriesLog>,
    /// Kernel sources new to the lock (a new kernel's point release), by name.
    new_sources: Vec<String>,
    /// Kernel sources and packages dropped from the lock with the kernels retired.
    dropped: Vec<String>,
    /// Files written (none for --dry-run, --check or when nothing changed).
    written: Vec<String>,
    /// Upstream releases new to the lock (`[upstream]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    releases: Vec<ReleaseLog>,
    /// Upstream release URLs a pinned tree gained (before Debian's copy), by pin.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    release_urls: Vec<String>,
    /// With --roots: each series' build root, re-resolved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roots: Vec<RootLog>,
    /// Module decisions (kABI) new to the lock for kernels it had already (a build
    /// they reused retired, or a lock without decisions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    redecided: Vec<Decision>,
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

/// `nix-build` of the offline set in `dir` with `args`.
fn nix_build(dir: &Path, args: &[String]) -> Result<std::process::Output> {
    std::process::Command::new("nix-build")
        .current_dir(dir)
        .args(["--option", "substituters", "", "pkgs/offline"])
        .args(args)
        .output()
        .context("cannot run nix-build")
}

/// Builds every added kernel's checks in one `nix-build --keep-going` (two VMs at a
/// time, as the project's Nix settings allow), then tells each check's outcome by
/// whether its output is valid in the store.
fn prove(dir: &Path, kernels: &[String]) -> Result<Vec<Proof>> {
    let attrs: Vec<(String, &str, String)> = kernels
        .iter()
        .flat_map(|k| PROOF_CHECKS.map(|c| (k.clone(), c, format!("checks.\"{k}\".{c}"))))
        .collect();
    eprintln!(
        "rdma-nix: proving {} checks of {} new kernels",
        attrs.len(),
        kernels.len()
    );
    let mut args = vec![
        "-Q".to_string(),
        "--no-out-link".into(),
        "--keep-going".into(),
    ];
    for (_, _, attr) in &attrs {
        args.extend(["-A".into(), attr.clone()]);
    }
    let built = nix_build(dir, &args)?;
    let log = String::from_utf8_lossy(&built.stderr);
    let mut out = Vec::new();
    for (kernel, check, attr) in attrs {
        let drv = std::process::Command::new("nix-instantiate")
            .current_dir(dir)
            .args(["pkgs/offline", "-A", &attr])
            .output()
            .context("cannot run nix-instantiate")?;
        let drv = String::from_utf8_lossy(&drv.stdout).trim().to_string();
        let output = std::process::Command::new("nix-store")
            .args(["--query", "--outputs", &drv])
            .output()
            .context("cannot run nix-store")?;
        let output = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let passed = !output.is_empty() && Path::new(&output).exists();
        let detail = if passed {
            output
        } else {
            failure_of(&log, &drv)
        };
        eprintln!(
            "rdma-nix: {kernel} {check}: {}",
            if passed { "passed" } else { "FAILED" }
        );
        out.push(Proof {
            kernel,
            check: check.into(),
            passed,
            detail,
        });
    }
    Ok(out)
}

/// What nix-build printed of a failed derivation: its error line and the log lines
/// after it (or, when it never built, that a dependency failed).
fn failure_of(log: &str, drv: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    match lines
        .iter()
        .position(|l| l.contains("error: builder for") && l.contains(drv))
    {
        Some(i) => lines[i..]
            .iter()
            .take_while(|l| l.starts_with("       ") || l.contains(drv))
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
        None => format!("{drv}: not built (a dependency failed, or evaluation did)"),
    }
}

impl Changelog {
    /// Whether kernels were added or retired.
    fn moved(&self) -> bool {
        self.series
            .iter()
            .flat_map(|s| &s.abis)
            .any(|a| matches!(a.change.status, AbiStatus::Added | AbiStatus::Retired))
    }

    fn changed(&self) -> bool {
        self.moved()
            || !self.redecided.is_empty()
            || !self.releases.is_empty()
            || !self.release_urls.is_empty()
            || self.roots.iter().any(|r| !r.changed.is_empty())
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
/// and headers (fetched into the store already).
fn rdma_in_tree(m: &Manifest, k: &Kernel) -> Result<Vec<String>> {
    let files: Vec<PathBuf> = std::iter::once(&k.image)
        .chain(&k.image_parts)
        .chain([&k.headers])
        .map(|n| PathBuf::from(expected_store_path(m.package(n).expect("pinned")).to_string()))
        .collect();
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
fn add_kernel(m: &mut Manifest, s: &Series, a: &update::Abi, index: &Index) -> Result<()> {
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

/// Reads one series' suites (every index verified) into one index.
fn read_suites(
    s: &Series,
    arch: &str,
    a: &Args,
    mirrors: &[String],
    keyring: &Path,
    work: &Path,
) -> Result<(Index, Vec<String>)> {
    let mut index = Index::default();
    let mut expired = Vec::new();
    let expiry = if a.allow_expired {
        Expiry::Allow
    } else {
        Expiry::Refuse
    };
    for suite in &s.suites {
        eprint!("rdma-nix: {suite}: InRelease … ");
        let r = update::read_release(suite, mirrors, keyring, work, now(), expiry)
            .inspect_err(|_| eprintln!("refused"))?;
        let n = update::read_packages(&r, arch, work, &mut index)?;
        eprintln!(
            "verified{}; {n} packages",
            if r.expired { " (expired, allowed)" } else { "" }
        );
        if r.expired {
            expired.push(suite.clone());
        }
    }
    Ok((index, expired))
}

/// `[upstream]`: the newest rdma-core and perftest releases of its suites (their
/// source packages' upstream tarballs, each `Sources.xz` checked against its verified
/// Release) into `next`: perftest's pin moves to the newest; an rdma-core release none
/// of the pinned ones is gets added as the tracked one (replacing an older tracked
/// one). The new pins' trees are hashed once fetched ([`materialize`]).
fn track_upstream(
    next: &mut Manifest,
    a: &Args,
    mirrors: &[String],
    keyring: &Path,
    work: &Path,
) -> Result<Vec<ReleaseLog>> {
    use crate::debian::sources;
    use crate::manifest::{RdmaCoreRelease, PERFTEST_PIN};
    let Some(up) = next.upstream.clone() else {
        return Ok(Vec::new());
    };
    let expiry = if a.allow_expired {
        Expiry::Allow
    } else {
        Expiry::Refuse
    };
    let mut found = Vec::new();
    for suite in &up.suites {
        eprint!("rdma-nix: {suite}: InRelease … ");
        let r = update::read_release(suite, mirrors, keyring, work, now(), expiry)
            .inspect_err(|_| eprintln!("refused"))?;
        let n = found.len();
        found.extend(update::read_sources(&r, work, &["rdma-core", "perftest"])?);
        eprintln!(
            "verified{}; {} rdma-core and perftest releases",
            if r.expired { " (expired, allowed)" } else { "" },
            found.len() - n
        );
    }
    let pin = |r: &sources::UpstreamRelease, name: String| DebianPackage {
        name,
        version: r.upstream(),
        path: r.path.clone(),
        sha256: r.sha256.clone(),
        // Hashed once fetched.
        tree: Some(String::new()),
        upstream: Vec::new(),
    };
    let mut log = Vec::new();
    // Newer by upstream version only: an older mirror never moves a pin back.
    let newer = |v: &str, than: &str| match (Version::parse(v), Version::parse(than)) {
        (Some(a), Some(b)) => a > b,
        _ => false,
    };
    if let Some(r) = sources::newest(&found, "perftest") {
        let current = next.package(PERFTEST_PIN).map(|p| p.version.clone());
        if current.as_deref().is_none_or(|c| newer(&r.upstream(), c)) {
            next.debian.packages.retain(|p| p.name != PERFTEST_PIN);
            next.debian.packages.push(pin(r, PERFTEST_PIN.into()));
            log.push(ReleaseLog {
                package: "perftest".into(),
                from: current,
                to: r.upstream(),
                suite_version: r.debian_version.clone(),
            });
        }
    }
    if let Some(r) = sources::newest(&found, "rdma-core") {
        let v = r.upstream();
        if next.rdma_core.iter().all(|x| newer(&v, &x.version)) {
            let from = next
                .rdma_core
                .iter()
                .find(|x| x.tracked)
                .map(|x| x.version.clone());
            next.rdma_core.retain(|x| !x.tracked);
            let name = format!("rdma-core-{v}-orig");
            if next.package(&name).is_none() {
                next.debian.packages.push(pin(r, name.clone()));
            }
            next.rdma_core.push(RdmaCoreRelease {
                version: v.clone(),
                source: name,
                default: false,
                tracked: true,
            });
            log.push(ReleaseLog {
                package: "rdma-core".into(),
                from,
                to: v,
                suite_version: r.debian_version.clone(),
            });
        }
    }
    Ok(log)
}

/// `--roots`: the series' build root resolved again from the suites read, and what
/// changed against its pins.
fn refresh_root(dir: &Path, s: &Series, index: &Index) -> Result<(RootLog, GeneratedFile)> {
    use crate::emit::roots::{pinned_packages, resolve_root, root_file, RootSpec};
    let spec = RootSpec::load(dir, &s.root)?;
    let closure = resolve_root(dir, &s.root, &spec, index)?;
    let before = pinned_packages(dir, &s.root).unwrap_or_default();
    let mut changed = Vec::new();
    for p in &closure.packages {
        match before.iter().find(|b| b.name == p.name) {
            Some(b) if b.sha256 == p.sha256 => {}
            Some(b) => changed.push(format!("{}: {} → {}", p.name, b.version, p.version)),
            None => changed.push(format!("{}: added ({})", p.name, p.version)),
        }
    }
    for b in &before {
        if !closure.packages.iter().any(|p| p.name == b.name) {
            changed.push(format!("{}: dropped ({})", b.name, b.version));
        }
    }
    let log = RootLog {
        name: s.root.clone(),
        packages: closure.packages.len(),
        changed,
    };
    Ok((log, root_file(&s.root, &spec, &closure)))
}

/// A kernel an update added, and its predecessor in the series (the newest locked
/// kernel older than it).
type AddedKernel = (String, Option<String>);

/// One series: what the suites have against what the lock has, applied to `next`
/// (kernels added and retired); returns its changelog and the kernels added.
fn update_series(
    m: &Manifest,
    next: &mut Manifest,
    s: &Series,
    index: &Index,
    expired: Vec<String>,
) -> Result<(SeriesLog, Vec<AddedKernel>)> {
    let (found, incomplete) = update::discover(s, index);
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
    let incomplete = incomplete
        .into_iter()
        .filter(|i| {
            newest_locked.is_none_or(|n| Version::parse(&i.version).is_some_and(|v| &v > n))
        })
        .collect();
    let mut added = Vec::new();
    for c in &changes {
        match c.status {
            AbiStatus::Added => {
                let abi = found.iter().find(|f| f.abi == c.abi).expect("found");
                add_kernel(next, s, abi, index)?;
                // Its predecessor: the series' newest locked kernel older than it.
                let before = locked
                    .iter()
                    .filter(|(_, v)| *v < abi.image.version)
                    .max_by(|a, b| a.1.cmp(&b.1))
                    .map(|(k, _)| k.name.clone());
                added.push((c.kernel.clone(), before));
            }
            AbiStatus::Retired => {
                next.kernels.retain(|k| k.name != c.kernel);
                // Its decisions go, and those reusing its builds are made again.
                next.modules.retain(|d| d.kernel != c.kernel);
            }
            AbiStatus::Locked | AbiStatus::SkippedByKeep => {}
        }
    }
    let abis = changes
        .into_iter()
        .map(|change| AbiLog {
            change,
            rdma_in_tree: None,
            modules: Vec::new(),
        })
        .collect();
    let log = SeriesLog {
        linux: s.linux.clone(),
        suites: s.suites.clone(),
        expired,
        abis,
        incomplete,
    };
    Ok((log, added))
}

/// Makes the new lock's inputs real: its new packages fetched into the store, its new
/// kernel sources extracted, hashed and added, each added kernel's soft drivers read
/// from its config. Returns the new kernel sources' names.
fn materialize(m: &Manifest, next: &mut Manifest, added: &[String]) -> Result<Vec<String>> {
    let before: Vec<String> = m
        .pins()
        .iter()
        .map(|p| p.store_path().to_string())
        .collect();
    let new: Vec<Pin> = next
        .pins()
        .into_iter()
        .filter(|p| p.kind() == PinKind::Package && !before.contains(&p.store_path().to_string()))
        .collect();
    super::fetch::fetch_pins(&new, None)?;
    // New source tarballs' trees (an upstream release `[upstream]` brought).
    for i in 0..next.debian.packages.len() {
        if next.debian.packages[i].tree.as_deref() == Some("") {
            let p = next.debian.packages[i].clone();
            eprintln!("rdma-nix: {}: unpacking and hashing its tree", p.name);
            next.debian.packages[i].tree = Some(crate::fetch::tree_hash(&p)?.to_sri());
            crate::fetch::fetch_tree(&next.debian.packages[i])?;
        }
    }
    let mut new_sources = Vec::new();
    for i in 0..next.kernel_sources.len() {
        if !next.kernel_sources[i].hash.is_empty() {
            continue;
        }
        let ks = next.kernel_sources[i].clone();
        new_sources.push(ks.name.clone());
        eprintln!(
            "rdma-nix: {}: extracting and hashing {}",
            ks.name,
            ks.subdirs.join(", ")
        );
        let pkg = next.package(&ks.package).expect("pinned").clone();
        next.kernel_sources[i].hash = crate::fetch::kernel_source_hash(&ks, &pkg)?.to_sri();
        crate::fetch::fetch_kernel_source(&next.kernel_sources[i], &pkg)?;
    }
    let mut in_tree = Vec::new();
    for k in next.kernels.iter().filter(|k| added.contains(&k.name)) {
        in_tree.push((k.name.clone(), rdma_in_tree(next, k)?));
    }
    for (name, drivers) in in_tree {
        let k = next
            .kernels
            .iter_mut()
            .find(|k| k.name == name)
            .expect("added");
        k.rdma_in_tree = drivers;
    }
    Ok(new_sources)
}

/// Upstream's release URLs for the pinned trees that have none yet and can have them
/// ([`update::release_urls`]), read from the trees in the store; the pins that gained one.
fn add_release_urls(next: &mut Manifest) -> Result<Vec<String>> {
    let mut gained = Vec::new();
    for p in next
        .debian
        .packages
        .iter_mut()
        .filter(|p| p.upstream.is_empty())
    {
        let Some(tree) = crate::fetch::tree_store_path(p) else {
            continue;
        };
        let urls = update::release_urls(&p.name, &p.version, Path::new(&tree.to_string()))?;
        if !urls.is_empty() {
            p.upstream = urls;
            gained.push(p.name.clone());
        }
    }
    Ok(gained)
}

/// The lock's module decisions brought up to date (kABI): the builds a decision is
/// made from are built (or found in the store) by nix-build of this tree's offline
/// package set, `kernelPackagesOwn.<kernel>`: only kernels of the lock as it was.
fn decide_modules(
    m: &Manifest,
    next: &Manifest,
    inputs: &emit::KernelInputs,
) -> Result<Vec<Decision>> {
    let (loaded, restored) = (&inputs.kernels, &inputs.restored);
    let mut cache: std::collections::HashMap<(String, String), PathBuf> = Default::default();
    let mut build = |kernel: &str, driver: &str| -> Result<Option<emit::kernel_modules::Build>> {
        // A kernel this update adds: this tree's package set can't build it yet.
        if !m.kernels.iter().any(|k| k.name == kernel) {
            return Ok(None);
        }
        let key = (kernel.to_string(), driver.to_string());
        if !cache.contains_key(&key) {
            let attr = match driver {
                "rxe" | "siw" => format!("kernelPackagesOwn.\"{kernel}\".rdma-{driver}"),
                d => format!("kernelPackagesOwn.\"{kernel}\".rdmaRestored.{d}"),
            };
            eprintln!("rdma-nix: kABI: {kernel}'s own {driver} build (nix-build -A {attr})");
            let out = nix_build(&m.dir, &["--no-out-link".into(), "-A".into(), attr.clone()])?;
            anyhow::ensure!(
                out.status.success(),
                "nix-build -A {attr} in {}: {}",
                m.dir.display(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            cache.insert(key.clone(), PathBuf::from(path));
        }
        emit::kernel_modules::Build::read(&cache[&key], driver).map(Some)
    };
    emit::kernel_modules::decide(next, loaded, &restored.needs, &mut build)
}

/// The record of this update for the matrix page: each added kernel with its
/// predecessor and its modules reused or rebuilt, and the kernels retired.
fn last_update(
    m: &Manifest,
    next: &Manifest,
    log: &Changelog,
    predecessors: &[AddedKernel],
    decisions: &[Decision],
) -> LastUpdate {
    let release = |m: &Manifest, name: &str| {
        m.kernels
            .iter()
            .find(|k| k.name == name)
            .map(|k| k.image.trim_start_matches("linux-image-").to_string())
    };
    let added = predecessors
        .iter()
        .map(|(kernel, before)| {
            let mine = decisions.iter().filter(|d| &d.kernel == kernel);
            Added {
                kernel: kernel.clone(),
                release: release(next, kernel).unwrap_or_default(),
                predecessor: before.clone(),
                predecessor_release: before.as_deref().and_then(|b| release(m, b)),
                reused: mine
                    .clone()
                    .filter_map(|d| d.reuse.as_ref().map(|r| format!("{} from {r}", d.driver)))
                    .collect(),
                rebuilt: mine
                    .filter(|d| d.reuse.is_none())
                    .map(|d| d.driver.clone())
                    .collect(),
            }
        })
        .collect();
    let retired = log
        .series
        .iter()
        .flat_map(|s| &s.abis)
        .filter(|a| a.change.status == AbiStatus::Retired)
        .map(|a| a.change.kernel.clone())
        .collect();
    LastUpdate::new(added, retired)
}

/// Each added kernel's soft drivers and module decisions into the changelog.
fn annotate(log: &mut Changelog, next: &Manifest, decisions: &[Decision]) {
    for abi in log
        .series
        .iter_mut()
        .flat_map(|s| &mut s.abis)
        .filter(|a| a.change.status == AbiStatus::Added)
    {
        let k = next
            .kernels
            .iter()
            .find(|k| k.name == abi.change.kernel)
            .expect("added");
        abi.rdma_in_tree = Some(k.rdma_in_tree.clone());
        abi.modules = decisions
            .iter()
            .filter(|d| d.kernel == k.name)
            .cloned()
            .collect();
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    let m = Manifest::load(a.manifest.as_deref())?;
    for o in &a.only {
        if !m.series.iter().any(|s| &s.linux == o) {
            anyhow::bail!(
                "--series {o}: not a [[series]] of {}",
                m.dir.join(crate::manifest::INTENT_FILE).display()
            );
        }
    }
    let work = scratch()?;
    let keyring = keyring(&m, &work.0)?;
    let mirrors = update::mirrors(&a.mirrors)?;
    let mut next = m.clone();
    let mut log = Changelog::default();
    let mut added = Vec::new();
    let mut predecessors = Vec::new();
    let mut root_files = Vec::new();
    let all = a.only.is_empty() && !a.upstream;
    let wanted = m.series.iter().filter(|s| all || a.only.contains(&s.linux));
    for s in wanted {
        let (index, expired) = read_suites(s, &m.debian.arch, &a, &mirrors, &keyring, &work.0)?;
        if a.roots && !log.roots.iter().any(|r| r.name == s.root) {
            let (root_log, file) = refresh_root(&m.dir, s, &index)?;
            log.roots.push(root_log);
            root_files.push(file);
        }
        let (series_log, series_added) = update_series(&m, &mut next, s, &index, expired)?;
        log.series.push(series_log);
        predecessors.extend(series_added.iter().cloned());
        added.extend(series_added.into_iter().map(|(k, _)| k));
    }
    if all || a.upstream {
        log.releases = track_upstream(&mut next, &a, &mirrors, &keyring, &work.0)?;
    }
    log.dropped = update::drop_unreferenced(&mut next);
    update::sort_kernels(&mut next);
    log.new_sources = materialize(&m, &mut next, &added)?;
    log.release_urls = add_release_urls(&mut next)?;
    // The new lock's kernels read once: for the module decisions and the rendering.
    let inputs = emit::KernelInputs::load(&next)?;
    next.modules = decide_modules(&m, &next, &inputs)?;
    log.redecided = next
        .modules
        .iter()
        .filter(|d| !added.contains(&d.kernel) && !m.modules.contains(d))
        .cloned()
        .collect();
    let generated = emit::generate_with(&next, inputs)?;
    annotate(&mut log, &next, &generated.decisions);
    let write = !(a.dry_run || a.check);
    if write && log.changed() {
        let mut files = generated.files;
        files.extend(root_files);
        files.push(GeneratedFile {
            path: LOCK_FILE.into(),
            contents: next.render_lock(),
        });
        // The matrix page's last update is the last that moved the matrix: one that
        // only redecided modules keeps it.
        if log.moved() {
            files.push(GeneratedFile {
                path: LAST_UPDATE.into(),
                contents: last_update(&m, &next, &log, &predecessors, &generated.decisions)
                    .render(),
            });
        }
        for (path, status) in emit::write_all(&m.dir, &files)? {
            if status != emit::Status::Unchanged {
                log.written.push(path.display().to_string());
            }
        }
        // The refreshed roots' packages into the store, as `rdma-nix fetch` would.
        for r in log.roots.iter().filter(|r| !r.changed.is_empty()) {
            let pins = crate::emit::roots::pinned_packages(&m.dir, &r.name)?;
            let pins: Vec<Pin> = pins.iter().map(Pin::Package).collect();
            eprintln!("rdma-nix: root {}: fetching its packages", r.name);
            super::fetch::fetch_pins(&pins, None)?;
        }
    }
    if a.prove && !added.is_empty() {
        log.proof = prove(&m.dir, &added)?;
    }
    if a.json {
        super::print_json(&log)?;
    } else {
        print_changelog(&log, write);
    }
    Ok(if log.proof.iter().any(|p| !p.passed) {
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
    for r in &log.releases {
        match &r.from {
            Some(f) => println!("{}: {f} → {} ({})", r.package, r.to, r.suite_version),
            None => println!("{}: {} added ({})", r.package, r.to, r.suite_version),
        }
    }
    for p in &log.release_urls {
        println!("{p}: upstream's release URL added before Debian's copy");
    }
    for r in &log.roots {
        println!(
            "root {}: {} packages, {} changed{}",
            r.name,
            r.packages,
            r.changed.len(),
            if r.changed.is_empty() { "" } else { ":" }
        );
        for c in &r.changed {
            println!("  {c}");
        }
    }
    for d in &log.redecided {
        match &d.reuse {
            Some(from) => println!(
                "decided: {} on {}: reused from {from}: {}",
                d.driver, d.kernel, d.reason
            ),
            None => println!("decided: {} on {}: built: {}", d.driver, d.kernel, d.reason),
        }
    }
    for s in &log.new_sources {
        println!("new kernel source (a new kernel's point release): {s}");
    }
    for p in &log.dropped {
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
