//! A suite's binary package index (`Packages`): every stanza's name, version,
//! architecture, relations, and where the `.deb` is (pool path, sha256, size).

use std::collections::BTreeMap;
use std::io::BufRead;

use super::control::{ControlError, Stanzas};
use super::version::Version;

/// `<<`, `<=`, `=`, `>=`, `>>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn holds(self, have: &Version, want: &Version) -> bool {
        use std::cmp::Ordering::*;
        let c = have.cmp(want);
        match self {
            Op::Lt => c == Less,
            Op::Le => c != Greater,
            Op::Eq => c == Equal,
            Op::Ge => c != Less,
            Op::Gt => c == Greater,
        }
    }
}

/// One alternative of a relation: `name[:any] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rel {
    pub name: String,
    /// `name:amd64`: only that architecture's package (`:any` and `:native` are
    /// dropped: one architecture is resolved at a time).
    pub arch: Option<String>,
    pub constraint: Option<(Op, Version)>,
}

impl std::fmt::Display for Rel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((op, v)) = &self.constraint {
            let op = match op {
                Op::Lt => "<<",
                Op::Le => "<=",
                Op::Eq => "=",
                Op::Ge => ">=",
                Op::Gt => ">>",
            };
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// A `Depends:`-style field: a conjunction of alternatives.
pub fn parse_relations(s: &str) -> Result<Vec<Vec<Rel>>, String> {
    let mut out = Vec::new();
    for group in s.split(',') {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let mut alts = Vec::new();
        for alt in group.split('|') {
            alts.push(parse_rel(alt.trim())?);
        }
        out.push(alts);
    }
    Ok(out)
}

fn parse_rel(s: &str) -> Result<Rel, String> {
    if s.contains('[') || s.contains('<') && !s.contains('(') {
        return Err(format!(
            "{s:?}: architecture or profile restrictions don't belong in a binary package's relations"
        ));
    }
    let (name, rest) = match s.find('(') {
        Some(i) => (s[..i].trim(), Some(s[i..].trim())),
        None => (s.trim(), None),
    };
    let (name, arch) = match name.split_once(':') {
        Some((n, "any" | "native")) => (n, None),
        Some((n, a))
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            (n, Some(a.to_string()))
        }
        Some(_) => return Err(format!("{s:?}: bad architecture qualifier")),
        None => (name, None),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
    {
        return Err(format!("{s:?}: bad package name {name:?}"));
    }
    let constraint = match rest {
        None => None,
        Some(r) => {
            let inner = r
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("{s:?}: unbalanced parenthesis"))?
                .trim();
            let (op, v) = [
                ("<<", Op::Lt),
                ("<=", Op::Le),
                (">=", Op::Ge),
                (">>", Op::Gt),
                ("=", Op::Eq),
                ("<", Op::Le),
                (">", Op::Ge),
            ]
            .iter()
            .find_map(|(t, op)| inner.strip_prefix(t).map(|v| (*op, v.trim())))
            .ok_or_else(|| format!("{s:?}: no relation operator"))?;
            let v = Version::parse(v).ok_or_else(|| format!("{s:?}: bad version {v:?}"))?;
            Some((op, v))
        }
    };
    Ok(Rel {
        name: name.to_string(),
        arch,
        constraint,
    })
}

/// One binary package of the index.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub pre_depends: Vec<Vec<Rel>>,
    pub depends: Vec<Vec<Rel>>,
    /// Names this package provides, with the version provided (`Provides: x (= 1)`).
    pub provides: Vec<(String, Option<Version>)>,
    pub essential: bool,
    /// required < important < standard < optional < extra (lower is stronger).
    pub priority: u8,
    pub filename: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{file}: {source}")]
    Control {
        file: String,
        #[source]
        source: ControlError,
    },
    #[error("{file}: line {line}: package {package}: {message}")]
    Field {
        file: String,
        line: usize,
        package: String,
        message: String,
    },
}

/// Every package of one or more indexes (a suite and its updates), by name.
#[derive(Debug, Default)]
pub struct Index {
    pub packages: BTreeMap<String, Vec<Package>>,
    /// Virtual name → (providing package, its version, version provided).
    pub providers: BTreeMap<String, Vec<(String, Version, Option<Version>)>>,
}

fn priority_rank(p: Option<&str>) -> u8 {
    match p {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        _ => 4,
    }
}

