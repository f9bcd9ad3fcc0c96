//! Golden fixtures: export requests captured from real OpenTelemetry SDKs, decoded with our
//! codecs and checked field by field against the known trace the SDKs were told to emit.
//!
//! `tests/fixtures/README.md` says which SDK produced each fixture, how, and what the known trace
//! is; `tests/fixtures/generators/` holds the scripts that emitted it. The fixtures are data
//! from the SDKs: never edit them by hand, regenerate them.

use std::io::Read;
use std::sync::Arc;

use prost::Message;
use serde_json::Value;
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanId, SpanKind, Status, StatusCode, TraceId,
};
use stitch_wire::otlp::{self, ExportTraceServiceRequest};
use stitch_wire::{Decoded, otlp_json};

const PYTHON_PROTOBUF: &[u8] = include_bytes!("fixtures/python-sdk-http-protobuf.bin");
const PYTHON_PROTOBUF_GZIP: &[u8] = include_bytes!("fixtures/python-sdk-http-protobuf-gzip.bin");
const NODE_JSON: &[u8] = include_bytes!("fixtures/node-sdk-http-json.json");
const NODE_PROTOBUF: &[u8] = include_bytes!("fixtures/node-sdk-http-protobuf.bin");

// ---------------------------------------------------------------------------------------------
// The known trace (see tests/fixtures/README.md).
// ---------------------------------------------------------------------------------------------

const TRACE_HEX: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const ROOT_HEX: &str = "00f067aa0ba902b7";
const CLIENT_HEX: &str = "53995c3f42cd8ad8";
const INTERNAL_HEX: &str = "b9c7c989f97918e1";
const PRODUCER_HEX: &str = "e457b5a2e4d86bd1";
const LINK_TRACE_HEX: &str = "0af7651916cd43dd8448eb211c80319c";
const LINK_SPAN_HEX: &str = "b7ad6b7169203331";

const ROOT: &str = "GET /checkout";
const CLIENT: &str = "POST /charge";
const INTERNAL: &str = "serialize";
const PRODUCER: &str = "publish order.events";

/// The order in which both SDKs export the spans: the order in which they ended.
const EXPORT_ORDER: [&str; 4] = [INTERNAL, CLIENT, PRODUCER, ROOT];

const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";

/// The `service.instance.id` the Python SDK generated (a random UUID) for each capture.
const PYTHON_INSTANCE_ID: &str = "080cd29d-fe1c-46cb-81e1-76222396cdd8";
const PYTHON_GZIP_INSTANCE_ID: &str = "7d477fc5-950c-433b-93f4-2b1bdf7bb1a3";

/// OTLP `SpanFlags`: the W3C sampled bit, "is-remote is known", "is remote".
const SAMPLED: u32 = 0x01;
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

fn trace_id(hex: &str) -> TraceId {
    TraceId::from_hex(hex).unwrap()
}

fn span_id(hex: &str) -> SpanId {
    SpanId::from_hex(hex).unwrap()
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue::new(key, value)
}

fn s(text: &str) -> AnyValue {
    AnyValue::String(text.to_owned())
}

fn array(values: Vec<AnyValue>) -> AnyValue {
    AnyValue::Array(values)
}

/// What differs between the SDKs' encodings of the same trace.
struct Flavor {
    /// Every resource attribute, in the order the SDK sends them.
    resource_attributes: Vec<KeyValue>,
    /// `Span.flags` of every span (all four are local spans, sampled).
    span_flags: u32,
    /// `Link.flags` of the link (a remote, sampled context).
    link_flags: u32,
    /// `Link.trace_state` as sent (the SDKs were given `vendor=abc,other=xyz`).
    link_trace_state: &'static str,
}

