//! Derivations in Nix's ATerm form (`Derive(...)`), their parser and serialiser,
//! `hashDerivationModulo`, output paths and the `.drv` path.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use thiserror::Error;

use super::hash::{HashAlgo, NixHash};
use super::store_path::{self, FileIngestion, StorePath, StorePathError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Empty while the output paths are still being computed.
    pub path: String,
    /// `""`, or for fixed outputs `sha256` / `r:sha256`.
    pub hash_algo: String,
    /// `""`, or the base16 digest of a fixed output.
    pub hash: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derivation {
    pub outputs: BTreeMap<String, Output>,
    pub input_drvs: BTreeMap<String, BTreeSet<String>>,
    pub input_srcs: BTreeSet<String>,
    pub platform: String,
    pub builder: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Error)]
pub enum DrvError {
    #[error("malformed derivation at byte {offset}: {what}")]
    Parse { offset: usize, what: String },
    #[error("derivation has no \"name\" in its environment")]
    NoName,
    #[error("fixed output has an invalid hash: {0}")]
    FixedHash(String),
    #[error(transparent)]
    StorePath(#[from] StorePathError),
    #[error("input derivation {path}: {message}")]
    Input { path: String, message: String },
}

fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn list<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

impl Derivation {
    pub fn name(&self) -> Result<&str, DrvError> {
        self.env
            .get("name")
            .map(String::as_str)
            .ok_or(DrvError::NoName)
    }

    /// The single fixed output `out`, if this is a fixed-output derivation.
    pub fn fixed_output(&self) -> Option<&Output> {
        match self.outputs.get("out") {
            Some(o) if self.outputs.len() == 1 && !o.hash.is_empty() => Some(o),
            _ => None,
        }
    }

    /// Serialise to ATerm. `input_drvs` may be replaced (as in hashDerivationModulo).
    fn unparse_with(
        &self,
        input_drvs: &BTreeMap<String, BTreeSet<String>>,
        mask_outputs: bool,
    ) -> String {
        let mut s = String::with_capacity(1024);
        s.push_str("Derive(");
        list(&mut s, &self.outputs, |s, (name, o)| {
            s.push('(');
            escape_into(s, name);
            s.push(',');
            escape_into(s, if mask_outputs { "" } else { &o.path });
            s.push(',');
            escape_into(s, &o.hash_algo);
            s.push(',');
            escape_into(s, &o.hash);
            s.push(')');
        });
        s.push(',');
        list(&mut s, input_drvs, |s, (path, outs)| {
            s.push('(');
            escape_into(s, path);
            s.push(',');
            list(s, outs, |s, o| escape_into(s, o));
            s.push(')');
        });
        s.push(',');
        list(&mut s, &self.input_srcs, |s, p| escape_into(s, p));
        s.push(',');
        escape_into(&mut s, &self.platform);
        s.push(',');
        escape_into(&mut s, &self.builder);
        s.push(',');
        list(&mut s, &self.args, |s, a| escape_into(s, a));
        s.push(',');
        list(&mut s, &self.env, |s, (k, v)| {
            s.push('(');
            escape_into(s, k);
            s.push(',');
            let masked = mask_outputs && self.outputs.contains_key(k);
            escape_into(s, if masked { "" } else { v });
            s.push(')');
        });
        s.push(')');
        s
    }

    /// The ATerm text, byte-for-byte what Nix writes into the `.drv` file.
    pub fn to_aterm(&self) -> String {
        self.unparse_with(&self.input_drvs, false)
    }

    pub fn parse(text: &str) -> Result<Self, DrvError> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let drv = p.derivation()?;
        if p.i != p.s.len() {
            return p.bad("trailing data after the derivation");
        }
        Ok(drv)
    }

