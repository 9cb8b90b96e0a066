#![no_main]
//! The ar (.deb container) reader: never panics; members never read past the input.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut total = 0u64;
    let _ = rdma_nix::archive::ar::for_each_member(data, |_name, size, r| {
        let n = std::io::copy(r, &mut std::io::sink())?;
        assert!(n <= size);
        total += n;
        Ok(true)
    });
    assert!(total <= data.len() as u64);
});