/// OpenTelemetry Python SDK 1.45.2 with `opentelemetry-exporter-otlp-proto-http` 1.45.2.
fn python(instance_id: &str) -> Flavor {
    Flavor {
        resource_attributes: vec![
            kv("telemetry.sdk.language", s("python")),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.version", s("1.45.2")),
            kv("service.instance.id", s(instance_id)),
            kv("service.name", s("golden-checkout")),
            kv("service.version", s("1.4.2")),
            kv("deployment.environment.name", s("test")),
            kv("host.cpu.count", AnyValue::Int(8)),
        ],
        // Python sets only the is-remote bits, not the W3C trace flags.
        span_flags: HAS_IS_REMOTE,
        link_flags: HAS_IS_REMOTE | IS_REMOTE,
        // Python's encoder does not write `Link.trace_state` at all.
        link_trace_state: "",
    }
}

/// OpenTelemetry JS SDK 2.12.1 with the OTLP exporters 0.223.1.
fn node() -> Flavor {
    Flavor {
        resource_attributes: vec![
            kv("service.name", s("golden-checkout")),
            kv("service.version", s("1.4.2")),
            kv("deployment.environment.name", s("test")),
            kv("host.cpu.count", AnyValue::Int(8)),
            kv("telemetry.sdk.language", s("nodejs")),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.version", s("2.12.1")),
        ],
        span_flags: SAMPLED | HAS_IS_REMOTE,
        link_flags: SAMPLED | HAS_IS_REMOTE | IS_REMOTE,
        link_trace_state: "vendor=abc,other=xyz",
    }
}

fn root_attributes() -> Vec<KeyValue> {
    vec![
        kv("http.request.method", s("GET")),
        kv("http.route", s("/checkout")),
        kv("golden.string", s("héllo, wörld")),
        kv("golden.bool", AnyValue::Bool(true)),
        kv("golden.int", AnyValue::Int(1_234_567_890_123)),
        kv("golden.negative_int", AnyValue::Int(-7)),
        kv("golden.double", AnyValue::Double(0.1)),
        kv("golden.strings", array(vec![s("a"), s("b"), s("c")])),
        kv(
            "golden.bools",
            array(vec![
                AnyValue::Bool(true),
                AnyValue::Bool(false),
                AnyValue::Bool(true),
            ]),
        ),
        kv(
            "golden.ints",
            array(vec![
                AnyValue::Int(1),
                AnyValue::Int(-2),
                AnyValue::Int(3_000_000_000),
            ]),
        ),
        kv(
            "golden.doubles",
            array(vec![
                AnyValue::Double(1.5),
                AnyValue::Double(-0.25),
                AnyValue::Double(0.1),
            ]),
        ),
    ]
}

fn cache_miss_event() -> Event {
    Event {
        time_unix_nano: 1_718_000_000_133_456_796,
        name: "cache.miss".into(),
        attributes: vec![
            kv("cache.key", s("user:42")),
            kv("cache.attempt", AnyValue::Int(2)),
            kv("cache.hit_ratio", AnyValue::Double(0.75)),
            kv("cache.cold", AnyValue::Bool(true)),
        ],
        dropped_attributes_count: 0,
    }
}

fn retry_link(flavor: &Flavor) -> Link {
    Link {
        trace_id: trace_id(LINK_TRACE_HEX),
        span_id: span_id(LINK_SPAN_HEX),
        trace_state: flavor.link_trace_state.into(),
        attributes: vec![
            kv("link.reason", s("retry-of")),
            kv("link.attempt", AnyValue::Int(1)),
        ],
        dropped_attributes_count: 0,
        flags: flavor.link_flags,
    }
}

