//! checks/payload/rdma-suite.py, the runner of rdma-core's own suite in the VM checks,
//! against a small suite laid out as rdma-core's tests/ is (args_parser.py, __init__.py
//! loading every test_*.py): its outcomes and its verdict against expectations. The VM
//! checks run the real suite (tests/it/vm_checks.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{require, run, write};

const ARGS_PARSER: &str = r#"
import argparse, sys
class ArgsParser:
    def __init__(self):
        self.args = None
    def get_config(self):
        return self.args
    def parse_args(self):
        p = argparse.ArgumentParser()
        p.add_argument('--dev')
        p.add_argument('--gid', type=int)
        p.add_argument('-v', '--verbose', dest='verbosity', action='store_const', const=2)
        ns, args = p.parse_known_args()
        self.args = vars(ns)
        sys.argv[1:] = args
parser = ArgsParser()
"#;

const INIT: &str = r#"
import importlib, os
def _load():
    return [importlib.import_module("." + f[:-3], __name__)
            for f in sorted(os.listdir(os.path.dirname(__file__)))
            if f.startswith("test_") and f.endswith(".py")]
__test_modules__ = _load()
def load_tests(loader, standard_tests, pattern):
    for m in __test_modules__:
        standard_tests.addTests(loader.loadTestsFromModule(m, pattern=pattern))
    return standard_tests
"#;

const TESTS: &str = r#"
import random, unittest
from args_parser import parser
class T(unittest.TestCase):
    def test_passes(self):
        self.assertEqual(parser.args['dev'], 'rxe_eth0')
    def test_passes_too(self):
        pass
    def test_skips(self):
        raise unittest.SkipTest('not on this device')
    def test_fails(self):
        self.assertEqual(1, 2, 'one is not two')
    def test_errors(self):
        raise OSError(95, 'Operation not supported')
    def test_random(self):
        # The runner seeds random: the same draw every run.
        self.assertEqual(random.random(), random.Random(20261202).random())
"#;

struct Suite {
    _dir: tempfile::TempDir,
    tests: PathBuf,
    root: PathBuf,
}

fn suite() -> Suite {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("tests");
    write(&tests.join("args_parser.py"), ARGS_PARSER.as_bytes());
    write(&tests.join("__init__.py"), INIT.as_bytes());
    write(&tests.join("test_sample.py"), TESTS.as_bytes());
    Suite {
        root: dir.path().to_owned(),
        tests,
        _dir: dir,
    }
}

fn series() -> String {
    let r = String::from_utf8(run(Command::new("uname").arg("-r")).stdout).unwrap();
    let mut it = r.trim().split('.');
    format!("{}.{}", it.next().unwrap(), it.next().unwrap())
}

/// Runs the runner with these expectations; (exit code, report).
fn check(s: &Suite, expectations: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    check_run(s, "suite", expectations, extra)
}

/// The same for the named run.
fn check_run(
    s: &Suite,
    name: &str,
    expectations: &str,
    extra: &[&str],
) -> (i32, serde_json::Value) {
    let exp = s.root.join("expected.toml");
    write(&exp, expectations.as_bytes());
    let out = s.root.join("out.json");
    let _ = std::fs::remove_file(&out);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("checks/payload/rdma-suite.py");
    let o = run(Command::new("python3")
        .arg(script)
        .arg(&s.tests)
        .arg(&exp)
        .arg(name)
        .arg(&out)
        .args(["--", "--dev", "rxe_eth0"])
        .args(extra)
        .env("RDMA_SUITE_LATE_RECV_SECONDS", "0.4"));
    let report = std::fs::read_to_string(&out)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(serde_json::Value::Null);
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    (o.status.code().unwrap_or(-1), report)
}

fn expectations(passes: usize, failures: &[&str]) -> String {
    let series = series();
    let mut t = format!("[passes.suite.rxe]\n\"{series}\" = {passes}\n");
    for f in failures {
        t += &format!(
            "\n[[failure]]\ntest = \"tests.test_sample.T.{f}\"\ndevices = [\"rxe\"]\nseries = [\"{series}\"]\nreason = \"{f} is known to fail\"\n"
        );
    }
    t
}

