//! Reading archives from outside, streamed and bounded: `ar` (Debian packages) and
//! the compressed tar members inside them.

pub mod ar;
pub mod deb;
pub mod tree;

use std::io::{self, Read};

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
