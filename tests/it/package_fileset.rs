//! `pkgs/rdma-nix/package.nix` builds the generator from a fileset: the crate must
//! compile from exactly those files (nixpkgs' `lib.fileset.toSource` copies nothing
//! else). The fileset's entries are read from the package file, copied alone into a
//! fresh tree, and checked there (`cargo check` reads every file the compiler does,
//! `include_str!` ones too; code generation and linking read no more).

use crate::common;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The paths listed in the package's `lib.fileset.unions [ … ]`, relative to the root.
fn fileset_entries(package: &str) -> Vec<String> {
    let start = package
        .find("lib.fileset.unions [")
        .expect("package.nix has a lib.fileset.unions list");
    let rest = &package[start..];
    let end = rest.find(']').expect("the unions list ends");
    rest[..end]
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("../../"))
        .map(str::to_owned)
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

#[test]
fn the_generator_compiles_from_exactly_its_package_fileset() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let package = std::fs::read_to_string(root.join("pkgs/rdma-nix/package.nix")).unwrap();
    let entries = fileset_entries(&package);
    assert!(
        entries.contains(&"stack.lock".to_owned()) && entries.contains(&"src".to_owned()),
        "{entries:?}"
    );
    let tree = tempfile::tempdir().unwrap();
    for e in &entries {
        let from = root.join(e);
        assert!(from.exists(), "package.nix lists {e}, which doesn't exist");
        copy_tree(&from, &tree.path().join(e));
    }
    // The crates are the ones this build already fetched; the target dir is kept
    // beside ours so a second run compiles only the crate.
    let out = common::run(
        Command::new(env!("CARGO"))
            .args(["check", "--locked", "--offline", "--quiet"])
            .env("CARGO_TARGET_DIR", root.join("target/fileset-check"))
            .current_dir(tree.path()),
    );
    assert!(
        out.status.success(),
        "the crate doesn't compile from package.nix's fileset {entries:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
