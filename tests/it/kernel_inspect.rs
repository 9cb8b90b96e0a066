//! `rdma-nix kernel inspect` on real Debian kernel packages (fetched into the store by
//! the test command) and on corrupt input.

use std::fs;
use std::path::PathBuf;

use crate::common;
use crate::common::{nix_build_offline, pinned, rdma_nix, require, run, stdout_ok};

fn inspect_json(files: &[PathBuf]) -> serde_json::Value {
    serde_json::from_str(&stdout_ok(
        rdma_nix().args(["kernel", "inspect", "--json"]).args(files),
    ))
    .unwrap()
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn debian_6_1_has_rxe_but_not_siw() {
    require("nix-store");
    let kernel = common::kernel(common::roles().newest_of("6.1"));
    let (image, headers) = (pinned(&kernel.image), pinned(&kernel.headers));
    let r = inspect_json(&[image, headers]);
    assert_eq!(
        r.as_array().unwrap().len(),
        1,
        "image and headers merge into one report"
    );
    let k = &r[0];
    assert_eq!(k["release"], common::release_of(&kernel.name));
    assert_eq!(k["rdma_config"]["RDMA_RXE"], "m");
    assert_eq!(k["rdma_config"]["RDMA_SIW"], "unset");
    assert_eq!(k["rdma_config"]["INFINIBAND"], "m");
    assert_eq!(k["modversions"], true);
    assert!(k["compiler"]
        .as_str()
        .unwrap()
        .starts_with("gcc-12 (Debian 12.2.0"));
    assert!(k["module_symvers"]["symbols"].as_u64().unwrap() > 20_000);
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn debian_6_12_reports_its_own_config() {
    require("nix-store");
    let kernel = common::kernel(common::roles().newest_of("6.12"));
    let image = pinned(&kernel.image);
    let r = inspect_json(&[image]);
    let k = &r[0];
    assert_eq!(k["release"], common::release_of(&kernel.name));
    assert_eq!(k["rdma_config"]["RDMA_RXE"], "m");
    assert_eq!(k["rdma_config"]["RDMA_SIW"], "unset");
    assert!(k["compiler"].as_str().unwrap().contains("gcc-14"));
    assert!(
        k["module_symvers"].is_null(),
        "the image package has no Module.symvers"
    );
}

/// One-line error naming the file, non-zero exit.
fn fails_naming(file: &std::path::Path, needle: &str) {
    let o = run(rdma_nix().args(["kernel", "inspect"]).arg(file));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{}: succeeded", file.display());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&file.display().to_string()) && err.contains(needle),
        "{err}"
    );
}

#[test]
fn corrupt_packages_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_deb = dir.path().join("not-a.deb");
    fs::write(&not_deb, b"this is text, not an ar archive").unwrap();
    fails_naming(&not_deb, "not an ar archive");

    let no_data = dir.path().join("no-data.deb");
    fs::write(
        &no_data,
        b"!<arch>\ndebian-binary/  0           0     0     100644  4         `\n2.0\n",
    )
    .unwrap();
    fails_naming(&no_data, "no data.tar member");

    let bad_xz = dir.path().join("bad-xz.deb");
    let mut v = b"!<arch>\ndata.tar.xz/    0           0     0     100644  8         `\n".to_vec();
    v.extend_from_slice(b"\xfd7zXZ\0\0\x04");
    fs::write(&bad_xz, v).unwrap();
    fails_naming(&bad_xz, "data.tar.xz");

    let odd = dir.path().join("odd.deb");
    fs::write(
        &odd,
        b"!<arch>\ndata.tar.lz4/   0           0     0     100644  2         `\nxx",
    )
    .unwrap();
    fails_naming(&odd, "unsupported compression");
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn truncated_real_package() {
    require("nix-store");
    let headers = pinned(&common::kernel(&common::roles().newest).headers);
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("truncated.deb");
    let bytes = fs::read(&headers).unwrap();
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails_naming(&cut, "truncated.deb");
}

/// stack.lock's `rdma_in_tree` (which the NixOS module and the offline checks use to
/// decide which soft drivers rdma-nix must build) agrees with each kernel's config.
#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn stack_toml_in_tree_drivers_match_each_kernels_config() {
    require("nix-store");
    let manifest = rdma_nix::manifest::Manifest::load(None).expect("stack.toml and stack.lock");
    for k in &manifest.kernels {
        // A split image (sid) is a metapackage: its parts hold the files.
        let names = if k.image_parts.is_empty() {
            vec![k.image.clone()]
        } else {
            k.image_parts.clone()
        };
        let files: Vec<_> = names.iter().map(|n| pinned(n)).collect();
        let r = inspect_json(&files);
        assert_eq!(r.as_array().unwrap().len(), 1, "kernel {}: {r}", k.name);
        let config = &r[0]["rdma_config"];
        for (driver, option) in [("rxe", "RDMA_RXE"), ("siw", "RDMA_SIW")] {
            let claimed = k.rdma_in_tree.iter().any(|d| d == driver);
            let shipped = matches!(config[option].as_str(), Some("m" | "y"));
            assert_eq!(
                claimed, shipped,
                "kernel {}: stack.lock says {driver} in tree = {claimed}, its config has {option}={}",
                k.name, config[option]
            );
        }
    }
}

