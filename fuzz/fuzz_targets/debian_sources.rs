#![no_main]
//! The Sources index reader (upstream releases of rdma-core and perftest): never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(found) =
        rdma_nix::debian::sources::parse(data, "fuzz", &["rdma-core", "perftest"])
    {
        for r in &found {
            let _ = r.upstream();
        }
        let _ = rdma_nix::debian::sources::newest(&found, "rdma-core");
    }
});
