//! Zipkin span lists (v2 JSON, v2 protobuf, v1 JSON): decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_wire::zipkin;

fuzz_target!(|data: &[u8]| {
    for decoded in [
        zipkin::decode_v2_json(data).ok(),
        zipkin::decode_v2_proto(data).ok(),
        zipkin::decode_v1_json(data).ok(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(decoded.rejected_spans > 0 || decoded.error_message.is_empty());
    }
});
