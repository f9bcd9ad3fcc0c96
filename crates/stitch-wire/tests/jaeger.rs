//! Jaeger codecs: a known trace through every Jaeger encoding, property tests of the
//! conversion, random and mutated bytes, a table of malformed inputs, and the comparison with
//! the same trace sent over OTLP.

mod common;

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanId, SpanKind, Status, StatusCode, TraceId,
};
use stitch_wire::Decoded;
use stitch_wire::jaeger::thrift::{TType, ThriftError};
use stitch_wire::jaeger::types::{self, RefType, Tag, TagValue};
use stitch_wire::jaeger::{self as j, JaegerError};

/// Every Jaeger encoding of a model batch, decoded again, one decoded batch per encoding.
fn through_every_encoding(batch: &Batch) -> Vec<(&'static str, Decoded)> {
    let thrift = j::to_thrift(batch);
    let proto = j::to_proto(batch);
    let mut out = Vec::new();
    type Decode = fn(&[u8]) -> Result<Decoded, JaegerError>;
    let encodings: [(&str, Vec<Vec<u8>>, Decode); 4] = [
        (
            "agent compact",
            thrift
                .iter()
                .map(|b| j::encode_agent_compact(b, 7))
                .collect(),
            j::decode_agent_compact,
        ),
        (
            "agent binary",
            thrift
                .iter()
                .map(|b| j::encode_agent_binary(b, 7))
                .collect(),
            j::decode_agent_binary,
        ),
        (
            "collector thrift",
            thrift.iter().map(j::encode_collector_thrift).collect(),
            j::decode_collector_thrift,
        ),
        (
            "api_v2 protobuf",
            proto.into_iter().map(j::encode_post_spans).collect(),
            j::decode_post_spans,
        ),
    ];
    for (name, bodies, decode) in encodings {
        let mut merged = Decoded::default();
        for body in bodies {
            let d = decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            merged.rejected_spans += d.rejected_spans;
            merged.batch.resource_spans.extend(d.batch.resource_spans);
            if merged.error_message.is_empty() {
                merged.error_message = d.error_message;
            }
        }
        out.push((name, merged));
    }
    out
}

const T0_MICROS: u64 = 1_718_000_000_123_456;

fn at(offset_micros: u64) -> u64 {
    (T0_MICROS + offset_micros) * 1_000
}

