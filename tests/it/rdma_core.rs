//! rdma-core userspace: the scanner on the real 56.1 and 65.0 tarballs (fetched into
//! the store by the test command) and on hostile ones; the offline builds of the
//! core, every provider, rdma-core-full and perftest; the PABI guard; what a vendor
//! patch to one provider rebuilds.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{
    nix_build_offline, offline_vm_check, pinned, rdma_nix, require, run, stdout_ok,
};
use rdma_nix::rdma_core::{scan_file, Release};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

const PROVIDERS_56: [&str; 17] = [
    "bnxt_re",
    "cxgb4",
    "efa",
    "erdma",
    "hfi1verbs",
    "hns",
    "ipathverbs",
    "irdma",
    "mana",
    "mlx4",
    "mlx5",
    "mthca",
    "ocrdma",
    "qedr",
    "rxe",
    "siw",
    "vmw_pvrdma",
];

fn names(r: &Release) -> Vec<&str> {
    r.providers.iter().map(|p| p.name.as_str()).collect()
}

fn shared(r: &Release) -> BTreeSet<&str> {
    r.providers
        .iter()
        .filter(|p| p.public_library.is_some())
        .map(|p| p.name.as_str())
        .collect()
}

fn check_common(r: &Release) {
    assert!(r.unclassified.is_empty(), "{:?}", r.unclassified);
    let libs: Vec<_> = r.core_libraries.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        libs,
        [
            "libibmad",
            "libibnetdisc",
            "libibumad",
            "libibverbs",
            "librdmacm"
        ]
    );
    let tools: BTreeSet<_> = r.tools.iter().map(|t| t.name.as_str()).collect();
    for t in ["ibv_devinfo", "ibv_rc_pingpong", "rping", "ibstat", "iwpmd"] {
        assert!(tools.contains(t), "{t} missing from {tools:?}");
    }
    for p in &r.providers {
        assert_eq!(p.plugin, format!("lib{}-rdmav{}.so", p.name, r.pabi));
        assert_eq!(p.driver_file, format!("{}.driver", p.name));
        assert!(!p.kernel_modules.is_empty(), "{}", p.name);
        if let Some(l) = &p.public_library {
            assert_eq!(l.name, format!("lib{}", p.name));
            assert_eq!(l.soversion, "1");
            assert!(l.version.ends_with(&r.version), "{}", l.version);
            assert_eq!(
                l.pkg_config.as_deref(),
                Some(format!("lib{}.pc", p.name).as_str())
            );
            assert!(!l.headers.is_empty(), "{}", p.name);
        }
    }
    let by = |n: &str| r.providers.iter().find(|p| p.name == n).unwrap();
    assert_eq!(by("rxe").kernel_modules, ["rdma_rxe"]);
    assert_eq!(by("mlx5").kernel_modules, ["mlx5_ib"]);
    assert!(by("mlx5").needs_coherent_dma && !by("rxe").needs_coherent_dma);
    assert_eq!(
        by("mlx5").public_library.as_ref().unwrap().headers,
        [
            "infiniband/mlx5_user_ioctl_verbs.h",
            "infiniband/mlx5_api.h",
            "infiniband/mlx5dv.h"
        ]
    );
    assert_eq!(by("mlx4").extra_files[0].file, "mlx4.conf");
    assert_eq!(
        by("ipathverbs")
            .extra_files
            .iter()
            .map(|f| f.file.as_str())
            .collect::<Vec<_>>(),
        ["truescale.conf", "truescale-serdes.cmds"]
    );
}

#[test]
#[ignore = "needs the fetched inputs: the README's test command runs it"]
fn scan_of_65_0() {
    let tarball = pinned("rdma-core-65.0-orig");
    let r = scan_file(&tarball).unwrap();
    assert_eq!((r.version.as_str(), r.pabi), ("65.0", 65));
    assert_eq!(r.top_dir, "linux-rdma-rdma-core-58e4080");
    let mut expected: Vec<&str> = PROVIDERS_56.to_vec();
    expected.push("ionic");
    expected.sort();
    assert_eq!(names(&r), expected);
    assert_eq!(
        shared(&r),
        BTreeSet::from(["efa", "hns", "ionic", "mana", "mlx4", "mlx5"])
    );
    check_common(&r);
    // The JSON form of the CLI carries the same facts.
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(
        rdma_nix().args(["scan", "--json"]).arg(&tarball),
    ))
    .unwrap();
    assert_eq!(json["pabi"], 65);
    assert_eq!(json["providers"].as_array().unwrap().len(), 18);
    let mlx5 = json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mlx5")
        .unwrap();
    assert_eq!(mlx5["public_library"]["pkg_config"], "libmlx5.pc");
}

