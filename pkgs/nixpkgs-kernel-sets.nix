# The kernel package sets of nixpkgs that rdma-nix extends, checks (`nix flake check`)
# and lists in hydraJobs: chosen from what the given nixpkgs has, never by an attribute
# name it may drop (nixpkgs removes a series after its end of life). Every LTS series of
# its mainline kernels (`isLTS`, which packagesFor inherits from the kernel; a removed
# series is a `throw` under allowAliases, skipped) and its latest kernel. Plain
# builtins, so the tests evaluate it against a stand-in without nixpkgs.
{ linuxKernel, linuxPackages_latest }:
let
  vanilla = linuxKernel.vanillaPackages;
  isLTS =
    lp:
    let
      r = builtins.tryEval (lp.isLTS or false);
    in
    r.success && r.value == true;
  lts = builtins.filter (n: isLTS vanilla.${n}) (builtins.attrNames vanilla);
in
builtins.listToAttrs (
  map (n: {
    name = n;
    value = vanilla.${n};
  }) lts
)
// {
  linux_latest = linuxPackages_latest;
}
