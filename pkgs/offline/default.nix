# rdma-nix's offline platform: a small package set that gives the package files in
# pkgs/ the argument names they expect (stdenv, fetchurl, cmake, kernels, …), for
# machines with Nix but without nixpkgs or a binary cache.
#
# Hermetic: every input is in the store, pinned by hash. A bootstrap busybox (taken
# out of a pinned package by `rdma-nix fetch`) unpacks build roots of pinned Debian
# packages (./roots, one per suite: roots/*.toml) and runs every builder chrooted in
# one, so nothing reads the host's /usr, with the Nix sandbox on or off.
{ system ? "x86_64-linux"
  # Where mirror://debian/ URLs are downloaded from when `rdma-nix fetch` did not add
  # a pinned file beforehand (the repository names no mirror).
, debianMirror ? ""
  # A NAR of the bootstrap tree (bin/busybox), where `rdma-nix fetch` did not add it.
, bootstrapUrl ? ""
  # Fixes to a release's packages (pkgs/rdma-packages.nix), by release:
  # { "65.0" = { corePatches; providerPatches.<name>; }; }.
, rdmaPatches ? { }
  # Attributes merged into a matrix kernel's derivation, by kernel name (a rebuilt
  # kernel, for what-if questions such as rebuild fan-out).
, kernelOverrides ? { }
  # vCPUs of every VM check: 1, as measured by scripts/bench ("VM matrix: how the 2
  # cores are used"); another count is for measuring (the checks' derivations change).
, vmCpus ? 1
}:

