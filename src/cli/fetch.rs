use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::emit::roots::{pinned_packages, root_names};
use crate::fetch::{
    fetch_bootstrap, fetch_kernel_source, fetch_package, fetch_tree, Fetched, Outcome,
};
use crate::manifest::{DebianPackage, Manifest};

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

/// Fetches packages with a progress line each (`[i/n] name version … outcome`).
pub(crate) fn fetch_packages(
    packages: &[&DebianPackage],
    from: Option<&std::path::Path>,
) -> Result<Vec<Fetched>> {
    let mut done = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        eprint!("[{}/{}] {} {} … ", i + 1, packages.len(), p.name, p.version);
        let f = fetch_package(p, from).inspect_err(|_| eprintln!("failed"))?;
        eprintln!("{}", word(f.outcome, "verified, added"));
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
    let wanted: Vec<_> = m
        .debian
        .packages
        .iter()
        .filter(|p| a.only.is_empty() || a.only.contains(&p.name))
        .collect();
    let mut done = fetch_packages(&wanted, a.from.as_deref())?;
    // Source trees (the pin packages build from), unpacked from their tarballs.
    let trees: Vec<_> = wanted.iter().filter(|p| p.tree.is_some()).collect();
    for (i, p) in trees.iter().enumerate() {
        eprint!("[{}/{}] {} tree … ", i + 1, trees.len(), p.name);
        if let Some(f) = fetch_tree(p).inspect_err(|_| eprintln!("failed"))? {
            eprintln!("{}", word(f.outcome, "unpacked, verified, added"));
            done.push(f);
        }
    }
    // Kernel source subtrees, extracted from their (now fetched) packages.
    let sources: Vec<_> = m
        .kernel_sources
        .iter()
        .filter(|ks| a.only.is_empty() || a.only.contains(&ks.package))
        .collect();
    for (i, ks) in sources.iter().enumerate() {
        eprint!(
            "[{}/{}] {} (from {}) … ",
            i + 1,
            sources.len(),
            ks.name,
            ks.package
        );
        let pkg = m.package(&ks.package).expect("validated with the manifest");
        let f = fetch_kernel_source(ks, pkg).inspect_err(|_| eprintln!("failed"))?;
        eprintln!("{}", word(f.outcome, "extracted, verified, added"));
        done.push(f);
    }
    // The bootstrap executable, taken out of its (now fetched) package.
    if let Some(b) = m
        .bootstrap
        .as_ref()
        .filter(|b| a.only.is_empty() || a.only.contains(&b.package))
    {
        eprint!("bootstrap {} (from {}) … ", b.name, b.package);
        let pkg = m.package(&b.package).expect("validated with the manifest");
        let f = fetch_bootstrap(b, pkg).inspect_err(|_| eprintln!("failed"))?;
        eprintln!("{}", word(f.outcome, "extracted, verified, added"));
        done.push(f);
    }
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
