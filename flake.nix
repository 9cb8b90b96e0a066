{
  description = "The RDMA stack for Nix: rdma-core per provider, per-kernel modules, VM checks";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable-small";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      # Only attributes for nixpkgs users touch this; the offline platform never does,
      # so it builds on machines where nixpkgs can't be fetched.
      pkgs = nixpkgs.legacyPackages.${system};
    in
    {
      overlays.default = final: prev: {
        rdma-nix = final.callPackage ./pkgs/rdma-nix/package.nix { };
      };

      packages.${system} = {
        rdma-nix = pkgs.callPackage ./pkgs/rdma-nix/package.nix { };
        default = self.packages.${system}.rdma-nix;
      };

      # The offline platform (pkgs/offline): impure, host toolchain, no nixpkgs.
      # Not marked recurseForDerivations, so `nix flake check` doesn't walk it.
      legacyPackages.${system}.offline = import ./pkgs/offline { inherit system; };
    };
}
