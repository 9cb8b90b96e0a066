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

let
  # A driver's modules (rtrs: rtrs-core, rtrs-client, rtrs-server), or the one.
  modules = module.moduleNames or [ module.moduleName ];
in
stdenv.mkDerivation {
  name = "${module.pname or module.moduleName}-${kernel.modDirVersion}-from-${module.builtFor}";
  dontUnpack = true;
  dontConfigure = true;
  dontBuild = true;
  installPhase = ''
    mkdir -p $out/lib/modules/${kernel.modDirVersion}/weak-updates
    for m in ${lib.escapeShellArgs modules}; do
      ln -s ${module}/lib/modules/${module.builtFor}/updates/$m.ko \
        $out/lib/modules/${kernel.modDirVersion}/weak-updates/$m.ko
    done
  '';
  passthru = {
    inherit kernel reason;
    inherit (module) driver moduleName builtFor;
    moduleNames = modules;
    restoredNeeds = module.restoredNeeds or [ ];
    reusedFrom = module;
  };
  meta = module.meta // {
    description = "${module.meta.description}, built for ${module.builtFor} and reused on ${kernel.modDirVersion} (${reason})";
  };
}
