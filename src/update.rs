//! `rdma-nix update`: moves the lock forward from the tracked suites' signed indexes.
//! Reads each `[[series]]`'s suites (`InRelease` verified with the pinned archive
//! keyring, then `Packages.xz` checked against the sha256 it lists), finds the series'
//! kernel ABIs (`linux-image-<abi>-<flavour>` with its headers, common headers and
//! kbuild), and decides, by the series' keep policy, which ABIs the lock gains and
//! which it retires. The new lock is then a manifest like any other: `emit::generate`
//! plans its module builds and kABI reuse.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::debian::index::{Index, Package};
use crate::debian::release::{self, Release};
use crate::debian::version::Version;
use crate::fetch::{apt_download, apt_mirrors};
use crate::manifest::{DebianPackage, Kernel, Manifest, Series};
use crate::nix::{HashAlgo, NixHash};

/// Where the archive keyring sits in `debian-archive-keyring`.
pub const KEYRING_FILE: &str = "usr/share/keyrings/debian-archive-keyring.gpg";

/// Takes Debian's archive keyring out of its pinned package into `dir`.
pub fn extract_keyring(deb: &Path, dir: &Path) -> Result<PathBuf> {
    let target = dir.join("debian-archive-keyring.gpg");
    let mut found = false;
    crate::archive::deb::for_each_entry(deb, 64 << 20, |e| {
        if e.path == Path::new(KEYRING_FILE) && e.kind == tar::EntryType::Regular {
            let mut data = Vec::new();
            e.reader.read_to_end(&mut data)?;
            fs::write(&target, data)?;
            found = true;
            return Ok(false);
        }
        Ok(true)
    })?;
    if !found {
        bail!("{}: has no {KEYRING_FILE}", deb.display());
    }
    Ok(target)
}

fn sha256_hex(file: &Path) -> Result<String> {
    let mut f = fs::File::open(file).with_context(|| format!("{}: cannot open", file.display()))?;
    let h = NixHash::of_reader(HashAlgo::Sha256, &mut f)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    Ok(h.to_base16())
}

/// One suite's verified Release and where it came from.
pub struct Suite {
    pub name: String,
    pub mirror: String,
    pub release: Release,
    /// Past its `Valid-Until`, read because that was allowed.
    pub expired: bool,
}

/// How a Release past its `Valid-Until` is taken (apt's `Check-Valid-Until`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Refused: an old Release can hide newer packages (a replay).
    Refuse,
    /// Read, and reported (a snapshot mirror).
    Allow,
}

/// Archive roots to read indexes from: the given ones, or those of the machine's apt.
pub fn mirrors(given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        apt_mirrors().map_err(anyhow::Error::msg)
    } else {
        Ok(given
            .iter()
            .map(|m| m.trim_end_matches('/').to_string())
            .collect())
    }
}

/// Downloads `dists/<suite>/InRelease` from the first of `mirrors` that has it and
/// verifies it; `now` (seconds since the epoch) is compared with `Valid-Until`.
pub fn read_release(
    suite: &str,
    mirrors: &[String],
    keyring: &Path,
    work: &Path,
    now: i64,
    expiry: Expiry,
) -> Result<Suite> {
    let target = work.join(format!("{suite}.InRelease"));
    let mut errors = Vec::new();
    for mirror in mirrors.iter().cloned() {
        let url = format!("{mirror}/dists/{suite}/InRelease");
        if let Err(e) = apt_download(&url, &target) {
            errors.push(e);
            continue;
        }
        let label = format!("{suite}/InRelease");
        let text = release::verify(&target, keyring).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                e.to_string()
                    .replacen(&target.display().to_string(), &label, 1)
            )
        })?;
        let release = Release::parse(&text, &label)?;
        if release.codename != suite {
            bail!(
                "{label}: Codename {:?} is not the suite asked for",
                release.codename
            );
        }
        let expired = release.valid_until.is_some_and(|u| u < now);
        if expired && expiry == Expiry::Refuse {
            bail!(
                "{label}: expired {} days ago (Valid-Until); a stale mirror or a replayed Release (--allow-expired reads it anyway)",
                (now - release.valid_until.unwrap_or(now)) / 86400
            );
        }
        return Ok(Suite {
            name: suite.into(),
            mirror,
            release,
            expired,
        });
    }
    bail!(
        "suite {suite}: no InRelease on any mirror: {}",
        errors.join("; ")
    )
}

