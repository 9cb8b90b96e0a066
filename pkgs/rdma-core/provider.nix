# One rdma-core provider as its own package: the plugin libibverbs loads, its public
# library, headers and .pc file when it has them, extra files, and a `.driver` file
# naming the plugin by absolute path.
#
# Unpatched, it takes the files the core build already compiled (no compilation).
# With `patches` (a vendor fix: `overrideAttrs (o: { patches = [ ./fix.patch ]; })`)
# it compiles this provider alone from the same source tree: its own targets and
# what they link (libibverbs' objects inside this build only); the core package and
# everything that depends on it are untouched.
{
  lib,
  stdenv,
  pkg-config,
  rdma-core,
  name,
  data,
}:

let
  inherit (rdma-core) release;
  shared = data.publicLibrary != null;
  # CMake target of the plugin (rdma_provider) or the public library (shared).
  target = if shared then name else "${name}-rdmav${toString release.pabi}";
in
stdenv.mkDerivation (finalAttrs: {
  pname = "rdma-provider-${name}";
  inherit (rdma-core) version src;

  outputs = [
    "out"
    "dev"
  ];

  patches = [ ];

  # Only a patched provider compiles.
  dontUnpack = finalAttrs.patches == [ ];
  dontPatch = finalAttrs.patches == [ ];
  dontConfigure = finalAttrs.patches == [ ];
  dontBuild = finalAttrs.patches == [ ];

  # The core's build inputs and flags: the same tree, configured the same way.
  inherit (rdma-core) nativeBuildInputs buildInputs;
  # The public library's .pc file requires libibverbs (`Requires.private`), and its
  # headers include <infiniband/verbs.h>: a consumer of the dev output gets the core's.
  propagatedBuildInputs = [ rdma-core ];

  cmakeFlags = rdma-core.cmakeFlags ++ [
    # The plugin and public library find libibverbs in the core.
    "-DCMAKE_INSTALL_RPATH=${lib.getLib rdma-core}/lib"
  ];
  inherit (rdma-core) postPatch;
  ninjaFlags = [ target ];

  installPhase = ''
    runHook preInstall
    if [ -z "''${dontBuild:-}" ]; then
      # What this provider's directory installs, and nothing else.
      cmake -P providers/${data.directory}/cmake_install.cmake > /dev/null
    else
      for o in out dev; do
        if [ -d "${rdma-core.providers}/${name}/$o" ]; then
          mkdir -p "''${!o}"
          cp -a "${rdma-core.providers}/${name}/$o/." "''${!o}/"
          chmod -R u+w "''${!o}"
        fi
      done
      # pkg-config files name the prefix they were installed under.
      for pc in $out/lib/pkgconfig/*.pc $dev/lib/pkgconfig/*.pc; do
        substituteInPlace "$pc" \
          --replace-quiet "${lib.getDev rdma-core}" "$dev" \
          --replace-quiet "${lib.getLib rdma-core}" "$out"
      done
    fi
    # libibverbs opens "<this prefix>-rdmav<PABI>.so".
    mkdir -p $out/etc/libibverbs.d
    echo "driver $out/lib/libibverbs/lib${name}" > $out/etc/libibverbs.d/${data.driverFile}
    test -e $out/lib/libibverbs/${data.plugin} || { echo "missing plugin ${data.plugin}" >&2; exit 1; }
    runHook postInstall
  '';

  passthru = {
    providerName = name;
    inherit (release) pabi;
    inherit (data) kernelModules publicLibrary needsCoherentDma;
    driverNames = [ name ];
    core = rdma-core;
    tests = lib.optionalAttrs (shared && data.publicLibrary.pkgConfig != null) {
      dev-consumer = import ./provider-dev-test.nix {
        inherit stdenv pkg-config;
        provider = finalAttrs.finalPackage;
      };
    };
  };

  meta = {
    description = "rdma-core ${release.version} verbs provider ${name} (kernel: ${lib.concatStringsSep ", " data.kernelModules})";
    homepage = "https://github.com/linux-rdma/rdma-core/tree/master/providers/${data.directory}";
    license = lib.licenses.gpl2Only;
    platforms = lib.platforms.linux;
  };
})