/// The four spans of the known trace, in export order.
fn known_spans(flavor: &Flavor) -> Vec<Span> {
    let span = |id: &str, parent: Option<&str>, name: &str, kind, start, end| Span {
        trace_id: trace_id(TRACE_HEX),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id),
        flags: flavor.span_flags,
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        ..Span::default()
    };
    let internal = Span {
        attributes: vec![kv("payload.bytes", AnyValue::Int(512))],
        ..span(
            INTERNAL_HEX,
            Some(CLIENT_HEX),
            INTERNAL,
            SpanKind::Internal,
            1_718_000_000_144_456_806,
            1_718_000_000_146_456_808,
        )
    };
    let client = Span {
        attributes: vec![
            kv("http.request.method", s("POST")),
            kv("server.address", s("payments.internal")),
            kv("server.port", AnyValue::Int(8443)),
        ],
        links: vec![retry_link(flavor)],
        status: Status {
            code: StatusCode::Ok,
            message: String::new(),
        },
        ..span(
            CLIENT_HEX,
            Some(ROOT_HEX),
            CLIENT,
            SpanKind::Client,
            1_718_000_000_143_456_800,
            1_718_000_000_323_456_802,
        )
    };
    let producer = Span {
        attributes: vec![
            kv("messaging.system", s("kafka")),
            kv("messaging.destination.name", s("order.events")),
        ],
        ..span(
            PRODUCER_HEX,
            Some(ROOT_HEX),
            PRODUCER,
            SpanKind::Producer,
            1_718_000_000_333_456_812,
            1_718_000_000_338_456_818,
        )
    };
    let root = Span {
        attributes: root_attributes(),
        events: vec![cache_miss_event()],
        status: Status {
            code: StatusCode::Error,
            message: "payment declined".into(),
        },
        ..span(
            ROOT_HEX,
            None,
            ROOT,
            SpanKind::Server,
            1_718_000_000_123_456_789,
            1_718_000_000_373_457_110,
        )
    };
    vec![internal, client, producer, root]
}

fn known_scope() -> Scope {
    Scope {
        name: "stitch.golden".into(),
        version: "0.3.1".into(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        schema_url: SCHEMA_URL.into(),
    }
}

/// The whole known trace as one batch: one resource, one scope, four spans.
fn known_batch(flavor: &Flavor) -> Batch {
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: Arc::new(Resource {
                attributes: flavor.resource_attributes.clone(),
                dropped_attributes_count: 0,
                schema_url: String::new(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Arc::new(known_scope()),
                spans: known_spans(flavor),
            }],
        }],
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding the fixtures.
// ---------------------------------------------------------------------------------------------

fn decode_protobuf(bytes: &[u8]) -> Decoded {
    otlp::decode_export_request(bytes).expect("fixture decodes as protobuf")
}

fn decode_json(bytes: &[u8]) -> Decoded {
    otlp_json::decode_export_request(bytes).expect("fixture decodes as OTLP/JSON")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("fixture is gzip");
    out
}

/// One fixture: its file name, the request it decodes into, and how its SDK encodes things.
struct Fixture {
    name: &'static str,
    decoded: Decoded,
    flavor: Flavor,
}

fn python_protobuf() -> Fixture {
    Fixture {
        name: "python-sdk-http-protobuf.bin",
        decoded: decode_protobuf(PYTHON_PROTOBUF),
        flavor: python(PYTHON_INSTANCE_ID),
    }
}

fn python_protobuf_gzip() -> Fixture {
    Fixture {
        name: "python-sdk-http-protobuf-gzip.bin",
        decoded: decode_protobuf(&gunzip(PYTHON_PROTOBUF_GZIP)),
        flavor: python(PYTHON_GZIP_INSTANCE_ID),
    }
}

fn node_json() -> Fixture {
    Fixture {
        name: "node-sdk-http-json.json",
        decoded: decode_json(NODE_JSON),
        flavor: node(),
    }
}

fn node_protobuf() -> Fixture {
    Fixture {
        name: "node-sdk-http-protobuf.bin",
        decoded: decode_protobuf(NODE_PROTOBUF),
        flavor: node(),
    }
}

fn all_fixtures() -> Vec<Fixture> {
    vec![
        python_protobuf(),
        python_protobuf_gzip(),
        node_json(),
        node_protobuf(),
    ]
}

/// The only resource and scope group of a fixture, checked to be the only one.
fn only_group(f: &Fixture) -> (&Resource, &ScopeSpans) {
    let batch = &f.decoded.batch;
    assert_eq!(batch.resource_spans.len(), 1, "{}: resource groups", f.name);
    let rs = &batch.resource_spans[0];
    assert_eq!(rs.scope_spans.len(), 1, "{}: scope groups", f.name);
    (&rs.resource, &rs.scope_spans[0])
}

fn span_named<'a>(f: &'a Fixture, name: &str) -> &'a Span {
    let mut found = f.decoded.batch.spans().filter(|r| r.span.name == name);
    let span = found
        .next()
        .unwrap_or_else(|| panic!("{}: no span named {name:?}", f.name))
        .span;
    assert!(
        found.next().is_none(),
        "{}: two spans named {name:?}",
        f.name
    );
    span
}

