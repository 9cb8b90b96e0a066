use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::emit::atomic_write;
use crate::report::update::LastUpdate;
use crate::report::{html, markdown, read_any, AnyResult, Matrix};

#[derive(clap::Args)]
pub struct Args {
    /// VM checks' result.json files, or directories holding them one level down
    /// (`offline.checks.all`'s output: <kernel>-<driver>/result.json).
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Write the table as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    md: Option<PathBuf>,
    /// Write an HTML page (table and SVG charts of bandwidth and latency) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print the matrix as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// The last update's record (pkgs/generated/last-update.json): a section comparing
    /// each added kernel's checks with its predecessor's, regressions first; exits 1
    /// when one regressed.
    #[arg(long, value_name = "FILE")]
    update: Option<PathBuf>,
    #[command(flatten)]
    stages: super::stages::Record,
}

pub(super) fn expand(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut found = Vec::new();
    for e in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
        let r = e?.path().join("result.json");
        if r.is_file() {
            found.push(r);
        }
    }
    if found.is_empty() {
        bail!("{}: a directory without */result.json", path.display());
    }
    found.sort();
    Ok(found)
}

/// Exits 1 when a check didn't pass (after writing the files), 0 otherwise.
pub fn run(a: Args) -> Result<ExitCode> {
    let (mut checks, mut restored) = (Vec::new(), Vec::new());
    for p in &a.results {
        for f in expand(p)? {
            match read_any(&f)? {
                AnyResult::Check(c) => checks.push(*c),
                AnyResult::RestoredLoad(r) => restored.push(r),
            }
        }
    }
    let m = Matrix::new(checks).with_restored(restored);
    let update = a.update.as_deref().map(LastUpdate::read).transpose()?;
    let walls: Vec<f64> = (m.checks.iter().map(|c| c.wall_s))
        .chain(m.restored.iter().map(|r| r.wall_s))
        .flatten()
        .collect();
    let stage_rows = a.stages.rows(&walls)?;
    let page = m.page(update.as_ref(), stage_rows.as_deref());
    if let Some(f) = &a.md {
        atomic_write(f, markdown::render(&page).as_bytes())?;
    }
    if let Some(f) = &a.html {
        atomic_write(f, html::render(&page).as_bytes())?;
    }
    if a.json {
        crate::cli::print_json(&m)?;
    } else {
        print!("{}", markdown::render(&page));
    }
    let regressed = update.as_ref().map_or(0, |u| m.update_failures(u));
    Ok(if m.failed() == 0 && regressed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
