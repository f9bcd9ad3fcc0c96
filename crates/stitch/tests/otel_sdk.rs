//! End to end with the real OpenTelemetry Rust SDK: a known trace is exported over OTLP/gRPC
//! (gzip), OTLP/HTTP protobuf and OTLP/HTTP JSON to the real `stitch` binary, then read back
//! through the native API and the Jaeger-compatible API, and every field is checked.

mod common;

use std::time::{Duration, SystemTime};

use common::{Stitch, eventually, fetch_trace, get_json};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState, Tracer,
    TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use stitch_model::{AnyValue, SpanKind as Kind, StatusCode, Trace};

const T0_UNIX_NANOS: u64 = 1_764_000_000_000_000_000;

fn at(offset_ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(T0_UNIX_NANOS + offset_ms * 1_000_000)
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("checkout")
        .with_attributes([
            KeyValue::new("deployment.environment.name", "e2e"),
            KeyValue::new("host.cpu.count", 8i64),
        ])
        .build()
}

/// Emits the known trace and returns its id:
/// `POST /checkout` (server, error) → `charge card` (client, ok, link) → `INSERT orders`
/// (internal), plus `order.placed` (producer) under the root.
fn emit(provider: &SdkTracerProvider) -> String {
    let scope = InstrumentationScope::builder("stitch-e2e")
        .with_version("1.2.3")
        .with_attributes([KeyValue::new("scope.flavour", "vanilla")])
        .build();
    let tracer = provider.tracer_with_scope(scope);

    let mut root = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 500i64),
            KeyValue::new("order.total", 299.97f64),
            KeyValue::new("customer.premium", true),
            KeyValue::new(
                "order.skus",
                Value::Array(Array::String(vec![
                    StringValue::from("A-1"),
                    StringValue::from("B-2"),
                ])),
            ),
            KeyValue::new("order.quantities", Value::Array(Array::I64(vec![1, 2]))),
            KeyValue::new("order.weights", Value::Array(Array::F64(vec![0.5, 1.25]))),
            KeyValue::new("order.flags", Value::Array(Array::Bool(vec![true, false]))),
        ])
        .start(&tracer);
    root.add_event_with_timestamp(
        "inventory_check_passed",
        at(100),
        vec![
            KeyValue::new("warehouse", "us-east"),
            KeyValue::new("all_items_available", true),
        ],
    );
    root.set_status(Status::error("payment declined"));
    let trace_id = root.span_context().trace_id().to_string();
    let root_cx = Context::current_with_span(root);

    let linked = SpanContext::new(
        opentelemetry::TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
        opentelemetry::SpanId::from_hex("b7ad6b7169203331").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "v1")]).unwrap(),
    );
    let mut charge = tracer
        .span_builder("charge card")
        .with_kind(SpanKind::Client)
        .with_start_time(at(200))
        .with_links(vec![opentelemetry::trace::Link::new(
            linked,
            vec![KeyValue::new("link.reason", "retry-of")],
            0,
        )])
        .start_with_context(&tracer, &root_cx);
    charge.set_status(Status::Ok);
    let charge_cx = root_cx.with_span(charge);
    let mut insert = tracer
        .span_builder("INSERT orders")
        .with_kind(SpanKind::Internal)
        .with_start_time(at(250))
        .with_attributes([KeyValue::new("db.system.name", "postgresql")])
        .start_with_context(&tracer, &charge_cx);
    insert.end_with_timestamp(at(300));
    charge_cx.span().end_with_timestamp(at(1000));

    let mut produce = tracer
        .span_builder("order.placed publish")
        .with_kind(SpanKind::Producer)
        .with_start_time(at(1050))
        .start_with_context(&tracer, &root_cx);
    produce.end_with_timestamp(at(1100));
    root_cx.span().end_with_timestamp(at(1200));
    trace_id
}

fn attr<'a>(attrs: &'a [stitch_model::KeyValue], key: &str) -> &'a AnyValue {
    stitch_model::find_attribute(attrs, key).unwrap_or_else(|| panic!("attribute {key} missing"))
}

