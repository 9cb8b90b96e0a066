//! Kernels: Debian kernel packages and headers trees (config, Module.symvers), kernel
//! modules (ELF `__versions`, vermagic) and the kABI decision between them.

pub mod config;
pub mod inspect;
pub mod kabi;
pub mod module;
pub mod source;
pub mod symvers;
