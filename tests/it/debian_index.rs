//! Resolving a build root's package closure from a suite's package index: the same
//! packages and versions apt itself would install (no recommends, nothing installed
//! yet), on the machine's real bookworm lists; synthetic indexes for choices and errors.

use std::collections::BTreeSet;
use std::process::Command;

use crate::common::{rdma_nix, require, run, stdout_ok, write};

/// What `apt-get install --simulate` plans on an empty system, without recommends.
fn apt_plan(roots: &[&str]) -> BTreeSet<String> {
    let out = stdout_ok(
        Command::new("apt-get")
            .args([
                "-s",
                "-o",
                "Dir::State::status=/dev/null",
                "-o",
                "APT::Install-Recommends=false",
                "install",
            ])
            .args(roots),
    );
    out.lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next().unwrap();
            let version = w.next().unwrap().trim_start_matches('(');
            format!("{name} {version}")
        })
        .collect()
}

/// "name version" of each package of a `debian resolve --json` closure, in order.
fn name_versions(json: &serde_json::Value) -> Vec<String> {
    json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect()
}

fn ours(roots: &[&str]) -> (BTreeSet<String>, serde_json::Value) {
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(
        rdma_nix()
            .args(["debian", "resolve", "--apt", "--json"])
            .args(roots),
    ))
    .unwrap();
    let set = name_versions(&json).into_iter().collect();
    (set, json)
}

#[test]
#[ignore = "needs apt: the README's test command runs it"]
fn the_closure_is_what_apt_would_install() {
    require("apt-get");
    // rdma-core's build toolchain, and a compiler alone.
    for roots in [
        &["gcc-12", "make"][..],
        &[
            "cmake",
            "ninja-build",
            "pkg-config",
            "python3",
            "libnl-3-dev",
            "libnl-route-3-dev",
            "libudev-dev",
            "gcc",
            "make",
            "perl",
        ][..],
    ] {
        let want = apt_plan(roots);
        let (got, json) = ours(roots);
        assert!(want.len() > 20, "{roots:?}: apt planned {want:?}");
        assert_eq!(got, want, "{roots:?}");
        // Every pin is a pool path with a sha256.
        for p in json["packages"].as_array().unwrap() {
            assert!(p["path"].as_str().unwrap().starts_with("pool/"));
            assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
        }
    }
}

const INDEX: &str = "\
Package: app
Version: 1.0-1
Architecture: amd64
Depends: libfoo (>= 2), awk, gone-lib | libbar
Filename: pool/main/a/app/app_1.0-1_amd64.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000001

Package: libfoo
Version: 1.9-1
Architecture: amd64
Filename: pool/main/libf/libfoo/libfoo_1.9-1_amd64.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000002

Package: libfoo
Version: 2.1-1
Architecture: amd64
Filename: pool/main/libf/libfoo/libfoo_2.1-1_amd64.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000003

Package: mawk
Version: 1.3
Architecture: amd64
Priority: required
Provides: awk
Filename: pool/main/m/mawk/mawk_1.3_amd64.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000004

Package: gawk
Version: 5.2
Architecture: amd64
Priority: optional
Provides: awk
Filename: pool/main/g/gawk/gawk_5.2_amd64.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000005

Package: libbar
Version: 3
Architecture: all
Depends: app (= 1.0-1)
Filename: pool/main/libb/libbar/libbar_3_all.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000006

Package: needs-new
Version: 1
Architecture: amd64
Depends: libfoo (>= 3)
Filename: pool/main/n/needs-new/needs-new_1_amd64.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000007
";

