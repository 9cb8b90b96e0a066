//! The VM checks' results as a kernel × device × test matrix: read `result.json` files
//! (the offline runner's, with the payload's report under `test`, or a NixOS test's,
//! flat), then render a text/Markdown table and an HTML page with SVG charts of
//! bandwidth and latency per kernel; rdma-core's own suite per kernel × device (counts,
//! failures with their reasons, what changed between neighbouring kernels) and the
//! NVMe-over-Fabrics figures beside perftest's.

pub mod stages;
pub mod update;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: not JSON: {1}")]
    Json(PathBuf, serde_json::Error),
    #[error("{0}: {1}")]
    Shape(PathBuf, String),
}

/// One test of the payload on one device.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TestResult {
    pub test: String,
    /// pass, fail or unsupported.
    pub status: String,
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
    pub device: String,
    pub driver: String,
    /// pass, fail, timeout, panic or error.
    pub status: String,
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

/// One run of rdma-core's own test suite (checks/payload/rdma-suite.py).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SuiteRun {
    pub run: String,
    /// pass when the outcomes match the expectations of the kernel series × device.
    pub status: String,
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

/// One test of the suite: pass, skip, fail or error.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SuiteTest {
    pub test: String,
    pub outcome: String,
    pub reason: Option<String>,
    /// The expectation's reason, when the failure is a listed one.
    pub expected_failure: Option<String>,
}

impl SuiteTest {
    pub(crate) fn failed(&self) -> bool {
        matches!(self.outcome.as_str(), "fail" | "error")
    }

    /// Why it failed: the expectation's reason when listed, else the test's own.
    fn why(&self) -> String {
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
    pub status: String,
    pub reason: Option<String>,
    pub write_bw_mib_s: Option<f64>,
    pub write_iops: Option<f64>,
    pub randread_iops: Option<f64>,
    pub verify_errors: Option<f64>,
}

fn read_suite(
    report: &Value,
    shape: &dyn Fn(&str) -> ReportError,
) -> Result<Vec<SuiteRun>, ReportError> {
    let Some(list) = report.get("suite") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| shape("\"suite\" is not a list"))?;
    let mut runs = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let run = str_field(r, "run").ok_or_else(|| shape(&format!("suite[{i}]: no \"run\"")))?;
        let status =
            str_field(r, "status").ok_or_else(|| shape(&format!("suite[{i}]: no \"status\"")))?;
        let mut tests = Vec::new();
        for (j, t) in r
            .get("tests")
            .and_then(Value::as_array)
            .ok_or_else(|| shape(&format!("suite[{i}]: no \"tests\" list")))?
            .iter()
            .enumerate()
        {
            let test = str_field(t, "test")
                .ok_or_else(|| shape(&format!("suite[{i}].tests[{j}]: no \"test\"")))?;
            let outcome = str_field(t, "outcome")
                .ok_or_else(|| shape(&format!("suite[{i}].tests[{j}]: no \"outcome\"")))?;
            if !matches!(
                outcome.as_str(),
                "pass" | "skip" | "fail" | "error" | "excluded"
            ) {
                return Err(shape(&format!(
                    "suite[{i}].tests[{j}] ({test}): outcome {outcome:?} is not pass, skip, fail, error or excluded"
                )));
            }
            tests.push(SuiteTest {
                test,
                outcome,
                reason: str_field(t, "reason"),
                expected_failure: str_field(t, "expected_failure"),
            });
        }
        let count = |o: &[&str]| {
            tests
                .iter()
                .filter(|t| o.contains(&t.outcome.as_str()))
                .count()
        };
        let mut problems: Vec<String> = r
            .get("problems")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut status = status;
        // A pass carries its evidence: a run where nothing passed is a failure.
        if status == "pass" && count(&["pass"]) == 0 {
            status = "fail".into();
            problems.push("no test passed".into());
        }
        runs.push(SuiteRun {
            run,
            status,
            passed: count(&["pass"]),
            skipped: count(&["skip"]),
            excluded: count(&["excluded"]),
            failed: count(&["fail", "error"]),
            problems,
            tests,
        });
    }
    Ok(runs)
}

impl BlockPath {
    /// Passed, or, over iWARP (siw), recorded as unsupported, which the check
    /// verified (RNBD: RTRS needs RDMA WRITE with immediate data, which iWARP lacks).
    pub fn fine_on(&self, driver: &str) -> bool {
        self.status == "pass" || (self.status == "unsupported" && driver == "siw")
    }
}

fn read_block_path(report: &Value, key: &str) -> Option<BlockPath> {
    let n = report.get(key)?;
    let num = |k: &str| n.get(k).and_then(Value::as_f64);
    let mut r = BlockPath {
        status: str_field(n, "status").unwrap_or_else(|| "fail".into()),
        reason: str_field(n, "reason"),
        write_bw_mib_s: num("write_bw_mib_s"),
        write_iops: num("write_iops"),
        randread_iops: num("randread_iops"),
        verify_errors: num("verify_errors"),
    };
    if r.status == "pass" {
        let positive = |v: Option<f64>| v.is_some_and(|v| v > 0.0);
        if !positive(r.write_bw_mib_s) || !positive(r.randread_iops) {
            r.status = "fail".into();
            r.reason = Some("zero or missing figures".into());
        } else if r.verify_errors != Some(0.0) {
            r.status = "fail".into();
            r.reason = Some(format!("verify errors: {:?}", r.verify_errors));
        }
    }
    Some(r)
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads one result.json.
pub fn read_result(path: &Path) -> Result<CheckResult, ReportError> {
    check_result(path, &read_json(path)?)
}

/// A JSON file (a result.json, a record), parsed into `T`; errors name the file.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Io(path.into(), e))?;
    serde_json::from_str(&text).map_err(|e| ReportError::Json(path.into(), e))
}

