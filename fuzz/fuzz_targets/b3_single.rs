//! `b3` single header: parsing never panics, and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_propagation::B3;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(b3) = B3::parse_single(text) {
        assert_eq!(B3::parse_single(&b3.to_string()), Ok(b3));
    }
});
