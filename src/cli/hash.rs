use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::archive::{tree::SourceTree, DEFAULT_MAX_UNPACKED};
use crate::nix::store_path::{fixed_output_path, validate_name};
use crate::nix::{nar, FileIngestion, HashAlgo, NixHash};

#[derive(clap::Args)]
pub struct Args {
    /// File or directory to hash.
    path: PathBuf,
    /// Hash the bytes of a single file (like `nix-store --add-fixed sha256`)
    /// instead of its NAR serialisation.
    #[arg(long)]
    flat: bool,
    /// Hash the tree a .tar.gz/.tar.xz unpacks to, its top directory stripped (the
    /// output hash of a `fetchzip` of it; the store name defaults to `source`).
    #[arg(long, conflicts_with = "flat")]
    unpack: bool,
    /// Store path name (default: the file's base name).
    #[arg(long)]
    name: Option<String>,
    /// Fail unless the hash equals this one (SRI, `sha256:…` in base16, nixbase32 or
    /// base64, or a bare base16/nixbase32 digest).
    #[arg(long, value_name = "HASH")]
    expect: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    path: PathBuf,
    method: &'static str,
    hash: String,
    base16: String,
    nixbase32: String,
    nar_hash: String,
    nar_size: u64,
    store_path: String,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let path = &a.path;
    let expected = a
        .expect
        .as_deref()
        .map(|h| NixHash::parse(h, Some(HashAlgo::Sha256)))
        .transpose()
        .context("--expect")?;
    let meta =
        fs::symlink_metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if a.flat && !meta.is_file() {
        bail!("{}: --flat needs a regular file", path.display());
    }
    let name = match &a.name {
        Some(n) => n.clone(),
        None if a.unpack => crate::fetch::TREE_NAME.to_string(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .with_context(|| format!("{}: has no usable base name; pass --name", path.display()))?,
    };
    validate_name(&name).with_context(|| {
        format!(
            "{}: cannot be a store path name; pass --name",
            path.display()
        )
    })?;

    if a.unpack && !meta.is_file() {
        bail!("{}: --unpack needs a tarball", path.display());
    }
    let (nar_hash, nar_size) = if a.unpack {
        let tree = SourceTree::from_tarball(path, DEFAULT_MAX_UNPACKED)?;
        tree.nar_hash()
            .with_context(|| format!("{}: hashing the unpacked tree", path.display()))?
    } else {
        nar::hash_path(path)?
    };
    let (method, hash) = if a.flat {
        let mut f =
            fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let h = NixHash::of_reader(HashAlgo::Sha256, &mut f)
            .with_context(|| format!("{}: read failed", path.display()))?;
        (FileIngestion::Flat, h)
    } else {
        (FileIngestion::Recursive, nar_hash.clone())
    };
    if let Some(want) = expected {
        if want != hash {
            bail!(
                "{}: hash mismatch: expected {}, got {}",
                path.display(),
                want.to_sri(),
                hash.to_sri()
            );
        }
    }
    let store_path = fixed_output_path(method, &hash, &name, &BTreeSet::new())?;
    let report = Report {
        path: path.clone(),
        method: match (a.flat, a.unpack) {
            (true, _) => "flat",
            (_, true) => "unpacked tree",
            _ => "nar",
        },
        hash: hash.to_sri(),
        base16: hash.to_base16(),
        nixbase32: hash.to_nixbase32(),
        nar_hash: nar_hash.to_sri(),
        nar_size,
        store_path: store_path.to_string(),
    };
    if a.json {
        crate::cli::print_json(&report)?;
    } else {
        println!("hash:       {}", report.hash);
        println!("nar size:   {}", report.nar_size);
        println!("store path: {}", report.store_path);
    }
    Ok(ExitCode::SUCCESS)
}
