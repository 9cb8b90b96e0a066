#![no_main]
//! The CMake reader rdma-core scanning uses: never panics.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rdma_nix::rdma_core::cmake::parse(text);
    }
});
