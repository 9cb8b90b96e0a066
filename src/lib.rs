//! rdma-nix: reads upstream RDMA sources and kernel packages and emits Nix.

pub mod cli;
pub mod emit;
pub mod fetch;
pub mod manifest;
pub mod nix;
