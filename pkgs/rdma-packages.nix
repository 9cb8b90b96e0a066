# The RDMA userspace packages for one rdma-core release, for any package set with
# nixpkgs' names (nixpkgs itself through the overlay, or the offline platform):
# the core, one rdma-provider-<name> per provider, rdma-core-full, perftest and the
# verbs config dir of all providers.
{
  lib,
  callPackage,
  runCommand,
  release,
  # Fixes applied across the set: `corePatches` to the core (and so to everything
  # built from it), `providerPatches.<name>` to one provider (and the config dirs
  # holding it).
  corePatches ? [ ],
  providerPatches ? { },
}:

let
  rdmaLib = import ./rdma-core/lib.nix { inherit lib; };

  withPatches =
    patches: p: if patches == [ ] then p else p.overrideAttrs (o: { patches = (o.patches or [ ]) ++ patches; });

  rdma-core = withPatches corePatches (callPackage ./rdma-core/package.nix { inherit release; });

  providers = builtins.mapAttrs (
    name: data:
    withPatches (providerPatches.${name} or [ ]) (
      callPackage ./rdma-core/provider.nix { inherit rdma-core name data; }
    )
  ) release.providers;
in
lib.mapAttrs' (name: p: lib.nameValuePair "rdma-provider-${name}" p) providers
// {
  inherit rdma-core rdmaLib;
  rdmaProviders = providers;

  # Core and every provider in one package, its config dir in its own store path:
  # a drop-in for nixpkgs' rdma-core. Every patch of the set applies (the providers'
  # are patches to the same tree).
  rdma-core-full = withPatches (corePatches ++ lib.concatLists (builtins.attrValues providerPatches)) (
    callPackage ./rdma-core/package.nix {
      inherit release;
      configDir = null;
    }
  );

  # rdma-core-full with pyverbs and upstream's test suite (tests/, run_tests.py), from
  # the same tree and patches; `python3.pkgs.cython` compiles it (Debian's cython3 offline).
  rdma-core-pyverbs = withPatches (corePatches ++ lib.concatLists (builtins.attrValues providerPatches)) (
    callPackage ./rdma-core/package.nix {
      inherit release;
      configDir = null;
      withPyverbs = true;
    }
  );

  # etc/libibverbs.d with every provider of the release.
  verbs-config-dir = rdmaLib.mkVerbsConfigDir {
    inherit runCommand;
    core = rdma-core;
    providers = builtins.attrValues providers;
  };

  perftest = callPackage ./perftest/package.nix { inherit rdma-core; };
}