fn problems(r: &serde_json::Value) -> Vec<String> {
    r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_outcome_is_recorded_and_matching_expectations_pass() {
    require("python3");
    let s = suite();
    let (code, r) = check(&s, &expectations(3, &["test_fails", "test_errors"]), &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["status"], "pass");
    assert_eq!(
        r["counts"],
        serde_json::json!({"pass": 3, "skip": 1, "fail": 1, "error": 1, "excluded": 0})
    );
    let outcome = |t: &str| {
        r["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["test"] == format!("tests.test_sample.T.{t}"))
            .unwrap()
            .clone()
    };
    assert_eq!(outcome("test_random")["outcome"], "pass");
    assert_eq!(outcome("test_skips")["reason"], "not on this device");
    assert_eq!(
        outcome("test_fails")["expected_failure"],
        "test_fails is known to fail"
    );
    assert!(outcome("test_errors")["reason"]
        .as_str()
        .unwrap()
        .contains("Operation not supported"));
}

#[test]
fn a_failing_test_not_listed_fails_the_check() {
    require("python3");
    let s = suite();
    let (code, r) = check(&s, &expectations(3, &["test_errors"]), &[]);
    assert_eq!(code, 1);
    assert_eq!(r["status"], "fail");
    let p = problems(&r);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("test_fails: fail, not an expected failure"),
        "{p:?}"
    );
    // With the error itself, so that a failure explains itself.
    assert!(p[0].contains(": one is not two"), "{p:?}");
}

#[test]
fn a_stale_expectation_fails_the_check() {
    require("python3");
    let s = suite();
    let (code, r) = check(
        &s,
        &expectations(3, &["test_fails", "test_errors", "test_passes_too"]),
        &[],
    );
    assert_eq!(code, 1);
    let p = problems(&r);
    assert!(
        p.iter()
            .any(|x| x.contains("test_passes_too: listed as failing") && x.contains("(stale)")),
        "{p:?}"
    );
}

#[test]
fn fewer_passes_than_expected_or_no_count_fails_the_check() {
    require("python3");
    let s = suite();
    let (code, r) = check(&s, &expectations(4, &["test_fails", "test_errors"]), &[]);
    assert_eq!(code, 1);
    assert!(problems(&r)[0].contains("3 passes, fewer than the 4 expected"));
    let (code, r) = check(&s, "", &[]);
    assert_eq!(code, 1);
    assert!(problems(&r)
        .iter()
        .any(|p| p.contains("no expected pass count")));
    // -k selects tests as run_tests.py does.
    let (code, r) = check(&s, &expectations(1, &[]), &["-k", "test_passes_too"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["counts"]["pass"], 1);
}

#[test]
fn bad_expectations_name_the_file() {
    require("python3");
    let s = suite();
    let exp = s.root.join("expected.toml");
    write(&exp, b"[passes\n");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("checks/payload/rdma-suite.py");
    let o = run(Command::new("python3")
        .arg(script)
        .arg(&s.tests)
        .arg(&exp)
        .args(["suite", "/dev/null", "--", "--dev", "rxe_eth0"]));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&*exp.to_string_lossy()), "{err}");
}

#[test]
fn excluded_tests_are_not_run_and_say_why() {
    require("python3");
    let s = suite();
    let series = series();
    let exp = format!(
        "{}\n[[exclude]]\ntest = \"tests.test_sample.T.test_f*\"\ndevices = [\"rxe\"]\nseries = [\"{series}\"]\nreason = \"takes the kernel down\"\n",
        expectations(3, &["test_errors"])
    );
    let (code, r) = check(&s, &exp, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["counts"]["excluded"], 1);
    assert_eq!(r["counts"]["fail"], 0);
    let t = r["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["test"] == "tests.test_sample.T.test_fails")
        .unwrap();
    assert_eq!(t["outcome"], "excluded");
    assert_eq!(t["reason"], "takes the kernel down");
}

/// rdma-core's tests/rdmacm_utils.py as far as the `ext-qp-late-recv` probe touches it:
/// a module-level poll_cq, and the external-QP test's active-side loop (two polls per
/// message), here noting when each poll returned.
const RDMACM_UTILS: &str = r#"
import time
def poll_cq(cq, count=1, data=None):
    cq.append(time.monotonic())
    return []
class Resources:
    num_msgs = 3
class Connection:
    def __init__(self):
        self.cm_res = Resources()
    def _ext_qp_client_traffic(self, cq):
        for _ in range(self.cm_res.num_msgs):
            poll_cq(cq)
            poll_cq(cq)
"#;

/// The probe held the active side once, after its next-to-last poll (before its last
/// receive in upstream's order), for RDMA_SUITE_LATE_RECV_SECONDS.
const EXT_QP_TEST: &str = r#"
import time, unittest
from tests.rdmacm_utils import Connection
class CM(unittest.TestCase):
    def test_rdmacm_async_traffic_external_qp(self):
        polls = []
        Connection()._ext_qp_client_traffic(polls)
        gaps = [b - a for a, b in zip(polls, polls[1:])]
        self.assertEqual(len(gaps), 5)
        self.assertGreaterEqual(gaps[4], 0.4)
        self.assertLess(max(gaps[:4]), 0.4)
    def test_rdmacm_sync_traffic(self):
        pass
"#;

/// The `ext-qp-late-recv` run on a suite with the external-QP test's module (or
/// without it), selecting tests with `-k pattern`.
fn probe(with_module: bool, pattern: &str) -> (i32, serde_json::Value) {
    let s = suite();
    if with_module {
        write(&s.tests.join("rdmacm_utils.py"), RDMACM_UTILS.as_bytes());
        write(&s.tests.join("test_cm.py"), EXT_QP_TEST.as_bytes());
    }
    let expectations = format!("[passes.ext-qp-late-recv.rxe]\n\"{}\" = 1\n", series());
    check_run(&s, "ext-qp-late-recv", &expectations, &["-k", pattern])
}

#[test]
fn the_late_receive_probe_holds_the_active_side_before_its_last_receive() {
    require("python3");
    let (code, r) = probe(true, "test_rdmacm_async_traffic_external_qp");
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["counts"]["pass"], 1);
    assert_eq!(r["probe"]["holds"], 1);
    assert_eq!(r["probe"]["late_recv_seconds"], 0.4);
}

#[test]
fn a_late_receive_probe_that_never_held_fails_and_one_without_the_module_cannot_run() {
    require("python3");
    // The test ran and passed, but not through the held loop: not evidence.
    let (code, r) = probe(true, "test_rdmacm_sync_traffic");
    assert_eq!(code, 1, "{r}");
    assert!(problems(&r).iter().any(|p| p.contains("never held")), "{r}");
    // A suite without tests.rdmacm_utils: the probe can't run at all.
    let (code, r) = probe(false, "test_passes");
    assert_eq!(code, 2);
    assert_eq!(r, serde_json::Value::Null);
}
