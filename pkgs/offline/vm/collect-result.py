#!/usr/bin/env python3
"""Turn a VM run into result.json: the guest's report from the second serial port,
or, when there is none, why (timeout, panic, early exit), with the serial log's tail."""
import argparse
import json
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--result", required=True)
ap.add_argument("--serial", required=True)
ap.add_argument("--qemu-rc", type=int, required=True)
ap.add_argument("--elapsed", type=int, required=True)
ap.add_argument("--timeout", type=int, required=True)
ap.add_argument("--kernel", required=True)
ap.add_argument("--name", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--expect-failure", action="store_true")
ap.add_argument("--record-only", action="store_true", help="keep the result, pass or not")
ap.add_argument("--extra", default="{}", help="JSON object merged into the result")
a = ap.parse_args()

try:
    serial = open(a.serial, errors="replace").read()
except FileNotFoundError:
    serial = ""
tail = "\n".join(serial.splitlines()[-40:])

report = None
try:
    raw = open(a.result, errors="replace").read()
    if "RDMA_NIX_RESULT_END" in raw:
        report = json.loads(raw.split("RDMA_NIX_RESULT_END")[0].strip())
except (FileNotFoundError, json.JSONDecodeError) as e:
    report = None

result = {"name": a.name, "kernel": a.kernel, "wall_s": a.elapsed, "qemu_exit": a.qemu_rc}
result.update(json.loads(a.extra))
if report is not None:
    result.update(report)
    if report.get("uname_r") != a.kernel:
        result["status"] = "fail"
        result["reason"] = f"guest runs {report.get('uname_r')}, expected {a.kernel}"
elif a.qemu_rc in (124, 137):
    panic = [l for l in serial.splitlines() if "Kernel panic" in l]
    hint = f"; the kernel panicked: {panic[0].split('] ', 1)[-1]}" if panic else ""
    result.update(status="timeout", reason=f"no result within {a.timeout} s{hint}")
elif "Kernel panic" in serial:
    result.update(status="panic", reason="kernel panic before the test reported")
else:
    result.update(status="error", reason=f"qemu exited with {a.qemu_rc} before the test reported")

with open(a.out, "w") as f:
    json.dump(result, f, indent=2, sort_keys=True)
    f.write("\n")

ok = result["status"] == "pass"
if ok == a.expect_failure and not a.record_only:
    what = "passed but was expected to fail" if ok else f"{result['status']}: {result.get('reason', 'test failed')}"
    failed = [
        t for t in ((result.get("test") or {}).get("tests") or [])
        if isinstance(t, dict) and t.get("status") == "fail"
    ]
    detail = "".join(
        f"--- {t.get('test')}: failed (exit {t.get('exit_code')}) ---\n{t.get('output', '')}\n"
        + (f"--- {t.get('test')}: its server (exit {t.get('server_exit')}) ---\n{t['server_output']}\n" if t.get("server_output") else "")
        for t in failed
    )
    sys.stderr.write(f"VM check {a.name} on {a.kernel} {what}\n{detail}--- serial log (last 40 lines) ---\n{tail}\n")
    sys.exit(1)
print(f"VM check {a.name} on {a.kernel}: {result['status']} in {a.elapsed} s")
