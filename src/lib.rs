//! rdma-nix: reads upstream RDMA sources and kernel packages and emits Nix.

pub mod archive;
pub mod cli;
pub mod debian;
pub mod emit;
pub mod fetch;
pub mod kernel;
pub mod manifest;
pub mod nix;
pub mod pin;
pub mod rdma_core;
pub mod report;
pub mod update;
