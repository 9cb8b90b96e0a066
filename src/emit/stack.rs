//! The files generated from `stack.toml`: pinned Debian inputs and the kernel list.

use super::nix_expr::Value;
use super::GeneratedFile;
use crate::manifest::Manifest;

/// Where generated files live, relative to the repository root.
pub const GENERATED_DIR: &str = "pkgs/generated";

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

pub fn kernels(m: &Manifest, source: &str) -> GeneratedFile {
    let body = Value::attrs(m.kernels.iter().map(|k| {
        (
            k.name.clone(),
            Value::attrs([
                ("image", Value::str(&k.image)),
                ("headers", Value::str(&k.headers)),
                ("headersCommon", Value::str(&k.headers_common)),
                ("kbuild", Value::str(&k.kbuild)),
            ]),
        )
    }));
    GeneratedFile::nix(
        format!("{GENERATED_DIR}/kernels.nix"),
        source,
        &body.render(),
    )
}

/// Everything `rdma-nix generate` writes for a manifest.
pub fn all(m: &Manifest, source: &str) -> Vec<GeneratedFile> {
    vec![debian_inputs(m, source), kernels(m, source)]
}
