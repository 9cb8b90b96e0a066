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
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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

/// An entry of a kernel source tarball, below its top directory.
struct SourceEntry<'a> {
    /// The top directory (`linux-source-6.1`).
    top: &'a str,
    below: &'a Path,
    raw: &'a Path,
    kind: tar::EntryType,
    exec: bool,
    reader: &'a mut dyn Read,
}

/// Streams a kernel source `.tar.xz`, calling `visit` for every entry below the top
/// directory; entries with hostile names are refused.
fn walk_tar(
    tar_xz: impl Read,
    file: &Path,
    max: u64,
    visit: &mut dyn FnMut(SourceEntry<'_>) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let input = |message: String| SourceError::Input {
        file: file.to_path_buf(),
        message,
    };
    let mut ar = tar::Archive::new(Limited::new(xz2::read::XzDecoder::new(tar_xz), max));
    let mut progress = Progress {
        last: Instant::now(),
        read: 0,
    };
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
        let Some(rel) = safe_relative(&raw) else {
            return Err(SourceError::Entry {
                file: file.to_path_buf(),
                entry: raw.display().to_string(),
                message: "absolute path or `..`: refusing a hostile tarball".into(),
            });
        };
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let below: PathBuf = rel.components().skip(1).collect();
        if below.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        let exec = entry
            .header()
            .mode()
            .map(|m| m & 0o111 != 0)
            .unwrap_or(false);
        visit(SourceEntry {
            top: &top,
            below: &below,
            raw: &raw,
            kind,
            exec,
            reader: &mut entry,
        })?;
    }
    Ok(())
}

fn extract_tar(
    tar_xz: impl Read,
    file: &Path,
    subdirs: &[PathBuf],
    out: &Path,
    max: u64,
) -> Result<Extracted, SourceError> {
    let mut done = Extracted::default();
    let mut seen = std::collections::BTreeSet::new();
    walk_tar(tar_xz, file, max, &mut |e| {
        if !wanted(e.below, subdirs) {
            return Ok(());
        }
        let entry_err = |message: &str| SourceError::Entry {
            file: file.to_path_buf(),
            entry: e.raw.display().to_string(),
            message: message.to_string(),
        };
        let target = out.join(e.below);
        let werr = |source: io::Error| SourceError::Io {
            path: target.clone(),
            source,
        };
        match e.kind {
            tar::EntryType::Directory => fs::create_dir_all(&target).map_err(werr)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if !seen.insert(e.below.to_path_buf()) {
                    return Err(entry_err("listed twice"));
                }
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p).map_err(werr)?;
                }
                let mut f = fs::File::create(&target).map_err(werr)?;
                done.bytes += io::copy(e.reader, &mut f)
                    .map_err(|err| entry_err(&format!("cannot extract: {err}")))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = if e.exec { 0o755 } else { 0o644 };
                    fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(werr)?;
                }
                done.files += 1;
            }
            _ => return Err(entry_err(
                "links, devices and other special entries are not extracted from kernel sources",
            )),
        }
        Ok(())
    })?;
    for s in subdirs {
        if !seen.iter().any(|p| p.starts_with(s)) {
            return Err(SourceError::Input {
                file: file.to_path_buf(),
                message: format!("no files under {}", s.display()),
            });
        }
    }
    Ok(done)
}

/// Text files read out of a kernel source tarball.
#[derive(Debug, Default)]
pub struct SourceFiles {
    /// The tarball's top directory (`linux-source-6.1`).
    pub top: String,
    /// Path below the top directory → contents.
    pub files: std::collections::BTreeMap<PathBuf, String>,
}

