//! Golden fixtures: bytes real Jaeger clients sent, captured once (see
//! `fixtures/jaeger/README.md`), decoded and checked field by field.

use std::path::Path;

use stitch_model::{AnyValue, Batch, KeyValue, Span, SpanId, SpanKind, StatusCode, TraceId};
use stitch_wire::Decoded;
use stitch_wire::jaeger as j;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jaeger")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ok(d: Result<Decoded, j::JaegerError>) -> Batch {
    let d = d.expect("the fixture decodes");
    assert_eq!(d.rejected_spans, 0, "{}", d.error_message);
    d.batch
}

fn span<'a>(batch: &'a Batch, id: &str) -> &'a Span {
    batch
        .spans()
        .find(|s| s.span.span_id == SpanId::from_hex(id).unwrap())
        .unwrap_or_else(|| panic!("no span {id}"))
        .span
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> &'a AnyValue {
    stitch_model::find_attribute(attrs, key).unwrap_or_else(|| panic!("no attribute {key}"))
}

const NODE_T0_NS: u64 = 1_718_000_000_123_000_000;
const MS: u64 = 1_000_000;

/// The trace of `emit.js` (jaeger-client 3.19.0 for Node), as both of its senders carry it.
fn check_node(batch: &Batch, trace_id: TraceId, root: &str, child: &str, follower: &str) {
    assert_eq!(batch.resource_spans.len(), 1);
    let rs = &batch.resource_spans[0];
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
            "deployment.environment",
            "host.cpu.count",
            "process.debug",
            "jaeger.version",
            "hostname",
            "ip",
            "client-uuid"
        ]
    );
    let res = &rs.resource.attributes;
    assert_eq!(rs.resource.service_name(), "jaeger-node-e2e");
    assert_eq!(attr(res, "host.cpu.count"), &AnyValue::Double(8.0));
    assert_eq!(attr(res, "process.debug"), &AnyValue::Bool(false));
    assert_eq!(attr(res, "jaeger.version"), &AnyValue::from("Node-3.19.0"));
    assert_eq!(rs.scope_spans.len(), 1, "jaeger-client knows no scopes");
    assert!(rs.scope_spans[0].scope.name.is_empty());
    // jaeger-client reports spans as they finish.
    let order: Vec<String> = rs.scope_spans[0]
        .spans
        .iter()
        .map(|s| s.span_id.to_hex())
        .collect();
    assert_eq!(order, [child, follower, root]);

    let r = span(batch, root);
    assert_eq!(r.trace_id, trace_id);
    assert_eq!(r.name, "POST /checkout");
    assert_eq!(r.kind, SpanKind::Server);
    assert_eq!(r.parent_span_id, None);
    assert_eq!(r.flags, 1);
    assert_eq!(r.start_time_unix_nano, NODE_T0_NS);
    assert_eq!(r.end_time_unix_nano, NODE_T0_NS + 250 * MS);
    assert_eq!(r.status.code, StatusCode::Error);
    assert_eq!(r.status.message, "");
    assert_eq!(
        r.attributes,
        vec![
            KeyValue::new("sampler.type", "const"),
            KeyValue::new("sampler.param", true),
            KeyValue::new("http.method", "POST"),
            KeyValue::new("http.status_code", 500.0),
            KeyValue::new("order.total", 299.97),
            KeyValue::new("customer.premium", true),
            KeyValue {
                key: "payload".into(),
                value: AnyValue::Bytes(vec![0, 1, 254, 255]),
            },
            KeyValue::new("text", "héllo, wörld"),
        ]
    );
    assert_eq!(r.events.len(), 2);
    assert_eq!(r.events[0].name, "inventory_check");
    assert_eq!(r.events[0].time_unix_nano, NODE_T0_NS + 1_500_000);
    assert_eq!(
        r.events[0].attributes,
        vec![
            KeyValue::new("warehouse", "us-east"),
            KeyValue::new("items", 3.0)
        ]
    );
    assert_eq!(r.events[1].name, "error");
    assert_eq!(r.events[1].time_unix_nano, NODE_T0_NS + 200 * MS);
    assert_eq!(
        r.events[1].attributes,
        vec![
            KeyValue::new("error.kind", "PaymentDeclined"),
            KeyValue::new("message", "payment declined"),
        ]
    );
    assert!(r.links.is_empty());

    let c = span(batch, child);
    assert_eq!(c.name, "charge card");
    assert_eq!(c.kind, SpanKind::Client);
    assert_eq!(c.parent_span_id, Some(SpanId::from_hex(root).unwrap()));
    assert_eq!(c.start_time_unix_nano, NODE_T0_NS + 10 * MS);
    assert_eq!(c.end_time_unix_nano, NODE_T0_NS + 200 * MS + 250_000);
    assert_eq!(
        c.attributes,
        vec![KeyValue::new("peer.service", "payments")]
    );
    assert_eq!(c.links.len(), 1);
    assert_eq!(
        c.links[0].trace_id,
        TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()
    );
    assert_eq!(c.links[0].span_id, SpanId::from_u64(0x4d2));
    assert_eq!(
        c.links[0].attributes,
        vec![KeyValue::new("opentracing.ref_type", "follows_from")]
    );
    assert_eq!(c.status.code, StatusCode::Unset);

    let f = span(batch, follower);
    assert_eq!(f.name, "send receipt");
    assert_eq!(f.kind, SpanKind::Producer);
    // jaeger-client sets parentSpanId to the FOLLOWS_FROM span and also lists the reference.
    assert_eq!(f.parent_span_id, Some(SpanId::from_hex(root).unwrap()));
    assert_eq!(f.links.len(), 1);
    assert_eq!(f.links[0].span_id, SpanId::from_hex(root).unwrap());
    assert_eq!(
        f.links[0].attributes,
        vec![KeyValue::new("opentracing.ref_type", "follows_from")]
    );
}

