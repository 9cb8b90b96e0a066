use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::rdma_core::{scan_file, Release};

#[derive(clap::Args)]
pub struct Args {
    /// An rdma-core source tarball (.tar.gz or .tar.xz; any top-level directory).
    tarball: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let r = scan_file(&a.tarball)?;
    if a.json {
        crate::cli::print_json(&r)?;
    } else {
        print_text(&r);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(r: &Release) {
    println!(
        "rdma-core {} (PABI {}), top directory {}/",
        r.version, r.pabi, r.top_dir
    );
    println!("sha256 {} (the tarball's bytes)", r.sha256);
    println!(
        "tree   {} (NAR of the unpacked tree, {} bytes: the pin any tarball of it matches)",
        r.tree.nar_hash, r.tree.nar_size
    );
    println!("core libraries:");
    for l in &r.core_libraries {
        println!(
            "  {}.so.{} ({}) in {}/",
            l.name, l.soversion, l.version, l.directory
        );
    }
    println!(
        "tools: {}",
        r.tools
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("providers ({}):", r.providers.len());
    for p in &r.providers {
        let public = match &p.public_library {
            Some(l) => format!(
                "{}.so.{} ({}), {} headers{}",
                l.name,
                l.soversion,
                l.version,
                l.headers.len(),
                l.pkg_config
                    .as_deref()
                    .map(|p| format!(", {p}"))
                    .unwrap_or_default()
            ),
            None => "plugin only".into(),
        };
        println!(
            "  {:<11} {:<26} {}; kernel: {}{}{}",
            p.name,
            p.plugin,
            public,
            if p.kernel_modules.is_empty() {
                "?".into()
            } else {
                p.kernel_modules.join(",")
            },
            if p.needs_coherent_dma {
                "; needs coherent DMA"
            } else {
                ""
            },
            if p.man_pages.is_empty() {
                String::new()
            } else {
                format!("; {} man pages", p.man_pages.len())
            },
        );
    }
    if !r.unclassified.is_empty() {
        println!("unclassified ({}):", r.unclassified.len());
        for u in &r.unclassified {
            match u.line {
                Some(l) => println!("  {}:{l}: {}", u.path, u.what),
                None => println!("  {}: {}", u.path, u.what),
            }
        }
    }
}
