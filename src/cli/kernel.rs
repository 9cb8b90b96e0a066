use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::kernel::inspect::inspect;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Report a kernel's release, compiler, modversions, RDMA config (y/m/unset) and
    /// Module.symvers size, from Debian kernel packages (.deb, read as a stream) or
    /// headers trees. Several files of one kernel are merged into one report. Given its
    /// series' source (linux-source-* .deb or a kernel .tar.xz), also every RDMA driver
    /// (drivers/infiniband/{hw,sw,ulp}/*, drivers/block/rnbd): its modules, Kconfig
    /// symbols and their states, and the drivers its source lacks.
    Inspect {
        /// .deb files (linux-image-*, linux-headers-*, linux-source-*), kernel source
        /// .tar.xz files, or headers directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Plan restoring RDMA drivers a kernel lacks, from its series' source: for each
    /// kernel, the drivers to build out of tree in order (with the config symbols to
    /// set and the restored drivers each needs first, from the source's Kconfig and
    /// Kbuild files), and those not built, with the reason (in the kernel already,
    /// absent from its source, a dependency its config doesn't satisfy).
    RestorePlan {
        /// Kernel packages (image or headers, for the config) and linux-source
        /// packages or kernel .tar.xz files, as for `kernel inspect`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A driver to restore (its directory's name: siw, efa, rtrs, rnbd, …);
        /// repeatable. Default: siw, efa, erdma, vmw_pvrdma, rtrs, rnbd.
        #[arg(long = "driver")]
        drivers: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Extract subtrees (e.g. drivers/infiniband/sw/siw) of a kernel source tarball,
    /// or of the one inside a linux-source-* Debian package, streamed: only the wanted
    /// files are written; on error nothing is left behind.
    ExtractSource {
        /// linux-source-*.deb or linux-*.tar.xz
        file: PathBuf,
        /// Path below the tarball's top directory; repeatable.
        #[arg(long = "subdir", required = true)]
        subdirs: Vec<PathBuf>,
        /// Directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Ceiling on decompressed bytes (decompression bombs).
        #[arg(long, default_value_t = crate::archive::DEFAULT_MAX_UNPACKED)]
        max_unpacked: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(serde::Serialize)]
struct KernelPlan {
    release: String,
    source_version: String,
    #[serde(flatten)]
    plan: crate::kernel::restore::Plan,
}

fn restore_plan(files: &[PathBuf], drivers: Vec<String>, json: bool) -> Result<ExitCode> {
    use crate::kernel::{inspect, restore};
    let names: Vec<String> = if drivers.is_empty() {
        crate::kernel::drivers::default_restore_names()
    } else {
        drivers
    };
    let mut plans = Vec::new();
    for k in inspect::load(files)? {
        let Some((src_file, src)) = &k.drivers else {
            anyhow::bail!(
                "kernel {}: no source of series {} among the inputs (give its linux-source package)",
                k.release,
                crate::kernel::drivers::release_series(&k.release).unwrap_or_default()
            );
        };
        let Some(config) = &k.config else {
            anyhow::bail!(
                "kernel {}: no config among the inputs (give its image or headers package, not only {})",
                k.release,
                src_file.display()
            );
        };
        plans.push(KernelPlan {
            release: k.release.clone(),
            source_version: src.version.clone(),
            plan: restore::plan_restore(src, config, &names),
        });
    }
    if json {
        crate::cli::print_json(&plans)?;
        return Ok(ExitCode::SUCCESS);
    }
    for p in &plans {
        println!("{} (source linux {})", p.release, p.source_version);
        for (i, b) in p.plan.build.iter().enumerate() {
            let syms: Vec<String> = b
                .symbols
                .iter()
                .map(|(k, v)| format!("CONFIG_{k}={v}"))
                .collect();
            let needs = if b.needs.is_empty() {
                String::new()
            } else {
                format!(", after {}", b.needs.join(", "))
            };
            let why = if b.requested {
                ""
            } else {
                " (needed by another)"
            };
            println!(
                "  build {}. {}{why}: {} [{}{needs}]",
                i + 1,
                b.driver,
                b.modules.join(", "),
                syms.join(" ")
            );
        }
        for s in &p.plan.skip {
            println!("  skip  {}: {}", s.driver, s.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(c: Command) -> Result<ExitCode> {
    match c {
        Command::RestorePlan {
            files,
            drivers,
            json,
        } => restore_plan(&files, drivers, json),
        Command::ExtractSource {
            file,
            subdirs,
            out,
            max_unpacked,
            json,
        } => {
            let x = crate::kernel::source::extract_subtrees(&file, &subdirs, &out, max_unpacked)?;
            if json {
                crate::cli::print_json(&x)?;
            } else {
                println!(
                    "{} files, {} bytes into {}",
                    x.files,
                    x.bytes,
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { files, json } => {
            let reports = inspect(&files)?;
            if json {
                crate::cli::print_json(&reports)?;
                return Ok(ExitCode::SUCCESS);
            }
            for r in reports {
                println!("{}", r.release);
                println!(
                    "  compiler:       {}",
                    r.compiler.as_deref().unwrap_or("(no config given)")
                );
                let mv = r.modversions.map(|m| if m { "on" } else { "off" });
                println!("  modversions:    {}", mv.unwrap_or("(no config given)"));
                match &r.module_symvers {
                    Some(s) => {
                        println!("  Module.symvers: {} symbols, {} bytes", s.symbols, s.bytes)
                    }
                    None => println!("  Module.symvers: (not in these files)"),
                }
                if let Some(cfg) = &r.rdma_config {
                    for (k, v) in cfg {
                        println!("  CONFIG_{k:<26} {v}");
                    }
                }
                if let Some(d) = &r.rdma_drivers {
                    println!(
                        "  RDMA drivers of linux {} ({}):",
                        d.source_version,
                        d.source.display()
                    );
                    for drv in &d.drivers {
                        let modules: Vec<String> = drv
                            .modules
                            .iter()
                            .map(|m| match &m.symbol {
                                Some(s) => format!("{} (CONFIG_{s}={})", m.module, m.state),
                                None => format!("{} ({})", m.module, m.state),
                            })
                            .collect();
                        let what = if drv.in_source {
                            modules.join(", ")
                        } else {
                            "not in this kernel's source".into()
                        };
                        println!("    {:<12} {:<7} {}", drv.name, drv.state, what);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
