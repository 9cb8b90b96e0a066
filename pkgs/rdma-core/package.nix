# rdma-core's core: libibverbs, librdmacm, libibumad, libibmad, libibnetdisc and the
# tools. The tree is compiled once with every provider; each provider's installed
# files go to the `providers` output (one directory per provider), from which the
# rdma-provider-<name> derivations take theirs. So the default path compiles
# rdma-core once, and the core itself contains no provider.
#
# `release` is the scanned data of one release (pkgs/generated/rdma-core/<v>.nix).
# `configDir` is the directory libibverbs reads `*.driver` files from: by default the
# system-wide /etc/libibverbs.d (the NixOS module composes it); `null` builds the
# monolithic variant (rdma-core-full): every provider kept in this package and the
# config dir in its own store path, as nixpkgs' rdma-core does. `withPyverbs` (with
# `configDir = null`) adds pyverbs, compiled by the pinned Cython, and upstream's own
# test suite (tests/, run_tests.py): rdma-core-pyverbs, what the VM checks run.
{
  lib,
  stdenv,
  fetchzip,
  cmake,
  ninja,
  pkg-config,
  python3,
  perl,
  libnl,
  udev,
  coreutils,
  # Man pages need pandoc and rst2man (nixpkgs has both; the offline platform
  # neither), as nixpkgs' rdma-core builds them.
  pandoc ? null,
  docutils ? null,
  withManPages ? pandoc != null && docutils != null,
  withPyverbs ? false,
  release,
  configDir ? "/etc/libibverbs.d",
}:

assert withPyverbs -> configDir == null;

let
  monolithic = configDir == null;
  # Fixes to upstream's test harness (tests/), in the pyverbs variant only: the
  # libraries are the same tree as rdma-core-full's.
  suitePatches = [
    # A race of the external-QP RDMA CM test's two processes (an RNR NAK when the
    # active side is slow; checks/payload/rdma-suite.py's `ext-qp-late-recv` run
    # proves it both ways).
    ./patches/suite-ext-qp-recv-before-send.patch
  ];
  providerDirs = lib.mapAttrsToList (name: p: "${name}:${p.directory}") release.providers;