/// The known trace: everything Jaeger can express, in the form decoding gives it back.
fn known_batch() -> Batch {
    let trace_id = TraceId::from_hex(common::TRACE_HEX).unwrap();
    let root_id = SpanId::from_hex(common::SPAN_HEX).unwrap();
    let child_id = SpanId::from_hex(common::PARENT_HEX).unwrap();
    let other_trace = TraceId::from_halves(0, 0x0af7_6519_16cd_43dd);
    let resource = Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", "checkout"),
            KeyValue::new("host.name", "h1"),
            KeyValue::new("host.cpu.count", 8i64),
            KeyValue::new("process.ratio", 0.25),
            KeyValue::new("process.debug", false),
            KeyValue {
                key: "process.fingerprint".into(),
                value: AnyValue::Bytes(vec![0, 1, 0xfe, 0xff]),
            },
        ],
        ..Default::default()
    });
    let root = Span {
        trace_id,
        span_id: root_id,
        name: "POST /checkout".into(),
        kind: SpanKind::Server,
        flags: 1,
        trace_state: "vendor=abc".into(),
        start_time_unix_nano: at(0),
        end_time_unix_nano: at(250_000),
        attributes: vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 500i64),
            KeyValue::new("order.total", 299.97),
            KeyValue::new("customer.premium", true),
            KeyValue::new("error", false),
            KeyValue::new("text", "héllo, wörld"),
        ],
        events: vec![Event {
            time_unix_nano: at(1_000),
            name: "inventory_check".into(),
            attributes: vec![
                KeyValue::new("warehouse", "us-east"),
                KeyValue::new("items", 3i64),
            ],
            dropped_attributes_count: 2,
        }],
        links: vec![Link {
            trace_id: other_trace,
            span_id: SpanId::from_u64(0x1234),
            attributes: vec![KeyValue::new(j::LINK_REF_TYPE, "follows_from")],
            ..Default::default()
        }],
        status: Status {
            code: StatusCode::Error,
            message: "payment declined".into(),
        },
        dropped_attributes_count: 3,
        ..Default::default()
    };
    let child = Span {
        trace_id,
        span_id: child_id,
        parent_span_id: Some(root_id),
        name: "charge card".into(),
        kind: SpanKind::Client,
        flags: 1,
        start_time_unix_nano: at(10_000),
        end_time_unix_nano: at(200_000),
        attributes: vec![KeyValue::new("peer.service", "payments")],
        links: vec![Link {
            trace_id: other_trace,
            span_id: SpanId::from_u64(0x5678),
            attributes: vec![KeyValue::new(j::LINK_REF_TYPE, "child_of")],
            ..Default::default()
        }],
        status: Status {
            code: StatusCode::Ok,
            message: String::new(),
        },
        ..Default::default()
    };
    let internal = Span {
        trace_id,
        span_id: SpanId::from_u64(0x42),
        parent_span_id: Some(child_id),
        name: "serialize".into(),
        kind: SpanKind::Internal,
        start_time_unix_nano: at(11_000),
        end_time_unix_nano: at(12_000),
        ..Default::default()
    };
    let scope = |name: &str, version: &str| {
        Arc::new(Scope {
            name: name.into(),
            version: version.into(),
            ..Default::default()
        })
    };
    Batch {
        resource_spans: vec![ResourceSpans {
            resource,
            scope_spans: vec![
                ScopeSpans {
                    scope: scope("stitch-e2e", "1.2.3"),
                    spans: vec![root, child],
                },
                ScopeSpans {
                    scope: scope("", ""),
                    spans: vec![internal],
                },
            ],
        }],
    }
}

#[test]
fn the_known_trace_survives_every_jaeger_encoding() {
    let batch = known_batch();
    for (name, decoded) in through_every_encoding(&batch) {
        assert_eq!(
            decoded.rejected_spans, 0,
            "{name}: {}",
            decoded.error_message
        );
        assert_eq!(decoded.batch, batch, "{name}");
    }
}

#[test]
fn special_tags_become_span_fields() {
    let thrift = &j::to_thrift(&known_batch())[0];
    let root = &thrift.spans[0];
    let keys: Vec<&str> = root.tags.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "otel.scope.name",
            "otel.scope.version",
            "http.request.method",
            "http.response.status_code",
            "order.total",
            "customer.premium",
            "error",
            "text",
            "span.kind",
            "otel.status_code",
            "error",
            "otel.status_description",
            "w3c.tracestate",
            "otel.dropped_attributes_count",
        ]
    );
    assert_eq!(root.trace_id_high as u64, 0x4bf92f3577b34da6);
    assert_eq!(root.trace_id_low as u64, 0xa3ce929d0e0e4736);
    assert_eq!(root.start_time, T0_MICROS as i64);
    assert_eq!(root.duration, 250_000);
    assert_eq!(thrift.process.service_name, "checkout");
}

fn thrift_span(tags: Vec<Tag>) -> types::Span {
    types::Span {
        trace_id_low: 0xab,
        trace_id_high: 0,
        span_id: 0xcd,
        parent_span_id: 0,
        operation_name: "op".into(),
        flags: 3,
        start_time: 1_000,
        duration: 5,
        tags,
        ..Default::default()
    }
}

fn decode_one(span: types::Span) -> Decoded {
    let batch = types::Batch {
        process: types::Process {
            service_name: "svc".into(),
            tags: vec![],
        },
        spans: vec![span],
        ..Default::default()
    };
    j::decode_agent_compact(&j::encode_agent_compact(&batch, 0)).unwrap()
}

fn only_span(d: &Decoded) -> &Span {
    let spans: Vec<_> = d.batch.spans().collect();
    assert_eq!(spans.len(), 1, "{d:?}");
    spans[0].span
}

