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
    /// Rebuild fan-out: walks the closures (inputDrvs, read with our parser) of a
    /// baseline and of a changed set of top-level .drv files, and lists the
    /// derivations of the changed closure that the baseline doesn't have: what a
    /// change makes Nix rebuild.
    Fanout {
        /// The baseline's top-level .drv files.
        #[arg(long, num_args = 1.., required = true)]
        base: Vec<PathBuf>,
        /// The changed set's top-level .drv files.
        #[arg(long, num_args = 1.., required = true)]
        changed: Vec<PathBuf>,
        /// Print JSON ({ "closure": N, "rebuilt": [names] }).
        #[arg(long)]
        json: bool,
    },
}

pub fn run(c: Command) -> Result<ExitCode> {
    match c {
        Command::Show { file, json } => show(&file, json),
        Command::Fanout {
            base,
            changed,
            json,
        } => fanout(&base, &changed, json),
    }
}

/// Every .drv reachable from `roots` through inputDrvs.
fn closure(roots: &[PathBuf]) -> Result<std::collections::BTreeSet<String>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = roots.iter().map(|p| p.display().to_string()).collect();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("{path}: cannot read"))?;
        let drv = Derivation::parse(&text).with_context(|| path.clone())?;
        todo.extend(drv.input_drvs.into_keys().filter(|p| !seen.contains(p)));
    }
    Ok(seen)
}

fn fanout(base: &[PathBuf], changed: &[PathBuf], json: bool) -> Result<ExitCode> {
    let before = closure(base)?;
    let after = closure(changed)?;
    // Store path names without the hash: `rdma-provider-rxe-65.0.drv`.
    let name = |p: &String| {
        p.rsplit('/')
            .next()
            .unwrap_or(p)
            .split_once('-')
            .map_or(p.clone(), |(_, n)| n.to_owned())
    };
    let rebuilt: Vec<String> = after.difference(&before).map(name).collect();
    if json {
        crate::cli::print_json(&serde_json::json!({
            "closure": after.len(),
            "rebuilt": rebuilt,
        }))?;
    } else {
        println!("{} of {} derivations change:", rebuilt.len(), after.len());
        for r in &rebuilt {
            println!("  {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
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
