//! The composite propagator over arbitrary headers: the input is a list of `name: value`
//! lines. Extraction never panics; an extracted context survives inject + extract in every
//! format, and baggage survives W3C injection; translation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_propagation::{Format, Propagator, translate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let headers: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let found = Propagator::default().extract(&headers);
    if let Some(ctx) = &found.context {
        for format in [
            Format::TraceContext,
            Format::B3Single,
            Format::B3Multi,
            Format::Jaeger,
        ] {
            let mut out: Vec<(String, String)> = Vec::new();
            Propagator::default()
                .with_inject(&[format, Format::Baggage])
                .inject(ctx, &found.baggage, &mut out);
            let again = Propagator::default().extract(&out);
            assert_eq!(again.source, Some(format));
            let got = again.context.expect("an injected context extracts");
            assert_eq!((got.trace_id, got.span_id), (ctx.trace_id, ctx.span_id));
            assert_eq!(again.baggage, found.baggage);
        }
    }
    let _ = translate(&headers, &Format::ALL);
});
