//! Kernel modules (`.ko`, ELF64 little-endian relocatable objects): the imported
//! symbols with their CRCs (`__versions`) and the `.modinfo` strings (vermagic, name,
//! depends). Bounds-checked throughout: a module comes from outside.

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ModuleError {
    #[error("not an ELF file")]
    NotElf,
    #[error("not a 64-bit little-endian ELF object (only x86_64 modules are supported)")]
    Unsupported,
    #[error("truncated or corrupt ELF: {0}")]
    Corrupt(String),
    #[error("no .modinfo section: not a kernel module")]
    NoModinfo,
}

/// One imported symbol and the CRC the module was built against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    pub symbol: String,
    pub crc: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModuleInfo {
    pub name: Option<String>,
    pub vermagic: Option<String>,
    pub depends: Vec<String>,
    /// Every `.modinfo` key with its values.
    #[serde(skip)]
    pub modinfo: BTreeMap<String, Vec<String>>,
    /// From `__versions`; empty when the module was built without modversions.
    pub imports: Vec<Import>,
}

impl ModuleInfo {
    /// The release a vermagic names (`6.1.0-50-amd64 SMP …` → `6.1.0-50-amd64`).
    pub fn vermagic_release(&self) -> Option<&str> {
        self.vermagic.as_deref()?.split(' ').next()
    }

    /// The vermagic flags after the release (`SMP preempt mod_unload modversions`).
    pub fn vermagic_flags(&self) -> Vec<&str> {
        self.vermagic
            .as_deref()
            .map(|v| v.split_whitespace().skip(1).collect())
            .unwrap_or_default()
    }
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, ModuleError> {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| ModuleError::Corrupt(format!("read past the end at {off}")))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, ModuleError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .ok_or_else(|| ModuleError::Corrupt(format!("read past the end at {off}")))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, ModuleError> {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
        .ok_or_else(|| ModuleError::Corrupt(format!("read past the end at {off}")))
}

struct Section<'a> {
    name: String,
    data: &'a [u8],
}

fn sections(b: &[u8]) -> Result<Vec<Section<'_>>, ModuleError> {
    if !b.starts_with(b"\x7fELF") {
        return Err(ModuleError::NotElf);
    }
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err(ModuleError::Unsupported);
    }
    let shoff = usize::try_from(u64_at(b, 0x28)?)
        .map_err(|_| ModuleError::Corrupt("section table offset".into()))?;
    let shentsize = usize::from(u16_at(b, 0x3a)?);
    let shnum = usize::from(u16_at(b, 0x3c)?);
    let shstrndx = usize::from(u16_at(b, 0x3e)?);
    if shentsize < 64 || shnum == 0 || shstrndx >= shnum {
        return Err(ModuleError::Corrupt("section header table".into()));
    }
    let header = |i: usize| -> Result<(u32, u32, usize, usize), ModuleError> {
        let h = shoff
            .checked_add(
                i.checked_mul(shentsize)
                    .ok_or_else(|| ModuleError::Corrupt("overflow".into()))?,
            )
            .ok_or_else(|| ModuleError::Corrupt("overflow".into()))?;
        let name = u32_at(b, h)?;
        let kind = u32_at(b, h + 4)?;
        let off = usize::try_from(u64_at(b, h + 0x18)?)
            .map_err(|_| ModuleError::Corrupt("offset".into()))?;
        let size = usize::try_from(u64_at(b, h + 0x20)?)
            .map_err(|_| ModuleError::Corrupt("size".into()))?;
        Ok((name, kind, off, size))
    };
    let data = |kind: u32, off: usize, size: usize| -> Result<&[u8], ModuleError> {
        if kind == 8 {
            // SHT_NOBITS: no bytes in the file.
            return Ok(&[]);
        }
        off.checked_add(size)
            .and_then(|end| b.get(off..end))
            .ok_or_else(|| ModuleError::Corrupt(format!("section at {off}+{size} past the end")))
    };
    let (_, k, o, s) = header(shstrndx)?;
    let strtab = data(k, o, s)?;
    let mut out = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let (name_off, kind, off, size) = header(i)?;
        let name_bytes = strtab
            .get(name_off as usize..)
            .ok_or_else(|| ModuleError::Corrupt("section name offset".into()))?;
        let end = name_bytes
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(name_bytes.len());
        out.push(Section {
            name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
            data: data(kind, off, size)?,
        });
    }
    Ok(out)
}

/// Read a module's imports and modinfo from its bytes.
pub fn parse(b: &[u8]) -> Result<ModuleInfo, ModuleError> {
    let secs = sections(b)?;
    let modinfo_bytes = secs
        .iter()
        .find(|s| s.name == ".modinfo")
        .ok_or(ModuleError::NoModinfo)?
        .data;
    let mut modinfo: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in modinfo_bytes.split(|&c| c == 0).filter(|e| !e.is_empty()) {
        let text = String::from_utf8_lossy(entry);
        if let Some((k, v)) = text.split_once('=') {
            modinfo
                .entry(k.to_string())
                .or_default()
                .push(v.to_string());
        }
    }
    let mut imports = Vec::new();
    if let Some(v) = secs.iter().find(|s| s.name == "__versions") {
        // struct modversion_info { unsigned long crc; char name[64 - sizeof(long)]; }
        if v.data.len() % 64 != 0 {
            return Err(ModuleError::Corrupt(format!(
                "__versions is {} bytes, not a multiple of 64",
                v.data.len()
            )));
        }
        for e in v.data.chunks_exact(64) {
            let crc = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
            let name = &e[8..];
            let end = name
                .iter()
                .position(|&c| c == 0)
                .ok_or_else(|| ModuleError::Corrupt("unterminated name in __versions".into()))?;
            imports.push(Import {
                symbol: String::from_utf8_lossy(&name[..end]).into_owned(),
                crc: crc as u32,
            });
        }
    }
    let first = |k: &str| modinfo.get(k).and_then(|v| v.first()).cloned();
    Ok(ModuleInfo {
        name: first("name"),
        vermagic: first("vermagic"),
        depends: first("depends")
            .map(|d| {
                d.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        modinfo,
        imports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_module() {
        assert_eq!(parse(b"hello").unwrap_err(), ModuleError::NotElf);
        assert_eq!(
            parse(b"\x7fELF\x01\x01").unwrap_err(),
            ModuleError::Unsupported
        );
        assert!(matches!(
            parse(b"\x7fELF\x02\x01\0\0").unwrap_err(),
            ModuleError::Corrupt(_)
        ));
        // A header whose section table points far past the end.
        let mut h = vec![0u8; 64];
        h[..6].copy_from_slice(b"\x7fELF\x02\x01");
        h[0x28..0x30].copy_from_slice(&1_000_000u64.to_le_bytes());
        h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        h[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        h[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        assert!(matches!(parse(&h).unwrap_err(), ModuleError::Corrupt(_)));
    }
}
