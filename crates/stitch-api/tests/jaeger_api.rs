//! The Jaeger-compatible query API, driven through the router against an in-memory store.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use stitch_model::{
    AnyValue, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId,
    SpanKind, Status, StatusCode as SpanStatus, Trace, TraceId,
};
use stitch_query::{MemoryStore, SearchQuery};
use tower::ServiceExt;

mod common;
use common::enc;

// ---------------------------------------------------------------------------------------------
// Fixtures.

const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_B: &str = "a3ce929d0e0e4736";
const TRACE_C: &str = "0af7651916cd43dd8448eb211c80319c";
const LINKED_TRACE: &str = "5b8efff798038103d269b633813fc60c";
const ROOT: &str = "00f067aa0ba902b7";
const CHARGE: &str = "00f067aa0ba902b8";
const QUERY: &str = "00f067aa0ba902b9";
const RENDER: &str = "00f067aa0ba902ba";
/// 2023-11-14T22:13:20Z in Unix nanoseconds.
const T0: u64 = 1_700_000_000_000_000_000;
const T0_MICROS: u64 = T0 / 1_000;

fn tid(hex: &str) -> TraceId {
    TraceId::from_hex(hex).unwrap()
}

fn sid(hex: &str) -> SpanId {
    SpanId::from_hex(hex).unwrap()
}

fn resource(attributes: Vec<KeyValue>) -> Arc<Resource> {
    Arc::new(Resource {
        attributes,
        ..Default::default()
    })
}

fn frontend() -> Arc<Resource> {
    resource(vec![
        KeyValue::new("service.name", "frontend"),
        KeyValue::new("host.name", "web-1"),
        KeyValue::new("process.pid", 4242i64),
    ])
}

fn group(resource: Arc<Resource>, scope: Scope, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource,
        scope_spans: vec![ScopeSpans {
            scope: Arc::new(scope),
            spans,
        }],
    }
}

fn status(code: SpanStatus, message: &str) -> Status {
    Status {
        code,
        message: message.into(),
    }
}