in
stdenv.mkDerivation (finalAttrs: {
  pname =
    if withPyverbs then
      "rdma-core-pyverbs"
    else if monolithic then
      "rdma-core-full"
    else
      "rdma-core";
  inherit (release) version;

  # The unpacked tree, pinned by its NAR hash; upstream's URLs first, then Debian's.
  src = fetchzip release.src;

  # nixpkgs' outputs: the perl scripts and modules in `scripts` keep perl out of
  # `out`'s closure; `man` when man pages are built. The split core adds `providers`.
  outputs = [
    "out"
    "dev"
    "scripts"
  ]
  ++ lib.optionals withManPages [ "man" ]
  ++ lib.optionals (!monolithic) [ "providers" ];

  nativeBuildInputs = [
    cmake
    ninja
    pkg-config
    python3
  ]
  ++ lib.optionals withPyverbs [ python3.pkgs.cython ]
  ++ lib.optionals withManPages [
    docutils
    pandoc
  ];

  buildInputs = [
    libnl
    perl
    udev
  ];

  cmakeFlags = lib.optionals (!withManPages) [ "-DNO_MAN_PAGES=1" ] ++ [
    (if withPyverbs then "-DCMAKE_INSTALL_PYTHON_ARCH_LIB=${placeholder "out"}/${python3.sitePackages}" else "-DNO_PYVERBS=1")
    "-DENABLE_STATIC=0"
    "-DCMAKE_INSTALL_RUNDIR=/run"
    "-DCMAKE_INSTALL_SHAREDSTATEDIR=/var/lib"
    # Every install directory inside our outputs (without a sandbox, a path outside
    # them is attempted on the host).
    "-DSYSUSERS_DIR=${placeholder "out"}/lib/sysusers.d"
    "-DCMAKE_INSTALL_UDEV_RULESDIR=${placeholder "out"}/lib/udev/rules.d"
    "-DCMAKE_INSTALL_SYSTEMD_SERVICEDIR=${placeholder "out"}/lib/systemd/system"
    "-DCMAKE_INSTALL_SYSTEMD_BINDIR=${placeholder "out"}/lib/systemd"
    "-DCMAKE_INSTALL_PERLDIR=${placeholder "scripts"}/share/perl5"
  ];

  # srp_daemon.sh removes its pid file with /bin/rm, which NixOS lacks. libibverbs
  # reads its config dir at a path fixed at compile time.
  postPatch =
    ''
      substituteInPlace srp_daemon/srp_daemon.sh.in \
        --replace-fail /bin/rm ${coreutils}/bin/rm
    ''
    + lib.optionalString (!monolithic) ''
      substituteInPlace buildlib/config.h.in \
        --replace-fail '"@CONFIG_DIR@"' '"${configDir}"'
    '';

  # Install everything, then move each provider's files (what its directory's
  # cmake_install.cmake installs) out of out/dev into providers/<name>/{out,dev}.
  postInstall = lib.optionalString (!monolithic) ''
    for entry in ${lib.concatStringsSep " " providerDirs}; do
      name=''${entry%%:*} dir=''${entry#*:}
      stage="$TMPDIR/stage/$name"
      DESTDIR="$stage" cmake -P "providers/$dir/cmake_install.cmake" > /dev/null
      for o in out dev; do
        [ -d "$stage''${!o}" ] || continue
        mkdir -p "$providers/$name/$o"
        (cd "$stage''${!o}" && find . ! -type d) | while read -r f; do
          mkdir -p "$(dirname "$providers/$name/$o/$f")"
          mv "''${!o}/$f" "$providers/$name/$o/$f"
        done
      done
    done
    find "$out" "$dev" -depth -type d -empty -delete
    mkdir -p "$out" "$dev"
  '';

  # The perl scripts go to `scripts` (with their modules' directory on perl's path), so
  # nothing in `out` runs perl; a reference to perl left in `out` fails the build.
  postFixup = ''
    for f in "$out"/bin/* "$out"/sbin/*; do
      [ -f "$f" ] && head -c 64 "$f" | head -n 1 | grep -q '^#!.*perl' || continue
      rel=''${f#"$out"/}
      mkdir -p "$scripts/$(dirname "$rel")"
      mv "$f" "$scripts/$rel"
      sed -i "1s|^\\(#!.*perl\\)\$|\\1 -I $scripts/share/perl5|" "$scripts/$rel"
      echo "moved $rel to the scripts output"
    done
  '' + lib.optionalString (lib.hasPrefix builtins.storeDir (toString perl)) ''
    if grep -rlF ${perl} "$out"; then
      echo "perl is referenced from the out output (above)" >&2
      exit 1
    fi
  '';

  # A pyverbs that doesn't import, or a suite that isn't there, fails here.
  doInstallCheck = withPyverbs;
  installCheckPhase = ''
    runHook preInstallCheck
    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$out/${python3.sitePackages} python3 -c 'import pyverbs.device, pyverbs.providers.mlx5.mlx5dv, pyverbs.providers.efa.efadv'
    test -f $out/share/doc/rdma-core/tests/run_tests.py
    runHook postInstallCheck
  '';

  passthru = {
    inherit (release) pabi;
    inherit release configDir;
    # Where pyverbs and the suite are below `out` (withPyverbs), and the interpreter
    # they are for.
    inherit (python3) sitePackages;
    python = python3;
    suiteDir = "share/doc/rdma-core/tests";
    providerNames = builtins.attrNames release.providers;
  };

  meta = {
    description =
      if withPyverbs then
        "rdma-core with pyverbs and upstream's test suite (run_tests.py), every provider in one package"
      else if monolithic then
        "RDMA core userspace libraries, daemons and every provider in one package (drop-in for nixpkgs' rdma-core)"
      else
        "RDMA core userspace libraries and daemons, without providers (libibverbs reads ${configDir})";
    homepage = "https://github.com/linux-rdma/rdma-core";
    license = lib.licenses.gpl2Only;
    platforms = lib.platforms.linux;
  };
}
# Only here, so the other variants' derivations are what they were without it.
// lib.optionalAttrs withPyverbs { patches = suitePatches; })