fn accepted(batch: &Batch) -> Decoded {
    Decoded {
        batch: batch.clone(),
        rejected_spans: 0,
        error_message: String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Every fixture holds the known trace.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_fixture_decodes_without_rejecting_a_span() {
    for f in all_fixtures() {
        assert_eq!(f.decoded.rejected_spans, 0, "{}", f.name);
        assert_eq!(f.decoded.error_message, "", "{}", f.name);
        assert_eq!(f.decoded.batch.span_count(), 4, "{}", f.name);
    }
}

#[test]
fn every_fixture_carries_the_resource_with_its_service_name_and_attributes() {
    for f in all_fixtures() {
        let (resource, _) = only_group(&f);
        assert_eq!(resource.service_name(), "golden-checkout", "{}", f.name);
        assert_eq!(
            resource.attributes, f.flavor.resource_attributes,
            "{}",
            f.name
        );
        assert_eq!(resource.dropped_attributes_count, 0, "{}", f.name);
        assert_eq!(resource.schema_url, "", "{}", f.name);
    }
}

#[test]
fn every_fixture_carries_the_scope_name_version_and_schema_url() {
    for f in all_fixtures() {
        let (_, group) = only_group(&f);
        assert_eq!(*group.scope, known_scope(), "{}", f.name);
    }
}

#[test]
fn every_fixture_exports_the_spans_in_the_order_they_ended() {
    for f in all_fixtures() {
        let names: Vec<&str> = f
            .decoded
            .batch
            .spans()
            .map(|r| r.span.name.as_str())
            .collect();
        assert_eq!(names, EXPORT_ORDER, "{}", f.name);
    }
}

#[test]
fn every_fixture_shares_one_trace_id_and_links_each_child_to_its_parent() {
    let expected = [
        (ROOT, ROOT_HEX, None),
        (CLIENT, CLIENT_HEX, Some(ROOT_HEX)),
        (INTERNAL, INTERNAL_HEX, Some(CLIENT_HEX)),
        (PRODUCER, PRODUCER_HEX, Some(ROOT_HEX)),
    ];
    for f in all_fixtures() {
        for (name, id, parent) in expected {
            let span = span_named(&f, name);
            assert_eq!(span.trace_id.to_hex(), TRACE_HEX, "{}: {name}", f.name);
            assert_eq!(span.span_id.to_hex(), id, "{}: {name}", f.name);
            assert_eq!(
                span.parent_span_id.map(|p| p.to_hex()).as_deref(),
                parent,
                "{}: {name}",
                f.name
            );
            assert_eq!(span.trace_state, "", "{}: {name}", f.name);
        }
    }
}

#[test]
fn every_fixture_keeps_the_span_kinds() {
    let expected = [
        (ROOT, SpanKind::Server),
        (CLIENT, SpanKind::Client),
        (INTERNAL, SpanKind::Internal),
        (PRODUCER, SpanKind::Producer),
    ];
    for f in all_fixtures() {
        for (name, kind) in expected {
            assert_eq!(span_named(&f, name).kind, kind, "{}: {name}", f.name);
        }
    }
}

#[test]
fn every_fixture_keeps_the_timestamps_to_the_nanosecond() {
    let expected = [
        (ROOT, 1_718_000_000_123_456_789, 1_718_000_000_373_457_110),
        (CLIENT, 1_718_000_000_143_456_800, 1_718_000_000_323_456_802),
        (
            INTERNAL,
            1_718_000_000_144_456_806,
            1_718_000_000_146_456_808,
        ),
        (
            PRODUCER,
            1_718_000_000_333_456_812,
            1_718_000_000_338_456_818,
        ),
    ];
    for f in all_fixtures() {
        for (name, start, end) in expected {
            let span = span_named(&f, name);
            assert_eq!(span.start_time_unix_nano, start, "{}: {name}", f.name);
            assert_eq!(span.end_time_unix_nano, end, "{}: {name}", f.name);
        }
        assert_eq!(
            span_named(&f, ROOT).events[0].time_unix_nano,
            1_718_000_000_133_456_796,
            "{}",
            f.name
        );
    }
}

#[test]
fn every_fixture_keeps_each_root_attribute_with_its_type() {
    for f in all_fixtures() {
        let root = span_named(&f, ROOT);
        assert_eq!(root.attributes, root_attributes(), "{}", f.name);
        assert_eq!(root.dropped_attributes_count, 0, "{}", f.name);
        // `PartialEq` on `f64` would also accept a value that only rounds the same: check bits.
        let bits = |key: &str| match stitch_model::find_attribute(&root.attributes, key) {
            Some(AnyValue::Double(d)) => d.to_bits(),
            other => panic!("{}: {key} is {other:?}", f.name),
        };
        assert_eq!(bits("golden.double"), 0.1f64.to_bits(), "{}", f.name);
    }
}

#[test]
fn every_fixture_keeps_the_attributes_of_the_other_spans() {
    for f in all_fixtures() {
        let known = known_spans(&f.flavor);
        for name in [CLIENT, INTERNAL, PRODUCER] {
            let expected = known.iter().find(|s| s.name == name).unwrap();
            assert_eq!(
                span_named(&f, name).attributes,
                expected.attributes,
                "{}: {name}",
                f.name
            );
        }
    }
}

#[test]
fn every_fixture_keeps_the_event_with_its_attributes() {
    for f in all_fixtures() {
        assert_eq!(
            span_named(&f, ROOT).events,
            vec![cache_miss_event()],
            "{}",
            f.name
        );
        for name in [CLIENT, INTERNAL, PRODUCER] {
            assert!(span_named(&f, name).events.is_empty(), "{}: {name}", f.name);
        }
    }
}

#[test]
fn every_fixture_keeps_the_link_ids_trace_state_flags_and_attributes() {
    for f in all_fixtures() {
        let client = span_named(&f, CLIENT);
        assert_eq!(client.links.len(), 1, "{}", f.name);
        let link = &client.links[0];
        assert_eq!(link.trace_id.to_hex(), LINK_TRACE_HEX, "{}", f.name);
        assert_eq!(link.span_id.to_hex(), LINK_SPAN_HEX, "{}", f.name);
        assert_eq!(link.trace_state, f.flavor.link_trace_state, "{}", f.name);
        assert_eq!(link.flags, f.flavor.link_flags, "{}", f.name);
        assert_eq!(
            link.attributes,
            vec![
                kv("link.reason", s("retry-of")),
                kv("link.attempt", AnyValue::Int(1))
            ],
            "{}",
            f.name
        );
        for name in [ROOT, INTERNAL, PRODUCER] {
            assert!(span_named(&f, name).links.is_empty(), "{}: {name}", f.name);
        }
    }
}

#[test]
fn every_fixture_keeps_the_statuses() {
    let expected = [
        (ROOT, StatusCode::Error, "payment declined"),
        (CLIENT, StatusCode::Ok, ""),
        (INTERNAL, StatusCode::Unset, ""),
        (PRODUCER, StatusCode::Unset, ""),
    ];
    for f in all_fixtures() {
        for (name, code, message) in expected {
            let status = &span_named(&f, name).status;
            assert_eq!(status.code, code, "{}: {name}", f.name);
            assert_eq!(status.message, message, "{}: {name}", f.name);
        }
        assert!(span_named(&f, ROOT).is_error(), "{}", f.name);
    }
}

#[test]
fn every_fixture_keeps_the_span_flags_of_its_sdk() {
    for f in all_fixtures() {
        for name in EXPORT_ORDER {
            assert_eq!(
                span_named(&f, name).flags,
                f.flavor.span_flags,
                "{}: {name}",
                f.name
            );
        }
    }
}

#[test]
fn every_fixture_decodes_to_exactly_the_known_batch() {
    for f in all_fixtures() {
        assert_eq!(
            f.decoded,
            accepted(&known_batch(&f.flavor)),
            "{}: the decoded request differs from the known trace",
            f.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Re-encoding.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_fixture_survives_re_encoding_as_protobuf_and_decoding_again() {
    for f in all_fixtures() {
        let bytes = otlp::encode_batch(&f.decoded.batch);
        assert_eq!(
            otlp::decode_export_request(&bytes).unwrap(),
            accepted(&f.decoded.batch),
            "{}",
            f.name
        );
    }
}

#[test]
fn every_fixture_survives_re_encoding_as_json_and_decoding_again() {
    for f in all_fixtures() {
        let json = otlp_json::encode_json(&f.decoded.batch);
        assert_eq!(
            otlp_json::decode_export_request(&json).unwrap(),
            accepted(&f.decoded.batch),
            "{}",
            f.name
        );
    }
}

#[test]
fn converting_each_protobuf_fixture_back_from_the_model_gives_the_captured_message() {
    let captured = [
        ("python-sdk-http-protobuf.bin", PYTHON_PROTOBUF.to_vec()),
        (
            "python-sdk-http-protobuf-gzip.bin",
            gunzip(PYTHON_PROTOBUF_GZIP),
        ),
        ("node-sdk-http-protobuf.bin", NODE_PROTOBUF.to_vec()),
    ];
    for (name, bytes) in captured {
        let request = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let decoded = decode_protobuf(&bytes);
        assert_eq!(otlp::to_proto(&decoded.batch), request, "{name}");
    }
}

/// If this fails, our canonical protobuf form changed (or the fixture was regenerated with an
/// SDK that encodes differently): both are worth a look.
#[test]
fn our_protobuf_encoder_reproduces_the_python_capture_byte_for_byte() {
    let decoded = decode_protobuf(PYTHON_PROTOBUF);
    assert!(otlp::encode_batch(&decoded.batch) == PYTHON_PROTOBUF);
}

// ---------------------------------------------------------------------------------------------
// What each SDK does that a decoder must cope with.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_gzip_python_capture_is_the_same_trace_as_the_plain_one_but_for_the_instance_id() {
    assert_eq!(&PYTHON_PROTOBUF_GZIP[..2], &[0x1f, 0x8b], "gzip magic");
    let without_instance_id = |mut batch: Batch| {
        for rs in &mut batch.resource_spans {
            Arc::make_mut(&mut rs.resource)
                .attributes
                .retain(|kv| kv.key != "service.instance.id");
        }
        batch
    };
    let plain = decode_protobuf(PYTHON_PROTOBUF).batch;
    let gzip = decode_protobuf(&gunzip(PYTHON_PROTOBUF_GZIP)).batch;
    assert_ne!(plain, gzip, "each run draws a new service.instance.id");
    assert_eq!(without_instance_id(plain), without_instance_id(gzip));
}

#[test]
fn the_python_sdk_adds_a_random_uuid_as_service_instance_id() {
    for id in [PYTHON_INSTANCE_ID, PYTHON_GZIP_INSTANCE_ID] {
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}

#[test]
fn the_python_sdk_leaves_the_sampled_bit_out_of_flags_and_drops_the_link_trace_state() {
    let f = python_protobuf();
    assert_eq!(span_named(&f, ROOT).flags, 0x100);
    assert_eq!(span_named(&f, CLIENT).links[0].flags, 0x300);
    assert_eq!(span_named(&f, CLIENT).links[0].trace_state, "");
}

#[test]
fn the_node_protobuf_exporter_writes_zero_valued_fields_that_proto3_leaves_out() {
    // 17 fields set to zero, two bytes each: `dropped_*_count` of the resource, the four spans,
    // the event and the link, and `status.code` of the two spans with an unset status.
    let request = ExportTraceServiceRequest::decode(NODE_PROTOBUF).unwrap();
    assert_eq!(NODE_PROTOBUF.len() - request.encode_to_vec().len(), 34);
    let ours = otlp::encode_batch(&decode_protobuf(NODE_PROTOBUF).batch);
    assert_eq!(ours, request.encode_to_vec());
}

#[test]
fn the_node_sdk_sends_the_same_trace_as_json_and_as_protobuf() {
    assert_eq!(decode_json(NODE_JSON), decode_protobuf(NODE_PROTOBUF));
}

#[test]
fn the_python_and_node_sdks_agree_on_the_trace_apart_from_flags_link_trace_state_and_resource() {
    let spans = |decoded: Decoded| -> Vec<Span> {
        let mut spans: Vec<Span> = decoded.batch.spans().map(|r| r.span.clone()).collect();
        for span in &mut spans {
            span.flags = 0;
            for link in &mut span.links {
                link.flags = 0;
                link.trace_state.clear();
            }
        }
        spans
    };
    assert_eq!(
        spans(decode_protobuf(PYTHON_PROTOBUF)),
        spans(decode_json(NODE_JSON))
    );
}

/// The raw Node OTLP/JSON document, to pin down how it spells things.
fn node_document() -> Value {
    serde_json::from_slice(NODE_JSON).unwrap()
}

fn node_span<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name:?}"))
}

fn node_attribute<'a>(attributes: &'a Value, key: &str) -> &'a Value {
    &attributes
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv["key"] == key)
        .unwrap_or_else(|| panic!("no attribute {key:?}"))["value"]
}

