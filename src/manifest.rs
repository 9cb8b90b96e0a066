//! The stack, read from the working tree: `stack.toml` (the intent a person edits: the
//! kernel series to track in which Debian suites, the rdma-core releases) and
//! `stack.lock` beside it (every pin, written by `rdma-nix update`). Every command reads
//! both from disk, never a copy compiled into the binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::nix::store_path;
use crate::nix::{HashAlgo, NixHash};

/// The intent file's name; the lock is its sibling [`LOCK_FILE`].
pub const INTENT_FILE: &str = "stack.toml";
/// The lock's name, beside the intent.
pub const LOCK_FILE: &str = "stack.lock";

/// Top-level keys of the intent; everything else belongs to the lock.
const INTENT_KEYS: [&str; 4] = ["debian", "series", "rdma_core", "upstream"];
/// Keys of `[debian]` in the intent (the lock has only `package`).
const INTENT_DEBIAN_KEYS: [&str; 2] = ["arch", "keyring"];

#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub debian: Debian,
    /// The kernel series `rdma-nix update` keeps the lock's kernels up with.
    #[serde(default)]
    pub series: Vec<Series>,
    #[serde(default, rename = "kernel")]
    pub kernels: Vec<Kernel>,
    /// The rdma-core releases built: those the intent pins, then the one
    /// `rdma-nix update` tracks from `[upstream]`'s suites (`tracked`).
    #[serde(default, rename = "rdma_core")]
    pub rdma_core: Vec<RdmaCoreRelease>,
    #[serde(default, rename = "tracked_rdma_core")]
    tracked_rdma_core: Vec<RdmaCoreRelease>,
    /// Where `rdma-nix update` reads the newest rdma-core and perftest releases.
    pub upstream: Option<Upstream>,
    #[serde(default, rename = "kernel_source")]
    pub kernel_sources: Vec<KernelSource>,
    /// Each module build on each kernel: built there, or a build of another kernel of
    /// the series reused (kABI), with the evidence; decided by `rdma-nix update`.
    #[serde(default, rename = "module")]
    pub modules: Vec<ModuleDecision>,
    pub bootstrap: Option<Bootstrap>,
    /// The directory the intent and the lock were read from (the lock is written
    /// beside the intent).
    #[serde(skip)]
    pub dir: PathBuf,
    /// How the generated files name their source.
    #[serde(skip)]
    pub label: String,
}

/// One kernel series tracked by `rdma-nix update`: Debian's kernels of one upstream
/// series (`6.1`) in the given suites, built in one build root.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// The upstream series (`6.1`, `7.2`): a kernel belongs to it when its package's
    /// version is of that series (a suite may also carry a backported series).
    pub linux: String,
    /// The build root (roots/NAME.toml) its kernels and modules are built in.
    pub root: String,
    /// The Debian suites to read (`bookworm`, `bookworm-updates`, `bookworm-security`).
    pub suites: Vec<String>,
    /// The kernel flavour (`amd64`): `linux-image-<abi>-<flavour>`.
    #[serde(default = "default_flavour")]
    pub flavour: String,
    /// How many of the newest ABIs to keep.
    pub keep: usize,
    /// ABIs kept whatever `keep` says (`6.1.0-50`).
    #[serde(default)]
    pub keep_abis: Vec<String>,
}

fn default_flavour() -> String {
    "amd64".into()
}

/// The one file every hermetic build starts from (the builder of the roots and of
/// every derivation that enters one): a static executable taken out of a pinned
/// package by `rdma-nix fetch` (in Rust) and added to the store, at its path in the
/// package, as a fixed-output path pinned by its NAR hash.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    /// Store path name (`busybox`).
    pub name: String,
    /// The pinned `[[debian.package]]` holding it.
    pub package: String,
    /// Its path inside the package (`bin/busybox`).
    pub file: String,
    /// SRI sha256 of the NAR serialisation of a tree holding just that file, at its
    /// path in the package.
    pub hash: String,
}

