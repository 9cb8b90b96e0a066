#![no_main]
//! Kernel .config: never panics.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = rdma_nix::kernel::config::KernelConfig::parse(text) {
            let _ = c.state("RDMA_RXE");
        }
    }
});
