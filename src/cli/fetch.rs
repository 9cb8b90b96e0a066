use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::emit::roots::{pinned_packages, root_names};
use crate::fetch::{fetch_packages, FetchStats, Fetched, Outcome};
use crate::manifest::Manifest;
use crate::pin::{Pin, PinKind};

/// Downloads at a time, unless `--jobs` says otherwise.
const DEFAULT_JOBS: u8 = 6;

#[derive(clap::Args)]
pub struct Args {
    /// The intent file (default: stack.toml of the working tree); the lock is read
    /// beside it.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Only these packages (by Debian package name).
    #[arg(long = "only", value_name = "PACKAGE")]
    only: Vec<String>,
    /// Take the .deb files from this directory (pool file names) instead of apt.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// The build roots whose pinned packages to fetch (roots/NAME.toml; default: all
    /// of them, none with --only).
    #[arg(long = "root", value_name = "NAME")]
    roots: Vec<String>,
    /// The repository root (where roots/ and pkgs/generated/roots/ are; default: the
    /// manifest's directory).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Downloads at a time.
    #[arg(long, default_value_t = DEFAULT_JOBS, value_parser = clap::value_parser!(u8).range(1..=32))]
    jobs: u8,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The packages of a set fetched at once ([`fetch_packages`]), `[…]` on failure named.
fn fetch_set(
    pkgs: &[crate::manifest::DebianPackage],
    from: Option<&std::path::Path>,
    jobs: usize,
    label: &str,
) -> Result<(Vec<Fetched>, FetchStats)> {
    fetch_packages(pkgs, from, jobs, label)
        .inspect_err(|_| eprintln!("{label}: fetch failed"))
        .map_err(Into::into)
}

/// What a step's outcome is called in the progress line.
fn word(outcome: Outcome, added: &'static str) -> &'static str {
    match outcome {
        Outcome::Present => "in the store",
        Outcome::Added => added,
    }
}

/// Fetches pins: the packages at once ([`fetch_packages`]), then what is made from
/// them (trees, kernel sources, the bootstrap) in order, a progress line each.
pub(crate) fn fetch_pins(pins: &[Pin], from: Option<&std::path::Path>) -> Result<Vec<Fetched>> {
    let (mut done, _) = fetch_pin_packages(pins, from, usize::from(DEFAULT_JOBS))?;
    done.extend(make_pins(pins, from)?);
    Ok(done)
}

/// The packages among `pins`, at once.
fn fetch_pin_packages(
    pins: &[Pin],
    from: Option<&std::path::Path>,
    jobs: usize,
) -> Result<(Vec<Fetched>, FetchStats)> {
    let packages: Vec<crate::manifest::DebianPackage> = pins
        .iter()
        .filter(|p| p.kind() == PinKind::Package)
        .map(|p| p.package().clone())
        .collect();
    fetch_set(&packages, from, jobs, "pinned packages")
}

/// Pins made at a time: each is one stream (xz, a NAR hash), so one per core.
const MAKERS: usize = 2;

/// What is made from the fetched packages (trees, kernel sources, the bootstrap),
/// [`MAKERS`] at a time, a progress line each as it is done (a whole line, so that it
/// reads beside the downloads that run at the same time). In the pins' order.
fn make_pins(pins: &[Pin], from: Option<&std::path::Path>) -> Result<Vec<Fetched>> {
    let made: Vec<&Pin> = pins
        .iter()
        .filter(|p| p.kind() != PinKind::Package)
        .collect();
    // Those in the store are found with one `nix-store` call, not one each.
    let paths: Vec<String> = made.iter().map(|p| p.store_path().to_string()).collect();
    let invalid = crate::fetch::invalid_in_store(&paths)?;
    let present = |i: usize| !invalid.contains(&paths[i]);
    for i in (0..made.len()).filter(|&i| present(i)) {
        eprintln!(
            "[{}/{}] {}: in the store",
            i + 1,
            made.len(),
            label(made[i])
        );
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let work = || {
        let mut out = Vec::new();
        while !failed.load(std::sync::atomic::Ordering::Relaxed) {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(pin) = made.get(i) else { break };
            if present(i) {
                out.push((
                    i,
                    Ok(Fetched {
                        package: pin.record_name(),
                        store_path: paths[i].clone(),
                        outcome: Outcome::Present,
                    }),
                ));
                continue;
            }
            let r = make_pin(pin, from, i, made.len());
            failed.fetch_or(r.is_err(), std::sync::atomic::Ordering::Relaxed);
            out.push((i, r));
        }
        out
    };
    let mut results: Vec<(usize, Result<Fetched>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..MAKERS).map(|_| s.spawn(work)).collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join().unwrap_or_else(|_| {
                    vec![(
                        usize::MAX,
                        Err(anyhow::anyhow!("making a source tree panicked")),
                    )]
                })
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// One made pin, its progress line when done.
fn make_pin(pin: &Pin, from: Option<&std::path::Path>, i: usize, n: usize) -> Result<Fetched> {
    let (what, added) = (
        label(pin),
        match pin.kind() {
            PinKind::Package => "verified, added",
            PinKind::Tree => "unpacked, verified, added",
            PinKind::KernelSource | PinKind::Bootstrap => "extracted, verified, added",
        },
    );
    let f = pin
        .fetch(from)
        .inspect_err(|_| eprintln!("[{}/{n}] {what}: failed", i + 1))?;
    eprintln!("[{}/{n}] {what}: {}", i + 1, word(f.outcome, added));
    Ok(f)
}

/// How a pin is named in progress lines.
fn label(pin: &Pin) -> String {
    let p = pin.package();
    match pin.kind() {
        PinKind::Package => format!("{} {}", p.name, p.version),
        PinKind::Tree => format!("{} tree", p.name),
        PinKind::KernelSource => format!("{} (from {})", pin.name(), p.name),
        PinKind::Bootstrap => format!("bootstrap {} (from {})", pin.name(), p.name),
    }
}

/// The build roots' packages, a set per root.
fn fetch_roots(
    repo: &std::path::Path,
    roots: &[String],
    from: Option<&std::path::Path>,
    jobs: usize,
) -> Result<(Vec<Fetched>, Vec<FetchStats>)> {
    let (mut fetched, mut sets) = (Vec::new(), Vec::new());
    for root in roots {
        let pkgs = pinned_packages(repo, root)?;
        let (f, st) = fetch_set(&pkgs, from, jobs, &format!("root {root}"))?;
        fetched.extend(f);
        sets.push(st);
    }
    Ok((fetched, sets))
}

/// What `fetch --json` prints: the totals over every set, then each package.
#[derive(serde::Serialize)]
struct Record {
    /// Files over every set.
    files: usize,
    present: usize,
    staged: usize,
    downloaded: usize,
    /// Bytes downloaded.
    bytes: u64,
    /// The whole command's wall time.
    seconds: f64,
    /// Bytes downloaded per second of wall time, in MB/s.
    rate_mb_s: f64,
    retried: Vec<String>,
    fetched: Vec<Fetched>,
}

impl Record {
    fn new(sets: &[FetchStats], seconds: f64, fetched: Vec<Fetched>) -> Self {
        let sum = |f: fn(&FetchStats) -> usize| sets.iter().map(f).sum::<usize>();
        let bytes = sets.iter().map(|s| s.bytes).sum::<u64>();
        Record {
            files: sum(|s| s.files),
            present: sum(|s| s.present),
            staged: sum(|s| s.staged),
            downloaded: sum(|s| s.downloaded),
            bytes,
            seconds,
            rate_mb_s: if seconds > 0.0 {
                bytes as f64 / 1e6 / seconds
            } else {
                0.0
            },
            retried: sets.iter().flat_map(|s| s.retried.clone()).collect(),
            fetched,
        }
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    let m = Manifest::load(a.manifest.as_deref())?;
    for name in &a.only {
        if m.package(name).is_none() {
            bail!("--only {name}: not pinned in the manifest");
        }
    }
    // Every pin of the lock (--only: those of the named packages), packages first:
    // trees, kernel sources and the bootstrap are made from them.
    let pins: Vec<Pin> = m
        .pins()
        .into_iter()
        .filter(|p| a.only.is_empty() || a.only.contains(&p.package().name))
        .collect();
    let start = std::time::Instant::now();
    let jobs = usize::from(a.jobs);
    let (mut done, stats) = fetch_pin_packages(&pins, a.from.as_deref(), jobs)?;
    let mut sets = vec![stats];
    // The build roots' packages, by pool path (any suite), of the manifest's repository.
    let repo = a.repo.clone().unwrap_or_else(|| m.dir.clone());
    let roots = if !a.roots.is_empty() {
        a.roots.clone()
    } else if a.only.is_empty() && repo.join(crate::emit::roots::ROOTS_DIR).is_dir() {
        root_names(&repo)?
    } else {
        Vec::new()
    };
    // Trees, kernel sources and the bootstrap are made (unpacked, hashed: CPU) while
    // the roots download (the network).
    let from = a.from.as_deref();
    let (made, roots_fetched) = std::thread::scope(|s| {
        let maker = s.spawn(|| make_pins(&pins, from));
        let roots_fetched = fetch_roots(&repo, &roots, from, jobs);
        let made = maker
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("making the source trees panicked")));
        (made, roots_fetched)
    });
    done.extend(made?);
    let (fetched, stats) = roots_fetched?;
    done.extend(fetched);
    sets.extend(stats);
    let record = Record::new(&sets, start.elapsed().as_secs_f64(), done);
    eprintln!(
        "fetch: {} files, {} in the store, {} from an interrupted fetch, {} downloaded ({:.1} MB); {:.1} s in all, {:.1} MB/s",
        record.files,
        record.present,
        record.staged,
        record.downloaded,
        record.bytes as f64 / 1e6,
        record.seconds,
        record.rate_mb_s
    );
    if a.json {
        crate::cli::print_json(&record)?;
    } else {
        for f in &record.fetched {
            println!("{} {}", f.package, f.store_path);
        }
    }
    Ok(ExitCode::SUCCESS)
}
