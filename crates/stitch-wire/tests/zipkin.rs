//! Zipkin codecs: golden fixtures captured from real Zipkin clients and OpenTelemetry Zipkin
//! exporters (see `tests/fixtures/zipkin/README.md`), a malformed-input table for JSON v2,
//! protobuf and JSON v1, and property tests for model → Zipkin → model.

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanId, SpanKind, Status, StatusCode, TraceId,
};
use stitch_wire::Decoded;
use stitch_wire::zipkin::{
    self, ZipkinError, batch_to_zipkin, encode_spans_json, encode_spans_proto, shared_span_id,
};

const ZIPKIN_JS_V2: &[u8] = include_bytes!("fixtures/zipkin/zipkin-js-v2.json");
const ZIPKIN_JS_V1: &[u8] = include_bytes!("fixtures/zipkin/zipkin-js-v1.json");
const OTEL_JS: &[u8] = include_bytes!("fixtures/zipkin/otel-js-exporter-zipkin.json");
const PYTHON_JSON: &[u8] = include_bytes!("fixtures/zipkin/python-exporter-zipkin-json.json");
const PYTHON_PROTO: &[u8] = include_bytes!("fixtures/zipkin/python-exporter-zipkin-proto.bin");

/// T0 of the zipkin-js captures, in microseconds.
const T0_MICROS: u64 = 1_764_000_000_000_000;

fn ok(d: Result<Decoded, ZipkinError>) -> Decoded {
    let d = d.expect("decodes");
    assert_eq!(d.rejected_spans, 0, "{}", d.error_message);
    d
}

fn s(v: &str) -> AnyValue {
    AnyValue::String(v.to_owned())
}

fn id(hex: &str) -> SpanId {
    SpanId::from_hex(hex).unwrap()
}

/// Spans with their service, sorted by span id, attributes sorted by key.
fn spans(batch: &Batch) -> Vec<(String, Scope, Span)> {
    let mut out: Vec<_> = batch
        .spans()
        .map(|r| {
            let mut span = r.span.clone();
            span.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            (r.service_name().to_owned(), r.scope.clone(), span)
        })
        .collect();
    out.sort_by_key(|(_, _, s)| s.span_id);
    out
}

fn find<'a>(list: &'a [(String, Scope, Span)], hex: &str) -> &'a (String, Scope, Span) {
    list.iter()
        .find(|(_, _, s)| s.span_id == id(hex))
        .unwrap_or_else(|| panic!("span {hex} is missing"))
}

