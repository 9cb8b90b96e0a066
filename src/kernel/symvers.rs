//! `Module.symvers`: `0xCRC<TAB>symbol<TAB>module<TAB>export type[<TAB>namespace]`.

use std::collections::HashMap;
use std::io::BufRead;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub crc: u32,
    pub module: String,
    pub export_type: String,
}

#[derive(Debug, Clone, Default)]
pub struct Symvers {
    pub symbols: HashMap<String, Export>,
}

#[derive(Debug, thiserror::Error)]
pub enum SymversError {
    #[error("line {line}: {what}")]
    Line { line: usize, what: String },
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

impl Symvers {
    /// Parse line by line from any reader (Module.symvers of a distro kernel is ~2 MB).
    pub fn parse(reader: impl BufRead) -> Result<Self, SymversError> {
        let mut symbols = HashMap::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            let bad = |what: &str| SymversError::Line {
                line: i + 1,
                what: format!("{what}: {line:?}"),
            };
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() < 4 {
                return Err(bad("expected at least 4 tab-separated fields"));
            }
            let crc = fields[0]
                .strip_prefix("0x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("CRC is not 0x<hex>"))?;
            if fields[1].is_empty() {
                return Err(bad("empty symbol name"));
            }
            symbols.insert(
                fields[1].to_string(),
                Export {
                    crc,
                    module: fields[2].to_string(),
                    export_type: fields[3].to_string(),
                },
            );
        }
        Ok(Symvers { symbols })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let s = Symvers::parse(
            "0x12ab34cd\tib_register_device\tdrivers/infiniband/core/ib_core\tEXPORT_SYMBOL\t\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(s.symbols["ib_register_device"].crc, 0x12ab34cd);
        assert!(Symvers::parse("zz\tx\ty\tz\n".as_bytes()).is_err());
        assert!(Symvers::parse("0x1\tx\n".as_bytes()).is_err());
    }
}