/// Adds the suite's main `Packages.xz` to `index`, after checking its size and
/// sha256 against the verified Release. Returns the number of packages.
pub fn read_packages(s: &Suite, arch: &str, work: &Path, index: &mut Index) -> Result<usize> {
    let Some((path, want)) = s.release.packages_xz(arch) else {
        bail!("{}/InRelease: lists no main Packages.xz for {arch}", s.name);
    };
    let (label, stream) = checked_index(s, path, want, work)?;
    Ok(index.add(stream, &label, arch)?)
}

/// One index file of the suite's verified Release, downloaded and checked against it
/// (size and sha256), as a decompressed stream, with its label for errors.
fn checked_index(
    s: &Suite,
    path: &str,
    want: &release::IndexFile,
    work: &Path,
) -> Result<(String, BufReader<xz2::read::XzDecoder<fs::File>>)> {
    let label = format!("{}/{path}", s.name);
    let target = work.join(format!("{}.{}", s.name, path.replace('/', "_")));
    apt_download(&format!("{}/dists/{}/{path}", s.mirror, s.name), &target)
        .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    check_index(&target, &label, want)?;
    let f = fs::File::open(&target)?;
    Ok((label, BufReader::new(xz2::read::XzDecoder::new(f))))
}

/// The upstream releases of the `wanted` source packages in the suite's main
/// `Sources.xz`, after checking its size and sha256 against the verified Release.
pub fn read_sources(
    s: &Suite,
    work: &Path,
    wanted: &[&str],
) -> Result<Vec<crate::debian::sources::UpstreamRelease>> {
    let Some((path, want)) = s.release.sources_xz() else {
        bail!("{}/InRelease: lists no main Sources.xz", s.name);
    };
    let (label, stream) = checked_index(s, path, want, work)?;
    crate::debian::sources::parse(stream, &label, wanted).map_err(|e| anyhow::anyhow!(e))
}

/// An index file is the one the signed Release lists, or it is refused.
pub fn check_index(file: &Path, label: &str, want: &release::IndexFile) -> Result<()> {
    let size = fs::metadata(file)?.len();
    let got = sha256_hex(file)?;
    if size != want.size || got != want.sha256 {
        bail!(
            "{label}: does not match its signed Release (size {size}, sha256 {got}; the Release lists size {}, sha256 {}): refused",
            want.size,
            want.sha256
        );
    }
    Ok(())
}

/// A kernel ABI Debian ships in a series, with the packages that make it up.
#[derive(Debug, Clone)]
pub struct Abi {
    pub abi: String,
    pub image: Package,
    pub parts: Vec<Package>,
    pub headers: Package,
    pub headers_common: Package,
    /// The kbuild package the headers depend on (its newest version in the suites).
    pub kbuild: Package,
}

/// `6.1.0-57`, `6.12.118+deb13`, `7.2.13+deb14`: numbers, dots and one `-N`, and an
/// optional `+debN[.N]`; not a meta package's `6.12` nor another flavour's `-rt`.
pub fn is_abi(s: &str, linux: &str) -> bool {
    let (base, deb) = match s.split_once('+') {
        Some((b, d)) => (b, Some(d)),
        None => (s, None),
    };
    let numeric = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.');
    let base_ok = match base.split_once('-') {
        Some((v, n)) => numeric(v) && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
        None => numeric(base),
    };
    let deb_ok = deb.is_none_or(|d| d.strip_prefix("deb").is_some_and(numeric));
    base_ok && deb_ok && base != linux && base.starts_with(&format!("{linux}."))
}

/// The upstream series (`6.1`) of a package version (`6.1.192-3`, `6.12.118-1~deb12u1`).
fn series_of(v: &Version) -> String {
    v.upstream.split('.').take(2).collect::<Vec<_>>().join(".")
}

fn newest<'a>(index: &'a Index, name: &str) -> Option<&'a Package> {
    index
        .packages
        .get(name)?
        .iter()
        .max_by(|a, b| a.version.cmp(&b.version))
}

