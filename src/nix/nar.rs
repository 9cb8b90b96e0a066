//! The Nix ARchive format: a canonical, streaming serialisation of a file system
//! object (regular file, executable, symlink or directory).
//!
//! Every token is a string: a little-endian u64 length, the bytes, and zero padding
//! to a multiple of 8. Directory entries appear in byte order of their names.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::hash::{HashAlgo, Hasher, NixHash};

pub const MAGIC: &str = "nix-archive-1";

/// Names Nix refuses in a NAR directory.
fn valid_entry_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

#[derive(Debug, Error)]
pub enum NarError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{0}: unsupported file type (only regular files, symlinks and directories fit in a NAR)"
    )]
    Unsupported(PathBuf),
    #[error("{0}: file changed size while it was being read")]
    Changed(PathBuf),
    #[error("malformed NAR at byte {offset}: {what}")]
    Malformed { offset: u64, what: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> NarError + '_ {
    move |source| NarError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes NAR tokens to any sink.
pub(crate) struct NarWriter<W: Write> {
    out: W,
}

impl<W: Write> NarWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        NarWriter { out }
    }

    /// Bytes as they are (a file's contents after its length).
    pub(crate) fn raw(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)
    }

    /// A string token: length, bytes, padding.
    pub(crate) fn str(&mut self, s: &[u8]) -> io::Result<()> {
        self.out.write_all(&(s.len() as u64).to_le_bytes())?;
        self.out.write_all(s)?;
        self.pad(s.len() as u64)
    }

    /// Zero padding after `len` bytes, up to a multiple of 8.
    pub(crate) fn pad(&mut self, len: u64) -> io::Result<()> {
        let pad = (8 - (len % 8) as usize) % 8;
        self.out.write_all(&[0u8; 8][..pad])
    }

    fn dump(&mut self, path: &Path) -> Result<(), NarError> {
        let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
        let w = |r: io::Result<()>| r.map_err(io_err(path));
        w(self.str(b"("))?;
        let ft = meta.file_type();
        if ft.is_file() {
            w(self.str(b"type"))?;
            w(self.str(b"regular"))?;
            if meta.permissions().mode() & 0o100 != 0 {
                w(self.str(b"executable"))?;
                w(self.str(b""))?;
            }
            w(self.str(b"contents"))?;
            let len = meta.len();
            w(self.out.write_all(&len.to_le_bytes()))?;
            let file = fs::File::open(path).map_err(io_err(path))?;
            let copied = io::copy(&mut file.take(len), &mut self.out).map_err(io_err(path))?;
            if copied != len {
                return Err(NarError::Changed(path.to_path_buf()));
            }
            w(self.pad(len))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(io_err(path))?;
            w(self.str(b"type"))?;
            w(self.str(b"symlink"))?;
            w(self.str(b"target"))?;
            w(self.str(target.as_os_str().as_bytes()))?;
        } else if ft.is_dir() {
            w(self.str(b"type"))?;
            w(self.str(b"directory"))?;
            let mut names: Vec<_> = fs::read_dir(path)
                .map_err(io_err(path))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(io_err(path))?;
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in names {
                w(self.str(b"entry"))?;
                w(self.str(b"("))?;
                w(self.str(b"name"))?;
                w(self.str(name.as_bytes()))?;
                w(self.str(b"node"))?;
                self.dump(&path.join(&name))?;
                w(self.str(b")"))?;
            }
        } else {
            return Err(NarError::Unsupported(path.to_path_buf()));
        }
        w(self.str(b")"))
    }
}

/// Serialise `path` as a NAR into `out`.
pub fn dump_path(path: &Path, out: impl Write) -> Result<(), NarError> {
    let mut w = NarWriter { out };
    w.str(MAGIC.as_bytes()).map_err(io_err(path))?;
    w.dump(path)
}

/// A sink that hashes and counts what passes through it.
pub struct HashingCounter {
    hasher: Hasher,
    pub count: u64,
}

impl HashingCounter {
    pub fn new(algo: HashAlgo) -> Self {
        HashingCounter {
            hasher: Hasher::new(algo),
            count: 0,
        }
    }
    pub fn finish(self) -> (NixHash, u64) {
        (self.hasher.finish(), self.count)
    }
}

