//! `rdma-nix kernel inspect`: what a Debian kernel package (or a headers tree) says
//! about its kernel: release, compiler, modversions, RDMA config, Module.symvers.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::config::KernelConfig;
use super::drivers::{self, SourceDrivers};
use super::kconfig::SymbolType;
use super::source;
use super::symvers::Symvers;
use crate::archive::{deb, DEFAULT_MAX_UNPACKED};

/// The config options that matter for RDMA, reported as y / m / unset.
pub const RDMA_OPTIONS: &[&str] = &[
    "INFINIBAND",
    "INFINIBAND_USER_ACCESS",
    "INFINIBAND_ADDR_TRANS",
    "RDMA_RXE",
    "RDMA_SIW",
    "MLX4_INFINIBAND",
    "MLX5_INFINIBAND",
    "INFINIBAND_MTHCA",
    "INFINIBAND_EFA",
    "INFINIBAND_ERDMA",
    "INFINIBAND_IRDMA",
    "INFINIBAND_BNXT_RE",
    "INFINIBAND_CXGB4",
    "INFINIBAND_HNS",
    "INFINIBAND_HNS_HIP08",
    "INFINIBAND_QEDR",
    "INFINIBAND_OCRDMA",
    "INFINIBAND_VMWARE_PVRDMA",
    "INFINIBAND_HFI1",
    "INFINIBAND_QIB",
    "MANA_INFINIBAND",
    "INFINIBAND_IONIC",
    "CRYPTO_CRC32",
    "LIBCRC32C",
];