/// Two services, every attribute type, events, links, both statuses; the frontend's resource
/// arrives twice (in two groups) and must still be one process.
fn trace_a() -> Trace {
    let root = Span {
        trace_id: tid(TRACE_A),
        span_id: sid(ROOT),
        parent_span_id: None,
        trace_state: "congo=t61rcWkgMzE".into(),
        flags: 0x301,
        name: "GET /checkout".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 1_500_000_999,
        attributes: vec![
            KeyValue::new("http.method", "GET"),
            KeyValue::new("http.status_code", 200i64),
            KeyValue::new("cache.hit", false),
            KeyValue::new("load", 0.25),
            KeyValue::new("request.id", AnyValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef])),
            KeyValue::new(
                "labels",
                AnyValue::Array(vec![
                    AnyValue::from("a"),
                    AnyValue::Int(1),
                    AnyValue::Bool(true),
                ]),
            ),
            KeyValue::new(
                "headers",
                AnyValue::KvList(vec![
                    KeyValue::new("b", AnyValue::Bytes(vec![0x01])),
                    KeyValue::new("a", AnyValue::Array(vec![AnyValue::Empty, 1.5.into()])),
                ]),
            ),
            KeyValue::new("empty", AnyValue::Empty),
            KeyValue::new("big", 1i64 << 60),
            KeyValue::new("ceiling", f64::INFINITY),
        ],
        events: vec![
            Event {
                time_unix_nano: T0 + 1_000_999,
                name: "cache miss".into(),
                attributes: vec![KeyValue::new("key.count", 7i64)],
                ..Default::default()
            },
            Event {
                time_unix_nano: T0 + 2_000_000,
                name: "exception".into(),
                attributes: vec![
                    KeyValue::new("event", "custom"),
                    KeyValue::new("exception.message", "boom"),
                ],
                ..Default::default()
            },
        ],
        links: vec![
            Link {
                trace_id: tid(LINKED_TRACE),
                span_id: sid("eee19b7ec3c1b174"),
                ..Default::default()
            },
            Link {
                trace_id: tid(TRACE_A),
                span_id: sid("1111111111111111"),
                attributes: vec![KeyValue::new("opentracing.ref_type", "child_of")],
                ..Default::default()
            },
        ],
        status: status(SpanStatus::Ok, ""),
        ..Default::default()
    };
    let charge = Span {
        trace_id: tid(TRACE_A),
        span_id: sid(CHARGE),
        parent_span_id: Some(sid(ROOT)),
        name: "charge".into(),
        kind: SpanKind::Client,
        start_time_unix_nano: T0 + 100_000_000,
        end_time_unix_nano: T0 + 600_000_000,
        status: status(SpanStatus::Error, "card declined"),
        ..Default::default()
    };
    // Ends before it starts, and links to its own parent as follows-from.
    let query = Span {
        trace_id: tid(TRACE_A),
        span_id: sid(QUERY),
        parent_span_id: Some(sid(CHARGE)),
        name: "db.query".into(),
        kind: SpanKind::Unspecified,
        start_time_unix_nano: T0 + 200_000_000,
        end_time_unix_nano: T0 + 199_000_000,
        links: vec![Link {
            trace_id: tid(TRACE_A),
            span_id: sid(CHARGE),
            attributes: vec![KeyValue::new("opentracing.ref_type", "follows_from")],
            ..Default::default()
        }],
        ..Default::default()
    };
    let render = Span {
        trace_id: tid(TRACE_A),
        span_id: sid(RENDER),
        parent_span_id: Some(sid(ROOT)),
        name: "render".into(),
        kind: SpanKind::Internal,
        start_time_unix_nano: T0 + 700_000_000,
        end_time_unix_nano: T0 + 800_000_000,
        ..Default::default()
    };
    let http_scope = Scope {
        name: "io.opentelemetry.http".into(),
        version: "1.2.3".into(),
        ..Default::default()
    };
    let payments = resource(vec![
        KeyValue::new("service.name", "payments"),
        KeyValue::new("deployment.environment", "prod"),
    ]);
    Trace {
        trace_id: tid(TRACE_A),
        resource_spans: vec![
            group(frontend(), http_scope, vec![root]),
            group(payments, Scope::default(), vec![charge, query]),
            group(frontend(), Scope::default(), vec![render]),
        ],
    }
}

/// A trace whose id has a zero high half; a frontend error with two operations.
fn trace_b() -> Trace {
    let id = TraceId::from_halves(0, 0xa3ce929d0e0e4736);
    let health = Span {
        trace_id: id,
        span_id: sid("0000000000000b01"),
        name: "GET /health".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: T0 + 10_000_000_000,
        end_time_unix_nano: T0 + 10_005_000_000,
        attributes: vec![KeyValue::new("http.status_code", 500i64)],
        status: status(SpanStatus::Error, ""),
        ..Default::default()
    };
    let render = Span {
        trace_id: id,
        span_id: sid("0000000000000b02"),
        parent_span_id: Some(sid("0000000000000b01")),
        name: "render".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: T0 + 10_001_000_000,
        end_time_unix_nano: T0 + 10_002_000_000,
        ..Default::default()
    };
    Trace {
        trace_id: id,
        resource_spans: vec![group(frontend(), Scope::default(), vec![health, render])],
    }
}

fn trace_c() -> Trace {
    let span = Span {
        trace_id: tid(TRACE_C),
        span_id: sid("0000000000000c01"),
        name: "GET /cart".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: T0 + 20_000_000_000,
        end_time_unix_nano: T0 + 22_000_000_000,
        attributes: vec![KeyValue::new("http.status_code", 200i64)],
        ..Default::default()
    };
    Trace {
        trace_id: tid(TRACE_C),
        resource_spans: vec![group(
            resource(vec![KeyValue::new("service.name", "cart")]),
            Scope::default(),
            vec![span],
        )],
    }
}

fn app() -> (Router, Arc<MemoryStore>) {
    app_with(MemoryStore::from_traces([trace_a(), trace_b(), trace_c()]))
}