fn attrs(pairs: &[(&str, AnyValue)]) -> Vec<KeyValue> {
    let mut out: Vec<KeyValue> = pairs
        .iter()
        .map(|(k, v)| KeyValue::new(*k, v.clone()))
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn micros(offset_ms: u64) -> u64 {
    (T0_MICROS + offset_ms * 1_000) * 1_000
}

// ---------------------------------------------------------------------------------------------
// Golden fixtures
// ---------------------------------------------------------------------------------------------

/// Checks the known zipkin-js trace (tests/fixtures/zipkin/README.md) in `batch`.
fn check_zipkin_js_trace(batch: &Batch, trace_id: TraceId) {
    let list = spans(batch);
    assert_eq!(list.len(), 5);
    for (_, scope, span) in &list {
        assert_eq!(span.trace_id, trace_id);
        assert_eq!(span.flags, 1);
        assert_eq!(*scope, Scope::default());
    }
    let root = find(&list, "a1b2c3d4e5f60718");
    assert_eq!(root.0, "frontend");
    let r = &root.2;
    assert_eq!(r.name, "get /checkout");
    assert_eq!(r.kind, SpanKind::Server);
    assert_eq!(r.parent_span_id, None);
    assert_eq!(
        (r.start_time_unix_nano, r.end_time_unix_nano),
        (micros(0), micros(250))
    );
    assert_eq!(
        r.attributes,
        attrs(&[
            ("http.method", s("GET")),
            ("http.path", s("/checkout")),
            ("net.host.ip", s("10.0.0.1")),
            ("net.host.port", AnyValue::Int(8080)),
            ("net.peer.ip", s("192.0.2.7")),
            ("net.peer.port", AnyValue::Int(51234)),
        ])
    );
    assert_eq!(
        r.events,
        vec![Event {
            time_unix_nano: micros(5),
            name: "cache.miss".into(),
            ..Default::default()
        }]
    );
    assert_eq!(r.status, Status::default());

    // The client half keeps the shared id.
    let client = list
        .iter()
        .find(|(svc, _, s)| s.span_id == id("53995c3f42cd8ad8") && svc == "frontend")
        .expect("client half");
    let c = &client.2;
    assert_eq!(c.name, "post /charge");
    assert_eq!(c.kind, SpanKind::Client);
    assert_eq!(c.parent_span_id, Some(id("a1b2c3d4e5f60718")));
    assert_eq!(
        (c.start_time_unix_nano, c.end_time_unix_nano),
        (micros(20), micros(200))
    );
    assert_eq!(
        c.attributes,
        attrs(&[
            ("http.method", s("POST")),
            ("http.status_code", s("502")),
            ("peer.service", s("backend")),
            ("net.peer.ip", s("10.0.0.2")),
            ("net.peer.port", AnyValue::Int(9000)),
        ])
    );
    assert_eq!(
        c.status,
        Status {
            code: StatusCode::Error,
            message: "payment declined".into()
        }
    );

    // The server half gets the derived id, under the client half.
    let server_id = shared_span_id(id("53995c3f42cd8ad8"));
    let server = list
        .iter()
        .find(|(_, _, s)| s.span_id == server_id)
        .expect("server half");
    assert_eq!(server.0, "backend");
    let sv = &server.2;
    assert_eq!(sv.kind, SpanKind::Server);
    assert_eq!(sv.parent_span_id, Some(id("53995c3f42cd8ad8")));
    assert_eq!(
        (sv.start_time_unix_nano, sv.end_time_unix_nano),
        (micros(30), micros(190))
    );
    assert_eq!(
        sv.attributes,
        attrs(&[
            ("charge.amount", s("42.50")),
            ("net.host.ip", s("10.0.0.2")),
            ("net.host.port", AnyValue::Int(9000)),
            ("net.peer.ip", s("10.0.0.1")),
            ("net.peer.port", AnyValue::Int(40000)),
        ])
    );
    assert_eq!(sv.events[0].name, "card.authorized");
    assert_eq!(sv.events[0].time_unix_nano, micros(35));
    assert_eq!(
        sv.status,
        Status {
            code: StatusCode::Error,
            message: "card declined".into()
        }
    );

    let db = find(&list, "c0ffee0000000001");
    assert_eq!(db.0, "backend");
    assert_eq!(db.2.kind, SpanKind::Unspecified);
    assert_eq!(db.2.name, "db.query");
    assert_eq!(db.2.parent_span_id, Some(id("53995c3f42cd8ad8")));
    assert_eq!(
        db.2.attributes,
        attrs(&[
            (
                "db.statement",
                s("SELECT balance FROM accounts WHERE id = ?")
            ),
            ("zipkin.debug", AnyValue::Bool(true)),
        ])
    );
    assert_eq!(
        (db.2.start_time_unix_nano, db.2.end_time_unix_nano),
        (micros(40), micros(90))
    );

    let publish = find(&list, "d00d000000000002");
    assert_eq!(publish.0, "backend");
    assert_eq!(publish.2.kind, SpanKind::Producer);
    assert_eq!(
        publish.2.attributes,
        attrs(&[
            ("peer.service", s("kafka")),
            ("net.peer.ip", s("10.0.0.9")),
            ("net.peer.port", AnyValue::Int(9092)),
        ])
    );

    // One resource per local service, each holding only service.name.
    let services: Vec<_> = batch
        .resource_spans
        .iter()
        .map(|rs| rs.resource.attributes.clone())
        .collect();
    assert_eq!(services.len(), 2);
    assert!(services.contains(&vec![KeyValue::new("service.name", "frontend")]));
    assert!(services.contains(&vec![KeyValue::new("service.name", "backend")]));
}

#[test]
fn zipkin_js_v2_json_decodes_into_the_known_trace() {
    let d = ok(zipkin::decode_v2_json(ZIPKIN_JS_V2));
    check_zipkin_js_trace(
        &d.batch,
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
    );
}

#[test]
fn zipkin_js_v1_json_decodes_into_the_same_trace_with_a_64_bit_id() {
    let d = ok(zipkin::decode_v1_json(ZIPKIN_JS_V1));
    check_zipkin_js_trace(&d.batch, TraceId::from_halves(0, 0xa3ce929d0e0e4736));
}

#[test]
fn zipkin_js_round_trips_through_our_zipkin_encoder() {
    // What the query API answers is what the client sent, plus `otel.status_code` where the
    // `error` tag set an error status.
    let d = ok(zipkin::decode_v2_json(ZIPKIN_JS_V2));
    let sent: serde_json::Value = serde_json::from_slice(ZIPKIN_JS_V2).unwrap();
    let back: serde_json::Value =
        serde_json::from_slice(&encode_spans_json(&batch_to_zipkin(&d.batch))).unwrap();
    let key = |v: &serde_json::Value| format!("{}{}", v["id"], v["shared"]);
    let mut sent = sent.as_array().unwrap().clone();
    let mut back = back.as_array().unwrap().clone();
    for span in &mut back {
        if let Some(tags) = span.get_mut("tags").and_then(|t| t.as_object_mut()) {
            assert_eq!(
                tags.remove("otel.status_code").is_some(),
                tags.contains_key("error")
            );
        }
    }
    sent.sort_by_key(key);
    back.sort_by_key(key);
    assert_eq!(sent, back);
}

#[test]
fn opentelemetry_js_zipkin_exporter_decodes() {
    let d = ok(zipkin::decode_v2_json(OTEL_JS));
    assert_eq!(d.batch.resource_spans.len(), 1);
    let resource = &d.batch.resource_spans[0].resource;
    assert_eq!(
        resource.attributes,
        vec![
            KeyValue::new("service.name", "checkout"),
            KeyValue::new("deployment.environment.name", "e2e"),
            KeyValue::new("host.cpu.count", "8"),
            KeyValue::new("service.version", "2.0.1"),
        ]
    );
    let list = spans(&d.batch);
    let root = &find(&list, "00f067aa0ba902b7").2;
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(
        root.attributes,
        attrs(&[
            ("customer.premium", s("true")),
            ("http.request.method", s("GET")),
            ("http.response.status_code", s("500")),
            ("order.skus", s("A-1,B-2")),
            ("order.total", s("299.97")),
        ])
    );
    assert_eq!(
        root.status,
        Status {
            code: StatusCode::Error,
            message: "payment declined".into()
        }
    );
    assert_eq!(root.events[0].name, "inventory_check_passed");
    let call = &find(&list, "53995c3f42cd8ad8").2;
    assert_eq!(call.kind, SpanKind::Client);
    assert_eq!(call.status.code, StatusCode::Ok);
    assert_eq!(call.parent_span_id, Some(id("00f067aa0ba902b7")));
    let inner = &find(&list, "b9c7c989f97918e1").2;
    // The JavaScript exporter writes nothing for INTERNAL.
    assert_eq!(inner.kind, SpanKind::Unspecified);
    assert_eq!(
        (inner.start_time_unix_nano, inner.end_time_unix_nano),
        (micros(21), micros(23))
    );
}

#[test]
fn opentelemetry_python_zipkin_exporters_decode_alike_in_json_and_protobuf() {
    let json = ok(zipkin::decode_v2_json(PYTHON_JSON));
    let proto = ok(zipkin::decode_v2_proto(PYTHON_PROTO));
    // The two captures come from two runs: only the random service.instance.id differs.
    let strip = |b: &Batch| {
        let mut list = spans(b);
        for (_, _, span) in &mut list {
            span.attributes.retain(|kv| kv.key != "zipkin.debug");
        }
        list
    };
    assert_eq!(strip(&json.batch), strip(&proto.batch));
    for d in [&json, &proto] {
        let rs = &d.batch.resource_spans[0];
        let keys: Vec<&str> = rs
            .resource
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "service.name",
                "host.cpu.count",
                "service.instance.id",
                "service.version",
                "telemetry.sdk.language",
                "telemetry.sdk.name",
                "telemetry.sdk.version"
            ]
        );
        assert_eq!(rs.scope_spans[0].scope.name, "stitch-e2e");
        assert_eq!(rs.scope_spans[0].scope.version, "1.2.3");
        let list = spans(&d.batch);
        let root = &find(&list, "00f067aa0ba902b7").2;
        // The specification's annotation format keeps the event's attributes.
        assert_eq!(
            root.events,
            vec![Event {
                time_unix_nano: micros(5),
                name: "inventory_check_passed".into(),
                attributes: vec![KeyValue::new("warehouse", "us-east")],
                dropped_attributes_count: 0,
            }]
        );
        assert_eq!(root.status.message, "payment declined");
        assert_eq!(
            stitch_model::find_attribute(&root.attributes, "order.skus"),
            Some(&s(r#"["A-1","B-2"]"#))
        );
        let call = &find(&list, "53995c3f42cd8ad8").2;
        assert_eq!(call.status.code, StatusCode::Ok);
        assert_eq!(
            stitch_model::find_attribute(&call.attributes, "peer.service"),
            Some(&s("payments"))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Shared spans
// ---------------------------------------------------------------------------------------------

#[test]
fn a_shared_server_span_gets_a_derived_id_and_comes_back_shared() {
    let body = br#"[
      {"traceId":"a3ce929d0e0e4736","id":"0000000000000002","parentId":"1","kind":"CLIENT",
       "name":"call","timestamp":10,"duration":5,"localEndpoint":{"serviceName":"a"}},
      {"traceId":"a3ce929d0e0e4736","id":"0000000000000002","parentId":"1","kind":"SERVER",
       "name":"call","timestamp":11,"duration":3,"localEndpoint":{"serviceName":"b"},"shared":true}
    ]"#;
    let d = ok(zipkin::decode_v2_json(body));
    let list = spans(&d.batch);
    let derived = shared_span_id(SpanId::from_u64(2));
    let server = list.iter().find(|(_, _, s)| s.span_id == derived).unwrap();
    assert_eq!(server.2.parent_span_id, Some(SpanId::from_u64(2)));
    // Decoding the same span again gives the same id, so duplicates still collapse.
    assert_eq!(ok(zipkin::decode_v2_json(body)).batch, d.batch);

    let back: serde_json::Value =
        serde_json::from_slice(&encode_spans_json(&batch_to_zipkin(&d.batch))).unwrap();
    let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
    let norm = |v: &serde_json::Value| {
        let mut v = v.clone();
        for s in v.as_array_mut().unwrap() {
            s["parentId"] = serde_json::json!("0000000000000001");
        }
        v
    };
    assert_eq!(norm(&back), norm(&sent));
    assert_eq!(back[1]["shared"], serde_json::json!(true));
    assert_eq!(back[1]["id"], serde_json::json!("0000000000000002"));
    assert_eq!(back[1]["parentId"], serde_json::json!("0000000000000001"));
}

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

enum Expect {
    /// The body is refused with a message containing this.
    Error(&'static str),
    /// This many spans are rejected, the message containing this; the rest decode.
    Rejected(u64, &'static str),
}

fn check(name: &str, result: Result<Decoded, ZipkinError>, expect: &Expect) {
    match (result, expect) {
        (Err(e), Expect::Error(want)) => {
            assert!(e.to_string().contains(want), "{name}: {e} lacks {want:?}")
        }
        (Ok(d), Expect::Rejected(n, want)) => {
            assert_eq!(d.rejected_spans, *n, "{name}: {}", d.error_message);
            assert!(
                d.error_message.contains(want),
                "{name}: {:?} lacks {want:?}",
                d.error_message
            );
        }
        (Err(e), _) => panic!("{name}: unexpected error {e}"),
        (Ok(d), _) => panic!(
            "{name}: decoded {} spans, rejected {} ({})",
            d.batch.span_count(),
            d.rejected_spans,
            d.error_message
        ),
    }
}

const GOOD: &str = r#"{"traceId":"1","id":"2","timestamp":1}"#;

#[test]
fn malformed_v2_json_is_refused_or_rejected_with_a_precise_reason() {
    let table: &[(&str, &str, Expect)] = &[
        ("not json", "{", Expect::Error("not valid json")),
        (
            "not a list",
            r#"{"spans":[]}"#,
            Expect::Error("request body: expected a list of spans, got an object"),
        ),
        (
            "span not an object",
            "[1]",
            Expect::Error("[0]: expected an object, got 1"),
        ),
        (
            "trace id a number",
            r#"[{"traceId":1,"id":"2"}]"#,
            Expect::Error("[0].traceId: expected a string, got 1"),
        ),
        (
            "negative timestamp",
            r#"[{"traceId":"1","id":"2","timestamp":-5}]"#,
            Expect::Error("[0].timestamp: expected a non-negative number of microseconds, got -5"),
        ),
        (
            "port out of range",
            r#"[{"traceId":"1","id":"2","localEndpoint":{"port":70000}}]"#,
            Expect::Error(
                "[0].localEndpoint.port: expected a port number from 0 to 65535, got 70000",
            ),
        ),
        (
            "tag value an object",
            r#"[{"traceId":"1","id":"2","tags":{"a":{}}}]"#,
            Expect::Error("[0].tags.a: expected a string, number or boolean, got an object"),
        ),
        (
            "annotation without value",
            r#"[{"traceId":"1","id":"2","annotations":[{"timestamp":1}]}]"#,
            Expect::Error("[0].annotations[0].value: is required"),
        ),
        (
            "debug a string",
            r#"[{"traceId":"1","id":"2","debug":"yes"}]"#,
            Expect::Error("[0].debug: expected true or false"),
        ),
        (
            "missing trace id",
            r#"[{"id":"2","timestamp":1}]"#,
            Expect::Rejected(1, "span 0: required field traceId is missing"),
        ),
        (
            "missing id",
            r#"[{"traceId":"1","timestamp":1}]"#,
            Expect::Rejected(1, "span 0: required field id is missing"),
        ),
        (
            "trace id not hex",
            r#"[{"traceId":"xyz","id":"2","timestamp":1}]"#,
            Expect::Rejected(
                1,
                r#"span 0: trace id must be 1 to 32 hex digits, got "xyz""#,
            ),
        ),
        (
            "trace id too long",
            &format!(
                r#"[{{"traceId":"{}","id":"2","timestamp":1}}]"#,
                "a".repeat(33)
            ),
            Expect::Rejected(1, "trace id must be 1 to 32 hex digits"),
        ),
        (
            "span id too long",
            r#"[{"traceId":"1","id":"00000000000000002","timestamp":1}]"#,
            Expect::Rejected(1, "span id must be 1 to 16 hex digits"),
        ),
        (
            "zero trace id",
            r#"[{"traceId":"0000000000000000","id":"2","timestamp":1}]"#,
            Expect::Rejected(1, "trace id is all zeros"),
        ),
        (
            "zero span id",
            r#"[{"traceId":"1","id":"0","timestamp":1}]"#,
            Expect::Rejected(1, "span id is all zeros"),
        ),
        (
            "bad parent",
            r#"[{"traceId":"1","id":"2","parentId":"p","timestamp":1}]"#,
            Expect::Rejected(1, "parent span id must be 1 to 16 hex digits"),
        ),
        (
            "unknown kind",
            r#"[{"traceId":"1","id":"2","kind":"INTERNAL","timestamp":1}]"#,
            Expect::Rejected(1, r#"unknown span kind name "INTERNAL""#),
        ),
        (
            "no time at all",
            r#"[{"traceId":"1","id":"2"}]"#,
            Expect::Rejected(1, "required field timestamp is missing"),
        ),
        (
            "time overflows nanoseconds",
            r#"[{"traceId":"1","id":"2","timestamp":18446744073709552}]"#,
            Expect::Rejected(1, "timestamp 18446744073709552 is out of range"),
        ),
    ];
    for (name, body, expect) in table {
        check(name, zipkin::decode_v2_json(body.as_bytes()), expect);
    }
    // Invalid spans do not take the valid ones with them, and are named by position.
    let body = format!(r#"[{GOOD},{{"traceId":"1","id":"zz","timestamp":1}},{GOOD}]"#);
    let d = zipkin::decode_v2_json(body.as_bytes()).unwrap();
    assert_eq!(d.batch.span_count(), 2);
    assert_eq!(d.rejected_spans, 1);
    assert_eq!(
        d.error_message,
        r#"span 1: span id must be 1 to 16 hex digits, got "zz""#
    );
    // Lenient where Zipkin is: an unparsable IP is dropped, null fields are absent.
    let d = ok(zipkin::decode_v2_json(
        br#"[{"traceId":"1","id":"2","timestamp":1,"kind":null,"localEndpoint":{"serviceName":"s","ipv4":"999.1.1.1"}}]"#,
    ));
    assert!(d.batch.spans().next().unwrap().span.attributes.is_empty());
}

#[test]
fn malformed_protobuf_is_refused_or_rejected_with_a_precise_reason() {
    use prost::Message;
    use zipkin::{ListOfSpans, ProtoSpan};
    let span = |f: &dyn Fn(&mut ProtoSpan)| {
        let mut s = ProtoSpan {
            trace_id: vec![1; 16],
            id: vec![2; 8],
            timestamp: 1,
            ..Default::default()
        };
        f(&mut s);
        ListOfSpans { spans: vec![s] }.encode_to_vec()
    };
    let table: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "garbage",
            vec![0xff, 0xff, 0xff],
            Expect::Error("not a valid zipkin.proto3.ListOfSpans"),
        ),
        (
            "truncated",
            span(&|_| {})[..10].to_vec(),
            Expect::Error("not a valid zipkin.proto3.ListOfSpans"),
        ),
        (
            "trace id 5 bytes",
            span(&|s| s.trace_id = vec![1; 5]),
            Expect::Rejected(1, r#"trace id must be 8 or 16 bytes, got "0101010101""#),
        ),
        (
            "span id 16 bytes",
            span(&|s| s.id = vec![1; 16]),
            Expect::Rejected(1, "span id must be 8 bytes"),
        ),
        (
            "no span id",
            span(&|s| s.id = vec![]),
            Expect::Rejected(1, "required field id is missing"),
        ),
        (
            "zero trace id",
            span(&|s| s.trace_id = vec![0; 8]),
            Expect::Rejected(1, "trace id is all zeros"),
        ),
        (
            "unknown kind",
            span(&|s| s.kind = 9),
            Expect::Rejected(1, "unknown span kind 9"),
        ),
        (
            "no timestamp",
            span(&|s| s.timestamp = 0),
            Expect::Rejected(1, "required field timestamp is missing"),
        ),
    ];
    for (name, body, expect) in &table {
        check(name, zipkin::decode_v2_proto(body), expect);
    }
    // A 64-bit trace id is the low half; an empty list is fine.
    let d = ok(zipkin::decode_v2_proto(&span(&|s| s.trace_id = vec![7; 8])));
    assert_eq!(
        d.batch.spans().next().unwrap().span.trace_id,
        TraceId::from_halves(0, 0x0707070707070707)
    );
    assert_eq!(ok(zipkin::decode_v2_proto(&[])).batch.span_count(), 0);
}

#[test]
fn malformed_v1_json_is_refused_or_rejected_with_a_precise_reason() {
    let table: &[(&str, &str, Expect)] = &[
        (
            "not a list",
            "{}",
            Expect::Error("request body: expected a list of spans"),
        ),
        (
            "binary annotation without key",
            r#"[{"traceId":"1","id":"2","binaryAnnotations":[{"value":"x"}]}]"#,
            Expect::Error("[0].binaryAnnotations[0].key: is required"),
        ),
        (
            "binary value an array",
            r#"[{"traceId":"1","id":"2","binaryAnnotations":[{"key":"k","value":[]}]}]"#,
            Expect::Error("[0].binaryAnnotations[0].value: expected a string, number or boolean"),
        ),
        (
            "bad id",
            r#"[{"traceId":"1","id":"nothex","timestamp":1}]"#,
            Expect::Rejected(1, "span 0: span id must be 1 to 16 hex digits"),
        ),
        (
            "no time",
            r#"[{"traceId":"1","id":"2"}]"#,
            Expect::Rejected(1, "span 0: required field timestamp is missing"),
        ),
    ];
    for (name, body, expect) in table {
        check(name, zipkin::decode_v1_json(body.as_bytes()), expect);
    }
}

#[test]
fn v1_spans_with_both_sides_split_into_client_and_shared_server() {
    let ep = |svc: &str| format!(r#"{{"serviceName":"{svc}","ipv4":"10.0.0.1"}}"#);
    let body = format!(
        r#"[{{"traceId":"1","id":"2","name":"rpc","timestamp":100,"duration":50,
            "annotations":[
              {{"timestamp":100,"value":"cs","endpoint":{a}}},
              {{"timestamp":110,"value":"sr","endpoint":{b}}},
              {{"timestamp":140,"value":"ss","endpoint":{b}}},
              {{"timestamp":150,"value":"cr","endpoint":{a}}}],
            "binaryAnnotations":[{{"key":"sa","value":true,"endpoint":{b}}},
              {{"key":"http.path","value":"/x","endpoint":{b}}}]}}]"#,
        a = ep("a"),
        b = ep("b")
    );
    let d = ok(zipkin::decode_v1_json(body.as_bytes()));
    let list = spans(&d.batch);
    assert_eq!(list.len(), 2);
    let client = find(&list, "0000000000000002");
    assert_eq!(client.0, "a");
    assert_eq!(client.2.kind, SpanKind::Client);
    assert_eq!(
        (client.2.start_time_unix_nano, client.2.end_time_unix_nano),
        (100_000, 150_000)
    );
    assert_eq!(
        stitch_model::find_attribute(&client.2.attributes, "peer.service"),
        Some(&s("b"))
    );
    let server = list
        .iter()
        .find(|(svc, _, _)| svc == "b")
        .expect("server side");
    assert_eq!(server.2.span_id, shared_span_id(SpanId::from_u64(2)));
    assert_eq!(server.2.parent_span_id, Some(SpanId::from_u64(2)));
    assert_eq!(server.2.kind, SpanKind::Server);
    assert_eq!(
        (server.2.start_time_unix_nano, server.2.end_time_unix_nano),
        (110_000, 140_000)
    );
    assert_eq!(
        stitch_model::find_attribute(&server.2.attributes, "http.path"),
        Some(&s("/x"))
    );
}

// ---------------------------------------------------------------------------------------------
// Property: model → Zipkin (JSON and protobuf) → model, for what Zipkin can express
// ---------------------------------------------------------------------------------------------

/// Keys that cannot collide with the keys the mapping gives a meaning to.
fn key() -> impl Strategy<Value = String> {
    "[a-z]{1,6}\\.[a-z]{1,6}".prop_filter("not a reserved or resource key", |k| {
        !zipkin::is_resource_tag(k)
            && !k.starts_with("otel.")
            && !k.starts_with("otlp.")
            && !k.starts_with("net.")
            && !k.starts_with("peer.")
            && !k.starts_with("zipkin.")
            && !k.starts_with("span.")
            && !k.starts_with("w3c.")
            && !zipkin::REMOTE_SERVICE_FALLBACKS.contains(&k.as_str())
    })
}

/// Text that may be anything, including empty.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9 ./:_-]{1,12}",
        any::<String>()
    ]
}

fn unique(mut kvs: Vec<KeyValue>) -> Vec<KeyValue> {
    kvs.sort_by(|a, b| a.key.cmp(&b.key));
    kvs.dedup_by(|a, b| a.key == b.key);
    kvs
}

/// Typed values that JSON carries exactly (event and link attributes).
fn json_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(AnyValue::Empty),
        text().prop_map(AnyValue::String),
        any::<bool>().prop_map(AnyValue::Bool),
        any::<i64>().prop_map(AnyValue::Int),
        (-1e12f64..1e12).prop_map(AnyValue::Double),
    ];
    prop_oneof![
        3 => leaf.clone(),
        1 => vec(leaf, 0..3).prop_map(AnyValue::Array),
    ]
}

