//! `rdma-nix stages`: a run's stage times (`target/stages-<script>.jsonl`, written by
//! scripts/stack and scripts/test) against what bounds each one, with the fetch's
//! record and the VM checks' results where the run has them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::report::stages::{self, FetchTotals, Row, VmLoad};
use crate::report::{read_any, AnyResult};

/// The stage record and what was measured beside it (shared with `matrix`).
#[derive(clap::Args, Clone)]
pub struct Record {
    /// The run's stage times (a `{"stage": …, "seconds": …}` object per line).
    #[arg(long, value_name = "FILE")]
    pub stages: Option<PathBuf>,
    /// `rdma-nix fetch --json`'s output: the fetch stage's files, bytes and rate.
    #[arg(long, value_name = "FILE", requires = "stages")]
    pub fetch_record: Option<PathBuf>,
    /// VMs that ran at a time (Nix's max-jobs).
    #[arg(long, value_name = "N", default_value_t = 2, requires = "stages")]
    pub vm_slots: usize,
}

impl Record {
    /// The rows, with the VM checks' wall times `walls` (none when no check ran).
    pub fn rows(&self, walls: &[f64]) -> Result<Option<Vec<Row>>> {
        let Some(file) = &self.stages else {
            return Ok(None);
        };
        let run = stages::read(file)?;
        let fetch = self
            .fetch_record
            .as_deref()
            .map(FetchTotals::read)
            .transpose()?;
        let vm = (!walls.is_empty()).then(|| VmLoad::new(walls, self.vm_slots));
        Ok(Some(stages::rows(&run, fetch.as_ref(), vm.as_ref())))
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    record: Record,
    /// The VM checks' results (`checks.all`'s output), for the VM matrix's load.
    #[arg(long, value_name = "DIR")]
    checks: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.record.stages.is_none() {
        anyhow::bail!("--stages FILE is needed (scripts/stack and scripts/test write target/stages-<script>.jsonl)");
    }
    let mut walls = Vec::new();
    if let Some(dir) = &a.checks {
        for f in super::matrix::expand(dir)? {
            let wall = match read_any(&f)? {
                AnyResult::Check(c) => c.wall_s,
                AnyResult::RestoredLoad(r) => r.wall_s,
            };
            walls.extend(wall);
        }
    }
    let rows = a.record.rows(&walls)?.unwrap_or_default();
    if a.json {
        crate::cli::print_json(&rows)?;
    } else {
        print!("{}", stages::markdown(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
