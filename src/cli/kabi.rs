//! `rdma-nix kabi MODULE --kernel HEADERS…`: whether a built module loads on other
//! kernels (its vermagic and every imported CRC against their Module.symvers), the
//! comparison `rdma-nix update` makes for each module build it could reuse.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::kernel::{inspect, kabi, module};

#[derive(clap::Args)]
pub struct Args {
    /// The kernel module (.ko, uncompressed).
    module: PathBuf,
    /// Kernels to decide for: headers packages (.deb, with Module.symvers and the
    /// config) or headers trees; several files of one kernel are merged.
    #[arg(long = "kernel", required = true, num_args = 1.., value_name = "TREE_OR_DEB")]
    kernels: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    module: PathBuf,
    name: Option<String>,
    vermagic: Option<String>,
    imports: usize,
    kernels: Vec<kabi::Verdict>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let bytes =
        std::fs::read(&a.module).with_context(|| format!("{}: cannot read", a.module.display()))?;
    let m = module::parse(&bytes).with_context(|| a.module.display().to_string())?;
    let kernels = inspect::load(&a.kernels)?;
    if kernels.is_empty() {
        bail!("no kernel found in the --kernel files");
    }
    let report = Report {
        module: a.module.clone(),
        name: m.name.clone(),
        vermagic: m.vermagic.clone(),
        imports: m.imports.len(),
        kernels: kernels.iter().map(|k| kabi::decide(&m, k)).collect(),
    };
    if a.json {
        crate::cli::print_json(&report)?;
    } else {
        println!(
            "{} ({}), vermagic {:?}, {} imported symbols",
            a.module.display(),
            m.name.as_deref().unwrap_or("?"),
            m.vermagic.as_deref().unwrap_or("?"),
            m.imports.len()
        );
        for v in &report.kernels {
            println!(
                "  {:<28} {:<7} {}",
                v.kernel,
                if v.loads { "loads" } else { "REFUSED" },
                v.reason
            );
            for d in v.differing.iter().take(10) {
                match d.kernel_crc {
                    Some(c) => println!(
                        "      {}: module 0x{:08x}, kernel 0x{c:08x}",
                        d.symbol, d.module_crc
                    ),
                    None => println!("      {}: not exported by this kernel", d.symbol),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