#[test]
fn sixty_four_bit_ids_flags_and_jaeger_style_tags_map_as_documented() {
    let s = |k: &str, v: &str| Tag::new(k, TagValue::String(v.into()));
    let d = decode_one(thrift_span(vec![
        Tag::new("error", TagValue::String("true".into())),
        s("error.message", "boom"),
        s("span.kind", "producer"),
        s("otel.library.name", "old-lib"),
        s("otel.library.version", "0.1"),
        Tag::new("otel.dropped_events_count", TagValue::Long(4)),
        Tag::new("weird", TagValue::Unknown(9)),
    ]));
    let span = only_span(&d);
    assert_eq!(
        span.trace_id.to_string(),
        "000000000000000000000000000000ab"
    );
    assert_eq!(span.span_id, SpanId::from_u64(0xcd));
    assert_eq!(span.flags, 3, "sampled and debug kept verbatim");
    assert_eq!(span.kind, SpanKind::Producer);
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "boom");
    assert_eq!(span.dropped_events_count, 4);
    assert_eq!(
        span.attributes,
        vec![
            KeyValue::new("error.message", "boom"),
            KeyValue {
                key: "weird".into(),
                value: AnyValue::Empty
            },
        ]
    );
    assert_eq!(span.start_time_unix_nano, 1_000_000);
    assert_eq!(span.end_time_unix_nano, 1_005_000);
    let scope = &d.batch.resource_spans[0].scope_spans[0].scope;
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("old-lib", "0.1")
    );
    assert_eq!(
        d.batch.resource_spans[0].resource.attributes,
        vec![KeyValue::new("service.name", "svc")]
    );
}

#[test]
fn references_pick_the_parent_and_keep_the_rest_as_links() {
    let r = |ref_type, low, span_id| types::SpanRef {
        ref_type,
        trace_id_low: low,
        trace_id_high: 0,
        span_id,
    };
    // No parentSpanId: the first CHILD_OF in the same trace is the parent; FOLLOWS_FROM in the
    // same trace is a link; a CHILD_OF into another trace is a link.
    let mut span = thrift_span(vec![]);
    span.references = vec![
        r(RefType::FollowsFrom, 0xab, 1),
        r(RefType::ChildOf, 0xff, 2),
        r(RefType::ChildOf, 0xab, 3),
        r(RefType::ChildOf, 0xab, 4),
        r(RefType::Unknown(7), 0xab, 5),
    ];
    let d = decode_one(span.clone());
    let got = only_span(&d);
    assert_eq!(got.parent_span_id, Some(SpanId::from_u64(3)));
    let links: Vec<(u64, Option<String>)> = got
        .links
        .iter()
        .map(|l| {
            (
                l.span_id.as_u64(),
                l.attributes.first().map(|kv| kv.value.to_text()),
            )
        })
        .collect();
    assert_eq!(
        links,
        vec![
            (1, Some("follows_from".into())),
            (2, Some("child_of".into())),
            (4, Some("child_of".into())),
            (5, None),
        ]
    );
    // parentSpanId wins, and a reference repeating it is not a link.
    span.parent_span_id = 4;
    let d = decode_one(span);
    let got = only_span(&d);
    assert_eq!(got.parent_span_id, Some(SpanId::from_u64(4)));
    assert_eq!(
        got.links
            .iter()
            .map(|l| l.span_id.as_u64())
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 5]
    );
}

#[test]
fn log_names_come_from_event_or_else_message() {
    let mut span = thrift_span(vec![]);
    let s = |k: &str, v: &str| Tag::new(k, TagValue::String(v.into()));
    span.logs = vec![
        types::Log {
            timestamp: 1_001,
            fields: vec![s("message", "m"), s("event", "e")],
        },
        types::Log {
            timestamp: 1_002,
            fields: vec![s("a", "b"), s("message", "only message")],
        },
        types::Log {
            timestamp: 1_003,
            fields: vec![Tag::new("event", TagValue::Long(1))],
        },
    ];
    let d = decode_one(span);
    let events = &only_span(&d).events;
    assert_eq!(events[0].name, "e");
    assert_eq!(events[0].attributes, vec![KeyValue::new("message", "m")]);
    assert_eq!(events[0].time_unix_nano, 1_001_000);
    assert_eq!(events[1].name, "only message");
    assert_eq!(events[1].attributes, vec![KeyValue::new("a", "b")]);
    assert_eq!(
        events[2].name, "",
        "a non-string event field is an attribute"
    );
    assert_eq!(events[2].attributes, vec![KeyValue::new("event", 1i64)]);
}

