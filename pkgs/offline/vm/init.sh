#!/bin/busybox sh
# /init of the offline VM runner: mount the basics, load the modules in order, run
# the test script, report a result on the second serial port (ttyS1), power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo 1 > /proc/sys/kernel/printk
for m in $(cat /etc/modules-load); do
  insmod /lib/modules/$m || echo "rdma-nix-init: insmod $m failed"
done
ip link set lo up
echo "rdma-nix-init: running /test.sh on $(uname -r)"
start=$(date +%s)
# Live on the console (a hung test leaves its last lines in serial.log), and kept.
{ sh /test.sh; echo $? >/tmp/test.rc; } 2>&1 | tee /tmp/test.log
rc=$(cat /tmp/test.rc 2>/dev/null || echo 1)
end=$(date +%s)
status=pass
[ "$rc" = 0 ] || status=fail
{
  printf '{"status":"%s","exit_code":%s,"uname_r":"%s","duration_s":%s,"test":' \
    "$status" "$rc" "$(uname -r)" "$((end - start))"
  if [ -s /tmp/result.json ]; then cat /tmp/result.json; else printf 'null'; fi
  printf '}\n'
  echo RDMA_NIX_RESULT_END
} > /dev/ttyS1
sync
poweroff -f
