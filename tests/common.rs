//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether `tool` is on PATH. Under CI (`CI` set) a missing tool is a failure, not a
/// skip: the test command installs everything the tests need.
pub fn require(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required under CI but is not installed");
        }
        eprintln!("SKIP: {tool} not installed (run the README's test command to install it)");
    }
    found
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `nix-build` as the offline tests run it: no substituters (none are reachable, and
/// nix 2.8 spends seconds retrying them) and no result links.
pub fn nix_build_offline() -> Command {
    let mut c = Command::new("nix-build");
    c.args(["--option", "substituters", "", "--no-out-link"]);
    c
}

/// Run and return trimmed stdout, panicking with stderr on failure.
pub fn stdout_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn rdma_nix() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rdma-nix"))
}

pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// The store path of a file pinned in stack.lock, once `rdma-nix fetch`
/// added it; None (a skip) outside CI when it isn't there, a failure under CI.
pub fn pinned(name: &str) -> Option<PathBuf> {
    let m = rdma_nix::manifest::Manifest::load(None).unwrap();
    let p = rdma_nix::fetch::expected_store_path(m.package(name).unwrap());
    let path = PathBuf::from(p.to_string());
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is not in the store; the test command runs `rdma-nix fetch` first");
    }
    eprintln!("SKIP: {name} not fetched (run `rdma-nix fetch`)");
    None
}

/// Build an offline VM check (`o` is the offline package set in `expr`), or None (a
/// skip) when its tools or the linux-source pin are missing outside CI. Returns the
/// output path and its result.json.
pub fn offline_vm_check(expr: &str) -> Option<(String, serde_json::Value)> {
    if !require("nix-build") || pinned("linux-source-6.1").is_none() {
        return None;
    }
    let out = stdout_ok(
        nix_build_offline()
            .args([
                "-E",
                &format!("let o = import ./pkgs/offline {{ }}; in {expr}"),
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    let result = std::fs::read(format!("{out}/result.json")).unwrap();
    Some((out, serde_json::from_slice(&result).unwrap()))
}
