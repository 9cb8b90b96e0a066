//! What the last `rdma-nix update` brought, on the matrix page: the record `update`
//! writes (`pkgs/generated/last-update.json`: each added kernel, its predecessor in the
//! series, its modules reused or rebuilt, the kernels retired), and each added kernel's
//! checks against its predecessor's, regressions first.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::{CheckResult, CheckStatus, Matrix, Outcome, TestStatus};
use super::ReportError;

/// Where `update` writes the record, relative to the repository.
pub const LAST_UPDATE: &str = "pkgs/generated/last-update.json";

/// One kernel an update added.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Added {
    pub kernel: String,
    /// Its release as the guest reports it (`uname -r`: `<abi>-<flavour>`).
    pub release: String,
    /// The series' newest kernel before it, and that one's release.
    pub predecessor: Option<String>,
    pub predecessor_release: Option<String>,
    /// Drivers whose build of another kernel it reuses (`siw from <kernel>`),
    /// and those built for it.
    pub reused: Vec<String>,
    pub rebuilt: Vec<String>,
}

/// The record of the last update.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LastUpdate {
    /// The `@generated` marker (first key, so the file's first line carries it).
    #[serde(rename = "@generated")]
    pub generated: String,
    pub added: Vec<Added>,
    pub retired: Vec<String>,
}

impl LastUpdate {
    pub fn new(added: Vec<Added>, retired: Vec<String>) -> Self {
        LastUpdate {
            generated: "by `rdma-nix update`; read by `rdma-nix matrix --update`".into(),
            added,
            retired,
        }
    }

    /// The file's text: the marker on the first line (what `emit::write_all` looks
    /// for before it overwrites a file), then the record.
    pub fn render(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            added: &'a [Added],
            retired: &'a [String],
        }
        let body = serde_json::to_string_pretty(&Body {
            added: &self.added,
            retired: &self.retired,
        })
        .expect("serialises");
        let marker = serde_json::to_string(&self.generated).expect("serialises");
        format!(
            "{{\"@generated\": {marker},{}\n",
            body.trim_start_matches('{')
        )
    }

    pub fn read(path: &Path) -> Result<LastUpdate, ReportError> {
        super::read::read_json(path)
    }
}

/// How one check of an added kernel compares with its predecessor's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub kernel: String,
    pub device: String,
    pub status: CheckStatus,
    pub predecessor_status: Option<CheckStatus>,
    /// Tests (hot paths and suite) that passed on the predecessor and don't here.
    pub regressions: Vec<String>,
    /// Tests that failed on the predecessor and pass here.
    pub fixes: Vec<String>,
}

/// Every test name with its outcome: hot-path tests, and each suite run's tests.
fn outcomes(c: &CheckResult) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = c
        .tests
        .iter()
        .filter(|t| t.status != TestStatus::Unsupported)
        .map(|t| (t.test.clone(), t.status == TestStatus::Pass))
        .collect();
    for r in &c.suite {
        for t in &r.tests {
            if t.outcome == Outcome::Pass || t.outcome.failed() {
                out.push((format!("{}: {}", r.run, t.test), t.outcome == Outcome::Pass));
            }
        }
    }
    out
}

impl Matrix {
    /// Each added kernel's checks against its predecessor's, on the same device;
    /// comparisons with a regression or a check not passing first.
    pub fn compare_update(&self, u: &LastUpdate) -> Vec<Comparison> {
        let mut out = Vec::new();
        for a in &u.added {
            for c in self.checks.iter().filter(|c| c.kernel == a.release) {
                let before = a.predecessor_release.as_ref().and_then(|p| {
                    self.checks
                        .iter()
                        .find(|b| &b.kernel == p && b.driver == c.driver)
                });
                let (mut regressions, mut fixes) = (Vec::new(), Vec::new());
                if let Some(b) = before {
                    let then = outcomes(b);
                    for (test, passes) in outcomes(c) {
                        match then.iter().find(|(t, _)| *t == test) {
                            Some((_, true)) if !passes => regressions.push(test),
                            Some((_, false)) if passes => fixes.push(test),
                            _ => {}
                        }
                    }
                }
                out.push(Comparison {
                    kernel: a.kernel.clone(),
                    device: c.device.clone(),
                    status: c.status,
                    predecessor_status: before.map(|b| b.status),
                    regressions,
                    fixes,
                });
            }
        }
        out.sort_by_key(|c| c.regressions.is_empty() && c.status == CheckStatus::Pass);
        out
    }

    /// Checks of added kernels that regressed or didn't pass.
    pub fn update_failures(&self, u: &LastUpdate) -> usize {
        self.compare_update(u)
            .iter()
            .filter(|c| !c.regressions.is_empty() || c.status != CheckStatus::Pass)
            .count()
    }
}
