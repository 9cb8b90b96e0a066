//! The `ar` archive format as Debian packages use it (common format, GNU names).

use std::io::{self, Read};

use thiserror::Error;

pub const MAGIC: &[u8; 8] = b"!<arch>\n";

#[derive(Debug, Error)]
pub enum ArError {
    #[error("not an ar archive (bad magic)")]
    BadMagic,
    #[error("truncated ar archive: {0}")]
    Truncated(&'static str),
    #[error("malformed ar member header at byte {offset}: {what}")]
    BadHeader { offset: u64, what: String },
    #[error("read error: {0}")]
    Io(#[from] io::Error),
}

/// Walks the members of an ar archive, handing each one's name and a bounded reader
/// of its data to `visit`; `visit` returns false to stop.
pub fn for_each_member<R: Read>(
    mut input: R,
    mut visit: impl FnMut(&str, u64, &mut dyn Read) -> Result<bool, ArError>,
) -> Result<(), ArError> {
    let mut magic = [0u8; 8];
    read_full(&mut input, &mut magic).map_err(|_| ArError::BadMagic)?;
    if &magic != MAGIC {
        return Err(ArError::BadMagic);
    }
    let mut offset = 8u64;
    loop {
        let mut header = [0u8; 60];
        match read_up_to(&mut input, &mut header)? {
            0 => return Ok(()),
            60 => {}
            _ => return Err(ArError::Truncated("member header")),
        }
        if &header[58..60] != b"`\n" {
            return Err(ArError::BadHeader {
                offset,
                what: "missing header terminator".into(),
            });
        }
        let name_field = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .to_string();
        let name = name_field
            .strip_suffix('/')
            .unwrap_or(&name_field)
            .to_string();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(ArError::BadHeader {
                offset,
                what: format!("invalid member name {name_field:?}"),
            });
        }
        let size_str = String::from_utf8_lossy(&header[48..58]).trim().to_string();
        let size: u64 = size_str.parse().map_err(|_| ArError::BadHeader {
            offset,
            what: format!("size {size_str:?} is not a number"),
        })?;
        let mut member = (&mut input).take(size);
        let keep_going = visit(&name, size, &mut member)?;
        if !keep_going {
            return Ok(());
        }
        // Skip what the visitor didn't read, then the padding byte.
        io::copy(&mut member, &mut io::sink())?;
        if member.limit() != 0 {
            return Err(ArError::Truncated("member data"));
        }
        offset += 60 + size;
        if size % 2 == 1 {
            let mut pad = [0u8; 1];
            if read_up_to(&mut input, &mut pad)? == 1 {
                offset += 1;
            }
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    if read_up_to(r, buf)? != buf.len() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn build(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    for (name, data) in members {
        v.extend_from_slice(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                format!("{name}/"),
                0,
                0,
                0,
                100644,
                data.len()
            )
            .as_bytes(),
        );
        v.extend_from_slice(data);
        if data.len() % 2 == 1 {
            v.push(b'\n');
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_members() {
        let a = build(&[("debian-binary", b"2.0\n"), ("odd", b"abc"), ("x", b"")]);
        let mut seen = Vec::new();
        for_each_member(a.as_slice(), |n, s, r| {
            let mut d = Vec::new();
            r.read_to_end(&mut d)?;
            seen.push((n.to_string(), s, d));
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1], ("odd".to_string(), 3, b"abc".to_vec()));
    }

    #[test]
    fn rejects_bad_archives() {
        let a = build(&[("m", b"hello")]);
        let ok = |_: &str, _: u64, _: &mut dyn Read| Ok(true);
        assert!(matches!(
            for_each_member(&b"garbage!"[..], ok),
            Err(ArError::BadMagic)
        ));
        assert!(matches!(
            for_each_member(&a[..a.len() - 3], ok),
            Err(ArError::Truncated(_))
        ));
        assert!(matches!(
            for_each_member(&a[..30], ok),
            Err(ArError::Truncated(_))
        ));
        let mut bad = a.clone();
        bad[8 + 48] = b'x';
        assert!(matches!(
            for_each_member(bad.as_slice(), ok),
            Err(ArError::BadHeader { .. })
        ));
        let evil = build(&[("..", b"")]);
        assert!(matches!(
            for_each_member(evil.as_slice(), ok),
            Err(ArError::BadHeader { .. })
        ));
    }
}
