# The matrix's kernels (pkgs/generated/kernels.nix) and their module sets: each
# kernel from Debian's packages, shaped like nixpkgs' kernel; `linuxPackagesFor` as
# nixpkgs has it, extended with our modules (pkgs/kernel-modules/extension.nix); the
# restore plans, roles and reuse plan `rdma-nix generate` wrote. Part of
# pkgs/offline/default.nix's fixed point (`base`: the set without the default
# release's packages on top).
{ lib, base, self, callPackageWith, lockedKernels, kernelOverrides }:

{
  # Kernels of the offline matrix, by name (pkgs/generated/kernels.nix).
  kernels = builtins.mapAttrs
    (name: k:
      let kernel = self.callPackage ./debian-kernel.nix { stdenv = self.stdenvIn self.roots.${k.root}; }
        ({ inherit name; } // builtins.removeAttrs k [ "moduleSource" ]); in
      if kernelOverrides ? ${name} then kernel.overrideAttrs (_: kernelOverrides.${name}) else kernel)
    lockedKernels;

  kernelSource = self.callPackage ./kernel-source.nix { };

  # A kernel's module package set, shaped like nixpkgs' `linuxPackagesFor kernel`
  # (kernel, kernelModuleMakeFlags, callPackage), extended with our modules: the soft
  # RDMA drivers, and every driver its source has and its config leaves out
  # (`restorePlan`: the kernel's entry of pkgs/generated/restore.nix).
  linuxPackagesFor = kernel: moduleSrc: restorePlan:
    base.linuxPackagesWith { inherit kernel moduleSrc restorePlan; };
  # The same with the extension's other arguments (`fromSeriesPlan`).
  linuxPackagesWith = { kernel, moduleSrc, restorePlan, fromSeriesPlan ? false }:
    let
      # A fixed point, as nixpkgs' `.extend`: a restored driver finds those it needs.
      set = base // {
        inherit kernel;
        # Modules are built with the kernel's own suite's compiler.
        inherit (kernel) stdenv;
        kernelModuleMakeFlags = kernel.commonMakeFlags;
        callPackage = callPackageWith set;
      } // (import ../kernel-modules/extension.nix {
        src = moduleSrc;
        inherit restorePlan fromSeriesPlan;
        seriesPlan =
          let
            v = builtins.splitVersion kernel.version;
          in
          base.restorePlans.series."${builtins.elemAt v 0}.${builtins.elemAt v 1}" or null;
      }) set set;
    in
    set;

  # What `rdma-nix generate` planned for each matrix kernel's missing drivers, and
  # the default set restored everywhere it is missing.
  restorePlans = import ../generated/restore.nix;

  # The matrix's kernels by role (oldest, newest, each series' oldest and newest, the
  # kABI pair), from the lock: checks pick kernels by role, never by name.
  roles = import ../generated/roles.nix;

  # Per kernel of the matrix: `kernelPackages.<kernel>.rdma-siw`, `.rdma-rxe`, and
  # `.rdmaRestored.<driver>` for every driver the kernel lacks; where the generator
  # found a recorded build that loads (pkgs/generated/kernel-modules.nix), that build
  # is reused instead of compiling again.
  kernelModulePlan = import ../generated/kernel-modules.nix;
  # Each kernel's own builds, whatever the plan reuses: what `rdma-nix update` reads
  # a build's imports and exports from to decide reuse for a newer kernel.
  kernelPackagesOwn = builtins.mapAttrs
    (name: k: base.linuxPackagesFor base.kernels.${name} (base.kernelSource k.moduleSource)
      base.restorePlans.kernels.${name})
    lockedKernels;
  # Each kernel as nixpkgs' kernels are served: its series' recipes, each restored
  # driver's build refusing what the kernel's own .config builds or can't restore
  # (the mechanism the NixOS module relies on for nixpkgs' kernels, run here).
  kernelPackagesBySeries = builtins.mapAttrs
    (name: k:
      let
        kernel = base.kernels.${name};
        v = builtins.splitVersion kernel.version;
      in
      base.linuxPackagesWith {
        inherit kernel;
        moduleSrc = base.kernelSource k.moduleSource;
        restorePlan = base.restorePlans.series."${builtins.elemAt v 0}.${builtins.elemAt v 1}";
        fromSeriesPlan = true;
      })
    lockedKernels;
  kernelPackages = builtins.mapAttrs
    (name: k:
      let
        own = base.kernelPackagesOwn.${name};
        pick = driver: pkg: get:
          let
            plan = base.kernelModulePlan.${driver}.${name} or { reuse = null;
            };
          in
          if plan.reuse == null then pkg
          else base.callPackage ../kernel-modules/weak-update.nix {
            kernel = base.kernels.${name};
            module = get base.kernelPackages.${plan.reuse};
            inherit (plan) reason;
          };
        set = own // {
          rdma-siw = pick "siw" own.rdma-siw (p: p.rdma-siw);
          rdma-rxe = pick "rxe" own.rdma-rxe (p: p.rdma-rxe);
          rdmaRestored = builtins.mapAttrs
            (d: pkg: if d == "siw" then set.rdma-siw else pick d pkg (p: p.rdmaRestored.${d}))
            own.rdmaRestored;
          # The default set's drivers this kernel lacks, built or reused.
          rdmaRestoredDefault = lib.filterAttrs
            (d: _: builtins.elem d base.restorePlans.default)
            set.rdmaRestored;
        };
      in
      set)
    lockedKernels;
}
