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
    fetch_pins_with(pins, from, usize::from(DEFAULT_JOBS))
}

fn fetch_pins_with(
    pins: &[Pin],
    from: Option<&std::path::Path>,
    jobs: usize,
) -> Result<Vec<Fetched>> {
    let packages: Vec<crate::manifest::DebianPackage> = pins
        .iter()
        .filter(|p| p.kind() == PinKind::Package)
        .map(|p| p.package().clone())
        .collect();
    let (mut done, _) = fetch_set(&packages, from, jobs, "pinned packages")?;
    let made: Vec<&Pin> = pins
        .iter()
        .filter(|p| p.kind() != PinKind::Package)
        .collect();
    for (i, pin) in made.iter().enumerate() {
        let p = pin.package();
        let (what, added) = match pin.kind() {
            PinKind::Package => (format!("{} {}", p.name, p.version), "verified, added"),
            PinKind::Tree => (format!("{} tree", p.name), "unpacked, verified, added"),
            PinKind::KernelSource => (
                format!("{} (from {})", pin.name(), p.name),
                "extracted, verified, added",
            ),
            PinKind::Bootstrap => (
                format!("bootstrap {} (from {})", pin.name(), p.name),
                "extracted, verified, added",
            ),
        };
        eprint!("[{}/{}] {what} … ", i + 1, made.len());
        let f = pin.fetch(from).inspect_err(|_| eprintln!("failed"))?;
        eprintln!("{}", word(f.outcome, added));
        done.push(f);
    }
    Ok(done)
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
    let jobs = usize::from(a.jobs);
    let mut done = fetch_pins_with(&pins, a.from.as_deref(), jobs)?;
    // The build roots' packages, by pool path (any suite), of the manifest's repository.
    let repo = a.repo.clone().unwrap_or_else(|| m.dir.clone());
    let roots = if !a.roots.is_empty() {
        a.roots.clone()
    } else if a.only.is_empty() && repo.join(crate::emit::roots::ROOTS_DIR).is_dir() {
        root_names(&repo)?
    } else {
        Vec::new()
    };
    for root in &roots {
        let pkgs = pinned_packages(&repo, root)?;
        let (fetched, _) = fetch_set(&pkgs, a.from.as_deref(), jobs, &format!("root {root}"))?;
        done.extend(fetched);
    }
    if a.json {
        crate::cli::print_json(&done)?;
    } else {
        for f in &done {
            println!("{} {}", f.package, f.store_path);
        }
    }
    Ok(ExitCode::SUCCESS)
}
