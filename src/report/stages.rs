//! A run's stages against what bounds them. `scripts/stack` and `scripts/test` record
//! each stage's wall time in `target/stages.jsonl` (a `{"stage": …, "seconds": …}`
//! object per line); this reads it with what the run measured beside it: the fetch's
//! record (`rdma-nix fetch --json`: files, bytes, rate) and the VM checks' own wall
//! times, whose sum spread over the VM slots (Nix's `max-jobs`) is the least the VM
//! matrix can take on this machine. Printed by `rdma-nix stages`, and a section of
//! the matrix page.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::page::{Block, Cell, Table};
use super::ReportError;

/// A stage of `scripts/stack` or `scripts/test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Setup,
    Compile,
    Lints,
    Fetch,
    Parse,
    Generate,
    Build,
    VmMatrix,
    MatrixPage,
    Tests,
}

impl Stage {
    pub fn title(self) -> &'static str {
        match self {
            Stage::Setup => "setup: packages, Nix settings, build users",
            Stage::Compile => "compile the generator",
            Stage::Lints => "format and lints",
            Stage::Fetch => "fetch: pinned inputs into the store",
            Stage::Parse => "every .nix file parses",
            Stage::Generate => "generate pkgs/generated",
            Stage::Build => "build: userspace and every kernel's modules",
            Stage::VmMatrix => "VM matrix",
            Stage::MatrixPage => "matrix page",
            Stage::Tests => "tests",
        }
    }

    /// What bounds the stage on this kind of machine.
    pub fn bound(self) -> &'static str {
        match self {
            Stage::Setup => "apt (nothing to do once installed)",
            Stage::Compile | Stage::Lints | Stage::Tests => "rustc, tests on 2 cores",
            Stage::Fetch => "the network: the bytes at the mirror's rate",
            Stage::Parse | Stage::Generate | Stage::MatrixPage => "one core",
            Stage::Build => "compilers on 2 cores (scripts/bench: against make -j2 and ninja)",
            Stage::VmMatrix => "emulation: the checks' own wall times over the VM slots",
        }
    }
}

/// One recorded stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageTime {
    pub stage: Stage,
    pub seconds: f64,
}

/// The totals of `rdma-nix fetch --json` (its other keys are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchTotals {
    pub files: usize,
    pub downloaded: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub rate_mb_s: f64,
}

impl FetchTotals {
    pub fn read(path: &Path) -> Result<Self, ReportError> {
        super::read::read_json(path)
    }
}

/// The VM checks' load: how many ran, their wall times, the VMs at a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmLoad {
    pub checks: usize,
    pub wall_sum: f64,
    pub longest: f64,
    pub slots: usize,
}

impl VmLoad {
    pub fn new(walls: &[f64], slots: usize) -> Self {
        VmLoad {
            checks: walls.len(),
            wall_sum: walls.iter().sum(),
            longest: walls.iter().copied().fold(0.0, f64::max),
            slots: slots.max(1),
        }
    }

    /// The least the matrix can take: every slot busy from start to end, and no
    /// shorter than its longest check.
    pub fn least(&self) -> f64 {
        (self.wall_sum / self.slots as f64).max(self.longest)
    }
}

/// A stage as shown: its time, what it did and, where the run measured it, the
/// least it could have taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub stage: Stage,
    pub seconds: f64,
    pub did: String,
    pub bound: &'static str,
    pub least_seconds: Option<f64>,
}

/// Reads the stages file: one object per line, every line named on error.
pub fn read(path: &Path) -> Result<Vec<StageTime>, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Io(path.to_owned(), e))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = PathBuf::from(format!("{}:{}", path.display(), n + 1));
        let de = &mut serde_json::Deserializer::from_str(line);
        let s: StageTime =
            serde_path_to_error::deserialize(de).map_err(|e| ReportError::Json(at.clone(), e))?;
        if !s.seconds.is_finite() || s.seconds < 0.0 {
            return Err(ReportError::Shape(at, format!("{} seconds", s.seconds)));
        }
        out.push(s);
    }
    if out.is_empty() {
        return Err(ReportError::Shape(
            path.to_owned(),
            "no stage recorded".into(),
        ));
    }
    Ok(out)
}

