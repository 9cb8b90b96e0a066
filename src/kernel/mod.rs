//! Kernel inspection: Debian kernel packages and headers trees, their config,
//! Module.symvers, and modules' ELF `__versions` (for kABI decisions).

pub mod config;
pub mod inspect;
pub mod symvers;
