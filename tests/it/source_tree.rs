//! Source trees pinned by NAR hash: `scan --json` and `hash --unpack` report the hash
//! of the tree a tarball unpacks to (top directory stripped), one pin accepts two
//! different tarballs of the same tree, the hash is the one the real `nix-hash` gives
//! for the tree `tar` unpacks, and `rdma-nix fetch` refuses a tree that doesn't match.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{pinned, rdma_nix, require, run, stdout_ok};
use rdma_nix::manifest::Manifest;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn tree_pin(package: &str) -> String {
    let m = Manifest::load(None).unwrap();
    m.package(package).unwrap().tree.clone().unwrap()
}

/// The same entries in reverse order, below `top` instead of the original top
/// directory, xz-compressed.
fn repack_reversed_xz(from: &Path, to: &Path, top: &str) {
    let f = fs::File::open(from).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut all = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let kind = e.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let path = e.path().unwrap().into_owned();
        let rest: PathBuf = path.components().skip(1).collect();
        let link = e.link_name().unwrap().map(|l| l.into_owned());
        let mode = e.header().mode().unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        all.push((kind, rest, link, mode, data));
    }
    all.reverse();
    let xz = xz2::write::XzEncoder::new(fs::File::create(to).unwrap(), 1);
    let mut b = tar::Builder::new(xz);
    for (kind, rest, link, mode, data) in all {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        let path = Path::new(top).join(&rest);
        match link {
            Some(l) => b.append_link(&mut h, &path, l).unwrap(),
            None => b.append_data(&mut h, &path, data.as_slice()).unwrap(),
        }
    }
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

fn scan_json(tarball: &Path) -> serde_json::Value {
    serde_json::from_str(&stdout_ok(rdma_nix().args(["scan", "--json"]).arg(tarball))).unwrap()
}

/// What the real nix-hash says of the tree GNU tar unpacks from `tarball`.
fn nix_hash_of_unpacked(tarball: &Path, work: &Path) -> String {
    let dir = work.join(format!(
        "unpacked-{}",
        tarball.file_name().unwrap().to_string_lossy()
    ));
    fs::create_dir_all(&dir).unwrap();
    stdout_ok(
        Command::new("tar")
            .arg("xf")
            .arg(tarball)
            .arg("-C")
            .arg(&dir),
    );
    let top: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(top.len(), 1, "{top:?}");
    let base32 = stdout_ok(
        Command::new("nix-hash")
            .args(["--type", "sha256", "--base32"])
            .arg(&top[0]),
    );
    rdma_nix::nix::NixHash::parse(&format!("sha256:{base32}"), None)
        .unwrap()
        .to_sri()
}

#[test]
#[ignore = "needs the fetched inputs: the README's test command runs it"]
fn one_pin_accepts_two_tarballs_of_the_same_tree() {
    let debian = pinned("rdma-core-65.0-orig");
    let d = tempfile::tempdir().unwrap();
    let repacked = d.path().join("rdma-core-65.0.tar.xz");
    repack_reversed_xz(&debian, &repacked, "rdma-core-65.0");

    let a = scan_json(&debian);
    let b = scan_json(&repacked);
    // Different bytes, top directory, compression and entry order …
    assert_ne!(a["sha256"], b["sha256"]);
    assert_eq!(a["top_dir"], "linux-rdma-rdma-core-58e4080");
    assert_eq!(b["top_dir"], "rdma-core-65.0");
    // … one tree, the one stack.toml pins (and nixpkgs' fetchFromGitHub of v65.0).
    let pin = tree_pin("rdma-core-65.0-orig");
    assert_eq!(a["tree"]["nar_hash"], pin.as_str());
    assert_eq!(b["tree"]["nar_hash"], pin.as_str());
    assert_eq!(a["tree"]["nar_size"], b["tree"]["nar_size"]);
    assert!(a["tree"]["nar_size"].as_u64().unwrap() > 1_000_000);

    // `hash --unpack --expect PIN` accepts both, and names the store path fetchzip
    // (and nixpkgs' fetchFromGitHub, name "source") gives the tree.
    let mut paths = Vec::new();
    for t in [&debian, &repacked] {
        let j: serde_json::Value = serde_json::from_str(&stdout_ok(
            rdma_nix()
                .args(["hash", "--unpack", "--json", "--expect", &pin])
                .arg(t),
        ))
        .unwrap();
        paths.push(j["store_path"].as_str().unwrap().to_string());
    }
    assert_eq!(paths[0], paths[1]);
    assert!(paths[0].ends_with("-source"), "{}", paths[0]);

    // A different tree is refused, both hashes named.
    let other = pinned("rdma-core-56.1-orig");
    let out = run(rdma_nix()
        .args(["hash", "--unpack", "--expect", &pin])
        .arg(&other));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hash mismatch")
            && err.contains(&pin)
            && err.contains(&tree_pin("rdma-core-56.1-orig")),
        "{err}"
    );
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn tree_hash_is_what_nix_hash_gives_the_unpacked_tree() {
    require("nix-hash");
    require("tar");
    let d = tempfile::tempdir().unwrap();
    // Real trees: both rdma-core releases and perftest.
    for name in [
        "rdma-core-65.0-orig",
        "rdma-core-56.1-orig",
        "perftest-orig",
    ] {
        let t = pinned(name);
        assert_eq!(nix_hash_of_unpacked(&t, d.path()), tree_pin(name), "{name}");
    }
    // A synthetic tree with what source tarballs rarely hold: executables, symlinks, a
    // hard link, directories only implied by their files, names whose byte order
    // differs from their path order (`a-b` < `a/…` as paths, `a` < `a-b` as names),
    // a directory listed after its contents, an empty directory, a long name.
    let t = d.path().join("edge.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            fs::File::create(&t).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        let long = format!("top/{}/f", "n".repeat(120));
        type Edge<'a> = (&'a str, tar::EntryType, u32, &'a [u8], Option<&'a str>);
        let files: Vec<Edge> = vec![
            ("top/a-b", tar::EntryType::Regular, 0o644, b"dash\n", None),
            (
                "top/a/x.sh",
                tar::EntryType::Regular,
                0o755,
                b"#!/bin/sh\n",
                None,
            ),
            (
                "top/a/link",
                tar::EntryType::Symlink,
                0o777,
                b"",
                Some("x.sh"),
            ),
            (
                "top/a/hard",
                tar::EntryType::Link,
                0o644,
                b"",
                Some("top/a-b"),
            ),
            ("top/a", tar::EntryType::Directory, 0o755, b"", None),
            ("top/empty", tar::EntryType::Directory, 0o700, b"", None),
            ("top/b", tar::EntryType::Regular, 0o600, b"", None),
            (
                long.as_str(),
                tar::EntryType::Regular,
                0o640,
                b"long\n",
                None,
            ),
        ];
        for (p, kind, mode, data, link) in files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            match link {
                Some(l) => b.append_link(&mut h, p, l).unwrap(),
                None => b.append_data(&mut h, p, data).unwrap(),
            }
        }
        b.into_inner().unwrap().finish().unwrap().flush().unwrap();
    }
    let ours: serde_json::Value = serde_json::from_str(&stdout_ok(
        rdma_nix().args(["hash", "--unpack", "--json"]).arg(&t),
    ))
    .unwrap();
    assert_eq!(ours["hash"], nix_hash_of_unpacked(&t, d.path()).as_str());
}

