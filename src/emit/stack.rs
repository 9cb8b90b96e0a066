//! The files generated from the lock's pins: Debian inputs, the bootstrap, perftest's
//! source and the kernel list.

use super::nix_expr::Value;
use super::{GeneratedFile, GENERATED_DIR};
use crate::manifest::{Manifest, PERFTEST_PIN};

pub fn debian_inputs(m: &Manifest, source: &str) -> GeneratedFile {
    let body = Value::attrs(m.debian.packages.iter().map(|p| {
        (
            p.name.clone(),
            Value::attrs([
                ("pname", Value::str(&p.name)),
                ("version", Value::str(&p.version)),
                ("name", Value::str(p.store_name())),
                ("url", Value::str(format!("mirror://debian/{}", p.path))),
                ("hash", Value::str(p.hash().to_sri())),
            ]),
        )
    }));
    GeneratedFile::nix(
        format!("{GENERATED_DIR}/debian-inputs.nix"),
        source,
        &body.render(),
    )
}

/// perftest's source (`pkgs/perftest/package.nix` reads it): the tree of the lock's
/// perftest pin, upstream's URLs first, then Debian's copy; `null` without the pin.
pub fn perftest(m: &Manifest, source: &str) -> GeneratedFile {
    let body = match m.package(PERFTEST_PIN) {
        Some(p) if p.tree_hash().is_some() => Value::attrs([
            ("version", Value::str(&p.version)),
            (
                "urls",
                Value::strs(
                    p.upstream
                        .iter()
                        .cloned()
                        .chain([format!("mirror://debian/{}", p.path)]),
                ),
            ),
            ("hash", Value::str(p.tree_hash().expect("some").to_sri())),
        ]),
        _ => Value::Null,
    };
    GeneratedFile::nix(
        format!("{GENERATED_DIR}/perftest.nix"),
        source,
        &body.render(),
    )
}

/// The bootstrap executable's pin (`null` when the manifest has none).
pub fn bootstrap(m: &Manifest, source: &str) -> GeneratedFile {
    let body = match &m.bootstrap {
        None => Value::Null,
        Some(b) => Value::attrs([
            ("name", Value::str(&b.name)),
            ("package", Value::str(&b.package)),
            ("file", Value::str(&b.file)),
            ("hash", Value::str(b.nar_hash().to_sri())),
        ]),
    };
    GeneratedFile::nix(
        format!("{GENERATED_DIR}/bootstrap.nix"),
        source,
        &body.render(),
    )
}

pub fn kernels(m: &Manifest, source: &str) -> GeneratedFile {
    let body = Value::attrs(m.kernels.iter().map(|k| {
        (
            k.name.clone(),
            Value::attrs([
                ("root", Value::str(&k.root)),
                ("image", Value::str(&k.image)),
                (
                    "imageParts",
                    Value::List(k.image_parts.iter().map(Value::str).collect()),
                ),
                ("headers", Value::str(&k.headers)),
                ("headersCommon", Value::str(&k.headers_common)),
                ("kbuild", Value::str(&k.kbuild)),
                (
                    "rdmaInTree",
                    Value::List(k.rdma_in_tree.iter().map(Value::str).collect()),
                ),
                ("moduleSource", {
                    let ks = m.kernel_source(&k.module_source).expect("validated");
                    Value::attrs([
                        ("name", Value::str(&ks.name)),
                        ("package", Value::str(&ks.package)),
                        (
                            "subdirs",
                            Value::List(ks.subdirs.iter().map(Value::str).collect()),
                        ),
                        ("hash", Value::str(ks.nar_hash().to_sri())),
                    ])
                }),
            ]),
        )
    }));
    GeneratedFile::nix(
        format!("{GENERATED_DIR}/kernels.nix"),
        source,
        &body.render(),
    )
}
