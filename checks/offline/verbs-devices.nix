# Our userspace against soft devices in a VM: a config dir holding only rxe and siw
# (composed by modules/lib.nix's mkVerbsConfigDir, installed as /etc/libibverbs.d), rxe0 and
# siw0 on the VM's NIC, and `ibv_devices` / `ibv_devinfo` with IBV_SHOW_WARNINGS=1:
# both devices listed, no "couldn't load driver" warning.
{ lib, runVM, runCommand, kernelPackages, rdma-core, rdma-provider-rxe, rdma-provider-siw, rdmaNixLib }:

kernelName:
let
  kp = kernelPackages.${kernelName};
  providers = [ rdma-provider-rxe rdma-provider-siw ];
  config = rdmaNixLib.mkVerbsConfigDir {
    inherit runCommand providers;
    core = rdma-core;
  };
  siw = kp.rdma-siw;
  siwKo = rdmaNixLib.moduleFile kp.kernel siw;
in
runVM {
  name = "verbs-devices-${kernelName}";
  kernel = kp.kernel;
  timeout = 240;
  modules = [ "virtio_pci" "virtio_net" "rdma_rxe" ];
  extraModules.siw = siwKo;
  softDeps = rdmaNixLib.softDepsOf [ "rxe" "siw" ];
  binaries = [ "/usr/bin/rdma" "${rdma-core}/bin/ibv_devices" "${rdma-core}/bin/ibv_devinfo" ];
  files = lib.listToAttrs (
    map (n: lib.nameValuePair "etc/libibverbs.d/${n}.driver" "${config}/etc/libibverbs.d/${n}.driver") config.driverNames
    ++ map (p:
      let
        plugin = rdmaNixLib.pluginPath p;
      in
      # The same path inside the VM (attribute names can't carry the dependency).
      lib.nameValuePair (builtins.unsafeDiscardStringContext plugin) plugin) providers
  );
  testScript = ''
    set -e
    for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 1; done
    ip link set eth0 up
    rdma link add rxe0 type rxe netdev eth0
    rdma link add siw0 type siw netdev eth0
    export IBV_SHOW_WARNINGS=1
    ${rdma-core}/bin/ibv_devices > /tmp/devices 2>&1 || echo "ibv_devices failed: $?"
    cat /tmp/devices
    ${rdma-core}/bin/ibv_devinfo -d rxe0 > /tmp/devinfo 2>&1 || true
    cat /tmp/devinfo
    grep -q rxe0 /tmp/devices
    grep -q siw0 /tmp/devices
    if grep -q "couldn't load driver" /tmp/devices /tmp/devinfo; then exit 1; fi
    grep -q PORT_ACTIVE /tmp/devinfo
    printf '{"kernel":"%s","devices":["rxe0","siw0"],"warnings":0}' "$(uname -r)" > /tmp/result.json
  '';
}
