//! A kernel source tree's RDMA drivers: every directory below
//! `drivers/infiniband/{hw,sw,ulp}`, and the block ULP `drivers/block/rnbd`, with the
//! modules its makefiles build, the config symbol of each, and that symbol's Kconfig
//! entry (type, prompt, dependencies, selects). Nothing here is a hand-kept list of
//! drivers: a driver this tool has never heard of is found the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::KernelConfig;
pub use super::kbuild::Condition;
use super::kbuild::{self, Part};
use super::kconfig::{self, Entry};

/// Directories whose subdirectories are each a driver.
pub const DRIVER_ROOTS: &[&str] = &[
    "drivers/infiniband/hw",
    "drivers/infiniband/sw",
    "drivers/infiniband/ulp",
];
/// Driver directories outside those roots: the block ULP over RTRS.
pub const DRIVER_DIRS: &[&str] = &["drivers/block/rnbd"];

/// The drivers restored by default where a kernel lacks them (the NixOS module and the
/// matrix restore these; any other can be named).
pub const DEFAULT_RESTORE: &[&str] = &[
    "drivers/infiniband/sw/siw",
    "drivers/infiniband/hw/efa",
    "drivers/infiniband/hw/erdma",
    "drivers/infiniband/hw/vmw_pvrdma",
    "drivers/infiniband/ulp/rtrs",
    "drivers/block/rnbd",
];

/// A driver's name: its directory's last component (`drivers/infiniband/sw/siw` → `siw`).
pub fn driver_name(dir: &str) -> &str {
    dir.rsplit('/').next().unwrap_or(dir)
}

/// The names of `DEFAULT_RESTORE`.
pub fn default_restore_names() -> Vec<String> {
    DEFAULT_RESTORE
        .iter()
        .map(|d| driver_name(d).to_string())
        .collect()
}

const BUILD_FILES: &[&str] = &["Kconfig", "Makefile", "Kbuild"];

/// Does the driver report read this file (a path below the source's top directory)?
pub fn wanted(path: &Path) -> bool {
    if path == Path::new("Makefile") {
        return true;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    BUILD_FILES.contains(&name)
        && (DRIVER_DIRS.iter().any(|d| path.starts_with(d))
            || DRIVER_ROOTS
                .iter()
                .any(|r| path.starts_with(r) && path.parent() != Some(Path::new(r))))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {what}")]
pub struct DriverError {
    pub file: PathBuf,
    pub what: String,
}

/// A module one of the driver's makefiles builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverModule {
    pub module: String,
    /// The directory its makefile is in (a driver may have nested ones).
    pub dir: String,
    pub condition: Condition,
    pub parts: Vec<Part>,
    /// The Kconfig entry of its symbol, when the driver's Kconfig files define it.
    pub kconfig: Option<Entry>,
}

/// One driver directory of a source tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Driver {
    pub name: String,
    pub dir: String,
    pub modules: Vec<DriverModule>,
    /// Every Kconfig entry in the directory (options of the driver as well).
    pub symbols: Vec<Entry>,
    /// Source directories outside its own that its makefiles include
    /// (`-I$(srctree)/…`: rnbd includes rtrs's).
    pub includes: Vec<String>,
}

/// A kernel source tree's version and drivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceDrivers {
    /// `6.1.192`, from the top-level Makefile.
    pub version: String,
    /// `6.1`: the kernel series this source builds.
    pub series: String,
    pub drivers: Vec<Driver>,
}

fn makefile_var<'a>(text: &'a str, var: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == var).then(|| v.trim())
    })
}

