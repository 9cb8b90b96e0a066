//! The VM checks' results as a kernel × device × test matrix: read `result.json` files
//! (the offline runner's, with the payload's report under `test`, or a NixOS test's,
//! flat), then render a text/Markdown table and an HTML page with SVG charts of
//! bandwidth and latency per kernel.

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
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads one result.json.
pub fn read_result(path: &Path) -> Result<CheckResult, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Io(path.into(), e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| ReportError::Json(path.into(), e))?;
    let shape = |m: &str| ReportError::Shape(path.into(), m.to_owned());
    if !v.is_object() {
        return Err(shape("expected a JSON object (a VM check's result.json)"));
    }
    // The payload's report: nested under `test` (offline runner) or at the top.
    let report = match v.get("test") {
        Some(t) if t.is_object() => t,
        _ => &v,
    };
    let kernel = str_field(&v, "kernel").ok_or_else(|| shape("no \"kernel\" (string)"))?;
    let status = str_field(&v, "status").ok_or_else(|| shape("no \"status\" (string)"))?;
    let device = str_field(&v, "device")
        .or_else(|| str_field(report, "device"))
        .ok_or_else(|| shape("no \"device\" (string)"))?;
    let driver = str_field(&v, "driver")
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
    let mut status = status;
    let mut reason = str_field(&v, "reason");
    if status == "pass" {
        if let Some(t) = tests.iter().find(|t| t.status == "fail") {
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
        negative_pabi: str_field(&v, "negative_pabi")
            .or_else(|| str_field(report, "negative_pabi")),
        tests,
    })
}

/// The matrix: checks sorted by kernel then device, and the union of test names in
/// the payload's order of first appearance.
#[derive(Debug, Serialize)]
pub struct Matrix {
    pub checks: Vec<CheckResult>,
    pub tests: Vec<String>,
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
        Matrix { checks, tests }
    }

    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| c.status != "pass").count()
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

    /// A Markdown table (also readable as plain text).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let mut head = vec!["kernel", "device", "check"];
        head.extend(self.tests.iter().map(String::as_str));
        head.push("negative PABI");
        head.extend(Self::FIGURES.iter().map(|f| f.2));
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
        }
        out
    }

    /// A horizontal bar chart (SVG) of one figure per check.
    fn chart(&self, title: &str, test: &str, figure: &str) -> String {
        let bars: Vec<(String, f64)> = self
            .checks
            .iter()
            .filter_map(|c| {
                Self::figure(c, test, figure).map(|v| (format!("{} {}", c.kernel, c.device), v))
            })
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
            s.push_str(&self.chart(title, test, fig));
            s.push_str("</div>\n");
        }
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
