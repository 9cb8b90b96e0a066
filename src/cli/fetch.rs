use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::emit::roots::{pinned_packages, root_names};
use crate::fetch::{fetch_package, Fetched, Outcome};
use crate::manifest::Manifest;
use crate::pin::{Pin, PinKind};

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
    /// The repository root (where roots/ and pkgs/generated/roots/ are).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// What a step's outcome is called in the progress line.
fn word(outcome: Outcome, added: &'static str) -> &'static str {
    match outcome {
        Outcome::Present => "in the store",
        Outcome::Added => added,
    }
}

/// Fetches pins in order with a progress line each (`[i/n] what … outcome`).
pub(crate) fn fetch_pins(pins: &[Pin], from: Option<&std::path::Path>) -> Result<Vec<Fetched>> {
    let mut done = Vec::new();
    for (i, pin) in pins.iter().enumerate() {
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
        eprint!("[{}/{}] {what} … ", i + 1, pins.len());
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
    let mut done = fetch_pins(&pins, a.from.as_deref())?;
    // The build roots' packages, by pool path (any suite).
    let roots = if !a.roots.is_empty() {
        a.roots.clone()
    } else if a.only.is_empty() && a.repo.join(crate::emit::roots::ROOTS_DIR).is_dir() {
        root_names(&a.repo)?
    } else {
        Vec::new()
    };
    for root in &roots {
        let pkgs = pinned_packages(&a.repo, root)?;
        let (mut present, mut added) = (0, 0);
        for (i, p) in pkgs.iter().enumerate() {
            let f = fetch_package(p, a.from.as_deref())
                .inspect_err(|_| eprintln!("root {root}: {} {} failed", p.name, p.version))?;
            match f.outcome {
                Outcome::Present => present += 1,
                Outcome::Added => {
                    added += 1;
                    eprintln!(
                        "[root {root} {}/{}] {} {} verified, added",
                        i + 1,
                        pkgs.len(),
                        p.name,
                        p.version
                    );
                }
            }
            done.push(f);
        }
        eprintln!(
            "root {root}: {} packages, {present} in the store, {added} added",
            pkgs.len()
        );
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
