#![no_main]
//! Kconfig and Kbuild files of a kernel source (the driver report): never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rdma_nix::kernel::kconfig::parse(text);
        let _ = rdma_nix::kernel::kbuild::parse(text);
    }
});