impl Write for HashingCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.count += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hands the NAR stream to another thread in 1 MiB blocks (recycled: at most
/// `BLOCKS_IN_FLIGHT` + 1 exist), so that reading files and hashing overlap.
struct BlockSender {
    blocks: std::sync::mpsc::SyncSender<Vec<u8>>,
    recycled: std::sync::mpsc::Receiver<Vec<u8>>,
}

const BLOCK: usize = 1 << 20;
const BLOCKS_IN_FLIGHT: usize = 4;

impl Write for BlockSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut block = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
        block.clear();
        block.extend_from_slice(buf);
        self.blocks
            .send(block)
            .map_err(|_| io::Error::other("the hashing thread stopped"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The NAR hash and NAR size of `path`, as `nix-hash --type sha256` and
/// `nix path-info --json` report them. The tree is walked and read on this thread
/// while another hashes, in bounded memory (a few MiB whatever the tree's size).
pub fn hash_path(path: &Path) -> Result<(NixHash, u64), NarError> {
    let (blocks_tx, blocks_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(BLOCKS_IN_FLIGHT);
    let (recycle_tx, recycle_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(BLOCKS_IN_FLIGHT + 1);
    let hasher = std::thread::spawn(move || {
        let mut sink = HashingCounter::new(HashAlgo::Sha256);
        for block in blocks_rx {
            // Never fails: the sink only hashes.
            let _ = sink.write_all(&block);
            let _ = recycle_tx.try_send(block);
        }
        sink.finish()
    });
    let sender = BlockSender {
        blocks: blocks_tx,
        recycled: recycle_rx,
    };
    let dumped = (|| {
        let mut out = io::BufWriter::with_capacity(BLOCK, sender);
        dump_path(path, &mut out)?;
        out.flush().map_err(io_err(path))
    })();
    // The sender is dropped by now: the hasher sees the end of the stream.
    let result = hasher.join().expect("the hashing thread does not panic");
    dumped.map(|()| result)
}

/// One node of a parsed NAR, in the order it appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NarEntry {
    Directory {
        path: Vec<u8>,
    },
    Regular {
        path: Vec<u8>,
        executable: bool,
        size: u64,
    },
    Symlink {
        path: Vec<u8>,
        target: Vec<u8>,
    },
}

/// A validating NAR reader: checks the grammar, padding, entry order and names,
/// and reports every node through `visit`. Contents are streamed to `visit`'s
/// data callback, never held in memory whole.
pub struct NarReader<R: Read> {
    input: R,
    offset: u64,
    max_depth: usize,
}

const MAX_TOKEN: u64 = 4096;

impl<R: Read> NarReader<R> {
    pub fn new(input: R) -> Self {
        NarReader {
            input,
            offset: 0,
            max_depth: 256,
        }
    }

    fn bad<T>(&self, what: impl Into<String>) -> Result<T, NarError> {
        Err(NarError::Malformed {
            offset: self.offset,
            what: what.into(),
        })
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), NarError> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.bad("unexpected end of input")
            }
            Err(e) => self.bad(e.to_string()),
        }
    }

    fn u64(&mut self) -> Result<u64, NarError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn padding(&mut self, len: u64) -> Result<(), NarError> {
        let pad = ((8 - len % 8) % 8) as usize;
        let mut b = [0u8; 8];
        self.read_exact(&mut b[..pad])?;
        if b[..pad].iter().any(|&x| x != 0) {
            return self.bad("non-zero padding");
        }
        Ok(())
    }

    fn token(&mut self) -> Result<Vec<u8>, NarError> {
        let len = self.u64()?;
        if len > MAX_TOKEN {
            return self.bad(format!(
                "string of {len} bytes is longer than any NAR token"
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.read_exact(&mut buf)?;
        self.padding(len)?;
        Ok(buf)
    }

    fn expect(&mut self, want: &str) -> Result<(), NarError> {
        let got = self.token()?;
        if got != want.as_bytes() {
            return self.bad(format!(
                "expected {want:?}, found {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
        Ok(())
    }

    /// Read a whole NAR, calling `visit` for each node and `data` for each chunk of
    /// file contents. Fails on trailing garbage.
    pub fn read_all(
        mut self,
        visit: &mut dyn FnMut(&NarEntry),
        data: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, NarError> {
        self.expect(MAGIC)?;
        self.node(Vec::new(), 0, visit, data)?;
        let mut probe = [0u8; 1];
        match self.input.read(&mut probe) {
            Ok(0) => Ok(self.offset),
            Ok(_) => self.bad("trailing data after the NAR"),
            Err(e) => self.bad(e.to_string()),
        }
    }

    fn node(
        &mut self,
        path: Vec<u8>,
        depth: usize,
        visit: &mut dyn FnMut(&NarEntry),
        data: &mut dyn FnMut(&[u8]),
    ) -> Result<(), NarError> {
        if depth > self.max_depth {
            return self.bad("directories nested too deep");
        }
        self.expect("(")?;
        self.expect("type")?;
        let kind = self.token()?;
        match kind.as_slice() {
            b"regular" => {
                let mut tag = self.token()?;
                let mut executable = false;
                if tag == b"executable" {
                    executable = true;
                    if !self.token()?.is_empty() {
                        return self.bad("executable marker must be followed by an empty string");
                    }
                    tag = self.token()?;
                }
                if tag != b"contents" {
                    return self.bad("expected \"contents\"");
                }
                let size = self.u64()?;
                visit(&NarEntry::Regular {
                    path: path.clone(),
                    executable,
                    size,
                });
                let mut left = size;
                let mut buf = vec![0u8; 1 << 16];
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    self.read_exact(&mut buf[..n])?;
                    data(&buf[..n]);
                    left -= n as u64;
                }
                self.padding(size)?;
                self.expect(")")
            }
            b"symlink" => {
                self.expect("target")?;
                let target = self.token()?;
                if target.is_empty() || target.contains(&0) {
                    return self.bad("empty or NUL-containing symlink target");
                }
                visit(&NarEntry::Symlink { path, target });
                self.expect(")")
            }
            b"directory" => {
                visit(&NarEntry::Directory { path: path.clone() });
                let mut prev: Option<Vec<u8>> = None;
                loop {
                    let tag = self.token()?;
                    match tag.as_slice() {
                        b")" => return Ok(()),
                        b"entry" => {}
                        _ => return self.bad("expected \"entry\" or \")\" in a directory"),
                    }
                    self.expect("(")?;
                    self.expect("name")?;
                    let name = self.token()?;
                    if !valid_entry_name(&name) {
                        return self.bad(format!(
                            "invalid entry name {:?}",
                            String::from_utf8_lossy(&name)
                        ));
                    }
                    if prev.as_ref().is_some_and(|p| *p >= name) {
                        return self.bad("directory entries not in strictly ascending order");
                    }
                    self.expect("node")?;
                    let mut child = path.clone();
                    if !child.is_empty() {
                        child.push(b'/');
                    }
                    child.extend_from_slice(&name);
                    self.node(child, depth + 1, visit, data)?;
                    self.expect(")")?;
                    prev = Some(name);
                }
            }
            other => self.bad(format!(
                "unknown node type {:?}",
                String::from_utf8_lossy(other)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nar_of(path: &Path) -> Vec<u8> {
        let mut v = Vec::new();
        dump_path(path, &mut v).unwrap();
        v
    }

    #[test]
    fn single_file_layout() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"hi").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let nar = nar_of(&f);
        // magic(8+16) "(" "type" "regular" "contents" len(8) data(8) ")"
        assert_eq!(nar.len(), 24 + 16 + 16 + 16 + 16 + 8 + 8 + 16);
        assert_eq!(&nar[..8], &13u64.to_le_bytes());
    }

    #[test]
    fn reader_roundtrips_writer() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("b/empty")).unwrap();
        fs::write(root.join("a"), b"12345678901").unwrap();
        fs::write(root.join("b/x"), b"").unwrap();
        fs::set_permissions(root.join("b/x"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("../a", root.join("b/link")).unwrap();
        let nar = nar_of(&root);
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        let len = NarReader::new(nar.as_slice())
            .read_all(&mut |e| entries.push(e.clone()), &mut |d| bytes += d.len())
            .unwrap();
        assert_eq!(len as usize, nar.len());
        assert_eq!(bytes, 11);
        assert_eq!(entries.len(), 6);
        assert_eq!(
            entries[4],
            NarEntry::Symlink {
                path: b"b/link".to_vec(),
                target: b"../a".to_vec()
            }
        );
        assert_eq!(
            entries[5],
            NarEntry::Regular {
                path: b"b/x".to_vec(),
                executable: true,
                size: 0
            }
        );
    }

    #[test]
    fn reader_rejects_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"hello").unwrap();
        let nar = nar_of(&f);
        let run = |b: &[u8]| NarReader::new(b).read_all(&mut |_| {}, &mut |_| {});
        assert!(run(&nar[..nar.len() - 3]).is_err(), "truncated");
        let mut extra = nar.clone();
        extra.push(0);
        assert!(run(&extra).is_err(), "trailing");
        let mut badmagic = nar.clone();
        badmagic[8] = b'X';
        assert!(run(&badmagic).is_err(), "magic");
        let mut huge = nar.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(run(&huge).is_err(), "huge length");
    }
}