#[test]
fn api_v2_spans_may_carry_their_own_process() {
    let batch = known_batch();
    let mut proto = j::to_proto(&batch).remove(0);
    proto.spans[2].process = Some(j::proto::Process {
        service_name: "other".into(),
        tags: vec![],
    });
    let d = j::decode_post_spans(&j::encode_post_spans(proto)).unwrap();
    let services: Vec<(&str, usize)> = d
        .batch
        .resource_spans
        .iter()
        .map(|rs| {
            (
                rs.resource.service_name(),
                rs.scope_spans.iter().map(|ss| ss.spans.len()).sum(),
            )
        })
        .collect();
    assert_eq!(services, vec![("checkout", 2), ("other", 1)]);
}

// ---- properties ----

/// Keys that no Jaeger convention claims.
fn plain_key() -> impl Strategy<Value = String> {
    "x[a-z]{0,5}(\\.[a-z]{1,5})?"
}

fn scalar() -> impl Strategy<Value = AnyValue> {
    prop_oneof![
        common::text().prop_map(AnyValue::String),
        any::<bool>().prop_map(AnyValue::Bool),
        any::<i64>().prop_map(AnyValue::Int),
        common::finite_f64().prop_map(AnyValue::Double),
        vec(any::<u8>(), 0..8).prop_map(AnyValue::Bytes),
    ]
}

fn plain_attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (plain_key(), scalar()).prop_map(|(key, value)| KeyValue { key, value }),
        0..4,
    )
}

fn micros() -> impl Strategy<Value = u64> {
    (0u64..(1 << 50)).prop_map(|m| m * 1_000)
}

/// A span with only what Jaeger expresses, links into other traces.
fn expressible_span() -> impl Strategy<Value = Span> {
    let ids = (
        common::trace_id(),
        common::span_id(),
        proptest::option::of(common::span_id()),
        common::text(),
        0u32..=255,
    );
    let what = (
        common::text(),
        0..=5i32,
        micros(),
        micros(),
        common::status(),
    );
    let event = (micros(), common::text(), plain_attributes(), any::<u32>()).prop_map(
        |(time_unix_nano, name, attributes, dropped_attributes_count)| Event {
            time_unix_nano,
            name,
            attributes,
            dropped_attributes_count,
        },
    );
    let link = (common::trace_id(), common::span_id(), any::<bool>()).prop_map(
        |(trace_id, span_id, child_of)| Link {
            trace_id,
            span_id,
            attributes: vec![KeyValue::new(
                j::LINK_REF_TYPE,
                if child_of { "child_of" } else { "follows_from" },
            )],
            ..Default::default()
        },
    );
    let details = (
        plain_attributes(),
        any::<u32>(),
        vec(event, 0..3),
        any::<u32>(),
        vec(link, 0..3),
        any::<u32>(),
    );
    (ids, what, details)
        .prop_map(common::assemble_span)
        .prop_filter("links point into other traces", |s| {
            s.links.iter().all(|l| l.trace_id != s.trace_id)
        })
}

