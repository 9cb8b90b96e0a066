//! Kconfig `.config` files: `CONFIG_X=y|m|"str"|123` and `# CONFIG_X is not set`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Yes,
    Module,
    Str(String),
    Other(String),
}

/// The options a kernel config sets; unset ones are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {what}")]
pub struct ConfigError {
    pub line: usize,
    pub what: String,
}

/// A Kconfig symbol name (`RDMA_SIW`, without `CONFIG_`).
pub fn is_symbol_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl KernelConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut options = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| ConfigError {
                line: i + 1,
                what: format!("{what}: {line:?}"),
            };
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| bad("expected CONFIG_NAME=value"))?;
            let name = key
                .strip_prefix("CONFIG_")
                .ok_or_else(|| bad("option without CONFIG_ prefix"))?;
            if !is_symbol_name(name) {
                return Err(bad("invalid option name"));
            }
            let v = match value {
                "y" => Value::Yes,
                "m" => Value::Module,
                s if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') => Value::Str(
                    s[1..s.len() - 1]
                        .replace("\\\"", "\"")
                        .replace("\\\\", "\\"),
                ),
                s => Value::Other(s.to_string()),
            };
            options.insert(name.to_string(), v);
        }
        Ok(KernelConfig { options })
    }

    /// `y`, `m`, or `unset` (also for string/numeric options: their value).
    pub fn state(&self, name: &str) -> String {
        match self.options.get(name) {
            None => "unset".into(),
            Some(Value::Yes) => "y".into(),
            Some(Value::Module) => "m".into(),
            Some(Value::Str(s)) | Some(Value::Other(s)) => s.clone(),
        }
    }

    /// The same config with `names` unset (what another distribution's kernel of the
    /// same series may leave out).
    pub fn without<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> KernelConfig {
        let mut c = self.clone();
        for n in names {
            c.options.remove(n);
        }
        c
    }

    pub fn is_enabled(&self, name: &str) -> bool {
        matches!(self.options.get(name), Some(Value::Yes | Value::Module))
    }

    pub fn string(&self, name: &str) -> Option<&str> {
        match self.options.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_states() {
        let c = KernelConfig::parse(
            "# comment\nCONFIG_RDMA_RXE=m\n# CONFIG_RDMA_SIW is not set\nCONFIG_MODVERSIONS=y\nCONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) 12.2.0\"\nCONFIG_NR_CPUS=8192\n",
        )
        .unwrap();
        assert_eq!(c.state("RDMA_RXE"), "m");
        assert_eq!(c.state("RDMA_SIW"), "unset");
        assert_eq!(c.state("NR_CPUS"), "8192");
        assert_eq!(
            c.string("CC_VERSION_TEXT"),
            Some("gcc-12 (Debian 12.2.0-14) 12.2.0")
        );
        assert!(c.is_enabled("MODVERSIONS"));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            KernelConfig::parse("CONFIG_X=y\nhello\n").unwrap_err().line,
            2
        );
        assert!(KernelConfig::parse("FOO=y").is_err());
        assert!(KernelConfig::parse("CONFIG_A-B=y").is_err());
    }
}