fn app_with(reader: MemoryStore) -> (Router, Arc<MemoryStore>) {
    let reader = Arc::new(reader);
    (stitch_api::router(reader.clone(), None), reader)
}

/// The last query that reached the store.
fn last_query(reader: &MemoryStore) -> SearchQuery {
    reader
        .searches()
        .last()
        .cloned()
        .expect("a search reached the store")
}

async fn get(router: &Router, uri: &str) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{uri}: body is not JSON ({e}): {bytes:?}"));
    (status, body)
}

async fn search(router: &Router, query: &str) -> (StatusCode, Value) {
    get(router, &format!("/api/traces?{query}")).await
}

/// Runs a search that must succeed and returns the query the store received.
async fn searched(query: &str) -> SearchQuery {
    let (router, reader) = app();
    let (status, body) = search(&router, query).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    last_query(&reader)
}

fn trace_ids(body: &Value) -> Vec<&str> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap())
        .collect()
}

fn span<'a>(trace: &'a Value, span_id: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["spanID"] == span_id)
        .unwrap_or_else(|| panic!("span {span_id} in {trace}"))
}

fn assert_bad_request(status: StatusCode, body: &Value, needles: &[&str]) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["errors"][0]["code"], 400);
    let msg = body["errors"][0]["msg"].as_str().unwrap();
    for needle in needles {
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// GET /api/traces/{traceID}

#[tokio::test]
async fn a_trace_is_returned_in_jaegers_envelope() {
    let (router, _) = app();
    let (status, body) = get(&router, &format!("/api/traces/{TRACE_A}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 0);
    assert_eq!(body["limit"], 0);
    assert_eq!(body["offset"], 0);
    assert_eq!(body["errors"], Value::Null);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    let trace = &data[0];
    assert_eq!(trace["traceID"], TRACE_A);
    assert_eq!(trace["warnings"], Value::Null);
    let ids: Vec<_> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["spanID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ROOT, CHARGE, QUERY, RENDER]);
}

#[tokio::test]
async fn each_distinct_resource_is_one_process_numbered_in_order_of_appearance() {
    let (router, _) = app();
    let (_, body) = get(&router, &format!("/api/traces/{TRACE_A}")).await;
    let trace = &body["data"][0];
    assert_eq!(
        trace["processes"],
        json!({
            "p1": {
                "serviceName": "frontend",
                "tags": [
                    {"key": "host.name", "type": "string", "value": "web-1"},
                    {"key": "process.pid", "type": "int64", "value": 4242},
                ],
            },
            "p2": {
                "serviceName": "payments",
                "tags": [{"key": "deployment.environment", "type": "string", "value": "prod"}],
            },
        })
    );
    let process_ids: Vec<_> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["processID"].as_str().unwrap())
        .collect();
    assert_eq!(process_ids, ["p1", "p2", "p2", "p1"]);
}

#[tokio::test]
async fn a_span_carries_every_field_jaeger_clients_read() {
    let (router, _) = app();
    let (_, body) = get(&router, &format!("/api/traces/{TRACE_A}")).await;
    assert_eq!(
        *span(&body["data"][0], ROOT),
        json!({
            "traceID": TRACE_A,
            "spanID": ROOT,
            "operationName": "GET /checkout",
            "references": [
                {"refType": "FOLLOWS_FROM", "traceID": LINKED_TRACE, "spanID": "eee19b7ec3c1b174"},
                {"refType": "CHILD_OF", "traceID": TRACE_A, "spanID": "1111111111111111"},
            ],
            "startTime": T0_MICROS,
            "duration": 1_500_000,
            "tags": [
                {"key": "otel.scope.name", "type": "string", "value": "io.opentelemetry.http"},
                {"key": "otel.scope.version", "type": "string", "value": "1.2.3"},
                {"key": "http.method", "type": "string", "value": "GET"},
                {"key": "http.status_code", "type": "int64", "value": 200},
                {"key": "cache.hit", "type": "bool", "value": false},
                {"key": "load", "type": "float64", "value": 0.25},
                {"key": "request.id", "type": "binary", "value": "3q2+7w=="},
                {"key": "labels", "type": "string", "value": r#"["a",1,true]"#},
                {"key": "headers", "type": "string", "value": r#"{"a":[null,1.5],"b":"AQ=="}"#},
                {"key": "empty", "type": "string", "value": ""},
                {"key": "big", "type": "int64", "value": "1152921504606846976"},
                {"key": "ceiling", "type": "float64", "value": "Infinity"},
                {"key": "span.kind", "type": "string", "value": "server"},
                {"key": "otel.status_code", "type": "string", "value": "OK"},
                {"key": "w3c.tracestate", "type": "string", "value": "congo=t61rcWkgMzE"},
            ],
            "logs": [
                {
                    "timestamp": T0_MICROS + 1_000,
                    "fields": [
                        {"key": "event", "type": "string", "value": "cache miss"},
                        {"key": "key.count", "type": "int64", "value": 7},
                    ],
                },
                {
                    "timestamp": T0_MICROS + 2_000,
                    "fields": [
                        {"key": "event", "type": "string", "value": "custom"},
                        {"key": "exception.message", "type": "string", "value": "boom"},
                    ],
                },
            ],
            "processID": "p1",
            "warnings": null,
            "flags": 1,
        })
    );
}

#[tokio::test]
async fn an_error_status_becomes_otel_status_code_error_and_a_boolean_error_tag() {
    let (router, _) = app();
    let (_, body) = get(&router, &format!("/api/traces/{TRACE_A}")).await;
    let charge = span(&body["data"][0], CHARGE);
    assert_eq!(
        charge["tags"],
        json!([
            {"key": "span.kind", "type": "string", "value": "client"},
            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
            {"key": "error", "type": "bool", "value": true},
            {"key": "otel.status_description", "type": "string", "value": "card declined"},
        ])
    );
    assert_eq!(charge["logs"], json!([]));
    assert_eq!(charge["startTime"], T0_MICROS + 100_000);
    assert_eq!(charge["duration"], 500_000);
}

#[tokio::test]
async fn the_parent_is_the_first_reference_as_child_of() {
    let (router, _) = app();
    let (_, body) = get(&router, &format!("/api/traces/{TRACE_A}")).await;
    let trace = &body["data"][0];
    assert_eq!(
        span(trace, CHARGE)["references"],
        json!([{"refType": "CHILD_OF", "traceID": TRACE_A, "spanID": ROOT}])
    );
    assert_eq!(
        span(trace, ROOT)["references"][0]["refType"],
        "FOLLOWS_FROM"
    );
}

#[tokio::test]
async fn a_link_to_the_parent_only_sets_the_type_of_the_parent_reference() {
    let (router, _) = app();
    let (_, body) = get(&router, &format!("/api/traces/{TRACE_A}")).await;
    let query = span(&body["data"][0], QUERY);
    assert_eq!(
        query["references"],
        json!([{"refType": "FOLLOWS_FROM", "traceID": TRACE_A, "spanID": CHARGE}])
    );
}

#[tokio::test]
async fn an_unspecified_kind_adds_no_tag_and_a_negative_duration_is_zero() {
    let (router, _) = app();
    let (_, body) = get(&router, &format!("/api/traces/{TRACE_A}")).await;
    let query = span(&body["data"][0], QUERY);
    assert_eq!(query["tags"], json!([]));
    assert_eq!(query["duration"], 0);
    assert_eq!(query["flags"], 0);
}

#[tokio::test]
async fn a_trace_id_with_a_zero_high_half_is_rendered_with_sixteen_digits() {
    let (router, _) = app();
    let (status, body) = get(&router, &format!("/api/traces/{TRACE_B}")).await;
    assert_eq!(status, StatusCode::OK);
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], TRACE_B);
    assert_eq!(trace["spans"][0]["traceID"], TRACE_B);
    assert_eq!(
        trace["spans"][1]["references"][0]["traceID"], TRACE_B,
        "references use the same form"
    );
}

#[tokio::test]
async fn short_and_upper_case_trace_ids_are_accepted_and_left_padded() {
    let (router, _) = app();
    for id in [
        "a3ce929d0e0e4736",
        "A3CE929D0E0E4736",
        "0000000000000000a3ce929d0e0e4736",
        "00a3ce929d0e0e4736",
    ] {
        let (status, body) = get(&router, &format!("/api/traces/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}");
        assert_eq!(body["data"][0]["traceID"], TRACE_B, "{id}");
    }
}

#[tokio::test]
async fn an_unknown_trace_is_a_404_saying_trace_not_found() {
    let (router, _) = app();
    let (status, body) = get(&router, "/api/traces/abc").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": 404, "msg": "trace not found"}],
        })
    );
}

#[tokio::test]
async fn a_trace_id_that_is_not_one_to_thirty_two_hex_digits_is_a_400_naming_it() {
    let (router, _) = app();
    let too_long = "1".repeat(33);
    for id in ["xyz", "4bf92f35-77b3", too_long.as_str(), "0000"] {
        let (status, body) = get(&router, &format!("/api/traces/{id}")).await;
        assert_bad_request(status, &body, &["traceID", id]);
        assert_eq!(body["total"], 0);
    }
}

#[tokio::test]
async fn the_pure_conversion_gives_what_the_api_serves() {
    let (router, _) = app();
    let (_, body) = get(&router, &format!("/api/traces/{TRACE_A}")).await;
    let converted = stitch_api::jaeger::trace_to_jaeger(&trace_a());
    assert_eq!(serde_json::to_value(&converted).unwrap(), body["data"][0]);
    assert_eq!(converted.process("p2").unwrap().service_name, "payments");
}

#[tokio::test]
async fn a_resource_without_service_name_is_the_unknown_service() {
    let mut trace = trace_c();
    trace.resource_spans[0].resource = resource(vec![KeyValue::new("host.name", "h")]);
    let value = serde_json::to_value(stitch_api::jaeger::trace_to_jaeger(&trace)).unwrap();
    assert_eq!(
        value["processes"]["p1"],
        json!({"serviceName": "unknown_service", "tags": [
            {"key": "host.name", "type": "string", "value": "h"}
        ]})
    );
}

// ---------------------------------------------------------------------------------------------
// Services and operations

#[tokio::test]
async fn services_are_listed_with_their_number() {
    let (router, _) = app();
    let (status, body) = get(&router, "/api/services").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "data": ["cart", "frontend", "payments"],
            "total": 3, "limit": 0, "offset": 0, "errors": null,
        })
    );
}

