//! Per-kernel module builds across the offline matrix, the kABI decision on real
//! Debian kernels, a reused module loading in a VM, and bad input to `kabi` and
//! `kernel extract-source`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use crate::common::{
    nix_build_offline, offline_vm_check, pinned, rdma_nix, require, run, stdout_ok,
};
use rdma_nix::kernel::module;
use rdma_nix::manifest::Manifest;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn offline_expr(body: &str) -> String {
    format!("let o = import ./pkgs/offline {{ }}; in {body}")
}

/// The single .ko below a module package's lib/modules, resolved.
fn ko_of(out: &str) -> (String, PathBuf) {
    let base = Path::new(out).join("lib/modules");
    let rel = fs::read_dir(&base)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let rel = rel.to_string_lossy().into_owned();
    for sub in ["updates", "weak-updates"] {
        let dir = base.join(&rel).join(sub);
        if let Ok(mut it) = fs::read_dir(&dir) {
            let p = it.next().unwrap().unwrap().path();
            return (rel, fs::canonicalize(p).unwrap());
        }
    }
    panic!("no module in {out}");
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn every_kernel_of_the_matrix_gets_siw_and_rdma_rxe() {
    require("nix-build");
    pinned("linux-source-6.1");
    let m = Manifest::load(None).unwrap();
    let plan = include_str!("../../pkgs/generated/kernel-modules.nix");
    let mut attrs = Vec::new();
    for k in &m.kernels {
        for d in ["siw", "rxe"] {
            attrs.push((k.name.clone(), m.package(&k.image).unwrap().name.clone(), d));
        }
    }
    let list: Vec<String> = attrs
        .iter()
        .map(|(k, _, d)| format!("o.kernelPackages.\"{k}\".rdma-{d}"))
        .collect();
    let outs = stdout_ok(
        nix_build_offline()
            .args(["-E", &offline_expr(&format!("[ {} ]", list.join(" ")))])
            .current_dir(REPO),
    );
    let outs: Vec<&str> = outs.lines().collect();
    assert_eq!(outs.len(), attrs.len());
    let mut reused = 0;
    for ((kernel, image, driver), out) in attrs.iter().zip(&outs) {
        let release = image.trim_start_matches("linux-image-");
        let (dir, ko) = ko_of(out);
        assert_eq!(
            dir, release,
            "{kernel} {driver}: installed for the wrong kernel"
        );
        let info = module::parse(&fs::read(&ko).unwrap()).unwrap();
        let want = if *driver == "siw" { "siw" } else { "rdma_rxe" };
        assert_eq!(info.name.as_deref(), Some(want));
        let built_for = info.vermagic_release().unwrap().to_string();
        if out.contains("-from-") {
            // Reused: vermagic names the kernel it was built for, a different one.
            reused += 1;
            assert_ne!(built_for, release);
        } else {
            assert_eq!(built_for, release, "{kernel} {driver}: vermagic");
        }
    }
    // As many reuses as the plan decided for the two drivers (the -55 builds on -56
    // and on every other kernel whose imports match), at least one each.
    let planned = |driver: &str| {
        let start = plan.find(&format!("\n  {driver} = {{\n")).unwrap();
        let end = start + plan[start..].find("\n  };\n").unwrap();
        plan[start..end].matches("reuse = \"").count()
    };
    assert!(planned("siw") >= 1 && planned("rxe") >= 1, "{plan}");
    assert_eq!(reused, planned("siw") + planned("rxe"), "{plan}");
}

/// A kernel served as nixpkgs' kernels are (its series' recipes, no plan from its
/// config): a driver the kernel builds itself fails its build naming the kernel, the
/// driver and the config state, before anything is compiled; one it lacks builds the
/// same modules as the per-kernel plan's build.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn a_series_recipe_refuses_what_the_kernels_own_config_builds() {
    require("nix-build");
    let set = "o.kernelPackagesBySeries.${o.roles.kabiBase}";
    let mlx5 = run(nix_build_offline()
        .args(["-E", &offline_expr(&format!("{set}.rdmaRestored.mlx5"))])
        .current_dir(REPO));
    assert!(!mlx5.status.success());
    let log = String::from_utf8_lossy(&mlx5.stderr);
    let release = common::release_of(&common::roles().kabi_base);
    let want = format!(
        "rdma-nix: can't restore mlx5 for linux {release}: built by the kernel already (MLX5_INFINIBAND=m) (from its .config; remove it from hardware.rdma.kernelModules.restore)"
    );
    let logs = format!("{log}{}", common::failed_build_logs(&log));
    assert!(logs.contains(&want), "{logs}");
    // efa, which Debian leaves out, builds from the recipe: the same module.
    let out = stdout_ok(
        nix_build_offline()
            .args([
                "-E",
                &offline_expr(&format!(
            "[ {set}.rdmaRestored.efa o.kernelPackagesOwn.${{o.roles.kabiBase}}.rdmaRestored.efa ]"
        )),
            ])
            .current_dir(REPO),
    );
    let outs: Vec<&str> = out.lines().collect();
    let (_, recipe) = ko_of(outs[0]);
    let (_, own) = ko_of(outs[1]);
    assert_eq!(recipe.file_name(), own.file_name());
    assert_eq!(
        fs::read(&recipe).unwrap(),
        fs::read(&own).unwrap(),
        "same source, same symbols: same bytes"
    );
}

