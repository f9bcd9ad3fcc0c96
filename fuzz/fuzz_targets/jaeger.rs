//! `uber-trace-id` and `uberctx-*`: parsing never panics, and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_propagation::{JaegerContext, jaeger};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ctx) = JaegerContext::parse(text) {
        assert_eq!(JaegerContext::parse(&ctx.to_string()), Ok(ctx));
    }
    let headers = vec![("uberctx-key".to_owned(), text.to_owned())];
    let bag = jaeger::extract_baggage(&headers);
    let mut out: Vec<(String, String)> = Vec::new();
    jaeger::inject_baggage(&bag, &mut out);
    assert_eq!(jaeger::extract_baggage(&out), bag);
});
