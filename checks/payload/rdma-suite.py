#!/usr/bin/env python3
"""rdma-core's own test suite (tests/, what run_tests.py runs) on one device, checked
against the expectations of this kernel series and device.

    rdma-suite.py SUITE_DIR EXPECTATIONS RUN OUT.json -- [run_tests.py arguments]

SUITE_DIR is the installed tests/ directory (rdma-core-pyverbs' share/doc/rdma-core/
tests), pyverbs on PYTHONPATH. RUN names the run in EXPECTATIONS (`suite`: every
test on the device; `cm`: siw's RDMA CM subset; `ext-qp-late-recv`: below). The
arguments after `--` are run_tests.py's (`--dev siw_eth0 --gid 0 -k test_rdmacm`).

RUN `ext-qp-late-recv` is a probe of the suite's harness, not a run of upstream's
tests as they are: test_rdmacm_async_traffic_external_qp, with the active side
holding still for LATE_RECV_SECONDS (8; RDMA_SUITE_LATE_RECV_SECONDS) after its
next-to-last completion of its traffic loop (`_ext_qp_client_traffic`). Upstream's
loop posts the receive for the passive side's reply only after its send completed,
so there a reply arrives ahead of its receive (an RNR NAK; the passive side's send
fails "RNR retry exceeded" after rnr_retry 5 x 655 ms) whenever the active side is
that slow: what a loaded guest did now and then. rdma-core-pyverbs posts the receive
first (pkgs/rdma-core/patches/suite-ext-qp-recv-before-send.patch), and this run
passes with it and fails without it, every time. A run in which the hold never
happened fails.

Python's `random` is seeded with a fixed number first: several tests pick QP
attributes at random, and a check gives the same answer every time.

OUT.json holds every test's outcome (pass, skip, fail, error) with the reason, the
counts, and the verdict against EXPECTATIONS (TOML):

    [passes.<run>.<device>]   "<series>" = N   the least number of passes
    [[failure]]               test, run (default "suite"), devices, series, reason:
                              a test that fails (or errors) there, and why
    [[exclude]]               test (a glob), run, devices, series, reason: tests not
                              run there at all (one that takes the kernel down,
                              or one for other hardware), recorded as `excluded`
                              with the reason

The check fails on a failure not listed, on a listed failure that passes (stale),
and on fewer passes than listed (or none listed) for this series × device. The
series is the kernel's major.minor (`uname -r`). Exits 1 when the check fails, 2
when it can't run.
"""
import json
import os
import platform
import random
import re
import sys
import time
import fnmatch
import tomllib
import unittest
from importlib.machinery import SourceFileLoader

SEED = 20261202
LATE_RECV_RUN = "ext-qp-late-recv"
LATE_RECV_SECONDS = float(os.environ.get("RDMA_SUITE_LATE_RECV_SECONDS", "8"))


