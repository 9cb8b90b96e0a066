//! The closure of a set of packages under Pre-Depends and Depends, as an unpacked
//! build root needs it: deterministic (same index, same answer), every choice among
//! alternatives or virtual packages reported, and an unsatisfiable relation named with
//! the package that needs it.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::index::{satisfies, Index, Package, Rel};
use super::version::Version;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{what}: no package in the index satisfies {rel}")]
    Unsatisfiable { what: String, rel: String },
}

/// One resolved package: what a pin needs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    pub version: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// A choice the resolver made where the index offered several.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Choice {
    pub needed_by: String,
    pub relation: String,
    pub chosen: String,
    pub candidates: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Closure {
    pub packages: Vec<Pin>,
    pub choices: Vec<Choice>,
}

fn alts(group: &[Rel]) -> String {
    group
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Resolve `roots` (and every Essential package when `essential`).
pub fn resolve(index: &Index, roots: &[Rel], essential: bool) -> Result<Closure, ResolveError> {
    let mut selected: BTreeMap<String, &Package> = BTreeMap::new();
    let mut queue: VecDeque<&Package> = VecDeque::new();
    let mut choices = Vec::new();

    let mut wanted: Vec<(String, Vec<Rel>)> = roots
        .iter()
        .map(|r| ("the roots".to_string(), vec![r.clone()]))
        .collect();
    if essential {
        for versions in index.packages.values() {
            if let Some(p) = versions
                .iter()
                .filter(|p| p.essential)
                .max_by(|a, b| a.version.cmp(&b.version))
            {
                wanted.push((
                    "the essential set".into(),
                    vec![Rel {
                        name: p.name.clone(),
                        arch: None,
                        constraint: None,
                    }],
                ));
            }
        }
    }
    let mut pending: VecDeque<(String, Vec<Rel>)> = wanted.into();
    loop {
        // Relations of packages selected so far, in selection order.
        while let Some(p) = queue.pop_front() {
            for g in p.pre_depends.iter().chain(&p.depends) {
                pending.push_back((format!("{} {}", p.name, p.version), g.clone()));
            }
        }
        let Some((who, group)) = pending.pop_front() else {
            break;
        };
        if group.iter().any(|r| satisfied(index, &selected, r)) {
            continue;
        }
        let p = choose(index, &who, &group, &mut choices)?;
        if let Some(other) = selected.get(&p.name) {
            // Another version of a selected package would be needed: keep the
            // selected one (a root holds one version of each) and report it.
            return Err(ResolveError::Unsatisfiable {
                what: who,
                rel: format!(
                    "{} (selected: {} {})",
                    alts(&group),
                    other.name,
                    other.version
                ),
            });
        }
        selected.insert(p.name.clone(), p);
        queue.push_back(p);
    }
    Ok(Closure {
        packages: selected
            .values()
            .map(|p| Pin {
                name: p.name.clone(),
                version: p.version.to_string(),
                path: p.filename.clone(),
                sha256: p.sha256.clone(),
                size: p.size,
            })
            .collect(),
        choices,
    })
}

/// Does a `Provides:` entry (with the version it provides, if any) meet `r`? A
/// versioned relation needs a versioned provision.
fn provision_meets(r: &Rel, provided: &Option<Version>) -> bool {
    match (&r.constraint, provided) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some((op, want)), Some(v)) => op.holds(v, want),
    }
}

/// Is `r` met by what is selected (the package itself, or a provider)?
fn satisfied(index: &Index, selected: &BTreeMap<String, &Package>, r: &Rel) -> bool {
    if let Some(p) = selected.get(&r.name) {
        if satisfies(&p.version, r) {
            return true;
        }
    }
    index.providers.get(&r.name).is_some_and(|provs| {
        provs.iter().any(|(name, version, provided)| {
            selected.get(name).is_some_and(|p| &p.version == version)
                && provision_meets(r, provided)
        })
    })
}

/// The package to install for an unmet group: the first alternative that a real
/// package satisfies (its highest version), else the first that one or more packages
/// provide (the strongest priority, then the name, wins; the choice is recorded).
fn choose<'a>(
    index: &'a Index,
    who: &str,
    group: &[Rel],
    choices: &mut Vec<Choice>,
) -> Result<&'a Package, ResolveError> {
    for r in group {
        if let Some(p) = index.best(r) {
            if group.len() > 1 {
                choices.push(Choice {
                    needed_by: who.to_string(),
                    relation: alts(group),
                    chosen: p.name.clone(),
                    candidates: group.iter().map(|r| r.name.clone()).collect(),
                });
            }
            return Ok(p);
        }
    }
    for r in group {
        let mut cands: Vec<&Package> = index
            .providers
            .get(&r.name)
            .into_iter()
            .flatten()
            .filter(|(_, _, provided)| provision_meets(r, provided))
            .filter_map(|(name, version, _)| {
                index
                    .packages
                    .get(name)?
                    .iter()
                    .find(|p| &p.version == version)
            })
            .collect();
        cands.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(a.name.cmp(&b.name))
                .then(b.version.cmp(&a.version))
        });
        cands.dedup_by(|a, b| a.name == b.name);
        if let Some(p) = cands.first() {
            if cands.len() > 1 || group.len() > 1 {
                choices.push(Choice {
                    needed_by: who.to_string(),
                    relation: alts(group),
                    chosen: p.name.clone(),
                    candidates: cands.iter().map(|c| c.name.clone()).collect(),
                });
            }
            return Ok(p);
        }
    }
    Err(ResolveError::Unsatisfiable {
        what: who.to_string(),
        rel: alts(group),
    })
}
