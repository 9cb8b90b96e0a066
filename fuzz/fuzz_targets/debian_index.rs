#![no_main]
//! The Packages index reader and the resolver over what it read: never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut index = rdma_nix::debian::index::Index::default();
    if index.add(data, "fuzz", "amd64").is_ok() {
        let roots: Vec<_> = index
            .packages
            .keys()
            .take(4)
            .map(|n| rdma_nix::debian::index::Rel {
                name: n.clone(),
                arch: None,
                constraint: None,
            })
            .collect();
        let _ = rdma_nix::debian::resolve::resolve(&index, &roots, true);
    }
});
