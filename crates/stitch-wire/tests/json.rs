//! OTLP/JSON decoding, validation and encoding.

mod common;

use serde_json::{Value, json};
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanId, SpanKind, Status, StatusCode, TraceId,
};
use stitch_wire::otlp_json::{self, JsonError};
use stitch_wire::{Decoded, otlp};

use common::{PARENT_HEX, SPAN_HEX, TRACE_HEX};

fn decode(doc: &Value) -> Decoded {
    otlp_json::decode_export_request(doc.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{doc}: {e}"))
}

fn decode_err(doc: &str) -> JsonError {
    match otlp_json::decode_export_request(doc.as_bytes()) {
        Ok(decoded) => panic!("{doc} decoded: {decoded:?}"),
        Err(e) => e,
    }
}

/// A request with one resource and one scope holding `spans`.
fn doc_with_spans(spans: Vec<Value>) -> Value {
    json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
}

fn minimal_span() -> Value {
    json!({
        "traceId": TRACE_HEX,
        "spanId": SPAN_HEX,
        "name": "op",
        "startTimeUnixNano": "10",
        "endTimeUnixNano": "20"
    })
}

/// The only span of a decoded document that must not reject anything.
fn only_span(doc: &Value) -> Span {
    let decoded = decode(doc);
    assert_eq!(decoded.rejected_spans, 0, "{}", decoded.error_message);
    let spans: Vec<Span> = decoded.batch.spans().map(|s| s.span.clone()).collect();
    assert_eq!(spans.len(), 1);
    spans.into_iter().next().unwrap()
}

/// The value of attribute `a` of a span carrying `value`.
fn attribute_value(value: Value) -> AnyValue {
    let mut span = minimal_span();
    span["attributes"] = json!([{"key": "a", "value": value}]);
    let span = only_span(&doc_with_spans(vec![span]));
    span.attributes[0].value.clone()
}

#[test]
fn a_typical_sdk_document_decodes_into_the_model() {
    let doc = json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}],
                "droppedAttributesCount": 1
            },
            "scopeSpans": [{
                "scope": {"name": "my.library", "version": "1.0.0",
                          "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "x"}}]},
                "spans": [{
                    "traceId": TRACE_HEX,
                    "spanId": SPAN_HEX,
                    "parentSpanId": PARENT_HEX,
                    "traceState": "rojo=1",
                    "flags": 257,
                    "name": "I'm a server span",
                    "startTimeUnixNano": "1544712660000000000",
                    "endTimeUnixNano": "1544712661000000000",
                    "kind": 2,
                    "attributes": [
                        {"key": "my.span.attr", "value": {"stringValue": "some value"}},
                        {"key": "count", "value": {"intValue": "42"}},
                        {"key": "ratio", "value": {"doubleValue": 0.25}},
                        {"key": "ok", "value": {"boolValue": true}}
                    ],
                    "events": [{"timeUnixNano": "1544712660500000000", "name": "cache miss"}],
                    "links": [{"traceId": TRACE_HEX, "spanId": PARENT_HEX, "flags": 1}],
                    "droppedLinksCount": 2,
                    "status": {"code": 2, "message": "boom"}
                }],
                "schemaUrl": "https://opentelemetry.io/schemas/1.4.0"
            }],
            "schemaUrl": "https://opentelemetry.io/schemas/1.5.0"
        }]
    });
    let expected = Batch {
        resource_spans: vec![ResourceSpans {
            resource: Resource {
                attributes: vec![KeyValue::new("service.name", "checkout")],
                dropped_attributes_count: 1,
                schema_url: "https://opentelemetry.io/schemas/1.5.0".into(),
            }
            .into(),
            scope_spans: vec![ScopeSpans {
                scope: Scope {
                    name: "my.library".into(),
                    version: "1.0.0".into(),
                    attributes: vec![KeyValue::new("my.scope.attribute", "x")],
                    dropped_attributes_count: 0,
                    schema_url: "https://opentelemetry.io/schemas/1.4.0".into(),
                }
                .into(),
                spans: vec![Span {
                    trace_id: TraceId::from_hex(TRACE_HEX).unwrap(),
                    span_id: SpanId::from_hex(SPAN_HEX).unwrap(),
                    parent_span_id: Some(SpanId::from_hex(PARENT_HEX).unwrap()),
                    trace_state: "rojo=1".into(),
                    flags: 257,
                    name: "I'm a server span".into(),
                    kind: SpanKind::Server,
                    start_time_unix_nano: 1_544_712_660_000_000_000,
                    end_time_unix_nano: 1_544_712_661_000_000_000,
                    attributes: vec![
                        KeyValue::new("my.span.attr", "some value"),
                        KeyValue::new("count", 42i64),
                        KeyValue::new("ratio", 0.25),
                        KeyValue::new("ok", true),
                    ],
                    events: vec![Event {
                        time_unix_nano: 1_544_712_660_500_000_000,
                        name: "cache miss".into(),
                        ..Default::default()
                    }],
                    links: vec![Link {
                        trace_id: TraceId::from_hex(TRACE_HEX).unwrap(),
                        span_id: SpanId::from_hex(PARENT_HEX).unwrap(),
                        flags: 1,
                        ..Default::default()
                    }],
                    dropped_links_count: 2,
                    status: Status {
                        code: StatusCode::Error,
                        message: "boom".into(),
                    },
                    ..Default::default()
                }],
            }],
        }],
    };
    assert_eq!(
        decode(&doc),
        Decoded {
            batch: expected,
            rejected_spans: 0,
            error_message: String::new()
        }
    );
}