/// Asserts that every field the SDK sent survived the round trip.
fn assert_known_trace(trace: &Trace) {
    let spans: Vec<_> = trace.spans().collect();
    assert_eq!(spans.len(), 4, "{trace:#?}");
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s.span.name == name)
            .unwrap_or_else(|| panic!("span {name} missing"))
    };
    let root = by_name("POST /checkout");
    let charge = by_name("charge card");
    let insert = by_name("INSERT orders");
    let produce = by_name("order.placed publish");

    // Tree and ids.
    assert_eq!(root.span.parent_span_id, None);
    assert_eq!(charge.span.parent_span_id, Some(root.span.span_id));
    assert_eq!(insert.span.parent_span_id, Some(charge.span.span_id));
    assert_eq!(produce.span.parent_span_id, Some(root.span.span_id));
    for s in &spans {
        assert_eq!(s.span.trace_id, trace.trace_id);
        assert!(s.span.span_id.is_valid());
        assert_eq!(s.span.flags & 0xff, 1, "sampled flag");
    }
    // Kinds and timestamps (exact to the nanosecond).
    assert_eq!(root.span.kind, Kind::Server);
    assert_eq!(charge.span.kind, Kind::Client);
    assert_eq!(insert.span.kind, Kind::Internal);
    assert_eq!(produce.span.kind, Kind::Producer);
    assert_eq!(root.span.start_time_unix_nano, T0_UNIX_NANOS);
    assert_eq!(root.span.end_time_unix_nano, T0_UNIX_NANOS + 1_200_000_000);
    assert_eq!(
        charge.span.start_time_unix_nano,
        T0_UNIX_NANOS + 200_000_000
    );
    assert_eq!(insert.span.duration_nanos(), 50_000_000);

    // Attributes of every type.
    let a = &root.span.attributes;
    assert_eq!(attr(a, "http.request.method"), &AnyValue::from("POST"));
    assert_eq!(attr(a, "http.response.status_code"), &AnyValue::Int(500));
    assert_eq!(attr(a, "order.total"), &AnyValue::Double(299.97));
    assert_eq!(attr(a, "customer.premium"), &AnyValue::Bool(true));
    assert_eq!(
        attr(a, "order.skus"),
        &AnyValue::Array(vec![AnyValue::from("A-1"), AnyValue::from("B-2")])
    );
    assert_eq!(
        attr(a, "order.quantities"),
        &AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Int(2)])
    );
    assert_eq!(
        attr(a, "order.weights"),
        &AnyValue::Array(vec![AnyValue::Double(0.5), AnyValue::Double(1.25)])
    );
    assert_eq!(
        attr(a, "order.flags"),
        &AnyValue::Array(vec![AnyValue::Bool(true), AnyValue::Bool(false)])
    );

    // Events.
    assert_eq!(root.span.events.len(), 1);
    let ev = &root.span.events[0];
    assert_eq!(ev.name, "inventory_check_passed");
    assert_eq!(ev.time_unix_nano, T0_UNIX_NANOS + 100_000_000);
    assert_eq!(
        attr(&ev.attributes, "warehouse"),
        &AnyValue::from("us-east")
    );
    assert_eq!(
        attr(&ev.attributes, "all_items_available"),
        &AnyValue::Bool(true)
    );

    // Links.
    assert_eq!(charge.span.links.len(), 1);
    let link = &charge.span.links[0];
    assert_eq!(link.trace_id.to_hex(), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(link.span_id.to_hex(), "b7ad6b7169203331");
    assert_eq!(link.trace_state, "vendor=v1");
    assert_eq!(
        attr(&link.attributes, "link.reason"),
        &AnyValue::from("retry-of")
    );

    // Status.
    assert_eq!(root.span.status.code, StatusCode::Error);
    assert_eq!(root.span.status.message, "payment declined");
    assert_eq!(charge.span.status.code, StatusCode::Ok);
    assert_eq!(insert.span.status.code, StatusCode::Unset);

    // Resource and scope.
    assert_eq!(root.resource.service_name(), "checkout");
    assert_eq!(
        attr(&root.resource.attributes, "deployment.environment.name"),
        &AnyValue::from("e2e")
    );
    assert_eq!(
        attr(&root.resource.attributes, "host.cpu.count"),
        &AnyValue::Int(8)
    );
    assert_eq!(root.scope.name, "stitch-e2e");
    assert_eq!(root.scope.version, "1.2.3");
    assert_eq!(
        attr(&root.scope.attributes, "scope.flavour"),
        &AnyValue::from("vanilla")
    );
}

