//! `rdma-nix kernel inspect`: what a Debian kernel package (or a headers tree) says
//! about its kernel: release, compiler, modversions, RDMA config, Module.symvers.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::config::KernelConfig;
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
}

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
}

/// Read one .deb: releases it names, with config and Module.symvers where present.
fn inspect_deb(file: &Path, found: &mut BTreeMap<String, Found>) -> Result<()> {
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

/// Read files (packages of one or more kernels, or headers trees), per release.
pub fn load(files: &[PathBuf]) -> Result<Vec<LoadedKernel>> {
    let mut kernels: BTreeMap<String, LoadedKernel> = BTreeMap::new();
    for file in files {
        let mut found = BTreeMap::new();
        if file.is_dir() {
            inspect_tree(file, &mut found)?;
        } else {
            inspect_deb(file, &mut found)?;
        }
        if found.is_empty() {
            bail!(
                "{}: names no kernel release (not a kernel image or headers package?)",
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
    Ok(kernels.into_values().collect())
}

/// Inspect files and report per release.
pub fn inspect(files: &[PathBuf]) -> Result<Vec<KernelReport>> {
    Ok(load(files)?
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
        })
        .collect())
}
