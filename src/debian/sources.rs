//! A suite's `Sources` index (deb822, streamed): for the source packages asked for,
//! the upstream release each carries, by its upstream tarball (`*.orig.tar.*` in
//! `Checksums-Sha256`, under the stanza's `Directory`). `rdma-nix update` tracks
//! rdma-core and perftest releases from it.

use std::io::BufRead;

use serde::Serialize;

use super::control::Stanzas;
use super::version::Version;

/// An upstream release as a suite carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamRelease {
    /// The source package (`rdma-core`).
    pub package: String,
    /// Debian's version of it (`65.0-1.1`).
    pub debian_version: String,
    /// The upstream tarball's pool path.
    pub path: String,
    /// Its sha256, hex.
    pub sha256: String,
}

impl UpstreamRelease {
    /// The upstream version (`65.0`): Debian's without epoch and revision.
    pub fn upstream(&self) -> String {
        Version::parse(&self.debian_version)
            .map(|v| v.upstream)
            .unwrap_or_else(|| self.debian_version.clone())
    }
}

/// The releases of the `wanted` source packages in a `Sources` stream; `label` names
/// the index in errors.
pub fn parse(
    input: impl BufRead,
    label: &str,
    wanted: &[&str],
) -> Result<Vec<UpstreamRelease>, String> {
    let mut found = Vec::new();
    for st in Stanzas::new(input) {
        let st = st.map_err(|e| format!("{label}: {e}"))?;
        let Some(package) = st.get("Package").filter(|p| wanted.contains(p)) else {
            continue;
        };
        let at = |what: &str| format!("{label}: line {}: {package}: {what}", st.line);
        let version = st.get("Version").ok_or_else(|| at("no Version"))?;
        if Version::parse(version).is_none() {
            return Err(at(&format!("Version {version:?} is not a Debian version")));
        }
        let dir = st.get("Directory").ok_or_else(|| at("no Directory"))?;
        let sums = st
            .get("Checksums-Sha256")
            .ok_or_else(|| at("no Checksums-Sha256"))?;
        let orig = sums.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let tarball = f.len() == 3
                && [".orig.tar.gz", ".orig.tar.xz"]
                    .iter()
                    .any(|x| f[2].ends_with(x));
            tarball.then(|| (f[0], f[2]))
        });
        let Some((sha256, file)) = orig else {
            return Err(at(
                "no upstream tarball (*.orig.tar.gz or .xz) in Checksums-Sha256",
            ));
        };
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(at(&format!(
                "{file}: sha256 {sha256:?} is not 64 hex digits"
            )));
        }
        let plain = |s: &str| {
            !s.split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        };
        if !dir.starts_with("pool/") || !plain(dir) || !plain(file) || file.contains('/') {
            return Err(at(&format!("{dir}/{file} is not a pool path")));
        }
        found.push(UpstreamRelease {
            package: package.to_string(),
            debian_version: version.to_string(),
            path: format!("{dir}/{file}"),
            sha256: sha256.to_ascii_lowercase(),
        });
    }
    Ok(found)
}

/// The newest release of `package` among `releases` (by Debian version).
pub fn newest<'a>(releases: &'a [UpstreamRelease], package: &str) -> Option<&'a UpstreamRelease> {
    releases
        .iter()
        .filter(|r| r.package == package)
        .max_by_key(|r| Version::parse(&r.debian_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCES: &str = "Package: rdma-core
Binary: rdma-core, ibverbs-providers
Version: 65.0-1.1
Directory: pool/main/r/rdma-core
Checksums-Sha256:
 1111111111111111111111111111111111111111111111111111111111111111 2613 rdma-core_65.0-1.1.dsc
 f6ba3d8b2c4aa334c5c883c1ad0772de339011123cff4fb1db32ae7a443fb7ca 2076577 rdma-core_65.0.orig.tar.gz
 2222222222222222222222222222222222222222222222222222222222222222 29720 rdma-core_65.0-1.1.debian.tar.xz

Package: unrelated
Version: 1.0-1
Directory: pool/main/u/unrelated

Package: rdma-core
Version: 1:56.1-2
Directory: pool/main/r/rdma-core
Checksums-Sha256:
 3333333333333333333333333333333333333333333333333333333333333333 100 rdma-core_56.1.orig.tar.xz
";

    #[test]
    fn the_wanted_packages_upstream_tarballs_and_the_newest() {
        let r = parse(
            SOURCES.as_bytes(),
            "sid/main/source/Sources.xz",
            &["rdma-core"],
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].path,
            "pool/main/r/rdma-core/rdma-core_65.0.orig.tar.gz"
        );
        assert_eq!(r[0].upstream(), "65.0");
        assert_eq!(r[1].upstream(), "56.1");
        // The epoch makes 56.1 the newer by Debian's ordering.
        assert_eq!(newest(&r, "rdma-core").unwrap().upstream(), "56.1");
        assert!(newest(&r, "perftest").is_none());
    }

    #[test]
    fn a_broken_stanza_of_a_wanted_package_is_refused_naming_the_index_and_line() {
        for (text, msg) in [
            ("Package: perftest\nVersion: 1-1\nDirectory: pool/main/p/perftest\n", "no Checksums-Sha256"),
            ("Package: perftest\nVersion: 1-1\nDirectory: pool/main/p/perftest\nChecksums-Sha256:\n 12 3 perftest_1.orig.tar.gz\n", "is not 64 hex digits"),
            ("Package: perftest\nVersion: 1-1\nDirectory: /etc\nChecksums-Sha256:\n 1111111111111111111111111111111111111111111111111111111111111111 3 perftest_1.orig.tar.gz\n", "is not a pool path"),
            ("Package: perftest\nVersion: !\nDirectory: pool/main/p/perftest\n", "is not a Debian version"),
            ("Package: perftest\nVersion: 1-1\nDirectory: pool/main/p/perftest\nChecksums-Sha256:\n 1111111111111111111111111111111111111111111111111111111111111111 3 perftest_1.dsc\n", "no upstream tarball"),
        ] {
            let e = parse(text.as_bytes(), "x/Sources.xz", &["perftest"]).unwrap_err();
            assert!(e.starts_with("x/Sources.xz: line 1: perftest: ") && e.contains(msg), "{e}");
        }
        // The same stanzas of a package not asked for are not read.
        assert!(parse(
            "Package: other\nVersion: !\n".as_bytes(),
            "x",
            &["perftest"]
        )
        .unwrap()
        .is_empty());
    }
}
