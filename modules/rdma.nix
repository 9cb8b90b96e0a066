# NixOS module: the RDMA stack from rdma-nix, declared. The core and the providers
# are separate packages composed into /etc/libibverbs.d, so a vendor's provider
# replaces the bundled one by name (`providerOverrides`) and nothing overwrites
# anything else. Soft-RDMA devices (rxe, siw) come with our kernel modules where the
# kernel lacks them. What isn't NixOS-specific lives in ./lib.nix, which the offline
# VM checks use too.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:

let
  cfg = config.hardware.rdma;
  rdmaNixLib = import ./lib.nix { inherit lib; };
  releases = import ../pkgs/generated/rdma-core;

  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    literalExpression
    types
    ;

  rdmaPackagesFor =
    release: pkgs.callPackage ../pkgs/rdma-packages.nix { release = releases.releases.${release}; };

  # rdma-core-full: every provider compiled in, its config dir in its own store path.
  monolithicCore = (cfg.package.configDir or "/etc/libibverbs.d") == null;

  # The providers of the configured core's release, built from that core (none for
  # rdma-core-full, which the assertion below refuses).
  coreProviders = lib.optionalAttrs (!monolithicCore) (builtins.mapAttrs (
    name: data:
    pkgs.callPackage ../pkgs/rdma-core/provider.nix {
      rdma-core = cfg.package;
      inherit name data;
    }
  ) (cfg.package.release or { providers = { }; }).providers);

  selection = {
    core = cfg.package;
    providers = coreProviders;
    wanted = cfg.providers;
    overrides = cfg.providerOverrides;
  };
  providerErrors = rdmaNixLib.providerErrors selection;

  configDir = rdmaNixLib.mkVerbsConfigDir {
    inherit (pkgs) runCommand;
    inherit (selection) core overrides;
    providers = rdmaNixLib.selectProviders { inherit (selection) providers wanted; };
  };

  # nixpkgs' rdma-core as everything referring to it sees it at run time: our core's
  # tree and every provider's, with the composed config dir (system.replaceDependencies
  # swaps one for the other).
  runtimeView = rdmaNixLib.mkRuntimeView {
    inherit (pkgs) runCommand;
    inherit (selection) core overrides;
    inherit configDir;
    providers = builtins.attrValues selection.providers;
    name = pkgs.rdma-core.name;
  };

  integration = rdmaNixLib.systemIntegration {
    inherit (pkgs) runCommand;
    core = cfg.package;
    systemd = config.systemd.package;
    withNdd = cfg.ndd.enable;
  };

  drivers = lib.optional cfg.softRoce.enable "rxe" ++ lib.optional cfg.siw.enable "siw";

  # boot.kernelPackages with rdma-nix's modules: the offline platform's sets carry them
  # (with the generated plan of their kernel, made from its config: a driver it can't
  # restore is an assertion); nixpkgs' are extended with the recipes of their series
  # (pkgs/generated/restore.nix), and a restored driver's build reads the kernel's own
  # .config first, failing for one the kernel builds itself or can't restore.
  restorePlans = import ../pkgs/generated/restore.nix;
  kp = config.boot.kernelPackages;
  series = lib.versions.majorMinor kp.kernel.version;
  kpRdma =
    if kp ? rdmaRestored then
      kp
    else
      kp.extend (
        import ../pkgs/kernel-modules/extension.nix {
          restorePlan = restorePlans.series.${series} or null;
          fromSeriesPlan = true;
        }
      );
  restoreMissing = builtins.filter (d: !(kpRdma.rdmaRestored ? ${d})) cfg.kernelModules.restore;
  # The drivers asked for by name, with those they need (rnbd: rtrs).
  restored = map (d: kpRdma.rdmaRestored.${d}) (
    rdmaNixLib.restoreClosure (d: kpRdma.rdmaRestored.${d}.restoredNeeds or [ ]) (
      builtins.filter (d: kpRdma.rdmaRestored ? ${d}) cfg.kernelModules.restore
    )
  );
  whyNot =
    d:
    if !(restorePlans.series ? ${series}) && !(kp ? rdmaRestored) then
      "rdma-nix has no plan for linux ${series} (it plans from the sources of linux ${lib.concatStringsSep ", " (builtins.attrNames restorePlans.series)}: stack.toml's [[kernel_source]])"
    else
      kpRdma.rdmaNotRestored.${d} or "it is not a driver of linux ${series}'s source";
  devices = rdmaNixLib.softDevices "rxe" cfg.softRoce.interfaces ++ rdmaNixLib.softDevices "siw" cfg.siw.interfaces;

  rdmaTool = "${pkgs.iproute2}/bin/rdma";

  # The services asked for by name get the limit; nothing else does.
  memlockUnits = lib.genAttrs (map (lib.removeSuffix ".service") cfg.memlockServices) (_: {
    serviceConfig.LimitMEMLOCK = rdmaNixLib.systemdMemlock cfg.memlockLimit;
  });

  # A unit per soft device, bound to its interface.
  linkUnits = builtins.listToAttrs (
    map (
      dev:
      let
        netdevUnit = "sys-subsystem-net-devices-${utils.escapeSystemdPath dev.netdev}.device";
      in
      lib.nameValuePair "rdma-link-${dev.name}" {
        description = "Soft RDMA device ${dev.name} (${dev.type} on ${dev.netdev})";
        wantedBy = [ "multi-user.target" ];
        bindsTo = [ netdevUnit ];
        after = [
          netdevUnit
          "network-addresses-${dev.netdev}.service"
          "systemd-modules-load.service"
        ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        script = rdmaNixLib.linkUpScript {
          rdma = rdmaTool;
          inherit dev;
        };
        preStop = rdmaNixLib.linkDownScript {
          rdma = rdmaTool;
          inherit dev;
        };
      }
    ) devices
  );

  # hardware.rdma.checks.gate: the hot-path NixOS test (checks/nixos-hotpaths.nix) of
  # this system's kernel and settings, one per enabled soft driver (rxe when none is);
  # the client also loads every restored driver's modules.
  hotpaths = import ../checks/nixos-hotpaths.nix {
    inherit lib;
    inherit (pkgs) testers;
    rdmaModule = ./rdma.nix;
  };
  gateDrivers = if drivers == [ ] then [ "rxe" ] else drivers;
  restoredModules = lib.concatMap (p: p.moduleNames or [ p.moduleName ]) restored;
  gateTests = map (
    driver:
    hotpaths {
      name = "rdma-gate-${kp.kernel.modDirVersion}-${driver}";
      kernelName = kp.kernel.modDirVersion;
      kernelPackages = kp;
      inherit driver;
      ours = builtins.elem driver cfg.kernelModules.outOfTree;
      providers = if cfg.providers == "all" then "all" else lib.unique (cfg.providers ++ [ driver ]);
      rdma = {
        inherit (cfg) release package providerOverrides;
        kernelModules = { inherit (cfg.kernelModules) outOfTree restore; };
      };
      extraScript = lib.concatMapStrings (m: "client.succeed(\"modprobe ${m}\")\n") restoredModules;
    }
  ) gateDrivers;

  softDeviceOptions = driver: what: {
    enable = mkOption {
      type = types.bool;
      default = cfg.${driver}.interfaces != [ ];
      defaultText = literalExpression "config.hardware.rdma.${driver}.interfaces != [ ]";
      description = ''
        Whether to load the ${what} kernel module (with its soft dependencies). Our
        build of the module is added when the kernel lacks it
        (see {option}`hardware.rdma.kernelModules.outOfTree`).
      '';
    };
    interfaces = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "eth1" ];
      description = ''
        Network interfaces to put a ${what} device on, named
        `${if driver == "softRoce" then "rxe" else "siw"}_<interface>`. Each gets a unit
        `rdma-link-<device>.service` that runs `rdma link add` once the interface
        exists, leaves an existing device alone, and removes the device when stopped.
        Every interface must be brought up by something: declared in
        {option}`networking.interfaces`, taken by dhcpcd ({option}`networking.useDHCP`,
        the default of scripted networking), matched by a
        {option}`systemd.network.networks` entry (by `Name`, or by keys such as `Type`
        that only the running system can decide), or managed by NetworkManager.
      '';
    };
  };