/// Every kernel of the matrix with its series' linux-source: every RDMA driver of the
/// source, with its modules, Kconfig symbols and states; the drivers a source lacks
/// reported as absent. Debian disables siw, efa, erdma, vmw_pvrdma, rtrs and rnbd.
#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn every_matrix_kernel_lists_its_rdma_drivers_from_its_source() {
    require("nix-store");
    let manifest = rdma_nix::manifest::Manifest::load(None).expect("stack.toml and stack.lock");
    let mut names: Vec<String> = Vec::new();
    for k in &manifest.kernels {
        if k.image_parts.is_empty() {
            names.push(k.image.clone());
        } else {
            names.extend(k.image_parts.iter().cloned());
        }
    }
    // One source per series (`kernel inspect` takes one for each): the newest point
    // release the lock has of it.
    let mut sources: std::collections::BTreeMap<
        String,
        (rdma_nix::debian::version::Version, String),
    > = Default::default();
    for s in &manifest.kernel_sources {
        let p = manifest.package(&s.package).unwrap();
        let v = rdma_nix::debian::version::Version::parse(&p.version).unwrap();
        let series: String = v.upstream.split('.').take(2).collect::<Vec<_>>().join(".");
        if sources.get(&series).is_none_or(|(w, _)| *w < v) {
            sources.insert(series, (v, s.package.clone()));
        }
    }
    names.extend(sources.into_values().map(|(_, p)| p));
    let files: Vec<_> = names.iter().map(|n| pinned(n)).collect();
    let r = inspect_json(&files);
    let kernels = r.as_array().unwrap();
    assert_eq!(kernels.len(), manifest.kernels.len(), "{r}");
    for k in kernels {
        let rel = k["release"].as_str().unwrap();
        let drivers = k["rdma_drivers"]["drivers"]
            .as_array()
            .unwrap_or_else(|| panic!("{rel}: no drivers: {k}"));
        let find = |name: &str| {
            drivers
                .iter()
                .find(|d| d["name"] == name)
                .unwrap_or_else(|| panic!("{rel}: no {name}"))
        };
        let state = |name: &str| find(name)["state"].as_str().unwrap().to_owned();
        assert_eq!(state("rxe"), "m", "{rel}");
        assert_eq!(state("mlx5"), "m", "{rel}");
        for off in ["siw", "efa", "vmw_pvrdma", "rtrs", "rnbd"] {
            assert_eq!(state(off), "unset", "{rel} {off}");
        }
        // OPA VNIC: disabled by Debian, and gone from the source by 7.2 (measured).
        let opa_vnic = if rel.starts_with("7.") {
            "absent"
        } else {
            "unset"
        };
        assert_eq!(state("opa_vnic"), opa_vnic, "{rel}");
        // erdma arrived in 5.17: 5.10's source lacks it, and says so.
        let erdma = find("erdma");
        if rel.starts_with("5.10.") {
            assert_eq!(erdma["in_source"], false, "{rel}");
            assert_eq!(erdma["state"], "absent");
        } else {
            assert_eq!(erdma["in_source"], true, "{rel}");
            assert_eq!(erdma["modules"][0]["symbol"], "INFINIBAND_ERDMA");
            assert_eq!(erdma["state"], "unset", "{rel}");
        }
        // rtrs: three modules from one Makefile, their Kconfig selects read.
        let rtrs = find("rtrs");
        let modules: Vec<&str> = rtrs["modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["module"].as_str().unwrap())
            .collect();
        assert_eq!(
            modules,
            ["rtrs-core", "rtrs-client", "rtrs-server"],
            "{rel}"
        );
        assert_eq!(rtrs["modules"][1]["selects"][0], "INFINIBAND_RTRS", "{rel}");
        let rnbd_client = &find("rnbd")["modules"][0];
        assert_eq!(rnbd_client["module"], "rnbd-client");
        assert!(
            rnbd_client["depends_on"]
                .to_string()
                .contains("INFINIBAND_RTRS_CLIENT"),
            "{rel}: {rnbd_client}"
        );
        let siw = &find("siw")["modules"][0];
        assert_eq!(siw["type"], "tristate");
        assert_eq!(siw["symbol"], "RDMA_SIW");
    }

    // The Nix side of the same report (pkgs/kernel-modules/driver-states.nix: what
    // nixpkgs' kernels get, from their .config and their series' plan) agrees with it
    // for every driver of the series, on every kernel.
    let out = stdout_ok(nix_build_offline().args([
        "-E",
        "let o = import ./pkgs/offline { }; in map (k: o.kernelPackages.${k}.rdmaDriverStates) (builtins.attrNames o.kernelPackages)",
    ]));
    let reports: Vec<serde_json::Value> = out
        .lines()
        .map(|p| {
            let f = PathBuf::from(p).join("rdma-drivers.json");
            serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(reports.len(), kernels.len());
    for nix in &reports {
        let rel = nix["kernel"].as_str().unwrap();
        let k = kernels
            .iter()
            .find(|k| k["release"] == rel)
            .unwrap_or_else(|| panic!("{rel}: not inspected"));
        let drivers = nix["drivers"].as_object().unwrap();
        assert!(drivers.len() >= 20, "{rel}: {nix}");
        for (name, d) in drivers {
            let inspected = k["rdma_drivers"]["drivers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{rel}: {name} in the Nix report only"));
            assert_eq!(d["state"], inspected["state"], "{rel} {name}: {d}");
        }
        assert_eq!(drivers["rxe"]["state"], "m", "{rel}");
        assert_eq!(
            drivers["siw"]["symbols"]["CONFIG_RDMA_SIW"], "unset",
            "{rel}"
        );
    }
}

/// The verdicts nixpkgs' kernels get at build time (pkgs/kernel-modules/driver-states.py:
/// the series' recipes against the kernel's own .config) are the Rust planner's
/// decisions (`rdma-nix generate`'s per-kernel plans) on every matrix kernel, reason
/// for reason: in the kernel already, restorable, or refused. The per-kernel plans'
/// refusals that come from the offline source subset or the kernel's headers (no
/// .config has them) are left out.
#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn build_time_verdicts_agree_with_the_planner_on_every_matrix_kernel() {
    require("nix-build");
    let names = stdout_ok(&mut common::nix_instantiate_eval(
        "builtins.attrNames (import ./pkgs/offline { }).kernelPackages",
    ));
    let names: Vec<String> = serde_json::from_str(&names).unwrap();
    let out = stdout_ok(nix_build_offline().args([
        "-E",
        "let o = import ./pkgs/offline { }; in map (k: o.kernelPackages.${k}.rdmaDriverStates) (builtins.attrNames o.kernelPackages)",
    ]));
    let plans = stdout_ok(&mut common::nix_instantiate_eval(
        "(import ./pkgs/offline { }).restorePlans.kernels",
    ));
    let plans: serde_json::Value = serde_json::from_str(&plans).unwrap();
    let mut compared = 0;
    for (name, path) in names.iter().zip(out.lines()) {
        let f = PathBuf::from(path).join("rdma-drivers.json");
        let nix: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        for (driver, d) in nix["drivers"].as_object().unwrap() {
            let planned = &plans[name]["drivers"][driver];
            let (verdict, reason) = (d["verdict"].as_str().unwrap(), &d["reason"]);
            let skip = planned["skip"].as_str();
            match (skip, planned["inTree"].as_bool()) {
                (None, _) => assert_eq!(verdict, "restorable", "{name} {driver}: {d}"),
                (Some(s), Some(true)) => {
                    assert_eq!(
                        (verdict, reason.as_str()),
                        ("in-tree", Some(s)),
                        "{name} {driver}"
                    )
                }
                (Some(s), _) if s.contains("source subset lacks") || s.contains("headers lack") => {
                    continue
                }
                (Some(s), _) => {
                    assert_eq!(
                        (verdict, reason.as_str()),
                        ("refused", Some(s)),
                        "{name} {driver}"
                    )
                }
            }
            compared += 1;
        }
    }
    assert!(compared >= names.len() * 20, "{compared} verdicts compared");
}