#[tokio::test]
async fn the_legacy_operations_route_lists_unique_operation_names() {
    let (router, _) = app();
    let (status, body) = get(&router, "/api/services/frontend/operations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"],
        json!(["GET /checkout", "GET /health", "render"])
    );
    assert_eq!(body["total"], 3);

    let (status, body) = get(&router, "/api/services/no%20such/operations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["total"], 0);
}

#[tokio::test]
async fn operations_are_listed_with_their_span_kind() {
    let (router, _) = app();
    let (status, body) = get(&router, "/api/operations?service=frontend").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "data": [
                {"name": "GET /checkout", "spanKind": "server"},
                {"name": "GET /health", "spanKind": "server"},
                {"name": "render", "spanKind": "internal"},
                {"name": "render", "spanKind": "server"},
            ],
            "total": 4, "limit": 0, "offset": 0, "errors": null,
        })
    );
}

#[tokio::test]
async fn operations_can_be_filtered_by_span_kind() {
    let (router, _) = app();
    let (_, body) = get(
        &router,
        "/api/operations?service=frontend&spanKind=internal",
    )
    .await;
    assert_eq!(
        body["data"],
        json!([{"name": "render", "spanKind": "internal"}])
    );
    assert_eq!(body["total"], 1);
    let (_, body) = get(&router, "/api/operations?service=frontend&spanKind=server").await;
    assert_eq!(body["total"], 3);
    let (_, body) = get(&router, "/api/operations?service=frontend&spanKind=").await;
    assert_eq!(body["total"], 4, "an empty kind is no filter");
}

