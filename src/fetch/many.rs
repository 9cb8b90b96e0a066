//! Many pinned packages at once, at the network's pace. What the store lacks is found
//! with one `nix-store --check-validity`; a bounded pool of workers downloads it with
//! apt's downloader, which checks each file against its pin's sha256 as it streams. A
//! file that doesn't match (truncated, corrupt) is refused by name and downloaded once
//! more, starting from the next mirror apt knows; a second mismatch is an error naming
//! the package, the file and both hashes. Verified files wait in a staging directory
//! kept across runs and go into the store in batches (one `nix-store --add-fixed` per
//! batch, which derives each path from the file's hash: a path other than the pin's is
//! an error), so a fetch that is killed loses nothing it verified: the next one
//! re-hashes the staged files, adds them and downloads only the rest. Nothing
//! unverified is ever added, and `--add-fixed` adds a path whole or not at all.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;

use super::{expected_store_path, mirror_download_many, verify, FetchError, Fetched, Outcome};
use crate::manifest::DebianPackage;

/// Files per `nix-store --add-fixed` call at most.
const BATCH: usize = 32;

/// `nix-store --add-fixed` calls at a time: each hashes and copies on one core (a
/// third would mostly wait on the store's database, which one call at a time holds).
const ADDERS: usize = 2;

/// Verified files waiting for the store. An adder takes what has arrived since the
/// last call (up to [`BATCH`]), so the store keeps up with the downloads and the last
/// call after them adds only the last few files.
#[derive(Default)]
struct AddQueue {
    state: std::sync::Mutex<(Vec<Verified>, bool)>,
    ready: std::sync::Condvar,
}

impl AddQueue {
    fn push(&self, v: Verified) {
        self.state.lock().unwrap().0.push(v);
        self.ready.notify_one();
    }

    /// No more files will come.
    fn close(&self) {
        self.state.lock().unwrap().1 = true;
        self.ready.notify_all();
    }

    /// The next batch, waiting for one; `None` once closed and empty.
    fn take(&self) -> Option<Vec<Verified>> {
        let mut st = self.state.lock().unwrap();
        while st.0.is_empty() && !st.1 {
            st = self.ready.wait(st).unwrap();
        }
        if st.0.is_empty() {
            return None;
        }
        let n = st.0.len().min(BATCH);
        Some(st.0.drain(..n).collect())
    }
}

/// Files per `apt-helper` run at most: apt reuses its connection for a run's files,
/// where a new connection per file stalled for 5 s beyond about 16 at once here (and
/// runs of 8 once in 4 cold fetches); runs of 12 hand the store its first files sooner
/// than runs of 16 (root sid: 1.15 s against 1.25 s).
const CHUNK: usize = 12;

/// What a batch fetch did, for the progress line and `--json`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FetchStats {
    pub files: usize,
    /// Already valid in the store.
    pub present: usize,
    /// Verified by an earlier, interrupted fetch and added from its staging directory.
    pub staged: usize,
    /// Downloaded (or copied from --from), verified and added.
    pub downloaded: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Packages whose first download didn't match their pin and were downloaded again.
    pub retried: Vec<String>,
}

/// Where verified files wait for the store, across runs.
fn staging_dir() -> PathBuf {
    std::env::var_os("RDMA_NIX_FETCH_STAGING")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("rdma-nix-fetch-staging"))
}