#[test]
fn json_with_snake_case_keys_decodes_like_camel_case() {
    let camel = json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "k", "value": {"intValue": "1"}}], "droppedAttributesCount": 1},
            "schemaUrl": "r",
            "scopeSpans": [{
                "scope": {"name": "s", "droppedAttributesCount": 2},
                "schemaUrl": "s",
                "spans": [{
                    "traceId": TRACE_HEX, "spanId": SPAN_HEX, "parentSpanId": PARENT_HEX,
                    "traceState": "t=1", "startTimeUnixNano": "1", "endTimeUnixNano": "2",
                    "droppedAttributesCount": 3, "droppedEventsCount": 4, "droppedLinksCount": 5,
                    "events": [{"timeUnixNano": "1", "droppedAttributesCount": 6}],
                    "links": [{"traceId": TRACE_HEX, "spanId": SPAN_HEX, "traceState": "l=1",
                               "droppedAttributesCount": 7}],
                    "attributes": [
                        {"key": "s", "value": {"stringValue": "x"}},
                        {"key": "b", "value": {"boolValue": true}},
                        {"key": "d", "value": {"doubleValue": 1.5}},
                        {"key": "y", "value": {"bytesValue": "AQI="}},
                        {"key": "a", "value": {"arrayValue": {"values": [{"intValue": "2"}]}}},
                        {"key": "m", "value": {"kvlistValue": {"values": [{"key": "i", "value": {}}]}}}
                    ]
                }]
            }]
        }]
    });
    let snake = json!({
        "resource_spans": [{
            "resource": {"attributes": [{"key": "k", "value": {"int_value": "1"}}], "dropped_attributes_count": 1},
            "schema_url": "r",
            "scope_spans": [{
                "scope": {"name": "s", "dropped_attributes_count": 2},
                "schema_url": "s",
                "spans": [{
                    "trace_id": TRACE_HEX, "span_id": SPAN_HEX, "parent_span_id": PARENT_HEX,
                    "trace_state": "t=1", "start_time_unix_nano": "1", "end_time_unix_nano": "2",
                    "dropped_attributes_count": 3, "dropped_events_count": 4, "dropped_links_count": 5,
                    "events": [{"time_unix_nano": "1", "dropped_attributes_count": 6}],
                    "links": [{"trace_id": TRACE_HEX, "span_id": SPAN_HEX, "trace_state": "l=1",
                               "dropped_attributes_count": 7}],
                    "attributes": [
                        {"key": "s", "value": {"string_value": "x"}},
                        {"key": "b", "value": {"bool_value": true}},
                        {"key": "d", "value": {"double_value": 1.5}},
                        {"key": "y", "value": {"bytes_value": "AQI="}},
                        {"key": "a", "value": {"array_value": {"values": [{"int_value": "2"}]}}},
                        {"key": "m", "value": {"kvlist_value": {"values": [{"key": "i", "value": {}}]}}}
                    ]
                }]
            }]
        }]
    });
    let decoded = decode(&camel);
    assert_eq!(decoded.rejected_spans, 0, "{}", decoded.error_message);
    assert_eq!(decoded.batch.span_count(), 1);
    assert_eq!(decode(&snake), decoded);
    // And the canonical encoding of that batch is the camelCase document (minus nothing).
    assert_eq!(decode(&otlp_json::batch_to_json(&decoded.batch)), decoded);
}

#[test]
fn unknown_keys_are_ignored_at_every_level() {
    let doc = json!({
        "extra": [1, 2],
        "resourceSpans": [{
            "resource": {"entityRefs": [{"type": "service"}], "attributes": []},
            "whatever": null,
            "scopeSpans": [{
                "scope": {"name": "s", "future": {"x": 1}},
                "spans": [{
                    "traceId": TRACE_HEX, "spanId": SPAN_HEX,
                    "startTimeUnixNano": "1", "endTimeUnixNano": "1",
                    "newField": "new",
                    "status": {"code": 0, "deprecatedCode": 1},
                    "attributes": [{"key": "k", "keyStrindex": 3, "value": {"stringValue": "v", "note": 1}}]
                }]
            }]
        }]
    });
    let span = only_span(&doc);
    assert_eq!(span.attributes, vec![KeyValue::new("k", "v")]);
}

