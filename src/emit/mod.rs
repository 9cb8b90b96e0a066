//! Emission of generated Nix: escaping, the `@generated` header, atomic writes that
//! refuse to clobber hand-written files, `--check` with a diff, and a lock against
//! concurrent runs.

pub mod kernel_modules;
pub mod nix_expr;
pub mod rdma_core;
pub mod restore;
pub mod roles;
pub mod roots;
pub mod stack;

/// Where generated files live, relative to the repository root.
pub const GENERATED_DIR: &str = "pkgs/generated";

/// Everything `rdma-nix generate` writes for a manifest, in one list (also what
/// `rdma-nix update` regenerates), with the kABI decisions behind `kernel-modules.nix`.
pub struct Generated {
    pub files: Vec<GeneratedFile>,
    pub decisions: Vec<kernel_modules::Decision>,
}

/// What the matrix's kernels give, read from the store once: each kernel's headers,
/// and the restore plan from their sources' drivers (`update` decides the module
/// builds from the same reads, then renders with them).
pub struct KernelInputs {
    pub kernels: Vec<(String, crate::kernel::inspect::LoadedKernel)>,
    pub restored: restore::Restored,
}

impl KernelInputs {
    pub fn load(m: &crate::manifest::Manifest) -> anyhow::Result<KernelInputs> {
        let kernels = kernel_modules::load_kernels(m)?;
        let restored = restore::plan_matrix(m, &kernels, &m.label)?;
        Ok(KernelInputs { kernels, restored })
    }
}

/// Reads the pinned inputs from the store (rdma-core tarballs, kernel headers and
/// sources: `rdma-nix fetch` first) and renders every generated file.
pub fn generate(m: &crate::manifest::Manifest) -> anyhow::Result<Generated> {
    generate_with(m, KernelInputs::load(m)?)
}

/// [`generate`] with the kernels' inputs already read.
pub fn generate_with(
    m: &crate::manifest::Manifest,
    inputs: KernelInputs,
) -> anyhow::Result<Generated> {
    let source = m.label.as_str();
    // The store reads, once: each pinned rdma-core release's tarball scanned (the
    // kernels' headers and sources are in `inputs`).
    let mut releases = Vec::new();
    for r in &m.rdma_core {
        releases.push((r, rdma_core::scan_pinned(m, r)?));
    }
    let restored = inputs.restored;
    // Then the emitters, pure functions of those and the lock.
    let mut files = vec![
        stack::debian_inputs(m, source),
        stack::bootstrap(m, source),
        stack::perftest(m, source),
        stack::kernels(m, source),
    ];
    files.extend(
        releases
            .iter()
            .map(|(r, rel)| rdma_core::release_file(m, r, rel)),
    );
    if !m.rdma_core.is_empty() {
        files.push(rdma_core::index_file(m, source));
    }
    eprintln!(
        "rdma-nix: restored drivers (default set × kernels): {} built out of tree, {} in the kernel already, {} can't be built",
        restored.builds, restored.in_tree, restored.refused
    );
    let plan = kernel_modules::plan_builds(m, &restored.needs, source)?;
    eprintln!(
        "rdma-nix: kernel modules: {} builds, {} reused by kABI ({} builds saved of {})",
        plan.builds,
        plan.reused,
        plan.reused,
        plan.builds + plan.reused
    );
    files.push(plan.file);
    files.push(restored.file);
    if let Some(roles) = roles::Roles::of(m, &plan.decisions) {
        files.push(roles.file(source));
    }
    Ok(Generated {
        files,
        decisions: plan.decisions,
    })
}

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The marker every generated file carries in its first line.
pub const MARKER: &str = "@generated";

#[derive(Debug, Error)]
pub enum EmitError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{0}: exists and has no {MARKER} header; refusing to overwrite a hand-written file")]
    NotGenerated(PathBuf),
    #[error("{0}: another `rdma-nix generate` holds the lock")]
    Locked(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EmitError + '_ {
    move |e| EmitError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One file to generate, relative to the output root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: PathBuf,
    pub contents: String,
}

impl GeneratedFile {
    /// A Nix file with the standard header.
    pub fn nix(path: impl Into<PathBuf>, source: &str, body: &str) -> Self {
        Self::nix_by(path, "rdma-nix generate", source, body)
    }

    /// A Nix file with the standard header, written by another subcommand.
    pub fn nix_by(path: impl Into<PathBuf>, command: &str, source: &str, body: &str) -> Self {
        GeneratedFile {
            path: path.into(),
            contents: format!(
                "# {MARKER} by `{command}` from {source}. Do not edit: regenerate.\n{body}"
            ),
        }
    }
}

fn has_marker(path: &Path) -> Result<bool, EmitError> {
    let text = fs::read(path).map_err(io(path))?;
    let first = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    Ok(String::from_utf8_lossy(first).contains(MARKER))
}

/// Outcome of comparing one file with what is on disk.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Unchanged,
    Created,
    Updated,
}

impl Status {
    /// How `rdma-nix generate` reports it.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Unchanged => "unchanged",
            Status::Created => "created",
            Status::Updated => "updated",
        }
    }
}

/// Holds an exclusive lock on `<root>/.rdma-nix-generate.lock` while alive.
pub struct OutputLock {
    _file: fs::File,
}

