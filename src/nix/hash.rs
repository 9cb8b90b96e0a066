//! Content hashes as Nix writes them: SRI (`sha256-<base64>`), base16, nixbase32,
//! and the `sha256:<any of those>` prefix form.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;

use super::base32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    Sha256,
    Sha512,
}

impl HashAlgo {
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }
}

impl FromStr for HashAlgo {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, HashError> {
        match s {
            "sha256" => Ok(HashAlgo::Sha256),
            "sha512" => Ok(HashAlgo::Sha512),
            other => Err(HashError::UnknownAlgo(other.to_string())),
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HashError {
    #[error("unknown hash algorithm {0:?} (expected sha256 or sha512)")]
    UnknownAlgo(String),
    #[error("hash {input:?} has {len} characters, which is not a {algo} hash in base16 ({b16}), nixbase32 ({b32}) or base64 ({b64})")]
    WrongLength {
        input: String,
        algo: HashAlgo,
        len: usize,
        b16: usize,
        b32: usize,
        b64: usize,
    },
    #[error("hash {input:?} is not valid {encoding}")]
    BadEncoding {
        input: String,
        encoding: &'static str,
    },
    #[error("hash {0:?} names no algorithm (write it as sha256-…, sha256:… or give the type)")]
    NoAlgo(String),
}

/// A digest together with its algorithm.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NixHash {
    pub algo: HashAlgo,
    digest: Vec<u8>,
}

impl fmt::Debug for NixHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_sri())
    }
}

impl NixHash {
    pub fn new(algo: HashAlgo, digest: Vec<u8>) -> Self {
        assert_eq!(digest.len(), algo.digest_len(), "digest length for {algo}");
        NixHash { algo, digest }
    }

    pub fn sha256(data: &[u8]) -> Self {
        NixHash::new(HashAlgo::Sha256, Sha256::digest(data).to_vec())
    }

    /// Hash everything a reader yields, in fixed-size chunks.
    pub fn of_reader(algo: HashAlgo, reader: &mut impl Read) -> io::Result<Self> {
        let mut hasher = Hasher::new(algo);
        io::copy(reader, &mut hasher)?;
        Ok(hasher.finish())
    }

    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    pub fn to_base16(&self) -> String {
        hex_encode(&self.digest)
    }

    pub fn to_nixbase32(&self) -> String {
        base32::encode(&self.digest)
    }

    pub fn to_base64(&self) -> String {
        base64_encode(&self.digest)
    }

    pub fn to_sri(&self) -> String {
        format!("{}-{}", self.algo, self.to_base64())
    }

    /// `sha256:<nixbase32>`, the form `nix-store --query --hash` prints.
    pub fn to_prefixed_base32(&self) -> String {
        format!("{}:{}", self.algo, self.to_nixbase32())
    }

    /// Parse `sha256-<b64>`, `sha256:<b16|b32|b64>`, or (when `algo` is given) a bare
    /// digest in base16, nixbase32 or base64.
    pub fn parse(s: &str, algo: Option<HashAlgo>) -> Result<Self, HashError> {
        if let Some((a, rest)) = s.split_once(':') {
            let a: HashAlgo = a.parse()?;
            return Self::parse_bare(rest, a).map_err(|e| relabel(e, s));
        }
        if let Some((a, rest)) = s.split_once('-') {
            if let Ok(a) = a.parse::<HashAlgo>() {
                let digest = base64_decode(rest).ok_or_else(|| HashError::BadEncoding {
                    input: s.to_string(),
                    encoding: "base64 (SRI)",
                })?;
                return Self::checked(a, digest, s);
            }
        }
        match algo {
            Some(a) => Self::parse_bare(s, a),
            None => Err(HashError::NoAlgo(s.to_string())),
        }
    }

    fn parse_bare(s: &str, algo: HashAlgo) -> Result<Self, HashError> {
        let n = algo.digest_len();
        let digest = if s.len() == 2 * n {
            hex_decode(s).ok_or(HashError::BadEncoding {
                input: s.to_string(),
                encoding: "base16",
            })?
        } else if s.len() == base32::encoded_len(n) {
            base32::decode(s).map_err(|_| HashError::BadEncoding {
                input: s.to_string(),
                encoding: "nixbase32",
            })?
        } else if s.len() == base64_len(n) {
            base64_decode(s).ok_or(HashError::BadEncoding {
                input: s.to_string(),
                encoding: "base64",
            })?
        } else {
            return Err(wrong_length(s, algo));
        };
        Self::checked(algo, digest, s)
    }