impl Bootstrap {
    pub fn nar_hash(&self) -> NixHash {
        NixHash::parse(&self.hash, Some(HashAlgo::Sha256)).expect("validated at load")
    }
}

/// One driver's modules on one kernel of the matrix: built for it, or the build of an
/// older kernel of its series reused, because every symbol those modules import has
/// the same CRC in this kernel (decided by `rdma-nix update` from the builds).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleDecision {
    /// The matrix kernel.
    pub kernel: String,
    /// The driver (its directory's name: `siw`, `rxe`, `rtrs`, …).
    pub driver: String,
    /// The kernel whose build is reused; absent: built for this kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<String>,
    /// The evidence, in one line: the imports checked, or the first that differ.
    pub reason: String,
}

/// Subtrees of a kernel source package, extracted by `rdma-nix fetch` (in Rust) and
/// added to the store as a fixed-output path pinned by its NAR hash.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSource {
    /// Store path name (`linux-6.1.192-rdma`).
    pub name: String,
    /// The pinned `linux-source-*` package it comes from.
    pub package: String,
    /// Paths below the tarball's top directory.
    pub subdirs: Vec<String>,
    /// SRI sha256 of the extracted tree's NAR serialisation.
    pub hash: String,
}

impl KernelSource {
    pub fn nar_hash(&self) -> NixHash {
        NixHash::parse(&self.hash, Some(HashAlgo::Sha256)).expect("validated at load")
    }
}

/// The pin of perftest's upstream tarball (`pkgs/generated/perftest.nix` is made from
/// it; `rdma-nix update` moves it to the newest release of `[upstream]`'s suites).
pub const PERFTEST_PIN: &str = "perftest-orig";

/// The suites whose source packages `rdma-nix update` reads the newest rdma-core and
/// perftest releases from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub suites: Vec<String>,
}

