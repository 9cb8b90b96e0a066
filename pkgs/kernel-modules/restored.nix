# An RDMA driver the kernel's config leaves out, built out of tree from the kernel's
# own source: what `rdma-nix generate` planned for it (pkgs/generated/restore.nix),
# read from the source's Kconfig and Kbuild files. `plan` is one driver's entry:
#   dir       the driver's directory in the source (drivers/infiniband/hw/efa)
#   modules   the modules it builds (efa; rtrs: rtrs-core, rtrs-client, rtrs-server)
#   symbols   config symbols make gets (CONFIG_INFINIBAND_EFA = "m"; a hidden bool "y")
#   needs     the restored drivers it links against (rnbd: rtrs), built first
#   includes  source directories its makefiles include (rnbd: ulp/rtrs)
# A package of a kernel module set (`linuxPackagesFor kernel`): `kernel` and
# `kernelModuleMakeFlags` come from that set; `src` is a kernel source tree holding
# `dir` (nixpkgs: the kernel's own `kernel.src`).
{
  lib,
  stdenv,
  kernel,
  kernelModuleMakeFlags,
  kmod,
  src ? kernel.src,
  driver,
  plan,
  # The restored drivers named in plan.needs, built for this kernel.
  needs ? [ ],
  patches ? [ ],
  # Where `plan` is the series' recipe (not made from this kernel's config: nixpkgs'
  # kernels), the kernel's own verdicts (driver-states.nix): the build refuses a
  # driver the kernel builds itself or can't restore, naming kernel, driver and why.
  driverStates ? null,
}:

let
  kdir = "${kernel.dev}/lib/modules/${kernel.modDirVersion}/build";
  symbols = lib.mapAttrsToList (s: v: "${s}=${v}") plan.symbols;
  # Where a driver installs its Module.symvers for the drivers that need it.
  symversOf = d: "${d}/share/rdma-nix/${d.driver}/Module.symvers";
in
assert lib.assertMsg (map (d: d.driver) needs == plan.needs)
  "rdma-nix: ${driver} on ${kernel.modDirVersion} needs [${toString plan.needs}], given [${toString (map (d: d.driver) needs)}]";
stdenv.mkDerivation {
  pname = "rdma-${driver}-module";
  version = kernel.version;
  name = "rdma-${driver}-module-${kernel.modDirVersion}";
  inherit src patches;

  nativeBuildInputs = [ kmod ] ++ kernel.moduleBuildDependencies;

  dontConfigure = true;

  buildPhase = ''
    runHook preBuild
    ${lib.optionalString (driverStates != null) ''
      verdict=$(awk -F '\t' -v d=${lib.escapeShellArg driver} '$1 == d { print $2 "\t" $3 }' ${driverStates}/verdicts)
      case "$verdict" in
        restorable*) ;;
        "") echo "rdma-nix: ${driver} is not a driver of linux ${kernel.modDirVersion}'s series plan" >&2; exit 1 ;;
        *) echo "rdma-nix: can't restore ${driver} for linux ${kernel.modDirVersion}: ''${verdict#*$'\t'} (from its .config; remove it from hardware.rdma.kernelModules.restore)" >&2; exit 1 ;;
      esac
    ''}
    top=$PWD
    includes=""
    for i in ${lib.escapeShellArgs plan.includes}; do includes="$includes -I$top/$i"; done
    cd ${plan.dir}
    make -j$NIX_BUILD_CORES ${lib.escapeShellArgs kernelModuleMakeFlags} \
      -C ${kdir} M=$PWD ${lib.escapeShellArgs symbols} \
      KCFLAGS="$includes" \
      KBUILD_EXTRA_SYMBOLS=${lib.escapeShellArg (toString (map symversOf needs))} \
      modules
    runHook postBuild
  '';

  # updates/ wins over the kernel's own copy in depmod's default search order.
  installPhase = ''
    runHook preInstall
    for m in ${lib.escapeShellArgs plan.modules}; do
      ko=$(find . -name "$m.ko")
      [ "$(echo "$ko" | wc -w)" = 1 ] || { echo "rdma-nix: module $m: found '$ko'" >&2; exit 1; }
      install -Dm444 $ko $out/lib/modules/${kernel.modDirVersion}/updates/$m.ko
    done
    install -Dm444 Module.symvers $out/share/rdma-nix/${driver}/Module.symvers
    runHook postInstall
  '';

  passthru = {
    inherit kernel driver plan;
    moduleNames = plan.modules;
    # The restored drivers it needs, by name (installed with it).
    restoredNeeds = plan.needs;
    # The single module of a one-module driver (siw), as soft-rdma.nix has it.
    moduleName = if builtins.length plan.modules == 1 then builtins.head plan.modules else null;
    builtFor = kernel.modDirVersion;
  };

  meta = {
    description = "The kernel's ${driver} RDMA driver (${toString plan.modules}), built out of tree";
    license = lib.licenses.gpl2Only;
    platforms = lib.platforms.linux;
  };
}
