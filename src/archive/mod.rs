//! Reading archives from outside, streamed and bounded: `ar` (Debian packages) and
//! the compressed tar members inside them.

pub mod ar;
pub mod deb;
pub mod tree;

use std::io::{self, Read};

/// How a stream is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Lz4,
    /// None of the above: read as it is.
    Other,
}

impl Compression {
    pub fn sniff(first: &[u8]) -> Compression {
        if first.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if first.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if first.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Compression::Lz4
        } else {
            Compression::Other
        }
    }

    /// A decoder for gzip and xz (None for the others).
    pub fn decoder<'a>(self, r: impl Read + 'a) -> Option<Box<dyn Read + 'a>> {
        match self {
            Compression::Gzip => Some(Box::new(flate2::read::GzDecoder::new(r))),
            Compression::Xz => Some(Box::new(xz2::read::XzDecoder::new(r))),
            Compression::Lz4 | Compression::Other => None,
        }
    }
}

/// Default ceiling on bytes decompressed from one stream (decompression bombs).
pub const DEFAULT_MAX_UNPACKED: u64 = 8 << 30;

/// A reader that fails once more than `limit` bytes came through it.
pub struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Limited<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        Limited {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(format!(
                "decompressed data exceeds the limit of {} bytes",
                self.limit
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