#[test]
fn broken_trees_are_refused_with_the_file_and_entry_named() {
    let d = tempfile::tempdir().unwrap();
    type Entry<'a> = (&'a str, tar::EntryType, &'a [u8], Option<&'a str>);
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "twice.tar.gz",
            vec![
                ("t/f", tar::EntryType::Regular, b"1", None),
                ("t/f", tar::EntryType::Regular, b"2", None),
            ],
            "t/f: listed twice",
        ),
        (
            "two-tops.tar.gz",
            vec![
                ("t/f", tar::EntryType::Regular, b"1", None),
                ("u/f", tar::EntryType::Regular, b"2", None),
            ],
            "u/f: outside the top-level directory",
        ),
        (
            "file-parent.tar.gz",
            vec![
                ("t/f", tar::EntryType::Regular, b"1", None),
                ("t/f/g", tar::EntryType::Regular, b"2", None),
            ],
            "t/f/g: \"f\" is a file but also a parent directory",
        ),
        (
            "dangling-hard.tar.gz",
            vec![("t/h", tar::EntryType::Link, b"", Some("t/missing"))],
            "t/h: hard link to \"t/missing\", which is not a file listed before it",
        ),
        (
            "fifo.tar.gz",
            vec![("t/p", tar::EntryType::Fifo, b"", None)],
            "t/p: device, fifo or unknown entry type",
        ),
    ];
    for (name, entries, want) in cases {
        let t = d.path().join(name);
        let gz = flate2::write::GzEncoder::new(
            fs::File::create(&t).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (p, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            match link {
                Some(l) => b.append_link(&mut h, p, l).unwrap(),
                None => b.append_data(&mut h, p, data).unwrap(),
            }
        }
        b.into_inner().unwrap().finish().unwrap().flush().unwrap();
        let out = run(rdma_nix().args(["hash", "--unpack"]).arg(&t));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} accepted");
        assert!(
            err.contains(&t.display().to_string()) && err.contains(want),
            "{name}: {err}"
        );
    }
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn fetch_refuses_a_tree_that_does_not_match_its_pin() {
    let _ = pinned("rdma-core-56.1-orig");
    require("nix-store");
    // The 56.1 tarball pinned with another tree's hash: a tree nobody has added, so
    // fetch unpacks and hashes it, and refuses before adding anything.
    let lock = fs::read_to_string(Path::new(REPO).join("stack.lock")).unwrap();
    let wrong = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let real = tree_pin("rdma-core-56.1-orig");
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("stack.toml");
    fs::copy(Path::new(REPO).join("stack.toml"), &m).unwrap();
    fs::write(d.path().join("stack.lock"), lock.replace(&real, wrong)).unwrap();
    let out = run(rdma_nix()
        .args(["fetch", "--only", "rdma-core-56.1-orig", "--manifest"])
        .arg(&m));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("rdma-core-56.1-orig tree") && err.contains(wrong) && err.contains(&real),
        "{err}"
    );
}

#[test]
fn package_files_build_the_trees_the_lock_pins() {
    // perftest's package file reads its source from the generated file the lock's
    // pin makes; it must be the tree the lock pins and fetch adds.
    let perftest = fs::read_to_string(Path::new(REPO).join("pkgs/generated/perftest.nix")).unwrap();
    let pin = tree_pin("perftest-orig");
    assert!(perftest.contains(&format!("hash = \"{pin}\";")), "{pin}");
    // The generated rdma-core sources carry the tree pin, upstream's URL first.
    let gen =
        fs::read_to_string(Path::new(REPO).join("pkgs/generated/rdma-core/65.0.nix")).unwrap();
    assert!(gen.contains(&tree_pin("rdma-core-65.0-orig")));
    let up = gen
        .find("https://github.com/linux-rdma/rdma-core/archive/v65.0.tar.gz")
        .unwrap();
    let deb = gen
        .find("mirror://debian/pool/main/r/rdma-core/rdma-core_65.0.orig.tar.gz")
        .unwrap();
    assert!(up < deb);
}