fn typed_attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (key(), json_value()).prop_map(|(k, v)| KeyValue::new(k, v)),
        0..3,
    )
    .prop_map(unique)
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string()),
        any::<[u8; 16]>()
            .prop_filter("not IPv4-mapped", |b| std::net::Ipv6Addr::from(*b)
                .to_ipv4_mapped()
                .is_none())
            .prop_map(|b| std::net::Ipv6Addr::from(b).to_string()),
    ]
}

fn nonzero_span_id() -> impl Strategy<Value = SpanId> {
    any::<u64>()
        .prop_filter("valid", |v| *v != 0)
        .prop_map(SpanId::from_u64)
}

fn expressible_span() -> impl Strategy<Value = Span> {
    let ids = (
        prop_oneof![
            any::<u64>()
                .prop_filter("valid", |v| *v != 0)
                .prop_map(|lo| TraceId::from_halves(0, lo)),
            (1..u64::MAX, any::<u64>()).prop_map(|(hi, lo)| TraceId::from_halves(hi, lo)),
        ],
        nonzero_span_id(),
        proptest::option::of(nonzero_span_id()),
    );
    let times = (1..u64::MAX / 2_000_000, 0..1_000_000_000u64);
    let tags = vec((key(), text()).prop_map(|(k, v)| KeyValue::new(k, v)), 0..4).prop_map(unique);
    let endpoints = (
        proptest::option::of(ip()),
        proptest::option::of(1..=65535i64),
        proptest::option::of("[a-z]{1,8}"),
        proptest::option::of(ip()),
        proptest::option::of(1..=65535i64),
        any::<bool>(),
    );
    let events = vec(
        (
            "[a-z .]{0,10}",
            0..u64::MAX / 2_000_000,
            typed_attributes(),
            prop_oneof![Just(0u32), any::<u32>()],
        ),
        0..3,
    );
    let links = vec(
        (
            any::<[u8; 16]>().prop_filter("valid", |b| *b != [0; 16]),
            nonzero_span_id(),
            "[a-z=,]{0,10}",
            typed_attributes(),
            any::<u32>(),
        ),
        0..2,
    );
    let rest = (
        text(),
        0..=5i32,
        (0..=2i32, text()),
        "[a-z=,]{0,12}",
        (any::<u32>(), any::<u32>(), any::<u32>()),
    );
    (ids, times, tags, endpoints, events, links, rest).prop_map(
        |(
            (trace_id, span_id, parent),
            (start_us, dur_us),
            tags,
            (host_ip, host_port, peer, peer_ip, peer_port, debug),
            events,
            links,
            (name, kind, (code, message), trace_state, (da, de, dl)),
        )| {
            let mut attributes = tags;
            let mut add = |k: &str, v: Option<AnyValue>| {
                if let Some(v) = v {
                    attributes.push(KeyValue::new(k, v));
                }
            };
            add("net.host.ip", host_ip.map(AnyValue::String));
            add("net.host.port", host_port.map(AnyValue::Int));
            add("peer.service", peer.map(AnyValue::String));
            add("net.peer.ip", peer_ip.map(AnyValue::String));
            add("net.peer.port", peer_port.map(AnyValue::Int));
            add("zipkin.debug", debug.then_some(AnyValue::Bool(true)));
            Span {
                trace_id,
                span_id,
                parent_span_id: parent.filter(|p| *p != span_id && shared_span_id(*p) != span_id),
                trace_state,
                flags: 1,
                name,
                kind: SpanKind::from_i32(kind).unwrap(),
                start_time_unix_nano: start_us * 1_000,
                end_time_unix_nano: (start_us + dur_us) * 1_000,
                attributes,
                dropped_attributes_count: da,
                events: events
                    .into_iter()
                    .map(|(name, t, attributes, dropped)| Event {
                        time_unix_nano: t * 1_000,
                        name,
                        attributes,
                        dropped_attributes_count: dropped,
                    })
                    .collect(),
                dropped_events_count: de,
                links: links
                    .into_iter()
                    .map(|(t, s, trace_state, attributes, dropped)| Link {
                        trace_id: TraceId(t),
                        span_id: s,
                        trace_state,
                        attributes,
                        dropped_attributes_count: dropped,
                        flags: 0,
                    })
                    .collect(),
                dropped_links_count: dl,
                status: Status {
                    code: StatusCode::from_i32(code).unwrap(),
                    message,
                },
            }
        },
    )
}