#[test]
#[ignore = "needs the fetched inputs: the README's test command runs it"]
fn scan_of_56_1() {
    let tarball = pinned("rdma-core-56.1-orig");
    let r = scan_file(&tarball).unwrap();
    assert_eq!((r.version.as_str(), r.pabi), ("56.1", 34));
    assert_eq!(r.top_dir, "rdma-core-56.1");
    assert_eq!(names(&r), PROVIDERS_56);
    assert_eq!(
        shared(&r),
        BTreeSet::from(["efa", "hns", "mana", "mlx4", "mlx5"])
    );
    check_common(&r);
}

/// A small rdma-core-shaped tarball; `extra` adds or replaces files.
fn tarball(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let path = dir.join(name);
    let gz = flate2::write::GzEncoder::new(
        fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    for (p, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Raw names: the builder would refuse `..`, which is the point of some cases.
        let bytes = p.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
    path
}

const TOP: &str = "set(PACKAGE_VERSION \"99.0\")\nset(IBVERBS_PABI_VERSION \"99\")\n\
                   add_subdirectory(providers/rxe)\n";

#[test]
fn synthetic_tarball_scans() {
    let d = tempfile::tempdir().unwrap();
    let t = tarball(
        d.path(),
        "ok.tar.gz",
        &[
            ("any-name/CMakeLists.txt", TOP),
            (
                "any-name/providers/rxe/CMakeLists.txt",
                "rdma_provider(rxe rxe.c)\n",
            ),
            (
                "any-name/providers/newhw/CMakeLists.txt",
                "rdma_provider(newhw a.c)\n",
            ),
        ],
    );
    let r = scan_file(&t).unwrap();
    assert_eq!((r.version.as_str(), r.pabi), ("99.0", 99));
    assert_eq!(names(&r), ["rxe"]);
    // A provider directory the build doesn't add is reported, not dropped.
    assert_eq!(r.unclassified.len(), 1, "{:?}", r.unclassified);
    assert_eq!(r.unclassified[0].path, "providers/newhw");
}

#[test]
fn hostile_and_broken_tarballs_are_refused_with_the_file_named() {
    let d = tempfile::tempdir().unwrap();
    type Files<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Files, &str)> = vec![
        (
            "inject.tar.gz",
            vec![
                ("t/CMakeLists.txt", "set(PACKAGE_VERSION \"1.0\")\nset(IBVERBS_PABI_VERSION \"1\")\nadd_subdirectory(\"providers/x${builtins.abort}\")\n"),
                ("t/providers/x${builtins.abort}/CMakeLists.txt", "rdma_provider(x a.c)\n"),
            ],
            "is not [A-Za-z0-9_]+",
        ),
        (
            "inject-name.tar.gz",
            vec![
                ("t/CMakeLists.txt", TOP),
                ("t/providers/rxe/CMakeLists.txt", "rdma_provider(\"rxe\\\"; x = \\\"\" a.c)\n"),
            ],
            "provider name",
        ),
        (
            "climb.tar.gz",
            vec![("t/CMakeLists.txt", TOP), ("t/../../etc/passwd", "x")],
            "refusing a hostile tarball",
        ),
        (
            "absolute.tar.gz",
            vec![("/etc/CMakeLists.txt", TOP)],
            "refusing a hostile tarball",
        ),
        (
            "two-tops.tar.gz",
            vec![("a/CMakeLists.txt", TOP), ("b/x", "")],
            "exactly one",
        ),
        (
            "no-pabi.tar.gz",
            vec![("t/CMakeLists.txt", "set(PACKAGE_VERSION \"1.0\")\n")],
            "IBVERBS_PABI_VERSION",
        ),
        (
            "not-rdma-core.tar.gz",
            vec![("t/README", "hello")],
            "not an rdma-core source tarball",
        ),
        (
            "bad-cmake.tar.gz",
            vec![
                ("t/CMakeLists.txt", TOP),
                ("t/providers/rxe/CMakeLists.txt", "rdma_provider(rxe\n"),
            ],
            "not closed",
        ),
        (
            "duplicate.tar.gz",
            vec![
                ("t/CMakeLists.txt", TOP),
                ("t/providers/rxe/CMakeLists.txt", "rdma_provider(rxe a.c)\n"),
                ("t/providers/rxe/CMakeLists.txt", "rdma_provider(rxe a.c)\n"),
            ],
            "listed twice",
        ),
    ];
    for (name, files, msg) in cases {
        let t = tarball(d.path(), name, &files);
        let out = run(rdma_nix().arg("scan").arg(&t));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(err.contains(name) && err.contains(msg), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{name}: not one line: {err}");
    }
    // Not compressed, and truncated.
    let plain = d.path().join("plain.tar.gz");
    fs::write(&plain, b"just text").unwrap();
    let ok = tarball(d.path(), "whole.tar.gz", &[("t/CMakeLists.txt", TOP)]);
    let bytes = fs::read(&ok).unwrap();
    let cut = d.path().join("truncated.tar.gz");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    for (f, msg) in [(&plain, "unknown magic"), (&cut, "corrupt tar stream")] {
        let out = run(rdma_nix().arg("scan").arg(f));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(&*f.display().to_string()) && err.contains(msg),
            "{err}"
        );
    }
}

fn eval_error(expr: &str) -> String {
    let out = run(std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "-E", expr])
        .current_dir(REPO));
    assert!(!out.status.success(), "{expr} evaluated");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn composing_providers_is_guarded_at_evaluation() {
    require("nix-instantiate");
    let compose = |providers: &str, overrides: &str| {
        format!(
            "let pkgs = import ./pkgs/offline {{ }}; in (pkgs.rdmaLib.mkVerbsConfigDir {{ \
             inherit (pkgs) runCommand; core = pkgs.rdma-core; \
             providers = with pkgs; [ {providers} ]; overrides = with pkgs; {{ {overrides} }}; }}).drvPath"
        )
    };
    // A 56.1 provider with the 65.0 core.
    let e = eval_error(&compose(r#"rdmaPackages."56.1".rdma-provider-rxe"#, ""));
    assert!(
        e.contains("PABI 34") && e.contains("PABI 65") && e.contains("rdma-provider-rxe-56.1"),
        "{e}"
    );
    // Two providers claiming the same driver name.
    let e = eval_error(&compose(
        "rdma-provider-rxe (rdma-provider-rxe.overrideAttrs (o: { patches = [ ./tests/fixtures/rxe-vendor-fix.patch ]; }))",
        "",
    ));
    assert!(e.contains("both claim the driver name 'rxe'"), "{e}");
    // An override for a name its provider doesn't serve.
    let e = eval_error(&compose("rdma-provider-siw", "rxe = rdma-provider-siw;"));
    assert!(e.contains("override 'rxe'"), "{e}");
    // An explicit override is fine.
    let ok = stdout_ok(
        std::process::Command::new("nix-instantiate")
            .args(["--eval", "-E"])
            .arg(compose(
                "rdma-provider-rxe rdma-provider-siw",
                "rxe = rdma-provider-rxe.overrideAttrs (o: { patches = [ ./tests/fixtures/rxe-vendor-fix.patch ]; });",
            ))
            .current_dir(REPO),
    );
    assert!(ok.contains(".drv"), "{ok}");
}

fn instantiate(file: &str, attr: &str, args: &[&str]) -> String {
    stdout_ok(
        std::process::Command::new("nix-instantiate")
            .arg(file)
            .args(["-A", attr])
            .args(args)
            .current_dir(REPO),
    )
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn a_patched_provider_rebuilds_itself_and_the_config_dir_only() {
    require("nix-build");
    pinned("rdma-core-65.0-orig");
    let f = "tests/fixtures/patched-rxe.nix";
    let unpatched = ["--arg", "patched", "false"];
    for (attr, same) in [
        ("core", true),
        ("siw", true),
        ("mlx5", true),
        ("perftest", true),
        ("rxe", false),
        ("config", false),
    ] {
        let a = instantiate(f, attr, &unpatched);
        let b = instantiate(f, attr, &[]);
        assert_eq!(a == b, same, "{attr}: {a} vs {b}");
    }
    // The patched provider builds alone (its targets only) and carries the patch.
    let out = stdout_ok(
        nix_build_offline()
            .arg(f)
            .args(["-A", "rxe"])
            .current_dir(REPO),
    );
    let plugin = fs::read(format!("{out}/lib/libibverbs/librxe-rdmav65.so")).unwrap();
    assert!(plugin.windows(20).any(|w| w == b"rdma-nix patched rxe"));
    let driver = fs::read_to_string(format!("{out}/etc/libibverbs.d/rxe.driver")).unwrap();
    assert_eq!(driver, format!("driver {out}/lib/libibverbs/librxe\n"));
}

fn dynamic_symbols(lib: &str) -> String {
    stdout_ok(std::process::Command::new("objdump").args(["-T", lib]))
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn offline_userspace_builds_and_every_driver_resolves() {
    require("nix-build");
    require("objdump");
    pinned("rdma-core-65.0-orig");
    let attrs = [
        "rdma-core",
        "rdma-core.dev",
        "verbs-config-dir",
        "rdma-core-full",
        "perftest",
    ];
    let mut cmd = nix_build_offline();
    cmd.arg("pkgs/offline").current_dir(REPO);
    for a in attrs {
        cmd.args(["-A", a]);
    }
    let outs = stdout_ok(&mut cmd);
    let outs: Vec<&str> = outs.lines().collect();
    let (core, config, full, perftest) = (outs[0], outs[2], outs[3], outs[4]);

    // The core holds no provider; it exports the private ABI its providers need.
    assert!(!Path::new(&format!("{core}/lib/libibverbs")).exists());
    let core_syms = dynamic_symbols(&format!("{core}/lib/libibverbs.so.1"));
    assert!(core_syms.contains("IBVERBS_PRIVATE_65"));
    // Its config dir is the system-wide one.
    let lib = fs::read(format!("{core}/lib/libibverbs.so.1")).unwrap();
    assert!(
        lib.windows(19).any(|w| w == b"/etc/libibverbs.d\0\0")
            || lib.windows(18).any(|w| w == b"/etc/libibverbs.d\0")
    );

    // Every .driver line names an existing plugin of the core's PABI.
    let mut n = 0;
    for e in fs::read_dir(format!("{config}/etc/libibverbs.d")).unwrap() {
        let text = fs::read_to_string(e.unwrap().path()).unwrap();
        let prefix = text.trim().strip_prefix("driver ").unwrap();
        let plugin = format!("{prefix}-rdmav65.so");
        assert!(Path::new(&plugin).exists(), "{plugin}");
        let syms = dynamic_symbols(&plugin);
        assert!(syms.contains("IBVERBS_PRIVATE_65"), "{plugin}: {syms}");
        assert!(!syms.contains("IBVERBS_PRIVATE_34"), "{plugin}");
        n += 1;
    }
    assert_eq!(n, 18);

    // rdma-core-full: everything in one package, its config dir in its own path.
    let full_lib = fs::read(format!("{full}/lib/libibverbs.so.1")).unwrap();
    let own = format!("{full}/etc/libibverbs.d");
    assert!(full_lib.windows(own.len()).any(|w| w == own.as_bytes()));
    assert_eq!(fs::read_dir(&own).unwrap().count(), 18);
    assert!(Path::new(&format!("{full}/lib/libibverbs/libmlx5-rdmav65.so")).exists());

    // perftest links our core.
    for b in ["ib_send_bw", "ib_write_bw", "ib_read_lat"] {
        let ldd = stdout_ok(std::process::Command::new("ldd").arg(format!("{perftest}/bin/{b}")));
        assert!(
            ldd.contains(&format!("{core}/lib/libibverbs.so.1")),
            "{b}: {ldd}"
        );
    }
}

#[test]
#[ignore = "needs Nix, QEMU and the fetched inputs: the README's test command runs it"]
fn ibv_devices_over_rxe_and_siw_loads_every_configured_driver() {
    let (out, r) = offline_vm_check("o.verbsDevicesCheck o.roles.kabiBase");
    let log = fs::read_to_string(format!("{out}/serial.log")).unwrap();
    assert!(log.contains("rxe0") && log.contains("siw0"), "{log}");
    assert!(!log.contains("couldn't load driver"), "{log}");
    assert_eq!(r["status"], "pass");
}

/// rdma-core-full has nixpkgs' outputs (out, dev, scripts; man when pandoc and rst2man
/// are there, which the offline platform lacks): its perl scripts and modules are in
/// `scripts`, run with the modules' directory on perl's path, and nothing in `out`
/// runs perl.
#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn rdma_core_full_keeps_perl_in_its_scripts_output() {
    require("nix-build");
    pinned("rdma-core-65.0-orig");
    let outputs: serde_json::Value = serde_json::from_str(&stdout_ok(
        Command::new("nix-instantiate")
            .args([
                "--eval",
                "--json",
                "pkgs/offline",
                "-A",
                "rdma-core-full.outputs",
            ])
            .current_dir(REPO),
    ))
    .unwrap();
    assert_eq!(outputs, serde_json::json!(["out", "dev", "scripts"]));
    let mut cmd = nix_build_offline();
    cmd.args([
        "pkgs/offline",
        "-A",
        "rdma-core-full",
        "-A",
        "rdma-core-full.scripts",
    ])
    .current_dir(REPO);
    let outs = stdout_ok(&mut cmd);
    let outs: Vec<&str> = outs.lines().collect();
    let (out, scripts) = (outs[0], outs[1]);
    for dir in ["bin", "sbin"] {
        for e in fs::read_dir(format!("{out}/{dir}")).into_iter().flatten() {
            let p = e.unwrap().path();
            let head: Vec<u8> = fs::read(&p).unwrap().into_iter().take(64).collect();
            let first = String::from_utf8_lossy(&head);
            let first = first.lines().next().unwrap_or("");
            assert!(
                !(first.starts_with("#!") && first.contains("perl")),
                "{}: {first}",
                p.display()
            );
        }
    }
    assert!(!Path::new(&format!("{out}/share/perl5")).exists());
    assert!(Path::new(&format!("{scripts}/share/perl5/IBswcountlimits.pm")).is_file());
    for s in [
        "check_lft_balance.pl",
        "ibidsverify.pl",
        "ibfindnodesusing.pl",
    ] {
        let text = fs::read_to_string(format!("{scripts}/sbin/{s}")).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            format!("#!/usr/bin/perl -I {scripts}/share/perl5"),
            "{s}"
        );
    }
    // The module the scripts use loads from there.
    stdout_ok(Command::new("perl").args([
        "-I",
        &format!("{scripts}/share/perl5"),
        "-c",
        &format!("{scripts}/sbin/ibidsverify.pl"),
    ]));
}

/// A consumer with only a provider's dev output in its inputs (`buildInputs =
/// [ rdma-provider-mlx5 ]`) compiles against its headers and links through pkg-config:
/// libmlx5.pc's `Requires.private: libibverbs` resolves because the provider's dev
/// output propagates the core's.
#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn a_provider_dev_output_is_enough_for_its_consumers() {
    require("nix-build");
    pinned("rdma-core-65.0-orig");
    let mut cmd = nix_build_offline();
    cmd.args([
        "pkgs/offline",
        "-A",
        "rdma-provider-mlx5.tests.dev-consumer",
        "-A",
        "rdma-provider-mlx5.dev",
        "-A",
        "rdma-core.dev",
        "-A",
        "rdma-core",
    ])
    .current_dir(REPO);
    let outs = stdout_ok(&mut cmd);
    let outs: Vec<&str> = outs.lines().collect();
    let (consumer, mlx5_dev, core_dev, core) = (outs[0], outs[1], outs[2], outs[3]);
    let propagated =
        fs::read_to_string(format!("{mlx5_dev}/nix-support/propagated-build-inputs")).unwrap();
    assert!(
        propagated.split_whitespace().any(|p| p == core_dev),
        "{propagated}"
    );
    let core_prop =
        fs::read_to_string(format!("{core_dev}/nix-support/propagated-build-inputs")).unwrap();
    assert!(
        core_prop.split_whitespace().any(|p| p == core),
        "{core_prop}"
    );
    let flags = fs::read_to_string(format!("{consumer}/pkg-config-flags")).unwrap();
    assert!(flags.contains("-lmlx5"), "{flags}");
    let ldd = fs::read_to_string(format!("{consumer}/loaded-libraries")).unwrap();
    assert!(ldd.contains("libmlx5.so.1 => /nix/store/"), "{ldd}");
    assert!(
        ldd.contains(&format!("libibverbs.so.1 => {core}/lib/")),
        "{ldd}"
    );
}

/// What nixpkgs builds (the packages, the module, its checks) finds no `ldd` on its
/// PATH: nixpkgs' stdenv has none, where the offline build roots do. No such file may
/// call it.
#[test]
fn nothing_nixpkgs_builds_calls_ldd() {
    let dirs = [
        "pkgs/rdma-core",
        "pkgs/perftest",
        "pkgs/kernel-modules",
        "modules",
        "checks",
    ];
    let mut files = vec![PathBuf::from(REPO).join("pkgs/rdma-packages.nix")];
    for d in dirs {
        for e in walkdir(&Path::new(REPO).join(d)) {
            if e.extension().is_some_and(|x| x == "nix" || x == "sh") {
                files.push(e);
            }
        }
    }
    assert!(files.len() > 10, "{files:?}");
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("");
            let calls = code
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                .any(|w| w == "ldd");
            assert!(!calls, "{}:{}: calls ldd: {line}", f.display(), n + 1);
        }
    }
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
