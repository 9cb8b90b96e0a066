# What an offline VM check needs for one soft device (rxe or siw) on eth0 of one
# matrix kernel, as the NixOS module computes it (modules/lib.nix): the kernel, its
# modules (ours where the kernel lacks the driver, the kernel's own otherwise) with
# soft dependencies, the provider, a config dir of it alone and the files that put
# it in the VM. Shared by hotpaths.nix and perftest-cm-race.nix.
{
  lib,
  runCommand,
  kernelPackages,
  rdmaNixLib,
  rdma-core,
  rdmaProviders,
}:

{ kernelName, driver }:
let
  kp = kernelPackages.${kernelName};
  kernel = kp.kernel;
  ours = rdmaNixLib.driversMissingFrom kernel [ driver ];
  modulePkgs = rdmaNixLib.modulePackages kp ours;
  provider = rdmaProviders.${driver};
  dev = lib.head (rdmaNixLib.softDevices driver [ "eth0" ]);
  config = rdmaNixLib.mkVerbsConfigDir {
    inherit runCommand;
    core = rdma-core;
    providers = [ provider ];
  };
in
{
  inherit kernel provider config dev;
  # For the VM's test script: eth0 up with its addresses fixed (the IPv4 one set here
  # and the IPv6 link-local one; router advertisements from QEMU's network are
  # refused, so no address, and no RoCE GID, appears mid-test) and the soft device
  # added on it, as the module's rdma-link-<device>.service does.
  upScript = ''
    for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
    echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_ra
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    ${rdmaNixLib.linkUpScript { rdma = "/usr/bin/rdma"; inherit dev; }}
  '';
  # runVM's module arguments.
  vmModules = {
    modules = [
      "virtio_pci"
      "virtio_net"
      "rdma_ucm"
    ] ++ lib.optional (ours == [ ]) rdmaNixLib.softDrivers.${driver}.module;
    extraModules = lib.listToAttrs (map (p: lib.nameValuePair p.moduleName (rdmaNixLib.moduleFile kernel p)) modulePkgs);
    softDeps = rdmaNixLib.softDepsOf [ driver ];
  };
  # The config dir at /etc/libibverbs.d in the VM.
  configFiles = lib.mapAttrs' (f: _: lib.nameValuePair "etc/libibverbs.d/${f}" "${config}/etc/libibverbs.d/${f}") (rdmaNixLib.driverFiles config.resolved);
}
