//! Parity with the real `nix` binary: NAR hashes, store paths, .drv bytes and paths.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::common::{rdma_nix, require, stdout_ok, write};
use rdma_nix::nix::{Derivation, DrvHasher};

/// A tree with the things that make NAR serialisation go wrong: sort order, odd
/// names, empty directories and files, executables, symlinks, a large file.
fn odd_tree(root: &Path) {
    write(&root.join("a"), b"hello");
    write(&root.join("B"), b"upper case sorts first");
    write(&root.join("a.b"), b"");
    write(&root.join("a-b"), b"dash");
    write(&root.join("-leading dash"), b"x");
    write(&root.join("sp ace/ünïcødé ✓"), b"unicode");
    write(
        &root.join("nested/deeper/deepest/file"),
        &vec![0x5a; 200_003],
    );
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::create_dir_all(root.join("nested/empty")).unwrap();
    write(&root.join("bin/tool"), b"#!/bin/sh\necho hi\n");
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    write(&root.join("readonly"), b"ro");
    fs::set_permissions(root.join("readonly"), fs::Permissions::from_mode(0o444)).unwrap();
    symlink("a", root.join("rel-link")).unwrap();
    symlink("/does/not/exist", root.join("dangling")).unwrap();
    symlink("nested/deeper", root.join("dir-link")).unwrap();
}

fn json_of(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_str(&stdout_ok(cmd)).unwrap()
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn nar_hash_and_store_path_match_nix() {
    require("nix-store");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("odd-tree");
    odd_tree(&root);
    let ours = json_of(rdma_nix().arg("hash").arg(&root).arg("--json"));
    let nix_hash = stdout_ok(
        Command::new("nix-hash")
            .args(["--type", "sha256"])
            .arg(&root),
    );
    assert_eq!(ours["base16"], nix_hash.as_str());
    let added = stdout_ok(Command::new("nix-store").arg("--add").arg(&root));
    assert_eq!(ours["store_path"], added.as_str());
    let info = json_of(
        Command::new("nix")
            .args([
                "--extra-experimental-features",
                "nix-command",
                "path-info",
                "--json",
            ])
            .arg(&added),
    );
    assert_eq!(ours["nar_size"], info[0]["narSize"]);
    assert_eq!(ours["nar_hash"], info[0]["narHash"]);

    // A single file and a single symlink are NARs too.
    for single in ["a", "bin/tool", "rel-link"] {
        let p = root.join(single);
        let ours = json_of(rdma_nix().arg("hash").arg(&p).arg("--json"));
        let theirs = stdout_ok(Command::new("nix-hash").args(["--type", "sha256"]).arg(&p));
        assert_eq!(ours["base16"], theirs.as_str(), "{single}");
    }
}

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn flat_hash_matches_add_fixed() {
    require("nix-store");
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in [
        ("empty", &b""[..]),
        ("data.bin", &[7u8; 70_000][..]),
        ("x_1.2+deb12_amd64.deb", b"deb"),
    ] {
        let p = dir.path().join(name);
        write(&p, data);
        let ours = json_of(rdma_nix().arg("hash").arg("--flat").arg(&p).arg("--json"));
        let added = stdout_ok(
            Command::new("nix-store")
                .args(["--add-fixed", "sha256"])
                .arg(&p),
        );
        assert_eq!(ours["store_path"], added.as_str(), "{name}");
        let sha = stdout_ok(Command::new("sha256sum").arg(&p));
        assert_eq!(ours["base16"], &sha[..64]);
    }
    // --name gives the store name independent of the file name.
    let p = dir.path().join("data.bin");
    let renamed = dir.path().join("other-name");
    fs::copy(&p, &renamed).unwrap();
    let ours = json_of(
        rdma_nix()
            .args(["hash", "--flat", "--name", "other-name", "--json"])
            .arg(&p),
    );
    let added = stdout_ok(
        Command::new("nix-store")
            .args(["--add-fixed", "sha256"])
            .arg(&renamed),
    );
    assert_eq!(ours["store_path"], added.as_str());
}

const DRVS: &str = r#"
let
  sys = "x86_64-linux";
  dep = derivation { name = "dep"; system = sys; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
  fixed = derivation { name = "fixed"; system = sys; builder = "/bin/sh"; args = [ "-c" "x" ];
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; };
  fixedRec = derivation { name = "fixed-rec"; system = sys; builder = "/bin/sh"; args = [ "-c" "x" ];
    outputHashMode = "recursive";
    outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; };
  twoOut = derivation { name = "two-out"; system = sys; builder = "/bin/sh"; outputs = [ "a" "b" ]; };
  src = builtins.toFile "src.txt" "source";
in {
  plain = derivation { name = "plain"; system = sys; builder = "/bin/sh";
    args = [ "-c" "echo \"q\\b\"\n\ttab\r" ]; weird = "\${x} \" \\ \n ünï"; };
  multi = derivation { name = "multi"; system = sys; builder = "/bin/sh"; outputs = [ "out" "dev" "lib" ]; };
  inputs = derivation { name = "inputs"; system = sys; builder = "/bin/sh";
    args = [ "-c" "${dep} ${fixed} ${fixedRec} ${src} ${twoOut.b} ${twoOut.a}" ]; };
  inherit fixed fixedRec;
}
"#;

#[test]
#[ignore = "needs Nix: the README's test command runs it"]
fn derivations_match_nix_instantiate() {
    require("nix-instantiate");
    let dir = tempfile::tempdir().unwrap();
    let expr = dir.path().join("drvs.nix");
    fs::write(&expr, DRVS).unwrap();
    for attr in ["plain", "multi", "inputs", "fixed", "fixedRec"] {
        let drv_path = stdout_ok(
            Command::new("nix-instantiate")
                .arg(&expr)
                .args(["-A", attr]),
        );
        let bytes = fs::read_to_string(&drv_path).unwrap();
        let drv = Derivation::parse(&bytes).unwrap();
        // The serialiser reproduces the file byte for byte, and the path.
        assert_eq!(drv.to_aterm(), bytes, "{attr}: ATerm bytes");
        assert_eq!(
            drv.drv_path().unwrap().to_string(),
            drv_path,
            "{attr}: .drv path"
        );
        // Output paths computed from scratch equal Nix's.
        let mut blank = drv.clone();
        for (name, o) in blank.outputs.iter_mut() {
            o.path.clear();
            blank.env.insert(name.clone(), String::new());
        }
        blank
            .fill_output_paths(&mut DrvHasher::from_store())
            .unwrap();
        assert_eq!(blank, drv, "{attr}: output paths");
        // `drv show --json` equals `nix show-derivation`.
        let ours = json_of(rdma_nix().args(["drv", "show", "--json", &drv_path]));
        let theirs = json_of(Command::new("nix").args([
            "--extra-experimental-features",
            "nix-command",
            "show-derivation",
            &drv_path,
        ]));
        assert_eq!(ours, theirs, "{attr}: show-derivation JSON");
    }
}