/// An rdma-core release the generator scans and emits Nix for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RdmaCoreRelease {
    /// The release (`65.0`); checked against the tarball's PACKAGE_VERSION.
    pub version: String,
    /// The pinned `[[debian.package]]` holding its source tarball.
    pub source: String,
    /// The release the package set builds by default (exactly one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// Added by `rdma-nix update` (the newest of `[upstream]`'s suites), kept in the
    /// lock as `[[tracked_rdma_core]]`.
    #[serde(skip)]
    pub tracked: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debian {
    pub arch: String,
    /// The pinned package holding Debian's archive keyring
    /// (`usr/share/keyrings/debian-archive-keyring.gpg`), which `rdma-nix update`
    /// verifies the suites' `InRelease` files with.
    #[serde(default)]
    pub keyring: Option<String>,
    #[serde(default, rename = "package")]
    pub packages: Vec<DebianPackage>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DebianPackage {
    pub name: String,
    pub version: String,
    /// Path below the archive root (`pool/main/...`).
    pub path: String,
    /// sha256 of the file, base16.
    pub sha256: String,
    /// For a source tarball: the NAR hash (SRI sha256) of the tree it unpacks to, top
    /// directory stripped. That tree is what packages build from (`fetchzip`), so any
    /// tarball of the same tree matches the pin, whatever its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// URLs of other tarballs of the same tree, listed before Debian's pool in the
    /// generated `urls` (upstream first, for nixpkgs users).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub name: String,
    /// The `[[series]]` (its `linux`) the kernel was locked for by `rdma-nix update`;
    /// none for a kernel pinned by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// The kernel's ABI (`6.1.0-57`, `6.12.118+deb13`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abi: Option<String>,
    /// The build root (roots/NAME.toml) of the kernel's Debian suite: its modules are
    /// built there, with that suite's compiler.
    pub root: String,
    pub image: String,
    /// More packages of the image, for kernels Debian splits (`linux-base-*`,
    /// `linux-binary-*`, `linux-modules-*`): unpacked with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_parts: Vec<String>,
    pub headers: String,
    pub headers_common: String,
    pub kbuild: String,
    /// The `[[kernel_source]]` its out-of-tree modules are built from.
    pub module_source: String,
    /// The soft-RDMA drivers (`rxe`, `siw`) the kernel ships as modules; the others
    /// are built by rdma-nix. Checked against the image's config by the tests.
    pub rdma_in_tree: Vec<String>,
}

/// The lock's module decisions: of known kernels, each (kernel, driver) once, a reuse
/// naming another kernel whose own build of that driver it is.
fn validate_modules(modules: &[ModuleDecision], kernels: &BTreeSet<&str>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for d in modules {
        let what = format!("module {} on {}", d.driver, d.kernel);
        let plain = !d.driver.is_empty()
            && d.driver
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !plain {
            return Err(format!("{what}: not a driver's name (siw, rxe, rtrs, …)"));
        }
        if !kernels.contains(d.kernel.as_str()) {
            return Err(format!("{what}: the kernel is not a [[kernel]]"));
        }
        if !seen.insert((d.kernel.as_str(), d.driver.as_str())) {
            return Err(format!("{what}: decided twice"));
        }
    }
    for d in modules {
        let Some(from) = &d.reuse else { continue };
        let own = modules
            .iter()
            .any(|o| &o.kernel == from && o.driver == d.driver && o.reuse.is_none());
        if from == &d.kernel || !own {
            return Err(format!(
                "module {} on {}: reuses {from}, which has no build of its own of it",
                d.driver, d.kernel
            ));
        }
    }
    Ok(())
}

fn is_debian_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn is_debian_version(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-~:".contains(c))
}

/// Binary packages (`.deb`) and source tarballs (`.orig.tar.gz`, `.orig.tar.xz`).
fn is_pool_path(s: &str) -> bool {
    s.starts_with("pool/")
        && [".deb", ".tar.gz", ".tar.xz"]
            .iter()
            .any(|x| s.ends_with(x))
        && !s
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+-._~%".contains(c))
}

impl DebianPackage {
    /// A binary package (`.deb`), not a source tarball.
    pub fn is_deb(&self) -> bool {
        self.path.ends_with(".deb")
    }

    /// The pinned hash.
    pub fn hash(&self) -> NixHash {
        NixHash::parse(&self.sha256, Some(HashAlgo::Sha256)).expect("validated at load")
    }

    /// The pinned tree, for a source tarball pinned with `tree`.
    pub fn tree_hash(&self) -> Option<NixHash> {
        self.tree
            .as_deref()
            .map(|t| NixHash::parse(t, Some(HashAlgo::Sha256)).expect("validated at load"))
    }

    /// Where the tree can be fetched: `upstream` first, then Debian's pool.
    pub fn tree_urls(&self) -> Vec<String> {
        let mut urls = self.upstream.clone();
        urls.push(format!("mirror://debian/{}", self.path));
        urls
    }

    /// The file name in the pool (`busybox-static_1.35.0-4+deb12u1+b1_amd64.deb`).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The store path name: the pool file name with characters a store path can't
    /// hold (the `%` of an epoch, `~`) replaced by `_`.
    pub fn store_name(&self) -> String {
        self.file_name()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+-._?=".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// The intent file of the working tree: `stack.toml` in the current directory or the
/// nearest parent that has one.
pub fn find_intent() -> Result<PathBuf, ManifestError> {
    let cwd = std::env::current_dir().map_err(|e| ManifestError::Invalid {
        file: INTENT_FILE.into(),
        message: format!("cannot read the current directory: {e}"),
    })?;
    cwd.ancestors()
        .map(|d| d.join(INTENT_FILE))
        .find(|p| p.is_file())
        .ok_or_else(|| ManifestError::Invalid {
            file: INTENT_FILE.into(),
            message: format!(
                "not found in {} or any parent; run inside the repository or pass --manifest",
                cwd.display()
            ),
        })
}

fn read_table(path: &Path) -> Result<toml::Table, ManifestError> {
    let bad = |message: String| ManifestError::Invalid {
        file: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    text.parse::<toml::Table>()
        .map_err(|e| bad(e.to_string().trim().replace('\n', " ")))
}

/// Joins the intent and the lock into one table, refusing a pin in the intent or an
/// intent key in the lock.
fn merge(
    mut intent: toml::Table,
    lock: toml::Table,
    intent_file: &str,
    lock_file: &str,
) -> Result<toml::Table, ManifestError> {
    for key in intent.keys() {
        if !INTENT_KEYS.contains(&key.as_str()) {
            return Err(ManifestError::Invalid {
                file: intent_file.into(),
                message: format!(
                    "`{key}` is a pin: it belongs in {LOCK_FILE}, which `rdma-nix update` writes"
                ),
            });
        }
    }
    if let Some(toml::Value::Table(d)) = intent.get("debian") {
        if let Some(k) = d.keys().find(|k| !INTENT_DEBIAN_KEYS.contains(&k.as_str())) {
            return Err(ManifestError::Invalid {
                file: intent_file.into(),
                message: format!(
                    "`debian.{k}` does not belong in the intent (pins go in {LOCK_FILE})"
                ),
            });
        }
    }
    for (key, value) in lock {
        let in_lock = |message: String| ManifestError::Invalid {
            file: lock_file.into(),
            message,
        };
        match (key.as_str(), value) {
            ("debian", toml::Value::Table(d)) => {
                let target = intent
                    .entry("debian")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let toml::Value::Table(target) = target else {
                    return Err(in_lock("`debian` of the intent is not a table".into()));
                };
                for (k, v) in d {
                    if k != "package" {
                        return Err(in_lock(format!("`debian.{k}` belongs in {INTENT_FILE}")));
                    }
                    target.insert(k, v);
                }
            }
            (k, _) if INTENT_KEYS.contains(&k) => {
                return Err(in_lock(format!("`{k}` belongs in {INTENT_FILE}")))
            }
            (k, v) => {
                intent.insert(k.to_string(), v);
            }
        }
    }
    Ok(intent)
}

fn is_plain(s: &str, extra: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c))
}

/// The series are well-formed, each once, and every kernel's series is one of them.
fn validate_series(m: &Manifest) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for s in &m.series {
        let numeric = |v: &str| {
            v.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        };
        if !numeric(&s.linux) || s.linux.split('.').count() != 2 {
            return Err(format!(
                "series {:?}: `linux` is not an upstream series like \"6.1\"",
                s.linux
            ));
        }
        if !seen.insert((s.linux.as_str(), s.flavour.as_str())) {
            return Err(format!(
                "series {} ({}) is listed twice",
                s.linux, s.flavour
            ));
        }
        if !is_plain(&s.root, "-") {
            return Err(format!(
                "series {}: root {:?} is not a root name (roots/NAME.toml)",
                s.linux, s.root
            ));
        }
        if !is_plain(&s.flavour, "-") {
            return Err(format!(
                "series {}: flavour {:?} is not a flavour like \"amd64\"",
                s.linux, s.flavour
            ));
        }
        if s.suites.is_empty() {
            return Err(format!("series {}: no suites to read", s.linux));
        }
        if let Some(x) = s.suites.iter().find(|x| !is_plain(x, "-")) {
            return Err(format!(
                "series {}: suite {x:?} is not a Debian suite name",
                s.linux
            ));
        }
        if s.keep == 0 && s.keep_abis.is_empty() {
            return Err(format!(
                "series {}: keep = 0 and no keep_abis: it would keep no kernel",
                s.linux
            ));
        }
        if let Some(a) = s.keep_abis.iter().find(|a| !is_debian_version(a)) {
            return Err(format!(
                "series {}: keep_abis: {a:?} is not a kernel ABI",
                s.linux
            ));
        }
    }
    for k in &m.kernels {
        if let Some(series) = &k.series {
            if !m.series.iter().any(|s| &s.linux == series) {
                return Err(format!(
                    "kernel {}: series {series:?} is not a [[series]]",
                    k.name
                ));
            }
            if k.abi.is_none() {
                return Err(format!(
                    "kernel {}: a kernel of a series names its `abi`",
                    k.name
                ));
            }
        }
    }
    Ok(())
}

impl Manifest {
    /// The intent at `path` (default: [`find_intent`]) and the lock beside it.
    pub fn load(path: Option<&Path>) -> Result<Self, ManifestError> {
        let intent = match path {
            Some(p) => p.to_path_buf(),
            None => find_intent()?,
        };
        let lock = intent.with_file_name(LOCK_FILE);
        let (ifile, lfile) = (intent.display().to_string(), lock.display().to_string());
        let table = merge(read_table(&intent)?, read_table(&lock)?, &ifile, &lfile)?;
        let mut m = Self::from_table(table, &lfile)?;
        m.dir = intent
            .parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        m.label = match path {
            None => format!("{INTENT_FILE} and {LOCK_FILE}"),
            Some(_) => "the given manifest and its lock".into(),
        };
        Ok(m)
    }

    /// One file holding both the intent and the pins (tests, fuzzing).
    pub fn parse(text: &str, file: &str) -> Result<Self, ManifestError> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| ManifestError::Invalid {
                file: file.to_string(),
                message: e.to_string().trim().replace('\n', " "),
            })?;
        Self::from_table(table, file)
    }

    fn from_table(table: toml::Table, file: &str) -> Result<Self, ManifestError> {
        let bad = |message: String| ManifestError::Invalid {
            file: file.to_string(),
            message,
        };
        let mut m: Manifest = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.to_string().trim().replace('\n', " ")))?;
        m.dir = PathBuf::from(".");
        m.label = file.to_string();
        for mut r in std::mem::take(&mut m.tracked_rdma_core) {
            // A tracked release the intent has since pinned is the intent's.
            if m.rdma_core.iter().any(|p| p.version == r.version) {
                continue;
            }
            if r.default {
                return Err(bad(format!(
                    "tracked_rdma_core {}: a tracked release is never the default",
                    r.version
                )));
            }
            r.tracked = true;
            m.rdma_core.push(r);
        }
        if !matches!(m.debian.arch.as_str(), "amd64") {
            return Err(bad(format!(
                "debian.arch {:?}: only amd64 is supported",
                m.debian.arch
            )));
        }
        let mut names = BTreeSet::new();
        for p in &m.debian.packages {
            if !is_debian_name(&p.name) {
                return Err(bad(format!(
                    "package name {:?} is not a Debian package name",
                    p.name
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!("package {:?} is listed twice", p.name)));
            }
            if !is_debian_version(&p.version) {
                return Err(bad(format!(
                    "package {}: version {:?} is not a Debian version",
                    p.name, p.version
                )));
            }
            if !is_pool_path(&p.path) {
                return Err(bad(format!(
                    "package {}: path {:?} is not a pool/… path to a .deb or a source tarball",
                    p.name, p.path
                )));
            }
            NixHash::parse(&p.sha256, Some(HashAlgo::Sha256))
                .map_err(|e| bad(format!("package {}: {e}", p.name)))?;
            store_path::validate_name(&p.store_name())
                .map_err(|e| bad(format!("package {}: {e}", p.name)))?;
            if let Some(t) = &p.tree {
                if p.is_deb() {
                    return Err(bad(format!(
                        "package {}: `tree` pins a source tarball's tree, not a .deb",
                        p.name
                    )));
                }
                NixHash::parse(t, Some(HashAlgo::Sha256))
                    .map_err(|e| bad(format!("package {}: tree: {e}", p.name)))?;
            } else if !p.upstream.is_empty() {
                return Err(bad(format!(
                    "package {}: `upstream` URLs need a `tree` pin (a tarball's bytes differ between hosts)",
                    p.name
                )));
            }
            for u in &p.upstream {
                if !(u.starts_with("https://") || u.starts_with("http://"))
                    || u.chars()
                        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
                {
                    return Err(bad(format!(
                        "package {}: upstream {u:?} is not an http(s) URL",
                        p.name
                    )));
                }
            }
        }
        let mut kernels = BTreeSet::new();
        for k in &m.kernels {
            if !k
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                || k.name.is_empty()
            {
                return Err(bad(format!(
                    "kernel name {:?} may only hold letters, digits, - . _",
                    k.name
                )));
            }
            if !kernels.insert(k.name.as_str()) {
                return Err(bad(format!("kernel {:?} is listed twice", k.name)));
            }
            if !k
                .root
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                || k.root.is_empty()
            {
                return Err(bad(format!(
                    "kernel {}: root {:?} is not a root name (roots/NAME.toml)",
                    k.name, k.root
                )));
            }
            let roles = [
                ("image", &k.image),
                ("headers", &k.headers),
                ("headers_common", &k.headers_common),
                ("kbuild", &k.kbuild),
            ];
            let parts = k.image_parts.iter().map(|p| ("image_parts", p));
            for (role, pkg) in roles.into_iter().chain(parts) {
                if !names.contains(pkg.as_str()) {
                    return Err(bad(format!(
                        "kernel {}: {role} package {pkg:?} is not pinned in [[debian.package]]",
                        k.name
                    )));
                }
            }
        }
        let mut sources = BTreeSet::new();
        for ks in &m.kernel_sources {
            store_path::validate_name(&ks.name)
                .map_err(|e| bad(format!("kernel_source {}: {e}", ks.name)))?;
            if !sources.insert(ks.name.as_str()) {
                return Err(bad(format!("kernel_source {:?} is listed twice", ks.name)));
            }
            if !names.contains(ks.package.as_str()) {
                return Err(bad(format!(
                    "kernel_source {}: package {:?} is not pinned in [[debian.package]]",
                    ks.name, ks.package
                )));
            }
            for d in &ks.subdirs {
                let ok = !d.is_empty()
                    && d.split('/')
                        .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
                    && d.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c));
                if !ok {
                    return Err(bad(format!(
                        "kernel_source {}: subdir {d:?} is not a plain relative path",
                        ks.name
                    )));
                }
            }
            NixHash::parse(&ks.hash, Some(HashAlgo::Sha256))
                .map_err(|e| bad(format!("kernel_source {}: {e}", ks.name)))?;
        }
        for k in &m.kernels {
            if !sources.contains(k.module_source.as_str()) {
                return Err(bad(format!(
                    "kernel {}: module_source {:?} is not a [[kernel_source]]",
                    k.name, k.module_source
                )));
            }
            if let Some(d) = k
                .rdma_in_tree
                .iter()
                .find(|d| !matches!(d.as_str(), "siw" | "rxe"))
            {
                return Err(bad(format!(
                    "kernel {}: rdma_in_tree: {d:?} is not siw or rxe",
                    k.name
                )));
            }
        }
        if let Some(b) = &m.bootstrap {
            store_path::validate_name(&b.name).map_err(|e| bad(format!("bootstrap: {e}")))?;
            if !names.contains(b.package.as_str()) {
                return Err(bad(format!(
                    "bootstrap: package {:?} is not pinned in [[debian.package]]",
                    b.package
                )));
            }
            if crate::archive::deb::safe_relative(Path::new(&b.file))
                .is_none_or(|p| p.as_os_str().is_empty())
            {
                return Err(bad(format!(
                    "bootstrap: file {:?} is not a plain relative path",
                    b.file
                )));
            }
            NixHash::parse(&b.hash, Some(HashAlgo::Sha256))
                .map_err(|e| bad(format!("bootstrap: {e}")))?;
        }
        validate_modules(&m.modules, &kernels).map_err(bad)?;
        let mut versions = BTreeSet::new();
        for r in &m.rdma_core {
            if r.version.is_empty() || !r.version.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(bad(format!("rdma_core version {:?} is not N.N", r.version)));
            }
            if !versions.insert(r.version.as_str()) {
                return Err(bad(format!("rdma_core {} is listed twice", r.version)));
            }
            match m.debian.packages.iter().find(|p| p.name == r.source) {
                Some(p) if !p.is_deb() => {}
                Some(_) => {
                    return Err(bad(format!(
                        "rdma_core {}: source {:?} is a .deb, not a source tarball",
                        r.version, r.source
                    )))
                }
                None => {
                    return Err(bad(format!(
                        "rdma_core {}: source {:?} is not pinned in [[debian.package]]",
                        r.version, r.source
                    )))
                }
            }
        }
        validate_series(&m).map_err(bad)?;
        if let Some(k) = &m.debian.keyring {
            if !names.contains(k.as_str()) {
                return Err(bad(format!(
                    "debian.keyring: package {k:?} is not pinned in [[debian.package]]"
                )));
            }
        }
        let defaults = m.rdma_core.iter().filter(|r| r.default).count();
        if !m.rdma_core.is_empty() && defaults != 1 {
            return Err(bad(format!(
                "exactly one [[rdma_core]] must be `default = true`, found {defaults}"
            )));
        }
        Ok(m)
    }

    /// The default rdma-core release.
    pub fn default_rdma_core(&self) -> Option<&RdmaCoreRelease> {
        self.rdma_core.iter().find(|r| r.default)
    }

    pub fn kernel_source(&self, name: &str) -> Option<&KernelSource> {
        self.kernel_sources.iter().find(|k| k.name == name)
    }

    pub fn package(&self, name: &str) -> Option<&DebianPackage> {
        self.debian.packages.iter().find(|p| p.name == name)
    }
}

