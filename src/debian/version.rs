//! Debian version comparison, as dpkg orders versions: `[epoch:]upstream[-revision]`,
//! each part compared as alternating non-digit and digit runs, where `~` sorts before
//! everything (even the end of the string) and letters before other characters.

use std::cmp::Ordering;

/// A parsed Debian version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub epoch: u64,
    pub upstream: String,
    pub revision: String,
}

impl Version {
    /// Parse `s`; None when it is not a Debian version (empty upstream part, a bad
    /// epoch, or characters policy doesn't allow).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let (epoch, rest) = match s.split_once(':') {
            Some((e, r)) => (e.parse().ok()?, r),
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        let ok = |p: &str, extra: &str| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c) || extra.contains(c))
        };
        if upstream.is_empty() || !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        if !ok(upstream, "-:") || !ok(revision, "") {
            return None;
        }
        Some(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

/// dpkg's character order: `~` first, then the end of a part, then letters, then
/// everything else by ASCII.
fn order(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

/// dpkg's `verrevcmp` on one part.
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefixes, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Digit runs, as numbers (leading zeros don't count).
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        write!(f, "{}", self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        Version::parse(a).unwrap().cmp(&Version::parse(b).unwrap())
    }

    #[test]
    fn dpkg_order() {
        use Ordering::*;
        // Cases from dpkg's own documentation and policy §5.6.12.
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0-1", "1.0-1~bpo1", Greater),
            ("1:0.1", "2.0", Greater),
            ("1.01", "1.1", Equal),
            ("1.10", "1.9", Greater),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("6.1.170-3", "6.1.176-1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Less),
            ("1.0~~", "1.0~", Less),
            ("12.2.0-14", "12.2.0-14+deb12u1", Less),
            ("0", "0", Equal),
        ] {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parse_and_refuse() {
        let v = Version::parse("1:2.3-4+b1").unwrap();
        assert_eq!(
            (v.epoch, v.upstream.as_str(), v.revision.as_str()),
            (1, "2.3", "4+b1")
        );
        assert_eq!(v.to_string(), "1:2.3-4+b1");
        assert_eq!(Version::parse("1.2-3-4").unwrap().upstream, "1.2-3");
        for bad in ["", "a1", "x:1", "1.0 2", "1.0-r/1"] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }
}
