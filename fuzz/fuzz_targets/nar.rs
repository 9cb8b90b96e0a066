#![no_main]
//! The NAR reader: never panics, bounded by its input.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut files = 0u64;
    let _ = rdma_nix::nix::nar::NarReader::new(data).read_all(&mut |_| files += 1, &mut |_| {});
});