#[test]
fn versions_virtual_packages_alternatives_and_cycles() {
    let d = tempfile::tempdir().unwrap();
    let idx = d.path().join("Packages");
    write(&idx, INDEX.as_bytes());
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(
        rdma_nix()
            .args(["debian", "resolve", "--json", "--index"])
            .arg(&idx)
            .arg("app"),
    ))
    .unwrap();
    let names = name_versions(&json);
    // The newest libfoo that satisfies >= 2; mawk (priority required) for the virtual
    // awk; libbar for the missing first alternative; the cycle back to app is fine.
    assert_eq!(names, ["app 1.0-1", "libbar 3", "libfoo 2.1-1", "mawk 1.3"]);
    let choices = json["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2, "{choices:#?}");
    assert_eq!(choices[0]["chosen"], "mawk");
    assert_eq!(
        choices[0]["candidates"],
        serde_json::json!(["mawk", "gawk"])
    );
    assert_eq!(choices[1]["relation"], "gone-lib | libbar");

    // Unsatisfiable: the package that needs it is named.
    let out = run(rdma_nix()
        .args(["debian", "resolve", "--index"])
        .arg(&idx)
        .arg("needs-new"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs-new 1: no package in the index satisfies libfoo (>= 3)"),
        "{err}"
    );
}

#[test]
fn a_broken_index_is_refused_with_file_line_and_package() {
    let d = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            INDEX.replace("Version: 1.9-1", "Version: x1.9"),
            "line 9: package libfoo: bad Version \"x1.9\"",
        ),
        (
            INDEX.replace("Depends: libfoo (>= 2)", "Depends: libfoo (>= 2"),
            "line 1: package app: Depends: \"libfoo (>= 2\": unbalanced parenthesis",
        ),
        (
            INDEX.replace("Filename: pool/main/m/mawk", "Filename: ../m/mawk"),
            "package mawk: Filename \"../m/mawk/mawk_1.3_amd64.deb\" is not a pool/… path",
        ),
        (INDEX.replace("Size: 10\nSHA256: 0000000000000000000000000000000000000000000000000000000000000005", "Size: 10\nSHA256: 05"), "package gawk: SHA256 \"05\" is not 64 hex digits"),
        (format!("{INDEX}\n garbage\n"), "continuation line before any field"),
    ] {
        let idx = d.path().join("Packages");
        write(&idx, text.as_bytes());
        let out = run(rdma_nix()
            .args(["debian", "resolve", "--index"])
            .arg(&idx)
            .arg("app"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{want}: accepted");
        assert!(
            err.contains(&idx.display().to_string()) && err.contains(want),
            "{want}: {err}"
        );
    }
}

#[test]
fn roots_refresh_deterministically_and_add_packages_all_or_nothing() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path();
    let idx = repo.join("Packages");
    write(&idx, INDEX.as_bytes());
    write(
        &repo.join("roots/tiny.toml"),
        b"suite = \"test\"\nessential = false\npackages = [\"libfoo\"]\n",
    );
    let root_cmd = |args: &[&str]| {
        let mut c = rdma_nix();
        c.arg("root")
            .args(args)
            .arg("--index")
            .arg(&idx)
            .arg("--repo")
            .arg(repo);
        run(&mut c)
    };
    let nix = repo.join("pkgs/generated/roots/tiny.nix");
    let out = root_cmd(&["refresh", "tiny"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = std::fs::read_to_string(&nix).unwrap();
    assert!(
        first.starts_with("# @generated by `rdma-nix root refresh tiny`"),
        "{first}"
    );
    assert!(
        first.contains("libfoo = {\n      version = \"2.1-1\";"),
        "{first}"
    );
    assert!(
        first.contains("url = \"mirror://debian/pool/main/libf/libfoo/libfoo_2.1-1_amd64.deb\";")
    );
    // The same index, the same bytes.
    assert!(root_cmd(&["refresh", "tiny"]).status.success());
    assert_eq!(std::fs::read_to_string(&nix).unwrap(), first);

    // Adding a package the index lacks changes nothing.
    let spec_before = std::fs::read_to_string(repo.join("roots/tiny.toml")).unwrap();
    let out = root_cmd(&["add", "tiny", "no-such-package"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "roots/tiny.toml: the roots: no package in the index satisfies no-such-package"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("roots/tiny.toml")).unwrap(),
        spec_before
    );
    assert_eq!(std::fs::read_to_string(&nix).unwrap(), first);

    // Adding one that resolves updates both.
    assert!(root_cmd(&["add", "tiny", "app"]).status.success());
    let spec = std::fs::read_to_string(repo.join("roots/tiny.toml")).unwrap();
    assert!(spec.contains("packages = [\"app\", \"libfoo\"]"), "{spec}");
    let now = std::fs::read_to_string(&nix).unwrap();
    assert!(
        now.contains("mawk = {") && now.contains("libbar = {"),
        "{now}"
    );

    // A hand-written file in the generated file's place is never overwritten.
    write(&nix, b"{ }\n");
    let out = root_cmd(&["refresh", "tiny"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no @generated header"));
    assert_eq!(std::fs::read_to_string(&nix).unwrap(), "{ }\n");
    // An unknown root is named.
    let out = root_cmd(&["refresh", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("roots/nope.toml: cannot read"));
}

#[test]
fn the_checked_in_roots_pin_every_package_they_list() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // One root per Debian suite of the matrix, each with its own compiler.
    for (root, gcc) in [
        ("bullseye", "gcc-10"),
        ("bookworm", "gcc-12"),
        ("trixie", "gcc-14"),
        ("sid", "gcc-16"),
    ] {
        let spec: toml::Value = toml::from_str(
            &std::fs::read_to_string(repo.join(format!("roots/{root}.toml"))).unwrap(),
        )
        .unwrap();
        assert_eq!(spec["suite"].as_str(), Some(root));
        let nix =
            std::fs::read_to_string(repo.join(format!("pkgs/generated/roots/{root}.nix"))).unwrap();
        assert!(nix.starts_with(&format!("# @generated by `rdma-nix root refresh {root}`")));
        for p in spec["packages"].as_array().unwrap() {
            let p = p.as_str().unwrap();
            assert!(
                nix.contains(&format!("\n    {p} = {{")),
                "{root}: {p} is not pinned"
            );
        }
        // The essential set is in (the spec asks for it), and the suite's compiler.
        for p in ["bash", "coreutils", "dpkg", "tar", gcc] {
            assert!(nix.contains(&format!("\n    {p} = {{")), "{root}: {p}");
        }
    }
}
