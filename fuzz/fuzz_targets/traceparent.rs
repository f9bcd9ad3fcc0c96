//! `traceparent`: parsing never panics, and whatever parses formats to a canonical version-00
//! value that parses back to the same context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_propagation::TraceParent;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tp) = TraceParent::parse(text) {
        assert!(tp.is_valid());
        let formatted = tp.to_string();
        assert_eq!(formatted.len(), 55);
        assert_eq!(TraceParent::parse(&formatted), Ok(tp));
    }
});