/// The first dependency of `p` (first alternative) whose name `pred` accepts.
fn dependency(p: &Package, pred: impl Fn(&str) -> bool) -> Option<&str> {
    p.depends
        .iter()
        .filter_map(|alts| alts.first())
        .map(|r| r.name.as_str())
        .find(|n| pred(n))
}

/// An ABI whose image the suites have without the rest of its packages.
#[derive(Debug, Clone, Serialize)]
pub struct Incomplete {
    pub abi: String,
    pub version: String,
    pub why: String,
}

/// Every ABI of `series` in `index`, oldest first, and those the suites have only in
/// part (an image without its headers): they can't be built for.
pub fn discover(series: &Series, index: &Index) -> (Vec<Abi>, Vec<Incomplete>) {
    let suffix = format!("-{}", series.flavour);
    let mut abis = Vec::new();
    let mut incomplete = Vec::new();
    for name in index.packages.keys() {
        let Some(abi) = name
            .strip_prefix("linux-image-")
            .and_then(|r| r.strip_suffix(&suffix))
        else {
            continue;
        };
        if !is_abi(abi, &series.linux) {
            continue;
        }
        let image = newest(index, name).expect("listed");
        if series_of(&image.version) != series.linux {
            continue;
        }
        match complete(index, abi, image, &suffix) {
            Ok(a) => abis.push(a),
            Err(e) => incomplete.push(Incomplete {
                abi: abi.to_string(),
                version: image.version.to_string(),
                why: e.to_string(),
            }),
        }
    }
    abis.sort_by(|a, b| {
        a.image
            .version
            .cmp(&b.image.version)
            .then(a.abi.cmp(&b.abi))
    });
    (abis, incomplete)
}

/// The packages of one ABI, from its image and headers' dependencies.
fn complete(index: &Index, abi: &str, image: &Package, suffix: &str) -> Result<Abi> {
    let need = |n: &str| {
        newest(index, n).with_context(|| format!("{} is in the suites but {n} is not", image.name))
    };
    let headers = need(&format!("linux-headers-{abi}{suffix}"))?;
    let common = dependency(headers, |n| {
        n.starts_with("linux-headers-") && n.ends_with("-common")
    })
    .with_context(|| format!("{} names no -common headers", headers.name))?;
    let kbuild = dependency(headers, |n| n.starts_with("linux-kbuild-"))
        .with_context(|| format!("{} names no kbuild package", headers.name))?;
    let parts = image
        .depends
        .iter()
        .filter_map(|alts| alts.first())
        .filter(|r| {
            ["linux-base-", "linux-binary-", "linux-modules-"]
                .iter()
                .any(|p| r.name == format!("{p}{abi}{suffix}"))
        })
        .map(|r| need(&r.name).cloned())
        .collect::<Result<Vec<_>>>()?;
    Ok(Abi {
        abi: abi.to_string(),
        image: image.clone(),
        parts,
        headers: headers.clone(),
        headers_common: need(common)?.clone(),
        kbuild: need(kbuild)?.clone(),
    })
}

/// The series' `linux-source-<linux>` of the point release `point` (`5.10.262`), its
/// newest Debian revision.
pub fn source_of<'a>(index: &'a Index, linux: &str, point: &str) -> Option<&'a Package> {
    index
        .packages
        .get(&format!("linux-source-{linux}"))?
        .iter()
        .filter(|p| p.version.upstream == point)
        .max_by(|a, b| a.version.cmp(&b.version))
}

/// The matrix's name of a kernel ABI: `debian-6.1.0-57`, `debian-6.12.118`.
pub fn kernel_name(abi: &str) -> String {
    format!("debian-{}", abi.split('+').next().unwrap_or(abi))
}

pub fn pin(p: &Package) -> DebianPackage {
    DebianPackage {
        name: p.name.clone(),
        version: p.version.to_string(),
        path: p.filename.clone(),
        sha256: p.sha256.clone(),
        tree: None,
        upstream: Vec::new(),
    }
}

/// What happens to one ABI of a series.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AbiStatus {
    /// In the lock and kept.
    Locked,
    /// New, and added to the lock.
    Added,
    /// Newer than the lock but outside the keep policy.
    SkippedByKeep,
    /// In the lock, retired by the keep policy.
    Retired,
}

#[derive(Debug, Clone, Serialize)]
pub struct AbiChange {
    pub abi: String,
    pub kernel: String,
    pub version: String,
    pub status: AbiStatus,
}

