//! Nix's base32 ("nixbase32"): a 32-letter alphabet without `e o u t`, with the
//! bytes read least-significant bit first and the digits written last-to-first.

use thiserror::Error;

/// The alphabet Nix uses for store path hashes and `sha256:` hashes.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("invalid nixbase32 character {0:?}")]
    InvalidChar(char),
    #[error("nixbase32 string of {0} characters does not decode to whole bytes")]
    NonCanonical(usize),
}

/// Number of characters needed to encode `len` bytes.
pub const fn encoded_len(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len * 8 - 1) / 5 + 1
    }
}

/// Number of bytes `len` characters decode to.
pub const fn decoded_len(len: usize) -> usize {
    len * 5 / 8
}

pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let low = (bytes[i] as u16) >> j;
        let high = if i + 1 < bytes.len() {
            (bytes[i + 1] as u16) << (8 - j)
        } else {
            0
        };
        out.push(ALPHABET[((low | high) & 0x1f) as usize] as char);
    }
    out
}

fn digit(c: u8) -> Option<u8> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u8)
}

pub fn decode(s: &str) -> Result<Vec<u8>, DecodeError> {
    let chars = s.as_bytes();
    let mut out = vec![0u8; decoded_len(chars.len())];
    for (n, &c) in chars.iter().rev().enumerate() {
        let d = digit(c).ok_or_else(|| {
            DecodeError::InvalidChar(s[chars.len() - n - 1..].chars().next().unwrap_or('?'))
        })?;
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let value = (d as u16) << j;
        if i < out.len() {
            out[i] |= value as u8;
        } else if value & 0xff != 0 {
            return Err(DecodeError::NonCanonical(chars.len()));
        }
        let carry = (value >> 8) as u8;
        if carry != 0 {
            if i + 1 < out.len() {
                out[i + 1] |= carry;
            } else {
                return Err(DecodeError::NonCanonical(chars.len()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // sha256 of the empty string, as `nix hash to-base32` prints it.
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let enc = encode(&bytes);
        assert_eq!(enc, "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73");
        assert_eq!(decode(&enc).unwrap(), bytes);
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0x1f]), "0z");
    }

    #[test]
    fn roundtrip_all_lengths() {
        for len in 0..64usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes, "len {len}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode("e"), Err(DecodeError::InvalidChar('e')));
        // 2 chars = 10 bits = 1 byte; the top digit may only carry 3 bits.
        assert!(matches!(decode("z0"), Err(DecodeError::NonCanonical(2))));
    }
}