fn expressible_batch() -> impl Strategy<Value = Batch> {
    let resource_attrs =
        vec(("(host|service|telemetry)\\.[a-z]{1,6}", text()), 0..3).prop_map(|pairs| {
            unique(
                pairs
                    .into_iter()
                    .filter(|(k, _)| k != "service.name")
                    .map(|(k, v)| KeyValue::new(k, v))
                    .collect(),
            )
        });
    let scope = ("[a-z.]{0,8}", "[0-9.]{0,5}").prop_map(|(name, version)| Scope {
        name,
        version,
        ..Default::default()
    });
    let scopes = vec((scope, vec(expressible_span(), 1..4)), 1..3).prop_map(|list| {
        let mut seen = Vec::new();
        list.into_iter()
            .filter(|(scope, _)| {
                let new = !seen.contains(scope);
                seen.push(scope.clone());
                new
            })
            .map(|(scope, spans)| ScopeSpans {
                scope: Arc::new(scope),
                spans,
            })
            .collect::<Vec<_>>()
    });
    vec(("[a-z]{1,6}", resource_attrs, scopes), 1..3).prop_map(|list| {
        let mut seen = Vec::new();
        Batch {
            resource_spans: list
                .into_iter()
                .filter(|(svc, _, _)| {
                    let new = !seen.contains(svc);
                    seen.push(svc.clone());
                    new
                })
                .map(|(svc, attrs, scope_spans)| {
                    let mut attributes = vec![KeyValue::new("service.name", svc)];
                    attributes.extend(attrs);
                    ResourceSpans {
                        resource: Arc::new(Resource {
                            attributes,
                            ..Default::default()
                        }),
                        scope_spans,
                    }
                })
                .collect(),
        }
    })
}

