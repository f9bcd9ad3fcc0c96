//! `X-B3-*` headers: the input is split on newlines into the five header values (an empty
//! line leaves that header out); extraction never panics, and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_propagation::B3;
use stitch_propagation::b3::MULTI_HEADERS;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let headers: Vec<(String, String)> = MULTI_HEADERS
        .iter()
        .zip(text.split('\n'))
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
        .collect();
    if let Ok(Some(b3)) = B3::extract_multi(&headers) {
        let mut out: Vec<(String, String)> = Vec::new();
        b3.inject_multi(&mut out);
        assert_eq!(B3::extract_multi(&out), Ok(Some(b3)));
    }
});
