use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command as Process, ExitCode, Stdio};

use anyhow::{bail, Context, Result};

use crate::archive::Compression;
use crate::debian::index::{parse_relations, Index};
use crate::debian::resolve::resolve;

#[derive(clap::Subcommand)]
pub enum Command {
    /// The closure of packages under Pre-Depends and Depends in a suite's package
    /// index: what a build root of those packages holds, as pins (name, version,
    /// pool path, sha256). Choices among alternatives and virtual packages are listed.
    Resolve(ResolveArgs),
}

/// Where a suite's package index comes from.
#[derive(clap::Args)]
pub struct IndexArgs {
    /// A Packages index (plain, .gz or .xz); repeat for a suite and its updates.
    #[arg(long = "index", value_name = "FILE")]
    indexes: Vec<PathBuf>,
    /// Read the package lists of the machine's apt (`apt-get indextargets`).
    #[arg(long)]
    apt: bool,
    /// Architecture (packages of it and of `all`).
    #[arg(long, default_value = "amd64")]
    arch: String,
}

#[derive(clap::Args)]
pub struct ResolveArgs {
    /// Packages (with an optional constraint: 'gcc-12 (>= 12.2)').
    #[arg(required = true)]
    packages: Vec<String>,
    #[command(flatten)]
    index: IndexArgs,
    /// Add every Essential package (what dpkg assumes present in a root).
    #[arg(long)]
    essential: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn open_index(path: &std::path::Path) -> Result<Box<dyn BufRead>> {
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut r = BufReader::new(f);
    let magic = r
        .fill_buf()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .to_vec();
    let inner: Box<dyn Read> = match Compression::sniff(&magic) {
        Compression::Lz4 => bail!("{}: lz4-compressed (apt's own lists): use --apt, or decompress it with `/usr/lib/apt/apt-helper cat-file`", path.display()),
        Compression::Other => Box::new(r),
        c => c.decoder(r).expect("gzip and xz have decoders"),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, inner)))
}

/// The machine's apt lists for `arch`, decompressed by apt's own helper.
fn apt_lists(arch: &str) -> Result<Vec<String>> {
    let out = Process::new("apt-get")
        .args([
            "indextargets",
            "--format",
            "$(FILENAME)",
            "Identifier: Packages",
        ])
        .arg(format!("Architecture: {arch}"))
        .output()
        .context("cannot run apt-get")?;
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if files.is_empty() {
        bail!("apt has no package lists for {arch} (run `apt-get update`)");
    }
    Ok(files)
}

impl IndexArgs {
    /// Read every index given (progress on stderr).
    pub fn load(&self) -> Result<Index> {
        if self.indexes.is_empty() && !self.apt {
            bail!("no package index: pass --index FILE or --apt");
        }
        let mut index = Index::default();
        for path in &self.indexes {
            let n = index
                .add(open_index(path)?, &path.display().to_string(), &self.arch)
                .map_err(anyhow::Error::from)?;
            eprintln!("rdma-nix: {}: {n} packages", path.display());
        }
        if self.apt {
            for file in apt_lists(&self.arch)? {
                let mut child = Process::new("/usr/lib/apt/apt-helper")
                    .args(["cat-file", &file])
                    .stdout(Stdio::piped())
                    .spawn()
                    .context("cannot run apt-helper")?;
                let stdout = child.stdout.take().expect("piped");
                let n = index
                    .add(BufReader::with_capacity(1 << 16, stdout), &file, &self.arch)
                    .map_err(anyhow::Error::from)?;
                let st = child.wait()?;
                if !st.success() {
                    bail!("{file}: apt-helper cat-file failed ({st})");
                }
                eprintln!("rdma-nix: {file}: {n} packages");
            }
        }
        Ok(index)
    }
}

pub fn run(c: Command) -> Result<ExitCode> {
    let Command::Resolve(a) = c;
    let index = a.index.load()?;
    let mut roots = Vec::new();
    for p in &a.packages {
        let mut r = parse_relations(p).map_err(|e| anyhow::anyhow!("package argument {e}"))?;
        if r.len() != 1 || r[0].len() != 1 {
            bail!("package argument {p:?}: one package per argument");
        }
        roots.push(r.remove(0).remove(0));
    }
    let closure = resolve(&index, &roots, a.essential)?;
    if a.json {
        crate::cli::print_json(&closure)?;
    } else {
        for p in &closure.packages {
            println!("{} {} {}", p.name, p.version, p.path);
        }
        for c in &closure.choices {
            println!(
                "# {} needs {}: chose {} of {}",
                c.needed_by,
                c.relation,
                c.chosen,
                c.candidates.join(", ")
            );
        }
        let size: u64 = closure.packages.iter().map(|p| p.size).sum();
        eprintln!(
            "rdma-nix: {} packages, {:.1} MiB of .deb files",
            closure.packages.len(),
            size as f64 / (1 << 20) as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}
