#!/bin/sh
# The RDMA block ULP on one node: the RNBD server (rnbd_server over rtrs_server)
# exports a ramdisk (brd), and the client (rnbd_client over rtrs_client) maps it over
# the soft device's address; fio writes the mapped device with checksums and reads
# every block back to verify it, then measures random 4 KiB reads.
#
#   rdma-rnbd.sh ADDR OUT.json [SRC]
#
# SRC: the client's source address (the path's `ip:SRC,ip:ADDR` form), binding the
# connection to the RDMA device that holds it.
#
# OUT.json: status, the write phase's bandwidth and IOPS, the verify and random read
# phases', the verify errors, and the reason when it fails. Exits 1 on any failure,
# a verify error included. Needs the modules brd, rtrs_core, rtrs_server,
# rtrs_client, rnbd_server and rnbd_client loaded (the server listens on RTRS's port
# on every RDMA device), fio on PATH, python3 for the JSON, and fio-verify.sh beside it.
set -u

addr=$1 out=$2 src=${3:-}
path=ip:$addr
[ -n "$src" ] && path=ip:$src,ip:$addr
sess=rdma-nix
size_mb=32
logs=/tmp/rdma-rnbd
mkdir -p $logs

tag=rdma-rnbd
. "$(dirname "$0")/fio-verify.sh"

for m in rtrs_core rtrs_server rtrs_client rnbd_server rnbd_client; do
  grep -q "^$m " /proc/modules || fail "$m is not loaded"
done

# The ramdisk: one, of the size used (another payload may have loaded brd before).
rmmod brd 2>/dev/null
insmod /lib/modules/brd.ko rd_nr=1 rd_size=$((size_mb * 1024)) || fail "can't load brd"
[ -b /dev/ram0 ] || fail "no /dev/ram0"

ctl=/sys/devices/virtual/rnbd-client/ctl
[ -w $ctl/map_device ] || fail "no $ctl/map_device (is rnbd_client loaded?)"
echo "sessname=$sess path=$path device_path=/dev/ram0 access_mode=rw" > $ctl/map_device ||
  { dmesg | tail -n 30; fail "map_device refused sessname=$sess path=$path device_path=/dev/ram0"; }
blk=""
for i in $(seq 30); do
  for b in /sys/block/rnbd*; do
    [ -e "$b" ] && [ -b /dev/${b##*/} ] && blk=/dev/${b##*/}
  done
  [ -n "$blk" ] && break
  sleep 1
done
[ -n "$blk" ] || { dmesg | tail -n 30; fail "no /dev/rnbd* appeared"; }
size=$(cat /sys/block/${blk#/dev/}/size)
[ "$size" = $((size_mb * 2048)) ] || fail "$blk has $size sectors, the ramdisk $((size_mb * 2048))"
echo "rdma-rnbd: /dev/ram0 mapped as $blk over rtrs, session $sess, path $path"

unmap() { echo normal > /sys/block/${blk#/dev/}/rnbd/unmap_device; }
fio_verify $blk $size_mb || { unmap; fail "fio failed"; }

unmap || fail "unmap_device failed"
for i in $(seq 10); do [ -e /sys/block/${blk#/dev/} ] || break; sleep 1; done
[ -e /sys/block/${blk#/dev/} ] && fail "$blk still there after unmap"
report pass ""
check_figures
