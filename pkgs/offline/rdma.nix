# The userspace: every rdma-core release pinned in stack.toml with its packages, the
# plain Nix behind the NixOS module, and the default stack in one output (what the
# README's main command builds). Part of pkgs/offline/default.nix's fixed point.
{ lib, base, self, callPackageWith, rdmaPatches, lockedKernels }:

{
  # rdma-core releases pinned in stack.toml (pkgs/generated/rdma-core), and the
  # userspace packages of each: `rdmaPackages."65.0".rdma-provider-rxe`, …
  # (Built from `base` so that the set's attribute names don't depend on itself.)
  rdmaCoreReleases = import ../generated/rdma-core;
  rdmaPackages = builtins.mapAttrs
    (version: release: callPackageWith base ../rdma-packages.nix ((rdmaPatches.${version} or { }) // {
      inherit release;
      callPackage = callPackageWith base;
    }))
    base.rdmaCoreReleases.releases;

  # The plain Nix behind the NixOS module (modules/lib.nix): config dirs, module
  # lists, soft deps, `rdma link` scripts, rdma-core's fixed udev rules and units.
  rdmaNixLib = import ../../modules/lib.nix { inherit lib; };
  rdmaSystemIntegration = self.rdmaNixLib.systemIntegration {
    inherit (self) runCommand systemd;
    core = self.rdma-core;
  };

  # The default stack in one output (what the README's main command builds): the
  # release's userspace (core, every provider, the full build, perftest, the config
  # dir) under userspace/, and every matrix kernel's modules under kernels/<kernel>/
  # (the default set's restored drivers under kernels/<kernel>/restored/).
  stack = self.runCommand "rdma-nix-stack" { } (''
    mkdir -p $out/userspace $out/kernels
  '' + lib.concatMapStringsSep "\n" (p: "ln -s ${p} $out/userspace/${p.name}")
    ([ self.rdma-core self.rdma-core-full self.perftest self.verbs-config-dir ]
      ++ builtins.attrValues self.rdmaProviders)
  + "\n" + lib.concatMapStringsSep "\n" (k: ''
    mkdir -p $out/kernels/${k}
    ln -s ${self.kernelPackages.${k}.rdma-siw} $out/kernels/${k}/rdma-siw
    ln -s ${self.kernelPackages.${k}.rdma-rxe} $out/kernels/${k}/rdma-rxe
    mkdir -p $out/kernels/${k}/restored
  '' + lib.concatStringsSep "\n" (lib.mapAttrsToList
    (d: p: "ln -s ${p} $out/kernels/${k}/restored/${d}")
    self.kernelPackages.${k}.rdmaRestoredDefault))
    (builtins.attrNames lockedKernels));
}