/// The keep policy over a series' locked kernels and what the suites have: every ABI
/// newer than the newest locked one, and every locked one, with what happens to it.
pub fn plan_series(
    series: &Series,
    locked: &[(&Kernel, Version)],
    found: &[Abi],
) -> Vec<AbiChange> {
    let newest_locked = locked.iter().map(|(_, v)| v).max();
    let mut all: BTreeMap<String, (Version, bool)> = BTreeMap::new();
    for (k, v) in locked {
        all.insert(k.abi.clone().unwrap_or_default(), (v.clone(), true));
    }
    for a in found {
        all.entry(a.abi.clone())
            .or_insert((a.image.version.clone(), false));
    }
    let mut by_version: Vec<(&String, &(Version, bool))> = all.iter().collect();
    by_version.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(b.0.cmp(a.0)));
    let keep: BTreeSet<&String> = by_version
        .iter()
        .take(series.keep)
        .map(|(a, _)| *a)
        .chain(all.keys().filter(|a| series.keep_abis.contains(a)))
        .collect();
    let mut out = Vec::new();
    for (abi, (version, is_locked)) in by_version.into_iter().rev() {
        let kept = keep.contains(abi);
        let status = match (*is_locked, kept) {
            (true, true) => AbiStatus::Locked,
            (true, false) => AbiStatus::Retired,
            (false, true) => AbiStatus::Added,
            (false, false) if newest_locked.is_none_or(|n| version > n) => AbiStatus::SkippedByKeep,
            (false, false) => continue,
        };
        out.push(AbiChange {
            abi: abi.clone(),
            kernel: kernel_name(abi),
            version: version.to_string(),
            status,
        });
    }
    out
}

/// Puts the lock's kernels in one order whatever the history of updates: those pinned
/// by hand first, as they are, then each series in the intent's order, oldest first.
pub fn sort_kernels(m: &mut Manifest) {
    let key = |k: &Kernel| {
        let series = k
            .series
            .as_ref()
            .and_then(|s| m.series.iter().position(|x| &x.linux == s))
            .map_or(0, |i| i + 1);
        let version = m.package(&k.image).and_then(|p| Version::parse(&p.version));
        (series, version)
    };
    let mut keyed: Vec<_> = m.kernels.iter().map(|k| (key(k), k.clone())).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    m.kernels = keyed.into_iter().map(|(_, k)| k).collect();
}

/// Drops from the lock the kernel sources no kernel builds from and the kernel
/// packages nothing refers to any more (after retiring kernels); returns their names.
pub fn drop_unreferenced(m: &mut Manifest) -> Vec<String> {
    let mut dropped = Vec::new();
    let sources: BTreeSet<String> = m.kernels.iter().map(|k| k.module_source.clone()).collect();
    m.kernel_sources.retain(|s| {
        let keep = sources.contains(&s.name);
        if !keep {
            dropped.push(s.name.clone());
        }
        keep
    });
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for k in &m.kernels {
        used.extend([&k.image, &k.headers, &k.headers_common, &k.kbuild].map(String::as_str));
        used.extend(k.image_parts.iter().map(String::as_str));
    }
    used.extend(m.kernel_sources.iter().map(|s| s.package.as_str()));
    used.extend(m.bootstrap.iter().map(|b| b.package.as_str()));
    used.extend(m.rdma_core.iter().map(|r| r.source.as_str()));
    used.extend(m.debian.keyring.iter().map(String::as_str));
    let kernel_pkg = |n: &str| {
        [
            "linux-image-",
            "linux-headers-",
            "linux-kbuild-",
            "linux-base-",
            "linux-binary-",
            "linux-modules-",
            "linux-source-",
        ]
        .iter()
        .any(|p| n.starts_with(p))
            // A tracked rdma-core release's tarball, once a newer one replaced it.
            || (n.starts_with("rdma-core-") && n.ends_with("-orig"))
    };
    let unused: BTreeSet<String> = m
        .debian
        .packages
        .iter()
        .filter(|p| kernel_pkg(&p.name) && !used.contains(p.name.as_str()))
        .map(|p| p.name.clone())
        .collect();
    m.debian.packages.retain(|p| !unused.contains(&p.name));
    dropped.extend(unused);
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abis_of_a_series() {
        assert!(is_abi("6.1.0-57", "6.1"));
        assert!(is_abi("6.12.118+deb13", "6.12"));
        assert!(is_abi("6.12.90+deb13.1", "6.12"));
        assert!(is_abi("7.2.13+deb14", "7.2"));
        assert!(!is_abi("6.12", "6.12"), "meta package");
        assert!(!is_abi("6.1.0-57-rt", "6.1"), "another flavour");
        assert!(!is_abi("6.1.0-0.deb11.52", "6.1"), "a backport's naming");
        assert!(!is_abi("6.12.118+deb13", "6.1"), "another series");
        assert_eq!(kernel_name("6.12.118+deb13"), "debian-6.12.118");
        assert_eq!(kernel_name("6.1.0-57"), "debian-6.1.0-57");
    }
}