in
{
  imports = [
    # Gave every service (sshd and logins included) the group's limit by default.
    (lib.mkRemovedOptionModule [ "hardware" "rdma" "memlockForServices" ] ''
      It made hardware.rdma.memlockLimit systemd's default for every service, logins
      and sshd included. Name the services that need it in
      hardware.rdma.memlockServices, or set hardware.rdma.memlockForAllServices.
    '')
  ];

  options.hardware.rdma = {
    enable = mkEnableOption "the RDMA userspace stack from rdma-nix: libibverbs, librdmacm and per-provider packages composed into /etc/libibverbs.d";

    release = mkOption {
      type = types.enum (builtins.attrNames releases.releases);
      default = releases.default;
      example = "56.1";
      description = "The rdma-core release whose packages provide the default {option}`hardware.rdma.package`.";
    };

    package = mkOption {
      type = types.package;
      default = (rdmaPackagesFor cfg.release).rdma-core;
      defaultText = literalExpression "(rdma-nix packages of hardware.rdma.release).rdma-core";
      example = literalExpression ''
        (pkgs.rdmaPackages."65.0".rdma-core).overrideAttrs (o: {
          patches = (o.patches or [ ]) ++ [ ./libibverbs-fix.patch ];
        })
      '';
      description = ''
        The rdma-core package without providers (rdma-nix's `rdma-core`, or an
        override of it). Providers are built from this package's release, and must
        match its provider ABI (PABI).
      '';
    };

    providers = mkOption {
      type = types.either (types.enum [ "all" ]) (types.listOf types.str);
      default = "all";
      example = [
        "mlx5"
        "rxe"
        "siw"
      ];
      description = ''
        The providers (hardware families) to install: `"all"`, or a list of provider
        names of the core's release (`mlx5`, `efa`, `irdma`, `bnxt_re`, `rxe`, `siw`, …).
      '';
    };

    providerOverrides = mkOption {
      type = types.attrsOf types.package;
      default = { };
      example = literalExpression ''
        {
          mlx5 = (pkgs.rdmaPackages."65.0".rdma-provider-mlx5).overrideAttrs (o: {
            patches = o.patches ++ [ ./vendor-mlx5-fix.patch ];
          });
        }
      '';
      description = ''
        Providers that replace the bundled one of the same driver name: a vendor's
        build or a patched rdma-nix provider. Each must have the core's PABI.
      '';
    };

    configDir = mkOption {
      type = types.package;
      readOnly = true;
      default = configDir;
      defaultText = literalExpression "the composed config dir";
      description = "The composed verbs config dir (its `etc/libibverbs.d` is installed as /etc/libibverbs.d).";
    };

    perftest.enable = mkEnableOption "perftest (ib_send_bw, ib_write_bw, ib_read_lat, …) built against the configured core";

    softRoce = softDeviceOptions "softRoce" "Soft-RoCE (rdma_rxe)";
    siw = softDeviceOptions "siw" "Soft-iWARP (siw)";

    kernelModules.outOfTree = mkOption {
      type = types.listOf (
        types.enum [
          "rxe"
          "siw"
        ]
      );
      default = rdmaNixLib.driversMissingFrom config.boot.kernelPackages.kernel drivers;
      defaultText = literalExpression "the enabled soft drivers that boot.kernelPackages.kernel lacks";
      example = [ "siw" ];
      description = ''
        Soft-RDMA drivers to take from rdma-nix's module builds for
        {option}`boot.kernelPackages` instead of the kernel's own (installed under
        `updates/`, which wins over the kernel's copy). By default, the enabled ones the
        kernel doesn't ship: kernels declare theirs in `passthru.rdmaInTree`
        (rdma-nix's Debian kernels: rxe only); nixpkgs' kernels build both.
      '';
    };

    kernelModules.restore = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [
        "efa"
        "rnbd"
      ];
      description = ''
        RDMA drivers of the kernel's source to build out of tree for
        {option}`boot.kernelPackages` and install (under `updates/`), by their
        directory's name (`efa`, `erdma`, `vmw_pvrdma`, `rtrs`, `rnbd`, `siw`, any
        other of `drivers/infiniband/{hw,sw,ulp}` or `drivers/block/rnbd`). What to
        build (modules, config symbols, the drivers each needs first: rnbd on rtrs)
        comes from the source's Kconfig and Kbuild files, planned by
        `rdma-nix generate` for each kernel series it has a source of. The drivers
        they need are installed too. An assertion names the kernel and the driver when
        it can't be built there. Generalizes {option}`hardware.rdma.kernelModules.outOfTree`
        (rxe and siw only) to every driver.
      '';
    };

    memlockLimit = mkOption {
      type = types.either types.ints.unsigned (types.enum [ "unlimited" ]);
      default = "unlimited";
      example = 1048576;
      description = ''
        Locked-memory limit (KiB, or `"unlimited"`) for members of the `rdma` group
        (a PAM limit, so it reaches their logins) and for the services listed in
        {option}`hardware.rdma.memlockServices`: RDMA applications pin their buffers.
      '';
    };

    memlockServices = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [
        "slurmd"
        "munged"
      ];
      description = ''
        systemd services (by their name in {option}`systemd.services`, with or without
        `.service`) that get {option}`hardware.rdma.memlockLimit` as `LimitMEMLOCK`:
        Slurm daemons, MPI launchers, daemons using UCX or NCCL. PAM limits reach
        logins only, and services otherwise keep systemd's default (64 KiB before
        systemd 253, 8 MiB since). No other service gets more than systemd's default.
      '';
    };

    memlockForAllServices = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Whether to make {option}`hardware.rdma.memlockLimit` systemd's default for
        every service (`DefaultLimitMEMLOCK`). Every service inherits it, `sshd`,
        `login` and `user@.service` included, so every user and every daemon may then
        pin that much memory and the `rdma` group means nothing. Prefer
        {option}`hardware.rdma.memlockServices`.
      '';
    };

    replaceNixpkgsRdmaCore = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Whether every package of the system that links nixpkgs' `rdma-core` (ucx,
        openmpi, libfabric, …) should load {option}`hardware.rdma.package` and the
        composed providers (with {option}`hardware.rdma.providerOverrides`) without
        being rebuilt: `system.replaceDependencies` rewrites each reference to
        `pkgs.rdma-core` in the system's closure into one to a runtime view of this core
        and these providers, under the same name. nixpkgs' limits apply: only the
        system's closure is rewritten (not nix-shell, user profiles or the initrd),
        evaluation builds the closure's reference graph first (import from derivation),
        and each package that links rdma-core is copied on every change. The core must
        not be older than nixpkgs' (its programs may need newer symbol versions). To
        rebuild them against rdma-nix instead, apply the flake's `overlays.rdma-core`.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Whether to open UDP port 4791 (RoCEv2, which Soft-RoCE devices speak) in the
        firewall when {option}`hardware.rdma.softRoce.enable` is set. iWARP (siw)
        connects over the applications' own TCP ports, which they open themselves.
      '';
    };

    ndd.enable = mkEnableOption "rdma-ndd, which keeps InfiniBand node descriptions set to the host name";

    checks.gate = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Whether the system's build (and so `nixos-rebuild`, before it switches) runs
        the RDMA hot-path NixOS test on this configuration: two VMs with
        {option}`boot.kernelPackages`, this module's settings (core, providers,
        overrides, {option}`hardware.rdma.kernelModules`) and a soft device of each
        enabled soft driver (rxe when none is), running the verbs ping-pongs, rping,
        perftest, rdma-core's suite and loading every restored driver. A kernel upgrade
        whose RDMA drivers don't build, don't load or fail their data path then fails
        the build instead of the next boot. It goes into {option}`system.checks`, so it
        runs once per new kernel or RDMA configuration and is cached after; each run
        boots two VMs (minutes with KVM, much longer without: the build machine needs
        the `kvm` system feature to be practical).
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions =
      map (d: {
        assertion = false;
        message = "hardware.rdma.kernelModules.restore: can't restore ${d} for kernel ${kp.kernel.modDirVersion or kp.kernel.version}: ${whyNot d}";
      }) restoreMissing
      ++ [
        {
          assertion = cfg.package ? release && cfg.package ? pabi;
          message = "hardware.rdma.package: ${cfg.package.name or "?"} is not an rdma-nix core (no passthru.release/pabi); use rdma-nix's rdma-core or an override of it.";
        }
        {
          assertion = !monolithicCore;
          message = "hardware.rdma.package: ${cfg.package.name or "?"} is rdma-core-full, which has every provider compiled in and reads its own config dir, so hardware.rdma.providers and providerOverrides could not apply. Use the split core, rdmaPackages.\"${cfg.package.version or "<release>"}\".rdma-core (the default of hardware.rdma.package), and choose providers with hardware.rdma.providers; rdma-core-full is for programs outside NixOS systems (nix build, nix-shell).";
        }
      ]
      ++ lib.optional cfg.replaceNixpkgsRdmaCore {
        assertion = lib.versionAtLeast (cfg.package.version or "0") (pkgs.rdma-core.version or "0");
        message = "hardware.rdma.replaceNixpkgsRdmaCore: the core is rdma-core ${cfg.package.version or "?"}, older than nixpkgs' rdma-core ${pkgs.rdma-core.version or "?"}, whose consumers may need symbols it lacks. Choose a newer hardware.rdma.release, or rebuild them against rdma-nix with the flake's overlays.rdma-core.";
      }
      ++ map (message: {
        assertion = false;
        inherit message;
      }) providerErrors
      ++ map (dev: {
        assertion = rdmaNixLib.interfaceConfiguredBy config dev.netdev != [ ];
        message = "hardware.rdma: ${dev.type} device ${dev.name} is on interface '${dev.netdev}', which nothing configures: declare it in networking.interfaces, leave it to dhcpcd (networking.useDHCP, not denied by networking.dhcpcd), match it in a systemd.network.networks entry (with systemd.network.enable), or leave it managed by NetworkManager.";
      }) devices;

    environment.systemPackages = [ cfg.package ] ++ lib.optional cfg.perftest.enable (pkgs.callPackage ../pkgs/perftest/package.nix { rdma-core = cfg.package; });
    environment.etc."libibverbs.d".source = "${configDir}/etc/libibverbs.d";

    services.udev.packages = [ integration ];
    systemd.packages = [ integration ];

    boot.extraModulePackages =
      rdmaNixLib.modulePackages config.boot.kernelPackages cfg.kernelModules.outOfTree
      ++ builtins.filter (p: !(builtins.elem "siw" cfg.kernelModules.outOfTree && (p.driver or null) == "siw")) restored;
    boot.kernelModules = rdmaNixLib.moduleNames drivers;
    boot.extraModprobeConfig = rdmaNixLib.modprobeConfig drivers;

    system.replaceDependencies.replacements = lib.optional cfg.replaceNixpkgsRdmaCore {
      oldDependency = pkgs.rdma-core;
      newDependency = runtimeView;
    };

    networking.firewall.allowedUDPPorts = lib.optional (cfg.openFirewall && cfg.softRoce.enable) 4791;

    system.checks = lib.optionals cfg.checks.gate gateTests;

    # systemd's limit for every service, only when asked for by name.
    systemd.settings.Manager = lib.mkIf cfg.memlockForAllServices {
      DefaultLimitMEMLOCK = rdmaNixLib.systemdMemlock cfg.memlockLimit;
    };

    users.groups.rdma = { };
    security.pam.loginLimits = [
      {
        domain = "@rdma";
        type = "-";
        item = "memlock";
        value = cfg.memlockLimit;
      }
    ];

    systemd.services = lib.mkMerge [
      memlockUnits
      linkUnits
      (lib.optionalAttrs cfg.ndd.enable { rdma-ndd.wantedBy = [ "multi-user.target" ]; })
    ];
  };
}
