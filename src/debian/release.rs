//! A suite's signed `InRelease` file: verified with `gpgv` against Debian's archive
//! keyring (no cryptography of ours), then read for the index files it lists with
//! their sizes and sha256. Only the text `gpgv` vouches for is parsed, never the
//! clear-signed file itself, so nothing outside the signature can slip in.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReleaseError {
    #[error("{file}: signature not verified by {keyring}: {message}")]
    Signature {
        file: String,
        keyring: String,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// One index file a Release lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub size: u64,
    pub sha256: String,
}

/// What a verified Release says.
#[derive(Debug, Clone)]
pub struct Release {
    pub codename: String,
    pub components: Vec<String>,
    /// Seconds since the epoch after which the Release is stale (`Valid-Until`).
    pub valid_until: Option<i64>,
    /// Path below `dists/<suite>/` → size and sha256 (the `SHA256` field).
    pub files: BTreeMap<String, IndexFile>,
}

/// Verify a clear-signed `InRelease` with `gpgv` and the given keyring; returns the
/// signed text (what `gpgv --output` writes), only when a signature is good.
pub fn verify(inrelease: &Path, keyring: &Path) -> Result<String, ReleaseError> {
    let file = inrelease.display().to_string();
    let fail = |message: String| ReleaseError::Signature {
        file: file.clone(),
        keyring: keyring.display().to_string(),
        message,
    };
    let out = Command::new("gpgv")
        .arg("--status-fd")
        .arg("2")
        .arg("--keyring")
        .arg(keyring)
        .arg("--output")
        .arg("-")
        .arg(inrelease)
        .output()
        .map_err(|e| fail(format!("cannot run gpgv: {e}")))?;
    // The signed text goes to stdout; the status lines (and gpgv's messages) to stderr.
    let err = String::from_utf8_lossy(&out.stderr);
    let valid = err.lines().any(|l| l.starts_with("[GNUPG:] VALIDSIG "));
    if !out.status.success() || !valid {
        let why = err
            .lines()
            .filter(|l| {
                l.starts_with("gpgv: ") && !l.contains("using ") && !l.contains("Signature made")
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(fail(if why.is_empty() {
            format!("gpgv exited with {}", out.status)
        } else {
            why
        }));
    }
    String::from_utf8(out.stdout).map_err(|_| fail("the signed text is not UTF-8".into()))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// A Release date (`Sat, 12 Dec 2026 03:33:28 UTC`) as seconds since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    let rest = s.split_once(", ").map_or(s, |(_, r)| r);
    let mut it = rest.split_whitespace();
    let day: i64 = it.next()?.parse().ok()?;
    let month_name = it.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as i64 + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !matches!(it.next(), Some("UTC" | "GMT" | "+0000")) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + sec)
}

impl Release {
    /// Parse the signed text of a Release; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Release, ReleaseError> {
        let bad = |line: usize, message: String| ReleaseError::Invalid {
            file: file.to_string(),
            message: format!("line {line}: {message}"),
        };
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        let mut files = BTreeMap::new();
        let mut current = "";
        for (n, line) in text.lines().enumerate() {
            if let Some(entry) = line.strip_prefix(' ') {
                if current != "SHA256" {
                    continue;
                }
                let parts: Vec<&str> = entry.split_whitespace().collect();
                let [hash, size, path] = parts[..] else {
                    return Err(bad(
                        n + 1,
                        format!("SHA256 entry {entry:?} is not `hash size path`"),
                    ));
                };
                if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(n + 1, format!("{path}: {hash:?} is not a sha256")));
                }
                let size = size
                    .parse()
                    .map_err(|_| bad(n + 1, format!("{path}: size {size:?} is not a number")))?;
                let f = IndexFile {
                    size,
                    sha256: hash.to_ascii_lowercase(),
                };
                files.insert(path.to_string(), f);
            } else if let Some((k, v)) = line.split_once(':') {
                current = k;
                fields.insert(k, v.trim());
            } else if !line.trim().is_empty() {
                return Err(bad(n + 1, format!("{line:?} is not a field")));
            }
        }
        let codename = fields
            .get("Codename")
            .or(fields.get("Suite"))
            .ok_or_else(|| bad(0, "no Codename or Suite field".into()))?
            .to_string();
        if files.is_empty() {
            return Err(bad(0, "lists no SHA256 index files".into()));
        }
        let valid_until = match fields.get("Valid-Until") {
            None => None,
            Some(v) => Some(
                parse_date(v).ok_or_else(|| bad(0, format!("Valid-Until {v:?} is not a date")))?,
            ),
        };
        let components = fields
            .get("Components")
            .map(|c| c.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        Ok(Release {
            codename,
            components,
            valid_until,
            files,
        })
    }

    /// The `Packages.xz` of the main component for `arch` (`main/…`, or
    /// `updates/main/…` or `main/…` in the security archive).
    pub fn packages_xz(&self, arch: &str) -> Option<(&str, &IndexFile)> {
        self.main_index(&format!("binary-{arch}/Packages.xz"))
    }

    /// The main component's `Sources.xz`: its path and what the Release says of it.
    pub fn sources_xz(&self) -> Option<(&str, &IndexFile)> {
        self.main_index("source/Sources.xz")
    }

    /// A file of the main component (`binary-amd64/Packages.xz`, `source/Sources.xz`).
    fn main_index(&self, file: &str) -> Option<(&str, &IndexFile)> {
        self.components
            .iter()
            .filter(|c| *c == "main" || c.ends_with("/main"))
            .find_map(|c| {
                // The security archive's Components say `updates/main` and its
                // SHA256 field lists `main/…` (or both).
                let last = c.rsplit('/').next().unwrap_or(c);
                [c.as_str(), last].into_iter().find_map(|c| {
                    let path = format!("{c}/{file}");
                    self.files
                        .get_key_value(&path)
                        .map(|(k, v)| (k.as_str(), v))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_date("Sat, 12 Dec 2026 03:33:28 UTC"),
            Some(1_797_046_408) // date -u -d "2026-12-12 03:33:28" +%s
        );
        assert_eq!(
            parse_date("Tue, 29 Feb 2000 12:00:00 UTC"),
            Some(951_825_600)
        );
        assert_eq!(parse_date("Sat, 12 Foo 2026 03:33:28 UTC"), None);
        assert_eq!(parse_date("Sat, 12 Dec 2026 03:33 UTC"), None);
        assert_eq!(parse_date("Sat, 12 Dec 2026 03:33:28 CET"), None);
    }

    #[test]
    fn fields_and_index_files() {
        let text = "Origin: Debian\nCodename: bookworm-security\nValid-Until: Sat, 12 Dec 2026 03:33:28 UTC\nComponents: updates/main updates/contrib\nMD5Sum:\n 00 1 x\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 updates/main/binary-amd64/Packages.xz\n";
        let r = Release::parse(text, "InRelease").unwrap();
        assert_eq!(r.codename, "bookworm-security");
        let (path, f) = r.packages_xz("amd64").unwrap();
        assert_eq!(path, "updates/main/binary-amd64/Packages.xz");
        assert_eq!(f.size, 0);
        for (bad, msg) in [
            ("Codename: x\nSHA256:\n zz 1 a\n", "is not a sha256"),
            ("Codename: x\n", "lists no SHA256"),
            (
                "SHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 a\n",
                "no Codename",
            ),
            ("Codename: x\ngarbage\n", "is not a field"),
        ] {
            let e = Release::parse(bad, "R").unwrap_err().to_string();
            assert!(e.starts_with("R: ") && e.contains(msg), "{e}");
        }
    }
}
