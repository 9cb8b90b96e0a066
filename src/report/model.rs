//! The VM checks' results as the report holds them, whatever shape `result.json`
//! came in (read.rs): statuses as enums, a check's tests, rdma-core's suite runs, the
//! block storage paths, the restored-drivers load checks, and the matrix of them all
//! with what it derives (failures and their reasons, what changed between kernels).

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a whole check ended (the runner's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// No result within the runner's time limit.
    Timeout,
    /// The kernel panicked before the test reported.
    Panic,
    /// QEMU exited before the test reported.
    Error,
}

/// How one hot-path test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Pass,
    Fail,
    /// Not a feature of the device (UC or UD over iWARP, say), as the payload expected.
    Unsupported,
}

/// How one test of rdma-core's suite ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Skip,
    Fail,
    Error,
    /// Not run: excluded by the expectations for this kernel × device.
    Excluded,
}

/// A suite run's or a block storage path's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathStatus {
    Pass,
    Fail,
    /// Recorded as not possible on the device (RNBD over iWARP).
    Unsupported,
}

macro_rules! display_as_serde_name {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let v = serde_json::to_value(self).expect("a unit variant serialises");
                f.write_str(v.as_str().expect("a unit variant is a string"))
            }
        }
    )*};
}
display_as_serde_name!(CheckStatus, TestStatus, Outcome, PathStatus);

impl Outcome {
    pub fn failed(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Error)
    }
}

/// One test of the payload on one device.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TestResult {
    pub test: String,
    pub status: TestStatus,
    pub seconds: Option<f64>,
    /// perftest's figures (bw_avg_mib_s, lat_typical_us, …).
    pub figures: Vec<(String, f64)>,
    /// Why it didn't pass (the payload's reason, or a figure missing or zero).
    pub reason: Option<String>,
}

/// The figures a perftest pass must carry, each above zero: a pass carries its
/// evidence.
pub fn required_figures(test: &str) -> &'static [&'static str] {
    match test {
        "ib_send_bw" | "ib_write_bw" | "ib_read_bw" => {
            &["bw_peak_mib_s", "bw_avg_mib_s", "msg_rate_mpps"]
        }
        "ib_read_lat" | "ib_write_lat" | "ib_send_lat" => {
            &["lat_min_us", "lat_typical_us", "lat_avg_us"]
        }
        _ => &[],
    }
}

impl TestResult {
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// One check: a kernel and a device.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub file: PathBuf,
    /// The kernel release the guest ran (`uname -r`).
    pub kernel: String,
    /// Which check of the kernel it is (`hotpaths-rxe`, `rping-siw-server-held-3s`):
    /// its name without the kernel's.
    pub check: String,
    pub device: String,
    pub driver: String,
    pub status: CheckStatus,
    pub reason: Option<String>,
    pub wall_s: Option<f64>,
    pub negative_pabi: Option<String>,
    pub tests: Vec<TestResult>,
    /// rdma-core's suite, one entry per run (`suite`, siw's `cm`, rxe's `ext-qp-late-recv` probe).
    pub suite: Vec<SuiteRun>,
    pub nvmeof: Option<BlockPath>,
    /// RNBD over RTRS over the device (checks/payload/rdma-rnbd.sh).
    pub rnbd: Option<BlockPath>,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.status == CheckStatus::Pass
    }

    pub fn test(&self, name: &str) -> Option<&TestResult> {
        self.tests.iter().find(|t| t.test == name)
    }
}

/// One run of rdma-core's own test suite (checks/payload/rdma-suite.py).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SuiteRun {
    pub run: String,
    /// Pass when the outcomes match the expectations of the kernel series × device.
    pub status: PathStatus,
    pub passed: usize,
    /// Ran and skipped themselves (no such feature on the device, say).
    pub skipped: usize,
    /// Not run at all: excluded by the expectations for this kernel × device,
    /// each with its reason (tests for other hardware, a known kernel bug).
    pub excluded: usize,
    pub failed: usize,
    /// What didn't match the expectations.
    pub problems: Vec<String>,
    pub tests: Vec<SuiteTest>,
}

/// One test of the suite.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SuiteTest {
    pub test: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The expectation's reason, when the failure is a listed one.
    pub expected_failure: Option<String>,
}

impl SuiteTest {
    /// Why it failed: the expectation's reason when listed, else the test's own.
    pub fn why(&self) -> String {
        self.expected_failure
            .as_deref()
            .map(|e| format!("expected ({e})"))
            .or_else(|| self.reason.clone())
            .unwrap_or_else(|| "no reason given".into())
    }
}

/// A test of the suite whose outcome changed between neighbouring kernels.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SuiteChange {
    pub driver: String,
    pub run: String,
    pub test: String,
    pub from_kernel: String,
    pub to_kernel: String,
    /// Passed on `from_kernel`, fails on `to_kernel` (else the other way round).
    pub regression: bool,
    pub reason: Option<String>,
}

/// A block storage path over the device, written and verified with fio: NVMe over
/// Fabrics (checks/payload/rdma-nvmeof.sh) or RNBD (checks/payload/rdma-rnbd.sh).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlockPath {
    pub status: PathStatus,
    pub reason: Option<String>,
    pub write_bw_mib_s: Option<f64>,
    pub write_iops: Option<f64>,
    pub randread_iops: Option<f64>,
    pub verify_errors: Option<f64>,
}

impl BlockPath {
    /// Passed, or, over iWARP (siw), recorded as unsupported, which the check
    /// verified (RNBD: RTRS needs RDMA WRITE with immediate data, which iWARP lacks).
    pub fn fine_on(&self, driver: &str) -> bool {
        self.status == PathStatus::Pass
            || (self.status == PathStatus::Unsupported && driver == "siw")
    }

