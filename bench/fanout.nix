# The closure whose rebuild fan-out scripts/bench measures: the default release's
# core, every provider, perftest and config dir, every kernel's modules, and every VM
# check, on the offline platform, as-is or with one change:
#   variant = "base" | "provider" (rxe patched) | "core" (core patched) | "kernel"
#   (the kABI records' kernel, whose own builds others reuse, rebuilt).
{ variant ? "base" }:
let
  patch = ../tests/fixtures/rxe-vendor-fix.patch;
  default = (import ../pkgs/generated/rdma-core).default;
  o = import ../pkgs/offline ({
    provider = { rdmaPatches.${default}.providerPatches.rxe = [ patch ]; };
    core = { rdmaPatches.${default}.corePatches = [ patch ]; };
    kernel = { kernelOverrides.${(import ../pkgs/generated/roles.nix).kabiBase}.postInstall = "echo rebuilt"; };
    base = { };
  }.${variant});
  kernels = builtins.attrNames o.kernels;
in
[ o.rdma-core o.perftest o.verbs-config-dir ]
++ builtins.attrValues o.rdmaProviders
++ builtins.concatMap (k: [ o.kernelPackages.${k}.rdma-siw o.kernelPackages.${k}.rdma-rxe ]) kernels
++ builtins.concatMap (k: [ o.checks.${k}.rxe o.checks.${k}.siw ]) kernels
