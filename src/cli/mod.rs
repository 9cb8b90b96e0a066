//! The command line: one subcommand per job, each in its own module.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod debian;
mod drv;
mod fetch;
mod generate;
mod hash;
mod kabi;
mod kernel;
mod matrix;
mod root;
mod scan;
mod stages;
mod update;

#[derive(Parser)]
#[command(
    name = "rdma-nix",
    version,
    about = "Generate Nix for the RDMA stack from upstream sources",
    long_about = "rdma-nix reads upstream RDMA sources (rdma-core tarballs, kernel packages) and \
                  emits Nix derivations: the verbs library, one derivation per provider, \
                  per-kernel module builds and VM checks. It also carries the Nix primitives \
                  it needs (NAR hashing, store paths, .drv files) as subcommands."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hash a file or tree as Nix does: SRI hash, NAR size and the store path
    /// `nix-store --add` (or `--add-fixed sha256` with --flat) would give.
    Hash(hash::Args),
    /// Work with derivation (.drv) files.
    #[command(subcommand)]
    Drv(drv::Command),
    /// Download the Debian packages the manifest pins (through the machine's apt),
    /// verify their sha256 and add them to the Nix store, so that the offline
    /// platform's fixed-output derivations are already valid.
    Fetch(fetch::Args),
    /// Write the generated Nix (pkgs/generated/) for the manifest; with --check, fail
    /// and show a diff when the checked-in files are stale.
    Generate(generate::Args),
    /// Inspect kernels: Debian kernel packages or headers trees.
    #[command(subcommand)]
    Kernel(kernel::Command),
    /// Decide, per kernel, whether a module built for one kernel loads on another:
    /// vermagic flags and the CRC of every imported symbol (`__versions`) against the
    /// kernel's Module.symvers; names the first symbols that differ.
    Kabi(kabi::Args),
    /// Debian's archive as data: resolve a build root's package closure from a
    /// suite's package index.
    #[command(subcommand)]
    Debian(debian::Command),
    /// Build roots of the hermetic platform: roots/NAME.toml resolved into pins.
    #[command(subcommand)]
    Root(root::Command),
    /// The VM checks' results as a kernel × device × test table (Markdown, HTML
    /// with bandwidth and latency charts); exits 1 when a check didn't pass.
    Matrix(matrix::Args),
    /// Move the lock forward: read the tracked suites' signed indexes, add each
    /// series' new kernel ABIs and retire old ones by its keep policy, decide every
    /// module's kABI reuse, regenerate pkgs/generated/ and print a changelog.
    Update(update::Args),
    /// Read an rdma-core source tarball (streamed, never unpacked) and report its
    /// version, PABI, core libraries, tools and providers.
    Scan(scan::Args),
    /// A run's stage times (scripts/stack, scripts/test: target/stages.jsonl) against
    /// what bounds each one: the fetch's bytes and rate, the VM checks' wall times
    /// over the VMs that ran at a time.
    Stages(stages::Args),
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Hash(a) => hash::run(a),
        Command::Drv(c) => drv::run(c),
        Command::Fetch(a) => fetch::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Kernel(c) => kernel::run(c),
        Command::Scan(a) => scan::run(a),
        Command::Stages(a) => stages::run(a),
        Command::Kabi(a) => kabi::run(a),
        Command::Debian(c) => debian::run(c),
        Command::Root(c) => root::run(c),
        Command::Matrix(a) => matrix::run(a),
        Command::Update(a) => update::run(a),
    }
}

/// Print a serialisable value as pretty JSON on stdout.
pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