    /// The `.drv` store path: a text path whose references are the input sources and
    /// input derivations.
    pub fn drv_path(&self) -> Result<StorePath, DrvError> {
        let refs: BTreeSet<String> = self
            .input_srcs
            .iter()
            .chain(self.input_drvs.keys())
            .cloned()
            .collect();
        Ok(store_path::text_path(
            &format!("{}.drv", self.name()?),
            self.to_aterm().as_bytes(),
            &refs,
        )?)
    }

    fn fixed_hash(o: &Output) -> Result<(FileIngestion, NixHash), DrvError> {
        let (method, algo) = match o.hash_algo.strip_prefix("r:") {
            Some(a) => (FileIngestion::Recursive, a),
            None => (FileIngestion::Flat, o.hash_algo.as_str()),
        };
        let algo: HashAlgo = algo
            .parse()
            .map_err(|e: super::hash::HashError| DrvError::FixedHash(e.to_string()))?;
        let h =
            NixHash::parse(&o.hash, Some(algo)).map_err(|e| DrvError::FixedHash(e.to_string()))?;
        Ok((method, h))
    }

    /// Fill in output paths (and the matching environment variables) of a derivation
    /// whose outputs are still blank, exactly as `derivation` does at evaluation.
    pub fn fill_output_paths(&mut self, hashes: &mut DrvHasher) -> Result<(), DrvError> {
        let name = self.name()?.to_string();
        if let Some(o) = self.fixed_output() {
            let (method, h) = Self::fixed_hash(o)?;
            let path =
                store_path::fixed_output_path(method, &h, &name, &BTreeSet::new())?.to_string();
            self.outputs.get_mut("out").expect("fixed output").path = path.clone();
            self.env.insert("out".into(), path);
            return Ok(());
        }
        let h = hashes.modulo(self, true)?;
        let names: Vec<String> = self.outputs.keys().cloned().collect();
        for out in names {
            let path = store_path::output_path(&name, &out, &h)?.to_string();
            self.outputs.get_mut(&out).expect("output").path = path.clone();
            self.env.insert(out, path);
        }
        Ok(())
    }
}

/// Computes and caches `hashDerivationModulo` for input derivations, which it loads
/// through `load` (normally: read and parse the `.drv` file from the store).
type Loader<'a> = Box<dyn FnMut(&str) -> Result<Derivation, String> + 'a>;

pub struct DrvHasher<'a> {
    load: Loader<'a>,
    cache: HashMap<String, NixHash>,
}

impl<'a> DrvHasher<'a> {
    pub fn new(load: impl FnMut(&str) -> Result<Derivation, String> + 'a) -> Self {
        DrvHasher {
            load: Box::new(load),
            cache: HashMap::new(),
        }
    }

