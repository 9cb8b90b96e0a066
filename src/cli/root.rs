use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::debian::IndexArgs;
use crate::debian::index::parse_relations;
use crate::emit;
use crate::emit::roots::{resolve_root, root_file, RootSpec};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Resolve a root's closure (roots/NAME.toml) from its suite's package index and
    /// write the pins to pkgs/generated/roots/NAME.nix.
    Refresh(RefreshArgs),
    /// Add packages to a root (roots/NAME.toml), then refresh it.
    Add(AddArgs),
}

#[derive(clap::Args)]
pub struct RefreshArgs {
    /// The root (roots/NAME.toml).
    name: String,
    #[command(flatten)]
    index: IndexArgs,
    /// The repository root.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// The root (roots/NAME.toml).
    name: String,
    /// Packages to add.
    #[arg(required = true)]
    packages: Vec<String>,
    #[command(flatten)]
    index: IndexArgs,
    /// The repository root.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
}

fn refresh(
    repo: &std::path::Path,
    name: &str,
    spec: &RootSpec,
    index: &IndexArgs,
    spec_changed: bool,
) -> Result<()> {
    let idx = index.load()?;
    let closure = resolve_root(repo, name, spec, &idx)?;
    for (path, status) in emit::write_all(repo, &[root_file(name, spec, &closure)])? {
        eprintln!("{:>9} {}", status.word(), path.display());
    }
    // The spec is ours to rewrite but hand-editable (no marker): written after the
    // pins, whole, by rename.
    if spec_changed {
        let dest = RootSpec::path(repo, name);
        let tmp = dest.with_extension("toml.tmp");
        std::fs::write(&tmp, spec.render(name))?;
        std::fs::rename(&tmp, &dest)?;
        eprintln!("  updated {}", dest.display());
    }
    let size: u64 = closure.packages.iter().map(|p| p.size).sum();
    eprintln!(
        "rdma-nix: root {name}: {} packages, {:.1} MiB of .deb files, {} choices",
        closure.packages.len(),
        size as f64 / (1 << 20) as f64,
        closure.choices.len()
    );
    Ok(())
}

pub fn run(c: Command) -> Result<ExitCode> {
    match c {
        Command::Refresh(a) => {
            let spec = RootSpec::load(&a.repo, &a.name)?;
            refresh(&a.repo, &a.name, &spec, &a.index, false)?;
        }
        Command::Add(a) => {
            let mut spec = RootSpec::load(&a.repo, &a.name)?;
            for p in &a.packages {
                match parse_relations(p) {
                    Ok(r) if r.len() == 1 && r[0].len() == 1 => {}
                    Ok(_) => bail!("package {p:?}: one package per argument"),
                    Err(e) => bail!("package {e}"),
                }
                if !spec.packages.contains(p) {
                    spec.packages.push(p.clone());
                }
            }
            // Resolved before anything is written: an unknown package changes nothing.
            refresh(&a.repo, &a.name, &spec, &a.index, true)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
