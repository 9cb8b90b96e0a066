# Sourced by the block-storage payloads (rdma-nvmeof.sh, rdma-rnbd.sh): fio writes a
# block device with a checksum in every block, reads every block back to verify it,
# then measures random 4 KiB reads; the report is JSON. The sourcing script sets
# `tag` (its name in messages), `out` (the report) and `logs` (a directory).
#
#   fio_verify BLK SIZE_MB   both phases; prints fio's log and returns 1 on a failure
#   report STATUS REASON     writes $out: status, reason, the phases' bandwidth and
#                            IOPS, the verify errors
#   fail REASON              reports the failure and exits 1
#   check_figures            exits 1 on a verify error or a zero or missing figure

report() {
  python3 - "$1" "$2" "$out" "$logs" <<'PY'
import json, os, sys
status, reason, out, logs = sys.argv[1:5]
r = {"status": status}
if reason:
    r["reason"] = reason
def job(name):
    p = os.path.join(logs, f"{name}.json")
    try:
        return json.load(open(p))["jobs"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return None
w, rr = job("write-verify"), job("randread")
if w:
    r["write_bw_mib_s"] = round(w["write"]["bw"] / 1024, 2)
    r["write_iops"] = round(w["write"]["iops"], 1)
    r["verify_read_bw_mib_s"] = round(w["read"]["bw"] / 1024, 2)
    r["verify_errors"] = w["error"]
if rr:
    r["randread_iops"] = round(rr["read"]["iops"], 1)
    r["randread_lat_us"] = round(rr["read"]["clat_ns"]["mean"] / 1000, 1)
json.dump(r, open(out, "w"))
PY
}

fail() {
  echo "$tag: $1" >&2
  report fail "$1"
  exit 1
}

fio_verify() {
  common="--filename=$1 --direct=1 --ioengine=libaio --iodepth=16 --output-format=json"
  fio --name=write-verify $common --rw=write --bs=64k --size=${2}M \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --output=$logs/write-verify.json \
    > $logs/write-verify.log 2>&1 || { cat $logs/write-verify.log; return 1; }
  fio --name=randread $common --rw=randread --bs=4k --size=${2}M --runtime=8 --time_based \
    --output=$logs/randread.json > $logs/randread.log 2>&1 || { cat $logs/randread.log; return 1; }
}

check_figures() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[2])); print(sys.argv[1] + ":", r); sys.exit(0 if r.get("verify_errors") == 0 and r.get("write_bw_mib_s", 0) > 0 and r.get("randread_iops", 0) > 0 else 1)' "$tag" "$out" ||
    fail "a zero or missing figure, or a verify error"
}
