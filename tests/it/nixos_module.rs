//! The NixOS module (modules/rdma.nix) as far as it can be exercised without nixpkgs:
//! its options against docs/nixos-module.md, and the plain Nix it is built on (modules/lib.nix)
//! evaluated and built on the offline platform.

use std::path::Path;

use crate::common;
use crate::common::{nix_build_offline, require, run, stdout_ok};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Read-write mode: a `drvPath` in the answer is then written to the store (in the
/// default read-only mode it is computed but not written, and a later nix-build of it
/// works only where an earlier run left the .drv).
fn eval_json(expr: &str) -> serde_json::Value {
    let out = stdout_ok(
        std::process::Command::new("nix-instantiate")
            .args([
                "--eval",
                "--strict",
                "--json",
                "--read-write-mode",
                "-E",
                expr,
            ])
            .current_dir(root()),
    );
    serde_json::from_str(&out).unwrap()
}

fn eval_err(expr: &str) -> String {
    eval_err_or_ok(expr).unwrap_or_else(|| panic!("{expr} evaluated"))
}

/// The evaluation's error, or None when it succeeds.
fn eval_err_or_ok(expr: &str) -> Option<String> {
    let out = run(std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "-E", expr])
        .current_dir(root()));
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

const OFFLINE: &str = "let o = import ./pkgs/offline { }; l = o.rdmaNixLib; in";

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn the_module_doc_lists_every_option_with_its_type() {
    require("nix-instantiate");
    let options = eval_json("import ./tests/fixtures/module-options.nix");
    let doc = std::fs::read_to_string(root().join("docs/nixos-module.md")).unwrap();
    let section = doc
        .split("<!-- options -->")
        .nth(1)
        .and_then(|s| s.split("<!-- /options -->").next())
        .expect("docs/nixos-module.md has an <!-- options --> … <!-- /options --> section");
    let listed: Vec<&str> = section.lines().filter(|l| l.starts_with("- `")).collect();
    let want: Vec<String> = options
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "- `{}` ({})",
                o["name"].as_str().unwrap(),
                o["type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        listed.len(),
        want.len(),
        "docs/nixos-module.md lists {listed:#?}, the module has {want:#?}"
    );
    for w in &want {
        assert!(
            listed.iter().any(|l| l.starts_with(w.as_str())),
            "docs/nixos-module.md's option list lacks {w}"
        );
    }
    for o in options.as_array().unwrap() {
        assert_eq!(o["documented"], true, "{} has no description", o["name"]);
        if o["name"] != "hardware.rdma.configDir" {
            assert_eq!(o["hasExample"], true, "{} has no example", o["name"]);
        }
    }
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn provider_selection_errors_become_clear_messages() {
    require("nix-instantiate");
    let errs = eval_json(&format!(
        "{OFFLINE} l.providerErrors {{ core = o.rdma-core; providers = o.rdmaProviders; wanted = [ \"rxe\" \"mlx9\" ];
           overrides = {{ rxe = o.rdmaPackages.\"56.1\".rdma-provider-rxe; }}; }}"
    ));
    let errs: Vec<&str> = errs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with(
        "hardware.rdma.providers: 'mlx9' is not a provider of rdma-core 65.0; known: "
    ));
    assert!(errs[0].contains("mlx5") && errs[0].contains("siw"));
    assert!(errs[1].starts_with("hardware.rdma.providerOverrides.rxe: rdma-provider-rxe-56.1 has PABI 34, the core rdma-core-65.0 has PABI 65"));
    // Nothing to report for a valid selection.
    let ok = eval_json(&format!(
        "{OFFLINE} l.providerErrors {{ core = o.rdma-core; providers = o.rdmaProviders; wanted = \"all\"; }}"
    ));
    assert_eq!(ok, serde_json::json!([]));
    // The config dir refuses what the assertions report.
    let e = eval_err(&format!(
        "{OFFLINE} (l.mkVerbsConfigDir {{ inherit (o) runCommand; core = o.rdma-core;
           providers = [ o.rdmaPackages.\"56.1\".rdma-provider-rxe ]; }}).drvPath"
    ));
    assert!(
        e.contains("does not match the core rdma-core-65.0 (PABI 65)"),
        "{e}"
    );
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn kernel_modules_soft_deps_and_link_scripts() {
    require("nix-instantiate");
    let v = eval_json(&format!(
        "{OFFLINE} {{
           debian = l.driversMissingFrom o.kernels.${{o.roles.kabiBase}} [ \"rxe\" \"siw\" ];
           # nixpkgs' kernels carry no rdmaInTree: built with autoModules, they ship both.
           nixpkgsLike = l.driversMissingFrom {{ }} [ \"rxe\" \"siw\" ];
           modules = map (p: p.name) (l.modulePackages o.kernelPackages.${{reused}} [ \"siw\" ]);
           reusedFile = l.moduleFile o.kernels.${{reused}} o.kernelPackages.${{reused}}.rdma-siw;
           names = l.moduleNames [ \"rxe\" \"siw\" ];
           modprobe = l.modprobeConfig [ \"rxe\" \"siw\" ];
           devices = l.softDevices \"siw\" [ \"eth1\" ];
           up = l.linkUpScript {{ rdma = \"/bin/rdma\"; dev = builtins.head (l.softDevices \"rxe\" [ \"eth0\" ]); }};
         }}"
    ).replace("${reused}", &format!("\"{}\"", common::roles().kabi_reused)));
    assert_eq!(v["debian"], serde_json::json!(["siw"]));
    assert_eq!(v["nixpkgsLike"], serde_json::json!([]));
    assert_eq!(v["modules"].as_array().unwrap().len(), 1);
    assert!(v["reusedFile"].as_str().unwrap().ends_with(&format!(
        "/lib/modules/{}/weak-updates/siw.ko",
        common::release_of(&common::roles().kabi_reused)
    )));
    assert_eq!(v["names"], serde_json::json!(["rdma_rxe", "siw"]));
    assert_eq!(
        v["modprobe"],
        "softdep rdma_rxe pre: crc32_generic\nsoftdep siw pre: crc32c_generic\n"
    );
    assert_eq!(
        v["devices"],
        serde_json::json!([{"name": "siw_eth1", "type": "siw", "netdev": "eth1"}])
    );
    let up = v["up"].as_str().unwrap();
    assert!(up.contains("if /bin/rdma dev show 'rxe_eth0' >/dev/null 2>&1; then"));
    assert!(up.contains("/bin/rdma link add 'rxe_eth0' type rxe netdev 'eth0'"));
    let e = eval_err(&format!("{OFFLINE} l.softDevices \"ipoib\" [ \"eth0\" ]"));
    assert!(
        e.contains("unknown soft-RDMA driver 'ipoib' (rxe or siw)"),
        "{e}"
    );
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn rdma_cores_udev_rules_and_units_get_absolute_paths() {
    require("nix-build");
    let out = stdout_ok(
        nix_build_offline()
            .args(["-E", &format!("{OFFLINE} o.rdmaSystemIntegration")])
            .current_dir(root()),
    );
    let out = Path::new(&out);
    let unit =
        std::fs::read_to_string(out.join("lib/systemd/system/rdma-load-modules@.service")).unwrap();
    // The offline platform's systemd is the host's (/usr); on NixOS, systemd's store path.
    assert!(
        unit.contains("ExecStart=/usr/lib/systemd/systemd-modules-load /nix/store/"),
        "{unit}"
    );
    let naming =
        std::fs::read_to_string(out.join("lib/udev/rules.d/60-rdma-persistent-naming.rules"))
            .unwrap();
    assert!(naming.contains("PROGRAM=\"/nix/store/"), "{naming}");
    assert!(naming.contains("/lib/udev/rdma_rename %k NAME_FALLBACK\""));
    for rule in std::fs::read_dir(out.join("lib/udev/rules.d")).unwrap() {
        let text = std::fs::read_to_string(rule.unwrap().path()).unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some(p) = line.split("PROGRAM").nth(1) {
                let prog = p.trim_start_matches(['=', '"']);
                assert!(prog.starts_with('/'), "relative program in {line}");
            }
        }
    }
}

/// A nixpkgs build of rdma-core finds no systemctl (nixpkgs' udev is libraries only),
/// and its configure falls back to `/bin/systemctl`. Built here the same way: the
/// configure's `find_program(SYSTEMCTL_BIN systemctl …)` finds nothing (the call is
/// replaced by its NOTFOUND result; hiding the host's systemctl in a mount namespace
/// needs user namespaces, which a chroot doesn't get), and systemd is a store path as
/// in nixpkgs. The integration must leave no FHS path in any rule or unit.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn no_fhs_path_is_left_when_rdma_cores_configure_finds_no_systemctl() {
    require("nix-build");
    let expr = format!(
        r#"{OFFLINE} let
          # coreutils as a store path, as in nixpkgs (the offline one is the root's /usr).
          coreutils = o.runCommand "coreutils-store-path" {{ }} ''
            mkdir -p $out/bin
            ln -s /usr/bin/rm $out/bin/rm
          '';
          core = o.callPackage ./pkgs/rdma-core/package.nix {{
            release = o.rdmaCoreReleases.releases.${{o.rdmaCoreReleases.default}};
            inherit coreutils;
          }};
          hidden = core.overrideAttrs (a: {{
            preConfigure = ''
              substituteInPlace CMakeLists.txt --replace-fail \
                'find_program(SYSTEMCTL_BIN systemctl HINTS "/usr/bin" "/bin")' \
                'set(SYSTEMCTL_BIN "SYSTEMCTL_BIN-NOTFOUND")'
            '';
          }});
          systemd = o.runCommand "systemd-store-path" {{ }} ''
            mkdir -p $out/bin $out/lib/systemd
            ln -s /usr/bin/systemctl $out/bin/systemctl
            ln -s /usr/lib/systemd/systemd-modules-load $out/lib/systemd/systemd-modules-load
          '';
        in {{
          core = hidden;
          integration = o.rdmaNixLib.systemIntegration {{ inherit (o) runCommand; inherit systemd; core = hidden; }};
        }}"#
    );
    let outs = stdout_ok(
        nix_build_offline()
            .args(["-E", &expr, "-A", "core", "-A", "integration"])
            .current_dir(root()),
    );
    let outs: Vec<&str> = outs.lines().collect();
    let (core, integration) = (Path::new(outs[0]), Path::new(outs[1]));
    // The configure really found none: rdma-core's fallback is in its rules.
    let srp = std::fs::read_to_string(core.join("lib/udev/rules.d/60-srp_daemon.rules")).unwrap();
    assert!(
        srp.contains("/bin/systemctl") && !srp.contains("/usr/bin/systemctl"),
        "{srp}"
    );
    let mut files = vec![core.join("sbin/srp_daemon.sh")];
    for dir in [
        "lib/udev/rules.d",
        "lib/systemd/system",
        "libexec/srp_daemon",
    ] {
        for f in std::fs::read_dir(integration.join(dir)).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    assert!(files.len() > 5, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // A script's interpreter is the core's fixup's (patchShebangs in nixpkgs).
        for line in text.lines().filter(|l| !l.starts_with("#!")) {
            let mut rest = line.to_owned();
            // Store paths are NixOS's own; anything else absolute under an FHS
            // directory is not.
            while let Some(i) = rest.find("/nix/store/") {
                let end = rest[i + 11..]
                    .find([' ', '"'])
                    .map_or(rest.len(), |e| i + 11 + e);
                rest.replace_range(i..end, "");
            }
            for fhs in ["/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/"] {
                let bad = rest.match_indices(fhs).any(|(i, _)| {
                    i == 0
                        || !rest[..i]
                            .ends_with(|c: char| c.is_ascii_alphanumeric() || "_.-".contains(c))
                });
                assert!(!bad, "{}: {fhs} left in: {line}", f.display());
            }
        }
    }
    let srp =
        std::fs::read_to_string(integration.join("lib/udev/rules.d/60-srp_daemon.rules")).unwrap();
    assert!(srp.contains("-systemd-store-path/bin/systemctl"), "{srp}");
    // srp_daemon.service starts the integration's copy of its script, which calls
    // systemd's systemctl; srp_daemon.sh removes its pid file with coreutils' rm.
    let unit =
        std::fs::read_to_string(integration.join("lib/systemd/system/srp_daemon.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={}/libexec/srp_daemon/start_on_all_ports",
            integration.display()
        )),
        "{unit}"
    );
    let starter =
        std::fs::read_to_string(integration.join("libexec/srp_daemon/start_on_all_ports")).unwrap();
    assert!(
        starter.contains("-systemd-store-path/bin/systemctl start"),
        "{starter}"
    );
    let sh = std::fs::read_to_string(core.join("sbin/srp_daemon.sh")).unwrap();
    assert!(sh.contains("-coreutils-store-path/bin/rm -f"), "{sh}");
}

/// `config` of modules/rdma.nix for `settings`, evaluated against the offline
/// packages (tests/fixtures/module-eval.nix), then `select` applied.
fn module_eval(settings: &str, select: &str) -> serde_json::Value {
    module_eval_on("{ networking.interfaces.eth0 = { }; }", settings, select)
}

/// The same, with the node's network configured by `network` (NixOS options).
fn module_eval_on(network: &str, settings: &str, select: &str) -> serde_json::Value {
    eval_json(&format!(
        "let o = import ./pkgs/offline {{ }}; c = import ./tests/fixtures/module-eval.nix {{ settings = {settings}; network = {network}; }}; in {select}"
    ))
}

/// The messages of the module's failing assertions for `settings`.
const FAILING: &str = "map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions)";

fn failing_assertions(settings: &str) -> Vec<String> {
    let v = module_eval(settings, FAILING);
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn the_module_configures_a_soft_rdma_node_with_offline_packages() {
    require("nix-build");
    let settings = r#"{ enable = true; providers = [ "rxe" "siw" ]; perftest.enable = true;
                       openFirewall = true;
                       softRoce.interfaces = [ "eth0" ]; siw.interfaces = [ "eth0" ]; }"#;
    let v = module_eval(
        settings,
        r#"{
          assertions = builtins.filter (a: !a.assertion) c.assertions;
          modules = map (p: p.name) c.boot.extraModulePackages;
          inherit (c.boot) kernelModules extraModprobeConfig;
          units = builtins.attrNames c.systemd.services;
          rxe = c.systemd.services."rdma-link-rxe_eth0";
          packages = map (p: p.name) c.environment.systemPackages;
          udev = map (p: p.name) c.services.udev.packages;
          etc = c.environment.etc."libibverbs.d".source;
          configDir = c.cfg.configDir.drvPath;
          udp = c.networking.firewall.allowedUDPPorts;
        }"#,
    );
    assert_eq!(v["assertions"], serde_json::json!([]));
    assert_eq!(v["udp"], serde_json::json!([4791]), "RoCEv2 opened");
    // Debian 6.1 ships rdma_rxe but not siw: only siw comes from our builds.
    let release = common::release_of(&common::roles().kabi_base);
    assert_eq!(
        v["modules"],
        serde_json::json!([format!("rdma-siw-module-{release}")])
    );
    assert_eq!(v["kernelModules"], serde_json::json!(["rdma_rxe", "siw"]));
    assert!(v["extraModprobeConfig"]
        .as_str()
        .unwrap()
        .contains("softdep siw pre: crc32c_generic"));
    for unit in ["rdma-link-rxe_eth0", "rdma-link-siw_eth0"] {
        assert!(
            v["units"].as_array().unwrap().iter().any(|u| u == unit),
            "{unit}"
        );
    }
    let rxe = &v["rxe"];
    assert_eq!(
        rxe["bindsTo"],
        serde_json::json!(["sys-subsystem-net-devices-eth0.device"])
    );
    assert_eq!(rxe["serviceConfig"]["Type"], "oneshot");
    assert_eq!(rxe["serviceConfig"]["RemainAfterExit"], true);
    assert!(rxe["script"]
        .as_str()
        .unwrap()
        .contains("link add 'rxe_eth0' type rxe netdev 'eth0'"));
    assert!(rxe["preStop"]
        .as_str()
        .unwrap()
        .contains("link delete 'rxe_eth0'"));
    assert_eq!(
        v["packages"],
        serde_json::json!(["rdma-core-65.0", "perftest-25.01.0+0.80"])
    );
    assert_eq!(
        v["udev"],
        serde_json::json!(["rdma-core-system-integration-65.0"])
    );
    assert!(v["etc"]
        .as_str()
        .unwrap()
        .ends_with("-verbs-config-dir-65.0/etc/libibverbs.d"));

    // The config dir it installs: exactly the chosen providers, by absolute path.
    let dir = stdout_ok(
        nix_build_offline()
            .arg(v["configDir"].as_str().unwrap())
            .current_dir(root()),
    );
    let mut names: Vec<String> = std::fs::read_dir(Path::new(&dir).join("etc/libibverbs.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["rxe.driver", "siw.driver"]);
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn the_module_asserts_on_unknown_providers_foreign_pabi_and_unconfigured_interfaces() {
    require("nix-instantiate");
    // Static addresses only (no dhcpcd): eth9 is brought up by nothing.
    let v = module_eval_on(
        "{ networking.useDHCP = false; networking.interfaces.eth0 = { }; }",
        r#"{ enable = true; providers = [ "rxe" "mlx9" ];
             providerOverrides.rxe = o.rdmaPackages."56.1".rdma-provider-rxe;
             softRoce.interfaces = [ "eth9" ]; }"#,
        FAILING,
    );
    let msgs: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(
        msgs[0].starts_with("hardware.rdma.providers: 'mlx9' is not a provider of rdma-core 65.0")
    );
    assert!(msgs[1]
        .starts_with("hardware.rdma.providerOverrides.rxe: rdma-provider-rxe-56.1 has PABI 34"));
    assert_eq!(
        msgs[2],
        "hardware.rdma: rxe device rxe_eth9 is on interface 'eth9', which nothing configures: declare it in networking.interfaces, leave it to dhcpcd (networking.useDHCP, not denied by networking.dhcpcd), match it in a systemd.network.networks entry (with systemd.network.enable), or leave it managed by NetworkManager."
    );
    // Disabled, it configures nothing.
    let off = module_eval("{ }", "c");
    assert_eq!(off["cfg"]["enable"], false);
    assert!(off.as_object().unwrap().keys().all(|k| k == "cfg"), "{off}");
}

/// A soft device's interface may be brought up every way NixOS has: declared, taken
/// by dhcpcd (the default: `useDHCP` on every interface), matched by a networkd network
/// (by name or glob, or by keys only the running system decides, like the generated
/// `Type = "ether"` one), or managed by NetworkManager. What nothing brings up is named.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn interfaces_are_accepted_however_nixos_brings_them_up() {
    require("nix-instantiate");
    let settings = r#"{ enable = true; providers = [ "rxe" "siw" ];
                        softRoce.interfaces = [ "eth1" ]; siw.interfaces = [ "enp0s4" ]; }"#;
    let static_only = "networking.useDHCP = false;";
    let networkd = "networking.useNetworkd = true; systemd.network.enable = true;";
    let cases = [
        // NixOS's defaults: scripted networking, dhcpcd on every interface.
        ("", 0),
        ("networking.dhcpcd.denyInterfaces = [ \"eth*\" ];", 1),
        ("networking.dhcpcd.allowInterfaces = [ \"enp0s4\" ];", 1),
        // dhcpcd leaves a bridge's members to the bridge.
        ("networking.bridges.br0.interfaces = [ \"eth1\" ];", 1),
        (static_only, 2),
        ("networking.useDHCP = false; networking.interfaces.eth1 = { };", 1),
        // networkd, by name or glob, `!` inverting.
        (&*format!("{networkd} systemd.network.networks.\"10-rdma\".matchConfig.Name = \"eth1 enp0s*\";"), 0),
        (&*format!("{networkd} systemd.network.networks.a.matchConfig.Name = [ \"eth1\" ]; systemd.network.networks.b.matchConfig.Name = \"enp0s?\";"), 0),
        (&*format!("{networkd} systemd.network.networks.x.matchConfig.Name = \"!eth1\";"), 1),
        (&*format!("{networkd} systemd.network.networks.x.matchConfig.Name = \"eth10\";"), 2),
        // The generated default network matches by type; a wireless one takes no wired link.
        (&*format!("{networkd} systemd.network.networks.\"99-ethernet-default-dhcp\".matchConfig = {{ Type = \"ether\"; Kind = \"!*\"; }};"), 0),
        (&*format!("{networkd} systemd.network.networks.\"99-wireless-client-dhcp\".matchConfig.WLANInterfaceType = \"station\";"), 2),
        // Networks networkd doesn't run configure nothing.
        (&*format!("{static_only} systemd.network.networks.x.matchConfig.Name = \"*\";"), 2),
        // NetworkManager, minus what it is told to leave alone.
        ("networking.useDHCP = false; networking.networkmanager.enable = true;", 0),
        ("networking.useDHCP = false; networking.networkmanager.enable = true; networking.networkmanager.unmanaged = [ \"interface-name:eth*\" \"mac:00:11:22:33:44:55\" ];", 1),
    ];
    for (network, unconfigured) in cases {
        let v = module_eval_on(&format!("{{ {network} }}"), settings, FAILING);
        let msgs = v.as_array().unwrap();
        assert_eq!(msgs.len(), unconfigured, "{network}: {msgs:#?}");
        for m in msgs {
            assert!(
                m.as_str().unwrap().contains("which nothing configures"),
                "{m}"
            );
        }
    }
}

/// Locked memory: the `rdma` group's logins get the limit (PAM), the services listed
/// by name get it as `LimitMEMLOCK`, and systemd's default for every service only when
/// asked for by name. `unlimited` is PAM's `unlimited` and systemd's `infinity`; a
/// number is KiB for both (`K`, 1024 bytes, for systemd).
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn locked_memory_goes_to_the_rdma_group_and_the_services_named() {
    require("nix-instantiate");
    let get = |settings: &str| {
        module_eval(
            settings,
            r#"{ manager = c.systemd.settings.Manager or { };
                 limits = c.security.pam.loginLimits;
                 units = builtins.mapAttrs (_: u: u.serviceConfig.LimitMEMLOCK or null)
                   c.systemd.services; }"#,
        )
    };
    let v = get(r#"{ enable = true; providers = [ "rxe" ]; }"#);
    assert_eq!(v["manager"], serde_json::json!({}), "{v}");
    assert_eq!(
        v["limits"],
        serde_json::json!([{"domain": "@rdma", "type": "-", "item": "memlock", "value": "unlimited"}])
    );
    let v = get(
        r#"{ enable = true; providers = [ "rxe" ]; memlockLimit = 1048576;
             memlockServices = [ "slurmd" "munged.service" ]; }"#,
    );
    assert_eq!(v["manager"], serde_json::json!({}), "{v}");
    assert_eq!(v["limits"][0]["value"], 1048576);
    assert_eq!(
        v["units"],
        serde_json::json!({"slurmd": "1048576K", "munged": "1048576K"})
    );
    let v = get(
        r#"{ enable = true; providers = [ "rxe" ]; memlockServices = [ "slurmd" ];
             memlockForAllServices = true; }"#,
    );
    assert_eq!(v["manager"]["DefaultLimitMEMLOCK"], "infinity", "{v}");
    assert_eq!(v["units"]["slurmd"], "infinity");
}

/// `memlockForServices` (on by default, every service) is gone, and setting it says
/// what replaced it.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn the_old_system_wide_memlock_option_is_removed_naming_its_replacements() {
    require("nix-instantiate");
    let v = eval_json(
        r#"(import ./modules/rdma.nix { lib = import ./tests/fixtures/fake-nixos-lib.nix;
             config = { }; pkgs = { }; utils = { }; }).imports"#,
    );
    assert_eq!(
        v[0]["_removed"],
        serde_json::json!(["hardware", "rdma", "memlockForServices"])
    );
    let why = v[0]["instructions"].as_str().unwrap();
    assert!(
        why.contains("hardware.rdma.memlockServices") && why.contains("memlockForAllServices"),
        "{why}"
    );
}

/// With the default options, nobody outside the `rdma` group gets more locked memory
/// than systemd's and PAM's defaults: no system-wide default, no unit's limit, and the
/// only PAM limit is the group's; soft devices' units and rdma-ndd included.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn by_default_no_limit_reaches_anyone_outside_the_rdma_group() {
    require("nix-instantiate");
    let v = module_eval(
        r#"{ enable = true; providers = [ "rxe" "siw" ]; softRoce.interfaces = [ "eth0" ];
             siw.interfaces = [ "eth0" ]; ndd.enable = true; }"#,
        r#"let units = c.systemd.services; in {
             manager = c.systemd.settings.Manager or { };
             domains = map (l: l.domain) c.security.pam.loginLimits;
             units = builtins.attrNames units;
             raised = builtins.filter (n: units.${n} ? serviceConfig.LimitMEMLOCK) (builtins.attrNames units);
           }"#,
    );
    assert_eq!(v["manager"], serde_json::json!({}), "{v}");
    assert_eq!(v["domains"], serde_json::json!(["@rdma"]));
    assert_eq!(v["raised"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["units"],
        serde_json::json!(["rdma-link-rxe_eth0", "rdma-link-siw_eth0", "rdma-ndd"])
    );
}

/// `memlockLimit` is KiB or `"unlimited"`: the old spelling `"infinity"` (systemd's)
/// or a negative number is refused by its type, before PAM or systemd could read it.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn the_memlock_limit_is_kib_or_unlimited() {
    require("nix-instantiate");
    let options = eval_json("import ./tests/fixtures/module-options.nix");
    let t = options
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "hardware.rdma.memlockLimit")
        .unwrap();
    assert_eq!(
        t["type"],
        r#"unsigned integer, meaning >=0, or value "unlimited" (singular enum)"#
    );
    for (value, refused) in [
        (r#""unlimited""#, false),
        ("0", false),
        ("1048576", false),
        (r#""infinity""#, true),
        ("(-1)", true),
        (r#""1048576""#, true),
    ] {
        let expr = format!(
            "let c = import ./tests/fixtures/module-eval.nix {{ settings = {{ enable = true; memlockLimit = {value}; }}; }}; in c.security.pam.loginLimits"
        );
        let err = eval_err_or_ok(&expr);
        match (refused, err) {
            (false, None) => {}
            (true, Some(e)) => assert!(
                e.contains("A definition for option `hardware.rdma.memlockLimit' is not of type `unsigned integer, meaning >=0, or value \"unlimited\" (singular enum)'"),
                "{value}: {e}"
            ),
            (r, e) => panic!("{value}: refused {r} expected, got {e:?}"),
        }
    }
}

/// rdma-core-full has every provider compiled in and reads its own config dir: the
/// module refuses it with a message naming the split core to use instead.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn the_module_refuses_rdma_core_full_naming_the_fix() {
    require("nix-instantiate");
    let msgs = failing_assertions(
        r#"{ enable = true; package = o.rdma-core-full; providers = [ "rxe" ]; }"#,
    );
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "hardware.rdma.package: rdma-core-full-65.0 is rdma-core-full, which has every provider compiled in"
        ) && m.contains(r#"rdmaPackages."65.0".rdma-core"#)),
        "{msgs:#?}"
    );
    // The split core passes.
    assert!(failing_assertions(r#"{ enable = true; providers = [ "rxe" ]; }"#).is_empty());
}

/// `replaceNixpkgsRdmaCore` hands system.replaceDependencies nixpkgs' rdma-core and a
/// runtime view of our core and the composed providers under the same name (so the
/// same store path length); an older core than nixpkgs' is refused.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn replacing_nixpkgs_rdma_core_without_a_rebuild() {
    require("nix-instantiate");
    let v = module_eval(
        r#"{ enable = true; providers = [ "rxe" "siw" ]; replaceNixpkgsRdmaCore = true; }"#,
        r#"let r = c.system.replaceDependencies.replacements; in {
             n = builtins.length r;
             old = (builtins.head r).oldDependency.name;
             new = (builtins.head r).newDependency.name;
             pkgsCore = o.rdma-core.name;
             drivers = (builtins.head r).newDependency.configDir.driverNames;
             mirrored = builtins.length (builtins.attrNames (builtins.head r).newDependency.resolved);
             all = builtins.length (builtins.attrNames o.rdmaProviders);
             core = (builtins.head r).newDependency.core.name;
             failing = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
           }"#,
    );
    assert_eq!(v["n"], 1);
    assert_eq!(v["old"], v["pkgsCore"]);
    assert_eq!(v["new"], v["old"], "same name, same store path length");
    assert_eq!(v["drivers"], serde_json::json!(["rxe", "siw"]));
    assert_eq!(
        v["mirrored"], v["all"],
        "every provider, whatever the selection"
    );
    assert_eq!(v["core"], "rdma-core-65.0");
    assert_eq!(v["failing"], serde_json::json!([]));
    // Off by default: no replacement.
    let off = module_eval(
        r#"{ enable = true; providers = [ "rxe" ]; }"#,
        "c.system.replaceDependencies.replacements",
    );
    assert_eq!(off, serde_json::json!([]));
    // A core older than the one it replaces is refused.
    let old = failing_assertions(
        r#"{ enable = true; providers = [ "rxe" ]; replaceNixpkgsRdmaCore = true;
             release = "56.1"; package = o.rdmaPackages."56.1".rdma-core; }"#,
    );
    assert_eq!(
        old,
        ["hardware.rdma.replaceNixpkgsRdmaCore: the core is rdma-core 56.1, older than nixpkgs' rdma-core 65.0, whose consumers may need symbols it lacks. Choose a newer hardware.rdma.release, or rebuild them against rdma-nix with the flake's overlays.rdma-core."]
    );
}