/// The drivers of a source tree given as its build files (path below the top
/// directory → text; what `wanted` selects).
pub fn scan(files: &BTreeMap<PathBuf, String>) -> Result<SourceDrivers, DriverError> {
    let top = files
        .get(Path::new("Makefile"))
        .ok_or_else(|| DriverError {
            file: "Makefile".into(),
            what: "no top-level Makefile: not a kernel source tree".into(),
        })?;
    let num = |var: &str| {
        makefile_var(top, var)
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| DriverError {
                file: "Makefile".into(),
                what: format!("no numeric {var}: not a kernel source tree"),
            })
    };
    let (version, patchlevel, sublevel) = (num("VERSION")?, num("PATCHLEVEL")?, num("SUBLEVEL")?);

    // Driver directory → its build files.
    let mut dirs: BTreeMap<String, Vec<(&PathBuf, &String)>> = BTreeMap::new();
    for (path, text) in files {
        let driver_dir = DRIVER_DIRS
            .iter()
            .find(|d| path.starts_with(d))
            .map(|d| d.to_string())
            .or_else(|| {
                DRIVER_ROOTS.iter().find_map(|r| {
                    let rest = path.strip_prefix(r).ok()?;
                    let first = rest.components().next()?;
                    // A file directly in the root (hw/Makefile) is not a driver.
                    (rest.components().count() > 1)
                        .then(|| format!("{r}/{}", first.as_os_str().to_string_lossy()))
                })
            });
        if let Some(d) = driver_dir {
            dirs.entry(d).or_default().push((path, text));
        }
    }

    let mut drivers = Vec::new();
    for (dir, build_files) in dirs {
        let err = |path: &Path, what: String| DriverError {
            file: path.to_path_buf(),
            what,
        };
        let mut symbols = Vec::new();
        let mut modules = Vec::new();
        let mut includes: Vec<String> = Vec::new();
        // A directory with a Kbuild reads it instead of its Makefile, as kbuild does.
        let has_kbuild = |p: &Path| {
            p.parent()
                .is_some_and(|d| files.contains_key(&d.join("Kbuild")))
        };
        for (path, text) in &build_files {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            match name {
                "Kconfig" => {
                    symbols.extend(kconfig::parse(text).map_err(|e| err(path, e.to_string()))?)
                }
                "Makefile" if has_kbuild(path) => {}
                "Makefile" | "Kbuild" => {
                    let mf = kbuild::parse(text).map_err(|e| err(path, e.to_string()))?;
                    for i in mf.srctree_includes {
                        if !i.starts_with(&dir) && !includes.contains(&i) {
                            includes.push(i);
                        }
                    }
                    let here = path
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    modules.extend(mf.modules.into_iter().map(|m| DriverModule {
                        module: m.name,
                        dir: here.clone(),
                        condition: m.condition,
                        parts: m.parts,
                        kconfig: None,
                    }));
                }
                _ => {}
            }
        }
        for m in &mut modules {
            if let Condition::Symbol(s) = &m.condition {
                m.kconfig = symbols.iter().find(|e| &e.symbol == s).cloned();
            }
        }
        let name = driver_name(&dir).to_string();
        drivers.push(Driver {
            name,
            dir,
            modules,
            symbols,
            includes,
        });
    }
    Ok(SourceDrivers {
        version: format!("{version}.{patchlevel}.{sublevel}"),
        series: format!("{version}.{patchlevel}"),
        drivers,
    })
}

/// The series (`6.1`) of a kernel release (`6.1.0-50-amd64`, `6.12.117+deb13-amd64`).
pub fn release_series(release: &str) -> Option<String> {
    let mut it = release.split(['.', '-', '+']);
    let (a, b) = (it.next()?, it.next()?);
    (a.chars().all(|c| c.is_ascii_digit()) && b.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("{a}.{b}"))
}

