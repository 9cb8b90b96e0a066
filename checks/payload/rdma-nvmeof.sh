#!/bin/sh
# The kernel's RDMA storage hot path on one node: an NVMe-over-Fabrics target (nvmet,
# nvmet-rdma, set up through configfs) exporting a ramdisk (brd), and the host
# (nvme-rdma, connected with nvme-cli) over the same soft device's address; fio
# writes the namespace with checksums and reads every block back to verify it, then
# measures random 4 KiB reads.
#
#   rdma-nvmeof.sh ADDR OUT.json
#
# OUT.json: status, the write phase's bandwidth and IOPS, the verify and random read
# phases', the verify errors, and the reason when it fails. Exits 1 on any failure,
# a verify error included. Needs the modules nvmet, nvmet_rdma, nvme_rdma and brd
# (a ramdisk of rd_size KiB), nvme and fio on PATH, python3 for the JSON.
set -u

addr=$1 out=$2
nqn=nqn.2026-12.org.rdma-nix:ramdisk
# Newer kernels (6.12) refuse a host NQN whose UUID differs from the host ID.
hostid=6c9e1b9a-7d5e-4c55-9a3e-2f1d3c0b5a01
hostnqn=nqn.2014-08.org.nvmexpress:uuid:$hostid
port=4420
size_mb=32
logs=/tmp/rdma-nvmeof
mkdir -p $logs

report() {
  python3 - "$1" "$2" "$out" "$logs" <<'EOF'
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
EOF
}

fail() {
  echo "rdma-nvmeof: $1" >&2
  report fail "$1"
  exit 1
}

# The ramdisk: one, of the size used.
rmmod brd 2>/dev/null
insmod /lib/modules/brd.ko rd_nr=1 rd_size=$((size_mb * 1024)) || fail "can't load brd"
[ -b /dev/ram0 ] || fail "no /dev/ram0"

cfg=/sys/kernel/config
grep -q " $cfg configfs" /proc/mounts || mount -t configfs none $cfg || fail "can't mount configfs"
[ -d $cfg/nvmet ] || fail "no nvmet in configfs (is nvmet loaded?)"

# The target.
s=$cfg/nvmet/subsystems/$nqn
mkdir $s || fail "can't make the subsystem"
echo 1 > $s/attr_allow_any_host
mkdir $s/namespaces/1
printf /dev/ram0 > $s/namespaces/1/device_path
echo 1 > $s/namespaces/1/enable || fail "can't enable the namespace"
p=$cfg/nvmet/ports/1
mkdir $p
echo rdma > $p/addr_trtype
echo ipv4 > $p/addr_adrfam
echo "$addr" > $p/addr_traddr
echo $port > $p/addr_trsvcid
ln -s $s $p/subsystems/$nqn || fail "the RDMA port refused the subsystem (nvmet_rdma on $addr)"

# The host.
nvme connect -t rdma -a "$addr" -s $port -n $nqn --hostnqn=$hostnqn --hostid=$hostid > $logs/connect.log 2>&1 ||
  fail "nvme connect failed: $(tail -n 1 $logs/connect.log)"
# The namespace's block device: the controller of our subsystem over rdma, and its
# namespace (with native multipath, /dev/nvmeXnY of the subsystem).
blk=""
for i in $(seq 30); do
  for c in /sys/class/nvme/nvme*; do
    [ "$(cat $c/transport 2>/dev/null)" = rdma ] && [ "$(cat $c/subsysnqn 2>/dev/null)" = $nqn ] || continue
    for b in /sys/block/nvme*n*; do
      [ -e "$b" ] && [ -b /dev/${b##*/} ] && blk=/dev/${b##*/}
    done
  done
  [ -n "$blk" ] && break
  sleep 1
done
if [ -z "$blk" ]; then
  cat $logs/connect.log; ls /sys/class/nvme /sys/block
  fail "no namespace of $nqn appeared"
fi
echo "rdma-nvmeof: $nqn on $blk over rdma $addr:$port"

common="--filename=$blk --direct=1 --ioengine=libaio --iodepth=16 --output-format=json"
# Sequential writes with a checksum in every block, then every block read back.
fio --name=write-verify $common --rw=write --bs=64k --size=${size_mb}M \
  --verify=crc32c --do_verify=1 --verify_fatal=1 --output=$logs/write-verify.json \
  > $logs/write-verify.log 2>&1 || { cat $logs/write-verify.log; nvme disconnect -n $nqn; fail "fio write-verify failed"; }
fio --name=randread $common --rw=randread --bs=4k --size=${size_mb}M --runtime=8 --time_based \
  --output=$logs/randread.json > $logs/randread.log 2>&1 || { cat $logs/randread.log; nvme disconnect -n $nqn; fail "fio randread failed"; }

nvme disconnect -n $nqn > $logs/disconnect.log 2>&1 || fail "nvme disconnect failed"
rm $p/subsystems/$nqn
rmdir $p
echo 0 > $s/namespaces/1/enable
rmdir $s/namespaces/1
rmdir $s
report pass ""
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("rdma-nvmeof:", r); sys.exit(0 if r.get("verify_errors") == 0 and r.get("write_bw_mib_s", 0) > 0 and r.get("randread_iops", 0) > 0 else 1)' "$out" ||
  fail "a zero or missing figure, or a verify error"
