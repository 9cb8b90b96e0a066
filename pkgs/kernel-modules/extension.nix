# rdma-nix's kernel modules as an extension of a kernel module package set:
#   nixpkgs:  pkgs.linuxPackages_6_1.extend (import ./extension.nix { })
#   offline:  linuxPackagesFor kernel (pkgs/offline)
# `src` is the source tree the modules are built from; null takes `kernel.src`.
{ src ? null }:

final: prev:
let
  soft = driver:
    final.callPackage ./soft-rdma.nix ({ inherit driver; } // (if src == null then { } else { inherit src; }));
in
{
  rdma-siw = soft "siw";
  rdma-rxe = soft "rxe";
}