/// Checks the Jaeger-format view of the same trace, as the Jaeger UI and Grafana read it.
async fn assert_jaeger_view(api: &str, trace_id: &str) {
    let (status, body) = get_json(&format!("{api}/api/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{body}");
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], trace_id);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 4);
    let processes = trace["processes"].as_object().unwrap();
    assert_eq!(processes.len(), 1);
    let (pid, process) = processes.iter().next().unwrap();
    assert_eq!(process["serviceName"], "checkout");
    let root = spans
        .iter()
        .find(|s| s["operationName"] == "POST /checkout")
        .unwrap();
    assert_eq!(&root["processID"], pid);
    assert_eq!(root["startTime"], T0_UNIX_NANOS / 1000);
    assert_eq!(root["duration"], 1_200_000);
    let tag = |key: &str| {
        root["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("tag {key} missing in {root}"))
    };
    assert_eq!(tag("span.kind")["value"], "server");
    assert_eq!(tag("error")["value"], true);
    assert_eq!(tag("http.response.status_code")["type"], "int64");
    assert_eq!(root["logs"][0]["timestamp"], T0_UNIX_NANOS / 1000 + 100_000);
    let charge = spans
        .iter()
        .find(|s| s["operationName"] == "charge card")
        .unwrap();
    assert_eq!(charge["references"][0]["refType"], "CHILD_OF");
    assert_eq!(charge["references"][0]["spanID"], root["spanID"]);
    assert_eq!(charge["references"][1]["refType"], "FOLLOWS_FROM");

    let (_, services) = get_json(&format!("{api}/api/services")).await;
    assert_eq!(services["data"], serde_json::json!(["checkout"]));
    let (_, ops) = get_json(&format!(
        "{api}/api/operations?service=checkout&spanKind=server"
    ))
    .await;
    assert_eq!(
        ops["data"],
        serde_json::json!([{"name": "POST /checkout", "spanKind": "server"}])
    );
    let (_, found) = get_json(&format!(
        "{api}/api/traces?service=checkout&minDuration=1s&tags=%7B%22customer.premium%22%3A%22true%22%7D"
    ))
    .await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["data"][0]["traceID"], trace_id);
    let (_, none) = get_json(&format!("{api}/api/traces?service=checkout&minDuration=2s")).await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
}

async fn export_and_check(
    make_exporter: impl FnOnce(&Stitch) -> opentelemetry_otlp::SpanExporter + Send + 'static,
) {
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Stitch::start(&dir.path().join("data"), &[]));
    // The SDK's batch processor exports from its own thread and blocks on the exporter, so the
    // SDK is driven from a blocking thread (which still sees the Tokio runtime that tonic needs).
    let s = server.clone();
    let (trace_id, flushed) = tokio::task::spawn_blocking(move || {
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(make_exporter(&s))
            .with_resource(resource())
            .build();
        let trace_id = emit(&provider);
        let r = provider.force_flush();
        let _ = provider.shutdown();
        (trace_id, r)
    })
    .await
    .unwrap();
    flushed.unwrap_or_else(|e| panic!("export failed: {e}; server log:\n{}", server.log()));

    let api = server.api();
    let trace = eventually(Duration::from_secs(10), || fetch_trace(&api, &trace_id))
        .await
        .expect("trace is queryable after the export succeeded");
    assert_known_trace(&trace);
    assert_jaeger_view(&api, &trace_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_trace_over_grpc_with_gzip_is_stored_whole() {
    export_and_check(|s| {
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(s.otlp_grpc())
            .with_compression(opentelemetry_otlp::Compression::Gzip)
            .build()
            .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_trace_over_http_protobuf_is_stored_whole() {
    export_and_check(|s| {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(s.otlp_http())
            .build()
            .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_trace_over_http_json_is_stored_whole() {
    export_and_check(|s| {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(s.otlp_http())
            .build()
            .unwrap()
    })
    .await;
}
