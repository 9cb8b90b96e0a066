//! The checked-in generated files are exactly what the generator writes now.

use crate::common;

#[test]
#[ignore = "needs the fetched inputs in the Nix store: the README's test command runs it"]
fn checked_in_output_is_current() {
    let out = common::run(
        common::rdma_nix()
            .args(["generate", "--check", "--out"])
            .arg(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(
        out.status.success(),
        "generated files are stale; run `cargo run -- generate`:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[ignore = "needs the fetched inputs in the Nix store: the README's test command runs it"]
fn generate_is_deterministic_and_refuses_hand_written_files() {
    let dir = tempfile::tempdir().unwrap();
    let gen =
        |d: &std::path::Path| common::run(common::rdma_nix().args(["generate", "--out"]).arg(d));
    assert!(gen(dir.path()).status.success());
    let first = std::fs::read(dir.path().join("pkgs/generated/debian-inputs.nix")).unwrap();
    assert!(gen(dir.path()).status.success());
    assert_eq!(
        first,
        std::fs::read(dir.path().join("pkgs/generated/debian-inputs.nix")).unwrap()
    );
    let hand = dir.path().join("pkgs/generated/kernels.nix");
    std::fs::write(&hand, "{ }\n").unwrap();
    let o = gen(dir.path());
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no @generated header"));
    assert_eq!(
        std::fs::read_to_string(&hand).unwrap(),
        "{ }\n",
        "hand-written file untouched"
    );
}

/// Files that still name a kernel of the lock, each with why; the list only shrinks (a
/// file that no longer names one must leave it). Everything else selects kernels by
/// role (`pkgs/generated/roles.nix`) or reads the lock.
const NAMES_A_KERNEL: &[(&str, &str)] = &[
    // Data and documentation, not a selection.
    ("src/manifest.rs", "doc comments' examples of an ABI"),
    ("src/update.rs", "unit tests: ABI strings as parser input"),
    (
        "src/emit/nix_expr.rs",
        "unit test: attribute-name quoting of a kernel name",
    ),
    (
        "src/kernel/drivers.rs",
        "unit tests: release strings as input",
    ),
    (
        "src/kernel/module.rs",
        "unit test: a vermagic string as input",
    ),
    ("src/report/mod.rs", "unit tests: result.json fixtures"),
    (
        "tests/it/update.rs",
        "the kABI pair of the acceptance: 6.1.0-54/-57 against 6.1.0-55's records",
    ),
    (
        "tests/it/kernel_modules.rs",
        "the kABI test's data: -55's siw checked against a reusing (-56) and a refusing (-50) ABI's headers",
    ),
];

#[test]
fn no_file_outside_the_lock_names_a_kernel_but_those_listed() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = rdma_nix::manifest::Manifest::load(Some(&repo.join("stack.toml"))).unwrap();
    let needles: Vec<&str> = m
        .kernels
        .iter()
        .flat_map(|k| std::iter::once(k.name.as_str()).chain(k.abi.as_deref()))
        .collect();
    let files = common::stdout_ok(
        std::process::Command::new("git")
            .arg("ls-files")
            .current_dir(repo),
    );
    let mut naming = Vec::new();
    for f in files.lines() {
        let exempt = ["stack.toml", "stack.lock"].contains(&f)
            || f.starts_with("pkgs/generated/")
            || f.ends_with(".md")
            || f == "tests/it/generated.rs"; // this list of file names
        let Ok(text) = std::fs::read_to_string(repo.join(f)) else {
            continue; // binary, or deleted in the working tree
        };
        if !exempt && needles.iter().any(|n| text.contains(n)) {
            naming.push(f.to_string());
        }
    }
    let listed: Vec<&str> = NAMES_A_KERNEL.iter().map(|(f, _)| *f).collect();
    let new: Vec<&String> = naming
        .iter()
        .filter(|f| !listed.contains(&f.as_str()))
        .collect();
    assert!(new.is_empty(), "these name a kernel of the lock; select it by role (pkgs/generated/roles.nix) instead: {new:?}");
    let gone: Vec<&&str> = listed
        .iter()
        .filter(|f| !naming.iter().any(|n| n == **f))
        .collect();
    assert!(
        gone.is_empty(),
        "these no longer name a kernel: take them off NAMES_A_KERNEL: {gone:?}"
    );
}