impl Index {
    /// Add the packages of `arch` and `all` from a Packages stream; `file` names it in
    /// errors.
    pub fn add(
        &mut self,
        input: impl BufRead,
        file: &str,
        arch: &str,
    ) -> Result<usize, IndexError> {
        let mut n = 0;
        for st in Stanzas::new(input) {
            let st = st.map_err(|source| IndexError::Control {
                file: file.to_string(),
                source,
            })?;
            let name = st.get("Package").unwrap_or("").to_string();
            let bad = |message: String| IndexError::Field {
                file: file.to_string(),
                line: st.line,
                package: if name.is_empty() {
                    "?".into()
                } else {
                    name.clone()
                },
                message,
            };
            if name.is_empty() {
                return Err(bad("no Package field".into()));
            }
            let a = st
                .get("Architecture")
                .ok_or_else(|| bad("no Architecture".into()))?;
            if a != arch && a != "all" {
                continue;
            }
            let raw = st.get("Version").ok_or_else(|| bad("no Version".into()))?;
            let version = Version::parse(raw).ok_or_else(|| bad(format!("bad Version {raw:?}")))?;
            let rel = |f: &str| -> Result<Vec<Vec<Rel>>, IndexError> {
                st.get(f)
                    .map(|v| parse_relations(v).map_err(|e| bad(format!("{f}: {e}"))))
                    .transpose()
                    .map(Option::unwrap_or_default)
            };
            let provides = rel("Provides")?
                .into_iter()
                .flatten()
                .map(|r| match r.constraint {
                    None => Ok((r.name, None)),
                    Some((Op::Eq, v)) => Ok((r.name, Some(v))),
                    Some(_) => Err(bad(format!(
                        "Provides: {} with an operator other than =",
                        r.name
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let filename = st
                .get("Filename")
                .ok_or_else(|| bad("no Filename".into()))?;
            if !filename.starts_with("pool/") || filename.split('/').any(|s| s == "..") {
                return Err(bad(format!("Filename {filename:?} is not a pool/… path")));
            }
            let sha256 = st.get("SHA256").ok_or_else(|| bad("no SHA256".into()))?;
            if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(format!("SHA256 {sha256:?} is not 64 hex digits")));
            }
            let size = st
                .get("Size")
                .ok_or_else(|| bad("no Size".into()))?
                .parse()
                .map_err(|_| bad("Size is not a number".into()))?;
            let pkg = Package {
                name: name.clone(),
                version,
                architecture: a.to_string(),
                pre_depends: rel("Pre-Depends")?,
                depends: rel("Depends")?,
                provides,
                essential: st.get("Essential") == Some("yes"),
                priority: priority_rank(st.get("Priority")),
                filename: filename.to_string(),
                sha256: sha256.to_ascii_lowercase(),
                size,
            };
            for (virt, pv) in &pkg.provides {
                self.providers.entry(virt.clone()).or_default().push((
                    pkg.name.clone(),
                    pkg.version.clone(),
                    pv.clone(),
                ));
            }
            let versions = self.packages.entry(name).or_default();
            // The same version twice (a suite and its updates): the first one stays.
            if !versions.iter().any(|p| p.version == pkg.version) {
                versions.push(pkg);
            }
            n += 1;
        }
        Ok(n)
    }

    /// The highest version of `name` that satisfies `rel`'s constraint.
    pub fn best(&self, rel: &Rel) -> Option<&Package> {
        self.packages
            .get(&rel.name)?
            .iter()
            .filter(|p| rel.arch.as_ref().is_none_or(|a| *a == p.architecture))
            .filter(|p| satisfies(&p.version, rel))
            .max_by(|a, b| a.version.cmp(&b.version))
    }
}

/// Whether a real package's version satisfies `rel`.
pub fn satisfies(v: &Version, rel: &Rel) -> bool {
    rel.constraint
        .as_ref()
        .is_none_or(|(op, want)| op.holds(v, want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations() {
        let r =
            parse_relations("libc6 (>= 2.34), libgcc-s1 | libgcc1, python3:any (<< 3.12~), awk")
                .unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0][0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(r[1].len(), 2);
        assert_eq!(r[2][0].name, "python3");
        assert!(parse_relations("foo [amd64]").is_err());
        assert!(parse_relations("foo (>= 1").is_err());
        assert!(parse_relations("Foo").is_err());
        assert!(parse_relations("foo (~ 1)").is_err());
    }
}
