# What must be bit-for-bit reproducible on the offline platform (scripts/reproducible
# rebuilds each with `nix-build --check` and prints each output's NAR hash, to compare
# across machines): rdma-core split and full, every provider, a provider built alone
# from a patch, perftest, every kernel's module builds, every kernel, every VM check's
# initramfs (each check's boot part, the programs' part they share), and the build roots.
let
  patch = ../tests/fixtures/rxe-vendor-fix.patch;
  default = (import ../pkgs/generated/rdma-core).default;
  o = import ../pkgs/offline { };
  patched = import ../pkgs/offline { rdmaPatches.${default}.providerPatches.rxe = [ patch ]; };
  kernels = builtins.attrNames o.kernels;
in
[ o.rdma-core o.rdma-core-full o.perftest patched.rdmaProviders.rxe ]
++ builtins.attrValues o.rdmaProviders
++ builtins.concatMap (k: [ o.kernelPackages.${k}.rdma-siw o.kernelPackages.${k}.rdma-rxe ]) kernels
++ builtins.attrValues o.kernels
++ builtins.concatMap (k: [ o.checks.${k}.rxe.passthru.initrd o.checks.${k}.siw.passthru.initrd ]) kernels
++ [ o.checks.${o.roles.newest}.rxe.passthru.userspaceInitrd o.checks.${o.roles.newest}.siw.passthru.userspaceInitrd ]
++ builtins.attrValues o.roots
