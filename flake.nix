{
  description = "The RDMA stack for Nix: rdma-core per provider, per-kernel modules, VM checks";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable-small";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      # Only attributes for nixpkgs users touch this; the offline platform never does,
      # so it builds on machines where nixpkgs can't be fetched.
      pkgs = nixpkgs.legacyPackages.${system};
      rdmaCoreReleases = import ./pkgs/generated/rdma-core;
    in
    {
      # Adds our packages next to nixpkgs' own; nixpkgs' `rdma-core` is left alone
      # (replacing it would rebuild everything that links it). `rdma-core-full` is
      # the drop-in; the split core and providers are under `rdmaPackages`.
      overlays.default = final: prev:
        let
          rdmaPackages = builtins.mapAttrs
            (_: release: final.callPackage ./pkgs/rdma-packages.nix { inherit release; })
            rdmaCoreReleases.releases;
          default = rdmaPackages.${rdmaCoreReleases.default};
        in
        {
          rdma-nix = final.callPackage ./pkgs/rdma-nix/package.nix { };
          inherit rdmaPackages;
          inherit (default) rdma-core-full perftest;
        };

      # For those who prefer a rebuild to hardware.rdma.replaceNixpkgsRdmaCore (which
      # rewrites a NixOS system's closure without one): nixpkgs' rdma-core becomes
      # rdma-nix's rdma-core-full (every provider, patches of the package set included,
      # its own config dir), so ucx, openmpi, libfabric, … are rebuilt against it.
      overlays.rdma-core = final: prev: {
        rdma-core = (self.overlays.default final prev).rdma-core-full;
      };

      # Attribute names computed without nixpkgs, so that evaluating another output
      # (the offline platform) never fetches it.
      packages.${system} =
        let
          release = rdmaCoreReleases.releases.${rdmaCoreReleases.default};
          rdma = (self.overlays.default pkgs pkgs).rdmaPackages.${rdmaCoreReleases.default};
          names = [
            "rdma-core"
            "rdma-core-full"
            "perftest"
            "verbs-config-dir"
          ]
          ++ map (p: "rdma-provider-${p}") (builtins.attrNames release.providers);
        in
        builtins.listToAttrs (map (name: { inherit name; value = rdma.${name}; }) names)
        // {
          rdma-nix = pkgs.callPackage ./pkgs/rdma-nix/package.nix { };
          default = self.packages.${system}.rdma-core-full;
        };

      # The offline platform (pkgs/offline): hermetic (pinned Debian build roots, the
      # sandbox on), no nixpkgs.
      # Not marked recurseForDerivations, so `nix flake check` doesn't walk it.
      legacyPackages.${system} = {
        offline = import ./pkgs/offline { inherit system; };

        # nixpkgs' kernel module sets extended with our modules (siw, rdma_rxe) and,
        # where rdma-nix has a source of the kernel's series, every RDMA driver it can
        # restore by name (`rdmaRestored.<driver>`; pkgs/generated/restore.nix).
        kernelPackages = builtins.mapAttrs
          (_: lp: lp.extend (import ./pkgs/kernel-modules/extension.nix {
            restorePlan = (import ./pkgs/generated/restore.nix).series.${pkgs.lib.versions.majorMinor lp.kernel.version} or null;
            fromSeriesPlan = true;
          }))
          # Every LTS series the pinned nixpkgs has, and its latest kernel.
          (import ./pkgs/nixpkgs-kernel-sets.nix {
            inherit (pkgs) linuxKernel linuxPackages_latest;
          });
      };

      # The NixOS module (modules/rdma.nix): `hardware.rdma.*`.
      nixosModules = {
        rdma = ./modules/rdma.nix;
        default = self.nixosModules.rdma;
      };

      # NixOS tests of the hot paths, two nodes set up by our module, per kernel of the
      # nixpkgs matrix × {rxe, siw} (checks/nixos.nix): what `nix flake check` builds.
      checks.${system} = import ./checks/nixos.nix {
        inherit (pkgs) lib testers;
        rdmaModule = self.nixosModules.rdma;
        kernelSets = self.legacyPackages.${system}.kernelPackages;
      };

      # Every per-kernel module build, of nixpkgs' kernels and of the offline platform's,
      # for Hydra or `nix build` with remote builders.
      hydraJobs =
        let
          # The soft-RDMA modules and which drivers the kernel builds itself or can
          # restore (rdma-drivers.json, from its .config), where rdma-nix has its
          # series; the offline kernels' restored drivers too (their plans come from
          # their configs; on nixpkgs' kernels, those the kernel builds fail by design).
          jobs = lp: { rdma-siw = lp.rdma-siw; rdma-rxe = lp.rdma-rxe; }
            // (if lp ? rdmaDriverStates then { driverStates = lp.rdmaDriverStates; } else { });
          offlineJobs = lp: jobs lp // { restored = lp.rdmaRestored; };
        in
        {
          nixpkgs = builtins.mapAttrs (_: jobs) self.legacyPackages.${system}.kernelPackages;
          # The offline platform is hermetic (sandbox on, inputs pinned): its stack and
          # every kernel's module builds, on any Linux machine with Nix. A Hydra passes
          # `debianMirror` (or has `rdma-nix fetch` run) for the pinned Debian files.
          offline =
            let
              o = self.legacyPackages.${system}.offline;
            in
            {
              inherit (o) stack;
              kernels = builtins.mapAttrs (_: offlineJobs) o.kernelPackages;
            };
        };
    };
}
