//! Debian packages: an `ar` archive whose `data.tar.{xz,zst,gz}` member holds the
//! files. Read as a stream; nothing is unpacked to disk.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

use super::ar::{self, ArError};
use super::Limited;

#[derive(Debug, Error)]
pub enum DebError {
    #[error("{file}: {source}")]
    Ar {
        file: PathBuf,
        #[source]
        source: ArError,
    },
    #[error("{file}: no data.tar member (not a Debian binary package?)")]
    NoData { file: PathBuf },
    #[error("{file}: {member} uses an unsupported compression")]
    Compression { file: PathBuf, member: String },
    #[error("{file}: {member}: {message}")]
    Data {
        file: PathBuf,
        member: String,
        message: String,
    },
}

/// A file inside the package's data, with its normalised relative path.
pub struct Entry<'a> {
    pub path: PathBuf,
    pub kind: tar::EntryType,
    pub size: u64,
    pub link_target: Option<PathBuf>,
    pub reader: &'a mut dyn Read,
}

/// Normalise a tar path (`./usr/src/x` → `usr/src/x`); None for paths that are
/// absolute or climb out with `..`.
pub fn safe_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn decompressor<'a>(member: &str, r: &'a mut dyn Read) -> Option<Box<dyn Read + 'a>> {
    if member.ends_with(".xz") {
        Some(Box::new(xz2::read::XzDecoder::new(r)))
    } else if member.ends_with(".gz") {
        Some(Box::new(flate2::read::GzDecoder::new(r)))
    } else if member.ends_with(".zst") {
        ruzstd::decoding::StreamingDecoder::new(r)
            .ok()
            .map(|d| Box::new(d) as Box<dyn Read + 'a>)
    } else if member == "data.tar" {
        Some(Box::new(r))
    } else {
        None
    }
}

/// Calls `visit` for each regular file, directory and link in the package's data,
/// until it returns false. Entries with unsafe paths are rejected as an error.
pub fn for_each_entry(
    file: &Path,
    max_unpacked: u64,
    mut visit: impl FnMut(Entry<'_>) -> io::Result<bool>,
) -> Result<(), DebError> {
    let f = File::open(file).map_err(|e| DebError::Ar {
        file: file.to_path_buf(),
        source: ArError::Io(e),
    })?;
    let mut found = false;
    let mut data_err: Option<DebError> = None;
    ar::for_each_member(BufReader::with_capacity(1 << 16, f), |name, _size, r| {
        if !name.starts_with("data.tar") {
            return Ok(true);
        }
        found = true;
        let Some(dec) = decompressor(name, r) else {
            data_err = Some(DebError::Compression {
                file: file.to_path_buf(),
                member: name.to_string(),
            });
            return Ok(false);
        };
        let fail = |message: String| DebError::Data {
            file: file.to_path_buf(),
            member: name.to_string(),
            message,
        };
        let mut archive = tar::Archive::new(Limited::new(dec, max_unpacked));
        let result: Result<(), DebError> = (|| {
            for entry in archive.entries().map_err(|e| fail(e.to_string()))? {
                let mut entry = entry.map_err(|e| fail(e.to_string()))?;
                let raw = entry.path().map_err(|e| fail(e.to_string()))?.into_owned();
                let path = safe_relative(&raw).ok_or_else(|| {
                    fail(format!("entry {} escapes the package root", raw.display()))
                })?;
                let kind = entry.header().entry_type();
                let size = entry.size();
                let link_target = entry.link_name().ok().flatten().map(|l| l.into_owned());
                let keep_going = visit(Entry {
                    path,
                    kind,
                    size,
                    link_target,
                    reader: &mut entry,
                })
                .map_err(|e| fail(e.to_string()))?;
                if !keep_going {
                    break;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            data_err = Some(e);
        }
        Ok(false)
    })
    .map_err(|source| DebError::Ar {
        file: file.to_path_buf(),
        source,
    })?;
    if let Some(e) = data_err {
        return Err(e);
    }
    if !found {
        return Err(DebError::NoData {
            file: file.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        assert_eq!(
            safe_relative(Path::new("./usr/x")).unwrap(),
            PathBuf::from("usr/x")
        );
        assert!(safe_relative(Path::new("../etc/passwd")).is_none());
        assert!(safe_relative(Path::new("/etc/passwd")).is_none());
        assert!(safe_relative(Path::new("a/../../b")).is_none());
    }
}