fn expressible_batch() -> impl Strategy<Value = Batch> {
    let resource = ("[a-z]{1,8}", plain_attributes()).prop_map(|(service, attrs)| {
        let mut attributes = vec![KeyValue::new("service.name", service)];
        attributes.extend(attrs);
        Arc::new(Resource {
            attributes,
            ..Default::default()
        })
    });
    let scopes = vec(
        (
            common::text(),
            common::text(),
            vec(expressible_span(), 1..3),
        ),
        1..3,
    )
    .prop_map(|groups| {
        groups
            .into_iter()
            .enumerate()
            // Distinct scopes, since decoding groups spans by scope.
            .map(|(i, (name, version, spans))| ScopeSpans {
                scope: Arc::new(Scope {
                    name: format!("{name}#{i}"),
                    version,
                    ..Default::default()
                }),
                spans,
            })
            .collect()
    });
    vec(
        (resource, scopes).prop_map(|(resource, scope_spans)| ResourceSpans {
            resource,
            scope_spans,
        }),
        0..3,
    )
    .prop_map(|resource_spans| Batch { resource_spans })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// What Jaeger can express comes back unchanged through every encoding.
    #[test]
    fn expressible_batches_round_trip(batch in expressible_batch()) {
        for (name, decoded) in through_every_encoding(&batch) {
            prop_assert_eq!(decoded.rejected_spans, 0, "{}", name);
            prop_assert_eq!(&decoded.batch, &batch, "{}", name);
        }
    }

    /// Any model batch survives as spans with the same ids, parents and times to the
    /// microsecond, whatever the attributes hold.
    #[test]
    fn any_batch_keeps_every_span(batch in common::batch()) {
        let key = |s: &Span| (s.trace_id, s.span_id, s.start_time_unix_nano / 1_000, s.end_time_unix_nano / 1_000);
        let mut want: Vec<_> = batch.spans().map(|s| key(s.span)).collect();
        want.sort();
        for (name, decoded) in through_every_encoding(&batch) {
            prop_assert_eq!(decoded.rejected_spans, 0, "{}: {}", name, decoded.error_message);
            let mut got: Vec<_> = decoded.batch.spans().map(|s| key(s.span)).collect();
            got.sort();
            prop_assert_eq!(&got, &want, "{}", name);
        }
    }

    /// No bytes make a decoder panic.
    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = j::decode_agent_compact(&bytes);
        let _ = j::decode_agent_binary(&bytes);
        let _ = j::decode_collector_thrift(&bytes);
        let _ = j::decode_post_spans(&bytes);
    }

    /// Nor do valid messages with some bytes changed, cut short or repeated.
    #[test]
    fn mutated_messages_never_panic(
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let thrift = &j::to_thrift(&known_batch())[0];
        let bodies = [
            (j::encode_agent_compact(thrift, 1), j::decode_agent_compact as fn(&[u8]) -> _),
            (j::encode_agent_binary(thrift, 1), j::decode_agent_binary),
            (j::encode_collector_thrift(thrift), j::decode_collector_thrift),
            (j::encode_post_spans(j::to_proto(&known_batch()).remove(0)), j::decode_post_spans),
        ];
        for (mut body, decode) in bodies {
            for (at, byte) in &edits {
                let i = at.index(body.len());
                body[i] = *byte;
            }
            let _ = decode(&body);
            let _ = decode(&body[..cut.index(body.len())]);
        }
    }
}

// ---- malformed input ----

/// Bytes of a compact `emitBatch` with one span, built by hand so fields can be broken.
fn compact_message(span_fields: &[u8]) -> Vec<u8> {
    let mut b = vec![0x82, 0x81, 0x00, 0x09];
    b.extend_from_slice(b"emitBatch");
    b.push(0x1c); // field 1 (args.batch), struct
    b.push(0x1c); // field 1 (Batch.process), struct
    b.extend_from_slice(&[0x18, 0x03]); // field 1, binary, length 3
    b.extend_from_slice(b"svc");
    b.push(0x00); // end of Process
    b.push(0x19); // field 2 (Batch.spans), list
    b.push(0x1c); // 1 element of type struct
    b.extend_from_slice(span_fields);
    b.push(0x00); // end of Span
    b.push(0x00); // end of Batch
    b.push(0x00); // end of args
    b
}