#[test]
fn enum_names_are_accepted_as_well_as_numbers() {
    let cases = [
        (
            json!("SPAN_KIND_SERVER"),
            json!("STATUS_CODE_ERROR"),
            SpanKind::Server,
            StatusCode::Error,
        ),
        (
            json!("SPAN_KIND_CONSUMER"),
            json!("STATUS_CODE_OK"),
            SpanKind::Consumer,
            StatusCode::Ok,
        ),
        (
            json!("SPAN_KIND_UNSPECIFIED"),
            json!("STATUS_CODE_UNSET"),
            SpanKind::Unspecified,
            StatusCode::Unset,
        ),
        (json!(3), json!(1), SpanKind::Client, StatusCode::Ok),
        (json!(4.0), json!(2), SpanKind::Producer, StatusCode::Error),
        (
            json!("1"),
            json!("2"),
            SpanKind::Internal,
            StatusCode::Error,
        ),
        (
            Value::Null,
            Value::Null,
            SpanKind::Unspecified,
            StatusCode::Unset,
        ),
    ];
    for (kind, code, expected_kind, expected_code) in cases {
        let mut span = minimal_span();
        span["kind"] = kind.clone();
        span["status"] = json!({"code": code});
        let span = only_span(&doc_with_spans(vec![span]));
        assert_eq!(span.kind, expected_kind, "{kind}");
        assert_eq!(span.status.code, expected_code, "{code}");
    }
}

#[test]
fn array_and_kvlist_values_may_be_empty_objects() {
    assert_eq!(
        attribute_value(json!({"arrayValue": {}})),
        AnyValue::Array(vec![])
    );
    assert_eq!(
        attribute_value(json!({"arrayValue": {"values": []}})),
        AnyValue::Array(vec![])
    );
    assert_eq!(
        attribute_value(json!({"arrayValue": {"values": null}})),
        AnyValue::Array(vec![])
    );
    assert_eq!(
        attribute_value(json!({"kvlistValue": {}})),
        AnyValue::KvList(vec![])
    );
    assert_eq!(
        attribute_value(json!({"kvlistValue": {"values": []}})),
        AnyValue::KvList(vec![])
    );
}

#[test]
fn an_empty_or_null_or_missing_value_is_empty() {
    assert_eq!(attribute_value(json!({})), AnyValue::Empty);
    assert_eq!(attribute_value(Value::Null), AnyValue::Empty);
    assert_eq!(
        attribute_value(json!({"stringValue": null})),
        AnyValue::Empty
    );
    assert_eq!(
        attribute_value(json!({"arrayValue": {"values": [null, {}, {"boolValue": false}]}})),
        AnyValue::Array(vec![
            AnyValue::Empty,
            AnyValue::Empty,
            AnyValue::Bool(false)
        ])
    );
    let mut span = minimal_span();
    span["attributes"] = json!([{"key": "a"}, {"value": {"stringValue": "no key"}}]);
    let span = only_span(&doc_with_spans(vec![span]));
    assert_eq!(
        span.attributes,
        vec![
            KeyValue {
                key: "a".into(),
                value: AnyValue::Empty
            },
            KeyValue::new("", "no key"),
        ]
    );
}

#[test]
fn double_values_accept_numbers_and_the_non_finite_names() {
    let AnyValue::Double(nan) = attribute_value(json!({"doubleValue": "NaN"})) else {
        panic!("not a double");
    };
    assert!(nan.is_nan());
    assert_eq!(
        attribute_value(json!({"doubleValue": "Infinity"})),
        AnyValue::Double(f64::INFINITY)
    );
    assert_eq!(
        attribute_value(json!({"doubleValue": "-Infinity"})),
        AnyValue::Double(f64::NEG_INFINITY)
    );
    assert_eq!(
        attribute_value(json!({"doubleValue": 3})),
        AnyValue::Double(3.0)
    );
    assert_eq!(
        attribute_value(json!({"doubleValue": -2.5e-3})),
        AnyValue::Double(-0.0025)
    );
    assert_eq!(
        attribute_value(json!({"doubleValue": "1.25"})),
        AnyValue::Double(1.25)
    );
    assert_eq!(
        attribute_value(json!({"doubleValue": 0.1})),
        AnyValue::Double(0.1)
    );
}

