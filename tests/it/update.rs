//! `rdma-nix update` against Debian's real archive: a tampered index is refused with
//! nothing written, and the kABI decision for real kernel packages (a reuse where
//! every imported CRC matches, a rebuild naming the symbols where one differs).

use std::fs;
use std::path::{Path, PathBuf};

use crate::common;
use crate::common::{pinned, rdma_nix, require, run};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A copy of the repository (its files as git sees them: the package set `update`
/// builds the kABI reference modules with) with the intent edited by `edit` and the
/// lock by `edit_lock`, in a new directory.
fn repo_copy(
    edit: impl Fn(String) -> String,
    edit_lock: impl Fn(String) -> String,
) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    common::copy_tree(d.path());
    let read = |f: &str| fs::read_to_string(Path::new(REPO).join(f)).unwrap();
    fs::write(d.path().join("stack.toml"), edit(read("stack.toml"))).unwrap();
    fs::write(d.path().join("stack.lock"), edit_lock(read("stack.lock"))).unwrap();
    d
}

/// What the update tests need: nix's store with the pinned inputs, gpgv, apt.
fn ready() {
    require("nix-store");
    require("gpgv");
    require("apt-get");
    pinned("debian-archive-keyring");
}

/// The 6.1 series read from bookworm-security alone.
fn security_only(intent: String) -> String {
    let from = "suites = [\"bookworm\", \"bookworm-updates\", \"bookworm-security\"]";
    assert!(
        intent.contains(from),
        "stack.toml's 6.1 series changed: {from}"
    );
    intent.replace(from, "suites = [\"bookworm-security\"]")
}

/// A local mirror of bookworm-security's InRelease and main Packages.xz, copied from
/// apt's mirror.
fn local_mirror(dir: &Path) -> PathBuf {
    let root = dir.join("mirror");
    let dists = root.join("dists/bookworm-security");
    let mirrors = rdma_nix::fetch::apt_mirrors().expect("apt's mirrors");
    let mut got = false;
    for m in &mirrors {
        let inrelease = dists.join("InRelease");
        fs::create_dir_all(&dists).unwrap();
        if rdma_nix::fetch::apt_download(
            &format!("{m}/dists/bookworm-security/InRelease"),
            &inrelease,
        )
        .is_err()
        {
            continue;
        }
        for sub in ["main", "updates/main"] {
            let f = dists.join(sub).join("binary-amd64/Packages.xz");
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            let url = format!("{m}/dists/bookworm-security/main/binary-amd64/Packages.xz");
            rdma_nix::fetch::apt_download(&url, &f).unwrap();
        }
        got = true;
        break;
    }
    assert!(got, "no mirror of apt's has bookworm-security: {mirrors:?}");
    root
}

fn update_with_mirror(dir: &Path, mirror: &Path) -> std::process::Output {
    run(rdma_nix()
        .current_dir(dir)
        .args(["update", "--series", "6.1", "--allow-expired", "--mirror"])
        .arg(format!("file://{}", mirror.display())))
}

#[test]
#[ignore = "needs Nix, apt and the fetched inputs: the README's test command runs it"]
fn a_tampered_index_is_refused_naming_it_and_nothing_is_written() {
    ready();
    let d = repo_copy(security_only, |l| l);
    let mirror = local_mirror(d.path());
    let lock_before = fs::read(d.path().join("stack.lock")).unwrap();
    let generated_before = generated(d.path());
    let dists = mirror.join("dists/bookworm-security");

    // The untouched mirror is read and verified (so the refusals below are the
    // tampering's): the lock already has the newest 6.1 ABI.
    let ok = update_with_mirror(d.path(), &mirror);
    let (out, err) = (
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr),
    );
    assert!(ok.status.success(), "{err}");
    assert!(
        err.contains("bookworm-security: InRelease … verified"),
        "{err}"
    );
    assert!(out.contains("the lock is up to date"), "{out}");

    // A Packages.xz one byte longer than the signed Release says.
    let packages: Vec<PathBuf> = ["main", "updates/main"]
        .iter()
        .map(|s| dists.join(s).join("binary-amd64/Packages.xz"))
        .collect();
    let original = fs::read(&packages[0]).unwrap();
    for p in &packages {
        let mut bytes = original.clone();
        bytes.push(0);
        fs::write(p, bytes).unwrap();
    }
    let o = update_with_mirror(d.path(), &mirror);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("bookworm-security/")
            && err.contains("binary-amd64/Packages.xz: does not match its signed Release"),
        "{err}"
    );
    for p in &packages {
        fs::write(p, &original).unwrap();
    }

    // An InRelease whose signed text was changed (one more package file listed).
    let inrelease = dists.join("InRelease");
    let text = fs::read_to_string(&inrelease).unwrap();
    let forged = text.replacen(
        "SHA256:\n",
        "SHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 1 main/x\n",
        1,
    );
    assert_ne!(forged, text);
    fs::write(&inrelease, forged).unwrap();
    let o = update_with_mirror(d.path(), &mirror);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("bookworm-security/InRelease: signature not verified by"),
        "{err}"
    );

    // Nothing was written: the lock and the generated files as they were.
    assert_eq!(fs::read(d.path().join("stack.lock")).unwrap(), lock_before);
    assert_eq!(generated(d.path()), generated_before);
}

