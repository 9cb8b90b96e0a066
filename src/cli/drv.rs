use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::nix::derivation::{show_json, show_text};
use crate::nix::{Derivation, DrvHasher};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Parse a .drv file and print its outputs, inputs and environment, like
    /// `nix show-derivation`. Also checks that the file's output paths and its own
    /// store path are the ones Nix would compute (when its inputs are readable).
    Show {
        /// The .drv file.
        file: PathBuf,
        /// Print JSON in `nix show-derivation`'s shape.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(c: Command) -> Result<ExitCode> {
    match c {
        Command::Show { file, json } => show(&file, json),
    }
}

fn show(file: &PathBuf, json: bool) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    let drv = Derivation::parse(&text).with_context(|| format!("{}", file.display()))?;
    let drv_path = drv
        .drv_path()
        .with_context(|| format!("{}", file.display()))?
        .to_string();
    if json {
        crate::cli::print_json(&show_json(&drv_path, &drv))?;
    } else {
        print!("{}", show_text(&drv_path, &drv));
    }
    // Recompute the output paths from the derivation with its outputs blanked.
    let mut blank = drv.clone();
    for (name, o) in blank.outputs.iter_mut() {
        o.path.clear();
        if let Some(v) = blank.env.get_mut(name) {
            v.clear();
        }
    }
    let mut hasher = DrvHasher::from_store();
    match blank.fill_output_paths(&mut hasher) {
        Ok(()) if blank == drv => Ok(ExitCode::SUCCESS),
        Ok(()) => {
            eprintln!(
                "rdma-nix: warning: {}: output paths differ from the ones Nix would compute",
                file.display()
            );
            Ok(ExitCode::from(3))
        }
        Err(e) => {
            eprintln!(
                "rdma-nix: note: {}: output paths not verified: {e}",
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
