//! Extracting subtrees of a kernel source tarball (`linux-source-X.tar.xz`, as such
//! or inside Debian's `linux-source-X` package) without unpacking the rest: the
//! stream is decompressed once and only the wanted entries are written.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::archive::{deb, deb::safe_relative, Limited};

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{file}: {message}")]
    Input { file: PathBuf, message: String },
    #[error("{file}: {entry}: {message}")]
    Entry {
        file: PathBuf,
        entry: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Output { path: PathBuf, message: String },
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Extracted {
    pub files: usize,
    pub bytes: u64,
}

/// Is `rel` (below the tarball's top directory) inside one of `subdirs`?
fn wanted(rel: &Path, subdirs: &[PathBuf]) -> bool {
    subdirs.iter().any(|s| rel.starts_with(s))
}

struct Progress {
    last: Instant,
    read: u64,
}

impl Progress {
    fn tick(&mut self, n: u64) {
        self.read += n;
        if self.last.elapsed() > Duration::from_secs(2) {
            eprintln!("  … {} MiB of source read", self.read >> 20);
            self.last = Instant::now();
        }
    }
}

fn extract_tar(
    tar_xz: impl Read,
    file: &Path,
    subdirs: &[PathBuf],
    out: &Path,
    max: u64,
) -> Result<Extracted, SourceError> {
    let input = |message: String| SourceError::Input {
        file: file.to_path_buf(),
        message,
    };
    let mut ar = tar::Archive::new(Limited::new(xz2::read::XzDecoder::new(tar_xz), max));
    let mut done = Extracted::default();
    let mut progress = Progress {
        last: Instant::now(),
        read: 0,
    };
    let mut seen = std::collections::BTreeSet::new();
    let entries = ar
        .entries()
        .map_err(|e| input(format!("corrupt kernel source tarball: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| input(format!("corrupt kernel source tarball: {e}")))?;
        progress.tick(entry.size());
        let raw = entry
            .path()
            .map_err(|e| input(format!("unreadable entry name: {e}")))?
            .into_owned();
        let entry_err = |message: &str| SourceError::Entry {
            file: file.to_path_buf(),
            entry: raw.display().to_string(),
            message: message.to_string(),
        };
        let Some(rel) = safe_relative(&raw) else {
            return Err(entry_err(
                "absolute path or `..`: refusing a hostile tarball",
            ));
        };
        // Below the top directory (`linux-source-6.1/`).
        let below: PathBuf = rel.components().skip(1).collect();
        if below.as_os_str().is_empty() || !wanted(&below, subdirs) {
            continue;
        }
        let kind = entry.header().entry_type();
        let target = out.join(&below);
        let werr = |e: io::Error| SourceError::Output {
            path: target.clone(),
            message: e.to_string(),
        };
        match kind {
            tar::EntryType::Directory => fs::create_dir_all(&target).map_err(werr)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if !seen.insert(below.clone()) {
                    return Err(entry_err("listed twice"));
                }
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p).map_err(werr)?;
                }
                let mut f = fs::File::create(&target).map_err(werr)?;
                done.bytes += io::copy(&mut entry, &mut f)
                    .map_err(|e| entry_err(&format!("cannot extract: {e}")))?;
                let exec = entry
                    .header()
                    .mode()
                    .map(|m| m & 0o111 != 0)
                    .unwrap_or(false);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = if exec { 0o755 } else { 0o644 };
                    fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(werr)?;
                }
                done.files += 1;
            }
            _ => return Err(entry_err(
                "links, devices and other special entries are not extracted from kernel sources",
            )),
        }
    }
    for s in subdirs {
        if !seen.iter().any(|p| p.starts_with(s)) {
            return Err(input(format!("no files under {}", s.display())));
        }
    }
    Ok(done)
}

/// Extract `subdirs` (paths below the tarball's top directory, e.g.
/// `drivers/infiniband/sw/siw`) of a kernel source `.tar.xz`, or of the one inside a
/// `linux-source-*` Debian package, into `out` (which must not exist yet).
pub fn extract_subtrees(
    file: &Path,
    subdirs: &[PathBuf],
    out: &Path,
    max: u64,
) -> Result<Extracted, SourceError> {
    for s in subdirs {
        if safe_relative(s).as_deref() != Some(s.as_path()) || s.as_os_str().is_empty() {
            return Err(SourceError::Input {
                file: file.to_path_buf(),
                message: format!("subdirectory {} must be a plain relative path", s.display()),
            });
        }
    }
    if out.exists() {
        return Err(SourceError::Output {
            path: out.to_path_buf(),
            message: "already exists; refusing to extract over it".into(),
        });
    }
    fs::create_dir_all(out).map_err(|e| SourceError::Output {
        path: out.to_path_buf(),
        message: e.to_string(),
    })?;
    let result = (|| {
        if file.extension().is_none_or(|x| x != "deb") {
            let f = fs::File::open(file).map_err(|e| SourceError::Input {
                file: file.to_path_buf(),
                message: format!("cannot open: {e}"),
            })?;
            return extract_tar(io::BufReader::new(f), file, subdirs, out, max);
        }
        let mut res: Option<Result<Extracted, SourceError>> = None;
        deb::for_each_entry(file, max, |e| {
            let name = e.path.to_string_lossy();
            if name.starts_with("usr/src/linux-source-") && name.ends_with(".tar.xz") {
                res = Some(extract_tar(&mut *e.reader, file, subdirs, out, max));
                return Ok(false);
            }
            Ok(true)
        })
        .map_err(|e| SourceError::Input {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        res.unwrap_or_else(|| {
            Err(SourceError::Input {
                file: file.to_path_buf(),
                message: "no usr/src/linux-source-*.tar.xz inside (not a linux-source package?)"
                    .into(),
            })
        })
    })();
    if result.is_err() {
        // Nothing half-written is left behind.
        let _ = fs::remove_dir_all(out);
    }
    result
}
