//! Reads a VM check's `result.json` into the model (model.rs). Two shapes carry a
//! hot-path check: the offline runner's (pkgs/offline/vm/collect-result.py: the
//! runner's fields, the payload's report under `test`) and a NixOS test's
//! (checks/nixos-hotpaths.nix: one flat object). A third is a restored-drivers load
//! check's (`"check": "restored-load"`). Both are deserialised by serde with the path
//! of a bad field in the error; then a pass is held to its evidence: a perftest pass
//! without its figures, a block path without its figures or with verify errors, a
//! suite run where nothing passed, each turns the check into a failure with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::model::*;
use super::ReportError;

/// One VM check's result.json, as a hot-path check or a restored-drivers load check.
pub enum AnyResult {
    Check(Box<CheckResult>),
    RestoredLoad(RestoredLoad),
}

/// Reads a result.json once and takes it as what it is.
pub fn read_any(path: &Path) -> Result<AnyResult, ReportError> {
    let v: Value = read_json(path)?;
    if is_restored_load(&v) {
        Ok(AnyResult::RestoredLoad(restored_load(path, v)?))
    } else {
        Ok(AnyResult::Check(Box::new(check_result(path, v)?)))
    }
}

/// Reads a hot-path check's result.json.
pub fn read_result(path: &Path) -> Result<CheckResult, ReportError> {
    check_result(path, read_json(path)?)
}

/// Reads a restored-drivers load check's result.json.
pub fn read_restored_load(path: &Path) -> Result<RestoredLoad, ReportError> {
    restored_load(path, read_json(path)?)
}

/// A JSON file (a result.json, a record), parsed into `T`; errors name the file and,
/// for a field of the wrong shape, its path in the document.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Io(path.into(), e))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| ReportError::Json(path.into(), e))
}

/// `T` from a part of an already parsed document; errors name the file and the path.
fn from_value<T: DeserializeOwned>(path: &Path, v: &Value) -> Result<T, ReportError> {
    serde_path_to_error::deserialize(v).map_err(|e| ReportError::Json(path.into(), e))
}

/// Is this result.json a restored-drivers load check's?
pub fn is_restored_load(v: &Value) -> bool {
    v.get("check").and_then(Value::as_str) == Some("restored-load")
}

/// The runner's fields (a NixOS test's result has the report's beside them).
#[derive(Deserialize)]
struct Runner {
    kernel: String,
    status: CheckStatus,
    name: Option<String>,
    kernel_name: Option<String>,
    device: Option<String>,
    driver: Option<String>,
    reason: Option<String>,
    wall_s: Option<f64>,
    negative_pabi: Option<String>,
}

/// The payload's report (checks/payload/rdma-hotpaths.sh).
#[derive(Deserialize)]
struct Report {
    device: Option<String>,
    driver: Option<String>,
    negative_pabi: Option<String>,
    tests: Option<Vec<RawTest>>,
    #[serde(default)]
    suite: Vec<RawSuiteRun>,
    nvmeof: Option<RawBlockPath>,
    rnbd: Option<RawBlockPath>,
}

