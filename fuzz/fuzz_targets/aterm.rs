#![no_main]
//! The .drv (ATerm) parser: never panics; what it accepts prints to text that parses
//! back to the same derivation.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(drv) = rdma_nix::nix::derivation::Derivation::parse(text) {
            let printed = drv.to_aterm();
            let again = rdma_nix::nix::derivation::Derivation::parse(&printed)
                .expect("the printer's output parses");
            assert_eq!(again.to_aterm(), printed, "print ∘ parse is stable");
        }
    }
});