/// The store paths of `paths` that aren't valid, with one `nix-store` call per chunk.
pub(crate) fn invalid_in_store(paths: &[String]) -> Result<BTreeSet<String>, FetchError> {
    let mut invalid = BTreeSet::new();
    for chunk in paths.chunks(512) {
        let out = Command::new("nix-store")
            .args(["--check-validity", "--print-invalid"])
            .args(chunk)
            .output()
            .map_err(|e| FetchError::Spawn {
                program: "nix-store",
                source: e,
            })?;
        if !out.status.success() {
            return Err(FetchError::NixStore {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        invalid.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    Ok(invalid)
}

/// Removes the partial downloads (`.chunk-<n>.<pid>`) of fetches that are gone.
fn sweep(staging: &Path) {
    let Ok(entries) = fs::read_dir(staging) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix('.').and_then(|n| n.rsplit('.').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// One verified file, staged under its store name.
struct Verified {
    index: usize,
    file: PathBuf,
    bytes: u64,
    staged_before: bool,
    retried: bool,
}

/// Fetches `pkgs` (deduplicated by store path) with up to `jobs` downloads at a time,
/// printing a line per file; `label` names the set in the summary.
pub fn fetch_packages(
    pkgs: &[DebianPackage],
    from: Option<&Path>,
    jobs: usize,
    label: &str,
) -> Result<(Vec<Fetched>, FetchStats), FetchError> {
    let start = Instant::now();
    let mut seen = BTreeSet::new();
    let pkgs: Vec<&DebianPackage> = pkgs
        .iter()
        .filter(|p| seen.insert(expected_store_path(p).to_string()))
        .collect();
    let paths: Vec<String> = pkgs
        .iter()
        .map(|p| expected_store_path(p).to_string())
        .collect();
    let invalid = invalid_in_store(&paths)?;
    let missing: Vec<usize> = (0..pkgs.len())
        .filter(|&i| invalid.contains(&paths[i]))
        .collect();
    let mut stats = FetchStats {
        files: pkgs.len(),
        present: pkgs.len() - missing.len(),
        ..FetchStats::default()
    };
    let staging = staging_dir();
    fs::create_dir_all(&staging).map_err(|e| FetchError::Io {
        file: staging.clone(),
        source: e,
    })?;
    sweep(&staging);
    let (tx, rx) = mpsc::channel::<Result<Verified, FetchError>>();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut first_error = None;
    let kill = kill_after();
    // Every worker gets work, in chunks of at most CHUNK files.
    let jobs = jobs.clamp(1, missing.len().max(1));
    let chunk = missing.len().div_ceil(jobs).clamp(1, CHUNK);
    let queue = AddQueue::default();
    let add_error = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop, missing, pkgs, staging) = (&next, &stop, &missing, &pkgs, &staging);
            scope.spawn(move || loop {
                let k = next.fetch_add(chunk, Ordering::SeqCst);
                if k >= missing.len() || stop.load(Ordering::SeqCst) {
                    break;
                }
                let ids = &missing[k..(k + chunk).min(missing.len())];
                for r in obtain_chunk(ids, pkgs, from, staging) {
                    if r.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for _ in 0..ADDERS {
            let (queue, pkgs, stop, add_error) = (&queue, &pkgs, &stop, &add_error);
            scope.spawn(move || {
                while let Some(batch) = queue.take() {
                    if let Err(e) = add_batch(pkgs, &batch) {
                        stop.store(true, Ordering::SeqCst);
                        add_error.lock().unwrap().get_or_insert(e);
                    }
                }
            });
        }
        for r in rx.iter() {
            match r {
                Ok(v) => {
                    report(&v, pkgs[v.index], &mut stats, missing.len(), start);
                    queue.push(v);
                    if kill == Some(stats.staged + stats.downloaded) {
                        std::process::abort();
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // What was verified goes in, even when another file failed.
        queue.close();
    });
    if let Some(e) = add_error.into_inner().unwrap() {
        first_error.get_or_insert(e);
    }
    stats.seconds = start.elapsed().as_secs_f64();
    if let Some(e) = first_error {
        return Err(e);
    }
    eprintln!("{label}: {}", summary(&stats));
    let fetched = pkgs
        .iter()
        .enumerate()
        .map(|(i, p)| Fetched {
            package: p.name.clone(),
            store_path: paths[i].clone(),
            outcome: if invalid.contains(&paths[i]) {
                Outcome::Added
            } else {
                Outcome::Present
            },
        })
        .collect();
    Ok((fetched, stats))
}

/// The summary line: files, bytes, rate.
pub fn summary(s: &FetchStats) -> String {
    let mb = s.bytes as f64 / 1e6;
    format!(
        "{} packages: {} in the store, {} from an interrupted fetch, {} downloaded ({mb:.1} MB in {:.1} s, {:.1} MB/s){}",
        s.files,
        s.present,
        s.staged,
        s.downloaded,
        s.seconds,
        if s.seconds > 0.0 { mb / s.seconds } else { 0.0 },
        if s.retried.is_empty() {
            String::new()
        } else {
            format!("; downloaded again after a mismatch: {}", s.retried.join(", "))
        }
    )
}

fn report(v: &Verified, p: &DebianPackage, stats: &mut FetchStats, total: usize, start: Instant) {
    if v.staged_before {
        stats.staged += 1;
    } else {
        stats.downloaded += 1;
        stats.bytes += v.bytes;
    }
    if v.retried {
        stats.retried.push(p.name.clone());
    }
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    eprintln!(
        "[{}/{total}] {} {}: {:.1} MB {} ({:.0} MB so far, {:.1} MB/s)",
        stats.staged + stats.downloaded,
        p.name,
        p.version,
        v.bytes as f64 / 1e6,
        if v.staged_before {
            "verified earlier"
        } else {
            "verified"
        },
        stats.bytes as f64 / 1e6,
        stats.bytes as f64 / 1e6 / secs
    );
}

/// Tests only (RDMA_NIX_TEST_KILL_AFTER_VERIFIED): after how many verified files to
/// die like `kill -9`, before the store has them.
fn kill_after() -> Option<usize> {
    std::env::var("RDMA_NIX_TEST_KILL_AFTER_VERIFIED")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
}

/// A chunk of packages' verified files in the staging directory: each file staged by
/// an earlier fetch that still verifies, the rest downloaded together (one `apt-helper`
/// per mirror, so one connection serves the chunk, apt checking each file's sha256 as
/// it streams; or copied from `from` and hashed) into a private directory, a mismatch
/// downloaded once more starting from the next mirror, and renamed into the staging
/// directory only once it matches. One result per package.
fn obtain_chunk(
    ids: &[usize],
    pkgs: &[&DebianPackage],
    from: Option<&Path>,
    staging: &Path,
) -> Vec<Result<Verified, FetchError>> {
    let verified = |index: usize, file: PathBuf, staged_before: bool, retried: bool| Verified {
        index,
        bytes: fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
        file,
        staged_before,
        retried,
    };
    let mut out = Vec::new();
    let mut todo = Vec::new();
    for &i in ids {
        let staged = staging.join(pkgs[i].store_name());
        if staged.is_file() && verify(pkgs[i], &staged).is_ok() {
            out.push(Ok(verified(i, staged, true, false)));
            continue;
        }
        let _ = fs::remove_file(&staged);
        todo.push(i);
    }
    if todo.is_empty() {
        return out;
    }
    let work = staging.join(format!(".chunk-{}.{}", todo[0], std::process::id()));
    let _ = fs::remove_dir_all(&work);
    if let Err(e) = fs::create_dir_all(&work) {
        out.extend(todo.iter().map(|&i| {
            Err(FetchError::Download {
                package: pkgs[i].name.clone(),
                message: format!("{}: {e}", work.display()),
            })
        }));
        return out;
    }
    let mut retried = BTreeSet::new();
    for attempt in 0..2 {
        let chunk: Vec<&DebianPackage> = todo.iter().map(|&i| pkgs[i]).collect();
        let files = match from {
            Some(dir) => chunk.iter().map(|p| copy_from(p, dir, &work)).collect(),
            None => mirror_download_many(&chunk, &work, attempt),
        };
        let mut again = Vec::new();
        for (&i, file) in todo.iter().zip(files) {
            let staged = staging.join(pkgs[i].store_name());
            // apt checked a download's sha256 as it streamed; a copy is hashed here.
            let checked = match from {
                Some(_) => file.and_then(|f| verify(pkgs[i], &f).map(|()| f)),
                None => file,
            };
            match checked {
                Ok(f) => out.push(
                    fs::rename(&f, &staged)
                        .map_err(|e| FetchError::Io {
                            file: staged.clone(),
                            source: e,
                        })
                        .map(|()| verified(i, staged, false, retried.contains(&i))),
                ),
                // A local copy is what it is; a download may have been cut short.
                Err(e @ FetchError::Mismatch { .. }) if attempt == 0 && from.is_none() => {
                    eprintln!("{e}; downloading it again");
                    retried.insert(i);
                    again.push(i);
                }
                Err(e) => out.push(Err(e)),
            }
        }
        todo = again;
        if todo.is_empty() {
            break;
        }
    }
    let _ = fs::remove_dir_all(&work);
    out
}

/// A package's file copied from a directory of pool files into `work`.
fn copy_from(p: &DebianPackage, dir: &Path, work: &Path) -> Result<PathBuf, FetchError> {
    let f = dir.join(p.file_name());
    let copy = work.join(p.store_name());
    fs::copy(&f, &copy).map_err(|e| FetchError::Download {
        package: p.name.clone(),
        message: format!("{}: {e}", f.display()),
    })?;
    Ok(copy)
}

/// Adds verified files (each hashed by `obtain_chunk`) to the store in one
/// call, each path checked to be its pin's, and removes them once the store has them.
fn add_batch(pkgs: &[&DebianPackage], batch: &[Verified]) -> Result<(), FetchError> {
    if batch.is_empty() {
        return Ok(());
    }
    let out = Command::new("nix-store")
        .args(["--add-fixed", "sha256"])
        .args(batch.iter().map(|v| &v.file))
        .output()
        .map_err(|e| FetchError::Spawn {
            program: "nix-store",
            source: e,
        })?;
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    for (k, v) in batch.iter().enumerate() {
        let expected = expected_store_path(pkgs[v.index]).to_string();
        if got.get(k) != Some(&expected) {
            return Err(FetchError::StoreMismatch {
                file: v.file.clone(),
                got: got
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string()),
                expected,
            });
        }
        let _ = fs::remove_file(&v.file);
    }
    Ok(())
}