#[test]
fn the_node_json_exporter_writes_ids_as_lowercase_hex_and_omits_the_root_parent() {
    let doc = node_document();
    let root = node_span(&doc, ROOT);
    assert_eq!(root["traceId"], TRACE_HEX);
    assert_eq!(root["spanId"], ROOT_HEX);
    assert!(root.get("parentSpanId").is_none(), "{root}");
    assert_eq!(node_span(&doc, CLIENT)["parentSpanId"], ROOT_HEX);
    let link = &node_span(&doc, CLIENT)["links"][0];
    assert_eq!(link["traceId"], LINK_TRACE_HEX);
    assert_eq!(link["spanId"], LINK_SPAN_HEX);
}

#[test]
fn the_node_json_exporter_writes_timestamps_as_strings_but_int_values_as_numbers() {
    let doc = node_document();
    let root = node_span(&doc, ROOT);
    assert_eq!(root["startTimeUnixNano"], "1718000000123456789");
    assert_eq!(root["endTimeUnixNano"], "1718000000373457110");
    assert_eq!(root["events"][0]["timeUnixNano"], "1718000000133456796");
    let int = node_attribute(&root["attributes"], "golden.int");
    assert!(int["intValue"].is_number(), "{int}");
    assert_eq!(int["intValue"].as_i64(), Some(1_234_567_890_123));
    let ints = node_attribute(&root["attributes"], "golden.ints");
    assert_eq!(
        ints["arrayValue"]["values"][2]["intValue"].as_i64(),
        Some(3_000_000_000)
    );
    let double = node_attribute(&root["attributes"], "golden.double");
    assert_eq!(double["doubleValue"].as_f64(), Some(0.1));
}

#[test]
fn the_node_json_exporter_writes_enums_as_numbers_and_default_fields_explicitly() {
    let doc = node_document();
    let root = node_span(&doc, ROOT);
    assert_eq!(root["kind"], 2);
    assert_eq!(
        root["status"],
        serde_json::json!({"code": 2, "message": "payment declined"})
    );
    assert_eq!(root["flags"], 257);
    let producer = node_span(&doc, PRODUCER);
    assert_eq!(producer["status"], serde_json::json!({"code": 0}));
    assert_eq!(producer["events"], serde_json::json!([]));
    assert_eq!(producer["links"], serde_json::json!([]));
    assert_eq!(producer["droppedAttributesCount"], 0);
    assert_eq!(
        doc["resourceSpans"][0]["resource"]["droppedAttributesCount"],
        0
    );
}

#[test]
fn the_node_json_exporter_writes_non_ascii_text_as_raw_utf8() {
    let text = std::str::from_utf8(NODE_JSON).unwrap();
    assert!(text.contains("\"héllo, wörld\""));
    assert!(!text.contains("\\u"));
}