    pub fn why(&self) -> &str {
        self.reason.as_deref().unwrap_or("failed")
    }
}

/// A restored-drivers load check (checks/offline/restored-load.nix): every module
/// loaded with its dependencies, what each registered, all unloaded and loaded
/// again, the kernel log clean.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RestoredLoad {
    pub file: PathBuf,
    /// The kernel release the guest ran.
    pub kernel: String,
    pub status: CheckStatus,
    pub reason: Option<String>,
    pub drivers: Vec<String>,
    pub modules: Vec<String>,
    /// `module:bus/drivers/name` for each driver a module registered.
    pub registered: Vec<String>,
    pub wall_s: Option<f64>,
}

/// The matrix: checks sorted by kernel, check and device, and the union of test
/// names in the payload's order of first appearance.
#[derive(Debug, Serialize)]
pub struct Matrix {
    pub checks: Vec<CheckResult>,
    pub tests: Vec<String>,
    /// Restored-drivers load checks, by kernel.
    pub restored: Vec<RestoredLoad>,
}

impl Matrix {
    pub fn new(mut checks: Vec<CheckResult>) -> Self {
        checks.sort_by(|a, b| {
            (&a.kernel, &a.check, &a.device).cmp(&(&b.kernel, &b.check, &b.device))
        });
        // The payload's order: first the check running the most tests.
        let mut by_size: Vec<&CheckResult> = checks.iter().collect();
        by_size.sort_by_key(|c| std::cmp::Reverse(c.tests.len()));
        let mut tests: Vec<String> = Vec::new();
        for t in by_size.iter().flat_map(|c| &c.tests) {
            if !tests.contains(&t.test) {
                tests.push(t.test.clone());
            }
        }
        Matrix {
            checks,
            tests,
            restored: Vec::new(),
        }
    }

    /// The matrix with the restored-drivers load checks beside it.
    pub fn with_restored(mut self, mut restored: Vec<RestoredLoad>) -> Self {
        restored.sort_by(|a, b| a.kernel.cmp(&b.kernel));
        self.restored = restored;
        self
    }

    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.passed()).count()
            + (self.restored.iter())
                .filter(|r| r.status != CheckStatus::Pass)
                .count()
    }

    pub fn kernels(&self) -> BTreeSet<&str> {
        self.checks.iter().map(|c| c.kernel.as_str()).collect()
    }

    /// Why each check that didn't pass failed: its own reason, then every failed test
    /// with its reason.
    pub fn failures(&self) -> Vec<(&CheckResult, String)> {
        let mut out = Vec::new();
        for c in self.checks.iter().filter(|c| !c.passed()) {
            if let Some(r) = &c.reason {
                out.push((c, r.clone()));
            }
            for t in c.tests.iter().filter(|t| t.status == TestStatus::Fail) {
                let why = t.reason.as_deref().unwrap_or("failed (no reason given)");
                out.push((c, format!("{}: {why}", t.test)));
            }
            for r in c.suite.iter().filter(|r| r.status != PathStatus::Pass) {
                for p in &r.problems {
                    out.push((c, format!("rdma-core's suite ({}): {p}", r.run)));
                }
            }
            if let Some(n) = c.nvmeof.as_ref().filter(|n| n.status != PathStatus::Pass) {
                out.push((c, format!("NVMe-oF: {}", n.why())));
            }
            if let Some(n) = c.rnbd.as_ref().filter(|n| !n.fine_on(&c.driver)) {
                out.push((c, format!("RNBD: {}", n.why())));
            }
        }
        out
    }

    /// Between neighbouring kernels (in order) of the same device and suite run: the
    /// tests that passed on the first and fail on the next (regressions), and those
    /// that failed and pass (fixes). Regressions first.
    pub fn suite_changes(&self) -> Vec<SuiteChange> {
        let mut out = Vec::new();
        let drivers: BTreeSet<&str> = self.checks.iter().map(|c| c.driver.as_str()).collect();
        for driver in drivers {
            let on: Vec<&CheckResult> = (self.checks.iter())
                .filter(|c| c.driver == driver && !c.suite.is_empty())
                .collect();
            for pair in on.windows(2) {
                out.extend(changes_between(driver, pair[0], pair[1]));
            }
        }
        out.sort_by_key(|c| !c.regression);
        out
    }
}

/// The suite tests whose outcome changed from check `a` to check `b`.
fn changes_between(driver: &str, a: &CheckResult, b: &CheckResult) -> Vec<SuiteChange> {
    let mut out = Vec::new();
    for ra in &a.suite {
        let Some(rb) = b.suite.iter().find(|r| r.run == ra.run) else {
            continue;
        };
        for tb in &rb.tests {
            let Some(ta) = ra.tests.iter().find(|t| t.test == tb.test) else {
                continue;
            };
            let regression = ta.outcome == Outcome::Pass && tb.outcome.failed();
            let fixed = ta.outcome.failed() && tb.outcome == Outcome::Pass;
            if regression || fixed {
                out.push(SuiteChange {
                    driver: driver.to_owned(),
                    run: ra.run.clone(),
                    test: tb.test.clone(),
                    from_kernel: a.kernel.clone(),
                    to_kernel: b.kernel.clone(),
                    regression,
                    reason: regression
                        .then(|| tb.expected_failure.clone().or_else(|| tb.reason.clone()))
                        .flatten(),
                });
            }
        }
    }
    out
}