    /// A hasher that reads input derivations from the file system.
    pub fn from_store() -> DrvHasher<'static> {
        DrvHasher::new(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            Derivation::parse(&text).map_err(|e| e.to_string())
        })
    }

    /// `hashDerivationModulo(drv, maskOutputs)`.
    pub fn modulo(&mut self, drv: &Derivation, mask_outputs: bool) -> Result<NixHash, DrvError> {
        if let Some(o) = drv.fixed_output() {
            let (method, h) = Derivation::fixed_hash(o)?;
            let s = format!(
                "fixed:out:{}{}:{}:{}",
                method.prefix(),
                h.algo,
                h.to_base16(),
                o.path
            );
            return Ok(NixHash::sha256(s.as_bytes()));
        }
        let mut inputs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, outs) in &drv.input_drvs {
            let h = self.input_hash(path)?;
            inputs
                .entry(h.to_base16())
                .or_default()
                .extend(outs.iter().cloned());
        }
        Ok(NixHash::sha256(
            drv.unparse_with(&inputs, mask_outputs).as_bytes(),
        ))
    }

    fn input_hash(&mut self, path: &str) -> Result<NixHash, DrvError> {
        if let Some(h) = self.cache.get(path) {
            return Ok(h.clone());
        }
        let input = (self.load)(path).map_err(|message| DrvError::Input {
            path: path.to_string(),
            message,
        })?;
        let h = self.modulo(&input, false)?;
        self.cache.insert(path.to_string(), h.clone());
        Ok(h)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn bad<T>(&self, what: impl Into<String>) -> Result<T, DrvError> {
        Err(DrvError::Parse {
            offset: self.i,
            what: what.into(),
        })
    }

    fn expect(&mut self, lit: &str) -> Result<(), DrvError> {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            Ok(())
        } else {
            let found = String::from_utf8_lossy(&self.s[self.i..(self.i + 12).min(self.s.len())])
                .into_owned();
            self.bad(format!("expected {lit:?}, found {found:?}"))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn string(&mut self) -> Result<String, DrvError> {
        self.expect("\"")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return self.bad("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = match self.s.get(self.i + 1) {
                        None => return self.bad("unterminated escape"),
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(&c) => c,
                    };
                    out.push(c);
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).or_else(|_| self.bad("string is not UTF-8"))
    }

    fn path(&mut self) -> Result<String, DrvError> {
        let start = self.i;
        let p = self.string()?;
        if !p.starts_with('/') {
            self.i = start;
            return self.bad(format!("{p:?} is not an absolute path"));
        }
        Ok(p)
    }

    /// `[item,item,...]`
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DrvError>,
    ) -> Result<Vec<T>, DrvError> {
        self.expect("[")?;
        let mut v = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(v);
        }
        loop {
            v.push(item(self)?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(v);
                }
                _ => return self.bad("expected ',' or ']'"),
            }
        }
    }

    fn sorted_unique<K: Ord + std::fmt::Debug, V>(
        &self,
        items: Vec<(K, V)>,
        what: &str,
    ) -> Result<BTreeMap<K, V>, DrvError> {
        let mut map = BTreeMap::new();
        for (k, v) in items {
            if let Some((prev, _)) = map.last_key_value() {
                if *prev >= k {
                    return self.bad(format!("{what} not in strictly ascending order at {k:?}"));
                }
            }
            map.insert(k, v);
        }
        Ok(map)
    }

    fn derivation(&mut self) -> Result<Derivation, DrvError> {
        self.expect("Derive(")?;
        let outputs = self.list(|p| {
            p.expect("(")?;
            let name = p.string()?;
            p.expect(",")?;
            let path = p.string()?;
            p.expect(",")?;
            let hash_algo = p.string()?;
            p.expect(",")?;
            let hash = p.string()?;
            p.expect(")")?;
            Ok((
                name,
                Output {
                    path,
                    hash_algo,
                    hash,
                },
            ))
        })?;
        let outputs = self.sorted_unique(outputs, "outputs")?;
        if outputs.is_empty() {
            return self.bad("derivation has no outputs");
        }
        self.expect(",")?;
        let input_drvs = self.list(|p| {
            p.expect("(")?;
            let path = p.path()?;
            p.expect(",")?;
            let outs = p.list(|p| p.string())?;
            p.expect(")")?;
            let outs =
                p.sorted_unique(outs.into_iter().map(|o| (o, ())).collect(), "input outputs")?;
            Ok((path, outs.into_keys().collect::<BTreeSet<_>>()))
        })?;
        let input_drvs = self.sorted_unique(input_drvs, "input derivations")?;
        self.expect(",")?;
        let srcs = self.list(|p| p.path())?;
        let input_srcs =
            self.sorted_unique(srcs.into_iter().map(|s| (s, ())).collect(), "input sources")?;
        self.expect(",")?;
        let platform = self.string()?;
        self.expect(",")?;
        let builder = self.string()?;
        self.expect(",")?;
        let args = self.list(|p| p.string())?;
        self.expect(",")?;
        let env = self.list(|p| {
            p.expect("(")?;
            let k = p.string()?;
            p.expect(",")?;
            let v = p.string()?;
            p.expect(")")?;
            Ok((k, v))
        })?;
        let env = self.sorted_unique(env, "environment")?;
        self.expect(")")?;
        Ok(Derivation {
            outputs,
            input_drvs,
            input_srcs: input_srcs.into_keys().collect(),
            platform,
            builder,
            args,
            env,
        })
    }
}