/// The runtime view stands in for nixpkgs' rdma-core `out` (every provider compiled
/// in: rdma-core-full here): with two providers selected, every file of that tree is
/// in the view (bin, sbin, etc, share, libexec, lib/udev, lib/systemd, every public
/// library and plugin), as a symlink that resolves; only the config dir is the
/// selection's.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn the_runtime_view_mirrors_the_whole_rdma_core_out_tree() {
    require("nix-build");
    let expr = r#"let o = import ./pkgs/offline { };
          c = import ./tests/fixtures/module-eval.nix {
            settings = { enable = true; providers = [ "rxe" "siw" ]; replaceNixpkgsRdmaCore = true; };
          };
        in { view = (builtins.head c.system.replaceDependencies.replacements).newDependency;
             full = o.rdma-core-full; }"#;
    let outs = stdout_ok(
        nix_build_offline()
            .args(["-E", expr, "-A", "view", "-A", "full"])
            .current_dir(root()),
    );
    let outs: Vec<&str> = outs.lines().collect();
    let (view, full) = (Path::new(outs[0]), Path::new(outs[1]));
    let files = |root: &Path| -> Vec<String> {
        let out = stdout_ok(
            std::process::Command::new("find")
                .args([".", "-mindepth", "1", "!", "-type", "d"])
                .current_dir(root),
        );
        let mut v: Vec<String> = out
            .lines()
            .filter(|f| !f.starts_with("./etc/libibverbs.d"))
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    let (in_view, in_full) = (files(view), files(full));
    let missing: Vec<&String> = in_full.iter().filter(|f| !in_view.contains(f)).collect();
    assert!(missing.is_empty(), "the view lacks {missing:#?}");
    assert!(in_full.len() > 150, "{in_full:?}");
    for dir in [
        "bin/",
        "sbin/",
        "share/",
        "libexec/",
        "lib/udev/",
        "lib/systemd/",
        "lib/libibverbs/",
    ] {
        assert!(
            in_full.iter().any(|f| f.starts_with(&format!("./{dir}"))),
            "{dir}"
        );
    }
    for lib in ["libmlx5.so.1", "libefa.so.1", "libmana.so.1"] {
        assert!(in_view.contains(&format!("./lib/{lib}")), "{lib}");
    }
    for f in &in_view {
        assert!(view.join(f).exists(), "{f} dangles");
    }
    let mut drivers: Vec<String> = std::fs::read_dir(view.join("etc/libibverbs.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    drivers.sort();
    assert_eq!(drivers, ["rxe.driver", "siw.driver"]);
}

/// `nix flake check` tests what the module deploys: for every kernel set and soft
/// driver, a NixOS test with the kernel's own module and one with rdma-nix's
/// (outOfTree), each checking where the loaded module comes from (the test framework
/// stubbed; the nodes as checks/nixos.nix writes them).
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn nixos_checks_cover_rdma_nix_modules_beside_the_kernels_own() {
    require("nix-instantiate");
    let v = eval_json(
        r#"let
          checks = import ./checks/nixos.nix {
            lib = import ./tests/fixtures/fake-nixos-lib.nix;
            testers.runNixOSTest = t: t;
            rdmaModule = ./modules/rdma.nix;
            kernelSets.linux_6_12 = { kernel.version = "6.12.60"; };
          };
        in builtins.mapAttrs (n: t: {
          inherit (t) name;
          outOfTree = (builtins.elemAt (t.nodes.client { config = { }; pkgs = { }; }).imports 1).hardware.rdma.kernelModules.outOfTree;
          loaded = builtins.head (builtins.filter (l: builtins.match ".*modinfo.*" l != null)
            (builtins.filter builtins.isString (builtins.split "
" t.testScript)));
        }) checks"#,
    );
    let names: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "rdma-linux_6_12-rxe",
            "rdma-linux_6_12-rxe-rdma-nix-module",
            "rdma-linux_6_12-siw",
            "rdma-linux_6_12-siw-rdma-nix-module"
        ]
    );
    for (name, t) in v.as_object().unwrap() {
        assert_eq!(t["name"], name.as_str());
        let driver = if name.contains("-rxe") { "rxe" } else { "siw" };
        let module = if driver == "rxe" { "rdma_rxe" } else { "siw" };
        let ours = name.ends_with("-rdma-nix-module");
        let want: Vec<&str> = if ours { vec![driver] } else { vec![] };
        assert_eq!(t["outOfTree"], serde_json::json!(want), "{name}");
        let check = format!(
            "m.{}(\"modinfo -F filename {module} | grep -q /updates/\")",
            if ours { "succeed" } else { "fail" }
        );
        assert_eq!(t["loaded"].as_str().unwrap().trim(), check, "{name}");
    }
}

/// hardware.rdma.checks.gate puts the hot-path NixOS test of the system's own
/// configuration into system.checks (which the system's build depends on): the
/// system's kernel set and RDMA settings on the nodes, one test per enabled soft
/// driver (rxe when none is), every restored driver loaded; off by default.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn the_gate_tests_the_systems_own_kernel_and_settings() {
    require("nix-instantiate");
    let select = r#"map (t: let node = t.nodes.client { config = { }; pkgs = { }; }; in {
          inherit (t) name isNixOSTest;
          kernel = node.boot.kernelPackages.kernel.name;
          system = c.cfg.package;
          rdma = builtins.elemAt node.imports 1;
          modprobes = builtins.filter (l: builtins.match ".*modprobe.*" l != null)
            (builtins.filter builtins.isString (builtins.split "
" t.testScript));
        }) c.system.checks"#;
    let off = module_eval(
        r#"{ enable = true; providers = [ "mlx5" ]; }"#,
        "c.system.checks",
    );
    assert_eq!(off, serde_json::json!([]));
    let v = module_eval(
        r#"{ enable = true; providers = [ "mlx5" ]; checks.gate = true;
             kernelModules.restore = [ "rnbd" ]; }"#,
        select,
    );
    let tests = v.as_array().unwrap();
    assert_eq!(tests.len(), 1, "{v:#}");
    let t = &tests[0];
    let kernel = common::release_of(&common::roles().kabi_base);
    assert_eq!(t["name"], format!("rdma-gate-{kernel}-rxe"));
    assert_eq!(t["isNixOSTest"], true);
    assert!(
        t["kernel"]
            .as_str()
            .unwrap()
            .contains(&kernel.replace("-amd64", "")),
        "{t}"
    );
    let rdma = &t["rdma"]["hardware"]["rdma"];
    assert_eq!(
        rdma["kernelModules"]["restore"],
        serde_json::json!(["rnbd"])
    );
    assert_eq!(rdma["package"], t["system"], "the system's core");
    let modprobes: Vec<&str> = t["modprobes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().trim())
        .collect();
    for m in [
        "rnbd-client",
        "rnbd-server",
        "rtrs-core",
        "rtrs-client",
        "rtrs-server",
    ] {
        assert!(
            modprobes.contains(&format!("client.succeed(\"modprobe {m}\")").as_str()),
            "{modprobes:?}"
        );
    }
    // One test per enabled soft driver.
    let v = module_eval(
        r#"{ enable = true; checks.gate = true; softRoce.interfaces = [ "eth0" ];
             siw.interfaces = [ "eth0" ]; }"#,
        "map (t: t.name) c.system.checks",
    );
    assert_eq!(
        v,
        serde_json::json!([
            format!("rdma-gate-{kernel}-rxe"),
            format!("rdma-gate-{kernel}-siw")
        ])
    );
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn drivers_are_restored_by_name_with_what_they_need_or_refused_naming_kernel_and_driver() {
    require("nix-instantiate");
    // Debian 6.1: rnbd comes with rtrs, which it needs; irdma is in the kernel; ionic
    // is newer than 6.1; opa_vnic is outside the default set, restored by name.
    let v = module_eval(
        r#"{ enable = true; kernelModules.restore = [ "rnbd" "efa" "opa_vnic" "irdma" "ionic" ]; }"#,
        r#"{
          assertions = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
          modules = map (p: p.name) c.boot.extraModulePackages;
        }"#,
    );
    let release = common::release_of(&common::roles().kabi_base);
    let module = |name: &str| format!("rdma-{name}-module-{release}");
    assert_eq!(
        v["modules"],
        serde_json::json!([
            module("rnbd"),
            module("efa"),
            module("opa_vnic"),
            module("rtrs")
        ])
    );
    let msgs: Vec<&str> = v["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(
        msgs[0],
        format!("hardware.rdma.kernelModules.restore: can't restore irdma for kernel {release}: built by the kernel already (INFINIBAND_IRDMA=m)")
    );
    let ionic = format!(
        "hardware.rdma.kernelModules.restore: can't restore ionic for kernel {release}: not in linux 6.1."
    );
    assert!(
        msgs[1].starts_with(&ionic) && msgs[1].ends_with("'s source"),
        "{}",
        msgs[1]
    );
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn nixpkgs_kernel_sets_are_its_lts_series_and_latest_and_skip_a_removed_one() {
    require("nix-instantiate");
    // A stand-in nixpkgs: a removed series is a `throw` (as under allowAliases), a
    // non-LTS series and a kernel without `isLTS` are left out, and the latest is kept
    // whatever it is.
    let v = eval_json(
        r#"builtins.attrNames (import ./pkgs/nixpkgs-kernel-sets.nix {
             linuxKernel.vanillaPackages = {
               linux_5_15 = { isLTS = true; };
               linux_6_6 = throw "linux 6.6 was removed because it has reached its end of life";
               linux_6_17 = { isLTS = false; };
               linux_6_18 = { isLTS = true; };
               linux_odd = { };
             };
             linuxPackages_latest = { isLTS = false; };
           })"#,
    );
    assert_eq!(
        v,
        serde_json::json!(["linux_5_15", "linux_6_18", "linux_latest"])
    );
}

/// hydraJobs: the offline kernels' jobs carry their restored drivers (planned from
/// their configs); the flake evaluates them without fetching nixpkgs.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn hydra_jobs_of_the_offline_kernels_evaluate_without_nixpkgs() {
    require("nix-instantiate");
    let v = eval_json(
        r#"let flake = (import ./flake.nix).outputs { self = flake; nixpkgs = throw "nixpkgs fetched"; };
           in builtins.mapAttrs (_: builtins.attrNames) flake.hydraJobs.offline.kernels"#,
    );
    let kernels = v.as_object().unwrap();
    assert!(kernels.len() >= 4, "{v}");
    for (k, jobs) in kernels {
        assert_eq!(
            jobs,
            &serde_json::json!(["driverStates", "rdma-rxe", "rdma-siw", "restored"]),
            "{k}"
        );
    }
}