class Recorder(unittest.TextTestResult):
    """Each test's outcome, in the order they ran."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.outcomes = []
        self._start = 0.0

    def startTest(self, test):
        self._start = time.monotonic()
        super().startTest(test)

    def _record(self, test, outcome, reason=None):
        self.outcomes.append(
            {
                "test": test.id(),
                "outcome": outcome,
                "seconds": round(time.monotonic() - self._start, 3),
                **({"reason": reason} if reason else {}),
            }
        )

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "fail", last_line(self._exc_info_to_string(err, test)))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", last_line(self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skip", str(reason)[:300])

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "skip", "expected failure (unittest)")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "pass")


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:300] if lines else ""


def series_of(release):
    m = re.match(r"(\d+\.\d+)", release)
    return m.group(1) if m else release


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def applies(entry, run, driver, series):
    return entry.get("run", "suite") == run and driver in entry.get("devices", []) and series in entry.get("series", [])


def hold_late_recv(seconds, marker):
    """The `ext-qp-late-recv` probe: in the process running the external-QP test's
    active side (`_ext_qp_client_traffic`), sleeps `seconds` after its next-to-last
    CQ poll (2 per message), and notes each hold in `marker` (the test's sides are
    forked processes)."""
    utils = sys.modules.get("tests.rdmacm_utils")
    if utils is None or not callable(getattr(utils, "poll_cq", None)):
        print("rdma-suite: the suite has no tests.rdmacm_utils.poll_cq to hold", file=sys.stderr)
        raise SystemExit(2)
    poll = utils.poll_cq
    polls = [0]

    def held_poll_cq(cq, *args, **kwargs):
        wcs = poll(cq, *args, **kwargs)
        caller = sys._getframe(1)
        if caller.f_code.co_name == "_ext_qp_client_traffic":
            polls[0] += 1
            if polls[0] == 2 * caller.f_locals["self"].cm_res.num_msgs - 1:
                with open(marker, "a") as f:
                    f.write(f"{seconds}\n")
                time.sleep(seconds)
        return wcs

    utils.poll_cq = held_poll_cq


def run_suite(suite_dir, args, excluded, hold=None):
    """Loads the suite as run_tests.py does and runs it with the Recorder, leaving out
    the tests matching `excluded` (glob → reason); returns every outcome and the time."""
    sys.argv = ["run_tests.py"] + args
    sys.path.insert(0, suite_dir)
    from args_parser import parser  # noqa: E402  (the suite's own)

    parser.parse_args()
    patterns = []
    rest = sys.argv[1:]
    i = 0
    while i < len(rest):
        if rest[i] == "-k" and i + 1 < len(rest):
            p = rest[i + 1]
            patterns.append(p if "*" in p else f"*{p}*")
            i += 2
        elif rest[i] in ("--verbose", "-v"):
            i += 1
        else:
            raise SystemExit(f"rdma-suite: unknown argument {rest[i]!r}")
    random.seed(SEED)
    tests = SourceFileLoader("tests", os.path.join(suite_dir, "__init__.py")).load_module()
    if hold is not None:
        hold_late_recv(*hold)
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = patterns
    left_out = []
    kept = unittest.TestSuite()
    for t in flatten(loader.loadTestsFromModule(tests)):
        why = next((r for g, r in excluded.items() if fnmatch.fnmatchcase(t.id(), g)), None)
        if why is None:
            kept.addTest(t)
        else:
            left_out.append({"test": t.id(), "outcome": "excluded", "seconds": 0, "reason": why})
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Recorder)
    start = time.monotonic()
    result = runner.run(kept)
    for x in left_out:
        print(f"{x['test']} ... excluded: {x['reason']}")
    return result.outcomes + left_out, time.monotonic() - start


def verdict(outcomes, expectations, run, device, series):
    """What's wrong with these outcomes, as a list of sentences (empty: the check passes)."""
    problems = []
    listed = {}
    for f in expectations.get("failure", []):
        if applies(f, run, device, series):
            listed[f["test"]] = f.get("reason", "")
    by_test = {}
    why = {}
    for o in outcomes:
        by_test[o["test"]] = o["outcome"]
        why[o["test"]] = f" after {o.get('seconds', 0):.1f} s: {o['reason']}" if o.get("reason") else ""
    for name, outcome in by_test.items():
        if outcome in ("fail", "error") and name not in listed:
            # The error itself goes with it: a failure explains itself in the serial
            # log's tail and in result.json.
            problems.append(f"{name}: {outcome}, not an expected failure on {device} {series}{why[name]}")
    for name in listed:
        outcome = by_test.get(name)
        if outcome is None:
            problems.append(f"{name}: listed as failing on {device} {series} but didn't run (stale)")
        elif outcome in ("pass", "skip"):
            problems.append(f"{name}: listed as failing on {device} {series} but gave {outcome} (stale)")
    passes = sum(1 for o in by_test.values() if o == "pass")
    want = expectations.get("passes", {}).get(run, {}).get(device, {}).get(series)
    if want is None:
        problems.append(f"no expected pass count for run {run} on {device} {series} ({passes} passed)")
    elif passes < want:
        problems.append(f"{passes} passes, fewer than the {want} expected on {device} {series}")
    return problems, listed


def main():
    if "--" not in sys.argv or sys.argv.index("--") != 5:
        print(__doc__, file=sys.stderr)
        return 2
    suite_dir, exp_path, run, out = sys.argv[1:5]
    args = sys.argv[6:]
    try:
        with open(exp_path, "rb") as f:
            expectations = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"rdma-suite: {exp_path}: {e}", file=sys.stderr)
        return 2
    device = args[args.index("--dev") + 1] if "--dev" in args else ""
    driver = device.split("_")[0]
    series = series_of(platform.release())
    excluded = {e["test"]: e.get("reason", "") for e in expectations.get("exclude", []) if applies(e, run, driver, series)}
    hold = None
    if run == LATE_RECV_RUN:
        hold = (LATE_RECV_SECONDS, out + ".held")
        if os.path.exists(hold[1]):
            os.remove(hold[1])
    outcomes, seconds = run_suite(suite_dir, args, excluded, hold)
    problems, listed = verdict(outcomes, expectations, run, driver, series)
    probe = {}
    if hold is not None:
        held = open(hold[1]).read().split() if os.path.exists(hold[1]) else []
        probe = {"probe": {"late_recv_seconds": LATE_RECV_SECONDS, "holds": len(held)}}
        if not held:
            problems.append(f"{run}: the active side was never held (no _ext_qp_client_traffic ran)")
    counts = {k: sum(1 for o in outcomes if o["outcome"] == k) for k in ("pass", "skip", "fail", "error", "excluded")}
    for o in outcomes:
        if o["test"] in listed:
            o["expected_failure"] = listed[o["test"]]
    report = {
        "run": run,
        "device": device,
        "driver": driver,
        "series": series,
        "args": args,
        "seed": SEED,
        "seconds": round(seconds, 1),
        "counts": counts,
        "status": "pass" if not problems else "fail",
        "problems": problems,
        "tests": outcomes,
        **probe,
    }
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"rdma-suite {run} on {device} ({series}): {counts} in {seconds:.0f} s")
    for p in problems:
        print(f"rdma-suite: {p}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
