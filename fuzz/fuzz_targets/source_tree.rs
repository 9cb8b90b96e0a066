#![no_main]
//! The source-tree reader (a tar stream, top directory stripped, NAR-hashed): never
//! panics, bounded by its input.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.tar");
    if let Ok(tree) = rdma_nix::archive::tree::SourceTree::from_tar(data, path) {
        let _ = tree.nar_hash();
        for f in tree.files() {
            let _ = tree.read_file(&f, 1 << 20);
        }
    }
});