/// One VM check's result.json, as a hot-path check or a restored-drivers load check.
pub enum AnyResult {
    Check(Box<CheckResult>),
    RestoredLoad(RestoredLoad),
}

/// Reads a result.json once and takes it as what it is.
pub fn read_any(path: &Path) -> Result<AnyResult, ReportError> {
    let v = read_json(path)?;
    if is_restored_load(&v) {
        Ok(AnyResult::RestoredLoad(restored_load(path, &v)?))
    } else {
        Ok(AnyResult::Check(Box::new(check_result(path, &v)?)))
    }
}

fn check_result(path: &Path, v: &Value) -> Result<CheckResult, ReportError> {
    let shape = |m: &str| ReportError::Shape(path.into(), m.to_owned());
    if !v.is_object() {
        return Err(shape("expected a JSON object (a VM check's result.json)"));
    }
    // The payload's report: nested under `test` (offline runner) or at the top.
    let report = match v.get("test") {
        Some(t) if t.is_object() => t,
        _ => v,
    };
    let kernel = str_field(v, "kernel").ok_or_else(|| shape("no \"kernel\" (string)"))?;
    let status = str_field(v, "status").ok_or_else(|| shape("no \"status\" (string)"))?;
    let device = str_field(v, "device")
        .or_else(|| str_field(report, "device"))
        .ok_or_else(|| shape("no \"device\" (string)"))?;
    let driver = str_field(v, "driver")
        .or_else(|| str_field(report, "driver"))
        .unwrap_or_else(|| device.split('_').next().unwrap_or_default().to_owned());
    let mut tests = Vec::new();
    if let Some(list) = report.get("tests") {
        let list = list
            .as_array()
            .ok_or_else(|| shape("\"tests\" is not a list"))?;
        for (i, t) in list.iter().enumerate() {
            let name =
                str_field(t, "test").ok_or_else(|| shape(&format!("tests[{i}]: no \"test\"")))?;
            let status = str_field(t, "status")
                .ok_or_else(|| shape(&format!("tests[{i}]: no \"status\"")))?;
            if !matches!(status.as_str(), "pass" | "fail" | "unsupported") {
                return Err(shape(&format!(
                    "tests[{i}] ({name}): status {status:?} is not pass, fail or unsupported"
                )));
            }
            let figures = match t.get("figures") {
                Some(Value::Object(m)) => m
                    .iter()
                    .filter_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f)))
                    .collect(),
                _ => Vec::new(),
            };
            let mut test = TestResult {
                test: name,
                status,
                seconds: t.get("seconds").and_then(Value::as_f64),
                figures,
                reason: str_field(t, "reason"),
            };
            // A pass without its figures is a failure, whatever the payload said.
            if test.status == "pass" {
                let bad: Vec<&str> = required_figures(&test.test)
                    .iter()
                    .copied()
                    .filter(|f| !test.figure(f).is_some_and(|v| v > 0.0))
                    .collect();
                if !bad.is_empty() {
                    test.status = "fail".into();
                    test.reason = Some(format!("zero or missing figures: {}", bad.join(" ")));
                }
            }
            tests.push(test);
        }
    } else if status == "pass" {
        return Err(shape(
            "status pass but no \"tests\": not a hot-path check's result",
        ));
    }
    let suite = read_suite(report, &shape)?;
    let nvmeof = read_block_path(report, "nvmeof");
    let rnbd = read_block_path(report, "rnbd");
    let mut status = status;
    let mut reason = str_field(v, "reason");
    if status == "pass" {
        if let Some(r) = suite.iter().find(|r| r.status != "pass") {
            status = "fail".into();
            reason = Some(format!(
                "rdma-core's suite ({}): {}",
                r.run,
                r.problems.join("; ")
            ));
        } else if let Some(n) = nvmeof.as_ref().filter(|n| n.status != "pass") {
            status = "fail".into();
            reason = Some(format!(
                "NVMe-oF: {}",
                n.reason.as_deref().unwrap_or("failed")
            ));
        } else if let Some(n) = rnbd.as_ref().filter(|n| !n.fine_on(&driver)) {
            status = "fail".into();
            reason = Some(format!("RNBD: {}", n.reason.as_deref().unwrap_or("failed")));
        } else if let Some(t) = tests.iter().find(|t| t.status == "fail") {
            status = "fail".into();
            reason = Some(format!(
                "{} failed: {}",
                t.test,
                t.reason.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    Ok(CheckResult {
        file: path.into(),
        kernel,
        device,
        driver,
        status,
        reason,
        wall_s: v.get("wall_s").and_then(Value::as_f64),
        negative_pabi: str_field(v, "negative_pabi").or_else(|| str_field(report, "negative_pabi")),
        tests,
        suite,
        nvmeof,
        rnbd,
    })
}

/// A restored-drivers load check (checks/offline/restored-load.nix): every module
/// loaded with its dependencies, what each registered, all unloaded and loaded
/// again, the kernel log clean.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RestoredLoad {
    pub file: PathBuf,
    /// The kernel release the guest ran.
    pub kernel: String,
    /// pass, fail, timeout, panic or error.
    pub status: String,
    pub reason: Option<String>,
    pub drivers: Vec<String>,
    pub modules: Vec<String>,
    /// `module:bus/drivers/name` for each driver a module registered.
    pub registered: Vec<String>,
    pub wall_s: Option<f64>,
}

/// Is this result.json a restored-drivers load check's?
pub fn is_restored_load(v: &Value) -> bool {
    str_field(v, "check").as_deref() == Some("restored-load")
}

/// Reads a restored-drivers load check's result.json. A pass without its evidence
/// (no module, fewer loaded or unloaded than listed, the kernel log not checked) is a
/// failure.
pub fn read_restored_load(path: &Path) -> Result<RestoredLoad, ReportError> {
    restored_load(path, &read_json(path)?)
}

fn restored_load(path: &Path, v: &Value) -> Result<RestoredLoad, ReportError> {
    let shape = |m: &str| ReportError::Shape(path.into(), m.to_owned());
    if !is_restored_load(v) {
        return Err(shape(
            "not a restored-drivers load check (no \"check\": \"restored-load\")",
        ));
    }
    let kernel = str_field(v, "kernel").ok_or_else(|| shape("no \"kernel\" (string)"))?;
    let mut status = str_field(v, "status").ok_or_else(|| shape("no \"status\" (string)"))?;
    let mut reason = str_field(v, "reason");
    let strings = |o: &Value, k: &str| -> Vec<String> {
        o.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let test = v.get("test").filter(|t| t.is_object());
    let modules = test.map(|t| strings(t, "modules")).unwrap_or_default();
    if status == "pass" {
        let t = test.ok_or_else(|| shape("status pass but no \"test\" report"))?;
        let n = modules.len() as u64;
        let count = |k: &str| t.get(k).and_then(Value::as_u64);
        if n == 0 {
            status = "fail".into();
            reason = Some("no module was loaded".into());
        } else if count("loaded") != Some(n) || count("unloaded") != Some(n) {
            status = "fail".into();
            reason = Some(format!(
                "{n} modules, but loaded {:?} and unloaded {:?}",
                count("loaded"),
                count("unloaded")
            ));
        } else if t.get("dmesg_clean") != Some(&Value::Bool(true)) {
            status = "fail".into();
            reason = Some("the kernel log was not found clean".into());
        }
    }
    Ok(RestoredLoad {
        file: path.into(),
        kernel,
        status,
        reason,
        drivers: strings(v, "drivers"),
        modules,
        registered: test.map(|t| strings(t, "registered")).unwrap_or_default(),
        wall_s: v.get("wall_s").and_then(Value::as_f64),
    })
}

/// The matrix: checks sorted by kernel then device, and the union of test names in
/// the payload's order of first appearance.
#[derive(Debug, Serialize)]
pub struct Matrix {
    pub checks: Vec<CheckResult>,
    pub tests: Vec<String>,
    /// Restored-drivers load checks, by kernel.
    pub restored: Vec<RestoredLoad>,
}

impl Matrix {
    pub fn new(mut checks: Vec<CheckResult>) -> Self {
        checks.sort_by(|a, b| (&a.kernel, &a.device).cmp(&(&b.kernel, &b.device)));
        let mut tests: Vec<String> = Vec::new();
        for c in &checks {
            for t in &c.tests {
                if !tests.contains(&t.test) {
                    tests.push(t.test.clone());
                }
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
        self.checks.iter().filter(|c| c.status != "pass").count()
            + self.restored.iter().filter(|r| r.status != "pass").count()
    }

    /// The restored drivers' load checks as a Markdown section.
    fn restored_markdown(&self) -> String {
        let mut s = String::new();
        if self.restored.is_empty() {
            return s;
        }
        let _ = writeln!(
            s,
            "\n## Restored drivers: loaded, registered, unloaded\n\n| kernel | check | drivers | modules | registered | wall (s) |\n|---|---|---|---|---|---|"
        );
        for r in &self.restored {
            let status = match &r.reason {
                Some(why) if r.status != "pass" => format!("{}: {why}", r.status),
                _ => r.status.clone(),
            };
            let _ = writeln!(
                s,
                "| {} | {status} | {} | {} | {} | {} |",
                r.kernel,
                r.drivers.join(" "),
                r.modules.join(" "),
                r.registered.join(" "),
                r.wall_s.map_or("—".into(), |v| format!("{v:.0}"))
            );
        }
        s
    }

    fn restored_html(&self) -> String {
        let mut s = String::new();
        if self.restored.is_empty() {
            return s;
        }
        s.push_str("<h2>Restored drivers: loaded, registered, unloaded</h2>\n<table>\n<tr><th>kernel</th><th>check</th><th>drivers</th><th>modules</th><th>registered</th><th>wall (s)</th></tr>\n");
        for r in &self.restored {
            let class = if r.status == "pass" { "pass" } else { "FAIL" };
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html_escape(&r.kernel),
                html_escape(&match &r.reason {
                    Some(why) if r.status != "pass" => format!("{}: {why}", r.status),
                    _ => r.status.clone(),
                }),
                html_escape(&r.drivers.join(" ")),
                html_escape(&r.modules.join(" ")),
                html_escape(&r.registered.join(" ")),
                r.wall_s.map_or("—".into(), |v| format!("{v:.0}"))
            );
        }
        s.push_str("</table>\n");
        s
    }

    fn cell(c: &CheckResult, test: &str) -> &'static str {
        match c
            .tests
            .iter()
            .find(|t| t.test == test)
            .map(|t| t.status.as_str())
        {
            Some("pass") => "pass",
            Some("fail") => "FAIL",
            Some("unsupported") => "unsupported",
            _ => "—",
        }
    }

    fn figure(c: &CheckResult, test: &str, name: &str) -> Option<f64> {
        c.tests.iter().find(|t| t.test == test)?.figure(name)
    }

    /// The figures shown beside the table and in the charts.
    const FIGURES: [(&'static str, &'static str, &'static str); 3] = [
        ("ib_send_bw", "bw_avg_mib_s", "send BW (MiB/s)"),
        ("ib_write_bw", "bw_avg_mib_s", "write BW (MiB/s)"),
        ("ib_read_lat", "lat_typical_us", "read lat (µs)"),
    ];

    /// NVMe over Fabrics' and RNBD's figures, beside perftest's.
    #[allow(clippy::type_complexity)]
    const NVMEOF_FIGURES: [(&'static str, fn(&CheckResult) -> Option<f64>); 4] = [
        ("NVMe-oF write (MiB/s)", |c| {
            c.nvmeof.as_ref()?.write_bw_mib_s
        }),
        ("NVMe-oF 4k read (IOPS)", |c| {
            c.nvmeof.as_ref()?.randread_iops
        }),
        ("RNBD write (MiB/s)", |c| c.rnbd.as_ref()?.write_bw_mib_s),
        ("RNBD 4k read (IOPS)", |c| c.rnbd.as_ref()?.randread_iops),
    ];

    /// A Markdown table (also readable as plain text).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let mut head = vec!["kernel", "device", "check"];
        head.extend(self.tests.iter().map(String::as_str));
        head.push("negative PABI");
        head.extend(Self::FIGURES.iter().map(|f| f.2));
        head.extend(Self::NVMEOF_FIGURES.iter().map(|f| f.0));
        head.push("wall (s)");
        let _ = writeln!(s, "| {} |", head.join(" | "));
        let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
        for c in &self.checks {
            let mut row = vec![c.kernel.clone(), c.device.clone(), c.status.clone()];
            row.extend(self.tests.iter().map(|t| Self::cell(c, t).to_owned()));
            row.push(c.negative_pabi.clone().unwrap_or_else(|| "—".into()));
            for (test, fig, _) in Self::FIGURES {
                row.push(Self::figure(c, test, fig).map_or("—".into(), |v| format!("{v:.2}")));
            }
            for (_, get) in Self::NVMEOF_FIGURES {
                row.push(get(c).map_or("—".into(), |v| format!("{v:.2}")));
            }
            row.push(c.wall_s.map_or("—".into(), |v| format!("{v:.0}")));
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        let total: f64 = self.checks.iter().filter_map(|c| c.wall_s).sum();
        let _ = writeln!(
            s,
            "\n{} checks, {} not passing; total VM wall time {total:.0} s.",
            self.checks.len(),
            self.failed()
        );
        for (c, why) in self.failures() {
            let _ = writeln!(s, "- {} {}: {why}", c.kernel, c.device);
        }
        s.push_str(&self.suite_markdown());
        s.push_str(&self.restored_markdown());
        s
    }

    /// Why each check that didn't pass failed: its own reason, then every failed test
    /// with its reason.
    pub fn failures(&self) -> Vec<(&CheckResult, String)> {
        let mut out = Vec::new();
        for c in self.checks.iter().filter(|c| c.status != "pass") {
            if let Some(r) = &c.reason {
                out.push((c, r.clone()));
            }
            for t in c.tests.iter().filter(|t| t.status == "fail") {
                out.push((
                    c,
                    format!(
                        "{}: {}",
                        t.test,
                        t.reason.as_deref().unwrap_or("failed (no reason given)")
                    ),
                ));
            }
            for r in c.suite.iter().filter(|r| r.status != "pass") {
                for p in &r.problems {
                    out.push((c, format!("rdma-core's suite ({}): {p}", r.run)));
                }
            }
            if let Some(n) = c.nvmeof.as_ref().filter(|n| n.status != "pass") {
                out.push((
                    c,
                    format!("NVMe-oF: {}", n.reason.as_deref().unwrap_or("failed")),
                ));
            }
            if let Some(n) = c.rnbd.as_ref().filter(|n| !n.fine_on(&c.driver)) {
                out.push((
                    c,
                    format!("RNBD: {}", n.reason.as_deref().unwrap_or("failed")),
                ));
            }
        }
        out
    }

    /// Between neighbouring kernels (in order) of the same device and suite run: the
    /// tests that passed on the first and fail on the next (regressions), and those
    /// that failed and pass (fixes).
    pub fn suite_changes(&self) -> Vec<SuiteChange> {
        let mut out = Vec::new();
        let drivers: BTreeSet<&str> = self.checks.iter().map(|c| c.driver.as_str()).collect();
        for driver in drivers {
            let on: Vec<&CheckResult> = self
                .checks
                .iter()
                .filter(|c| c.driver == driver && !c.suite.is_empty())
                .collect();
            for pair in on.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                for ra in &a.suite {
                    let Some(rb) = b.suite.iter().find(|r| r.run == ra.run) else {
                        continue;
                    };
                    for tb in &rb.tests {
                        let Some(ta) = ra.tests.iter().find(|t| t.test == tb.test) else {
                            continue;
                        };
                        let regression = ta.outcome == "pass" && tb.failed();
                        let fixed = ta.failed() && tb.outcome == "pass";
                        if regression || fixed {
                            out.push(SuiteChange {
                                driver: driver.to_owned(),
                                run: ra.run.clone(),
                                test: tb.test.clone(),
                                from_kernel: a.kernel.clone(),
                                to_kernel: b.kernel.clone(),
                                regression,
                                reason: if regression {
                                    tb.expected_failure.clone().or_else(|| tb.reason.clone())
                                } else {
                                    None
                                },
                            });
                        }
                    }
                }
            }
        }
        // Regressions first.
        out.sort_by_key(|c| !c.regression);
        out
    }

    /// The suite's part of the page as Markdown: what changed between neighbouring
    /// kernels (regressions first), the counts per kernel × device × run, and every
    /// failure with its reason.
    pub fn suite_markdown(&self) -> String {
        let mut s = String::new();
        if self.checks.iter().all(|c| c.suite.is_empty()) {
            return s;
        }
        let _ = writeln!(s, "\n## rdma-core's own suite\n");
        let changes = self.suite_changes();
        if changes.is_empty() {
            let _ = writeln!(s, "No test changed between neighbouring kernels.\n");
        }
        for c in &changes {
            let _ = writeln!(
                s,
                "- {}: {} ({} {}) {} on {}, {} on {}{}",
                if c.regression { "REGRESSION" } else { "fixed" },
                c.test,
                c.driver,
                c.run,
                if c.regression { "passes" } else { "fails" },
                c.from_kernel,
                if c.regression { "fails" } else { "passes" },
                c.to_kernel,
                c.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(s, "\n| kernel | device | run | pass | skip | excluded | fail | check |\n|---|---|---|---|---|---|---|---|");
        for c in &self.checks {
            for r in &c.suite {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    c.kernel, c.device, r.run, r.passed, r.skipped, r.excluded, r.failed, r.status
                );
            }
        }
        let _ = writeln!(s);
        for c in &self.checks {
            for r in &c.suite {
                for t in r.tests.iter().filter(|t| t.failed()) {
                    let _ = writeln!(
                        s,
                        "- {} {} {}: {} {}: {}",
                        c.kernel,
                        c.device,
                        r.run,
                        t.test,
                        t.outcome,
                        t.why()
                    );
                }
            }
        }
        s
    }

    /// A horizontal bar chart (SVG) of one figure per check.
    fn chart(&self, title: &str, value: &dyn Fn(&CheckResult) -> Option<f64>) -> String {
        let bars: Vec<(String, f64)> = self
            .checks
            .iter()
            .filter_map(|c| value(c).map(|v| (format!("{} {}", c.kernel, c.device), v)))
            .collect();
        let max = bars
            .iter()
            .map(|b| b.1)
            .fold(0.0_f64, f64::max)
            .max(f64::MIN_POSITIVE);
        let (label_w, bar_w, row_h) = (260.0, 360.0, 22.0);
        let height = 30.0 + row_h * bars.len() as f64;
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" role=\"img\" aria-label=\"{t}\">\
             <text x=\"0\" y=\"16\" font-weight=\"bold\">{t}</text>",
            w = label_w + bar_w + 80.0,
            t = html_escape(title)
        );
        for (i, (label, v)) in bars.iter().enumerate() {
            let y = 26.0 + row_h * i as f64;
            let w = bar_w * v / max;
            let _ = write!(
                s,
                "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{l}</text>\
                 <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" fill=\"#4a7ab5\"/>\
                 <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"12\">{v:.2}</text>",
                ty = y + 14.0,
                l = html_escape(label),
                h = row_h - 6.0,
                tx = label_w + w + 4.0,
            );
        }
        s.push_str("</svg>");
        s
    }

    /// The suite's part of the HTML page: what changed between neighbouring kernels
    /// (regressions first), the counts and the failures with their reasons.
    fn suite_html(&self) -> String {
        let mut s = String::new();
        if self.checks.iter().all(|c| c.suite.is_empty()) {
            return s;
        }
        s.push_str("<h2>rdma-core's own suite</h2>\n<ul>\n");
        let changes = self.suite_changes();
        if changes.is_empty() {
            s.push_str("<li>No test changed between neighbouring kernels.</li>\n");
        }
        for c in &changes {
            let _ = writeln!(
                s,
                "<li class=\"{}\">{} {} ({} {}): {} → {}{}</li>",
                if c.regression { "FAIL" } else { "pass" },
                if c.regression { "REGRESSION" } else { "fixed" },
                html_escape(&c.test),
                html_escape(&c.driver),
                html_escape(&c.run),
                html_escape(&c.from_kernel),
                html_escape(&c.to_kernel),
                c.reason
                    .as_deref()
                    .map(|r| format!(": {}", html_escape(r)))
                    .unwrap_or_default()
            );
        }
        s.push_str("</ul>\n<table>\n<tr><th>kernel</th><th>device</th><th>run</th><th>pass</th><th>skip</th><th>excluded</th><th>fail</th><th>check</th></tr>\n");
        for c in &self.checks {
            for r in &c.suite {
                let _ = writeln!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                    html_escape(&c.kernel),
                    html_escape(&c.device),
                    html_escape(&r.run),
                    r.passed,
                    r.skipped,
                    r.excluded,
                    r.failed,
                    if r.status == "pass" { "pass" } else { "FAIL" },
                    html_escape(&r.status)
                );
            }
        }
        s.push_str("</table>\n<ul>\n");
        for c in &self.checks {
            for r in &c.suite {
                for t in r.tests.iter().filter(|t| t.failed()) {
                    let why = t.why();
                    let _ = writeln!(
                        s,
                        "<li>{} {} {}: {} {}: {}</li>",
                        html_escape(&c.kernel),
                        html_escape(&c.device),
                        html_escape(&r.run),
                        html_escape(&t.test),
                        html_escape(&t.outcome),
                        html_escape(&why)
                    );
                }
            }
        }
        s.push_str("</ul>\n");
        s
    }

    /// A self-contained HTML page: the table and the charts.
    pub fn html(&self) -> String {
        let mut s = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rdma-nix VM checks</title>\
             <style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}\
             .pass{background:#dfd}.FAIL{background:#fcc}.unsupported{background:#eee}</style></head><body>\n\
             <h1>rdma-nix VM checks: kernel × device × test</h1>\n<table>\n<tr><th>kernel</th><th>device</th><th>check</th>",
        );
        for t in &self.tests {
            let _ = write!(s, "<th>{}</th>", html_escape(t));
        }
        s.push_str("<th>negative PABI</th>");
        for f in Self::FIGURES {
            let _ = write!(s, "<th>{}</th>", html_escape(f.2));
        }
        for (title, _) in Self::NVMEOF_FIGURES {
            let _ = write!(s, "<th>{}</th>", html_escape(title));
        }
        s.push_str("<th>wall (s)</th></tr>\n");
        for c in &self.checks {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td>",
                html_escape(&c.kernel),
                html_escape(&c.device),
                if c.status == "pass" { "pass" } else { "FAIL" },
                html_escape(&c.status)
            );
            for t in &self.tests {
                let cell = Self::cell(c, t);
                let _ = write!(s, "<td class=\"{cell}\">{cell}</td>");
            }
            let _ = write!(
                s,
                "<td>{}</td>",
                html_escape(c.negative_pabi.as_deref().unwrap_or("—"))
            );
            for (test, fig, _) in Self::FIGURES {
                let _ = write!(
                    s,
                    "<td>{}</td>",
                    Self::figure(c, test, fig).map_or("—".into(), |v| format!("{v:.2}"))
                );
            }
            for (_, get) in Self::NVMEOF_FIGURES {
                let _ = write!(
                    s,
                    "<td>{}</td>",
                    get(c).map_or("—".into(), |v| format!("{v:.2}"))
                );
            }
            let _ = writeln!(
                s,
                "<td>{}</td></tr>",
                c.wall_s.map_or("—".into(), |v| format!("{v:.0}"))
            );
        }
        s.push_str("</table>\n");
        let failures = self.failures();
        if !failures.is_empty() {
            s.push_str("<h2>Why checks failed</h2>\n<ul>\n");
            for (c, why) in failures {
                let _ = writeln!(
                    s,
                    "<li>{} {}: {}</li>",
                    html_escape(&c.kernel),
                    html_escape(&c.device),
                    html_escape(&why)
                );
            }
            s.push_str("</ul>\n");
        }
        let kernels: BTreeSet<&str> = self.checks.iter().map(|c| c.kernel.as_str()).collect();
        let _ = writeln!(
            s,
            "<p>{} checks on {} kernels, {} not passing. Figures are from software emulation (TCG): compare kernels with each other, not with hardware.</p>",
            self.checks.len(),
            kernels.len(),
            self.failed()
        );
        for (test, fig, title) in Self::FIGURES {
            s.push_str("<div>");
            s.push_str(&self.chart(title, &|c| Self::figure(c, test, fig)));
            s.push_str("</div>\n");
        }
        // A storage path's charts where some check has its figures.
        for (title, get) in Self::NVMEOF_FIGURES {
            if self.checks.iter().any(|c| get(c).is_some()) {
                s.push_str("<div>");
                s.push_str(&self.chart(title, &get));
                s.push_str("</div>\n");
            }
        }
        s.push_str(&self.suite_html());
        s.push_str(&self.restored_html());
        s.push_str("</body></html>\n");
        s
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn suite_result(
        dir: &Path,
        name: &str,
        kernel: &str,
        outcomes: &[(&str, &str)],
        nvme: &str,
    ) -> PathBuf {
        let tests: Vec<String> = outcomes
            .iter()
            .map(|(t, o)| format!(r#"{{"test":"{t}","outcome":"{o}","reason":"why {t}"}}"#))
            .collect();
        write(
            dir,
            name,
            &format!(
                r#"{{"status":"pass","kernel":"{kernel}","device":"rxe_eth0","driver":"rxe",
                   "test":{{"tests":[{{"test":"rping","status":"pass"}}],
                   "suite":[{{"run":"suite","status":"pass","problems":[],"tests":[{}]}}],
                   "nvmeof":{nvme}}}}}"#,
                tests.join(",")
            ),
        )
    }

    #[test]
    fn rnbd_figures_and_a_verify_error_fail_the_check() {
        let d = tempfile::tempdir().unwrap();
        let rnbd = |v: &str| {
            let p = d.path().join("r.json");
            std::fs::write(
                &p,
                format!(
                    r#"{{"status":"pass","kernel":"6.1.0-50-amd64","device":"siw_eth0",
                       "test":{{"tests":[{{"test":"rping","status":"pass"}}],"rnbd":{v}}}}}"#
                ),
            )
            .unwrap();
            read_result(&p).unwrap()
        };
        let ok =
            rnbd(r#"{"status":"pass","write_bw_mib_s":5.5,"randread_iops":700,"verify_errors":0}"#);
        assert_eq!(ok.status, "pass");
        let m = Matrix::new(vec![ok]);
        assert!(
            m.markdown().contains("| 5.50 | 700.00 |"),
            "{}",
            m.markdown()
        );
        assert_eq!(m.html().matches("<svg").count(), 5);
        let bad =
            rnbd(r#"{"status":"pass","write_bw_mib_s":5.5,"randread_iops":700,"verify_errors":1}"#);
        assert_eq!(bad.status, "fail");
        assert!(bad.reason.unwrap().starts_with("RNBD: verify errors"));
        let failed = rnbd(r#"{"status":"fail","reason":"no /dev/rnbd* appeared"}"#);
        assert_eq!(
            failed.reason.as_deref(),
            Some("RNBD: no /dev/rnbd* appeared")
        );
        // Unsupported is accepted over siw (iWARP) only.
        let unsupported =
            rnbd(r#"{"status":"unsupported","reason":"RTRS over iWARP: map_device refused"}"#);
        assert_eq!(unsupported.status, "pass", "{unsupported:?}");
        let p = d.path().join("x.json");
        std::fs::write(
            &p,
            r#"{"status":"pass","kernel":"6.1.0-50-amd64","device":"rxe_eth0",
               "test":{"tests":[{"test":"rping","status":"pass"}],"rnbd":{"status":"unsupported"}}}"#,
        )
        .unwrap();
        assert_eq!(read_result(&p).unwrap().status, "fail");
    }

    #[test]
    fn a_restored_load_pass_needs_its_evidence() {
        let d = tempfile::tempdir().unwrap();
        let load = |test: &str| {
            let p = d.path().join("l.json");
            std::fs::write(
                &p,
                format!(
                    r#"{{"check":"restored-load","status":"pass","kernel":"6.1.0-50-amd64","drivers":["efa","rtrs"],"wall_s":28,"test":{test}}}"#
                ),
            )
            .unwrap();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            assert!(is_restored_load(&v));
            read_restored_load(&p).unwrap()
        };
        let ok = load(
            r#"{"modules":["efa","rtrs-core"],"registered":["efa:pci/drivers/efa"],"loaded":2,"unloaded":2,"dmesg_clean":true}"#,
        );
        assert_eq!(ok.status, "pass", "{ok:?}");
        for (test, why) in [
            (
                r#"{"modules":[],"loaded":0,"unloaded":0,"dmesg_clean":true}"#,
                "no module",
            ),
            (
                r#"{"modules":["efa","rtrs-core"],"loaded":2,"unloaded":1,"dmesg_clean":true}"#,
                "2 modules, but",
            ),
            (
                r#"{"modules":["efa"],"loaded":1,"unloaded":1}"#,
                "the kernel log",
            ),
        ] {
            let r = load(test);
            assert_eq!(r.status, "fail", "{test}");
            assert!(r.reason.as_deref().unwrap().starts_with(why), "{r:?}");
        }
        let m = Matrix::new(Vec::new()).with_restored(vec![ok]);
        let md = m.markdown();
        assert!(
            md.contains(
                "| 6.1.0-50-amd64 | pass | efa rtrs | efa rtrs-core | efa:pci/drivers/efa | 28 |"
            ),
            "{md}"
        );
        assert_eq!(m.failed(), 0);
        assert!(m.html().contains("<h2>Restored drivers"));
        // A hot-path result is not a restored-load one.
        assert!(!is_restored_load(&serde_json::json!({"status": "pass"})));
    }

    #[test]
    fn the_last_update_compares_each_new_kernel_with_its_predecessor() {
        use super::update::{Added, LastUpdate};
        let d = tempfile::tempdir().unwrap();
        let ok = r#"{"status":"pass","write_bw_mib_s":3.2,"write_iops":51,"randread_iops":458,"verify_errors":0}"#;
        let old = suite_result(
            d.path(),
            "a.json",
            "6.1.0-56-amd64",
            &[("t.one", "pass"), ("t.two", "error")],
            ok,
        );
        let new = suite_result(
            d.path(),
            "b.json",
            "6.1.0-57-amd64",
            &[("t.one", "fail"), ("t.two", "pass")],
            ok,
        );
        let m = Matrix::new(vec![read_result(&old).unwrap(), read_result(&new).unwrap()]);
        let u = LastUpdate::new(
            vec![Added {
                kernel: "debian-6.1.0-57".into(),
                release: "6.1.0-57-amd64".into(),
                predecessor: Some("debian-6.1.0-56".into()),
                predecessor_release: Some("6.1.0-56-amd64".into()),
                reused: vec!["siw from debian-6.1.0-55".into()],
                rebuilt: vec!["efa".into()],
            }],
            vec!["debian-6.1.0-47".into()],
        );
        // The record reads back, its first line carrying the marker.
        let text = u.render();
        assert!(
            text.lines().next().unwrap().contains("@generated"),
            "{text}"
        );
        let f = write(d.path(), "last-update.json", &text);
        assert_eq!(LastUpdate::read(&f).unwrap(), u);
        let c = m.compare_update(&u);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].regressions, vec!["suite: t.one"]);
        assert_eq!(c[0].fixes, vec!["suite: t.two"]);
        assert_eq!(m.update_failures(&u), 1);
        let md = m.update_markdown(&u);
        assert!(md.contains("debian-6.1.0-57 rxe_eth0: pass (predecessor: pass); REGRESSIONS: suite: t.one; fixed: suite: t.two"), "{md}");
        assert!(
            md.contains("modules reused: siw from debian-6.1.0-55; rebuilt: efa"),
            "{md}"
        );
        assert!(md.contains("- retired: debian-6.1.0-47"), "{md}");
        // No regression without a predecessor's check to compare with.
        let alone = Matrix::new(vec![read_result(&new).unwrap()]);
        assert_eq!(
            alone.compare_update(&u)[0].regressions,
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_suite_regressions_first_and_nvmeof_figures() {
        let d = tempfile::tempdir().unwrap();
        let ok = r#"{"status":"pass","write_bw_mib_s":3.2,"write_iops":51,"randread_iops":458,"verify_errors":0}"#;
        let a = suite_result(
            d.path(),
            "a.json",
            "6.1.0-50-amd64",
            &[("t.one", "pass"), ("t.two", "error"), ("t.three", "skip")],
            ok,
        );
        let b = suite_result(
            d.path(),
            "b.json",
            "6.12.117-amd64",
            &[
                ("t.one", "fail"),
                ("t.two", "pass"),
                ("t.three", "skip"),
                ("t.four", "excluded"),
            ],
            ok,
        );
        let m = Matrix::new(vec![read_result(&b).unwrap(), read_result(&a).unwrap()]);
        let changes = m.suite_changes();
        assert_eq!(changes.len(), 2);
        assert!(changes[0].regression && changes[0].test == "t.one");
        assert_eq!(
            (
                changes[0].from_kernel.as_str(),
                changes[0].to_kernel.as_str()
            ),
            ("6.1.0-50-amd64", "6.12.117-amd64")
        );
        assert!(!changes[1].regression && changes[1].test == "t.two");
        let md = m.markdown();
        assert!(md.contains("REGRESSION: t.one (rxe suite) passes on 6.1.0-50-amd64, fails on 6.12.117-amd64: why t.one"), "{md}");
        assert!(
            md.contains("| 6.12.117-amd64 | rxe_eth0 | suite | 1 | 1 | 1 | 1 | pass |"),
            "{md}"
        );
        assert!(md.contains("458.00"), "{md}");
        assert!(m.html().contains("<th>skip</th><th>excluded</th>"));
        assert_eq!(m.html().matches("<svg").count(), 5);

        // A verify error, a zero figure or a run where nothing passed fails the check.
        for (nvme, why) in [
            (
                r#"{"status":"pass","write_bw_mib_s":3.2,"randread_iops":458,"verify_errors":2}"#,
                "NVMe-oF: verify errors",
            ),
            (
                r#"{"status":"pass","write_bw_mib_s":0,"randread_iops":458,"verify_errors":0}"#,
                "NVMe-oF: zero or missing",
            ),
        ] {
            let c = read_result(&suite_result(
                d.path(),
                "c.json",
                "7.2.13",
                &[("t.one", "pass")],
                nvme,
            ))
            .unwrap();
            assert_eq!(c.status, "fail");
            assert!(
                c.reason.as_deref().unwrap().starts_with(why),
                "{:?}",
                c.reason
            );
        }
        let c = read_result(&suite_result(
            d.path(),
            "c.json",
            "7.2.13",
            &[("t.one", "skip")],
            ok,
        ))
        .unwrap();
        assert_eq!(c.status, "fail");
        assert!(c.reason.as_deref().unwrap().contains("no test passed"));
        let bad = suite_result(d.path(), "d.json", "7.2.13", &[("t.one", "flaky")], ok);
        assert!(read_result(&bad)
            .unwrap_err()
            .to_string()
            .contains("not pass, skip, fail, error or excluded"));
    }

    #[test]
    fn reads_offline_and_nixos_shapes() {
        let d = tempfile::tempdir().unwrap();
        let offline = write(
            d.path(),
            "a.json",
            r#"{"status":"pass","kernel":"6.1.0-50-amd64","device":"siw_eth0","driver":"siw","wall_s":40,
               "test":{"tests":[{"test":"rc_pingpong","status":"unsupported"},
               {"test":"ib_send_bw","status":"pass","figures":{"bw_peak_mib_s":40.1,"bw_avg_mib_s":31.5,"msg_rate_mpps":0.0005}}],"negative_pabi":"pass"}}"#,
        );
        let nixos = write(
            d.path(),
            "b.json",
            r#"{"status":"fail","kernel":"6.12.1","device":"rxe_eth1",
               "tests":[{"test":"rc_pingpong","status":"fail"}]}"#,
        );
        let m = Matrix::new(vec![
            read_result(&offline).unwrap(),
            read_result(&nixos).unwrap(),
        ]);
        assert_eq!(m.tests, ["rc_pingpong", "ib_send_bw"]);
        assert_eq!(m.checks[0].driver, "siw");
        assert_eq!(m.checks[1].driver, "rxe");
        let md = m.markdown();
        assert!(
            md.contains("| 6.1.0-50-amd64 | siw_eth0 | pass | unsupported | pass | pass | 31.50 |"),
            "{md}"
        );
        assert!(
            md.contains("| 6.12.1 | rxe_eth1 | fail | FAIL | — |"),
            "{md}"
        );
        assert!(md.contains("2 checks, 1 not passing"));
        let html = m.html();
        assert!(html.contains("<svg") && html.contains(">31.50</text>"));
    }

    #[test]
    fn bad_results_name_the_file_and_the_problem() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            ("notjson.json", "{", "not JSON"),
            ("array.json", "[]", "expected a JSON object"),
            (
                "nokernel.json",
                r#"{"status":"pass","device":"x"}"#,
                "no \"kernel\"",
            ),
            (
                "badstatus.json",
                r#"{"status":"pass","kernel":"k","device":"d","tests":[{"test":"t","status":"ok"}]}"#,
                "is not pass, fail or unsupported",
            ),
            (
                "notests.json",
                r#"{"status":"pass","kernel":"k","device":"d"}"#,
                "no \"tests\"",
            ),
        ];
        for (name, text, want) in cases {
            let p = write(d.path(), name, text);
            let e = read_result(&p).unwrap_err().to_string();
            assert!(
                e.starts_with(&p.display().to_string()) && e.contains(want),
                "{name}: {e}"
            );
        }
        let missing = d.path().join("missing.json");
        assert!(read_result(&missing)
            .unwrap_err()
            .to_string()
            .contains("missing.json"));
    }

    #[test]
    fn a_pass_with_a_zero_or_missing_figure_is_a_failure_with_its_reason() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "zero.json",
            r#"{"status":"pass","kernel":"6.1.0-47-amd64","device":"siw_eth0","test":{"tests":[
               {"test":"ib_send_bw","status":"pass","figures":{"bw_peak_mib_s":47.6,"bw_avg_mib_s":47.6,"msg_rate_mpps":0.0008}},
               {"test":"ib_write_bw","status":"pass","figures":{"bw_peak_mib_s":0.0,"bw_avg_mib_s":0.0,"msg_rate_mpps":0.0}},
               {"test":"ib_read_lat","status":"pass","figures":{"lat_min_us":90.1}}]}}"#,
        );
        let c = read_result(&p).unwrap();
        assert_eq!(c.status, "fail");
        assert_eq!(c.tests[0].status, "pass");
        assert_eq!(c.tests[1].status, "fail");
        assert_eq!(
            c.tests[1].reason.as_deref(),
            Some("zero or missing figures: bw_peak_mib_s bw_avg_mib_s msg_rate_mpps")
        );
        assert_eq!(
            c.tests[2].reason.as_deref(),
            Some("zero or missing figures: lat_typical_us lat_avg_us")
        );
        let m = Matrix::new(vec![c]);
        let md = m.markdown();
        assert!(
            md.contains("- 6.1.0-47-amd64 siw_eth0: ib_write_bw: zero or missing figures"),
            "{md}"
        );
        assert!(m.html().contains("Why checks failed"));
    }

    #[test]
    fn labels_are_escaped_in_html() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "x.json",
            r#"{"status":"timeout","kernel":"<script>","device":"d\"x","reason":"no result"}"#,
        );
        let html = Matrix::new(vec![read_result(&p).unwrap()]).html();
        assert!(
            !html.contains("<script>")
                && html.contains("&lt;script&gt;")
                && html.contains("d&quot;x")
        );
    }
}