#[derive(Debug, Default, Serialize)]
pub struct SymversSummary {
    pub symbols: usize,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct KernelReport {
    pub release: String,
    pub sources: Vec<PathBuf>,
    pub compiler: Option<String>,
    pub modversions: Option<bool>,
    pub rdma_config: Option<BTreeMap<String, String>>,
    pub module_symvers: Option<SymversSummary>,
    /// Every RDMA driver of the kernel's source, when its source was given.
    pub rdma_drivers: Option<DriversReport>,
}

/// A kernel's RDMA drivers: those of its series' source, with their states in its
/// config, and the drivers other given sources (or the default restore set) have and
/// this one's lacks.
#[derive(Debug, Serialize)]
pub struct DriversReport {
    pub source: PathBuf,
    pub source_version: String,
    pub drivers: Vec<DriverReport>,
}

#[derive(Debug, Serialize)]
pub struct DriverReport {
    pub name: String,
    pub dir: String,
    /// False for a driver this kernel's source lacks (newer than it): reported, never
    /// attempted.
    pub in_source: bool,
    /// `y` or `m` when one of its modules is built, `unset` when none is, `absent`
    /// when the source lacks it.
    pub state: String,
    pub modules: Vec<ModuleReport>,
}

#[derive(Debug, Serialize)]
pub struct ModuleReport {
    pub module: String,
    pub symbol: Option<String>,
    /// `y`, `m`, `unset`, or `unknown` (a condition make computes, or no config).
    pub state: String,
    #[serde(rename = "type")]
    pub kind: Option<SymbolType>,
    pub prompt: Option<String>,
    pub depends_on: Vec<String>,
    pub selects: Vec<String>,
}

/// Largest build file read from a kernel source (the top-level Makefile is ~70 KiB).
pub const MAX_SOURCE_FILE: u64 = 1 << 20;

#[derive(Default)]
struct Found {
    config: Option<KernelConfig>,
    symvers: Option<(Symvers, u64)>,
}

fn summarise_symvers(r: impl Read, bytes: u64, origin: &str) -> Result<(Symvers, u64)> {
    let s =
        Symvers::parse(BufReader::new(r)).with_context(|| format!("{origin}: Module.symvers"))?;
    Ok((s, bytes))
}

/// One kernel as read from its packages or headers tree.
#[derive(Debug)]
pub struct LoadedKernel {
    pub release: String,
    pub sources: Vec<PathBuf>,
    pub config: Option<KernelConfig>,
    pub symvers: Option<Symvers>,
    pub symvers_bytes: u64,
    /// The drivers of this kernel's series' source, and the file they came from.
    pub drivers: Option<(PathBuf, SourceDrivers)>,
}

/// Read one .deb: releases it names, with config and Module.symvers where present;
/// or, for a linux-source package, its RDMA drivers.
fn inspect_deb(
    file: &Path,
    found: &mut BTreeMap<String, Found>,
    sources: &mut Vec<(PathBuf, SourceDrivers)>,
) -> Result<()> {
    let origin = file.display().to_string();
    let mut err: Option<anyhow::Error> = None;
    deb::for_each_entry(file, DEFAULT_MAX_UNPACKED, |e| {
        let parts: Vec<String> = e
            .path
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        let p: Vec<&str> = parts.iter().map(String::as_str).collect();
        let mut text = || -> std::io::Result<String> {
            let mut s = String::new();
            e.reader.read_to_string(&mut s)?;
            Ok(s)
        };
        match p.as_slice() {
            ["usr", "src", name]
                if name.starts_with("linux-source-") && name.ends_with(".tar.xz") =>
            {
                match scan_source(&mut *e.reader, file) {
                    Ok(d) => sources.push((file.to_path_buf(), d)),
                    Err(x) => err = Some(x),
                }
            }
            ["boot", name] if name.starts_with("config-") && e.kind.is_file() => {
                let rel = name.trim_start_matches("config-").to_string();
                match KernelConfig::parse(&text()?) {
                    Ok(c) => found.entry(rel).or_default().config = Some(c),
                    Err(x) => err = Some(anyhow::anyhow!("{origin}: boot/{name}: {x}")),
                }
            }
            ["lib", "modules", rel] | ["usr", "lib", "modules", rel] if e.kind.is_dir() => {
                found.entry(rel.to_string()).or_default();
            }
            // Newer packages (sid's linux-base-*) keep the config beside the modules.
            ["usr", "lib", "modules", rel, "config"] if e.kind.is_file() => {
                match KernelConfig::parse(&text()?) {
                    Ok(c) => found.entry(rel.to_string()).or_default().config = Some(c),
                    Err(x) => err = Some(anyhow::anyhow!("{origin}: {}: {x}", e.path.display())),
                }
            }
            ["usr", "src", dir, ".config"] if e.kind.is_file() => {
                if let Some(rel) = dir.strip_prefix("linux-headers-") {
                    match KernelConfig::parse(&text()?) {
                        Ok(c) => found.entry(rel.to_string()).or_default().config = Some(c),
                        Err(x) => {
                            err = Some(anyhow::anyhow!("{origin}: {}: {x}", e.path.display()))
                        }
                    }
                }
            }
            ["usr", "src", dir, "Module.symvers"] if e.kind.is_file() => {
                if let Some(rel) = dir.strip_prefix("linux-headers-") {
                    match summarise_symvers(&mut *e.reader, e.size, &origin) {
                        Ok(s) => found.entry(rel.to_string()).or_default().symvers = Some(s),
                        Err(x) => err = Some(x),
                    }
                }
            }
            _ => {}
        }
        Ok(err.is_none())
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    Ok(())
}

/// Read a headers tree (`lib/modules/<rel>/build` or `/usr/src/linux-headers-<rel>`).
fn inspect_tree(dir: &Path, found: &mut BTreeMap<String, Found>) -> Result<()> {
    let dir = fs::canonicalize(dir).with_context(|| format!("{}: cannot read", dir.display()))?;
    let config_path = dir.join(".config");
    let config_text = fs::read_to_string(&config_path)
        .with_context(|| format!("{}: no kernel config here", config_path.display()))?;
    let config =
        KernelConfig::parse(&config_text).with_context(|| config_path.display().to_string())?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rel = match name.strip_prefix("linux-headers-") {
        Some(r) => r.to_string(),
        None if dir.ends_with("build") => dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        None => bail!(
            "{}: cannot tell the kernel release from the directory name",
            dir.display()
        ),
    };
    let symvers_path = dir.join("Module.symvers");
    let symvers = match fs::File::open(&symvers_path) {
        Ok(f) => {
            let bytes = f.metadata()?.len();
            Some(summarise_symvers(
                f,
                bytes,
                &symvers_path.display().to_string(),
            )?)
        }
        Err(_) => None,
    };
    let entry = found.entry(rel).or_default();
    entry.config = Some(config);
    entry.symvers = symvers;
    Ok(())
}

/// The RDMA drivers of a kernel source `.tar.xz` stream.
fn scan_source(tar_xz: &mut dyn Read, file: &Path) -> Result<SourceDrivers> {
    let files = source::read_tar_files(
        tar_xz,
        file,
        DEFAULT_MAX_UNPACKED,
        MAX_SOURCE_FILE,
        &drivers::wanted,
    )?;
    drivers::scan(&files.files).with_context(|| format!("{}: {}", file.display(), files.top))
}

/// Read files (packages of one or more kernels, headers trees, and kernel sources:
/// `linux-source-*` packages or `.tar.xz` tarballs), per release. A source serves every
/// kernel of its series (major.minor).
pub fn load(files: &[PathBuf]) -> Result<Vec<LoadedKernel>> {
    let mut kernels: BTreeMap<String, LoadedKernel> = BTreeMap::new();
    let mut sources: Vec<(PathBuf, SourceDrivers)> = Vec::new();
    for file in files {
        let mut found = BTreeMap::new();
        let before = sources.len();
        if file.is_dir() {
            inspect_tree(file, &mut found)?;
        } else if file.to_string_lossy().ends_with(".tar.xz") {
            let f =
                fs::File::open(file).with_context(|| format!("{}: cannot open", file.display()))?;
            sources.push((
                file.clone(),
                scan_source(&mut std::io::BufReader::new(f), file)?,
            ));
        } else {
            inspect_deb(file, &mut found, &mut sources)?;
        }
        if found.is_empty() && sources.len() == before {
            bail!(
                "{}: names no kernel release (not a kernel image, headers or source package?)",
                file.display()
            );
        }
        for (rel, f) in found {
            let k = kernels.entry(rel.clone()).or_insert_with(|| LoadedKernel {
                release: rel.clone(),
                sources: Vec::new(),
                config: None,
                symvers: None,
                symvers_bytes: 0,
                drivers: None,
            });
            k.sources.push(file.clone());
            if f.config.is_some() {
                k.config = f.config;
            }
            if let Some((s, bytes)) = f.symvers {
                k.symvers = Some(s);
                k.symvers_bytes = bytes;
            }
        }
    }
    for (file, src) in sources {
        let mut matched = false;
        for k in kernels.values_mut() {
            if drivers::release_series(&k.release).as_deref() != Some(src.series.as_str()) {
                continue;
            }
            matched = true;
            if let Some((other, _)) = &k.drivers {
                bail!(
                    "{} and {}: two sources of series {} for kernel {}; give one",
                    other.display(),
                    file.display(),
                    src.series,
                    k.release
                );
            }
            k.drivers = Some((file.clone(), src.clone()));
        }
        if !matched {
            bail!(
                "{}: a {} source (linux {}), but no kernel of series {} is among the inputs (give its image or headers package)",
                file.display(),
                src.series,
                src.version,
                src.series
            );
        }
    }
    Ok(kernels.into_values().collect())
}

/// The drivers report of one kernel: its source's drivers with their states, then the
/// drivers `known` names (other sources', the default restore set) its source lacks.
fn drivers_report(
    file: &Path,
    src: &SourceDrivers,
    config: Option<&KernelConfig>,
    known: &std::collections::BTreeSet<(String, String)>,
) -> DriversReport {
    let mut out: Vec<DriverReport> = src
        .drivers
        .iter()
        .map(|d| {
            let modules: Vec<ModuleReport> = d
                .modules
                .iter()
                .map(|m| {
                    let k = m.kconfig.as_ref();
                    ModuleReport {
                        module: m.module.clone(),
                        symbol: match &m.condition {
                            drivers::Condition::Symbol(s) => Some(s.clone()),
                            _ => None,
                        },
                        state: config
                            .map(|c| drivers::module_state(m, c))
                            .unwrap_or_else(|| "unknown".into()),
                        kind: k.and_then(|k| k.kind),
                        prompt: k.and_then(|k| k.prompt.clone()),
                        depends_on: k.map(|k| k.depends_on.clone()).unwrap_or_default(),
                        selects: k.map(|k| k.selects.clone()).unwrap_or_default(),
                    }
                })
                .collect();
            let state = ["y", "m"]
                .into_iter()
                .find(|s| modules.iter().any(|m| m.state == *s))
                .unwrap_or(if modules.iter().any(|m| m.state == "unknown") {
                    "unknown"
                } else {
                    "unset"
                });
            DriverReport {
                name: d.name.clone(),
                dir: d.dir.clone(),
                in_source: true,
                state: state.into(),
                modules,
            }
        })
        .collect();
    for (name, dir) in known {
        if !src.drivers.iter().any(|d| &d.dir == dir) {
            out.push(DriverReport {
                name: name.clone(),
                dir: dir.clone(),
                in_source: false,
                state: "absent".into(),
                modules: Vec::new(),
            });
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    DriversReport {
        source: file.to_path_buf(),
        source_version: src.version.clone(),
        drivers: out,
    }
}

/// Inspect files and report per release.
pub fn inspect(files: &[PathBuf]) -> Result<Vec<KernelReport>> {
    let loaded = load(files)?;
    // Every driver directory any given source has, and the default restore set.
    let mut known: std::collections::BTreeSet<(String, String)> = drivers::DEFAULT_RESTORE
        .iter()
        .map(|d| (drivers::driver_name(d).to_string(), d.to_string()))
        .collect();
    for k in &loaded {
        if let Some((_, src)) = &k.drivers {
            known.extend(src.drivers.iter().map(|d| (d.name.clone(), d.dir.clone())));
        }
    }
    Ok(loaded
        .into_iter()
        .map(|k| KernelReport {
            release: k.release,
            sources: k.sources,
            compiler: k
                .config
                .as_ref()
                .and_then(|c| c.string("CC_VERSION_TEXT").map(str::to_string)),
            modversions: k.config.as_ref().map(|c| c.is_enabled("MODVERSIONS")),
            rdma_config: k.config.as_ref().map(|c| {
                RDMA_OPTIONS
                    .iter()
                    .map(|o| (o.to_string(), c.state(o)))
                    .collect()
            }),
            module_symvers: k.symvers.as_ref().map(|s| SymversSummary {
                symbols: s.symbols.len(),
                bytes: k.symvers_bytes,
            }),
            rdma_drivers: k
                .drivers
                .as_ref()
                .map(|(f, src)| drivers_report(f, src, k.config.as_ref(), &known)),
        })
        .collect())
}