/// A tarball of `files` (below a top directory `top`), xz-compressed.
fn source_tar_xz(path: &std::path::Path, top: &str, files: &[(&str, &str)]) {
    let f = fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(xz2::write::XzEncoder::new(f, 1));
    for (name, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("{top}/{name}"), text.as_bytes())
            .unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn bad_kernel_sources_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let no_makefile = dir.path().join("no-makefile.tar.xz");
    source_tar_xz(&no_makefile, "linux-9.9", &[("README", "hello\n")]);
    fails_naming(&no_makefile, "not a kernel source tree");

    let bad_kconfig = dir.path().join("bad-kconfig.tar.xz");
    source_tar_xz(
        &bad_kconfig,
        "linux-9.9",
        &[
            ("Makefile", "VERSION = 9\nPATCHLEVEL = 9\nSUBLEVEL = 1\n"),
            (
                "drivers/infiniband/sw/siw/Kconfig",
                "config RDMA_SIW\n\ttristate \"siw\"\nendmenu\n",
            ),
        ],
    );
    fails_naming(&bad_kconfig, "drivers/infiniband/sw/siw/Kconfig: line 3");

    // A good source whose series no given kernel has.
    let lonely = dir.path().join("linux-9.9.tar.xz");
    source_tar_xz(
        &lonely,
        "linux-9.9",
        &[("Makefile", "VERSION = 9\nPATCHLEVEL = 9\nSUBLEVEL = 1\n")],
    );
    fails_naming(&lonely, "no kernel of series 9.9");

    let not_xz = dir.path().join("not.tar.xz");
    fs::write(&not_xz, b"plain text").unwrap();
    fails_naming(&not_xz, "corrupt kernel source tarball");
}

