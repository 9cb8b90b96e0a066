# Plain Nix behind modules/rdma.nix: everything the NixOS module computes that is not
# NixOS-specific, so that the offline VM checks (checks/offline) run the same code:
# the provider set and config dir, which kernel modules to ship and load, the
# modprobe soft dependencies, the `rdma link` unit scripts, and rdma-core's udev
# rules and systemd units with their paths fixed for Nix.
{ lib }:

let
  rdmaLib = import ../pkgs/rdma-core/lib.nix { inherit lib; };

  # The soft-RDMA drivers rdma-nix builds (pkgs/kernel-modules/soft-rdma.nix):
  # `rdma link add … type <type>` names, kernel module names, and what each needs
  # loaded first (the CRC it computes through the crypto API, which the kernel would
  # otherwise request via modprobe aliases at first use).
  softDrivers = {
    rxe = {
      module = "rdma_rxe";
      softdeps = [ "crc32_generic" ];
    };
    siw = {
      module = "siw";
      softdeps = [ "crc32c_generic" ];
    };
  };

  checkDriver =
    d: if softDrivers ? ${d} then d else throw "rdma-nix: unknown soft-RDMA driver '${d}' (rxe or siw)";
in
rdmaLib
// rec {
  inherit softDrivers;

  # The providers a user asks for, by name or "all", from a core's release; an
  # unknown name is reported by `providerErrors`, not here.
  selectProviders =
    { providers, wanted }:
    if wanted == "all" then
      builtins.attrValues providers
    else
      map (n: providers.${n}) (builtins.filter (n: providers ? ${n}) wanted);

  # Why a provider selection can't be composed, as messages (empty: fine). The NixOS
  # module turns these into assertions; mkVerbsConfigDir throws the same conditions.
  providerErrors =
    {
      core,
      providers,
      wanted,
      overrides ? { },
    }:
    let
      known = builtins.attrNames providers;
      unknown = if wanted == "all" then [ ] else builtins.filter (n: !(providers ? ${n})) wanted;
      badOverride = lib.filterAttrs (_: p: (p.pabi or null) != core.pabi) overrides;
    in
    map (
      n:
      "hardware.rdma.providers: '${n}' is not a provider of rdma-core ${core.version}; known: ${lib.concatStringsSep ", " known}"
    ) unknown
    ++ lib.mapAttrsToList (
      n: p:
      "hardware.rdma.providerOverrides.${n}: ${p.name or "?"} has PABI ${
        toString (p.pabi or "none")
      }, the core ${core.name} has PABI ${toString core.pabi}; libibverbs would refuse to load it. Build the override from the core's release (${core.version})."
    ) badOverride;

  # Kernel modules the kernel doesn't ship: `kernel.rdmaInTree` lists the soft drivers
  # a kernel has (rdma-nix's Debian kernels carry it, from stack.toml, checked against
  # the kernel's config by the tests). nixpkgs' kernels are configured with
  # autoModules, which builds every tristate driver (rxe and siw included) as a module.
  driversMissingFrom =
    kernel: drivers:
    let
      inTree = kernel.rdmaInTree or (builtins.attrNames softDrivers);
    in
    builtins.filter (d: !(builtins.elem (checkDriver d) inTree)) drivers;

  # Our module package for each driver, from a kernel module set (nixpkgs'
  # `linuxPackagesFor kernel`, or the offline platform's, which carries kABI reuse as
  # `rdma-<driver>`).
  modulePackages =
    kernelPackages: drivers:
    map (
      d:
      kernelPackages."rdma-${checkDriver d}"
        or (kernelPackages.callPackage ../pkgs/kernel-modules/soft-rdma.nix { driver = d; })
    ) drivers;

  # A module package's `.ko` for its kernel: updates/ for a build, weak-updates/ for
  # a build reused from another kernel of the same kABI.
  moduleFile =
    kernel: pkg:
    "${pkg}/lib/modules/${kernel.modDirVersion}/${
      if pkg ? reusedFrom then "weak-updates" else "updates"
    }/${pkg.moduleName}.ko";

  # Every `.ko` of a module package (a restored driver may build several: rtrs-core,
  # rtrs-client, rtrs-server), by module name.
  moduleFiles =
    kernel: pkg:
    builtins.listToAttrs (
      map (m: {
        name = m;
        value = "${pkg}/lib/modules/${kernel.modDirVersion}/${
          if pkg ? reusedFrom then "weak-updates" else "updates"
        }/${m}.ko";
      }) (pkg.moduleNames or [ pkg.moduleName ])
    );

  # Every `.ko` of several module packages, by module name.
  moduleFilesOf = kernel: pkgs: builtins.foldl' (a: p: a // moduleFiles kernel p) { } pkgs;

  # Restored drivers by name with those they need, transitively (rnbd: rtrs);
  # `needsOf` gives a driver's needs.
  restoreClosure =
    needsOf: ds:
    let
      more = builtins.filter (n: !(builtins.elem n ds)) (builtins.concatMap needsOf ds);
    in
    if more == [ ] then ds else restoreClosure needsOf (ds ++ more);

  # Module names to load for the drivers, and `{ module = [ pre… ]; }` soft deps.
  moduleNames = drivers: map (d: softDrivers.${checkDriver d}.module) drivers;
  softDepsOf =
    drivers:
    builtins.listToAttrs (
      map (
        d:
        let
          s = softDrivers.${checkDriver d};
        in
        lib.nameValuePair s.module s.softdeps
      ) drivers
    );
  # The same as modprobe.d lines.
  modprobeConfig =
    drivers:
    lib.concatStrings (lib.mapAttrsToList (m: pre: "softdep ${m} pre: ${lib.concatStringsSep " " pre}\n") (softDepsOf drivers));

  # The soft devices for interfaces: `[ { name = "rxe_eth1"; type = "rxe"; netdev = "eth1"; } … ]`.
  softDevices =
    type: interfaces:
    map (i: {
      name = "${checkDriver type}_${i}";
      inherit type;
      netdev = i;
    }) interfaces;

  # Shell that adds a soft device, idempotently (an existing one is left alone), and
  # removes it. `rdma` is the iproute2 `rdma` tool by path.
  linkUpScript =
    { rdma, dev }:
    ''
      if ${rdma} dev show ${lib.escapeShellArg dev.name} >/dev/null 2>&1; then
        echo "rdma-nix: ${dev.name} already exists"
      else
        ${rdma} link add ${lib.escapeShellArg dev.name} type ${dev.type} netdev ${lib.escapeShellArg dev.netdev}
        echo "rdma-nix: added ${dev.name} (${dev.type} on ${dev.netdev})"
      fi
    '';
  linkDownScript =
    { rdma, dev }:
    ''
      if ${rdma} dev show ${lib.escapeShellArg dev.name} >/dev/null 2>&1; then
        ${rdma} link delete ${lib.escapeShellArg dev.name}
        echo "rdma-nix: removed ${dev.name}"
      fi
    '';

  # rdma-core's udev rules and systemd units, made to work outside an FHS system:
  # `rdma-load-modules@.service` runs systemd's systemd-modules-load (rdma-core's
  # build points it at its own prefix, where there is none); rules call rdma_rename
  # and systemctl by absolute path (udev on NixOS has no /lib/udev or /usr/bin).
  # rdma-core's configure writes systemctl's path into the rules: /usr/bin/systemctl
  # where it found one, its fallback /bin/systemctl where it found none (a nixpkgs
  # build: nixpkgs' udev is libraries only); both become systemd's store path.
  # Without `withNdd`, the rule that starts rdma-ndd for every device is left out.
  # Fails the build when a reference it can't resolve, or any FHS path (/usr, /bin,
  # /sbin, /lib outside the store), is left in a rule or unit.
  systemIntegration =
    {
      runCommand,
      core,
      systemd,
      withNdd ? true,
    }:
    runCommand "rdma-core-system-integration-${core.version}"
      {
        passthru = { inherit core; };
        meta.description = "rdma-core's udev rules and systemd units with Nix paths";
      }
      ''
        mkdir -p $out/lib/udev/rules.d $out/lib/systemd/system
        cp ${core}/lib/udev/rules.d/*.rules $out/lib/udev/rules.d/
        cp ${core}/lib/systemd/system/* $out/lib/systemd/system/
        chmod -R u+w $out
        ${lib.optionalString (!withNdd) "rm $out/lib/udev/rules.d/60-rdma-ndd.rules"}
        sed -i \
          -e 's|PROGRAM="rdma_rename |PROGRAM="${core}/lib/udev/rdma_rename |' \
          -e 's|\(/usr\)\{0,1\}/bin/systemctl|${systemd}/bin/systemctl|g' \
          $out/lib/udev/rules.d/*.rules
        sed -i 's|${core}/lib/systemd/systemd-modules-load|${systemd}/lib/systemd/systemd-modules-load|' \
          $out/lib/systemd/system/rdma-load-modules@.service
        # srp_daemon.service starts a script that calls systemctl by rdma-core's path.
        starter=libexec/srp_daemon/start_on_all_ports
        if [ -e ${core}/$starter ]; then
          mkdir -p $out/libexec/srp_daemon
          sed 's|\(/usr\)\{0,1\}/bin/systemctl|${systemd}/bin/systemctl|g' ${core}/$starter > $out/$starter
          chmod +x $out/$starter
          sed -i "s|${core}/$starter|$out/$starter|" $out/lib/systemd/system/srp_daemon.service
        fi
        # No FHS path is left (store paths and the given systemd aside, and a script's
        # interpreter, which the core's fixup patches): NixOS has none.
        if sed -s -E -e '1{/^#!/d}' -e 's|${systemd}/[^ "]*||g' -e 's|/nix/store/[^ "]*||g' \
             $out/lib/udev/rules.d/*.rules $out/lib/systemd/system/* $(find $out/libexec -type f 2>/dev/null) \
             | grep -nE '(^|[^A-Za-z0-9_.-])/(usr|bin|sbin|lib|lib64)/'; then
          echo "rdma-nix: FHS paths (above) left in rdma-core's units or rules" >&2
          exit 1
        fi
        # Every program a rule or unit runs exists.
        for exe in $(grep -ohE '(PROGRAM=+"|ExecStart=)[^ "]+' $out/lib/udev/rules.d/*.rules $out/lib/systemd/system/* \
                     | sed -E 's/^(PROGRAM=+"|ExecStart=)//'); do
          case $exe in
            /*) test -x "$exe" || { echo "rdma-nix: $exe (referenced by rdma-core's units or rules) does not exist" >&2; exit 1; } ;;
            *) echo "rdma-nix: relative program '$exe' left in rdma-core's units or rules" >&2; exit 1 ;;
          esac
        done
      '';

  # Whether a list of names or shell globs (or a string of them, space-separated, as
  # systemd.network's [Match] Name= and dhcpcd take them) matches an interface name.
  # systemd's leading `!` inverts the whole list.
  matchesInterfaceName =
    names: netdev:
    let
      list =
        if names == null then [ ]
        else if builtins.isList names then names
        else builtins.filter (x: builtins.isString x && x != "") (builtins.split " +" names);
      inverted = list != [ ] && lib.hasPrefix "!" (builtins.head list);
      globs = if inverted then [ (lib.removePrefix "!" (builtins.head list)) ] ++ builtins.tail list else list;
      # Shell glob to regex: `*` and `?`; other regex characters escaped.
      toRegex = g:
        builtins.replaceStrings [ "." "+" "(" ")" "[" "]" "{" "}" "^" "$" "|" "\\" "*" "?" ]
          [ "\\." "\\+" "\\(" "\\)" "\\[" "\\]" "\\{" "\\}" "\\^" "\\$" "\\|" "\\\\" ".*" "." ] g;
      any = builtins.any (g: builtins.match (toRegex g) netdev != null) globs;
    in
    if inverted then !any else any;

  # [Match] keys that only wireless links have: such a network never takes a wired one.
  wirelessMatchKeys = [ "WLANInterfaceType" "SSID" "BSSID" ];

  # What brings a network interface up on a NixOS system, as a list of reasons (empty:
  # nothing does). `config` holds NixOS's `networking` and `systemd.network`.
  #  - networking.interfaces.<name>;
  #  - scripted networking's dhcpcd, which takes every interface with
  #    networking.useDHCP (the default) but those it denies (its own list,
  #    networking.dhcpcd.denyInterfaces, bridge, bond and vswitch members, sits), or
  #    those allowInterfaces lists;
  #  - systemd-networkd: a network matching it by Name=, or by keys evaluation can't
  #    decide (Type=, Kind=, MACAddress=, Driver=, …: the generated
  #    99-ethernet-default-dhcp matches Type=ether); not by wireless-only keys;
  #  - NetworkManager, unless it is listed unmanaged (by name or interface-name:).
  interfaceConfiguredBy =
    config: netdev:
    let
      net = config.networking;
      dhcpcdDenied = [ "lo" "peth*" "vif*" "tap*" "tun*" "virbr*" "vnet*" "vboxnet*" "sit*" ] ++ net.dhcpcd.denyInterfaces;
      # dhcpcd also leaves bridge, bond and vswitch members and sit tunnels alone.
      members = lib.concatMap (x: x.interfaces) (
        builtins.attrValues net.bridges ++ builtins.attrValues net.bonds ++ builtins.attrValues net.vswitches
      );
      dhcpcd =
        !net.useNetworkd && net.dhcpcd.enable && net.useDHCP
        && !matchesInterfaceName dhcpcdDenied netdev
        && !(builtins.elem netdev members) && !(net.sits ? ${netdev})
        && (net.dhcpcd.allowInterfaces == null || matchesInterfaceName net.dhcpcd.allowInterfaces netdev);
      networkdMatches = n:
        let
          m = n.matchConfig or { };
        in
        if m ? Name then matchesInterfaceName m.Name netdev
        else !(builtins.any (k: m ? ${k}) wirelessMatchKeys);
      networkd = builtins.filter (n: networkdMatches config.systemd.network.networks.${n})
        (builtins.attrNames config.systemd.network.networks);
      nmUnmanaged = builtins.any (u: matchesInterfaceName [ (lib.removePrefix "interface-name:" u) ] netdev)
        (builtins.filter (u: builtins.match ".*:.*" u == null || lib.hasPrefix "interface-name:" u) net.networkmanager.unmanaged);
    in
    lib.optional (net.interfaces ? ${netdev}) "networking.interfaces.${netdev}"
    ++ lib.optional dhcpcd "dhcpcd (networking.useDHCP)"
    ++ lib.optionals config.systemd.network.enable (map (n: "systemd.network.networks.${n}") networkd)
    ++ lib.optional (net.networkmanager.enable && !nmUnmanaged) "NetworkManager";

  # hardware.rdma.memlockLimit (KiB or "unlimited") as systemd's DefaultLimitMEMLOCK.
  systemdMemlock = limit: if limit == "unlimited" then "infinity" else "${toString limit}K";
}
