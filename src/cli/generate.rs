use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::emit;
use crate::manifest::Manifest;

#[derive(clap::Args)]
pub struct Args {
    /// The intent file (default: stack.toml of the working tree); the lock is read
    /// beside it.
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
    let files = emit::generate(&m)?.files;
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
