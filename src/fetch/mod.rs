//! Fetching pinned inputs: Debian packages through apt's ordinary client (the mirror
//! is whatever the machine's apt configuration says), verified against the pin and
//! added to the Nix store so that the fixed-output derivations naming them are valid.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use thiserror::Error;

use crate::manifest::{Bootstrap, DebianPackage, KernelSource};
use crate::nix::store_path::fixed_output_path;
use crate::nix::{FileIngestion, HashAlgo, NixHash, StorePath};

mod many;
pub(crate) use many::invalid_in_store;
pub use many::{fetch_packages, FetchStats};

#[derive(Debug, Error)]
pub enum FetchError {
    #[error("{package}: {message}")]
    Download { package: String, message: String },
    #[error("{file}: hash mismatch for {package}: expected {expected}, got {actual}")]
    Mismatch {
        package: String,
        file: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {what}", file.display())]
    Cause {
        file: PathBuf,
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot run {program}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("nix-store failed: {stderr}")]
    NixStore { stderr: String },
    #[error("{file}: nix-store --add-fixed gave {got}, expected {expected}")]
    StoreMismatch {
        file: PathBuf,
        got: String,
        expected: String,
    },
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Already valid in the store: nothing to do.
    Present,
    /// Downloaded (or taken from --from), verified and added.
    Added,
}

#[derive(Debug, Serialize)]
pub struct Fetched {
    pub package: String,
    pub store_path: String,
    pub outcome: Outcome,
}

/// The store path a pinned package has once added (`nix-store --add-fixed sha256`).
pub fn expected_store_path(p: &DebianPackage) -> StorePath {
    fixed_output_path(
        FileIngestion::Flat,
        &p.hash(),
        &p.store_name(),
        &BTreeSet::new(),
    )
    .expect("store name validated with the manifest")
}

fn is_valid_in_store(path: &StorePath) -> bool {
    Command::new("nix-store")
        .args(["--check-validity", &path.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `nix-store --add-fixed [--recursive] sha256 PATH`, checked to give `expected`.
fn add_fixed(
    path: &Path,
    ingestion: FileIngestion,
    expected: &StorePath,
) -> Result<String, FetchError> {
    let mut cmd = Command::new("nix-store");
    cmd.arg("--add-fixed");
    if ingestion == FileIngestion::Recursive {
        cmd.arg("--recursive");
    }
    let out = cmd
        .arg("sha256")
        .arg(path)
        .output()
        .map_err(|e| FetchError::Spawn {
            program: "nix-store",
            source: e,
        })?;
    let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || got != expected.to_string() {
        return Err(FetchError::StoreMismatch {
            file: path.to_path_buf(),
            got: if got.is_empty() {
                String::from_utf8_lossy(&out.stderr).trim().to_string()
            } else {
                got
            },
            expected: expected.to_string(),
        });
    }
    Ok(got)
}

/// Hash a file and compare it with the pin, naming both hashes on mismatch.
pub fn verify(p: &DebianPackage, file: &Path) -> Result<(), FetchError> {
    let io = |e: std::io::Error| FetchError::Io {
        file: file.to_path_buf(),
        source: e,
    };
    let mut f = fs::File::open(file).map_err(io)?;
    let actual = NixHash::of_reader(HashAlgo::Sha256, &mut f).map_err(io)?;
    let expected = p.hash();
    if actual != expected {
        return Err(FetchError::Mismatch {
            package: p.name.clone(),
            file: file.to_path_buf(),
            expected: expected.to_sri(),
            actual: actual.to_sri(),
        });
    }
    Ok(())
}

/// The archive roots the machine's apt lists (its sources, in apt's order), each
/// once; read once per process.
pub fn apt_mirrors() -> Result<Vec<String>, String> {
    static MIRRORS: std::sync::OnceLock<Result<Vec<String>, String>> = std::sync::OnceLock::new();
    MIRRORS
        .get_or_init(|| crate::debian::apt_sources::archive_roots().map_err(|e| e.to_string()))
        .clone()
}

/// One file for apt to download: from `url` to `target`, checked by apt against
/// `sha256` (hex) as it streams when one is given.
#[derive(Debug, Clone)]
pub struct AptFile {
    pub url: String,
    pub target: PathBuf,
    pub sha256: Option<String>,
}

/// Download `url` to `target` with apt's own downloader (`apt-helper download-file`);
/// the error is apt's last `E:` line.
pub fn apt_download(url: &str, target: &Path) -> Result<(), String> {
    let file = AptFile {
        url: url.to_string(),
        target: target.to_path_buf(),
        sha256: None,
    };
    apt_download_many(&[file])
        .pop()
        .expect("one result per file")
}

/// Download each file in one `apt-helper download-file` run (apt reuses its
/// connection to a host for all of them); per file, `Ok` once its target is there,
/// else apt's `E:` message (with its indented lines) naming its URL, or apt's last one.
/// A file whose hash isn't the one given is refused by apt, which says
/// `Hash Sum mismatch` and names the hash it received.
pub fn apt_download_many(files: &[AptFile]) -> Vec<Result<(), String>> {
    let mut cmd = Command::new("/usr/lib/apt/apt-helper");
    cmd.arg("download-file");
    for f in files {
        cmd.arg(&f.url).arg(&f.target);
        // apt reads `TYPE:VALUE` after a pair as its hash; an empty word as none.
        cmd.arg(
            f.sha256
                .as_ref()
                .map_or(String::new(), |h| format!("SHA256:{h}")),
        );
    }
    let out = cmd.output();
    let stderr = match &out {
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => format!("E: cannot run apt-helper: {e}"),
    };
    let ok = matches!(&out, Ok(o) if o.status.success());
    let errors = apt_errors(&stderr);
    // apt names a URL as it normalized it (`file:///x` as `file:/x`) and quoted it
    // (`libstdc++6_1.0~rc1` as `libstdc%2b%2b6_1.0%7erc1`): matched by its path, unquoted.
    let named: Vec<Option<String>> = errors.iter().map(|e| failed_path(e)).collect();
    files
        .iter()
        .map(|f| {
            let path = percent_decode(url_path(&f.url));
            let message = (0..errors.len())
                .find(|&i| named[i].as_deref() == Some(path.as_str()))
                .map(|i| &errors[i]);
            if f.target.is_file() && (ok || message.is_none()) {
                return Ok(());
            }
            Err(message
                .or(errors.last())
                .map_or("download failed", String::as_str)
                .to_string())
        })
        .collect()
}

/// The URL path (unquoted) an apt `E: Failed to fetch URL  reason` message names.
fn failed_path(message: &str) -> Option<String> {
    let url = message
        .strip_prefix("E: Failed to fetch ")?
        .split_whitespace()
        .next()?;
    Some(percent_decode(url_path(url)))
}

/// apt's `E:` messages, each with the indented lines that follow it.
fn apt_errors(stderr: &str) -> Vec<String> {
    let mut errors: Vec<String> = Vec::new();
    let mut inside = false;
    for line in stderr.lines() {
        if line.starts_with("E:") {
            errors.push(line.to_string());
            inside = true;
        } else if inside && line.starts_with([' ', '\t']) {
            let e = errors.last_mut().expect("an E: line came first");
            e.push('\n');
            e.push_str(line);
        } else {
            inside = false;
        }
    }
    errors
}

/// From apt's `Hash Sum mismatch` message, the SHA256 it received (hex).
fn apt_received_sha256(message: &str) -> Option<&str> {
    let (_, received) = message.split_once("Hashes of received file:")?;
    received
        .lines()
        .find_map(|l| l.trim().strip_prefix("- SHA256:"))
}

/// `%xx` escapes decoded (an invalid one is kept as it is).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex
            .filter(|_| b[i] == b'%')
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL's path: what follows its scheme and host.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or(rest, |i| &rest[i..])
}

/// Download a source file by its pool path from the first of apt's mirrors that has
/// it, with apt's own downloader (`apt-helper download-file`); `skip` mirrors are
/// tried last (a retry starts from another mirror).
fn mirror_download(p: &DebianPackage, dir: &Path, skip: usize) -> Result<PathBuf, FetchError> {
    mirror_download_many(&[p], dir, skip)
        .pop()
        .expect("one result per package")
}

/// Download several packages' files into `dir`, one `apt-helper` run per mirror for
/// those no earlier mirror had, the first `skip` mirrors tried last; per package, its
/// file or an error naming every mirror's answer.
fn mirror_download_many(
    ps: &[&DebianPackage],
    dir: &Path,
    skip: usize,
) -> Vec<Result<PathBuf, FetchError>> {
    let fail = |p: &DebianPackage, message: String| FetchError::Download {
        package: p.name.clone(),
        message,
    };
    let mut mirrors = match apt_mirrors() {
        Ok(m) => m,
        Err(e) => return ps.iter().map(|p| Err(fail(p, e.clone()))).collect(),
    };
    let n = mirrors.len();
    mirrors.rotate_left(skip % n);
    let targets: Vec<PathBuf> = ps.iter().map(|p| dir.join(p.file_name())).collect();
    targets.iter().for_each(|t| drop(fs::remove_file(t)));
    let mut errors: Vec<Vec<String>> = vec![Vec::new(); ps.len()];
    let mut done = vec![false; ps.len()];
    for m in &mirrors {
        let pending: Vec<usize> = (0..ps.len()).filter(|&j| !done[j]).collect();
        if pending.is_empty() {
            break;
        }
        let files: Vec<AptFile> = pending
            .iter()
            .map(|&j| AptFile {
                url: format!("{m}/{}", ps[j].path),
                target: targets[j].clone(),
                sha256: Some(ps[j].hash().to_base16()),
            })
            .collect();
        for (&j, r) in pending.iter().zip(apt_download_many(&files)) {
            match r {
                Ok(()) => done[j] = true,
                Err(e) => {
                    // A failed download may leave part of the file behind.
                    let _ = fs::remove_file(&targets[j]);
                    errors[j].push(e);
                }
            }
        }
    }
    ps.iter()
        .zip(targets)
        .enumerate()
        .map(|(j, (p, t))| {
            if done[j] {
                return Ok(t);
            }
            // The last mirror's file didn't match: refused as a mismatch, with both hashes.
            let received = errors[j].last().and_then(|e| apt_received_sha256(e));
            match received.and_then(|h| NixHash::parse(h, Some(HashAlgo::Sha256)).ok()) {
                Some(actual) => Err(FetchError::Mismatch {
                    package: p.name.clone(),
                    file: t,
                    expected: p.hash().to_sri(),
                    actual: actual.to_sri(),
                }),
                None => Err(fail(
                    p,
                    format!(
                        "{} is on none of apt's mirrors: {}",
                        p.path,
                        errors[j].join("; ")
                    ),
                )),
            }
        })
        .collect()
}

/// Make one pinned package valid in the store: reuse it if present, else take it from
/// `from` (a directory of pool files) or download it by its pool path from apt's
/// mirrors (any suite, whatever suites the machine's apt lists), verify it, and add it.
pub fn fetch_package(p: &DebianPackage, from: Option<&Path>) -> Result<Fetched, FetchError> {
    let expected = expected_store_path(p);
    if is_valid_in_store(&expected) {
        return Ok(Fetched {
            package: p.name.clone(),
            store_path: expected.to_string(),
            outcome: Outcome::Present,
        });
    }
    let work = tempdir(&p.name)?;
    let result = (|| {
        let file = match from {
            Some(dir) => {
                let f = dir.join(p.file_name());
                if !f.is_file() {
                    return Err(FetchError::Download {
                        package: p.name.clone(),
                        message: format!("{} not found in {}", p.file_name(), dir.display()),
                    });
                }
                f
            }
            None => mirror_download(p, &work, 0)?,
        };
        verify(p, &file)?;
        // Store names can't hold `%`: add the file under its store name.
        let named = work.join(p.store_name());
        if file != named {
            fs::copy(&file, &named).map_err(|e| FetchError::Io {
                file: named.clone(),
                source: e,
            })?;
        }
        let got = add_fixed(&named, FileIngestion::Flat, &expected)?;
        Ok(Fetched {
            package: p.name.clone(),
            store_path: got,
            outcome: Outcome::Added,
        })
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// A new work directory of this process (a sequence number keeps those made at the
/// same time by different threads apart).
fn tempdir(label: &str) -> Result<PathBuf, FetchError> {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base =
        std::env::temp_dir().join(format!("rdma-nix-fetch-{}-{n}-{label}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).map_err(|e| FetchError::Io {
        file: base.clone(),
        source: e,
    })?;
    Ok(base)
}

/// Store name of an unpacked source tree: `source`, as `fetchzip` and
/// `fetchFromGitHub` name theirs, so the path is the one nixpkgs' fetchers give for
/// the same tree and hash.
pub const TREE_NAME: &str = "source";

/// The store path of a source tarball's pinned tree (`nix-store --add-fixed
/// --recursive sha256`, and the output of a `fetchzip` with that hash).
pub fn tree_store_path(p: &DebianPackage) -> Option<StorePath> {
    let hash = p.tree_hash()?;
    Some(
        fixed_output_path(FileIngestion::Recursive, &hash, TREE_NAME, &BTreeSet::new())
            .expect("a valid store name"),
    )
}

/// A (fetched) source tarball unpacked in memory, top directory stripped, with its
/// tree's NAR hash.
fn unpacked(p: &DebianPackage) -> Result<(crate::archive::tree::SourceTree, NixHash), FetchError> {
    let tarball = PathBuf::from(expected_store_path(p).to_string());
    let tree = crate::archive::tree::SourceTree::from_tarball(
        &tarball,
        crate::archive::DEFAULT_MAX_UNPACKED,
    )
    .map_err(|e| FetchError::Download {
        package: p.name.clone(),
        message: e.to_string(),
    })?;
    let (hash, _) = tree.nar_hash().map_err(|e| FetchError::Cause {
        file: tarball,
        what: "hashing the unpacked tree",
        source: Box::new(e),
    })?;
    Ok((tree, hash))
}

/// The NAR hash of a (fetched) source tarball's tree: the `tree` pin a new release gets.
pub fn tree_hash(p: &DebianPackage) -> Result<NixHash, FetchError> {
    Ok(unpacked(p)?.1)
}

/// Make a source tarball's pinned tree valid in the store: unpack the (already fetched)
/// tarball in Rust, top directory stripped, check its NAR hash against the pin, add it.
pub fn fetch_tree(p: &DebianPackage) -> Result<Option<Fetched>, FetchError> {
    let (Some(expected), Some(pin)) = (tree_store_path(p), p.tree_hash()) else {
        return Ok(None);
    };
    let label = format!("{} tree", p.name);
    if is_valid_in_store(&expected) {
        return Ok(Some(Fetched {
            package: label,
            store_path: expected.to_string(),
            outcome: Outcome::Present,
        }));
    }
    let tarball = PathBuf::from(expected_store_path(p).to_string());
    let (tree, actual) = unpacked(p)?;
    if actual != pin {
        return Err(FetchError::Mismatch {
            package: label,
            file: tarball,
            expected: pin.to_sri(),
            actual: actual.to_sri(),
        });
    }
    let work = tempdir(&format!("{}-tree", p.name))?;
    let result = (|| {
        let dir = work.join(TREE_NAME);
        tree.write_to(&dir).map_err(|e| FetchError::Cause {
            file: dir.clone(),
            what: "writing the tree",
            source: Box::new(e),
        })?;
        let got = add_fixed(&dir, FileIngestion::Recursive, &expected)?;
        Ok(Some(Fetched {
            package: label,
            store_path: got,
            outcome: Outcome::Added,
        }))
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// The store path of an extracted kernel source (`nix-store --add-fixed --recursive`).
pub fn kernel_source_store_path(ks: &KernelSource) -> StorePath {
    fixed_output_path(
        FileIngestion::Recursive,
        &ks.nar_hash(),
        &ks.name,
        &BTreeSet::new(),
    )
    .expect("store name validated with the manifest")
}

/// Extracts a kernel source's subtrees from its (fetched) package into a scratch
/// directory, in Rust, and hands the tree and its NAR hash to `then`; the scratch is
/// removed afterwards, whatever `then` gives.
fn with_extracted<T>(
    ks: &KernelSource,
    package: &DebianPackage,
    then: impl FnOnce(PathBuf, NixHash) -> Result<T, FetchError>,
) -> Result<T, FetchError> {
    let deb = PathBuf::from(expected_store_path(package).to_string());
    let work = tempdir(&ks.name)?;
    let result = (|| {
        let tree = work.join(&ks.name);
        let subdirs: Vec<PathBuf> = ks.subdirs.iter().map(PathBuf::from).collect();
        crate::kernel::source::extract_subtrees(
            &deb,
            &subdirs,
            &tree,
            crate::archive::DEFAULT_MAX_UNPACKED,
        )
        .map_err(|e| FetchError::Download {
            package: ks.name.clone(),
            message: e.to_string(),
        })?;
        let (hash, _) = crate::nix::nar::hash_path(&tree).map_err(|e| FetchError::Cause {
            file: tree.clone(),
            what: "hashing the tree",
            source: Box::new(e),
        })?;
        then(tree, hash)
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// The NAR hash of a kernel source's subtrees, extracted from its (fetched) package:
/// the `hash` a new `[[kernel_source]]` is pinned with.
pub fn kernel_source_hash(
    ks: &KernelSource,
    package: &DebianPackage,
) -> Result<NixHash, FetchError> {
    with_extracted(ks, package, |_, hash| Ok(hash))
}

/// Make an extracted kernel source valid in the store: extract its subtrees from the
/// (already fetched) package in Rust, check the NAR hash against the pin, add it.
pub fn fetch_kernel_source(
    ks: &KernelSource,
    package: &DebianPackage,
) -> Result<Fetched, FetchError> {
    let expected = kernel_source_store_path(ks);
    if is_valid_in_store(&expected) {
        return Ok(Fetched {
            package: ks.name.clone(),
            store_path: expected.to_string(),
            outcome: Outcome::Present,
        });
    }
    with_extracted(ks, package, |tree, actual| {
        if actual != ks.nar_hash() {
            return Err(FetchError::Mismatch {
                package: ks.name.clone(),
                file: tree,
                expected: ks.nar_hash().to_sri(),
                actual: actual.to_sri(),
            });
        }
        let got = add_fixed(&tree, FileIngestion::Recursive, &expected)?;
        Ok(Fetched {
            package: ks.name.clone(),
            store_path: got,
            outcome: Outcome::Added,
        })
    })
}

/// The store path of the bootstrap file (`nix-store --add-fixed --recursive`).
pub fn bootstrap_store_path(b: &Bootstrap) -> StorePath {
    fixed_output_path(
        FileIngestion::Recursive,
        &b.nar_hash(),
        &b.name,
        &BTreeSet::new(),
    )
    .expect("store name validated with the manifest")
}

/// Make the bootstrap file valid in the store: take it out of its (already fetched)
/// package in Rust, executable, at its path in the package (`$out/bin/busybox`: a
/// multi-call binary needs its own name as `argv[0]`), check the NAR hash of that tree
/// against the pin, add it.
pub fn fetch_bootstrap(b: &Bootstrap, package: &DebianPackage) -> Result<Fetched, FetchError> {
    let expected = bootstrap_store_path(b);
    if is_valid_in_store(&expected) {
        return Ok(Fetched {
            package: b.name.clone(),
            store_path: expected.to_string(),
            outcome: Outcome::Present,
        });
    }
    let deb = PathBuf::from(expected_store_path(package).to_string());
    let work = tempdir(&b.name)?;
    let result = (|| {
        let dir = work.join(&b.name);
        let want = crate::archive::deb::safe_relative(Path::new(&b.file))
            .expect("validated with the manifest");
        let target = dir.join(&want);
        fs::create_dir_all(target.parent().expect("a file path")).map_err(|e| FetchError::Io {
            file: target.clone(),
            source: e,
        })?;
        let mut found = false;
        crate::archive::deb::for_each_entry(&deb, crate::archive::DEFAULT_MAX_UNPACKED, |e| {
            if e.path != want || e.kind != tar::EntryType::Regular {
                return Ok(true);
            }
            let mut out = fs::File::create(&target)?;
            std::io::copy(e.reader, &mut out)?;
            found = true;
            Ok(false)
        })
        .map_err(|e| FetchError::Download {
            package: b.name.clone(),
            message: e.to_string(),
        })?;
        if !found {
            return Err(FetchError::Download {
                package: b.name.clone(),
                message: format!(
                    "{}: no regular file {} in the package",
                    deb.display(),
                    b.file
                ),
            });
        }
        let io = |e: std::io::Error| FetchError::Io {
            file: target.clone(),
            source: e,
        };
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).map_err(io)?;
        let (actual, _) = crate::nix::nar::hash_path(&dir).map_err(|e| FetchError::Cause {
            file: dir.clone(),
            what: "hashing the tree",
            source: Box::new(e),
        })?;
        if actual != b.nar_hash() {
            return Err(FetchError::Mismatch {
                package: b.name.clone(),
                file: dir,
                expected: b.nar_hash().to_sri(),
                actual: actual.to_sri(),
            });
        }
        let got = add_fixed(&dir, FileIngestion::Recursive, &expected)?;
        Ok(Fetched {
            package: b.name.clone(),
            store_path: got,
            outcome: Outcome::Added,
        })
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

#[cfg(test)]
mod tests {
    use super::{apt_errors, apt_received_sha256, failed_path, percent_decode, url_path};

    /// apt's error line quotes a URL's path (seen with apt 2.6): a pool file with `+`
    /// and `~` in its name is still found in it.
    #[test]
    fn apt_errors_keep_their_indented_lines_and_name_the_received_hash() {
        let stderr = "Get:1 file:/s/a [6 B]\n\
            W: Download is performed unsandboxed as root\n\
            E: Failed to fetch file:/s/a  Hash Sum mismatch\n   \
            Hashes of expected file:\n    \
            - SHA256:00ff\n   \
            Hashes of received file:\n    \
            - SHA256:5891b5\n    \
            - Filesize:6 [weak]\n\
            E: Download Failed\n";
        let errors = apt_errors(stderr);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].starts_with("E: Failed to fetch file:/s/a  Hash Sum mismatch\n"));
        assert_eq!(apt_received_sha256(&errors[0]), Some("5891b5"));
        assert_eq!(apt_received_sha256(&errors[1]), None);
    }

    #[test]
    fn apt_error_lines_are_matched_by_the_unquoted_path() {
        let url = "http://mirror.invalid/debian/pool/main/g/gcc/libstdc++6_1.0~rc1+b1_amd64.deb";
        let line = "E: Failed to fetch http://mirror.invalid/debian/pool/main/g/gcc/libstdc%2b%2b6_1.0%7erc1%2bb1_amd64.deb  404  Not Found";
        assert!(!line.contains(url_path(url)));
        assert_eq!(failed_path(line).as_deref(), Some(url_path(url)));
        // A path that only begins another's is not it.
        let b = "E: Failed to fetch file:/s/bad  Hash Sum mismatch";
        assert_ne!(failed_path(b).as_deref(), Some("/s/b"));
        assert_eq!(failed_path("E: Download Failed"), None);
        assert_eq!(url_path("file:///tmp/x/a.deb"), "/tmp/x/a.deb");
        assert_eq!(percent_decode("100% of %zz and %4"), "100% of %zz and %4");
    }
}
