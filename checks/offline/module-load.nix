# Loads our soft-RDMA modules on a kernel of the offline matrix and creates the soft
# device on the VM's NIC: for kernels where the module is reused (built for another
# ABI, pkgs/generated/kernel-modules.nix) this shows the kABI decision holds.
# `set`: the kernel's module set to take the module from (default: the matrix's).
{ lib, runVM, kernelPackages, rdmaNixLib }:

{ kernelName, driver, set ? kernelPackages.${kernelName} }:
let
  kp = set;
  pkg = kp."rdma-${driver}";
  ko = rdmaNixLib.moduleFile kp.kernel pkg;
  link = { siw = "siw"; rxe = "rxe"; }.${driver};
in
runVM {
  name = "module-load-${driver}-${kernelName}";
  kernel = kp.kernel;
  timeout = 240;
  modules = [
    "virtio_pci"
    "virtio_net"
  ];
  extraModules.${pkg.moduleName} = ko;
  softDeps = rdmaNixLib.softDepsOf [ "rxe" "siw" ];
  binaries = [ "/usr/bin/rdma" ];
  testScript = ''
    set -e
    for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
    ip link set eth0 up
    grep -q '^${pkg.moduleName} ' /proc/modules
    rdma link add ${link}0 type ${link} netdev eth0
    rdma link show | tee /tmp/links
    grep -q '${link}0' /tmp/links
    printf '{"kernel":"%s","module":"%s","built_for":"%s","loaded":true}' \
      "$(uname -r)" ${pkg.moduleName} ${pkg.builtFor} > /tmp/result.json
  '';
}
