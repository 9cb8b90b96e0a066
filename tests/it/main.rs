//! The integration tests, one binary with a module per area (as ripgrep has them).
//! Tests that need Nix, QEMU, apt or the fetched inputs are `#[ignore]`d with what
//! they need: a plain `cargo test` says "ignored" for them, never "ok", and the
//! README's test command (scripts/test) runs every one with `--include-ignored`,
//! after installing what they need; there a missing tool or input fails the test.

mod common;

mod bad_input;
mod debian_index;
mod generate_faults;
mod generated;
mod kernel_inspect;
mod kernel_modules;
mod nix_parity;
mod nix_style;
mod nixos_module;
mod offline_platform;
mod package_fileset;
mod rdma_core;
mod scripts;
mod source_tree;
mod suite_runner;
mod update;
mod vm_checks;
