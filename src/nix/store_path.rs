//! Store paths: `/nix/store/<nixbase32 of a 160-bit digest>-<name>`, computed the way
//! Nix does (a fingerprint string hashed with sha256, then xor-folded to 20 bytes).

use std::collections::BTreeSet;
use std::fmt;

use thiserror::Error;

use super::base32;
use super::hash::{HashAlgo, NixHash};

pub const STORE_DIR: &str = "/nix/store";
pub const HASH_BYTES: usize = 20;
pub const HASH_CHARS: usize = 32;
const MAX_NAME: usize = 211;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StorePathError {
    #[error("store path name {0:?} is empty, longer than 211 characters or starts with '.'")]
    BadNameShape(String),
    #[error(
        "store path name {name:?} contains {ch:?}; allowed are letters, digits and + - . _ ? ="
    )]
    BadNameChar { name: String, ch: char },
    #[error("{0:?} is not a path in {STORE_DIR}")]
    NotInStore(String),
    #[error("{0:?} has a malformed store hash")]
    BadHash(String),
}

/// Checks a store path name the way Nix does.
pub fn validate_name(name: &str) -> Result<(), StorePathError> {
    if name.is_empty() || name.len() > MAX_NAME || name.starts_with('.') {
        return Err(StorePathError::BadNameShape(name.to_string()));
    }
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(*c)))
    {
        return Err(StorePathError::BadNameChar {
            name: name.to_string(),
            ch,
        });
    }
    Ok(())
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath {
    digest: [u8; HASH_BYTES],
    name: String,
}

impl StorePath {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn hash_part(&self) -> String {
        base32::encode(&self.digest)
    }

    /// Parse an absolute path in the default store directory.
    pub fn parse(path: &str) -> Result<Self, StorePathError> {
        let rest = path
            .strip_prefix(STORE_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| StorePathError::NotInStore(path.to_string()))?;
        if rest.len() < HASH_CHARS + 2 || rest.as_bytes()[HASH_CHARS] != b'-' {
            return Err(StorePathError::BadHash(path.to_string()));
        }
        let digest = base32::decode(&rest[..HASH_CHARS])
            .map_err(|_| StorePathError::BadHash(path.to_string()))?;
        let name = &rest[HASH_CHARS + 1..];
        validate_name(name)?;
        Ok(StorePath {
            digest: digest
                .try_into()
                .map_err(|_| StorePathError::BadHash(path.to_string()))?,
            name: name.to_string(),
        })
    }

    /// `makeStorePath`: `type:sha256:<hex inner>:/nix/store:name`, hashed and folded.
    pub fn from_fingerprint(
        kind: &str,
        inner: &NixHash,
        name: &str,
    ) -> Result<Self, StorePathError> {
        validate_name(name)?;
        let fingerprint = format!(
            "{kind}:{}:{}:{STORE_DIR}:{name}",
            inner.algo,
            inner.to_base16()
        );
        let full = NixHash::sha256(fingerprint.as_bytes());
        Ok(StorePath {
            digest: compress(full.digest()),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STORE_DIR}/{}-{}", self.hash_part(), self.name)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Nix's `compressHash`: xor-fold a digest into 20 bytes.
fn compress(digest: &[u8]) -> [u8; HASH_BYTES] {
    let mut out = [0u8; HASH_BYTES];
    for (i, b) in digest.iter().enumerate() {
        out[i % HASH_BYTES] ^= b;
    }
    out
}

fn with_refs(kind: &str, refs: &BTreeSet<String>) -> String {
    let mut s = kind.to_string();
    for r in refs {
        s.push(':');
        s.push_str(r);
    }
    s
}

/// How a fixed-output path's content was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileIngestion {
    /// The bytes of a single file (`nix-store --add-fixed sha256 FILE`, `fetchurl`).
    Flat,
    /// The NAR of a tree (`nix-store --add`, `recursiveHash`).
    Recursive,
}

impl FileIngestion {
    /// The prefix Nix puts before the algorithm in a `.drv`'s `hashAlgo` field.
    pub fn prefix(self) -> &'static str {
        match self {
            FileIngestion::Flat => "",
            FileIngestion::Recursive => "r:",
        }
    }
}

/// `makeFixedOutputPath`: what `nix-store --add`, `--add-fixed` and fixed-output
/// derivations produce.
pub fn fixed_output_path(
    method: FileIngestion,
    hash: &NixHash,
    name: &str,
    refs: &BTreeSet<String>,
) -> Result<StorePath, StorePathError> {
    if method == FileIngestion::Recursive && hash.algo == HashAlgo::Sha256 {
        StorePath::from_fingerprint(&with_refs("source", refs), hash, name)
    } else {
        let inner = format!(
            "fixed:out:{}{}:{}:",
            method.prefix(),
            hash.algo,
            hash.to_base16()
        );
        StorePath::from_fingerprint("output:out", &NixHash::sha256(inner.as_bytes()), name)
    }
}

/// `makeTextPath`: `builtins.toFile`, `.drv` files.
pub fn text_path(
    name: &str,
    contents: &[u8],
    refs: &BTreeSet<String>,
) -> Result<StorePath, StorePathError> {
    StorePath::from_fingerprint(&with_refs("text", refs), &NixHash::sha256(contents), name)
}

/// `makeOutputPath`: the path of output `output` of an input-addressed derivation
/// whose `hashDerivationModulo` is `drv_hash`.
pub fn output_path(
    drv_name: &str,
    output: &str,
    drv_hash: &NixHash,
) -> Result<StorePath, StorePathError> {
    let name = if output == "out" {
        drv_name.to_string()
    } else {
        format!("{drv_name}-{output}")
    };
    StorePath::from_fingerprint(&format!("output:{output}"), drv_hash, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(validate_name("rdma-core-65.0").is_ok());
        assert!(validate_name("a+b=c?d_e.f").is_ok());
        assert!(matches!(
            validate_name(".hidden"),
            Err(StorePathError::BadNameShape(_))
        ));
        assert!(matches!(
            validate_name("a%3a"),
            Err(StorePathError::BadNameChar { ch: '%', .. })
        ));
        assert!(validate_name(&"x".repeat(212)).is_err());
    }

    #[test]
    fn parse_roundtrip() {
        let p = text_path("hello.txt", b"hello", &BTreeSet::new()).unwrap();
        let s = p.to_string();
        assert_eq!(StorePath::parse(&s).unwrap(), p);
        assert!(StorePath::parse("/tmp/x").is_err());
        assert!(StorePath::parse("/nix/store/eeee-x").is_err());
    }
}
