# rdma-nix's kernel modules as an extension of a kernel module package set:
#   nixpkgs:  pkgs.linuxPackages_6_1.extend (import ./extension.nix { })
#   offline:  linuxPackagesFor kernel (pkgs/offline)
# `src` is the source tree the modules are built from; null takes `kernel.src`.
# `restorePlan` is the kernel's entry of pkgs/generated/restore.nix (its source's
# drivers, each planned or skipped with the reason); with it, `rdmaRestored.<driver>`
# builds any driver the kernel lacks, and siw is one of them.
# `seriesPlan` is the plan of the kernel's series (`series.<s>` there: every driver of
# its source, with the symbols its modules are built on); with it,
# `rdmaDriverStates` reports which of them the kernel builds itself. nixpkgs' kernels
# get their series' plan as `restorePlan` too, with `fromSeriesPlan`: the plan is then
# recipes from the source alone, and each restored driver's build first reads the
# kernel's own .config (rdmaDriverStates) and refuses a driver the kernel builds itself
# or can't restore there, naming the kernel, the driver and why.
{
  src ? null,
  restorePlan ? null,
  seriesPlan ? restorePlan,
  fromSeriesPlan ? false,
}:

final: prev:
let
  withSrc = if src == null then { } else { inherit src; };
  soft = driver: final.callPackage ./soft-rdma.nix ({ inherit driver; } // withSrc);
  # Fixes carried on every kernel's own source (each patch says what and why).
  patches.siw = [ ./patches/siw-accept-read-early-data.patch ];
  drivers = if restorePlan == null then { } else restorePlan.drivers;
  buildable = builtins.filter (d: !(drivers.${d} ? skip)) (builtins.attrNames drivers);
  # `checked`: refused where the kernel's own config says so (fromSeriesPlan).
  restoreWith =
    checked: driver:
    let
      plan = drivers.${driver};
    in
    final.callPackage ./restored.nix (
      {
        inherit driver plan;
        needs = map (d: final.rdmaRestored.${d}) plan.needs;
        patches = patches.${driver} or [ ];
      }
      // (if checked && fromSeriesPlan then { driverStates = final.rdmaDriverStates; } else { })
      // withSrc
    );
in
{
  # Taken in place of the kernel's own when asked for (outOfTree): never refused.
  rdma-siw = if builtins.elem "siw" buildable then restoreWith false "siw" else soft "siw";
  rdma-rxe = soft "rxe";
  # Every driver of the kernel's source that its config leaves out, by name.
  rdmaRestored = builtins.listToAttrs (
    map (d: {
      name = d;
      value = restoreWith true d;
    }) buildable
  );
  # Why a driver isn't in rdmaRestored here (in the kernel already, absent from its
  # source, a dependency its config doesn't meet), by name.
  rdmaNotRestored = builtins.mapAttrs (_: e: e.skip) (
    removeAttrs drivers buildable
  );
}
# The drivers of the series' source the kernel builds itself (y or m), read from its
# .config: rdma-drivers.json (where rdma-nix has a plan of the kernel's series).
// (
  if seriesPlan == null then
    { }
  else
    { rdmaDriverStates = final.callPackage ./driver-states.nix { inherit (seriesPlan) drivers; }; }
)
