use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::emit::{self, stack};
use crate::manifest::Manifest;

#[derive(clap::Args)]
pub struct Args {
    /// The stack manifest (default: the embedded stack.toml).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Root of the output tree (the repository).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Don't write; exit 1 and show a diff when the files on disk are stale.
    #[arg(long)]
    check: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let m = Manifest::load(a.manifest.as_deref())?;
    let source = match &a.manifest {
        Some(_) => "the given manifest",
        None => "stack.toml",
    };
    let mut files = stack::all(&m, source)?;
    let manifest_dir = a
        .manifest
        .as_deref()
        .map(|p| p.parent().unwrap_or(std::path::Path::new(".")));
    let kernels = emit::kernel_modules::load_kernels(&m)?;
    let restored = emit::restore::plan(&m, &kernels, source)?;
    eprintln!(
        "rdma-nix: restored drivers (default set × kernels): {} built out of tree, {} in the kernel already, {} can't be built",
        restored.builds, restored.in_tree, restored.refused
    );
    let plan = emit::kernel_modules::plan(&m, &kernels, &restored.needs, manifest_dir, source)?;
    eprintln!(
        "rdma-nix: kernel modules: {} builds, {} reused by kABI ({} builds saved of {})",
        plan.builds,
        plan.reused,
        plan.reused,
        plan.builds + plan.reused
    );
    files.push(plan.file);
    files.push(restored.file);
    if a.check {
        let stale = emit::check_all(&a.out, &files)?;
        for (path, diff) in &stale {
            println!(
                "--- {} (on disk)\n+++ {} (generated)\n{diff}",
                path.display(),
                path.display()
            );
        }
        if !stale.is_empty() {
            eprintln!(
                "rdma-nix: {} generated file(s) are stale; run `rdma-nix generate`",
                stale.len()
            );
            return Ok(ExitCode::from(1));
        }
        eprintln!("rdma-nix: {} generated files are up to date", files.len());
        return Ok(ExitCode::SUCCESS);
    }
    for (path, status) in emit::write_all(&a.out, &files)? {
        eprintln!("{:>9} {}", status.word(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}