impl OutputLock {
    pub fn acquire(root: &Path) -> Result<Self, EmitError> {
        fs::create_dir_all(root).map_err(io(root))?;
        let path = root.join(".rdma-nix-generate.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(OutputLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => {
                // Wait for the other run rather than fail: its output is as good as ours.
                file.lock().map_err(io(&path))?;
                Ok(OutputLock { _file: file })
            }
            Err(fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }
}

/// Check every file first (so that nothing is written when one is hand-written), then
/// write each changed file to a temporary sibling, fsync it and rename it into place.
pub fn write_all(
    root: &Path,
    files: &[GeneratedFile],
) -> Result<Vec<(PathBuf, Status)>, EmitError> {
    let _lock = OutputLock::acquire(root)?;
    let mut plan = Vec::new();
    for f in files {
        let dest = root.join(&f.path);
        let status = match fs::read(&dest) {
            Ok(old) if old == f.contents.as_bytes() => Status::Unchanged,
            Ok(_) if !has_marker(&dest)? => return Err(EmitError::NotGenerated(dest)),
            Ok(_) => Status::Updated,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Status::Created,
            Err(e) => return Err(io(&dest)(e)),
        };
        plan.push((dest, f, status));
    }
    // Temporary files a killed run left beside ours (we hold the lock: no live run
    // owns them).
    for (dest, _, _) in &plan {
        sweep_stale_temporaries(dest)?;
    }
    // Every new file complete and synced on disk first, then the renames: a run
    // killed at any point leaves each file either as it was or wholly new.
    let mut staged = Vec::new();
    for (dest, f, status) in &plan {
        if *status != Status::Unchanged {
            match stage(dest, f.contents.as_bytes()) {
                Ok(tmp) => staged.push((tmp, dest.clone())),
                Err(e) => {
                    for (tmp, _) in &staged {
                        let _ = fs::remove_file(tmp);
                    }
                    return Err(e);
                }
            }
        }
    }
    let kill_after = fault_injection_kill_after();
    for (n, (tmp, dest)) in staged.iter().enumerate() {
        if kill_after == Some(n) {
            // Tests only (RDMA_NIX_TEST_KILL_AFTER_RENAMES): die like `kill -9` would.
            std::process::abort();
        }
        fs::rename(tmp, dest).map_err(io(dest))?;
    }
    Ok(plan
        .into_iter()
        .map(|(dest, _, status)| (dest, status))
        .collect())
}

/// The test hook that makes `generate` die (SIGABRT, no cleanup) after N renames.
fn fault_injection_kill_after() -> Option<usize> {
    std::env::var("RDMA_NIX_TEST_KILL_AFTER_RENAMES")
        .ok()
        .and_then(|v| v.parse().ok())
}

fn temporary_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

fn sweep_stale_temporaries(dest: &Path) -> Result<(), EmitError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let prefix = temporary_prefix(dest);
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for e in entries {
        let e = e.map_err(io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(&prefix) {
            if pid.chars().all(|c| c.is_ascii_digit()) {
                fs::remove_file(e.path()).map_err(io(&e.path()))?;
            }
        }
    }
    Ok(())
}

/// Writes `data` to a synced temporary sibling of `dest`; returns its path.
fn stage(dest: &Path, data: &[u8]) -> Result<PathBuf, EmitError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!("{}{}", temporary_prefix(dest), std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io(dest)(e));
    }
    Ok(tmp)
}

/// Writes one file atomically: a synced temporary sibling renamed into place.
pub fn atomic_write(dest: &Path, data: &[u8]) -> Result<(), EmitError> {
    let tmp = stage(dest, data)?;
    fs::rename(&tmp, dest).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(dest)(e)
    })
}

/// Files whose content on disk differs from what would be generated, with a diff.
pub fn check_all(
    root: &Path,
    files: &[GeneratedFile],
) -> Result<Vec<(PathBuf, String)>, EmitError> {
    let mut stale = Vec::new();
    for f in files {
        let dest = root.join(&f.path);
        let old = match fs::read_to_string(&dest) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(&dest)(e)),
        };
        if old != f.contents {
            stale.push((dest, line_diff(&old, &f.contents)));
        }
    }
    Ok(stale)
}

/// A minimal line diff (`-` on disk, `+` generated), by longest common subsequence.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_hand_written_files_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("hand.nix"), "{ }\n").unwrap();
        let files = vec![
            GeneratedFile::nix("a.nix", "test", "{ }\n"),
            GeneratedFile::nix("hand.nix", "test", "{ }\n"),
        ];
        let e = write_all(dir.path(), &files).unwrap_err();
        assert!(matches!(e, EmitError::NotGenerated(_)));
        assert!(
            !dir.path().join("a.nix").exists(),
            "nothing written when one file is refused"
        );
    }

    #[test]
    fn writes_updates_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = vec![GeneratedFile::nix("sub/a.nix", "test", "1\n")];
        assert_eq!(write_all(dir.path(), &v1).unwrap()[0].1, Status::Created);
        assert_eq!(write_all(dir.path(), &v1).unwrap()[0].1, Status::Unchanged);
        assert!(check_all(dir.path(), &v1).unwrap().is_empty());
        let v2 = vec![GeneratedFile::nix("sub/a.nix", "test", "2\n")];
        let stale = check_all(dir.path(), &v2).unwrap();
        assert_eq!(stale[0].1, "-1\n+2\n");
        assert_eq!(write_all(dir.path(), &v2).unwrap()[0].1, Status::Updated);
    }
}