#[tokio::test]
async fn operations_without_a_service_or_with_an_unknown_kind_are_a_400() {
    let (router, _) = app();
    let (status, body) = get(&router, "/api/operations").await;
    assert_bad_request(status, &body, &["service", "required"]);
    let (status, body) = get(&router, "/api/operations?spanKind=server").await;
    assert_bad_request(status, &body, &["service"]);
    let (status, body) = get(
        &router,
        "/api/operations?service=frontend&spanKind=sideways",
    )
    .await;
    assert_bad_request(status, &body, &["spanKind", "sideways"]);
}

// ---------------------------------------------------------------------------------------------
// GET /api/traces (search)

#[tokio::test]
async fn search_returns_matching_traces_newest_first_in_the_envelope() {
    let (router, _) = app();
    let (status, body) = search(&router, "service=frontend").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trace_ids(&body), [TRACE_B, TRACE_A]);
    assert_eq!(body["errors"], Value::Null);
    assert_eq!(
        body["data"][1]["processes"]["p2"]["serviceName"],
        "payments"
    );

    let tags = enc(r#"{"http.status_code":500}"#);
    let (_, body) = search(&router, &format!("service=frontend&tags={tags}")).await;
    assert_eq!(trace_ids(&body), [TRACE_B]);

    let (_, body) = search(&router, "service=frontend&minDuration=1s").await;
    assert_eq!(trace_ids(&body), [TRACE_A]);

    let (_, body) = search(&router, "service=nobody").await;
    assert_eq!(body["data"], json!([]));
}