    fn checked(algo: HashAlgo, digest: Vec<u8>, input: &str) -> Result<Self, HashError> {
        if digest.len() != algo.digest_len() {
            return Err(wrong_length(input, algo));
        }
        Ok(NixHash { algo, digest })
    }
}

fn wrong_length(s: &str, algo: HashAlgo) -> HashError {
    let n = algo.digest_len();
    HashError::WrongLength {
        input: s.to_string(),
        algo,
        len: s.len(),
        b16: 2 * n,
        b32: base32::encoded_len(n),
        b64: base64_len(n),
    }
}

fn relabel(e: HashError, full: &str) -> HashError {
    match e {
        HashError::WrongLength {
            algo,
            len,
            b16,
            b32,
            b64,
            ..
        } => HashError::WrongLength {
            input: full.to_string(),
            algo,
            len,
            b16,
            b32,
            b64,
        },
        HashError::BadEncoding { encoding, .. } => HashError::BadEncoding {
            input: full.to_string(),
            encoding,
        },
        other => other,
    }
}

impl fmt::Display for NixHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sri())
    }
}

/// An incremental hasher that is also an `io::Write` sink.
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algo: HashAlgo) -> Self {
        match algo {
            HashAlgo::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlgo::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> NixHash {
        match self {
            Hasher::Sha256(h) => NixHash::new(HashAlgo::Sha256, h.finalize().to_vec()),
            Hasher::Sha512(h) => NixHash::new(HashAlgo::Sha512, h.finalize().to_vec()),
        }
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub fn hex_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

pub fn base64_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(base64_len(bytes.len()));
    for chunk in bytes.chunks(3) {
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(B64[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let last = ci == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut v = 0u32;
        for &c in &chunk[..4 - pad] {
            let d = B64.iter().position(|&a| a == c)? as u32;
            v = v << 6 | d;
        }
        v <<= 6 * pad as u32;
        let got = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        // Reject non-canonical encodings whose padding bits are set.
        if got[3 - pad..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&got[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn formats() {
        let h = NixHash::sha256(b"");
        assert_eq!(h.to_base16(), EMPTY_HEX);
        assert_eq!(
            h.to_sri(),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            h.to_prefixed_base32(),
            "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
    }

    #[test]
    fn parses_every_form() {
        let h = NixHash::sha256(b"");
        for s in [
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
            &format!("sha256:{EMPTY_HEX}"),
            "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        ] {
            assert_eq!(NixHash::parse(s, None).unwrap(), h, "{s}");
        }
        assert_eq!(
            NixHash::parse(EMPTY_HEX, Some(HashAlgo::Sha256)).unwrap(),
            h
        );
        assert_eq!(
            NixHash::parse(
                "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
                Some(HashAlgo::Sha256)
            )
            .unwrap(),
            h
        );
    }

    #[test]
    fn rejects_bad_hashes() {
        assert!(matches!(
            NixHash::parse("sha256:abc", None),
            Err(HashError::WrongLength { len: 3, .. })
        ));
        assert!(matches!(
            NixHash::parse("md5:abc", None),
            Err(HashError::UnknownAlgo(_))
        ));
        assert!(matches!(
            NixHash::parse(EMPTY_HEX, None),
            Err(HashError::NoAlgo(_))
        ));
        let bad_hex = format!("sha256:{}", "g".repeat(64));
        assert!(matches!(
            NixHash::parse(&bad_hex, None),
            Err(HashError::BadEncoding { .. })
        ));
        assert!(matches!(
            NixHash::parse("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF", None),
            Err(HashError::BadEncoding { .. })
        ));
        let msg = NixHash::parse("sha256:abc", None).unwrap_err().to_string();
        assert!(
            msg.contains("\"sha256:abc\"") && msg.contains("3 characters"),
            "{msg}"
        );
    }

    #[test]
    fn base64_roundtrip() {
        for len in 0..20 {
            let v: Vec<u8> = (0..len).map(|i| (i * 91 + 7) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&v)).unwrap(), v);
        }
        assert!(base64_decode("QQ=A").is_none());
    }
}
