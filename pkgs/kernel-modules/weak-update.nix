# A module built for another kernel, reused on `kernel` because every symbol it
# imports has the same CRC there (decided by `rdma-nix generate`, recorded in
# pkgs/generated/kernel-modules.nix): the module file is linked under this kernel's
# weak-updates/, as RHEL's weak-modules does, and nothing is compiled.
{
  lib,
  stdenv,
  kernel,
  module,
  reason,
}:

stdenv.mkDerivation {
  name = "${module.moduleName}-module-${kernel.modDirVersion}-from-${module.builtFor}";
  dontUnpack = true;
  dontConfigure = true;
  dontBuild = true;
  installPhase = ''
    mkdir -p $out/lib/modules/${kernel.modDirVersion}/weak-updates
    ln -s ${module}/lib/modules/${module.builtFor}/updates/${module.moduleName}.ko \
      $out/lib/modules/${kernel.modDirVersion}/weak-updates/${module.moduleName}.ko
  '';
  passthru = {
    inherit kernel reason;
    inherit (module) driver moduleName builtFor;
    reusedFrom = module;
  };
  meta = module.meta // {
    description = "${module.meta.description}, built for ${module.builtFor} and reused on ${kernel.modDirVersion} (${reason})";
  };
}
