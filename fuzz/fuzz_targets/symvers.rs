#![no_main]
//! Module.symvers: never panics.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rdma_nix::kernel::symvers::Symvers::parse(data);
});