#[derive(Deserialize)]
struct RawTest {
    test: String,
    status: TestStatus,
    seconds: Option<f64>,
    #[serde(default)]
    figures: BTreeMap<String, Value>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct RawSuiteRun {
    run: String,
    status: PathStatus,
    tests: Vec<SuiteTest>,
    #[serde(default)]
    problems: Vec<String>,
}

#[derive(Deserialize)]
struct RawBlockPath {
    status: Option<PathStatus>,
    reason: Option<String>,
    write_bw_mib_s: Option<f64>,
    write_iops: Option<f64>,
    randread_iops: Option<f64>,
    verify_errors: Option<f64>,
}

fn check_result(path: &Path, v: Value) -> Result<CheckResult, ReportError> {
    let shape = |m: &str| ReportError::Shape(path.into(), m.to_owned());
    if !v.is_object() {
        return Err(shape("expected a JSON object (a VM check's result.json)"));
    }
    // The payload's report: nested under `test` (offline runner) or at the top.
    let report = match v.get("test") {
        Some(t) if t.is_object() => t,
        _ => &v,
    };
    let runner: Runner = from_value(path, &v)?;
    let report: Report = from_value(path, report)?;
    let device =
        (runner.device.or(report.device)).ok_or_else(|| shape("no \"device\" (string)"))?;
    let driver = (runner.driver.or(report.driver))
        .unwrap_or_else(|| device.split('_').next().unwrap_or_default().to_owned());
    let tests = match report.tests {
        Some(tests) => tests,
        None if runner.status == CheckStatus::Pass => {
            return Err(shape(
                "status pass but no \"tests\": not a hot-path check's result",
            ))
        }
        None => Vec::new(),
    };
    let mut c = CheckResult {
        file: path.into(),
        check: check_label(&runner.name, &runner.kernel_name, &driver),
        kernel: runner.kernel,
        device,
        driver,
        status: runner.status,
        reason: runner.reason,
        wall_s: runner.wall_s,
        negative_pabi: runner.negative_pabi.or(report.negative_pabi),
        tests: tests.into_iter().map(test_result).collect(),
        suite: report.suite.into_iter().map(suite_run).collect(),
        nvmeof: report.nvmeof.map(block_path),
        rnbd: report.rnbd.map(block_path),
    };
    if c.passed() {
        if let Some(why) = first_failure(&c) {
            c.status = CheckStatus::Fail;
            c.reason = Some(why);
        }
    }
    Ok(c)
}

/// Which check of its kernel a result is: the runner's name without the kernel's
/// (`hotpaths-siw-<kernel>` → `hotpaths-siw`); a NixOS test's has no name.
fn check_label(name: &Option<String>, kernel_name: &Option<String>, driver: &str) -> String {
    match (name, kernel_name) {
        (Some(n), Some(k)) => n.replacen(&format!("-{k}"), "", 1),
        (Some(n), None) => n.clone(),
        (None, _) => format!("hotpaths-{driver}"),
    }
}

/// A pass without its figures is a failure, whatever the payload said.
fn test_result(t: RawTest) -> TestResult {
    let figures: Vec<(String, f64)> = (t.figures.into_iter())
        .filter_map(|(k, v)| v.as_f64().map(|f| (k, f)))
        .collect();
    let mut r = TestResult {
        test: t.test,
        status: t.status,
        seconds: t.seconds,
        figures,
        reason: t.reason,
    };
    if r.status == TestStatus::Pass {
        let bad: Vec<&str> = (required_figures(&r.test).iter().copied())
            .filter(|f| !r.figure(f).is_some_and(|v| v > 0.0))
            .collect();
        if !bad.is_empty() {
            r.status = TestStatus::Fail;
            r.reason = Some(format!("zero or missing figures: {}", bad.join(" ")));
        }
    }
    r
}

/// A run where nothing passed is a failure: a pass carries its evidence.
fn suite_run(r: RawSuiteRun) -> SuiteRun {
    let count = |o: &[Outcome]| r.tests.iter().filter(|t| o.contains(&t.outcome)).count();
    let (passed, skipped) = (count(&[Outcome::Pass]), count(&[Outcome::Skip]));
    let (excluded, failed) = (
        count(&[Outcome::Excluded]),
        count(&[Outcome::Fail, Outcome::Error]),
    );
    let mut run = SuiteRun {
        run: r.run,
        status: r.status,
        passed,
        skipped,
        excluded,
        failed,
        problems: r.problems,
        tests: r.tests,
    };
    if run.status == PathStatus::Pass && run.passed == 0 {
        run.status = PathStatus::Fail;
        run.problems.push("no test passed".into());
    }
    run
}

/// A block path's pass needs its figures above zero and no verify error; no status
/// at all is a failure.
fn block_path(b: RawBlockPath) -> BlockPath {
    let mut r = BlockPath {
        status: b.status.unwrap_or(PathStatus::Fail),
        reason: b.reason,
        write_bw_mib_s: b.write_bw_mib_s,
        write_iops: b.write_iops,
        randread_iops: b.randread_iops,
        verify_errors: b.verify_errors,
    };
    if r.status == PathStatus::Pass {
        let positive = |v: Option<f64>| v.is_some_and(|v| v > 0.0);
        if !positive(r.write_bw_mib_s) || !positive(r.randread_iops) {
            r.status = PathStatus::Fail;
            r.reason = Some("zero or missing figures".into());
        } else if r.verify_errors != Some(0.0) {
            r.status = PathStatus::Fail;
            r.reason = Some(format!("verify errors: {:?}", r.verify_errors));
        }
    }
    r
}

/// Why a check the runner passed fails after all: the first part that didn't pass.
fn first_failure(c: &CheckResult) -> Option<String> {
    if let Some(r) = c.suite.iter().find(|r| r.status != PathStatus::Pass) {
        return Some(format!(
            "rdma-core's suite ({}): {}",
            r.run,
            r.problems.join("; ")
        ));
    }
    if let Some(n) = c.nvmeof.as_ref().filter(|n| n.status != PathStatus::Pass) {
        return Some(format!("NVMe-oF: {}", n.why()));
    }
    if let Some(n) = c.rnbd.as_ref().filter(|n| !n.fine_on(&c.driver)) {
        return Some(format!("RNBD: {}", n.why()));
    }
    let t = c.tests.iter().find(|t| t.status == TestStatus::Fail)?;
    let why = t.reason.as_deref().unwrap_or("no reason given");
    Some(format!("{} failed: {why}", t.test))
}

#[derive(Deserialize)]
struct RawLoad {
    kernel: String,
    status: CheckStatus,
    reason: Option<String>,
    #[serde(default)]
    drivers: Vec<String>,
    wall_s: Option<f64>,
    test: Option<Value>,
}

#[derive(Deserialize)]
struct RawLoadReport {
    #[serde(default)]
    modules: Vec<String>,
    #[serde(default)]
    registered: Vec<String>,
    loaded: Option<u64>,
    unloaded: Option<u64>,
    dmesg_clean: Option<bool>,
}

/// A pass without its evidence (no module, fewer loaded or unloaded than listed, the
/// kernel log not checked) is a failure.
fn restored_load(path: &Path, v: Value) -> Result<RestoredLoad, ReportError> {
    let shape = |m: &str| ReportError::Shape(path.into(), m.to_owned());
    if !is_restored_load(&v) {
        return Err(shape(
            "not a restored-drivers load check (no \"check\": \"restored-load\")",
        ));
    }
    let raw: RawLoad = from_value(path, &v)?;
    let report: Option<RawLoadReport> = match raw.test {
        Some(t) if t.is_object() => Some(from_value(path, &t)?),
        _ => None,
    };
    let mut r = RestoredLoad {
        file: path.into(),
        kernel: raw.kernel,
        status: raw.status,
        reason: raw.reason,
        drivers: raw.drivers,
        modules: Vec::new(),
        registered: Vec::new(),
        wall_s: raw.wall_s,
    };
    if r.status == CheckStatus::Pass {
        let t = (report.as_ref()).ok_or_else(|| shape("status pass but no \"test\" report"))?;
        if let Some(why) = load_failure(t) {
            r.status = CheckStatus::Fail;
            r.reason = Some(why);
        }
    }
    if let Some(t) = report {
        r.modules = t.modules;
        r.registered = t.registered;
    }
    Ok(r)
}

fn load_failure(t: &RawLoadReport) -> Option<String> {
    let n = t.modules.len() as u64;
    if n == 0 {
        Some("no module was loaded".into())
    } else if t.loaded != Some(n) || t.unloaded != Some(n) {
        Some(format!(
            "{n} modules, but loaded {:?} and unloaded {:?}",
            t.loaded, t.unloaded
        ))
    } else if t.dmesg_clean != Some(true) {
        Some("the kernel log was not found clean".into())
    } else {
        None
    }
}