/// Every file of pkgs/generated/, by its path there, with its bytes' length and hash
/// (short enough to compare in an assertion).
fn generated(dir: &Path) -> Vec<(PathBuf, usize, u64)> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let root = dir.join("pkgs/generated");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = fs::read(&p).unwrap();
                let mut h = DefaultHasher::new();
                bytes.hash(&mut h);
                let rel = p.strip_prefix(&root).unwrap().to_path_buf();
                files.push((rel, bytes.len(), h.finish()));
            }
        }
    }
    files.sort();
    files
}

/// The changelog's entry for a kernel, from `update --json`.
fn abi<'a>(log: &'a serde_json::Value, kernel: &str) -> &'a serde_json::Value {
    log["series"][0]["abis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kernel"] == kernel)
        .unwrap_or_else(|| panic!("{kernel} not in the changelog: {log:#}"))
}

#[test]
#[ignore = "needs Nix, apt and the fetched inputs: the README's test command runs it"]
fn kabi_reuse_where_every_import_matches_and_a_rebuild_naming_the_symbols_where_one_differs() {
    ready();
    // The lock without 6.1.0-57 (the same symbols as 6.1.0-55's build: reused) and
    // asked to keep 6.1.0-54 (an older ABI: rebuilt, no build of the series loading).
    let d = repo_copy(
        |i| {
            i.replace(
                "keep_abis = [\"6.1.0-47\"",
                "keep_abis = [\"6.1.0-54\", \"6.1.0-47\"",
            )
        },
        |l| common::without_kernel(&l, "debian-6.1.0-57"),
    );
    let o = run(rdma_nix().current_dir(d.path()).args([
        "update",
        "--dry-run",
        "--json",
        "--series",
        "6.1",
        "--allow-expired",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    let new = abi(&log, "debian-6.1.0-57");
    assert_eq!(new["status"], "added", "{new:#}");
    let modules = new["modules"].as_array().unwrap();
    assert!(modules.len() >= 2, "{new:#}");
    for m in modules {
        assert_eq!(m["reuse"], "debian-6.1.0-55", "{m:#}");
        assert!(
            m["reason"].as_str().unwrap().contains("have the same CRC"),
            "{m:#}"
        );
    }

    let old = abi(&log, "debian-6.1.0-54");
    assert_eq!(old["status"], "added", "{old:#}");
    let rebuilt: Vec<&serde_json::Value> = old["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["reuse"].is_null())
        .collect();
    // Each rebuild says why the 6.1.0-55 build (among the others of the series) doesn't
    // load: imported symbols whose CRC differs, named, or a driver it links against
    // (rnbd on rtrs) not reused.
    assert!(!rebuilt.is_empty(), "{old:#}");
    let mut named = 0;
    for m in &rebuilt {
        let reason = m["reason"].as_str().unwrap();
        assert!(reason.contains("debian-6.1.0-55: "), "{m:#}");
        let of_55 = reason.split("debian-6.1.0-55: ").nth(1).unwrap();
        if let Some((_, symbols)) = of_55.split_once(" imported symbols differ: ") {
            assert!(
                !symbols.split(", ").next().unwrap_or("").is_empty(),
                "{m:#}"
            );
            named += 1;
        } else {
            assert!(of_55.starts_with("needs "), "{m:#}");
        }
    }
    assert!(named >= 1, "{old:#}");
    // Nothing written by a dry run.
    assert_eq!(generated(d.path()), generated(Path::new(REPO)));
    let lock = fs::read_to_string(d.path().join("stack.lock")).unwrap();
    assert!(!lock.contains("debian-6.1.0-54"));

    // --check: the lock is behind, exit 2 for a scheduled job, and still nothing written.
    let o = run(rdma_nix().current_dir(d.path()).args([
        "update",
        "--check",
        "--series",
        "6.1",
        "--allow-expired",
    ]));
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        fs::read_to_string(d.path().join("stack.lock")).unwrap(),
        lock
    );
}

/// `--roots` re-resolves a series' build root from the suites read (its security
/// suite included): a dry run reports it and writes nothing; a run writes the root's
/// pins when they changed, and a second run finds nothing more to change.
#[test]
#[ignore = "needs Nix, apt and the fetched inputs: the README's test command runs it"]
fn roots_are_refreshed_only_on_request_and_a_second_run_changes_nothing() {
    ready();
    let d = repo_copy(|i| i, |l| l);
    let root_file = d.path().join("pkgs/generated/roots/trixie.nix");
    let before = fs::read(&root_file).unwrap();
    let update = |extra: &[&str]| {
        let o = run(rdma_nix()
            .current_dir(d.path())
            .args([
                "update",
                "--roots",
                "--series",
                "6.12",
                "--allow-expired",
                "--json",
            ])
            .args(extra));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let dry = update(&["--dry-run"]);
    let root = &dry["roots"][0];
    assert_eq!(root["name"], "trixie", "{dry:#}");
    assert!(root["packages"].as_u64().unwrap() > 100, "{root:#}");
    assert_eq!(fs::read(&root_file).unwrap(), before, "a dry run wrote");

    let first = update(&[]);
    let changed = first["roots"][0]["changed"].as_array().unwrap().len();
    let wrote_root = first["written"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .unwrap()
            .ends_with("pkgs/generated/roots/trixie.nix")
    });
    assert_eq!(wrote_root, changed > 0, "{first:#}");
    assert_eq!(fs::read(&root_file).unwrap() != before, changed > 0);
    let second = update(&[]);
    assert_eq!(
        second["roots"][0]["changed"],
        serde_json::json!([]),
        "{second:#}"
    );
    assert_eq!(second["written"], serde_json::json!([]), "{second:#}");
}

/// `[upstream]`: perftest's pin moves to the newest release of the suites (sid), and
/// the newest rdma-core release there is added beside the pinned ones when it is none
/// of them (here the intent pins only 56.1): a dry run reports both and writes
/// nothing; a run writes the lock (`[[tracked_rdma_core]]`), perftest's source and the
/// release's package set; a second run brings nothing.
#[test]
#[ignore = "needs Nix, apt and the fetched inputs: the README's test command runs it"]
fn upstream_releases_are_tracked_from_the_suites_source_packages() {
    ready();
    let d = repo_copy(
        |i| {
            let start = i.find("[[rdma_core]]\nversion = \"65.0\"").unwrap();
            let end = start + i[start..].find("\n\n").unwrap() + 2;
            format!("{}{}", &i[..start], &i[end..]).replace(
                "source = \"rdma-core-56.1-orig\"\n",
                "source = \"rdma-core-56.1-orig\"\ndefault = true\n",
            )
        },
        |l| l.replace("version = \"25.01.0+0.80\"", "version = \"25.01.0+0.79\""),
    );
    let update = |extra: &[&str]| {
        let o = run(rdma_nix()
            .current_dir(d.path())
            .args(["update", "--upstream", "--allow-expired", "--json"])
            .args(extra));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let release = |log: &serde_json::Value, package: &str| {
        log["releases"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["package"] == package).cloned())
    };
    let dry = update(&["--dry-run"]);
    let perftest = release(&dry, "perftest").expect("perftest moved");
    assert_eq!(perftest["from"], "25.01.0+0.79", "{dry:#}");
    let newest = perftest["to"].as_str().unwrap().to_owned();
    let core = release(&dry, "rdma-core").expect("rdma-core added");
    assert!(core["from"].is_null(), "{dry:#}");
    let core_version = core["to"].as_str().unwrap().to_owned();
    assert_ne!(core_version, "56.1");
    let lock = fs::read_to_string(d.path().join("stack.lock")).unwrap();
    assert!(!lock.contains("tracked_rdma_core"), "a dry run wrote");

    update(&[]);
    let lock = fs::read_to_string(d.path().join("stack.lock")).unwrap();
    assert!(
        lock.contains(&format!(
            "[[tracked_rdma_core]]\nversion = \"{core_version}\"\nsource = \"rdma-core-{core_version}-orig\"\n"
        )),
        "{lock}"
    );
    let perftest_nix = fs::read_to_string(d.path().join("pkgs/generated/perftest.nix")).unwrap();
    assert!(
        perftest_nix.contains(&format!("version = \"{newest}\";")),
        "{perftest_nix}"
    );
    assert!(d
        .path()
        .join(format!("pkgs/generated/rdma-core/{core_version}.nix"))
        .is_file());
    let again = update(&[]);
    assert!(again.get("releases").is_none(), "{again:#}");
    assert_eq!(again["written"], serde_json::json!([]), "{again:#}");
}
