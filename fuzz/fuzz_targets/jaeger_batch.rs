//! Jaeger batches (agent UDP compact and binary Thrift, collector HTTP Thrift, the api_v2
//! protobuf of `PostSpans`): decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_wire::jaeger;

fuzz_target!(|data: &[u8]| {
    for decoded in [
        jaeger::decode_agent_compact(data).ok(),
        jaeger::decode_agent_binary(data).ok(),
        jaeger::decode_collector_thrift(data).ok(),
        jaeger::decode_post_spans(data).ok(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(decoded.rejected_spans > 0 || decoded.error_message.is_empty());
    }
});
