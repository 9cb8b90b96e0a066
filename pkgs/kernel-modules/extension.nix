# rdma-nix's kernel modules as an extension of a kernel module package set:
#   nixpkgs:  pkgs.linuxPackages_6_1.extend (import ./extension.nix { })
#   offline:  linuxPackagesFor kernel (pkgs/offline)
# `src` is the source tree the modules are built from; null takes `kernel.src`.
# `restorePlan` is the kernel's entry of pkgs/generated/restore.nix (its source's
# drivers, each planned or skipped with the reason); with it, `rdmaRestored.<driver>`
# builds any driver the kernel lacks, and siw is one of them.
{
  src ? null,
  restorePlan ? null,
}:

final: prev:
let
  withSrc = if src == null then { } else { inherit src; };
  soft = driver: final.callPackage ./soft-rdma.nix ({ inherit driver; } // withSrc);
  # Fixes carried on every kernel's own source (each patch says what and why).
  patches.siw = [ ./patches/siw-accept-read-early-data.patch ];
  drivers = if restorePlan == null then { } else restorePlan.drivers;
  buildable = builtins.filter (d: !(drivers.${d} ? skip)) (builtins.attrNames drivers);
  restore =
    driver:
    let
      plan = drivers.${driver};
    in
    final.callPackage ./restored.nix (
      {
        inherit driver plan;
        needs = map (d: final.rdmaRestored.${d}) plan.needs;
        patches = patches.${driver} or [ ];
      }
      // withSrc
    );
in
{
  rdma-siw = if builtins.elem "siw" buildable then final.rdmaRestored.siw else soft "siw";
  rdma-rxe = soft "rxe";
  # Every driver of the kernel's source that its config leaves out, by name.
  rdmaRestored = builtins.listToAttrs (
    map (d: {
      name = d;
      value = restore d;
    }) buildable
  );
  # Why a driver isn't in rdmaRestored here (in the kernel already, absent from its
  # source, a dependency its config doesn't meet), by name.
  rdmaNotRestored = builtins.mapAttrs (_: e: e.skip) (
    removeAttrs drivers buildable
  );
}
