//! A source tarball read as the tree it unpacks to, with its single top-level
//! directory stripped (what nixpkgs' `fetchzip` and `fetchFromGitHub` store): the tar
//! stream is read once, file contents are spooled to an unlinked temporary file and
//! only names and offsets stay in memory. The tree can then be hashed as a NAR (its
//! pin: the same whatever the compression, top directory name or entry order of the
//! tarball that carried it), read file by file, or written out to a directory.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{deb::safe_relative, Compression, Limited};
use crate::nix::nar::{HashingCounter, NarWriter, MAGIC};
use crate::nix::{HashAlgo, NixHash};

#[derive(Debug, Error)]
pub enum TreeError {
    #[error("{file}: {message}")]
    Archive { file: PathBuf, message: String },
    #[error("{file}: {entry}: {message}")]
    Entry {
        file: PathBuf,
        entry: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
}

/// One node of the tree. File contents live in the spool at `offset..offset + len`.
#[derive(Debug, Clone)]
enum Node {
    File { exec: bool, offset: u64, len: u64 },
    Symlink(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, Node>),
}

/// The unpacked tree of a source tarball, below its top-level directory.
pub struct SourceTree {
    /// The top-level directory the tarball had (stripped here).
    pub top_dir: String,
    root: BTreeMap<Vec<u8>, Node>,
    spool: File,
    spool_len: u64,
}

/// A file's path below the top directory, as `/`-separated components.
fn components(rel: &str) -> Vec<&[u8]> {
    rel.split('/')
        .filter(|c| !c.is_empty())
        .map(str::as_bytes)
        .collect()
}

/// A new temporary file, already unlinked: it disappears with its handle.
fn spool_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = dir.join(format!(
            "rdma-nix-spool-{}-{}-{attempt}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free temporary file name"))
}

impl SourceTree {
    /// Read a `.tar.gz` or `.tar.xz` file; at most `max_unpacked` bytes are
    /// decompressed.
    pub fn from_tarball(path: &Path, max_unpacked: u64) -> Result<Self, TreeError> {
        let f = File::open(path).map_err(|e| TreeError::Archive {
            file: path.to_path_buf(),
            message: format!("cannot open: {e}"),
        })?;
        Self::from_compressed(f, path, max_unpacked)
    }

    /// Read a compressed tarball from any reader (gzip or xz, told by its magic bytes);
    /// `file` names it in errors.
    pub fn from_compressed(
        r: impl Read,
        file: &Path,
        max_unpacked: u64,
    ) -> Result<Self, TreeError> {
        let archive_err = |message: String| TreeError::Archive {
            file: file.to_path_buf(),
            message,
        };
        let mut r = BufReader::with_capacity(1 << 16, r);
        let magic = r
            .fill_buf()
            .map_err(|e| archive_err(format!("cannot read: {e}")))?
            .to_vec();
        let decoder = Compression::sniff(&magic).decoder(r).ok_or_else(|| {
            archive_err("not a gzip or xz compressed tarball (unknown magic bytes)".into())
        })?;
        Self::from_tar(Limited::new(decoder, max_unpacked), file)
    }

