# The hot paths as NixOS tests (nixpkgs' test framework): one test per kernel of the
# nixpkgs matrix × {rxe, siw} × {the kernel's own module, rdma-nix's}, two nodes,
# each set up by modules/rdma.nix alone and running the same payload as the offline
# checks (checks/payload) — the server side on `server`, the client side on `client`.
# nixpkgs' kernels build rxe and siw themselves; the `-rdma-nix-module` tests deploy
# rdma-nix's build instead (hardware.rdma.kernelModules.outOfTree: under updates/,
# with the fixes the offline matrix carries) and check that it is the one loaded.
# Each test copies the client's result (JSON, as `rdma-nix matrix` reads it) into
# its output.
#
#   nix build .#checks.x86_64-linux.rdma-linux_6_12-siw
#   nix build .#checks.x86_64-linux.rdma-linux_6_12-siw-rdma-nix-module
{
  lib,
  testers,
  rdmaModule,
  kernelSets,
}:

let
  hotpaths = import ./nixos-hotpaths.nix { inherit lib testers rdmaModule; };

  testName =
    kernelName: driver: ours: "rdma-${kernelName}-${driver}" + lib.optionalString ours "-rdma-nix-module";

  test =
    kernelName: kernelPackages: driver: ours:
    hotpaths {
      name = testName kernelName driver ours;
      inherit kernelName kernelPackages driver ours;
      rdma.kernelModules.outOfTree = lib.optional ours driver;
    };
in
builtins.listToAttrs (
  lib.concatMap (
    kernelName:
    lib.concatMap (
      driver:
      map (
        ours:
        lib.nameValuePair (testName kernelName driver ours) (test kernelName kernelSets.${kernelName} driver ours)
      ) [ false true ]
    ) [ "rxe" "siw" ]
  ) (builtins.attrNames kernelSets)
)
