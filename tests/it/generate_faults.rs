//! `generate` under faults: killed mid-run (at every rename, and by `kill -9` at
//! several moments), and two runs at once on the same output. Every file is always
//! either the previous version or the new one, whole; temporaries a killed run left
//! are swept by the next run.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common;
use crate::common::{pinned, rdma_nix, require, stdout_ok};

type Tree = BTreeMap<PathBuf, Vec<u8>>;

fn snapshot(root: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().unwrap() != ".rdma-nix-generate.lock" {
                out.insert(
                    p.strip_prefix(root).unwrap().into(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut t = Tree::new();
    if root.exists() {
        walk(root, root, &mut t);
    }
    t
}

/// Two manifests whose outputs differ in several files: the default, and a copy with
/// one kernel fewer and the other rdma-core release as default.
struct Fixture {
    a: PathBuf,
    b: PathBuf,
    tree_a: Tree,
    tree_b: Tree,
}

fn generate(manifest: &Path, out: &Path) -> Command {
    let mut c = rdma_nix();
    c.arg("generate")
        .arg("--manifest")
        .arg(manifest)
        .arg("--out")
        .arg(out);
    c
}

/// The fixture, made once for the three tests (two whole runs of the generator), in
/// cargo's per-target temporary directory, made anew by each test run.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(make_fixture)
}

fn make_fixture() -> Fixture {
    require("nix-store");
    pinned("rdma-core-65.0-orig");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("generate-faults");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    let a = repo.join("stack.toml");
    // B: the lock without one kernel (the first of the series with most of them) …
    let lock = std::fs::read_to_string(repo.join("stack.lock")).unwrap();
    let m = rdma_nix::manifest::Manifest::load(Some(&a)).unwrap();
    let dropped = &m
        .kernels
        .iter()
        .find(|k| k.series.as_deref() == Some("6.1"))
        .unwrap()
        .name;
    std::fs::write(
        dir.join("stack.lock"),
        common::without_kernel(&lock, dropped),
    )
    .unwrap();
    // … and the other rdma-core release as the default.
    let intent = std::fs::read_to_string(&a).unwrap();
    let b_text = intent.replacen("default = true\n", "", 1).replacen(
        "source = \"rdma-core-56.1-orig\"\n",
        "source = \"rdma-core-56.1-orig\"\ndefault = true\n",
        1,
    );
    let b = dir.join("stack.toml");
    std::fs::write(&b, b_text).unwrap();
    let (out_a, out_b) = (dir.join("ref-a"), dir.join("ref-b"));
    stdout_ok(&mut generate(&a, &out_a));
    stdout_ok(&mut generate(&b, &out_b));
    let (tree_a, tree_b) = (snapshot(&out_a), snapshot(&out_b));
    let differing = tree_a
        .iter()
        .filter(|(p, d)| tree_b.get(*p) != Some(d))
        .count();
    assert!(
        differing >= 3,
        "the two manifests should differ in several files"
    );
    Fixture {
        a,
        b,
        tree_a,
        tree_b,
    }
}

/// Each file is A's or B's, whole; returns how many are B's where they differ.
fn check_whole(f: &Fixture, out: &Path) -> usize {
    let t = snapshot(out);
    let mut from_b = 0;
    for (p, data) in &t {
        let name = p.file_name().unwrap().to_string_lossy();
        if name.contains(".tmp-") {
            continue; // a killed run's temporary: swept by the next run
        }
        let (a, b) = (f.tree_a.get(p), f.tree_b.get(p));
        assert!(
            a == Some(data) || b == Some(data),
            "{} is neither the previous nor the new version",
            p.display()
        );
        if a != b && b == Some(data) {
            from_b += 1;
        }
    }
    for p in f.tree_a.keys() {
        assert!(t.contains_key(p), "{} vanished", p.display());
    }
    from_b
}

/// Puts `out` back to a finished run's output (the tree and nothing else), as a whole
/// run of the generator would leave it: the state each kill starts from. The first
/// round of each test starts from a real run instead.
fn reset_to(out: &Path, tree: &Tree) {
    if out.exists() {
        std::fs::remove_dir_all(out).unwrap();
    }
    for (p, data) in tree {
        let p = out.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

fn no_temporaries(out: &Path) {
    let left: Vec<_> = snapshot(out)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn a_run_killed_at_any_rename_leaves_every_file_whole() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let changed = f
        .tree_a
        .iter()
        .filter(|(p, d)| f.tree_b.get(*p) != Some(d))
        .count();
    stdout_ok(&mut generate(&f.a, &out));
    for n in 0..changed {
        if n > 0 {
            reset_to(&out, &f.tree_a);
        }
        no_temporaries(&out);
        assert_eq!(snapshot(&out), f.tree_a);
        let status = generate(&f.b, &out)
            .env("RDMA_NIX_TEST_KILL_AFTER_RENAMES", n.to_string())
            .output()
            .unwrap()
            .status;
        assert_eq!(status.signal(), Some(SIGABRT), "run {n} wasn't killed");
        assert_eq!(check_whole(f, &out), n, "after {n} renames");
    }
    // The next complete run finishes the job and sweeps the temporaries.
    stdout_ok(&mut generate(&f.b, &out));
    no_temporaries(&out);
    assert_eq!(snapshot(&out), f.tree_b);
}

/// The signal `std::process::abort` raises (the test hook's "kill").
const SIGABRT: i32 = 6;

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn kill_9_at_several_moments_never_leaves_a_partial_file() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    stdout_ok(&mut generate(&f.a, &out));
    for delay_ms in [0u64, 50, 200, 400, 700, 1000, 1300, 1600] {
        reset_to(&out, &f.tree_a);
        let mut child = generate(&f.b, &out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        check_whole(f, &out);
    }
    stdout_ok(&mut generate(&f.b, &out));
    no_temporaries(&out);
    assert_eq!(snapshot(&out), f.tree_b);
}

#[test]
#[ignore = "needs Nix and the fetched inputs: the README's test command runs it"]
fn concurrent_runs_leave_one_runs_output_whole() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for round in 0..4 {
        let children: Vec<_> = [&f.a, &f.b, &f.a, &f.b]
            .iter()
            .map(|m| {
                generate(m, &out)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let t = snapshot(&out);
        assert!(
            t == f.tree_a || t == f.tree_b,
            "round {round}: the output mixes the two runs"
        );
    }
}
