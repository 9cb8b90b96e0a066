# Every driver of the default restore set a matrix kernel lacks (siw, efa, erdma,
# vmw_pvrdma, rtrs, rnbd where missing; pkgs/generated/restore.nix), built or reused
# for it, loaded in a VM with its dependencies: each module is loaded at boot in
# dependency order, must be in /proc/modules, and the drivers it registers (PCI
# drivers with no device to bind, an RDMA link type, a block ULP's sysfs class) are
# recorded; then all are unloaded in reverse order, loaded again one by one with
# insmod and unloaded again. Any oops, BUG, WARNING or call trace in the kernel log
# fails the check. `drivers` names others instead of the default set (a driver
# outside it, restored by name); the drivers they need come with them.
{ lib, runVM, kernelPackages, restorePlans, rdmaNixLib }:

{ kernelName, drivers ? null }:
let
  kp = kernelPackages.${kernelName};
  plans = restorePlans.kernels.${kernelName}.drivers;
  missing = if drivers == null then [ ] else builtins.filter (d: !(kp.rdmaRestored ? ${d})) drivers;
  chosen =
    if drivers == null then kp.rdmaRestoredDefault
    else lib.genAttrs (rdmaNixLib.restoreClosure (d: plans.${d}.needs or [ ]) drivers) (d: kp.rdmaRestored.${d});
  files = rdmaNixLib.moduleFilesOf kp.kernel (builtins.attrValues chosen);
  name = "restored-load-${kernelName}" + lib.optionalString (drivers != null) "-${lib.concatStringsSep "-" drivers}";
in
assert lib.assertMsg (missing == [ ])
  "rdma-nix: ${kernelName} can't restore ${lib.concatMapStringsSep ", " (d: "${d} (${plans.${d}.skip or "not in its source"})") missing}";
runVM {
  inherit name;
  kernel = kp.kernel;
  timeout = 300;
  modules = [ "virtio_pci" "virtio_net" ];
  extraModules = files;
  testScript = ''
    set -u
    fail() { echo "restored-load: $*"; exit 1; }
    # Ours, in the order init loaded them (dependencies first).
    ours=""
    for m in $(cat /etc/modules-load); do
      case " ${toString (builtins.attrNames files)} " in *" ''${m%.ko} "*) ours="$ours ''${m%.ko}" ;; esac
    done
    [ -n "$ours" ] || fail "none of the restored modules was put in the initramfs"
    loaded() { grep -q "^$(echo $1 | tr - _) " /proc/modules; }
    clean() {
      if dmesg | grep -E 'Oops|BUG:|WARNING:|Call Trace|general protection'; then
        fail "the kernel log shows a fault ($1)"
      fi
    }
    regs=""
    for m in $ours; do
      loaded $m || fail "$m did not load at boot"
      mod=$(echo $m | tr - _)
      # What it registered: bus drivers (no hardware to bind), RDMA link types.
      for d in /sys/bus/*/drivers/*; do
        [ "$(readlink -f $d/module 2>/dev/null)" = /sys/module/$mod ] || continue
        regs="$regs ''${m}:''${d#/sys/bus/}"
      done
    done
    clean "after loading"
    rev=""
    for m in $ours; do rev="$m $rev"; done
    for round in 1 2; do
      for m in $rev; do
        rmmod $(echo $m | tr - _) || fail "rmmod $m failed (round $round)"
        loaded $m && fail "$m still loaded after rmmod (round $round)"
      done
      clean "after unloading, round $round"
      [ $round = 2 ] && break
      for m in $ours; do
        insmod /lib/modules/$m.ko || fail "insmod $m failed"
        loaded $m || fail "$m not loaded after insmod"
      done
      clean "after loading again"
    done
    n=0; for m in $ours; do n=$((n + 1)); done
    {
      printf '{"modules":['
      sep=""; for m in $ours; do printf '%s"%s"' "$sep" $m; sep=,; done
      printf '],"registered":['
      sep=""; for r in $regs; do printf '%s"%s"' "$sep" $r; sep=,; done
      printf '],"loaded":%s,"unloaded":%s,"dmesg_clean":true}' $n $n
    } > /tmp/result.json
    cat /tmp/result.json
  '';
  resultAttrs = {
    check = "restored-load";
    kernel_name = kernelName;
    drivers = builtins.attrNames chosen;
  };
  passthru.checkName = "${kernelName}-restored" + lib.optionalString (drivers != null) "-${lib.concatStringsSep "-" drivers}";
}
