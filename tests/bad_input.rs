//! Bad input to every subcommand: a one-line error naming the input, a non-zero
//! exit code, and nothing written.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{rdma_nix, write};

/// Runs the command, expects failure with a single stderr line containing all of `needles`.
fn fails_with(cmd: &mut Command, needles: &[&str]) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{cmd:?} succeeded; stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{cmd:?}: not one line:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{cmd:?}: {err:?} lacks {n:?}");
    }
    assert!(
        out.stdout.is_empty(),
        "{cmd:?} printed to stdout on failure"
    );
    err
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn malformed_drv_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"Derive([("out","/nix/store/sl5khzalfg3gq6axdqlkymppb1825gvw-x","","")],[],[],"x86_64-linux","/bin/sh",[],[("name","x"),("out","/nix/store/sl5khzalfg3gq6axdqlkymppb1825gvw-x")])"#;
    let cases: &[(&str, String, &str)] = &[
        (
            "truncated.drv",
            good[..good.len() - 5].to_string(),
            "malformed derivation",
        ),
        ("garbage.drv", "hello world".into(), "expected \"Derive(\""),
        ("empty.drv", String::new(), "malformed derivation"),
        (
            "unterminated.drv",
            r#"Derive([("out"#.into(),
            "unterminated string",
        ),
        (
            "relative-input.drv",
            good.replace("[],[],\"x86", "[],[\"relative/path\"],\"x86"),
            "not an absolute path",
        ),
        (
            "no-name.drv",
            good.replace("(\"name\",\"x\"),", ""),
            "no \"name\"",
        ),
        ("trailing.drv", format!("{good}\n"), "trailing data"),
        (
            "no-outputs.drv",
            good.replace(
                r#"("out","/nix/store/sl5khzalfg3gq6axdqlkymppb1825gvw-x","","")"#,
                "",
            ),
            "no outputs",
        ),
    ];
    for (name, text, msg) in cases {
        let f = dir.path().join(name);
        fs::write(&f, text).unwrap();
        fails_with(rdma_nix().args(["drv", "show"]).arg(&f), &[&p(&f), msg]);
    }
    let bin = dir.path().join("binary.drv");
    fs::write(&bin, [0xff, 0xfe, 0x00]).unwrap();
    fails_with(rdma_nix().args(["drv", "show"]).arg(&bin), &[&p(&bin)]);
}

#[test]
fn unreadable_paths() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    fails_with(
        rdma_nix().arg("hash").arg(&missing),
        &[&p(&missing), "No such file"],
    );
    fails_with(
        rdma_nix().args(["drv", "show"]).arg(&missing),
        &[&p(&missing)],
    );
    // A FIFO cannot go into a NAR.
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let fifo = tree.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    fails_with(
        rdma_nix().arg("hash").arg(&tree),
        &[&p(&fifo), "unsupported file type"],
    );
}

#[test]
fn bad_hash_strings_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("file");
    write(&f, b"x");
    fails_with(
        rdma_nix()
            .arg("hash")
            .arg(&f)
            .args(["--expect", "sha256:abc"]),
        &["--expect", "\"sha256:abc\"", "3 characters"],
    );
    fails_with(
        rdma_nix().arg("hash").arg(&f).args(["--expect", "md5-abc"]),
        &["--expect"],
    );
    let wrong = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    fails_with(
        rdma_nix()
            .arg("hash")
            .arg("--flat")
            .arg(&f)
            .args(["--expect", wrong]),
        &[&p(&f), "hash mismatch", wrong],
    );
    let pct = dir.path().join("busybox_1%3a1.35.0.deb");
    write(&pct, b"x");
    fails_with(
        rdma_nix().arg("hash").arg("--flat").arg(&pct),
        &[&p(&pct), "'%'", "--name"],
    );
    fails_with(
        rdma_nix().arg("hash").arg("--flat").arg(dir.path()),
        &["--flat needs a regular file"],
    );
}