/// The gate (hardware.rdma.checks.gate: the RDMA checks in system.checks, which the
/// system's build depends on), offline: a kernel's module set with a module built for
/// another kernel (reused by mistake) doesn't build, its load check failing; the
/// working set builds, its check's result recorded.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn a_system_whose_modules_fail_their_check_does_not_build() {
    require("nix-build");
    let roles = common::roles();
    let working = stdout_ok(
        nix_build_offline()
            .args([
                "-E",
                &offline_expr(&format!(
                    r#"o.gatedSystem {{ kernelName = "{}"; }}"#,
                    roles.kabi_reused
                )),
            ])
            .current_dir(REPO),
    );
    assert!(Path::new(&working).join("rdma-siw").exists(), "{working}");
    let broken = format!(
        r#"let k = "{new}"; kp = o.kernelPackages.${{k}}; in o.gatedSystem {{
             kernelName = k;
             set = kp // {{ rdma-siw = o.callPackage ./pkgs/kernel-modules/weak-update.nix {{
               kernel = kp.kernel;
               module = o.kernelPackages."{old}".rdma-siw;
               reason = "deliberately broken: built for another series' kernel";
             }}; }};
           }}"#,
        new = roles.kabi_reused,
        old = roles.oldest
    );
    let out = run(nix_build_offline()
        .args(["-E", &offline_expr(&broken)])
        .current_dir(REPO));
    assert!(!out.status.success(), "the broken system built");
    let log = String::from_utf8_lossy(&out.stderr);
    let logs = format!("{log}{}", common::failed_build_logs(&log));
    // Not a build error: the module is built, and the kernel refuses it in the VM.
    assert!(
        logs.contains("insmod: can't insert '/lib/modules/siw.ko': invalid module format")
            && logs.contains(&format!("module-load-siw-{}", roles.kabi_reused))
            && logs.contains("rdma-nix-system"),
        "{logs}"
    );
}

fn headers(abi: &str) -> PathBuf {
    pinned(&format!("linux-headers-6.1.0-{abi}-amd64"))
}