/// Attributes in key order everywhere (Zipkin tags and JSON objects have no order).
fn sorted(batch: &Batch) -> Batch {
    let mut b = batch.clone();
    for rs in &mut b.resource_spans {
        let mut resource = (*rs.resource).clone();
        resource.attributes[1..].sort_by(|a, b| a.key.cmp(&b.key));
        rs.resource = Arc::new(resource);
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                span.attributes.sort_by(|a, b| a.key.cmp(&b.key));
                for e in &mut span.events {
                    e.attributes.sort_by(|a, b| a.key.cmp(&b.key));
                }
                for l in &mut span.links {
                    l.attributes.sort_by(|a, b| a.key.cmp(&b.key));
                }
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn model_round_trips_through_zipkin_json(batch in expressible_batch()) {
        let body = encode_spans_json(&batch_to_zipkin(&batch));
        let d = zipkin::decode_v2_json(&body).unwrap();
        prop_assert_eq!(d.rejected_spans, 0, "{}", d.error_message);
        prop_assert_eq!(sorted(&d.batch), sorted(&batch));
    }

    #[test]
    fn model_round_trips_through_zipkin_protobuf(batch in expressible_batch()) {
        let body = encode_spans_proto(&batch_to_zipkin(&batch));
        let d = zipkin::decode_v2_proto(&body).unwrap();
        prop_assert_eq!(d.rejected_spans, 0, "{}", d.error_message);
        prop_assert_eq!(sorted(&d.batch), sorted(&batch));
    }

    #[test]
    fn decoders_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = zipkin::decode_v2_json(&bytes);
        let _ = zipkin::decode_v2_proto(&bytes);
        let _ = zipkin::decode_v1_json(&bytes);
    }
}
