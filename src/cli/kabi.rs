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
    /// Also write the module's imports (symbols and CRCs) and vermagic to this JSON
    /// file: the record `rdma-nix generate` decides reuse from.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// The Module.symvers of the module's own build: its exports go into the record
    /// (`provides`), for the drivers that link against it (rnbd on rtrs).
    #[arg(long, value_name = "FILE", requires = "record")]
    symvers: Option<PathBuf>,
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
    if let Some(path) = &a.record {
        let mut rec = kabi::Record::of(&m)
            .with_context(|| format!("{}: no name or vermagic in .modinfo", a.module.display()))?;
        if let Some(sv) = &a.symvers {
            let f = std::fs::File::open(sv)
                .with_context(|| format!("{}: cannot read", sv.display()))?;
            let sv_parsed = crate::kernel::symvers::Symvers::parse(std::io::BufReader::new(f))
                .with_context(|| format!("{}: not a Module.symvers", sv.display()))?;
            // Its lines name the module by path (…/rtrs-core); .modinfo by rtrs_core.
            let norm = |s: &str| s.replace('-', "_");
            let mut provides: Vec<kabi::RecordedImport> = sv_parsed
                .symbols
                .iter()
                .filter(|(_, e)| {
                    norm(e.module.rsplit('/').next().unwrap_or("")) == norm(&rec.module)
                })
                .map(|(s, e)| kabi::RecordedImport {
                    symbol: s.clone(),
                    crc: format!("0x{:08x}", e.crc),
                })
                .collect();
            provides.sort_by(|a, b| a.symbol.cmp(&b.symbol));
            rec.provides = provides;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&rec)? + "\n")
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))?;
    }
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