/// Upstream's own release URLs for a source tarball the lock pins by tree, to be tried
/// before Debian's copy (the pool drops a version once it's superseded): perftest's
/// GitHub release asset, whose name carries the commit its `perftest.spec` records
/// (`Version: 25.01.0`, `Release: 0.80.g6730e97`: tag `25.01.0-0.80`, asset
/// `perftest-25.01.0-0.80.g6730e97.tar.gz`). None for other packages: a URL whose
/// tree isn't the pinned one would fail nixpkgs' fetch instead of falling back.
pub fn release_urls(package: &str, version: &str, tree: &Path) -> Result<Vec<String>> {
    if package != crate::manifest::PERFTEST_PIN {
        return Ok(Vec::new());
    }
    let spec = tree.join("perftest.spec");
    let text = fs::read_to_string(&spec).with_context(|| format!("reading {}", spec.display()))?;
    perftest_release_url(&text, version)
        .with_context(|| format!("{}", spec.display()))
        .map(|u| vec![u])
}

/// The release asset's URL from `perftest.spec`'s `Version:` and `Release:` lines,
/// checked against the pinned (Debian) upstream version `25.01.0+0.80`.
fn perftest_release_url(spec: &str, version: &str) -> Result<String> {
    let field = |key: &str| {
        spec.lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim))
            .filter(|v| !v.is_empty())
            .with_context(|| format!("no `{key}` line"))
    };
    let (v, release) = (field("Version:")?, field("Release:")?);
    let Some((counter, commit)) = release.split_once(".g") else {
        bail!("`Release: {release}` has no `.g<commit>`");
    };
    let ok = |s: &str, hex: bool| {
        !s.is_empty()
            && s.chars().all(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit() || c == '.'
                }
            })
    };
    if !ok(v, false) || !ok(counter, false) || !ok(commit, true) {
        bail!("`Version: {v}`, `Release: {release}` is not a perftest release");
    }
    let tag = format!("{v}-{counter}");
    if tag.replace('-', "+") != version {
        bail!("it is release {tag}, the pin is {version}");
    }
    Ok(format!(
        "https://github.com/linux-rdma/perftest/releases/download/{tag}/perftest-{tag}.g{commit}.tar.gz"
    ))
}

#[cfg(test)]
mod release_url_tests {
    use super::perftest_release_url;

    const SPEC: &str = "Name: perftest\nVersion: 25.01.0\nRelease: 0.80.g6730e97\n";

    #[test]
    fn perftest_release_asset_from_its_spec() {
        assert_eq!(
            perftest_release_url(SPEC, "25.01.0+0.80").unwrap(),
            "https://github.com/linux-rdma/perftest/releases/download/25.01.0-0.80/perftest-25.01.0-0.80.g6730e97.tar.gz"
        );
    }

    #[test]
    fn a_spec_that_does_not_name_the_pinned_release_is_refused() {
        for (spec, msg) in [
            (SPEC, "it is release 25.01.0-0.80, the pin is 25.01.0+0.81"),
            ("Version: 25.01.0\n", "no `Release:` line"),
            ("Version: 25.01.0\nRelease: 0.80\n", "has no `.g<commit>`"),
            (
                "Version: 25.01.0\nRelease: 0.80.g/../x\n",
                "is not a perftest release",
            ),
        ] {
            let e = perftest_release_url(spec, "25.01.0+0.81").unwrap_err();
            assert!(format!("{e:#}").contains(msg), "{e:#}");
        }
    }
}