fn build_siw_55() -> String {
    stdout_ok(
        nix_build_offline()
            .args([
                "-E",
                &offline_expr(r#"o.kernelPackagesOwn."debian-6.1.0-55".rdma-siw"#),
            ])
            .current_dir(REPO),
    )
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn kabi_reuses_on_56_and_refuses_on_50_with_the_symbols_named() {
    require("nix-build");
    pinned("linux-source-6.1");
    let (h56, h50) = (headers("56"), headers("50"));
    let out = build_siw_55();
    let (_, ko) = ko_of(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(
        rdma_nix()
            .arg("kabi")
            .arg(&ko)
            .arg("--kernel")
            .args([&h56, &h50])
            .arg("--json"),
    ))
    .unwrap();
    let by = |rel: &str| {
        json["kernels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kernel"] == rel)
            .unwrap()
            .clone()
    };
    let k56 = by("6.1.0-56-amd64");
    assert_eq!(k56["loads"], true, "{k56}");
    assert!(k56["differing"].as_array().unwrap().is_empty());
    let k50 = by("6.1.0-50-amd64");
    assert_eq!(k50["loads"], false);
    let differing = k50["differing"].as_array().unwrap();
    assert!(!differing.is_empty());
    assert!(differing[0]["symbol"].as_str().unwrap().len() > 1);
    assert!(k50["reason"].as_str().unwrap().contains("symbols differ"));
}

#[test]
#[ignore = "needs Nix, QEMU and the fetched inputs: the README's test command runs it"]
fn a_module_reused_across_abis_loads_in_a_vm() {
    let roles = common::roles();
    let expr = format!(r#"o.moduleLoadCheck "{}" "siw""#, roles.kabi_reused);
    let (_, r) = offline_vm_check(&expr);
    assert_eq!(r["status"], "pass");
    assert_eq!(r["test"]["kernel"], common::release_of(&roles.kabi_reused));
    assert_eq!(r["test"]["built_for"], common::release_of(&roles.kabi_base));
}

#[test]
#[ignore = "needs the fetched inputs: the README's test command runs it"]
fn bad_modules_and_sources_give_one_line_errors_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let not_elf = d.path().join("not-elf.ko");
    fs::write(&not_elf, b"#!/bin/sh\necho hi\n").unwrap();
    let short = d.path().join("short.ko");
    fs::write(&short, b"\x7fELF\x02\x01\x01\0\0\0").unwrap();
    let hdr = d.path().join("headers");
    fs::create_dir(&hdr).unwrap();
    fs::write(hdr.join(".config"), "CONFIG_MODVERSIONS=y\n").unwrap();
    for (f, msg) in [(&not_elf, "not an ELF file"), (&short, "corrupt ELF")] {
        let o = run(rdma_nix().arg("kabi").arg(f).arg("--kernel").arg(&hdr));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains(&*f.display().to_string()) && err.contains(msg),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // A truncated xz kernel source and a corrupt .deb.
    let xz = d.path().join("linux-9.9.tar.xz");
    let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
    std::io::Write::write_all(&mut enc, &[b'x'; 100_000]).unwrap();
    let bytes = enc.finish().unwrap();
    fs::write(&xz, &bytes[..bytes.len() / 2]).unwrap();
    let deb = d.path().join("linux-source-9.9_all.deb");
    fs::write(
        &deb,
        b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n",
    )
    .unwrap();
    for (f, msg) in [(&xz, "corrupt kernel source tarball"), (&deb, "")] {
        let out_dir = d.path().join("out");
        let o = run(rdma_nix()
            .args(["kernel", "extract-source"])
            .arg(f)
            .args(["--subdir", "drivers/infiniband/sw/siw", "--out"])
            .arg(&out_dir));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{f:?} accepted");
        assert!(
            err.contains(&*f.display().to_string()) && err.contains(msg),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!out_dir.exists(), "half-extracted tree left behind");
    }
}

#[test]
#[ignore = "needs the fetched inputs: the README's test command runs it"]
fn extract_source_is_exactly_the_pinned_tree() {
    let deb = pinned("linux-source-6.1");
    let m = Manifest::load(None).unwrap();
    let ks = m.kernel_source("linux-6.1.192-rdma").unwrap();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join(&ks.name);
    let mut cmd = rdma_nix();
    cmd.args(["kernel", "extract-source"]).arg(&deb);
    for s in &ks.subdirs {
        cmd.args(["--subdir", s]);
    }
    stdout_ok(cmd.arg("--out").arg(&out));
    assert!(out.join("drivers/infiniband/sw/siw/siw_main.c").is_file());
    let hash = stdout_ok(
        Command::new(env!("CARGO_BIN_EXE_rdma-nix"))
            .args(["hash", "--json"])
            .arg(&out),
    );
    let v: serde_json::Value = serde_json::from_str(&hash).unwrap();
    assert_eq!(v["hash"], ks.hash.as_str());
}
