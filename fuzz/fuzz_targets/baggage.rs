//! `baggage`: parsing never panics; what parses formats to ASCII that parses back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_propagation::Baggage;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lenient = Baggage::parse_lenient(text);
    let formatted = lenient.to_string();
    assert!(formatted.is_ascii());
    assert_eq!(Baggage::parse(&formatted).as_ref(), Ok(&lenient));
    if let Ok(strict) = Baggage::parse(text) {
        assert_eq!(strict, lenient);
    }
});