    /// Read an uncompressed tar stream.
    pub fn from_tar(r: impl Read, file: &Path) -> Result<Self, TreeError> {
        let archive_err = |message: String| TreeError::Archive {
            file: file.to_path_buf(),
            message,
        };
        let spool = spool_file().map_err(|e| archive_err(format!("temporary file: {e}")))?;
        let mut tree = SourceTree {
            top_dir: String::new(),
            root: BTreeMap::new(),
            spool,
            spool_len: 0,
        };
        let mut top: Option<String> = None;
        let mut ar = tar::Archive::new(r);
        let entries = ar
            .entries()
            .map_err(|e| archive_err(format!("corrupt tar stream: {e}")))?;
        let mut spool_out = BufWriter::with_capacity(
            1 << 16,
            tree.spool
                .try_clone()
                .map_err(|e| archive_err(format!("temporary file: {e}")))?,
        );
        for entry in entries {
            let mut entry = entry.map_err(|e| archive_err(format!("corrupt tar stream: {e}")))?;
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
            ) {
                continue;
            }
            let raw = entry
                .path()
                .map_err(|e| archive_err(format!("entry with an unreadable name: {e}")))?
                .into_owned();
            let shown = raw.display().to_string();
            let entry_err = |message: String| TreeError::Entry {
                file: file.to_path_buf(),
                entry: shown.clone(),
                message,
            };
            let Some(rel) = safe_relative(&raw) else {
                return Err(entry_err(
                    "absolute path or `..` component: refusing a hostile tarball".into(),
                ));
            };
            let Some(rel) = rel.to_str().map(str::to_string) else {
                return Err(entry_err("file name is not UTF-8".into()));
            };
            if rel.is_empty() {
                continue;
            }
            let (first, below) = match rel.split_once('/') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (rel.clone(), String::new()),
            };
            match &top {
                None => top = Some(first),
                Some(t) if *t == first => {}
                Some(t) => {
                    return Err(entry_err(format!(
                        "outside the top-level directory {t:?}: a source tarball has exactly one"
                    )))
                }
            }
            if below.is_empty() {
                if kind != tar::EntryType::Directory {
                    return Err(entry_err(
                        "the top level holds a file, not a directory".into(),
                    ));
                }
                continue;
            }
            let node = match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let len = entry.size();
                    let exec = entry
                        .header()
                        .mode()
                        .map_err(|e| entry_err(e.to_string()))?
                        & 0o100
                        != 0;
                    let copied = io::copy(&mut entry, &mut spool_out)
                        .map_err(|e| entry_err(format!("cannot read: {e}")))?;
                    if copied != len {
                        return Err(entry_err(format!("truncated: {copied} of {len} bytes")));
                    }
                    let offset = tree.spool_len;
                    tree.spool_len += len;
                    Node::File { exec, offset, len }
                }
                tar::EntryType::Directory => Node::Dir(BTreeMap::new()),
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| entry_err("symlink without a target".into()))?
                        .into_owned();
                    if target.is_empty() || target.contains(&0) {
                        return Err(entry_err("symlink with an empty target".into()));
                    }
                    Node::Symlink(target)
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(|e| entry_err(format!("unreadable link target: {e}")))?
                        .ok_or_else(|| entry_err("hard link without a target".into()))?;
                    let t = safe_relative(&target)
                        .and_then(|t| t.to_str().map(str::to_string))
                        .ok_or_else(|| entry_err("hard link target outside the tree".into()))?;
                    let t_below = t
                        .split_once('/')
                        .filter(|(a, _)| Some(*a) == top.as_deref())
                        .map(|(_, b)| b.to_string())
                        .ok_or_else(|| {
                            entry_err(format!("hard link to {t:?}, outside the top directory"))
                        })?;
                    match tree.lookup(&t_below) {
                        Some(n @ Node::File { .. }) => n.clone(),
                        _ => {
                            return Err(entry_err(format!(
                                "hard link to {t:?}, which is not a file listed before it"
                            )))
                        }
                    }
                }
                _ => {
                    return Err(entry_err(
                        "device, fifo or unknown entry type in a source tarball".into(),
                    ))
                }
            };
            tree.insert(&below, node).map_err(entry_err)?;
        }
        spool_out
            .flush()
            .map_err(|e| archive_err(format!("temporary file: {e}")))?;
        tree.top_dir = top.ok_or_else(|| archive_err("empty tarball".into()))?;
        Ok(tree)
    }

    fn lookup(&self, rel: &str) -> Option<&Node> {
        let mut dir = &self.root;
        let parts = components(rel);
        let (last, parents) = parts.split_last()?;
        for p in parents {
            match dir.get(*p)? {
                Node::Dir(d) => dir = d,
                _ => return None,
            }
        }
        dir.get(*last)
    }

    /// Put `node` at `rel`, creating missing parent directories. A directory listed
    /// again (or after its contents) is fine; anything else listed twice is refused.
    fn insert(&mut self, rel: &str, node: Node) -> Result<(), String> {
        let parts = components(rel);
        let Some((last, parents)) = parts.split_last() else {
            return Err("empty name".into());
        };
        let mut dir = &mut self.root;
        for p in parents {
            let next = dir
                .entry(p.to_vec())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            match next {
                Node::Dir(d) => dir = d,
                _ => {
                    return Err(format!(
                        "{:?} is a file but also a parent directory",
                        String::from_utf8_lossy(p)
                    ))
                }
            }
        }
        match (dir.get(*last), &node) {
            (None, _) => {
                dir.insert(last.to_vec(), node);
                Ok(())
            }
            (Some(Node::Dir(_)), Node::Dir(_)) => Ok(()),
            _ => Err("listed twice in the tarball".into()),
        }
    }

    /// The contents of the regular file at `rel` (below the top directory), if any.
    pub fn read_file(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>, TreeError> {
        match self.lookup(rel) {
            Some(Node::File { offset, len, .. }) => {
                if *len > max {
                    return Err(TreeError::Io {
                        path: PathBuf::from(rel),
                        message: format!("larger than {max} bytes"),
                    });
                }
                let mut buf = vec![0u8; *len as usize];
                self.spool
                    .read_exact_at(&mut buf, *offset)
                    .map_err(|e| TreeError::Io {
                        path: PathBuf::from(rel),
                        message: format!("temporary file: {e}"),
                    })?;
                Ok(Some(buf))
            }
            _ => Ok(None),
        }
    }

    /// Every regular file, as a path below the top directory, in NAR order.
    pub fn files(&self) -> Vec<String> {
        fn walk(dir: &BTreeMap<Vec<u8>, Node>, prefix: &str, out: &mut Vec<String>) {
            for (name, node) in dir {
                let path = format!("{prefix}{}", String::from_utf8_lossy(name));
                match node {
                    Node::File { .. } => out.push(path),
                    Node::Dir(d) => walk(d, &format!("{path}/"), out),
                    Node::Symlink(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, "", &mut out);
        out
    }

    /// The subdirectories of the directory `rel` (below the top directory; "" is the
    /// top), if it is one.
    pub fn subdirectories(&self, rel: &str) -> Option<Vec<String>> {
        let dir = if components(rel).is_empty() {
            &self.root
        } else {
            match self.lookup(rel)? {
                Node::Dir(d) => d,
                _ => return None,
            }
        };
        Some(
            dir.iter()
                .filter(|(_, n)| matches!(n, Node::Dir(_)))
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .collect(),
        )
    }

    /// Hand a file's contents (`len` bytes at `offset` in the spool) to `out`, in
    /// 64 KiB pieces.
    fn copy_contents(
        &self,
        offset: u64,
        len: u64,
        mut out: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut buf = vec![0u8; (1 << 16).min(len as usize)];
        let (mut pos, mut left) = (offset, len);
        while left > 0 {
            let n = (buf.len() as u64).min(left) as usize;
            self.spool.read_exact_at(&mut buf[..n], pos)?;
            out(&buf[..n])?;
            pos += n as u64;
            left -= n as u64;
        }
        Ok(())
    }

    /// Serialise the tree as a NAR (what `nix-store --dump` gives for it once unpacked).
    pub fn write_nar(&self, out: impl Write) -> io::Result<()> {
        let mut w = NarWriter::new(out);
        w.str(MAGIC.as_bytes())?;
        self.nar_dir(&mut w, &self.root)
    }

    fn nar_dir<W: Write>(
        &self,
        w: &mut NarWriter<W>,
        dir: &BTreeMap<Vec<u8>, Node>,
    ) -> io::Result<()> {
        w.str(b"(")?;
        w.str(b"type")?;
        w.str(b"directory")?;
        for (name, node) in dir {
            w.str(b"entry")?;
            w.str(b"(")?;
            w.str(b"name")?;
            w.str(name)?;
            w.str(b"node")?;
            match node {
                Node::Dir(d) => self.nar_dir(w, d)?,
                Node::Symlink(t) => {
                    for s in [&b"("[..], b"type", b"symlink", b"target", t, b")"] {
                        w.str(s)?;
                    }
                }
                Node::File { exec, offset, len } => {
                    w.str(b"(")?;
                    w.str(b"type")?;
                    w.str(b"regular")?;
                    if *exec {
                        w.str(b"executable")?;
                        w.str(b"")?;
                    }
                    w.str(b"contents")?;
                    w.raw(&len.to_le_bytes())?;
                    self.copy_contents(*offset, *len, |b| w.raw(b))?;
                    w.pad(*len)?;
                    w.str(b")")?;
                }
            }
            w.str(b")")?;
        }
        w.str(b")")
    }

    /// The tree's NAR hash (sha256) and NAR size: what `nix-hash --type sha256` gives
    /// for it unpacked, and the output hash of a `fetchzip` of any tarball of it.
    pub fn nar_hash(&self) -> io::Result<(NixHash, u64)> {
        let mut sink = BufWriter::with_capacity(1 << 16, HashingCounter::new(HashAlgo::Sha256));
        self.write_nar(&mut sink)?;
        let sink = sink.into_inner().map_err(|e| e.into_error())?;
        Ok(sink.finish())
    }

    /// Write the tree out below `out` (which must not exist): files 0644 or 0755,
    /// directories 0755, symlinks as they are. Nothing is left on failure.
    pub fn write_to(&self, out: &Path) -> Result<(), TreeError> {
        let err = |path: &Path, e: io::Error| TreeError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if out.symlink_metadata().is_ok() {
            return Err(TreeError::Io {
                path: out.to_path_buf(),
                message: "already exists; refusing to unpack over it".into(),
            });
        }
        fn write_dir(
            tree: &SourceTree,
            dir: &BTreeMap<Vec<u8>, Node>,
            at: &Path,
        ) -> Result<(), (PathBuf, io::Error)> {
            use std::os::unix::ffi::OsStrExt;
            fs::create_dir(at).map_err(|e| (at.to_path_buf(), e))?;
            for (name, node) in dir {
                let p = at.join(std::ffi::OsStr::from_bytes(name));
                match node {
                    Node::Dir(d) => write_dir(tree, d, &p)?,
                    Node::Symlink(t) => {
                        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(t), &p)
                            .map_err(|e| (p.clone(), e))?
                    }
                    Node::File { exec, offset, len } => {
                        let mut f = BufWriter::new(File::create(&p).map_err(|e| (p.clone(), e))?);
                        tree.copy_contents(*offset, *len, |b| f.write_all(b))
                            .and_then(|()| f.flush())
                            .map_err(|e| (p.clone(), e))?;
                        let mode = if *exec { 0o755 } else { 0o644 };
                        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                            .map_err(|e| (p.clone(), e))?;
                    }
                }
            }
            fs::set_permissions(at, fs::Permissions::from_mode(0o755))
                .map_err(|e| (at.to_path_buf(), e))
        }
        let res = write_dir(self, &self.root, out).map_err(|(p, e)| err(&p, e));
        if res.is_err() {
            let _ = fs::remove_dir_all(out);
        }
        res
    }
}
