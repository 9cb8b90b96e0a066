//! The checked-in generated files are exactly what the generator writes now.

mod common;

#[test]
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
