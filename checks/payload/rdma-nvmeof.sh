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
# (a ramdisk of rd_size KiB), nvme and fio on PATH, python3 for the JSON, and
# fio-verify.sh beside it.
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

tag=rdma-nvmeof
. "$(dirname "$0")/fio-verify.sh"

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

fio_verify $blk $size_mb || { nvme disconnect -n $nqn; fail "fio failed"; }

nvme disconnect -n $nqn > $logs/disconnect.log 2>&1 || fail "nvme disconnect failed"
rm $p/subsystems/$nqn
rmdir $p
echo 0 > $s/namespaces/1/enable
rmdir $s/namespaces/1
rmdir $s
report pass ""
check_figures