/// Calls `f` with the source `.tar.xz` stream: the file itself, or the one inside a
/// `linux-source-*` Debian package.
fn with_source_tar<T>(
    file: &Path,
    max: u64,
    f: &mut dyn FnMut(&mut dyn Read) -> Result<T, SourceError>,
) -> Result<T, SourceError> {
    if file.extension().is_none_or(|x| x != "deb") {
        let h = fs::File::open(file).map_err(|e| SourceError::Input {
            file: file.to_path_buf(),
            message: format!("cannot open: {e}"),
        })?;
        return f(&mut io::BufReader::new(h));
    }
    let mut res: Option<Result<T, SourceError>> = None;
    deb::for_each_entry(file, max, |e| {
        let name = e.path.to_string_lossy();
        if name.starts_with("usr/src/linux-source-") && name.ends_with(".tar.xz") {
            res = Some(f(&mut *e.reader));
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
            message: "no usr/src/linux-source-*.tar.xz inside (not a linux-source package?)".into(),
        })
    })
}

/// Reads the regular files `want` selects (paths below the top directory) out of a
/// kernel source `.tar.xz` stream, each at most `max_file` bytes and valid UTF-8
/// (`file` names the stream in errors).
pub fn read_tar_files(
    tar_xz: &mut dyn Read,
    file: &Path,
    max: u64,
    max_file: u64,
    want: &dyn Fn(&Path) -> bool,
) -> Result<SourceFiles, SourceError> {
    let mut out = SourceFiles::default();
    walk_tar(tar_xz, file, max, &mut |e| {
        if out.top.is_empty() {
            out.top = e.top.to_string();
        } else if out.top != e.top {
            return Err(SourceError::Entry {
                file: file.to_path_buf(),
                entry: e.raw.display().to_string(),
                message: format!("outside the top directory {}", out.top),
            });
        }
        if !matches!(e.kind, tar::EntryType::Regular | tar::EntryType::Continuous) || !want(e.below)
        {
            return Ok(());
        }
        let entry_err = |message: String| SourceError::Entry {
            file: file.to_path_buf(),
            entry: e.raw.display().to_string(),
            message,
        };
        let mut text = String::new();
        e.reader
            .take(max_file + 1)
            .read_to_string(&mut text)
            .map_err(|err| entry_err(format!("not readable as text: {err}")))?;
        if text.len() as u64 > max_file {
            return Err(entry_err(format!("larger than {max_file} bytes")));
        }
        out.files.insert(e.below.to_path_buf(), text);
        Ok(())
    })?;
    if out.top.is_empty() {
        return Err(SourceError::Input {
            file: file.to_path_buf(),
            message: "an empty kernel source tarball".into(),
        });
    }
    Ok(out)
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
    fs::create_dir_all(out).map_err(|source| SourceError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let result = with_source_tar(file, max, &mut |tar_xz| {
        extract_tar(tar_xz, file, subdirs, out, max)
    });
    if result.is_err() {
        // Nothing half-written is left behind.
        let _ = fs::remove_dir_all(out);
    }
    result
}

/// Reads the regular files `want` selects (paths below `dir`) out of an unpacked
/// kernel source tree, such as an extracted `[[kernel_source]]` in the store, each at
/// most `max_file` bytes and valid UTF-8. Symbolic links are not followed.
pub fn read_dir_files(
    dir: &Path,
    max_file: u64,
    want: &dyn Fn(&Path) -> bool,
) -> Result<std::collections::BTreeMap<PathBuf, String>, SourceError> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let err = |path: &Path, source: io::Error| SourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        for entry in fs::read_dir(&here).map_err(|e| err(&here, e))? {
            let entry = entry.map_err(|e| err(&here, e))?;
            let below = rel.join(entry.file_name());
            let kind = entry.file_type().map_err(|e| err(&entry.path(), e))?;
            if kind.is_dir() {
                stack.push(below);
            } else if kind.is_file() && want(&below) {
                let path = entry.path();
                let mut text = String::new();
                fs::File::open(&path)
                    .and_then(|f| f.take(max_file + 1).read_to_string(&mut text))
                    .map_err(|e| SourceError::Input {
                        file: path.clone(),
                        message: format!("not readable as text: {e}"),
                    })?;
                if text.len() as u64 > max_file {
                    return Err(SourceError::Input {
                        file: path,
                        message: format!("larger than {max_file} bytes"),
                    });
                }
                out.insert(below, text);
            }
        }
    }
    Ok(out)
}
