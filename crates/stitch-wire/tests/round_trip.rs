//! Property tests: lossless conversions, agreement of the two decoders, and no panics.

mod common;

use proptest::prelude::*;
use serde_json::Value;
use stitch_model::Batch;
use stitch_wire::otlp::{self, proto};
use stitch_wire::{Decoded, otlp_json};

fn accepted(batch: &Batch) -> Decoded {
    Decoded {
        batch: batch.clone(),
        rejected_spans: 0,
        error_message: String::new(),
    }
}

/// Replaces the `n`-th value of `doc` (in depth-first order, counting every node) with `with`.
/// Returns whether a replacement happened.
fn replace_nth(doc: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *doc = with.clone();
        return true;
    }
    *n -= 1;
    match doc {
        Value::Array(items) => items.iter_mut().any(|item| replace_nth(item, n, with)),
        Value::Object(fields) => fields.values_mut().any(|v| replace_nth(v, n, with)),
        _ => false,
    }
}

fn odd_json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,6}".prop_map(Value::String),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!([1, "x"])),
        Just(serde_json::json!({"stringValue": "x", "intValue": 1})),
        Just(Value::String("NaN".into())),
        Just(Value::String("0000000000000000".into())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn model_to_protobuf_and_back_is_the_identity(batch in common::batch()) {
        prop_assert_eq!(otlp::from_proto(otlp::to_proto(&batch)), accepted(&batch));
    }

    #[test]
    fn model_to_protobuf_bytes_and_back_is_the_identity(batch in common::batch()) {
        let decoded = otlp::decode_export_request(&otlp::encode_batch(&batch)).unwrap();
        prop_assert_eq!(decoded, accepted(&batch));
    }

    #[test]
    fn canonical_protobuf_to_model_and_back_is_the_identity(batch in common::batch()) {
        let request = otlp::to_proto(&batch);
        let again = otlp::to_proto(&otlp::from_proto(request.clone()).batch);
        prop_assert_eq!(again, request);
    }

    #[test]
    fn model_to_json_and_back_is_the_identity(batch in common::batch()) {
        let decoded = otlp_json::decode_export_request(&otlp_json::encode_json(&batch)).unwrap();
        prop_assert_eq!(decoded, accepted(&batch));
    }

    #[test]
    fn json_encoding_is_stable_through_a_decode(batch in common::batch()) {
        let json = otlp_json::encode_json(&batch);
        let decoded = otlp_json::decode_export_request(&json).unwrap();
        prop_assert_eq!(otlp_json::encode_json(&decoded.batch), json);
    }

    #[test]
    fn rejected_spans_are_counted_and_the_rest_kept_in_both_formats(
        batch in common::batch(),
        corrupt in proptest::collection::vec(any::<bool>(), 0..40),
    ) {
        // Empty the trace id of the spans picked by `corrupt`, in protobuf and in JSON.
        let mut request = otlp::to_proto(&batch);
        let mut json: Value = serde_json::from_slice(&otlp_json::encode_json(&batch)).unwrap();
        let mut expected = batch.clone();
        let mut n = 0usize;
        let mut rejected = 0u64;
        for (ri, rs) in request.resource_spans.iter_mut().enumerate() {
            for (si, ss) in rs.scope_spans.iter_mut().enumerate() {
                for (i, span) in ss.spans.iter_mut().enumerate() {
                    if corrupt.get(n).copied().unwrap_or(false) {
                        span.trace_id.clear();
                        json["resourceSpans"][ri]["scopeSpans"][si]["spans"][i]["traceId"] =
                            Value::String(String::new());
                        rejected += 1;
                    }
                    n += 1;
                }
            }
        }
        let mut n = 0usize;
        for rs in &mut expected.resource_spans {
            for ss in &mut rs.scope_spans {
                ss.spans.retain(|_| {
                    let keep = !corrupt.get(n).copied().unwrap_or(false);
                    n += 1;
                    keep
                });
            }
            rs.scope_spans.retain(|ss| !ss.spans.is_empty());
        }
        expected.resource_spans.retain(|rs| !rs.scope_spans.is_empty());

        let from_proto = otlp::from_proto(request);
        let from_json = otlp_json::from_value(json).unwrap();
        prop_assert_eq!(from_proto.rejected_spans, rejected);
        prop_assert_eq!(&from_proto.batch, &expected);
        prop_assert_eq!(rejected == 0, from_proto.error_message.is_empty());
        if rejected > 0 {
            prop_assert!(from_proto.error_message.contains("trace id must be 16 bytes, got 0"));
        }
        prop_assert_eq!(from_json, from_proto);
    }

    #[test]
    fn arbitrary_bytes_never_panic_either_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = otlp::decode_export_request(&bytes);
        let _ = otlp_json::decode_export_request(&bytes);
    }

    #[test]
    fn corrupted_protobuf_never_panics(
        batch in common::batch(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = otlp::encode_batch(&batch);
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = otlp::decode_export_request(&bytes);
    }

    #[test]
    fn json_with_any_value_replaced_never_panics(
        batch in common::batch(),
        at in 0usize..400,
        with in odd_json_value(),
    ) {
        let mut doc: Value = serde_json::from_slice(&otlp_json::encode_json(&batch)).unwrap();
        let mut n = at;
        replace_nth(&mut doc, &mut n, &with);
        match otlp_json::from_value(doc) {
            Ok(decoded) => prop_assert!(decoded.batch.span_count() <= batch.span_count()),
            Err(error) => {
                let text = error.to_string();
                prop_assert!(text.starts_with(|c: char| c.is_lowercase()), "{}", text);
                prop_assert!(!text.ends_with('.'), "{}", text);
            }
        }
    }
}

#[test]
fn trace_to_proto_and_trace_to_json_describe_the_same_groups() {
    let span = common::simple_span(1);
    let mut trace = stitch_model::Trace::new(span.trace_id);
    trace.extend(vec![stitch_model::ResourceSpans {
        resource: Default::default(),
        scope_spans: vec![stitch_model::ScopeSpans {
            scope: Default::default(),
            spans: vec![span],
        }],
    }]);
    let data: proto::trace::TracesData = otlp::trace_to_proto(&trace);
    assert_eq!(data.resource_spans.len(), 1);
    let json = otlp_json::trace_to_json(&trace);
    let decoded = otlp_json::from_value(json).unwrap();
    assert_eq!(decoded.batch.resource_spans, trace.resource_spans);
}
