//! rdma-core releases: what a source tarball builds (core libraries, tools, one
//! plugin per provider), read from its CMake files without unpacking it.

pub mod cmake;
pub mod scan;

use serde::{Deserialize, Serialize};

pub use scan::{scan_file, scan_reader, ScanError};

/// What an rdma-core release builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// `PACKAGE_VERSION` of the top-level CMakeLists.txt.
    pub version: String,
    /// `IBVERBS_PABI_VERSION`: the private ABI providers must match.
    pub pabi: u32,
    /// The tarball's top-level directory (any name).
    pub top_dir: String,
    /// SRI sha256 of the exact tarball bytes scanned.
    pub sha256: String,
    /// The unpacked tree, top directory stripped: the pin any tarball of the same
    /// tree (upstream's, Debian's, an archive snapshot) matches.
    pub tree: TreePin,
    pub core_libraries: Vec<Library>,
    pub tools: Vec<Tool>,
    pub providers: Vec<Provider>,
    /// What the scanner found but could not classify; never silently dropped.
    pub unclassified: Vec<Unclassified>,
}

/// A source tree's NAR hash (SRI sha256) and NAR size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreePin {
    pub nar_hash: String,
    pub nar_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// `libibverbs`, …
    pub name: String,
    pub soversion: String,
    pub version: String,
    pub directory: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    /// Installed to sbin rather than bin.
    pub sbin: bool,
    pub directory: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// The CMake macro's first argument: the driver name of the `.driver` file.
    pub name: String,
    /// `providers/<directory>` in the source tree.
    pub directory: String,
    /// The plugin libibverbs loads: `lib<name>-rdmav<PABI>.so`.
    pub plugin: String,
    /// The config file it installs: `<name>.driver`.
    pub driver_file: String,
    pub public_library: Option<PublicLibrary>,
    pub man_pages: Vec<String>,
    pub extra_files: Vec<ExtraFile>,
    /// Built only where the platform has coherent DMA (`if (HAVE_COHERENT_DMA)`).
    pub needs_coherent_dma: bool,
    /// The kernel driver(s) it serves.
    pub kernel_modules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicLibrary {
    /// `libmlx5`
    pub name: String,
    pub soversion: String,
    pub version: String,
    /// Installed headers, relative to the include directory (`infiniband/mlx5dv.h`).
    pub headers: Vec<String>,
    /// `libmlx5.pc`, when it installs one.
    pub pkg_config: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraFile {
    /// The installed file name.
    pub file: String,
    /// The CMake destination, as written (`${CMAKE_INSTALL_MODPROBEDIR}/`).
    pub destination: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unclassified {
    /// Path inside the tarball, below the top directory.
    pub path: String,
    pub line: Option<usize>,
    pub what: String,
}

/// The kernel driver(s) each known provider serves.
pub fn kernel_modules_of(provider: &str) -> Option<&'static [&'static str]> {
    Some(match provider {
        "bnxt_re" => &["bnxt_re"],
        "cxgb4" => &["iw_cxgb4"],
        "efa" => &["efa"],
        "erdma" => &["erdma"],
        "hfi1verbs" => &["hfi1"],
        "hns" => &["hns_roce_hw_v2"],
        "ionic" => &["ionic_rdma"],
        "ipathverbs" => &["ib_qib"],
        "irdma" => &["irdma"],
        "mana" => &["mana_ib"],
        "mlx4" => &["mlx4_ib"],
        "mlx5" => &["mlx5_ib"],
        "mthca" => &["ib_mthca"],
        "ocrdma" => &["ocrdma"],
        "qedr" => &["qedr"],
        "rxe" => &["rdma_rxe"],
        "siw" => &["siw"],
        "vmw_pvrdma" => &["vmw_pvrdma"],
        _ => return None,
    })
}

/// Provider names end up in Nix attribute names, file names and `.driver` lines.
pub fn is_provider_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A plain file name: no directories, no Nix or shell metacharacters.
pub fn is_plain_file_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
}
