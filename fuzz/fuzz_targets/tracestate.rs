//! `tracestate`: parsing never panics; a parsed list respects the limits and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_propagation::TraceState;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let strict = TraceState::parse_strict(text);
    if let Ok(ts) = TraceState::parse(text) {
        assert!(ts.len() <= 32);
        let formatted = ts.to_string();
        assert_eq!(TraceState::parse_strict(&formatted).as_ref(), Ok(&ts));
        if let Ok(strict) = strict {
            assert_eq!(strict, ts);
        }
        let mut truncated = ts.clone();
        truncated.truncate_to_len(text.len() / 2);
        assert!(truncated.to_string().len() <= text.len() / 2);
    } else {
        assert!(strict.is_err());
    }
});