#[test]
fn non_finite_doubles_are_encoded_as_strings_and_decode_back() {
    let batch = |value: f64| Batch {
        resource_spans: vec![ResourceSpans {
            resource: Default::default(),
            scope_spans: vec![ScopeSpans {
                scope: Default::default(),
                spans: vec![Span {
                    attributes: vec![KeyValue::new("d", value)],
                    ..common::simple_span(1)
                }],
            }],
        }],
    };
    for (value, text) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
    ] {
        let json = otlp_json::batch_to_json(&batch(value));
        assert_eq!(
            json["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][0]["value"],
            json!({"doubleValue": text})
        );
        let decoded = decode(&json);
        let got = &decoded.batch.resource_spans[0].scope_spans[0].spans[0].attributes[0].value;
        match got {
            AnyValue::Double(d) if value.is_nan() => assert!(d.is_nan()),
            AnyValue::Double(d) => assert_eq!(*d, value),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn bytes_values_accept_standard_url_safe_and_unpadded_base64() {
    let expected = AnyValue::Bytes(vec![0xfb, 0xff, 0x01]);
    for text in ["+/8B", "-_8B"] {
        assert_eq!(
            attribute_value(json!({"bytesValue": text})),
            expected,
            "{text}"
        );
    }
    assert_eq!(
        attribute_value(json!({"bytesValue": "+/8="})),
        AnyValue::Bytes(vec![0xfb, 0xff])
    );
    assert_eq!(
        attribute_value(json!({"bytesValue": "+/8"})),
        AnyValue::Bytes(vec![0xfb, 0xff])
    );
    assert_eq!(
        attribute_value(json!({"bytesValue": ""})),
        AnyValue::Bytes(vec![])
    );
}

#[test]
fn null_scalar_fields_mean_their_default() {
    let doc = json!({
        "resourceSpans": [{
            "resource": null,
            "schemaUrl": null,
            "scopeSpans": [{
                "scope": {"name": null, "version": null, "attributes": null, "droppedAttributesCount": null},
                "schemaUrl": null,
                "spans": [{
                    "traceId": TRACE_HEX, "spanId": SPAN_HEX, "parentSpanId": null,
                    "traceState": null, "flags": null, "name": null, "kind": null,
                    "startTimeUnixNano": null, "endTimeUnixNano": null,
                    "attributes": null, "droppedAttributesCount": null,
                    "events": null, "droppedEventsCount": null,
                    "links": null, "droppedLinksCount": null,
                    "status": null
                }]
            }]
        }]
    });
    let decoded = decode(&doc);
    let span = only_span(&doc);
    assert_eq!(
        span,
        Span {
            trace_id: TraceId::from_hex(TRACE_HEX).unwrap(),
            span_id: SpanId::from_hex(SPAN_HEX).unwrap(),
            ..Default::default()
        }
    );
    assert_eq!(
        *decoded.batch.resource_spans[0].resource,
        Resource::default()
    );
    assert_eq!(
        *decoded.batch.resource_spans[0].scope_spans[0].scope,
        Scope::default()
    );
    assert_eq!(decode(&json!({"resourceSpans": null})), Decoded::default());
}

#[test]
fn integers_may_be_strings_or_numbers() {
    let mut span = minimal_span();
    span["startTimeUnixNano"] = json!(1_700_000_000_000_000_000u64);
    span["endTimeUnixNano"] = json!("18446744073709551615");
    span["flags"] = json!("769");
    span["droppedAttributesCount"] = json!(2.0);
    span["attributes"] = json!([
        {"key": "n", "value": {"intValue": -5}},
        {"key": "s", "value": {"intValue": "-9223372036854775808"}},
        {"key": "e", "value": {"intValue": 1e3}}
    ]);
    let span = only_span(&doc_with_spans(vec![span]));
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(span.end_time_unix_nano, u64::MAX);
    assert_eq!(span.flags, 769);
    assert_eq!(span.dropped_attributes_count, 2);
    assert_eq!(
        span.attributes,
        vec![
            KeyValue::new("n", -5i64),
            KeyValue::new("s", i64::MIN),
            KeyValue::new("e", 1000i64),
        ]
    );
}

#[test]
fn hex_ids_are_case_insensitive_and_written_in_lowercase() {
    let mut span = minimal_span();
    span["traceId"] = json!(TRACE_HEX.to_uppercase());
    span["spanId"] = json!("00F067aa0BA902b7");
    let span = only_span(&doc_with_spans(vec![span]));
    assert_eq!(span.trace_id, TraceId::from_hex(TRACE_HEX).unwrap());
    let json = otlp_json::span_to_json(&span);
    assert_eq!(json["traceId"], json!(TRACE_HEX));
    assert_eq!(json["spanId"], json!(SPAN_HEX));
}

#[test]
fn an_empty_or_all_zero_parent_span_id_means_no_parent() {
    for parent in [json!(""), json!("0000000000000000"), Value::Null] {
        let mut span = minimal_span();
        span["parentSpanId"] = parent.clone();
        assert_eq!(
            only_span(&doc_with_spans(vec![span])).parent_span_id,
            None,
            "{parent}"
        );
    }
}

#[test]
fn malformed_documents_are_errors_naming_the_path() {
    let filler = minimal_span().to_string();
    let bad_time = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[]}},{{"spans":[{filler},{filler},{filler},
            {{"traceId":"{TRACE_HEX}","startTimeUnixNano":"abc"}}]}}]}}]}}"#
    );
    let attr = |value: &str| {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"k","value":{value}}}]}}}}]}}"#
        )
    };
    let span_field = |field: &str| {
        format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{field}}}]}}]}}]}}"#)
    };
    let cases: Vec<(String, &str)> = vec![
        ("5".into(), "request body: expected an object, got 5"),
        (
            "[]".into(),
            "request body: expected an object, got an array",
        ),
        (
            r#""resourceSpans""#.into(),
            r#"request body: expected an object, got "resourceSpans""#,
        ),
        ("null".into(), "request body: expected an object, got null"),
        (
            r#"{"resourceSpans": 5}"#.into(),
            "resourceSpans: expected an array, got 5",
        ),
        (
            r#"{"resourceSpans": {}}"#.into(),
            "resourceSpans: expected an array, got an object",
        ),
        (
            r#"{"resource_spans": true}"#.into(),
            "resource_spans: expected an array, got true",
        ),
        (
            r#"{"resourceSpans": [null]}"#.into(),
            "resourceSpans[0]: expected an object, got null",
        ),
        (
            r#"{"resourceSpans": [{"resource": []}]}"#.into(),
            "resourceSpans[0].resource: expected an object, got an array",
        ),
        (
            r#"{"resourceSpans": [{"schemaUrl": 1}]}"#.into(),
            "resourceSpans[0].schemaUrl: expected a string, got 1",
        ),
        (
            r#"{"resourceSpans": [{"scopeSpans": [{"spans": "x"}]}]}"#.into(),
            r#"resourceSpans[0].scopeSpans[0].spans: expected an array, got "x""#,
        ),
        (
            r#"{"resourceSpans": [{"scopeSpans": [{"scope": {"version": 2}}]}]}"#.into(),
            "resourceSpans[0].scopeSpans[0].scope.version: expected a string, got 2",
        ),
        (
            bad_time,
            r#"resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano: expected an unsigned 64-bit integer as a string or number, got "abc""#,
        ),
        (
            span_field(r#""startTimeUnixNano": -1"#),
            "spans[0].startTimeUnixNano: expected an unsigned 64-bit integer as a string or number, got -1",
        ),
        (
            span_field(r#""end_time_unix_nano": "1.5""#),
            r#"spans[0].end_time_unix_nano: expected an unsigned 64-bit integer as a string or number, got "1.5""#,
        ),
        (
            span_field(r#""endTimeUnixNano": "18446744073709551616""#),
            "spans[0].endTimeUnixNano: expected an unsigned 64-bit integer",
        ),
        (
            span_field(r#""endTimeUnixNano": 1.5"#),
            "spans[0].endTimeUnixNano: expected an unsigned 64-bit integer as a string or number, got 1.5",
        ),
        (
            span_field(r#""endTimeUnixNano": """#),
            r#"spans[0].endTimeUnixNano: expected an unsigned 64-bit integer as a string or number, got """#,
        ),
        (
            span_field(r#""traceId": 5"#),
            "spans[0].traceId: expected a string, got 5",
        ),
        (
            span_field(r#""span_id": [1]"#),
            "spans[0].span_id: expected a string, got an array",
        ),
        (
            span_field(r#""kind": true"#),
            "spans[0].kind: expected an enum number or name, got true",
        ),
        (
            span_field(r#""kind": 1.5"#),
            "spans[0].kind: expected an enum number or name, got 1.5",
        ),
        (
            span_field(r#""kind": 4294967297"#),
            "spans[0].kind: expected an enum number or name, got 4294967297",
        ),
        (
            span_field(r#""flags": -1"#),
            "spans[0].flags: expected an unsigned 32-bit integer, got -1",
        ),
        (
            span_field(r#""droppedAttributesCount": 4294967296"#),
            "spans[0].droppedAttributesCount: expected an unsigned 32-bit integer, got 4294967296",
        ),
        (
            span_field(r#""status": "ERROR""#),
            r#"spans[0].status: expected an object, got "ERROR""#,
        ),
        (
            span_field(r#""status": {"code": {}}"#),
            "spans[0].status.code: expected an enum number or name, got an object",
        ),
        (
            span_field(r#""status": {"message": false}"#),
            "spans[0].status.message: expected a string, got false",
        ),
        (
            span_field(r#""events": [{"timeUnixNano": "x"}]"#),
            r#"spans[0].events[0].timeUnixNano: expected an unsigned 64-bit integer as a string or number, got "x""#,
        ),
        (
            span_field(r#""links": [{}, {"traceId": 1}]"#),
            "spans[0].links[1].traceId: expected a string, got 1",
        ),
        (
            span_field(r#""attributes": {"k": "v"}"#),
            "spans[0].attributes: expected an array, got an object",
        ),
        (
            span_field(r#""attributes": ["k"]"#),
            r#"spans[0].attributes[0]: expected an object, got "k""#,
        ),
        (
            span_field(r#""attributes": [{"key": 1}]"#),
            "spans[0].attributes[0].key: expected a string, got 1",
        ),
        (
            attr(r#"{"intValue": "1.5"}"#),
            r#"resourceSpans[0].resource.attributes[0].value.intValue: expected a signed 64-bit integer as a string or number, got "1.5""#,
        ),
        (
            attr(r#"{"intValue": "9223372036854775808"}"#),
            "value.intValue: expected a signed 64-bit integer",
        ),
        (
            attr(r#"{"int_value": true}"#),
            "value.int_value: expected a signed 64-bit integer as a string or number, got true",
        ),
        (
            attr(r#""plain string""#),
            r#"resourceSpans[0].resource.attributes[0].value: expected an object, got "plain string""#,
        ),
        (
            attr(r#"{"boolValue": "true"}"#),
            r#"value.boolValue: expected a boolean, got "true""#,
        ),
        (
            attr(r#"{"stringValue": 5}"#),
            "value.stringValue: expected a string, got 5",
        ),
        (
            attr(r#"{"doubleValue": "abc"}"#),
            r#"value.doubleValue: expected a number or one of "NaN", "Infinity", "-Infinity", got "abc""#,
        ),
        (
            attr(r#"{"doubleValue": true}"#),
            "value.doubleValue: expected a number or one of",
        ),
        (
            attr(r#"{"bytesValue": "!!"}"#),
            r#"value.bytesValue: expected base64 text, got "!!""#,
        ),
        (
            attr(r#"{"bytesValue": 12}"#),
            "value.bytesValue: expected base64 text, got 12",
        ),
        (
            attr(r#"{"arrayValue": []}"#),
            "value.arrayValue: expected an object, got an array",
        ),
        (
            attr(r#"{"arrayValue": {"values": {}}}"#),
            "value.arrayValue.values: expected an array, got an object",
        ),
        (
            attr(r#"{"arrayValue": {"values": [{"intValue": "x"}]}}"#),
            r#"value.arrayValue.values[0].intValue: expected a signed 64-bit integer as a string or number, got "x""#,
        ),
        (
            attr(r#"{"kvlistValue": {"values": [{"key": "a", "value": 3}]}}"#),
            "value.kvlistValue.values[0].value: expected an object, got 3",
        ),
        (
            attr(r#"{"stringValue": "x", "intValue": "1"}"#),
            "resourceSpans[0].resource.attributes[0].value: expected at most one value field, got stringValue and intValue",
        ),
        (
            attr(r#"{"string_value": "x", "bytesValue": ""}"#),
            "value: expected at most one value field, got string_value and bytesValue",
        ),
    ];
    for (doc, expected) in cases {
        let error = decode_err(&doc);
        let text = error.to_string();
        assert!(
            text.contains(expected),
            "{doc}\n  got:      {text}\n  expected: {expected}"
        );
        assert!(!text.ends_with('.'), "{text}");
        assert!(matches!(error, JsonError::Invalid { .. }), "{error:?}");
    }
}

#[test]
fn the_error_path_is_available_as_a_field() {
    let error = decode_err(r#"{"resourceSpans": [{"scopeSpans": 1}]}"#);
    assert_eq!(
        error,
        JsonError::Invalid {
            path: "resourceSpans[0].scopeSpans".into(),
            message: "expected an array, got 1".into()
        }
    );
}

#[test]
fn long_strings_are_shortened_in_error_messages() {
    let long = "x".repeat(500);
    let text = decode_err(&format!(
        r#"{{"resourceSpans": [{{"schemaUrl": {{}}, "resource": "{long}"}}]}}"#
    ))
    .to_string();
    assert!(text.len() < 120, "{text}");
    assert!(text.ends_with(r#"xxx...""#), "{text}");
}

#[test]
fn text_that_is_not_json_is_a_syntax_error() {
    for doc in ["", "{", "not json", r#"{"resourceSpans": [}"#, "\u{feff}{}"] {
        let error = decode_err(doc);
        assert!(matches!(error, JsonError::Syntax(_)), "{doc:?}: {error:?}");
        assert!(
            error
                .to_string()
                .starts_with("request body is not valid json: "),
            "{error}"
        );
    }
    let error = otlp_json::decode_export_request(&[b'{', 0xff, b'}']).unwrap_err();
    assert!(matches!(error, JsonError::Syntax(_)));
}

#[test]
fn deeply_nested_values_are_an_error_not_a_crash() {
    let depth = 10_000;
    let doc = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"k","value":{}{}}}]}}}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(depth),
        "]}}".repeat(depth)
    );
    assert!(matches!(decode_err(&doc), JsonError::Syntax(_)));
}

#[test]
fn an_empty_object_is_an_empty_request() {
    assert_eq!(decode(&json!({})), Decoded::default());
    assert_eq!(decode(&json!({"resourceSpans": []})), Decoded::default());
    assert_eq!(
        decode(&json!({"resourceSpans": [{}, {"scopeSpans": [{}, {"spans": []}]}]})),
        Decoded::default()
    );
}

#[test]
fn invalid_spans_in_json_are_rejected_with_the_field_and_position_named() {
    let zero_trace = "0".repeat(32);
    let cases: Vec<(Value, String)> = vec![
        (
            json!({"traceId": ""}),
            "trace id must be 16 bytes, got 0".into(),
        ),
        (
            json!({"traceId": null}),
            "trace id must be 16 bytes, got 0".into(),
        ),
        (
            json!({"traceId": "a3ce929d0e0e4736"}),
            "trace id must be 16 bytes, got 8".into(),
        ),
        (
            json!({"traceId": zero_trace}),
            "trace id is all zeros".into(),
        ),
        (
            json!({"traceId": "xyz"}),
            r#"trace id is not an even number of hex digits: "xyz""#.into(),
        ),
        (
            json!({"traceId": format!("{TRACE_HEX}0")}),
            format!(r#"trace id is not an even number of hex digits: "{TRACE_HEX}0""#),
        ),
        (
            json!({"spanId": "0000000000000000"}),
            "span id is all zeros".into(),
        ),
        (
            json!({"spanId": "abcd"}),
            "span id must be 8 bytes, got 2".into(),
        ),
        (
            json!({"spanId": "g0f067aa0ba902b7"}),
            r#"span id is not an even number of hex digits: "g0f067aa0ba902b7""#.into(),
        ),
        (
            json!({"parentSpanId": "abc"}),
            r#"parent span id is not an even number of hex digits: "abc""#.into(),
        ),
        (
            json!({"parentSpanId": "abcd"}),
            "parent span id must be 8 bytes, got 2".into(),
        ),
        (json!({"kind": 9}), "unknown span kind 9".into()),
        (json!({"kind": -2}), "unknown span kind -2".into()),
        (
            json!({"kind": "SPAN_KIND_NOPE"}),
            r#"unknown span kind name "SPAN_KIND_NOPE""#.into(),
        ),
        (
            json!({"kind": "server"}),
            r#"unknown span kind name "server""#.into(),
        ),
        (
            json!({"status": {"code": 3}}),
            "unknown status code 3".into(),
        ),
        (
            json!({"status": {"code": "STATUS_CODE_FINE"}}),
            r#"unknown status code name "STATUS_CODE_FINE""#.into(),
        ),
        (
            json!({"startTimeUnixNano": "20", "endTimeUnixNano": "10"}),
            "end time 10 is before start time 20".into(),
        ),
        (
            json!({"links": [{"traceId": TRACE_HEX}]}),
            "link 0 span id must be 8 bytes, got 0".into(),
        ),
        (
            json!({"links": [{"traceId": TRACE_HEX, "spanId": SPAN_HEX}, {"traceId": "zz", "spanId": SPAN_HEX}]}),
            r#"link 1 trace id is not an even number of hex digits: "zz""#.into(),
        ),
    ];
    for (change, expected) in cases {
        let mut bad = minimal_span();
        for (key, value) in change.as_object().unwrap() {
            bad[key] = value.clone();
        }
        let mut first = minimal_span();
        first["spanId"] = json!("0000000000000001");
        let doc = json!({"resourceSpans": [
            {"scopeSpans": [{"spans": [first]}]},
            {"scopeSpans": [{"spans": []}, {"spans": [minimal_span(), bad, minimal_span()]}]}
        ]});
        let decoded = decode(&doc);
        assert_eq!(decoded.rejected_spans, 1, "{change}");
        assert_eq!(
            decoded.error_message,
            format!("span 1 in scope 1 of resource 1: {expected}"),
            "{change}"
        );
        assert_eq!(decoded.batch.span_count(), 3, "{change}");
    }
}

#[test]
fn json_and_protobuf_reject_the_same_spans_with_the_same_messages() {
    let mut bad_kind = minimal_span();
    bad_kind["kind"] = json!(7);
    let mut short_id = minimal_span();
    short_id["spanId"] = json!("0102");
    let mut zero_parent = minimal_span();
    zero_parent["parentSpanId"] = json!("0000000000000000");
    let doc = doc_with_spans(vec![bad_kind, minimal_span(), short_id, zero_parent]);
    let from_json = decode(&doc);
    assert_eq!(from_json.rejected_spans, 2);

    let mut request = otlp::to_proto(&Batch::default());
    let mut span = otlp::span_to_proto(&only_span(&doc_with_spans(vec![minimal_span()])));
    request.resource_spans.push(Default::default());
    let scope_spans = &mut request.resource_spans[0].scope_spans;
    scope_spans.push(Default::default());
    span.kind = 7;
    scope_spans[0].spans.push(span.clone());
    span.kind = 0;
    scope_spans[0].spans.push(span.clone());
    span.span_id = vec![1, 2];
    scope_spans[0].spans.push(span.clone());
    span.span_id = SpanId::from_hex(SPAN_HEX).unwrap().0.to_vec();
    span.parent_span_id = vec![0; 8];
    scope_spans[0].spans.push(span);
    let from_proto = otlp::from_proto(request);
    assert_eq!(from_proto, from_json);
    assert_eq!(
        from_json.error_message,
        "span 0 in scope 0 of resource 0: unknown span kind 7; \
         span 2 in scope 0 of resource 0: span id must be 8 bytes, got 2"
    );
}

#[test]
fn the_encoder_writes_canonical_otlp_json() {
    let span = Span {
        trace_id: TraceId::from_hex(TRACE_HEX).unwrap(),
        span_id: SpanId::from_hex(SPAN_HEX).unwrap(),
        parent_span_id: Some(SpanId::from_hex(PARENT_HEX).unwrap()),
        flags: 1,
        name: "op".into(),
        kind: SpanKind::Client,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: 1_544_712_661_000_000_000,
        attributes: vec![
            KeyValue::new("i", i64::MAX),
            KeyValue::new("b", AnyValue::Bytes(vec![1, 2, 3, 4])),
            KeyValue::new("e", AnyValue::Empty),
            KeyValue::new("a", AnyValue::Array(vec![])),
            KeyValue::new("m", AnyValue::KvList(vec![KeyValue::new("x", 1.5)])),
            KeyValue::new("s", ""),
        ],
        events: vec![Event {
            name: "e".into(),
            ..Default::default()
        }],
        links: vec![Link {
            trace_id: TraceId([0xab; 16]),
            span_id: SpanId([0xcd; 8]),
            ..Default::default()
        }],
        status: Status {
            code: StatusCode::Ok,
            message: String::new(),
        },
        ..Default::default()
    };
    let batch = Batch {
        resource_spans: vec![ResourceSpans {
            resource: Resource::default().into(),
            scope_spans: vec![ScopeSpans {
                scope: Scope {
                    name: "lib".into(),
                    ..Default::default()
                }
                .into(),
                spans: vec![span],
            }],
        }],
    };
    let expected = json!({"resourceSpans": [{
        "scopeSpans": [{
            "scope": {"name": "lib"},
            "spans": [{
                "traceId": TRACE_HEX,
                "spanId": SPAN_HEX,
                "parentSpanId": PARENT_HEX,
                "flags": 1,
                "name": "op",
                "kind": 3,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
                "attributes": [
                    {"key": "i", "value": {"intValue": "9223372036854775807"}},
                    {"key": "b", "value": {"bytesValue": "AQIDBA=="}},
                    {"key": "e", "value": {}},
                    {"key": "a", "value": {"arrayValue": {}}},
                    {"key": "m", "value": {"kvlistValue": {"values": [{"key": "x", "value": {"doubleValue": 1.5}}]}}},
                    {"key": "s", "value": {"stringValue": ""}}
                ],
                "events": [{"name": "e"}],
                "links": [{"traceId": "ab".repeat(16), "spanId": "cd".repeat(8)}],
                "status": {"code": 1}
            }]
        }]
    }]});
    assert_eq!(otlp_json::batch_to_json(&batch), expected);
    let bytes = otlp_json::encode_json(&batch);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), expected);
}

#[test]
fn trace_to_json_gives_the_export_request_shape() {
    let trace = stitch_model::Trace::new(TraceId([1; 16]));
    assert_eq!(
        otlp_json::trace_to_json(&trace),
        json!({"resourceSpans": []})
    );
    assert_eq!(
        otlp_json::encode_json(&Batch::default()),
        br#"{"resourceSpans":[]}"#
    );
}

#[test]
fn the_json_export_response_has_partial_success_only_when_needed() {
    assert_eq!(otlp_json::encode_export_response_json(0, ""), b"{}");
    let body: Value = serde_json::from_slice(&otlp_json::encode_export_response_json(
        3,
        "span 0: \"bad\"",
    ))
    .unwrap();
    assert_eq!(
        body,
        json!({"partialSuccess": {"rejectedSpans": "3", "errorMessage": "span 0: \"bad\""}})
    );
    let body: Value =
        serde_json::from_slice(&otlp_json::encode_export_response_json(0, "warning")).unwrap();
    assert_eq!(body, json!({"partialSuccess": {"errorMessage": "warning"}}));
}

#[test]
fn the_json_status_body_has_code_and_message() {
    let body: Value =
        serde_json::from_slice(&otlp_json::encode_status_json(3, "bad \"x\"")).unwrap();
    assert_eq!(body, json!({"code": 3, "message": "bad \"x\""}));
}