/// Write `nix show-derivation`-style JSON for a derivation at `drv_path`.
pub fn show_json(drv_path: &str, drv: &Derivation) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let outputs: Map<String, Value> = drv
        .outputs
        .iter()
        .map(|(n, o)| {
            let mut m = Map::new();
            m.insert("path".into(), json!(o.path));
            if !o.hash.is_empty() {
                m.insert("hashAlgo".into(), json!(o.hash_algo));
                m.insert("hash".into(), json!(o.hash));
            }
            (n.clone(), Value::Object(m))
        })
        .collect();
    json!({
        drv_path: {
            "outputs": outputs,
            "inputSrcs": drv.input_srcs,
            "inputDrvs": drv.input_drvs,
            "system": drv.platform,
            "builder": drv.builder,
            "args": drv.args,
            "env": drv.env,
        }
    })
}

/// A human-readable listing of a derivation.
pub fn show_text(drv_path: &str, drv: &Derivation) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{drv_path}");
    let _ = writeln!(s, "  system:  {}", drv.platform);
    let _ = writeln!(s, "  builder: {}", drv.builder);
    for a in &drv.args {
        let _ = writeln!(s, "    arg:   {a:?}");
    }
    let _ = writeln!(s, "  outputs:");
    for (n, o) in &drv.outputs {
        if o.hash.is_empty() {
            let _ = writeln!(s, "    {n}: {}", o.path);
        } else {
            let _ = writeln!(s, "    {n}: {} (fixed {}:{})", o.path, o.hash_algo, o.hash);
        }
    }
    let _ = writeln!(s, "  input derivations:");
    for (p, outs) in &drv.input_drvs {
        let outs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let _ = writeln!(s, "    {p} [{}]", outs.join(", "));
    }
    let _ = writeln!(s, "  input sources:");
    for p in &drv.input_srcs {
        let _ = writeln!(s, "    {p}");
    }
    let _ = writeln!(s, "  environment:");
    for (k, v) in &drv.env {
        let _ = writeln!(s, "    {k} = {v:?}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Derivation {
        let mut d = Derivation {
            platform: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: vec!["-c".into(), "echo \"hi\\there\"\n\ttab\r".into()],
            ..Default::default()
        };
        d.env.insert("name".into(), "t".into());
        d.env.insert("out".into(), String::new());
        d.outputs.insert("out".into(), Output::default());
        d
    }

    #[test]
    fn escape_roundtrip() {
        let mut d = sample();
        let mut h = DrvHasher::new(|p| Err(format!("no input {p}")));
        d.fill_output_paths(&mut h).unwrap();
        let text = d.to_aterm();
        assert!(text.contains(r#""echo \"hi\\there\"\n\ttab\r""#), "{text}");
        assert_eq!(Derivation::parse(&text).unwrap(), d);
    }

    #[test]
    fn parse_errors_have_offsets() {
        let d = sample().to_aterm();
        for bad in [
            &d[..d.len() - 1],
            &d.replace("Derive(", "Derivx("),
            &format!("{d} "),
            "Derive([],[],[],\"\",\"\",[],[])",
        ] {
            let e = Derivation::parse(bad).unwrap_err();
            assert!(matches!(e, DrvError::Parse { .. }), "{bad}: {e}");
        }
        // unsorted environment
        let unsorted = d.replace(
            "(\"name\",\"t\"),(\"out\",\"\")",
            "(\"out\",\"\"),(\"name\",\"t\")",
        );
        assert!(Derivation::parse(&unsorted)
            .unwrap_err()
            .to_string()
            .contains("ascending"));
    }
}