/// The pins of a manifest, in the lock's layout.
#[derive(Serialize)]
struct LockView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bootstrap: Option<&'a Bootstrap>,
    debian: LockDebian<'a>,
    kernel_source: &'a [KernelSource],
    kernel: &'a [Kernel],
    module: &'a [ModuleDecision],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tracked_rdma_core: Vec<&'a RdmaCoreRelease>,
}

#[derive(Serialize)]
struct LockDebian<'a> {
    package: &'a [DebianPackage],
}

/// The lock's first line.
pub const LOCK_HEADER: &str =
    "# @generated by `rdma-nix update` from stack.toml. Do not edit: run `rdma-nix update`.\n\
# Every pin of the stack: Debian packages (pool path, version, sha256), kernel source trees\n\
# (NAR hash), the matrix's kernels, and each module build: built per kernel or reused (kABI).\n";

impl Manifest {
    /// The text of `stack.lock` holding this manifest's pins; deterministic, and read
    /// back by [`Manifest::load`] into the same pins.
    pub fn render_lock(&self) -> String {
        let view = LockView {
            bootstrap: self.bootstrap.as_ref(),
            debian: LockDebian {
                package: &self.debian.packages,
            },
            kernel_source: &self.kernel_sources,
            kernel: &self.kernels,
            module: &self.modules,
            tracked_rdma_core: self.rdma_core.iter().filter(|r| r.tracked).collect(),
        };
        let body = toml::to_string(&view).expect("pins serialise to TOML");
        format!("{LOCK_HEADER}\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's intent and lock as one text.
    fn both() -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        format!("{}\n{}", read(INTENT_FILE), read(LOCK_FILE))
    }

    #[test]
    fn the_lock_reads_back_to_the_same_pins_and_renders_the_same() {
        let m = Manifest::load(Some(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(INTENT_FILE),
        ))
        .unwrap();
        let lock = std::fs::read_to_string(m.dir.join(LOCK_FILE)).unwrap();
        assert_eq!(
            m.render_lock(),
            lock,
            "stack.lock is not as `rdma-nix update` writes it"
        );
    }

    #[test]
    fn a_pin_in_the_intent_or_intent_in_the_lock_is_refused() {
        let t = |s: &str| s.parse::<toml::Table>().unwrap();
        let lock = "[[debian.package]]\nname = \"x\"\n";
        for (intent, lock, msg) in [
            (
                "[[kernel]]\nname = \"k\"\n",
                "",
                "stack.toml: `kernel` is a pin",
            ),
            (
                "[debian]\narch = \"amd64\"\n[[debian.package]]\nname = \"y\"\n",
                lock,
                "stack.toml: `debian.package` does not belong",
            ),
            (
                "[debian]\narch = \"amd64\"\n",
                "[[series]]\nlinux = \"6.1\"\n",
                "stack.lock: `series` belongs in stack.toml",
            ),
            (
                "[debian]\narch = \"amd64\"\n",
                "[debian]\narch = \"amd64\"\n",
                "stack.lock: `debian.arch` belongs in stack.toml",
            ),
        ] {
            let e = merge(t(intent), t(lock), "stack.toml", "stack.lock")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(msg), "{e}");
        }
        let merged = merge(t("[debian]\narch = \"amd64\"\n"), t(lock), "a", "b").unwrap();
        assert_eq!(merged["debian"]["package"][0]["name"].as_str(), Some("x"));
    }

