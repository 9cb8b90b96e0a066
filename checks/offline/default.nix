# The catalogue of VM checks on the offline platform: each check's package (the files
# beside this one) called with the platform's set, and `checks`: every kernel × device
# of the matrix, the restored drivers' load checks, the regressions, `checks.all`.
# Part of pkgs/offline/default.nix's fixed point (`self`: the whole set).
{ lib, self, lockedKernels }:

{
  # Load every restored driver of the default set on a matrix kernel, check the
  # kernel stays clean, and unload them (checks/offline/restored-load.nix).
  restoredLoadCheck = self.callPackage ./restored-load.nix { };

  # Load a module of ours on a matrix kernel: `moduleLoadCheck roles.newest "siw"`;
  # `moduleLoadCheckWith { kernelName; driver; set; }` from another module set.
  moduleLoadCheckWith = self.callPackage ./module-load.nix { };
  moduleLoadCheck = kernelName: driver: self.moduleLoadCheckWith { inherit kernelName driver; };

  # What hardware.rdma.checks.gate does on NixOS (its checks in system.checks, which
  # the system's build depends on), here: a kernel's module set deployed only when
  # its driver loads and makes its device in a VM. `set` overrides the module set
  # (a deliberately broken one shows the gate closing).
  gatedSystem = { kernelName, driver ? "siw", set ? self.kernelPackages.${kernelName} }:
    let
      check = self.moduleLoadCheckWith { inherit kernelName driver set;
      };
    in
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
  verbsDevicesCheck = kernelName: self.callPackage ./verbs-devices.nix { } kernelName;

  # One soft device's kernel, modules, provider and config dir for a VM check.
  softDevice = self.callPackage ./soft-device.nix { };

  # perftest's RDMA CM race made deterministic (checks/offline/perftest-cm-race.nix):
  # `perftestCmRace { race = true; }` reproduces it with unpatched perftest.
  perftestCmRace = self.callPackage ./perftest-cm-race.nix { };

  # The check that a foreign rdma-core's consumer rewritten by nixpkgs'
  # replaceDirectDependencies (what system.replaceDependencies applies) loads our
  # providers.
  replaceDependenciesCheck = self.callPackage ./replace-dependencies.nix { };

  # The hot paths (checks/payload) on a kernel of the matrix and a soft device:
  # `hotpathsCheck roles.newest "siw"`; `hotpathsCheckWith { kernelName; driver;
  # expected = ./other-expectations.txt; }`.
  hotpathsCheckWith = self.callPackage ./hotpaths.nix { };
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
  rpingCheck = self.callPackage ./rping.nix { };
  gatherChecks = name: checks: self.runCommand name { } ''
    mkdir -p $out
    ${lib.concatMapStringsSep "\n" (c: "cp -r ${c} $out/${c.passthru.checkName}") checks}
  '';
}
