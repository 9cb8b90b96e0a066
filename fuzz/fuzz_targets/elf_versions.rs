#![no_main]
//! The module ELF reader (__versions, .modinfo): never panics on any bytes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = rdma_nix::kernel::module::parse(data) {
        let _ = m.vermagic_flags();
    }
});