#[test]
fn jaeger_client_node_udp_datagram() {
    let bytes = fixture("jaeger-client-node-udp-binary.bin");
    let batch = ok(j::decode_agent_binary(&bytes));
    check_node(
        &batch,
        TraceId::from_hex("e58acf1c01ce324f35223d0c8b866b19").unwrap(),
        "35223d0c8b866b19",
        "b32a09eb0d1bcd29",
        "00cdc1f59259be10",
    );
    // The same bytes on the compact port are refused, not misread.
    let e = j::decode_agent_compact(&bytes).unwrap_err();
    assert!(
        e.to_string().contains("not a compact protocol message"),
        "{e}"
    );
}

#[test]
fn jaeger_client_node_http_body() {
    let batch = ok(j::decode_collector_thrift(&fixture(
        "jaeger-client-node-http.thrift",
    )));
    check_node(
        &batch,
        TraceId::from_halves(0, 0xd45d1291389e720b),
        "d45d1291389e720b",
        "6aa8bf54af240e04",
        "df9ebf3fbae4772f",
    );
}

const PY_T0_NS: u64 = 1_718_000_000_123_456_000;

#[test]
fn otel_python_agent_datagram_and_collector_body() {
    let agent = ok(j::decode_agent_compact(&fixture(
        "otel-python-agent-compact.bin",
    )));
    let collector = ok(j::decode_collector_thrift(&fixture(
        "otel-python-collector-http.thrift",
    )));
    assert_eq!(agent, collector, "the two protocols carry the same batch");

    let rs = &agent.resource_spans[0];
    assert_eq!(agent.resource_spans.len(), 1);
    assert_eq!(
        rs.resource.attributes,
        vec![KeyValue::new("service.name", "jaeger-py-e2e")],
        "the Thrift exporter sends only the service name as the process"
    );
    assert_eq!(rs.scope_spans.len(), 1);
    assert_eq!(rs.scope_spans[0].scope.name, "stitch.e2e");
    assert_eq!(rs.scope_spans[0].scope.version, "1.2.3");
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let resource_tags = [
        KeyValue::new("telemetry.sdk.language", "python"),
        KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        KeyValue::new("telemetry.sdk.version", "1.21.0"),
        KeyValue::new("service.name", "jaeger-py-e2e"),
        KeyValue::new("deployment.environment", "e2e"),
        KeyValue::new("host.cpu.count", 8i64),
    ];
    let with_resource = |mut attrs: Vec<KeyValue>| {
        attrs.extend(resource_tags.iter().cloned());
        attrs
    };

    let root = span(&agent, "00f067aa0ba902b7");
    assert_eq!(root.trace_id, trace_id);
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.flags, 1);
    assert_eq!(root.start_time_unix_nano, PY_T0_NS);
    assert_eq!(root.end_time_unix_nano, PY_T0_NS + 250 * MS);
    assert_eq!(root.status.code, StatusCode::Error);
    assert_eq!(root.status.message, "payment declined");
    assert_eq!(
        root.attributes,
        with_resource(vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 500i64),
            KeyValue::new("order.total", 299.97),
            KeyValue::new("customer.premium", true),
        ])
    );
    assert_eq!(root.events.len(), 1);
    assert_eq!(
        root.events[0].name, "inventory_check",
        "from the `message` field"
    );
    assert_eq!(root.events[0].time_unix_nano, PY_T0_NS + 1_500_000);
    assert_eq!(
        root.events[0].attributes,
        vec![
            KeyValue::new("warehouse", "us-east"),
            KeyValue::new("items", 3i64)
        ]
    );

    let child = span(&agent, "53995c3f42cd8ad8");
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(child.parent_span_id, Some(root.span_id));
    assert_eq!(child.status.code, StatusCode::Ok);
    assert_eq!(child.end_time_unix_nano, PY_T0_NS + 200 * MS + 250_000);
    assert_eq!(
        child.attributes,
        with_resource(vec![KeyValue::new("peer.service", "payments")])
    );
    assert_eq!(child.links.len(), 1);
    assert_eq!(child.links[0].span_id, SpanId::from_u64(0x4d2));

    let internal = span(&agent, "b9c7c989f97918e1");
    assert_eq!(internal.kind, SpanKind::Internal);
    assert_eq!(internal.parent_span_id, Some(child.span_id));
    assert_eq!(internal.status.code, StatusCode::Unset);

    let producer = span(&agent, "e457b5a2e4d86bd1");
    assert_eq!(producer.kind, SpanKind::Producer);
    assert_eq!(producer.parent_span_id, Some(root.span_id));
    assert_eq!(producer.attributes, with_resource(vec![]));
}