/// A complete span's fields in the compact protocol.
const GOOD_SPAN: &[u8] = &[
    0x16, 0x02, // traceIdLow = 1
    0x16, 0x00, // traceIdHigh = 0
    0x16, 0x04, // spanId = 2
    0x16, 0x00, // parentSpanId = 0
    0x18, 0x02, b'o', b'p', // operationName = "op"
    0x25, 0x02, // flags (field 7, delta 2) = 1
    0x16, 0x90, 0x4e, // startTime = 5000
    0x16, 0x14, // duration = 10
];

#[test]
fn the_hand_built_message_is_valid() {
    let d = j::decode_agent_compact(&compact_message(GOOD_SPAN)).unwrap();
    assert_eq!(d.rejected_spans, 0, "{}", d.error_message);
    let span = only_span(&d);
    assert_eq!(span.name, "op");
    assert_eq!(span.start_time_unix_nano, 5_000_000);
    assert_eq!(span.end_time_unix_nano, 5_010_000);
}

enum Expect {
    /// The whole input is refused with an error containing this text.
    Error(&'static str),
    /// The input decodes and its one span is rejected with a message containing this text.
    Rejected(&'static str),
}

#[test]
fn malformed_inputs_are_refused_precisely() {
    let mut huge_string = compact_message(GOOD_SPAN);
    // operationName length 2 → 0x7fffffff (a varint of 5 bytes).
    let at = huge_string
        .windows(3)
        .position(|w| w == [0x18, 0x02, b'o'])
        .unwrap();
    huge_string.splice(at + 1..at + 2, [0xff, 0xff, 0xff, 0xff, 0x07]);

    let mut huge_list = compact_message(GOOD_SPAN);
    let at = huge_list.iter().position(|b| *b == 0x19).unwrap();
    huge_list.splice(at + 1..at + 2, [0xfc, 0xff, 0xff, 0xff, 0xff, 0x07]);

    let mut wrong_type = GOOD_SPAN.to_vec();
    wrong_type[0] = 0x18; // traceIdLow as a binary of length 2: skipped
    wrong_type.splice(1..2, [0x02, b'x', b'y']);

    let mut zero_trace = GOOD_SPAN.to_vec();
    zero_trace[1] = 0x00;

    let mut negative_duration = GOOD_SPAN.to_vec();
    let last = negative_duration.len() - 1;
    negative_duration[last] = 0x13; // zigzag -10

    let mut missing_start = GOOD_SPAN.to_vec();
    missing_start.truncate(GOOD_SPAN.len() - 5);
    missing_start.extend_from_slice(&[0x26, 0x14]); // duration as field 9 (delta 2)

    let mut bad_method = compact_message(GOOD_SPAN);
    bad_method[4..13].copy_from_slice(b"emitBatcX");

    let mut zipkin = vec![0x82, 0x81, 0x00, 0x0f];
    zipkin.extend_from_slice(b"emitZipkinBatch");
    zipkin.push(0x00);

    let mut deep = vec![0x82, 0x81, 0x00, 0x09];
    deep.extend_from_slice(b"emitBatch");
    // Field 2 (unknown), a struct, whose field 2 is a struct, ...
    deep.extend(std::iter::repeat_n(0x2c, 200));

    let good = compact_message(GOOD_SPAN);
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("empty datagram", vec![], Expect::Error("ends at byte 0")),
        (
            "binary protocol sent to the compact port",
            j::encode_agent_binary(&j::to_thrift(&known_batch())[0], 0),
            Expect::Error("not a compact protocol message"),
        ),
        (
            "truncated in the middle",
            good[..good.len() / 2].to_vec(),
            Expect::Error("input ends"),
        ),
        (
            "truncated before the last stop",
            good[..good.len() - 1].to_vec(),
            Expect::Error("input ends"),
        ),
        (
            "string longer than the datagram",
            huge_string,
            Expect::Error("larger than the"),
        ),
        (
            "list longer than the datagram",
            huge_list,
            Expect::Error("larger than the"),
        ),
        (
            "unknown method",
            bad_method,
            Expect::Error("unknown agent method"),
        ),
        (
            "emitZipkinBatch",
            zipkin,
            Expect::Error("emitZipkinBatch is not supported"),
        ),
        ("nesting without end", deep, Expect::Error("nest deeper")),
        (
            "bad type code",
            {
                let mut b = compact_message(GOOD_SPAN);
                let i = b.len() - 3; // the span's end marker → type 15
                b[i] = 0x1f;
                b
            },
            Expect::Error("unknown thrift type code 15"),
        ),
        (
            "a required field with the wrong type",
            compact_message(&wrong_type),
            Expect::Rejected("span 0: required field traceIdLow is missing"),
        ),
        (
            "zero trace id",
            compact_message(&zero_trace),
            Expect::Rejected("span 0: trace id is all zeros"),
        ),
        (
            "negative duration",
            compact_message(&negative_duration),
            Expect::Rejected("span 0: duration -10 is out of range"),
        ),
        (
            "missing start time",
            compact_message(&missing_start),
            Expect::Rejected("required field startTime"),
        ),
    ];
    for (name, bytes, expect) in cases {
        let result = j::decode_agent_compact(&bytes);
        match (expect, result) {
            (Expect::Error(text), Err(e)) => {
                assert!(e.to_string().contains(text), "{name}: {e}")
            }
            (Expect::Rejected(text), Ok(d)) => {
                assert_eq!(d.rejected_spans, 1, "{name}");
                assert_eq!(d.batch.span_count(), 0, "{name}");
                assert!(
                    d.error_message.contains(text),
                    "{name}: {}",
                    d.error_message
                );
            }
            (_, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn malformed_binary_and_protobuf_inputs_are_refused() {
    let body = j::encode_collector_thrift(&j::to_thrift(&known_batch())[0]);
    for cut in [0, 1, 5, body.len() / 3, body.len() - 1] {
        let e = j::decode_collector_thrift(&body[..cut]).unwrap_err();
        assert!(matches!(e, JaegerError::Thrift(_)), "cut at {cut}: {e}");
    }
    // A negative string length.
    let mut b = vec![12, 0, 1, 11, 0, 1, 0xff, 0xff, 0xff, 0xfe];
    b.extend_from_slice(&[0, 0]);
    let e = j::decode_collector_thrift(&b).unwrap_err();
    assert!(e.to_string().contains("length -2"), "{e}");
    // A Batch without spans.
    let e = j::decode_collector_thrift(&[12, 0, 1, 11, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a Jaeger Thrift batch: Batch.spans is missing"
    );
    // A strict message header with a bad version.
    let e = j::decode_agent_binary(&[0x80, 0x02, 0, 4, 0, 0, 0, 0]).unwrap_err();
    assert!(e.to_string().contains("bad binary protocol version"), "{e}");
    // Protobuf: garbage, and a span with a short trace id.
    assert!(matches!(
        j::decode_post_spans(&[0xff, 0xff, 0xff]),
        Err(JaegerError::Protobuf(_))
    ));
    let mut proto = j::to_proto(&known_batch()).remove(0);
    proto.spans[0].trace_id.truncate(8);
    let d = j::decode_post_spans(&j::encode_post_spans(proto)).unwrap();
    assert_eq!(d.rejected_spans, 1);
    assert_eq!(d.error_message, "span 0: trace id must be 16 bytes, got 8");
    assert_eq!(d.batch.span_count(), 2);
    let _ = (ThriftError::TooDeep, TType::Bool);
}

// ---- the same trace over OTLP ----

/// What the OTLP trace becomes when it can only travel as Jaeger: the documented losses,
/// applied to the model.
fn as_jaeger_sees_it(batch: &Batch) -> Batch {
    let mut out = batch.clone();
    for rs in &mut out.resource_spans {
        let mut resource = (*rs.resource).clone();
        resource.schema_url.clear();
        resource.dropped_attributes_count = 0;
        for kv in &mut resource.attributes {
            kv.value = flatten(&kv.value);
        }
        rs.resource = Arc::new(resource);
        for ss in &mut rs.scope_spans {
            ss.scope = Arc::new(Scope {
                name: ss.scope.name.clone(),
                version: ss.scope.version.clone(),
                ..Default::default()
            });
            for span in &mut ss.spans {
                span.start_time_unix_nano -= span.start_time_unix_nano % 1_000;
                span.end_time_unix_nano -= span.end_time_unix_nano % 1_000;
                span.flags &= 0xff;
                for kv in &mut span.attributes {
                    kv.value = flatten(&kv.value);
                }
                for e in &mut span.events {
                    e.time_unix_nano -= e.time_unix_nano % 1_000;
                }
                for l in &mut span.links {
                    let child_of = matches!(
                        stitch_model::find_attribute(&l.attributes, j::LINK_REF_TYPE),
                        Some(AnyValue::String(t)) if t == "child_of"
                    );
                    *l = Link {
                        trace_id: l.trace_id,
                        span_id: l.span_id,
                        attributes: vec![KeyValue::new(
                            j::LINK_REF_TYPE,
                            if child_of { "child_of" } else { "follows_from" },
                        )],
                        ..Default::default()
                    };
                }
            }
        }
    }
    out
}

fn flatten(v: &AnyValue) -> AnyValue {
    match v {
        AnyValue::Array(_) | AnyValue::KvList(_) | AnyValue::Empty => AnyValue::String(v.to_text()),
        other => other.clone(),
    }
}

#[test]
fn the_same_trace_over_otlp_and_jaeger_differs_only_where_jaeger_cannot_express_it() {
    // A trace with everything OTLP has: nanoseconds, arrays, scope attributes, link details.
    let mut batch = known_batch();
    {
        let rs = &mut batch.resource_spans[0];
        let mut resource = (*rs.resource).clone();
        resource.schema_url = "https://opentelemetry.io/schemas/1.26.0".into();
        resource.attributes.push(KeyValue {
            key: "process.args".into(),
            value: AnyValue::Array(vec!["a".into(), "b".into()]),
        });
        rs.resource = Arc::new(resource);
        let ss = &mut rs.scope_spans[0];
        ss.scope = Arc::new(Scope {
            attributes: vec![KeyValue::new("scope.flavour", "vanilla")],
            schema_url: "https://example.invalid/schema".into(),
            ..(*ss.scope).clone()
        });
        let root = &mut ss.spans[0];
        root.start_time_unix_nano += 789;
        root.end_time_unix_nano += 123;
        root.flags |= 0x100;
        root.attributes.push(KeyValue {
            key: "order.skus".into(),
            value: AnyValue::Array(vec!["A-1".into(), "B-2".into()]),
        });
        root.events[0].time_unix_nano += 5;
        root.links[0].trace_state = "k=v".into();
        root.links[0].flags = 1;
        root.links[0]
            .attributes
            .push(KeyValue::new("link.reason", "retry"));
    }
    let otlp =
        stitch_wire::otlp::decode_export_request(&stitch_wire::otlp::encode_batch(&batch)).unwrap();
    assert_eq!(otlp.batch, batch, "OTLP carries everything");
    let expected = as_jaeger_sees_it(&batch);
    assert_ne!(expected, batch, "the test exercises some losses");
    for (name, decoded) in through_every_encoding(&batch) {
        let want = if name == "api_v2 protobuf" {
            // api_v2 keeps nanoseconds.
            let mut w = expected.clone();
            for (rs, orig) in w.resource_spans.iter_mut().zip(&batch.resource_spans) {
                for (ss, oss) in rs.scope_spans.iter_mut().zip(&orig.scope_spans) {
                    for (s, os) in ss.spans.iter_mut().zip(&oss.spans) {
                        s.start_time_unix_nano = os.start_time_unix_nano;
                        s.end_time_unix_nano = os.end_time_unix_nano;
                        for (e, oe) in s.events.iter_mut().zip(&os.events) {
                            e.time_unix_nano = oe.time_unix_nano;
                        }
                    }
                }
            }
            w
        } else {
            expected.clone()
        };
        assert_eq!(decoded.batch, want, "{name}");
    }
}
