//! Kernels: Debian kernel packages and headers trees (config, Module.symvers), kernel
//! sources (their RDMA drivers from Kconfig and Kbuild files), kernel modules (ELF
//! `__versions`, vermagic) and the kABI decision between them.

pub mod config;
pub mod drivers;
pub mod inspect;
pub mod kabi;
pub mod kbuild;
pub mod kconfig;
pub mod module;
pub mod restore;
pub mod source;
pub mod symvers;