/// A module's state in a kernel's config: `y`, `m`, `unset`, or `unknown` when make
/// computes its condition.
pub fn module_state(m: &DriverModule, config: &KernelConfig) -> String {
    match &m.condition {
        Condition::Always(c) => c.to_string(),
        Condition::Symbol(s) => config.state(s),
        Condition::Expr(_) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
        files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect()
    }

    const TOP: &str = "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\n";

    #[test]
    fn drivers_modules_and_symbols() {
        let t = tree(&[
            ("Makefile", TOP),
            ("drivers/infiniband/hw/Makefile", "obj-$(CONFIG_INFINIBAND_EFA) += efa/\n"),
            ("drivers/infiniband/hw/efa/Makefile", "obj-$(CONFIG_INFINIBAND_EFA) += efa.o\nefa-y := efa_main.o efa_verbs.o\n"),
            ("drivers/infiniband/hw/efa/Kconfig", "config INFINIBAND_EFA\n\ttristate \"EFA\"\n\tdepends on PCI_MSI\n"),
            ("drivers/infiniband/hw/newhw/Makefile", "obj-$(CONFIG_INFINIBAND_NEWHW) += newhw.o\n"),
            ("drivers/infiniband/ulp/rtrs/Makefile", "obj-$(CONFIG_INFINIBAND_RTRS) += rtrs-core.o\nobj-$(CONFIG_INFINIBAND_RTRS_CLIENT) += rtrs-client.o\n"),
            ("drivers/infiniband/ulp/rtrs/Kconfig", "config INFINIBAND_RTRS\n\ttristate\nconfig INFINIBAND_RTRS_CLIENT\n\ttristate \"client\"\n\tselect INFINIBAND_RTRS\n"),
            ("drivers/block/rnbd/Makefile", "ccflags-y := -I$(srctree)/drivers/infiniband/ulp/rtrs\nobj-$(CONFIG_BLK_DEV_RNBD_CLIENT) += rnbd-client.o\n"),
        ]);
        let s = scan(&t).unwrap();
        assert_eq!((s.version.as_str(), s.series.as_str()), ("6.1.192", "6.1"));
        let names: Vec<_> = s.drivers.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["rnbd", "efa", "newhw", "rtrs"]);
        assert_eq!(s.drivers[0].includes, ["drivers/infiniband/ulp/rtrs"]);
        let efa = &s.drivers[1];
        assert_eq!(efa.modules[0].module, "efa");
        assert_eq!(efa.modules[0].parts.len(), 2);
        let k = efa.modules[0].kconfig.as_ref().unwrap();
        assert_eq!(k.depends_on, ["PCI_MSI"]);
        // Unknown to any list, found all the same; no Kconfig entry in its directory.
        assert_eq!(s.drivers[2].modules[0].kconfig, None);
        let rtrs = &s.drivers[3];
        assert_eq!(rtrs.modules.len(), 2);
        assert_eq!(
            rtrs.modules[1].kconfig.as_ref().unwrap().selects,
            ["INFINIBAND_RTRS"]
        );
        let cfg = KernelConfig::parse("CONFIG_INFINIBAND_RTRS=m\n").unwrap();
        assert_eq!(module_state(&rtrs.modules[0], &cfg), "m");
        assert_eq!(module_state(&rtrs.modules[1], &cfg), "unset");
    }

    #[test]
    fn wanted_files() {
        assert!(wanted(Path::new("Makefile")));
        assert!(wanted(Path::new("drivers/infiniband/sw/siw/Kconfig")));
        assert!(wanted(Path::new("drivers/block/rnbd/Makefile")));
        assert!(!wanted(Path::new("drivers/infiniband/sw/Makefile")));
        assert!(!wanted(Path::new("drivers/infiniband/sw/siw/siw_main.c")));
        assert!(!wanted(Path::new("drivers/net/Makefile")));
    }

    #[test]
    fn bad_trees_name_the_file() {
        assert!(scan(&tree(&[]))
            .unwrap_err()
            .what
            .contains("top-level Makefile"));
        let e = scan(&tree(&[
            ("Makefile", TOP),
            ("drivers/infiniband/sw/siw/Kconfig", "config\n"),
        ]))
        .unwrap_err();
        assert_eq!(e.file, PathBuf::from("drivers/infiniband/sw/siw/Kconfig"));
        assert!(e.what.starts_with("line 1:"));
    }

    #[test]
    fn series_of_releases() {
        assert_eq!(release_series("6.1.0-50-amd64").as_deref(), Some("6.1"));
        assert_eq!(
            release_series("6.12.117+deb13-amd64").as_deref(),
            Some("6.12")
        );
        assert_eq!(release_series("7.2.13+deb14-amd64").as_deref(), Some("7.2"));
        assert_eq!(release_series("x"), None);
    }
}