#[tokio::test]
async fn search_parameters_become_a_store_query_in_nanoseconds() {
    let tags = enc(r#"{"http.status_code":"200"}"#);
    let query = searched(&format!(
        "service=frontend&operation={}&start=1700000000000000&end=1700000060000000\
         &minDuration=1.5s&maxDuration=2m&limit=5&tags={tags}",
        enc("GET /checkout")
    ))
    .await;
    assert_eq!(
        query,
        SearchQuery {
            service: Some("frontend".into()),
            operation: Some("GET /checkout".into()),
            span_kind: None,
            tags: vec![("http.status_code".into(), "200".into())],
            min_duration_nanos: Some(1_500_000_000),
            max_duration_nanos: Some(120_000_000_000),
            start_unix_nanos: Some(1_700_000_000_000_000_000),
            end_unix_nanos: Some(1_700_000_060_000_000_000),
            limit: 5,
        }
    );
}

#[tokio::test]
async fn go_style_durations_are_understood() {
    for (text, nanos) in [
        ("1.5s", 1_500_000_000),
        ("100ms", 100_000_000),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("1m", 60_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("0", 0),
    ] {
        let query = searched(&format!("service=frontend&minDuration={}", enc(text))).await;
        assert_eq!(query.min_duration_nanos, Some(nanos), "{text}");
        let query = searched(&format!("service=frontend&maxDuration={}", enc(text))).await;
        assert_eq!(query.max_duration_nanos, Some(nanos), "{text}");
    }
}

#[tokio::test]
async fn tag_values_may_be_json_strings_numbers_or_bools_and_are_compared_as_text() {
    let tags = enc(r#"{"http.status_code":500,"error":true,"ratio":0.5,"peer":"db"}"#);
    let mut query = searched(&format!("service=frontend&tags={tags}")).await;
    query.tags.sort();
    assert_eq!(
        query.tags,
        [
            ("error".to_owned(), "true".to_owned()),
            ("http.status_code".to_owned(), "500".to_owned()),
            ("peer".to_owned(), "db".to_owned()),
            ("ratio".to_owned(), "0.5".to_owned()),
        ]
    );
}

#[tokio::test]
async fn legacy_tag_parameters_split_at_the_first_colon() {
    let query = searched(&format!(
        "service=frontend&tag=error:true&tag={}",
        enc("http.url:http://shop:8080/cart")
    ))
    .await;
    assert_eq!(
        query.tags,
        [
            ("error".to_owned(), "true".to_owned()),
            ("http.url".to_owned(), "http://shop:8080/cart".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_tags_object_overrides_a_legacy_tag_with_the_same_key() {
    let tags = enc(r#"{"error":"false"}"#);
    let query = searched(&format!("service=frontend&tag=error:true&tags={tags}")).await;
    assert_eq!(query.tags, [("error".to_owned(), "false".to_owned())]);
}

#[tokio::test]
async fn lookback_sets_the_start_before_the_end_when_start_is_absent() {
    let end = "1700000060000000";
    let end_nanos = 1_700_000_060_000_000_000u64;
    let query = searched(&format!("service=frontend&end={end}&lookback=1h")).await;
    assert_eq!(query.start_unix_nanos, Some(end_nanos - 3_600_000_000_000));
    assert_eq!(query.end_unix_nanos, Some(end_nanos));

    let query = searched(&format!("service=frontend&end={end}&lookback=2d")).await;
    assert_eq!(
        query.start_unix_nanos,
        Some(end_nanos - 172_800_000_000_000)
    );

    let query = searched(&format!(
        "service=frontend&start=1700000000000000&end={end}&lookback=1h"
    ))
    .await;
    assert_eq!(
        query.start_unix_nanos,
        Some(T0),
        "an explicit start wins over lookback"
    );

    let query = searched(&format!(
        "service=frontend&start=1700000000000000&end={end}&lookback=custom"
    ))
    .await;
    assert_eq!(query.start_unix_nanos, Some(T0));
}

#[tokio::test]
async fn lookback_without_an_end_counts_back_from_now() {
    let before = now_nanos();
    let query = searched("service=frontend&lookback=1h").await;
    let after = now_nanos();
    let start = query.start_unix_nanos.expect("a start");
    let hour = 3_600_000_000_000;
    assert!(
        (before - hour..=after - hour).contains(&start),
        "{start} not in [{}, {}]",
        before - hour,
        after - hour
    );
    assert_eq!(query.end_unix_nanos, None);
}

#[tokio::test]
async fn without_start_end_or_lookback_the_time_is_unbounded() {
    let query = searched("service=frontend").await;
    assert_eq!(query.start_unix_nanos, None);
    assert_eq!(query.end_unix_nanos, None);
}

#[tokio::test]
async fn the_limit_defaults_to_twenty() {
    assert_eq!(searched("service=frontend").await.limit, 20);
    assert_eq!(searched("service=frontend&limit=").await.limit, 20);
    assert_eq!(searched("service=frontend&limit=0").await.limit, 20);
    assert_eq!(searched("service=frontend&limit=1500").await.limit, 1500);
}

#[tokio::test]
async fn the_limit_caps_the_number_of_traces() {
    let (router, _) = app();
    let (_, body) = search(&router, "service=frontend&limit=1").await;
    assert_eq!(trace_ids(&body), [TRACE_B]);
}

#[tokio::test]
async fn empty_parameters_count_as_absent() {
    let query = searched(
        "service=frontend&operation=&tags=&minDuration=&maxDuration=&start=&end=&lookback=",
    )
    .await;
    assert_eq!(
        query,
        SearchQuery {
            service: Some("frontend".into()),
            limit: 20,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn trace_ids_fetch_those_traces_and_report_the_missing_ones() {
    let (router, reader) = app();
    let (status, body) = search(
        &router,
        &format!("traceID={TRACE_C}&traceID=1234&traceID={TRACE_B}&traceID={TRACE_C}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trace_ids(&body), [TRACE_C, TRACE_B]);
    assert_eq!(
        body["errors"],
        json!([{"msg": "trace not found", "traceID": "0000000000001234"}])
    );
    assert!(
        reader.searches().is_empty(),
        "no search is run for trace ids"
    );
}

#[tokio::test]
async fn found_trace_ids_report_no_errors() {
    let (router, _) = app();
    let (status, body) = search(&router, &format!("traceID={TRACE_A}&service=ignored")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(trace_ids(&body), [TRACE_A]);
    assert_eq!(body["errors"], Value::Null);
}

#[tokio::test]
async fn a_search_without_a_service_is_a_400() {
    let (router, _) = app();
    let (status, body) = search(&router, "operation=charge").await;
    assert_bad_request(status, &body, &["'service'", "required"]);
}

#[tokio::test]
async fn a_max_duration_below_the_min_duration_is_a_400() {
    let (router, _) = app();
    let (status, body) = search(&router, "service=frontend&minDuration=2s&maxDuration=1s").await;
    assert_bad_request(status, &body, &["maxDuration", "minDuration"]);
}

#[tokio::test]
async fn malformed_search_parameters_are_a_400_naming_the_parameter_and_value() {
    let (router, reader) = app();
    for (param, value) in [
        ("minDuration", "abc"),
        ("minDuration", "10"),
        ("maxDuration", "-1s"),
        ("maxDuration", "5x"),
        ("start", "yesterday"),
        ("start", "-5"),
        ("end", "1.5"),
        ("limit", "ten"),
        ("limit", "-1"),
        ("lookback", "forever"),
        ("tags", "notjson"),
        ("tags", r#"["a"]"#),
        ("tags", r#"{"a":[1]}"#),
        ("tags", r#"{"a":null}"#),
        ("tag", "novalue"),
        ("traceID", "xyz"),
        ("traceID", "0"),
        ("spanKind", "sideways"),
    ] {
        let (status, body) =
            search(&router, &format!("service=frontend&{param}={}", enc(value))).await;
        let shown = format!("{value:?}");
        let shown = shown.trim_matches('"');
        assert_bad_request(status, &body, &[&format!("'{param}'"), shown]);
    }
    assert!(reader.searches().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Store failures

#[tokio::test]
async fn store_errors_are_a_500_carrying_the_store_message() {
    let failing = MemoryStore::new();
    failing.fail_reads(Some("the write-ahead log is closed"));
    let (router, _) = app_with(failing);
    for uri in [
        format!("/api/traces/{TRACE_A}"),
        "/api/traces?service=frontend".to_owned(),
        format!("/api/traces?traceID={TRACE_A}"),
        "/api/services".to_owned(),
        "/api/services/frontend/operations".to_owned(),
        "/api/operations?service=frontend".to_owned(),
    ] {
        let (status, body) = get(&router, &uri).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(
            body,
            json!({
                "data": null, "total": 0, "limit": 0, "offset": 0,
                "errors": [{"code": 500, "msg": "the write-ahead log is closed"}],
            }),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn store_errors_are_a_500_in_the_form_of_each_api_family() {
    let failing = Arc::new(MemoryStore::new());
    failing.fail_reads(Some("the write-ahead log is closed"));
    let router = stitch_api::router(failing.clone(), None);
    // The native API (`/api/v1`): `{"error": {"code", "message"}}`.
    for uri in [
        format!("/api/v1/traces/{TRACE_A}"),
        format!("/api/v1/traces/{TRACE_A}/waterfall"),
        format!("/api/v1/search?q={}", enc("{ status = error }")),
    ] {
        let (status, body) = get(&router, &uri).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert_eq!(
            body,
            json!({"error": {"code": 500, "message": "the write-ahead log is closed"}}),
            "{uri}"
        );
    }
    // Jaeger's api_v3 gateway: `{"error": {"httpCode", "message"}}`.
    let (status, body) = get(&router, "/api/v3/services").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"error": {"httpCode": 500, "message": "the write-ahead log is closed"}})
    );
    // Zipkin's API: the message as plain text.
    let zipkin = stitch_api::zipkin::router(failing, Default::default());
    let response = zipkin
        .oneshot(
            Request::get("/api/v2/services")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"the write-ahead log is closed");
}

#[tokio::test]
async fn a_refused_traceql_query_names_its_position_in_the_native_form() {
    let (router, reader) = app();
    let (status, body) = get(&router, &format!("/api/v1/search?q={}", enc("{ .a = }"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid TraceQL query: "),
        "{body}"
    );
    assert!(body["error"]["position"].is_u64(), "{body}");
    assert!(reader.searches().is_empty());
}
