use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::fetch::{fetch_kernel_source, fetch_package, fetch_tree, Outcome};
use crate::manifest::Manifest;

#[derive(clap::Args)]
pub struct Args {
    /// The stack manifest (default: the embedded stack.toml).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Only these packages (by Debian package name).
    #[arg(long = "only", value_name = "PACKAGE")]
    only: Vec<String>,
    /// Take the .deb files from this directory (pool file names) instead of apt.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
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
    let mut done = Vec::new();
    for (i, p) in wanted.iter().enumerate() {
        eprint!("[{}/{}] {} {} … ", i + 1, wanted.len(), p.name, p.version);
        let f = fetch_package(p, a.from.as_deref()).inspect_err(|_| eprintln!("failed"))?;
        eprintln!(
            "{}",
            match f.outcome {
                Outcome::Present => "in the store",
                Outcome::Added => "verified, added",
            }
        );
        done.push(f);
    }
    // Source trees (the pin packages build from), unpacked from their tarballs.
    let trees: Vec<_> = wanted.iter().filter(|p| p.tree.is_some()).collect();
    for (i, p) in trees.iter().enumerate() {
        eprint!("[{}/{}] {} tree … ", i + 1, trees.len(), p.name);
        if let Some(f) = fetch_tree(p).inspect_err(|_| eprintln!("failed"))? {
            eprintln!(
                "{}",
                match f.outcome {
                    Outcome::Present => "in the store",
                    Outcome::Added => "unpacked, verified, added",
                }
            );
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
        eprintln!(
            "{}",
            match f.outcome {
                Outcome::Present => "in the store",
                Outcome::Added => "extracted, verified, added",
            }
        );
        done.push(f);
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
