//! The VM checks' results as a kernel × check × test matrix page, and the sections
//! beside it. One concern per module:
//! - `model`: what a check's result holds, statuses as enums, and what the matrix
//!   derives from them (why checks failed, what changed between kernels);
//! - `read`: `result.json` in its shapes (the offline runner's, a NixOS test's, a
//!   restored-drivers load check's) into the model, a pass held to its evidence;
//! - `page`: the page as blocks (tables, lists, charts), built once;
//! - `markdown`, `html`: the two renderings of those blocks;
//! - `update`: the last `rdma-nix update`'s record and its comparison of each added
//!   kernel with its predecessor; `stages`: a run's stages against what bounds them.

pub mod html;
pub mod markdown;
pub mod model;
pub mod page;
pub mod read;
pub mod stages;
pub mod update;

use std::path::PathBuf;

pub use model::*;
pub use read::{is_restored_load, read_any, read_restored_load, read_result, AnyResult};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}", .0.display())]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{}: not the JSON expected", .0.display())]
    Json(
        PathBuf,
        #[source] serde_path_to_error::Error<serde_json::Error>,
    ),
    #[error("{}: {}", .0.display(), .1)]
    Shape(PathBuf, String),
}

impl Matrix {
    /// The page as Markdown, without the last update or the stages.
    pub fn markdown(&self) -> String {
        markdown::render(&self.page(None, None))
    }

    /// The page as HTML, without the last update or the stages.
    pub fn html(&self) -> String {
        html::render(&self.page(None, None))
    }
}

/// An error with its causes, on one line, as `main` prints it.
#[cfg(test)]
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut at = e.source();
    while let Some(c) = at {
        s += &format!(": {c}");
        at = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        assert_eq!(ok.status, CheckStatus::Pass);
        let m = Matrix::new(vec![ok]);
        assert!(
            m.markdown().contains("| 5.50 | 700.00 |"),
            "{}",
            m.markdown()
        );
        // Charts only of the figures some check has: RNBD's two.
        assert_eq!(m.html().matches("<svg").count(), 2);
        let bad =
            rnbd(r#"{"status":"pass","write_bw_mib_s":5.5,"randread_iops":700,"verify_errors":1}"#);
        assert_eq!(bad.status, CheckStatus::Fail);
        assert!(bad.reason.unwrap().starts_with("RNBD: verify errors"));
        let failed = rnbd(r#"{"status":"fail","reason":"no /dev/rnbd* appeared"}"#);
        assert_eq!(
            failed.reason.as_deref(),
            Some("RNBD: no /dev/rnbd* appeared")
        );
        // Unsupported is accepted over siw (iWARP) only.
        let unsupported =
            rnbd(r#"{"status":"unsupported","reason":"RTRS over iWARP: map_device refused"}"#);
        assert_eq!(unsupported.status, CheckStatus::Pass, "{unsupported:?}");
        let p = d.path().join("x.json");
        std::fs::write(
            &p,
            r#"{"status":"pass","kernel":"6.1.0-50-amd64","device":"rxe_eth0",
               "test":{"tests":[{"test":"rping","status":"pass"}],"rnbd":{"status":"unsupported"}}}"#,
        )
        .unwrap();
        assert_eq!(read_result(&p).unwrap().status, CheckStatus::Fail);
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
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            assert!(is_restored_load(&v));
            read_restored_load(&p).unwrap()
        };
        let ok = load(
            r#"{"modules":["efa","rtrs-core"],"registered":["efa:pci/drivers/efa"],"loaded":2,"unloaded":2,"dmesg_clean":true}"#,
        );
        assert_eq!(ok.status, CheckStatus::Pass, "{ok:?}");
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
            assert_eq!(r.status, CheckStatus::Fail, "{test}");
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
        let md = markdown::render(&m.page(Some(&u), None));
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
        assert_eq!(m.html().matches("<svg").count(), 2);

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
            assert_eq!(c.status, CheckStatus::Fail);
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
        assert_eq!(c.status, CheckStatus::Fail);
        assert!(c.reason.as_deref().unwrap().contains("no test passed"));
        let bad = suite_result(d.path(), "d.json", "7.2.13", &[("t.one", "flaky")], ok);
        let e = chain(&read_result(&bad).unwrap_err());
        assert!(
            e.contains("suite[0].tests[0].outcome: unknown variant `flaky`"),
            "{e}"
        );
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
            md.contains(
                "| 6.1.0-50-amd64 | hotpaths-siw | siw_eth0 | pass | unsupported | pass | pass |"
            ) && md.contains("| 6.1.0-50-amd64 | hotpaths-siw | siw_eth0 | 31.50 |"),
            "{md}"
        );
        assert!(
            md.contains("| 6.12.1 | hotpaths-rxe | rxe_eth1 | fail | FAIL | — | — |"),
            "{md}"
        );
        assert!(md.contains("2 checks on 2 kernels and 0 restored-driver loads, 1 not passing"));
        let html = m.html();
        assert!(html.contains("<svg") && html.contains(">31.50</text>"));
    }

    #[test]
    fn bad_results_name_the_file_and_the_problem() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            (
                "notjson.json",
                "{",
                "not the JSON expected: EOF while parsing",
            ),
            ("array.json", "[]", "expected a JSON object"),
            (
                "nokernel.json",
                r#"{"status":"pass","device":"x"}"#,
                "missing field `kernel`",
            ),
            (
                "badstatus.json",
                r#"{"status":"pass","kernel":"k","device":"d","tests":[{"test":"t","status":"ok"}]}"#,
                "tests[0].status: unknown variant `ok`",
            ),
            (
                "notests.json",
                r#"{"status":"pass","kernel":"k","device":"d"}"#,
                "no \"tests\"",
            ),
        ];
        for (name, text, want) in cases {
            let p = write(d.path(), name, text);
            let e = chain(&read_result(&p).unwrap_err());
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
        assert_eq!(c.status, CheckStatus::Fail);
        assert_eq!(c.tests[0].status, TestStatus::Pass);
        assert_eq!(c.tests[1].status, TestStatus::Fail);
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
            md.contains(
                "- 6.1.0-47-amd64 hotpaths-siw siw_eth0: ib_write_bw: zero or missing figures"
            ),
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