/// The default restore set on 5.10 from its own source: rtrs before rnbd (Kconfig
/// dependency), erdma skipped as absent (newer than 5.10), rxe left to the kernel.
#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn restore_plan_orders_rtrs_before_rnbd_and_skips_what_5_10_lacks() {
    require("nix-store");
    let oldest = common::kernel(&common::roles().oldest);
    let (image, source) = (
        pinned(&oldest.image),
        pinned(&common::source_package(&oldest.name)),
    );
    let r: serde_json::Value = serde_json::from_str(&stdout_ok(
        rdma_nix()
            .args(["kernel", "restore-plan", "--json"])
            .arg(&image)
            .arg(&source)
            .args(["--driver", "rnbd", "--driver", "erdma", "--driver", "rxe"]),
    ))
    .unwrap();
    let k = &r[0];
    assert_eq!(k["release"], common::release_of(&oldest.name));
    let build: Vec<&str> = k["build"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["driver"].as_str().unwrap())
        .collect();
    assert_eq!(build, ["rtrs", "rnbd"], "{k}");
    assert_eq!(k["build"][0]["requested"], false);
    assert_eq!(k["build"][0]["symbols"]["INFINIBAND_RTRS"], "m");
    assert_eq!(k["build"][1]["needs"][0], "rtrs");
    // rnbd's Kbuild includes rtrs's headers from $(srctree): they come with it.
    assert_eq!(k["build"][1]["includes"][0], "drivers/infiniband/ulp/rtrs");
    let skip = |d: &str| {
        k["skip"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["driver"] == d)
            .unwrap_or_else(|| panic!("{d} not skipped: {k}"))
            .clone()
    };
    assert!(skip("erdma")["reason"]
        .as_str()
        .unwrap()
        .contains("not in linux 5.10"));
    assert_eq!(skip("rxe")["in_tree"], true);
}