    #[test]
    fn default_manifest_is_valid() {
        let m = Manifest::load(None).unwrap();
        assert!(m.package("busybox-static").is_some());
        assert_eq!(
            m.package("busybox-static").unwrap().store_name(),
            "busybox-static_1.35.0-4+deb12u1+b1_amd64.deb"
        );
        assert!(!m.kernels.is_empty());
    }

    #[test]
    fn rejects_bad_manifests() {
        let base = &both();
        for (needle, replacement, msg) in [
            (
                "name = \"busybox-static\"",
                "name = \"Busy${box}\"",
                "not a Debian package name",
            ),
            (
                "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744",
                "abc",
                "3 characters",
            ),
            ("pool/main/b/busybox/", "pool/../../etc/", "not a pool"),
            (
                "kbuild = \"linux-kbuild-6.1\"",
                "kbuild = \"linux-kbuild-9\"",
                "not pinned",
            ),
            (
                "arch = \"amd64\"",
                "arch = \"amd64\"\nsurprise = 1",
                "unknown field",
            ),
        ] {
            let text = base.replacen(needle, replacement, 1);
            let e = Manifest::parse(&text, "x.toml").unwrap_err().to_string();
            assert!(e.starts_with("x.toml: ") && e.contains(msg), "{e}");
        }
    }

    #[test]
    fn a_module_decision_must_reuse_an_own_build_of_a_known_kernel() {
        let d = |kernel: &str, reuse: Option<&str>| ModuleDecision {
            kernel: kernel.into(),
            driver: "siw".into(),
            reuse: reuse.map(Into::into),
            reason: "r".into(),
        };
        let kernels: BTreeSet<&str> = ["a", "b", "c"].into();
        assert!(validate_modules(&[d("a", None), d("b", Some("a"))], &kernels).is_ok());
        for (mods, msg) in [
            (
                vec![d("x", None)],
                "module siw on x: the kernel is not a [[kernel]]",
            ),
            (vec![d("a", None), d("a", None)], "decided twice"),
            (
                vec![d("a", None), d("b", Some("a")), d("c", Some("b"))],
                "module siw on c: reuses b, which has no build of its own of it",
            ),
            (
                vec![d("a", Some("a"))],
                "reuses a, which has no build of its own",
            ),
        ] {
            let e = validate_modules(&mods, &kernels).unwrap_err();
            assert!(e.contains(msg), "{e}");
        }
    }
}
