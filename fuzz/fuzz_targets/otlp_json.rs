//! OTLP/JSON export requests: decoding (duplicate keys refused) never panics, and what decodes
//! encodes to a document that decodes to the same spans (compared as their encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stitch_wire::otlp_json;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = otlp_json::decode_export_request(data) else {
        return;
    };
    let encoded = otlp_json::encode_json(&decoded.batch);
    let again =
        otlp_json::decode_export_request(&encoded).expect("a document Stitch wrote decodes");
    assert_eq!(again.rejected_spans, 0, "every span Stitch kept is valid");
    assert_eq!(otlp_json::encode_json(&again.batch), encoded);
});
