//! `pkgs/generated/roles.nix`: the matrix's kernels by role (the oldest and newest,
//! each series' oldest and newest, the kABI pair), read from the lock and the kABI
//! plan. Checks, tests and scripts pick kernels by role, so an update that moves the
//! lock needs no edit anywhere else.

use std::collections::BTreeMap;

use super::kernel_modules::Decision;
use super::nix_expr::Value;
use super::GeneratedFile;
use super::GENERATED_DIR;
use crate::debian::version::Version;
use crate::manifest::Manifest;

/// The kernels of each role, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub oldest: String,
    pub newest: String,
    /// Series (`6.1`) → its oldest and newest kernel.
    pub series_oldest: BTreeMap<String, String>,
    pub series_newest: BTreeMap<String, String>,
    /// The kernel whose own module builds the most kernels reuse, and those kernels
    /// (reusing at least one of its builds).
    pub kabi_base: Option<String>,
    pub kabi_reused: Vec<String>,
}

impl Roles {
    /// None for a manifest without kernels.
    pub fn of(m: &Manifest, decisions: &[Decision]) -> Option<Roles> {
        let version = |image: &str| m.package(image).and_then(|p| Version::parse(&p.version));
        let mut by_version: Vec<_> = m
            .kernels
            .iter()
            .map(|k| (version(&k.image), k.name.clone(), k.series.clone()))
            .collect();
        by_version.sort();
        let (mut series_oldest, mut series_newest) = (BTreeMap::new(), BTreeMap::new());
        for (_, name, series) in &by_version {
            if let Some(s) = series {
                series_oldest
                    .entry(s.clone())
                    .or_insert_with(|| name.clone());
                series_newest.insert(s.clone(), name.clone());
            }
        }
        // The build most reused: the kernel whose own builds the most kernels reuse
        // (the newest such kernel on a tie).
        let mut reusers: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for d in decisions {
            if let Some(from) = &d.reuse {
                reusers.entry(from).or_default().insert(&d.kernel);
            }
        }
        let rank = |k: &str| by_version.iter().position(|(_, n, _)| n == k);
        let kabi_base = reusers
            .iter()
            .max_by_key(|(k, users)| (users.len(), rank(k)))
            .map(|(k, _)| k.to_string());
        let mut kabi_reused: Vec<String> = decisions
            .iter()
            .filter(|d| d.reuse.is_some() && d.reuse == kabi_base)
            .map(|d| d.kernel.clone())
            .collect();
        kabi_reused.sort_by_key(|k| rank(k));
        kabi_reused.dedup();
        Some(Roles {
            oldest: by_version.first()?.1.clone(),
            newest: by_version.last()?.1.clone(),
            series_oldest,
            series_newest,
            kabi_base,
            kabi_reused,
        })
    }

    pub fn file(&self, source: &str) -> GeneratedFile {
        let map = |m: &BTreeMap<String, String>| {
            Value::attrs(m.iter().map(|(k, v)| (k.clone(), Value::str(v))))
        };
        let body = Value::attrs([
            ("oldest", Value::str(&self.oldest)),
            ("newest", Value::str(&self.newest)),
            ("seriesOldest", map(&self.series_oldest)),
            ("seriesNewest", map(&self.series_newest)),
            (
                "kabiBase",
                self.kabi_base.as_ref().map_or(Value::Null, Value::str),
            ),
            ("kabiReused", Value::strs(&self.kabi_reused)),
        ]);
        GeneratedFile::nix(format!("{GENERATED_DIR}/roles.nix"), source, &body.render())
    }
}
