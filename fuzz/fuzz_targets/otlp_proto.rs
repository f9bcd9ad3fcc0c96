//! OTLP/protobuf export requests: decoding never panics, and what decodes encodes to a request
//! that decodes to the same spans (compared as their encoding: a NaN attribute is not equal to
//! itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_wire::otlp;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = otlp::decode_export_request(data) else {
        return;
    };
    let encoded = otlp::encode_batch(&decoded.batch);
    let again = otlp::decode_export_request(&encoded).expect("a request Stitch encoded decodes");
    assert_eq!(again.rejected_spans, 0, "every span Stitch kept is valid");
    assert_eq!(otlp::encode_batch(&again.batch), encoded);
});