let
  lib = import ./lib.nix;

  # A tool or library of the build root, standing where nixpkgs passes a package: the
  # root's /usr, which is the /usr every builder sees.
  rootTool = name: {
    inherit name;
    rootTool = name;
    outPath = "/usr";
    meta.description = "${name} from the build root";
  };

  bootstrap = import ../generated/bootstrap.nix;
  # The matrix's kernels (pkgs/generated/kernels.nix), read once.
  lockedKernels = import ../generated/kernels.nix;

  callPackageWith = scope: fn: args:
    let f = if builtins.isFunction fn then fn else import fn; in
    f (builtins.intersectAttrs (builtins.functionArgs f) scope // args);

  base = {
    inherit lib system;
    callPackage = callPackageWith self;

    # The first store path: bin/busybox, pinned by the tree's NAR hash. `rdma-nix
    # fetch` takes it out of its pinned package (pkgs/generated/bootstrap.nix).
    # Without that, Nix downloads `bootstrapUrl`: a NAR of the same tree.
    bootstrapBusybox = builtins.derivation {
      inherit (bootstrap) name;
      system = "builtin";
      builder = "builtin:fetchurl";
      url = if bootstrapUrl != "" then bootstrapUrl
        else "rdma-nix-fetch:${bootstrap.package}/${bootstrap.file}";
      unpack = true;
      outputHashMode = "recursive";
      outputHashAlgo = "sha256";
      outputHash = bootstrap.hash;
      preferLocalBuild = true;
    };

    fetchurl = import ./fetchurl.nix { inherit system debianMirror; inherit (self) bootstrapBusybox; };
    fetchzip = import ./fetchzip.nix { inherit lib system debianMirror; inherit (self) bootstrapBusybox; };

    # The build roots, by name (roots/<name>.toml; pins in pkgs/generated/roots/).
    roots = lib.genAttrs
      (map (f: lib.removeSuffix ".nix" f) (builtins.attrNames (builtins.readDir ../generated/roots)))
      (import ./roots { inherit lib system; inherit (self) fetchurl bootstrapBusybox; });

    # A stdenv whose builders run in a root; `stdenv` runs in bookworm's.
    stdenvIn = root: import ./stdenv { inherit lib system root; inherit (self) bootstrapBusybox; };
    stdenv = self.stdenvIn self.roots.bookworm;

    runCommand = name: env: buildCommand:
      self.stdenv.mkDerivation ({ inherit name buildCommand; } // env);
    writeText = name: text: self.runCommand name { inherit text; passAsFile = [ "text" ]; } ''
      cp "$textPath" "$out"
    '';

    # The root's tools and libraries under their nixpkgs names.
    cmake = rootTool "cmake";
    ninja = rootTool "ninja";
    pkg-config = rootTool "pkg-config";
    # Debian's layout of site packages; python3.pkgs as nixpkgs has it, from the root.
    python3 = rootTool "python3" // {
      sitePackages = "lib/python3/dist-packages";
      pythonVersion = "3.11";
      libPrefix = "python3.11";
      pkgs.cython = rootTool "cython3";
    };
    perl = rootTool "perl";
    libnl = rootTool "libnl";
    udev = rootTool "udev";
    pciutils = rootTool "pciutils";
    kmod = rootTool "kmod";
    pahole = rootTool "pahole";
    qemu = rootTool "qemu";
    systemd = rootTool "systemd";
    iproute2 = rootTool "iproute2";
    coreutils = rootTool "coreutils";

    debianInputs = import ../generated/debian-inputs.nix;

    busybox = self.callPackage ./busybox.nix { };

    # Kernels of the offline matrix, by name (pkgs/generated/kernels.nix).
    kernels = builtins.mapAttrs
      (name: k:
        let kernel = self.callPackage ./debian-kernel.nix { stdenv = self.stdenvIn self.roots.${k.root}; }
          ({ inherit name; } // builtins.removeAttrs k [ "moduleSource" ]); in
        if kernelOverrides ? ${name} then kernel.overrideAttrs (_: kernelOverrides.${name}) else kernel)
      lockedKernels;

    kernelSource = self.callPackage ./kernel-source.nix { };

    # A kernel's module package set, shaped like nixpkgs' `linuxPackagesFor kernel`
    # (kernel, kernelModuleMakeFlags, callPackage), extended with our modules: the soft
    # RDMA drivers, and every driver its source has and its config leaves out
    # (`restorePlan`: the kernel's entry of pkgs/generated/restore.nix).
    linuxPackagesFor = kernel: moduleSrc: restorePlan:
      base.linuxPackagesWith { inherit kernel moduleSrc restorePlan; };
    # The same with the extension's other arguments (`fromSeriesPlan`).
    linuxPackagesWith = { kernel, moduleSrc, restorePlan, fromSeriesPlan ? false }:
      let
        # A fixed point, as nixpkgs' `.extend`: a restored driver finds those it needs.
        set = base // {
          inherit kernel;
          # Modules are built with the kernel's own suite's compiler.
          inherit (kernel) stdenv;
          kernelModuleMakeFlags = kernel.commonMakeFlags;
          callPackage = callPackageWith set;
        } // (import ../kernel-modules/extension.nix {
          src = moduleSrc;
          inherit restorePlan fromSeriesPlan;
          seriesPlan = let v = builtins.splitVersion kernel.version; in
            base.restorePlans.series."${builtins.elemAt v 0}.${builtins.elemAt v 1}" or null;
        }) set set;
      in
      set;

    # What `rdma-nix generate` planned for each matrix kernel's missing drivers, and
    # the default set restored everywhere it is missing.
    restorePlans = import ../generated/restore.nix;

    # The matrix's kernels by role (oldest, newest, each series' oldest and newest, the
    # kABI pair), from the lock: checks pick kernels by role, never by name.
    roles = import ../generated/roles.nix;

    # Per kernel of the matrix: `kernelPackages.<kernel>.rdma-siw`, `.rdma-rxe`, and
    # `.rdmaRestored.<driver>` for every driver the kernel lacks; where the generator
    # found a recorded build that loads (pkgs/generated/kernel-modules.nix), that build
    # is reused instead of compiling again.
    kernelModulePlan = import ../generated/kernel-modules.nix;
    # Each kernel's own builds, whatever the plan reuses: what `rdma-nix update` reads
    # a build's imports and exports from to decide reuse for a newer kernel.
    kernelPackagesOwn = builtins.mapAttrs
      (name: k: base.linuxPackagesFor base.kernels.${name} (base.kernelSource k.moduleSource)
        base.restorePlans.kernels.${name})
      lockedKernels;
    # Each kernel as nixpkgs' kernels are served: its series' recipes, each restored
    # driver's build refusing what the kernel's own .config builds or can't restore
    # (the mechanism the NixOS module relies on for nixpkgs' kernels, run here).
    kernelPackagesBySeries = builtins.mapAttrs
      (name: k:
        let kernel = base.kernels.${name}; v = builtins.splitVersion kernel.version; in
        base.linuxPackagesWith {
          inherit kernel;
          moduleSrc = base.kernelSource k.moduleSource;
          restorePlan = base.restorePlans.series."${builtins.elemAt v 0}.${builtins.elemAt v 1}";
          fromSeriesPlan = true;
        })
      lockedKernels;
    kernelPackages = builtins.mapAttrs
      (name: k:
        let
          own = base.kernelPackagesOwn.${name};
          pick = driver: pkg: get:
            let plan = base.kernelModulePlan.${driver}.${name} or { reuse = null; }; in
            if plan.reuse == null then pkg
            else base.callPackage ../kernel-modules/weak-update.nix {
              kernel = base.kernels.${name};
              module = get base.kernelPackages.${plan.reuse};
              inherit (plan) reason;
            };
          set = own // {
            rdma-siw = pick "siw" own.rdma-siw (p: p.rdma-siw);
            rdma-rxe = pick "rxe" own.rdma-rxe (p: p.rdma-rxe);
            rdmaRestored = builtins.mapAttrs
              (d: pkg: if d == "siw" then set.rdma-siw else pick d pkg (p: p.rdmaRestored.${d}))
              own.rdmaRestored;
            # The default set's drivers this kernel lacks, built or reused.
            rdmaRestoredDefault = lib.filterAttrs
              (d: _: builtins.elem d base.restorePlans.default)
              set.rdmaRestored;
          };
        in
        set)
      lockedKernels;

    # Load every restored driver of the default set on a matrix kernel, check the
    # kernel stays clean, and unload them (checks/offline/restored-load.nix).
    restoredLoadCheck = self.callPackage ../../checks/offline/restored-load.nix { };

    runVM = self.callPackage ./vm { inherit vmCpus; };

    # rdma-core releases pinned in stack.toml (pkgs/generated/rdma-core), and the
    # userspace packages of each: `rdmaPackages."65.0".rdma-provider-rxe`, …
    # (Built from `base` so that the set's attribute names don't depend on itself.)
    rdmaCoreReleases = import ../generated/rdma-core;
    rdmaPackages = builtins.mapAttrs
      (version: release: callPackageWith base ../rdma-packages.nix ((rdmaPatches.${version} or { }) // {
        inherit release;
        callPackage = callPackageWith base;
      }))
      base.rdmaCoreReleases.releases;

    # The plain Nix behind the NixOS module (modules/lib.nix): config dirs, module
    # lists, soft deps, `rdma link` scripts, rdma-core's fixed udev rules and units.
    rdmaNixLib = import ../../modules/lib.nix { inherit lib; };
    rdmaSystemIntegration = self.rdmaNixLib.systemIntegration {
      inherit (self) runCommand systemd;
      core = self.rdma-core;
    };

    # Load a module of ours on a matrix kernel: `moduleLoadCheck roles.newest "siw"`;
    # `moduleLoadCheckWith { kernelName; driver; set; }` from another module set.
    moduleLoadCheckWith = self.callPackage ../../checks/offline/module-load.nix { };
    moduleLoadCheck = kernelName: driver: self.moduleLoadCheckWith { inherit kernelName driver; };

    # What hardware.rdma.checks.gate does on NixOS (its checks in system.checks, which
    # the system's build depends on), here: a kernel's module set deployed only when
    # its driver loads and makes its device in a VM. `set` overrides the module set
    # (a deliberately broken one shows the gate closing).
    gatedSystem = { kernelName, driver ? "siw", set ? self.kernelPackages.${kernelName} }:
      let check = self.moduleLoadCheckWith { inherit kernelName driver set; }; in
      self.runCommand "rdma-nix-system-${kernelName}"
        {
          # As nixos/modules/system/activation/top-level.nix passes system.checks.
          passedChecks = toString [ check ];
          passthru = { inherit check; };
        } ''
        mkdir -p $out
        ln -s ${set.kernel} $out/kernel
        ln -s ${set."rdma-${driver}"} $out/rdma-${driver}
      '';

    # ibv_devices over rxe0 and siw0 with a config dir of only those two providers.
    verbsDevicesCheck = kernelName: self.callPackage ../../checks/offline/verbs-devices.nix { } kernelName;

    # One soft device's kernel, modules, provider and config dir for a VM check.
    softDevice = self.callPackage ../../checks/offline/soft-device.nix { };

    # perftest's RDMA CM race made deterministic (checks/offline/perftest-cm-race.nix):
    # `perftestCmRace { race = true; }` reproduces it with unpatched perftest.
    perftestCmRace = self.callPackage ../../checks/offline/perftest-cm-race.nix { };

    # nixpkgs' replaceDirectDependencies (what system.replaceDependencies applies), and
    # the check that a foreign rdma-core's consumer rewritten by it loads our providers.
    replaceDirectDependencies = self.callPackage ./replace-direct-dependencies.nix { };
    replaceDependenciesCheck = self.callPackage ../../checks/offline/replace-dependencies.nix { };

    # The hot paths (checks/payload) on a kernel of the matrix and a soft device:
    # `hotpathsCheck roles.newest "siw"`; `hotpathsCheckWith { kernelName; driver;
    # expected = ./other-expectations.txt; }`.
    hotpathsCheckWith = self.callPackage ../../checks/offline/hotpaths.nix { };
    hotpathsCheck = kernelName: driver: self.hotpathsCheckWith { inherit kernelName driver; };

    # Every kernel × device of the matrix, `checks.<kernel>.<rxe|siw>`, and `checks.all`
    # gathering each one's output (serial.log, result.json) under <kernel>-<driver>/.
    # `gatherChecks name [ check … ]` does the same for any subset.
    checks =
      let
        perKernel = builtins.mapAttrs
          (k: _: lib.genAttrs [ "rxe" "siw" ] (self.hotpathsCheck k)
            // { restored = self.restoredLoadCheck { kernelName = k; }; })
          lockedKernels;
      in
      perKernel // {
        # Each a defect found by the matrix, fixed, and kept from coming back.
        regressions = {
          # pkgs/kernel-modules/patches/siw-accept-read-early-data.patch: without it,
          # this stalled in 3 of 3 runs (a connection made 5, 10 or 15 s after the
          # device came up), the server's socket holding the client's first SEND unread.
          siw-accept-early-data = self.rpingCheck {
            kernelName = self.roles.oldest;
            driver = "siw";
            delay = 15;
          } // { passthru.checkName = "siw-accept-early-data"; };
        };
        # A driver outside the default set, restored by name only: opa_vnic (Debian
        # leaves it out), on each series' newest kernel whose plan can build it.
        restoredByName = lib.mapAttrs'
          (series: kernelName: lib.nameValuePair
            "opa_vnic-${builtins.replaceStrings [ "." ] [ "_" ] series}"
            (self.restoredLoadCheck { inherit kernelName; drivers = [ "opa_vnic" ]; }))
          (lib.filterAttrs
            (_: k: !(self.restorePlans.kernels.${k}.drivers.opa_vnic ? skip))
            self.roles.seriesNewest);
        all = self.gatherChecks "vm-checks-all"
          (lib.concatMap builtins.attrValues (builtins.attrValues perKernel)
            ++ builtins.attrValues self.checks.regressions
            ++ builtins.attrValues self.checks.restoredByName);
      };

    # rping alone over one soft device (checks/offline/rping.nix).
    rpingCheck = self.callPackage ../../checks/offline/rping.nix { };
    gatherChecks = name: checks: self.runCommand name { } ''
      mkdir -p $out
      ${lib.concatMapStringsSep "\n" (c: "cp -r ${c} $out/${c.passthru.checkName}") checks}
    '';

    # The platform's own checks.
    tests = self.callPackage ./tests { };

    # The default stack in one output (what the README's main command builds): the
    # release's userspace (core, every provider, the full build, perftest, the config
    # dir) under userspace/, and every matrix kernel's modules under kernels/<kernel>/
    # (the default set's restored drivers under kernels/<kernel>/restored/).
    stack = self.runCommand "rdma-nix-stack" { } (''
      mkdir -p $out/userspace $out/kernels
    '' + lib.concatMapStringsSep "\n" (p: "ln -s ${p} $out/userspace/${p.name}")
      ([ self.rdma-core self.rdma-core-full self.perftest self.verbs-config-dir ]
        ++ builtins.attrValues self.rdmaProviders)
    + "\n" + lib.concatMapStringsSep "\n" (k: ''
      mkdir -p $out/kernels/${k}
      ln -s ${self.kernelPackages.${k}.rdma-siw} $out/kernels/${k}/rdma-siw
      ln -s ${self.kernelPackages.${k}.rdma-rxe} $out/kernels/${k}/rdma-rxe
      mkdir -p $out/kernels/${k}/restored
    '' + lib.concatStringsSep "\n" (lib.mapAttrsToList
      (d: p: "ln -s ${p} $out/kernels/${k}/restored/${d}")
      self.kernelPackages.${k}.rdmaRestoredDefault))
      (builtins.attrNames lockedKernels));
  };
  # The default release's packages at the top level, as the overlay has them.
  defaultPackages = base.rdmaPackages.${base.rdmaCoreReleases.default};
  self = base // defaultPackages // {
    # pyverbs and the suite, tested where they run: upstream's suite on rxe and siw
    # (with NVMe-oF) on the matrix's last kernel by name.
    rdma-core-pyverbs = defaultPackages.rdma-core-pyverbs.overrideAttrs (o: {
      passthru = o.passthru // {
        tests =
          let names = builtins.attrNames lockedKernels;
          in lib.genAttrs [ "rxe" "siw" ] (self.hotpathsCheck (builtins.elemAt names (builtins.length names - 1)));
      };
    });
  };
in
self