/// The rows: each stage with what the run measured of it.
pub fn rows(stages: &[StageTime], fetch: Option<&FetchTotals>, vm: Option<&VmLoad>) -> Vec<Row> {
    stages
        .iter()
        .map(|s| {
            let (did, least) = match (s.stage, fetch, vm) {
                (Stage::Fetch, Some(f), _) => (
                    format!(
                        "{} files, {} downloaded: {:.1} MB, {:.1} MB/s over the stage",
                        f.files,
                        f.downloaded,
                        f.bytes as f64 / 1e6,
                        mb_s(f.bytes, s.seconds)
                    ),
                    None,
                ),
                (Stage::VmMatrix, _, Some(v)) => (
                    format!(
                        "{} checks, {:.0} s of VM wall, {} at a time (longest {:.0} s)",
                        v.checks, v.wall_sum, v.slots, v.longest
                    ),
                    Some(v.least()),
                ),
                _ => (String::new(), None),
            };
            Row {
                stage: s.stage,
                seconds: s.seconds,
                did,
                bound: s.stage.bound(),
                least_seconds: least,
            }
        })
        .collect()
}

fn mb_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / 1e6 / seconds
    } else {
        0.0
    }
}

fn least_cell(r: &Row) -> String {
    match r.least_seconds {
        Some(l) if l > 0.0 => format!("{l:.0} s ({:.2}× it)", r.seconds / l),
        _ => "—".into(),
    }
}

/// The page's blocks: a table, and the total.
pub fn blocks(rows: &[Row]) -> Vec<Block> {
    let head = [
        "stage",
        "time (s)",
        "what it did",
        "what bounds it",
        "the least it can take",
    ];
    let cells = (rows.iter())
        .map(|r| {
            vec![
                Cell::plain(r.stage.title()),
                Cell::plain(format!("{:.0}", r.seconds)),
                Cell::plain(if r.did.is_empty() { "—" } else { &r.did }),
                Cell::plain(r.bound),
                Cell::plain(least_cell(r)),
            ]
        })
        .collect();
    let total: f64 = rows.iter().map(|r| r.seconds).sum();
    vec![
        Block::Heading("Stages".into()),
        Block::Table(Table {
            head: head.map(Into::into).into(),
            rows: cells,
        }),
        Block::Text(format!("{} stages, {total:.0} s in all.", rows.len())),
    ]
}

/// Markdown: the table and the total, under a `## Stages` heading.
pub fn markdown(rows: &[Row]) -> String {
    super::markdown::blocks(&blocks(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("stages.jsonl");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn stages_are_read_with_the_run_s_measures() {
        let (_d, p) = file(
            "{\"stage\":\"fetch\",\"seconds\":70}\n{\"stage\":\"vm-matrix\",\"seconds\":1400}\n",
        );
        let stages = read(&p).unwrap();
        let fetch = FetchTotals {
            files: 883,
            downloaded: 883,
            bytes: 1_800_000_000,
            seconds: 68.0,
            rate_mb_s: 26.5,
        };
        let vm = VmLoad::new(&[1000.0, 1200.0, 300.0], 2);
        let r = rows(&stages, Some(&fetch), Some(&vm));
        assert_eq!(
            r[0].did,
            "883 files, 883 downloaded: 1800.0 MB, 25.7 MB/s over the stage"
        );
        assert_eq!(r[1].least_seconds, Some(1250.0));
        let md = markdown(&r);
        assert!(
            md.contains(
                "| VM matrix | 1400 | 3 checks, 2500 s of VM wall, 2 at a time (longest 1200 s) |"
            ),
            "{md}"
        );
        assert!(md.contains("1250 s (1.12× it)"), "{md}");
        assert!(md.contains("2 stages, 1470 s in all."), "{md}");
        // One long check bounds the matrix more than the slots do.
        assert_eq!(VmLoad::new(&[900.0, 10.0], 2).least(), 900.0);
    }

    #[test]
    fn a_bad_line_is_named_with_its_file_and_line() {
        let (_d, p) =
            file("{\"stage\":\"fetch\",\"seconds\":1}\n{\"stage\":\"lunch\",\"seconds\":1}\n");
        let e = crate::report::chain(&read(&p).unwrap_err());
        assert!(e.contains("stages.jsonl:2") && e.contains("lunch"), "{e}");
        let (_d, p) = file("{\"stage\":\"fetch\",\"seconds\":-3}\n");
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("stages.jsonl:1") && e.contains("-3 seconds"),
            "{e}"
        );
        let (_d, p) = file("\n");
        assert!(read(&p)
            .unwrap_err()
            .to_string()
            .contains("no stage recorded"));
    }
}
