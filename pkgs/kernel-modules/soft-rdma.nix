# An in-kernel soft-RDMA driver built out of tree for one kernel: siw (iWARP over
# TCP; disabled in Debian's and some distributions' kernels) or rdma_rxe (RoCEv2 over
# UDP). A package of a kernel module set (`linuxPackagesFor kernel`): `kernel` and
# `kernelModuleMakeFlags` come from that set; `src` is a kernel source tree holding
# drivers/infiniband/sw/<driver> (nixpkgs: the kernel's own `kernel.src`).
{
  lib,
  stdenv,
  kernel,
  kernelModuleMakeFlags,
  kmod,
  src ? kernel.src,
  driver,
}:

let
  drivers = {
    siw = {
      config = "CONFIG_RDMA_SIW";
      module = "siw";
      description = "Soft iWARP (siw) RDMA driver";
      # Fixes carried on every kernel's own source (each patch says what and why).
      patches = [ ./patches/siw-accept-read-early-data.patch ];
    };
    rxe = {
      config = "CONFIG_RDMA_RXE";
      module = "rdma_rxe";
      description = "Soft RoCE (rdma_rxe) RDMA driver";
      patches = [ ];
    };
  };
  d = drivers.${driver} or (throw "rdma-nix: unknown soft-RDMA driver '${driver}' (siw or rxe)");
  kdir = "${kernel.dev}/lib/modules/${kernel.modDirVersion}/build";
in
stdenv.mkDerivation {
  pname = "${d.module}-module";
  version = "${kernel.version}";
  name = "${d.module}-module-${kernel.modDirVersion}";
  inherit src;
  inherit (d) patches;

  nativeBuildInputs = [ kmod ] ++ kernel.moduleBuildDependencies;

  dontConfigure = true;

  buildPhase = ''
    runHook preBuild
    cd drivers/infiniband/sw/${driver}
    make -j$NIX_BUILD_CORES ${lib.escapeShellArgs kernelModuleMakeFlags} \
      -C ${kdir} M=$PWD ${d.config}=m modules
    runHook postBuild
  '';

  # updates/ wins over the kernel's own copy in depmod's default search order.
  installPhase = ''
    runHook preInstall
    install -Dm444 ${d.module}.ko $out/lib/modules/${kernel.modDirVersion}/updates/${d.module}.ko
    runHook postInstall
  '';

  passthru = {
    inherit kernel driver;
    moduleName = d.module;
    builtFor = kernel.modDirVersion;
  };

  meta = {
    inherit (d) description;
    license = lib.licenses.gpl2Only;
    platforms = lib.platforms.linux;
  };
}
