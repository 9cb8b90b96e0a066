//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What an ignored test needs (they run with `--include-ignored`, as the README's
/// test command runs them after installing everything): a missing tool fails the test,
/// naming it.
pub fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed; this test needs it (the README's test command installs it)"
    );
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

/// `nix-instantiate --eval --strict --json` of `expr`, from the repository.
pub fn nix_instantiate_eval(expr: &str) -> Command {
    let mut c = Command::new("nix-instantiate");
    c.args(["--eval", "--strict", "--json", "-E", expr])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Run and return trimmed stdout, panicking with stderr on failure; when builds failed
/// (nix-build), the end of each failed build's log closes the message, so a truncated
/// CI log still shows why.
pub fn stdout_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        panic!("{cmd:?} failed: {stderr}{}", failed_build_logs(&stderr));
    }
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The last lines of the log of every build nix reported as failed in `stderr`.
pub fn failed_build_logs(stderr: &str) -> String {
    let mut text = String::new();
    for line in stderr.lines() {
        let Some(rest) = line.split("builder for '").nth(1) else {
            continue;
        };
        let Some(drv) = rest.split('\'').next().filter(|d| d.ends_with(".drv")) else {
            continue;
        };
        let log = Command::new("nix-store").args(["--read-log", drv]).output();
        let log = match &log {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            _ => "(no log kept)".to_owned(),
        };
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        text.push_str(&format!(
            "\n=== failed: {drv} (its log's last 80 lines)\n{tail}\n"
        ));
    }
    text
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

/// The store path of a file pinned in stack.lock, which `rdma-nix fetch` added; a
/// test that needs it fails when it isn't there.
pub fn pinned(name: &str) -> PathBuf {
    let m = rdma_nix::manifest::Manifest::load(None).unwrap();
    let p = rdma_nix::fetch::expected_store_path(m.package(name).unwrap());
    let path = PathBuf::from(p.to_string());
    assert!(
        path.exists(),
        "{name} is not in the store; the test command runs `rdma-nix fetch` first"
    );
    path
}

/// Builds an offline VM check (`o` is the offline package set in `expr`); returns the
/// output path and its result.json.
pub fn offline_vm_check(expr: &str) -> (String, serde_json::Value) {
    require("nix-build");
    pinned("linux-source-6.1");
    let out = stdout_ok(
        nix_build_offline()
            .args([
                "-E",
                &format!("let o = import ./pkgs/offline {{ }}; in {expr}"),
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    let result = std::fs::read(format!("{out}/result.json")).unwrap();
    (out, serde_json::from_slice(&result).unwrap())
}

/// The matrix's kernels by role (pkgs/generated/roles.nix): tests pick kernels by
/// role, so an update that moves the lock needs no edit here.
pub struct Roles {
    pub oldest: String,
    pub newest: String,
    /// Each series (`6.1`) with its newest kernel, oldest series first.
    pub series_newest: Vec<(String, String)>,
    /// A kernel whose restored drivers are built for it (the kABI records' kernel).
    pub kabi_base: String,
    /// The newest kernel reusing those builds across its ABI.
    pub kabi_reused: String,
}

impl Roles {
    /// The newest kernel of a series (`6.12`).
    pub fn newest_of(&self, series: &str) -> &str {
        let found = self.series_newest.iter().find(|(s, _)| s == series);
        &found
            .unwrap_or_else(|| panic!("no series {series} in stack.lock"))
            .1
    }
}

pub fn roles() -> Roles {
    let text = stdout_ok(
        Command::new("nix-instantiate")
            .args(["--eval", "--json", "--strict", "pkgs/generated/roles.nix"])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = |v: &serde_json::Value| v.as_str().expect("a kernel name").to_owned();
    let mut series: Vec<(&String, &serde_json::Value)> =
        v["seriesNewest"].as_object().unwrap().iter().collect();
    series.sort_by_key(|(k, _)| {
        k.split('.')
            .map(|n| n.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    });
    Roles {
        oldest: s(&v["oldest"]),
        newest: s(&v["newest"]),
        series_newest: series.into_iter().map(|(n, k)| (n.clone(), s(k))).collect(),
        kabi_base: s(&v["kabiBase"]),
        kabi_reused: s(v["kabiReused"].as_array().unwrap().last().unwrap()),
    }
}

/// A kernel's release (`uname -r`) as the lock has it: its image package's name
/// without `linux-image-`.
pub fn release_of(kernel: &str) -> String {
    let m = rdma_nix::manifest::Manifest::load(None).unwrap();
    m.kernels
        .iter()
        .find(|k| k.name == kernel)
        .and_then(|k| k.image.strip_prefix("linux-image-"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{kernel} is not in stack.lock"))
}

/// A kernel of stack.lock by name.
pub fn kernel(name: &str) -> rdma_nix::manifest::Kernel {
    let m = rdma_nix::manifest::Manifest::load(None).unwrap();
    let k = m.kernels.iter().find(|k| k.name == name);
    k.unwrap_or_else(|| panic!("{name} is not in stack.lock"))
        .clone()
}

/// The pinned `linux-source-*` package a kernel's out-of-tree modules are built from.
pub fn source_package(name: &str) -> String {
    let m = rdma_nix::manifest::Manifest::load(None).unwrap();
    let k = kernel(name);
    m.kernel_source(&k.module_source)
        .unwrap_or_else(|| panic!("{name}: no kernel source {}", k.module_source))
        .package
        .clone()
}

/// The repository's files as git sees them (tracked, and untracked but not ignored),
/// as they are in the working tree, copied into `dest`.
pub fn copy_tree(dest: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = stdout_ok(
        Command::new("git")
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .current_dir(repo),
    );
    for f in files.split('\0').filter(|f| !f.is_empty()) {
        let from = repo.join(f);
        if !from.exists() {
            continue; // deleted in the working tree
        }
        let to = dest.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
}

/// The lock without one kernel: its `[[kernel]]` and its `[[module]]` decisions.
pub fn without_kernel(lock: &str, name: &str) -> String {
    let entry = format!("name = \"{name}\"\n");
    let module = format!("kernel = \"{name}\"\n");
    let blocks: Vec<&str> = lock.split("\n\n").collect();
    let kept: Vec<&str> = blocks
        .into_iter()
        .filter(|b| {
            !(b.starts_with("[[kernel]]\n") && b.contains(&entry)
                || b.starts_with("[[module]]\n") && b.contains(&module))
        })
        .collect();
    assert!(kept.len() < lock.split("\n\n").count(), "{name} not locked");
    kept.join("\n\n")
}
