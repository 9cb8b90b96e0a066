# rdma-nix's offline platform: a small package set that gives the package files in
# pkgs/ the argument names they expect (stdenv, fetchurl, cmake, kernels, …), for
# machines with Nix but without nixpkgs or a binary cache.
#
# Hermetic: every input is in the store, pinned by hash. A bootstrap busybox (taken
# out of a pinned package by `rdma-nix fetch`) unpacks build roots of pinned Debian
# packages (./roots, one per suite: roots/*.toml) and runs every builder chrooted in
# one, so nothing reads the host's /usr, with the Nix sandbox on or off.
{
  system ? "x86_64-linux",
  # Where mirror://debian/ URLs are downloaded from when `rdma-nix fetch` did not add
  # a pinned file beforehand (the repository names no mirror).
  debianMirror ? "",
  # A NAR of the bootstrap tree (bin/busybox), where `rdma-nix fetch` did not add it.
  bootstrapUrl ? "",
  # Fixes to a release's packages (pkgs/rdma-packages.nix), by release:
  # { "65.0" = { corePatches; providerPatches.<name>; }; }.
  rdmaPatches ? { },
  # Attributes merged into a matrix kernel's derivation, by kernel name (a rebuilt
  # kernel, for what-if questions such as rebuild fan-out).
  kernelOverrides ? { },
  # vCPUs of every VM check: 1, as measured by scripts/bench ("VM matrix: how the 2
  # cores are used"); another count is for measuring (the checks' derivations change).
  vmCpus ? 1,
}:

let
  lib = import ./lib.nix;

  # The matrix's kernels (pkgs/generated/kernels.nix), read once.
  lockedKernels = import ../generated/kernels.nix;

  callPackageWith = scope: fn: args:
    let
      f = if builtins.isFunction fn then fn else import fn;
    in
    f (builtins.intersectAttrs (builtins.functionArgs f) scope // args);

  # One fixed point of four parts, each a file: the platform (fetchers, roots,
  # stdenv, VM runner), the kernels and their module sets, the userspace and the
  # stack, and the catalogue of checks.
  base = {
    inherit lib system;
    callPackage = callPackageWith self;
  }
  // import ./platform.nix { inherit lib system debianMirror bootstrapUrl vmCpus self; }
  // import ./kernels.nix { inherit lib base self callPackageWith lockedKernels kernelOverrides; }
  // import ./rdma.nix { inherit lib base self callPackageWith rdmaPatches lockedKernels; }
  // import ../../checks/offline { inherit lib self lockedKernels; };
  # The default release's packages at the top level, as the overlay has them.
  defaultPackages = base.rdmaPackages.${base.rdmaCoreReleases.default};
  self = base // defaultPackages // {
    # pyverbs and the suite, tested where they run: upstream's suite on rxe and siw
    # (with NVMe-oF) on the matrix's last kernel by name.
    rdma-core-pyverbs = defaultPackages.rdma-core-pyverbs.overrideAttrs (o: {
      passthru = o.passthru // {
        tests =
          let names = builtins.attrNames lockedKernels;
          in lib.genAttrs [ "rxe" "siw" ] (self.hotpathsCheck (builtins.elemAt names (builtins.length names - 1)));
      };
    });
  };
in
self
