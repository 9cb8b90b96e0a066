//! Bad input to every subcommand: a one-line error naming the input, a non-zero
//! exit code, and nothing written.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::{rdma_nix, write};

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

/// A kernel source .tar.xz with the given entries (built in Rust, no tar binary).
fn kernel_tarball(
    dir: &Path,
    name: &str,
    build: impl FnOnce(&mut tar::Builder<Vec<u8>>),
) -> std::path::PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(4);
    h.set_mode(0o644);
    b.append_data(
        &mut h,
        "linux-9.9/drivers/infiniband/sw/siw/siw.h",
        &b"int;"[..],
    )
    .unwrap();
    build(&mut b);
    let tar = b.into_inner().unwrap();
    let path = dir.join(name);
    let mut xz = xz2::write::XzEncoder::new(fs::File::create(&path).unwrap(), 1);
    std::io::Write::write_all(&mut xz, &tar).unwrap();
    xz.finish().unwrap();
    path
}

/// Writes a raw header with any name (tar::Builder refuses `..` and absolute paths).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn hostile_kernel_source_tarballs_extract_nothing() {
    use tar::EntryType::*;
    let dir = tempfile::tempdir().unwrap();
    let siw = "linux-9.9/drivers/infiniband/sw/siw";
    type Build = Box<dyn FnOnce(&mut tar::Builder<Vec<u8>>)>;
    let cases: Vec<(&str, Build, &str)> = vec![
        (
            "climb.tar.xz",
            Box::new(move |b| {
                raw_entry(
                    b,
                    Regular,
                    &format!("{siw}/../../../../../../tmp/x"),
                    None,
                    b"x",
                )
            }),
            "absolute path or `..`",
        ),
        (
            "absolute.tar.xz",
            Box::new(|b| raw_entry(b, Regular, "/etc/rdma-nix-pwned", None, b"x")),
            "absolute path or `..`",
        ),
        (
            "symlink-out.tar.xz",
            Box::new(move |b| {
                raw_entry(b, Symlink, &format!("{siw}/evil"), Some("/etc/passwd"), b"")
            }),
            "links, devices and other special entries",
        ),
        (
            "hardlink-out.tar.xz",
            Box::new(move |b| raw_entry(b, Link, &format!("{siw}/hard"), Some("/etc/shadow"), b"")),
            "links, devices and other special entries",
        ),
        (
            "device.tar.xz",
            Box::new(move |b| raw_entry(b, Char, &format!("{siw}/mem"), None, b"")),
            "links, devices and other special entries",
        ),
        (
            "fifo.tar.xz",
            Box::new(move |b| raw_entry(b, Fifo, &format!("{siw}/pipe"), None, b"")),
            "links, devices and other special entries",
        ),
        (
            "duplicate.tar.xz",
            Box::new(move |b| raw_entry(b, Regular, &format!("{siw}/siw.h"), None, b"again")),
            "listed twice",
        ),
    ];
    for (name, build, msg) in cases {
        let t = kernel_tarball(dir.path(), name, build);
        let out = dir.path().join(format!("out-{name}"));
        fails_with(
            rdma_nix()
                .args(["kernel", "extract-source"])
                .arg(&t)
                .args(["--subdir", "drivers/infiniband/sw/siw", "--out"])
                .arg(&out),
            &[&p(&t), msg],
        );
        assert!(!out.exists(), "{name}: a half-extracted tree was left");
    }
    assert!(!Path::new("/etc/rdma-nix-pwned").exists());

    // A decompression bomb: 64 MiB of zeros (a few KiB of xz) against a 1 MiB ceiling.
    let bomb = kernel_tarball(dir.path(), "bomb.tar.xz", move |b| {
        raw_entry(
            b,
            Regular,
            &format!("{siw}/zeros"),
            None,
            &vec![0u8; 64 << 20],
        )
    });
    assert!(fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let out = dir.path().join("out-bomb");
    fails_with(
        rdma_nix()
            .args(["kernel", "extract-source"])
            .arg(&bomb)
            .args([
                "--subdir",
                "drivers/infiniband/sw/siw",
                "--max-unpacked",
                "1048576",
                "--out",
            ])
            .arg(&out),
        &[&p(&bomb)],
    );
    assert!(!out.exists(), "bomb: a half-extracted tree was left");
}

#[test]
fn stage_records_with_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("stages.jsonl");
    write(
        &f,
        b"{\"stage\":\"fetch\",\"seconds\":3}\n{\"stage\":\"fetch\"}\n",
    );
    fails_with(
        rdma_nix().args(["stages", "--stages", &p(&f)]),
        &[&format!("{}:2", p(&f)), "seconds"],
    );
    let fetch = dir.path().join("fetch.json");
    write(&f, b"{\"stage\":\"fetch\",\"seconds\":3}\n");
    write(&fetch, b"[]");
    fails_with(
        rdma_nix().args(["stages", "--stages", &p(&f), "--fetch-record", &p(&fetch)]),
        &[
            &p(&fetch),
            "not the JSON expected",
            "expected struct FetchTotals",
        ],
    );
}
