//! The endpoints behind the web UI — RED series, the dependency graph with errors and latency,
//! the compact waterfall view and span details — and the UI's own routes, driven through the
//! router against an in-memory store.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use stitch_model::{
    KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind, Status,
    StatusCode as SpanStatus, Trace, TraceId,
};
use stitch_testkit::{MS, MemoryStore, SECOND};
use tower::ServiceExt;

/// 2023-11-14T22:14:00Z, a whole minute (steps are aligned to whole steps since the epoch).
const T0: u64 = 1_700_000_040 * SECOND;

fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", service),
            KeyValue::new("host.name", format!("{service}-1")),
        ],
        ..Default::default()
    })
}

struct Sp {
    id: u64,
    parent: Option<u64>,
    service: &'static str,
    kind: SpanKind,
    name: &'static str,
    start_ms: u64,
    end_ms: u64,
    error: bool,
}

/// A trace of spans; `offset` is added to every time.
fn trace(n: u64, offset: u64, spans: &[Sp]) -> Trace {
    let trace_id = TraceId::from_halves(0xabc, n);
    let mut out = Trace::new(trace_id);
    for sp in spans {
        let span = Span {
            trace_id,
            span_id: SpanId::from_u64((n << 32) + sp.id),
            parent_span_id: sp.parent.map(|p| SpanId::from_u64((n << 32) + p)),
            name: sp.name.into(),
            kind: sp.kind,
            start_time_unix_nano: T0 + offset + sp.start_ms * MS,
            end_time_unix_nano: T0 + offset + sp.end_ms * MS,
            attributes: if sp.name == "SELECT" {
                vec![KeyValue::new("db.system", "postgresql")]
            } else {
                Vec::new()
            },
            events: if sp.id == 2 {
                vec![stitch_model::Event {
                    time_unix_nano: T0 + offset + 20 * MS,
                    name: "sent".into(),
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            status: Status {
                code: if sp.error {
                    SpanStatus::Error
                } else {
                    SpanStatus::Unset
                },
                message: String::new(),
            },
            ..Default::default()
        };
        out.resource_spans.push(ResourceSpans {
            resource: resource(sp.service),
            scope_spans: vec![ScopeSpans {
                scope: Arc::new(Scope {
                    name: "test".into(),
                    ..Default::default()
                }),
                spans: vec![span],
            }],
        });
    }
    out
}

/// frontend GET /checkout → (client) → orders POST /orders → SELECT (postgresql, inferred).
fn checkout(n: u64, offset: u64, failed: bool, scale: u64) -> Trace {
    use SpanKind::{Client, Server};
    trace(
        n,
        offset,
        &[
            Sp {
                id: 1,
                parent: None,
                service: "frontend",
                kind: Server,
                name: "GET /checkout",
                start_ms: 0,
                end_ms: 100 * scale,
                error: failed,
            },
            Sp {
                id: 2,
                parent: Some(1),
                service: "frontend",
                kind: Client,
                name: "POST /orders",
                start_ms: 5,
                end_ms: 95 * scale,
                error: failed,
            },
            Sp {
                id: 3,
                parent: Some(2),
                service: "orders",
                kind: Server,
                name: "POST /orders",
                start_ms: 10,
                end_ms: 90 * scale,
                error: failed,
            },
            Sp {
                id: 4,
                parent: Some(3),
                service: "orders",
                kind: Client,
                name: "SELECT",
                start_ms: 20,
                end_ms: 30,
                error: false,
            },
        ],
    )
}

/// Four checkouts in the first minute after T0 (one failed, one twice as slow), one in the
/// third minute.
fn reader() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::from_traces([
        checkout(1, 0, false, 1),
        checkout(2, 10 * SECOND, true, 1),
        checkout(3, 20 * SECOND, false, 2),
        checkout(4, 30 * SECOND, false, 1),
        checkout(5, 150 * SECOND, false, 1),
    ]))
}

fn app(reader: Arc<MemoryStore>) -> Router {
    stitch_api::router(reader, None)
}

async fn get_raw(router: &Router, uri: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let resp = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

async fn get(router: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = get_raw(router, uri).await;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

const WINDOW: &str = "start=1700000040000000&end=1700000280000000";

#[tokio::test]
async fn red_series_count_requests_errors_and_quantiles_per_step_and_operation() {
    let r = reader();
    let router = app(r.clone());
    let (status, body) = get(
        &router,
        &format!("/api/v1/services/orders/red?{WINDOW}&step=1m"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q = r.searches().last().cloned().unwrap();
    assert_eq!(q.service.as_deref(), Some("orders"));
    assert_eq!(q.start_unix_nanos, Some(T0));
    assert_eq!(q.end_unix_nanos, Some(T0 + 240 * SECOND));
    assert!(q.limit >= 10_000, "a large scan limit");

    assert_eq!(body["service"], "orders");
    assert_eq!(body["stepNanos"], 60 * SECOND);
    assert_eq!(body["tracesScanned"], 5);
    assert_eq!(body["truncated"], false);
    let ts: Vec<&str> = body["timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        ts,
        [
            "1700000040000000000",
            "1700000100000000000",
            "1700000160000000000",
            "1700000220000000000"
        ]
    );
    let overall = &body["overall"];
    assert_eq!(overall["operation"], Value::Null);
    assert_eq!(overall["summary"]["requests"], 5.0);
    assert_eq!(overall["summary"]["errors"], 1.0);
    let series = &overall["series"];
    assert_eq!(series["requests"], serde_json::json!([4.0, 0.0, 1.0, 0.0]));
    assert_eq!(series["errors"], serde_json::json!([1.0, 0.0, 0.0, 0.0]));
    assert_eq!(series["errorRate"][0], 0.25);
    assert!((series["ratePerSecond"][0].as_f64().unwrap() - 4.0 / 60.0).abs() < 1e-9);
    // Durations 80, 80, 170, 80 ms in the first minute: p50 ≈ 80 ms, p99 ≈ 170 ms (1%).
    let p50 = series["p50Nanos"][0].as_u64().unwrap();
    let p99 = series["p99Nanos"][0].as_u64().unwrap();
    assert!(p50.abs_diff(80 * MS) <= 80 * MS / 100 + 1, "{p50}");
    assert!(p99.abs_diff(170 * MS) <= 170 * MS / 100 + 1, "{p99}");
    assert_eq!(
        series["p50Nanos"][1],
        Value::Null,
        "no requests, no quantile"
    );

    let ops: Vec<(&str, &str)> = body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["operation"].as_str().unwrap(),
                o["spanKind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ops, [("POST /orders", "server"), ("SELECT", "client")]);
    assert_eq!(body["operations"][1]["summary"]["requests"], 5.0);
}

#[tokio::test]
async fn red_of_an_unknown_service_is_empty_and_bad_parameters_are_400s() {
    let router = app(reader());
    let (status, body) = get(&router, &format!("/api/v1/services/nobody/red?{WINDOW}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["overall"], Value::Null);
    assert_eq!(body["operations"], serde_json::json!([]));
    assert_eq!(body["tracesScanned"], 0);

    for (query, needle) in [
        ("step=1ms", "at most 1000 points"),
        ("start=soon", "'start'"),
        ("lookback=forever", "'lookback'"),
        ("limit=-1", "'limit'"),
    ] {
        let (status, body) = get(&router, &format!("/api/v1/services/orders/red?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{query}: {msg}");
        assert_eq!(body["error"]["code"], 400);
    }
}

#[tokio::test]
async fn the_scan_limit_is_reported_as_truncation() {
    let r = reader();
    let router = app(r.clone());
    let (_, body) = get(&router, &format!("/api/v1/dependencies?{WINDOW}&limit=2")).await;
    assert_eq!(body["tracesScanned"], 2);
    assert_eq!(body["truncated"], true);
}

#[tokio::test]
async fn dependencies_carry_call_counts_errors_and_latency_per_edge() {
    let r = reader();
    let router = app(r.clone());
    let (status, body) = get(&router, &format!("/api/v1/dependencies?{WINDOW}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q = r.searches().last().cloned().unwrap();
    assert_eq!(q.service, None, "every service");
    let edges = body["edges"].as_array().unwrap();
    let edge = |p: &str, c: &str| {
        edges
            .iter()
            .find(|e| e["parent"] == p && e["child"] == c)
            .unwrap_or_else(|| panic!("no edge {p} -> {c} in {body}"))
    };
    let fo = edge("frontend", "orders");
    assert_eq!(fo["callCount"], 5.0);
    assert_eq!(fo["errorCount"], 1.0);
    assert_eq!(fo["errorRate"], 0.2);
    // Latency is what the caller saw: the client span (90 ms, or 185 ms once).
    let p50 = fo["p50Nanos"].as_u64().unwrap();
    assert!(p50.abs_diff(90 * MS) <= MS, "{p50}");
    let db = edge("orders", "postgresql");
    assert_eq!(db["callCount"], 5.0);
    assert_eq!(db["inferredChild"], true);
    let services: Vec<(&str, bool)> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["inferred"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [("frontend", false), ("orders", false), ("postgresql", true)]
    );
    let stats: Vec<(&str, f64)> = body["serviceStats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap(),
                s["requests"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(stats, [("frontend", 5.0), ("orders", 5.0)]);
    assert!(body["window"]["startUnixNano"].is_string());

    // A window without the checkouts of the first minute.
    let (_, body) = get(
        &router,
        "/api/v1/dependencies?start=1700000160000000&end=1700000280000000",
    )
    .await;
    assert_eq!(body["tracesScanned"], 1);
    assert_eq!(body["edges"][0]["callCount"], 1.0);
}

#[tokio::test]
async fn the_waterfall_view_is_columnar_with_parents_as_indices() {
    let router = app(reader());
    let id = TraceId::from_halves(0xabc, 2).to_hex();
    let (status, body) = get(&router, &format!("/api/v1/traces/{id}/waterfall")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["traceId"], id);
    assert_eq!(body["spanCount"], 4);
    assert_eq!(body["baseUnixSecond"], 1_700_000_050u64);
    let spans = &body["spans"];
    assert_eq!(spans["parent"], serde_json::json!([-1, 0, 1, 2]));
    assert_eq!(spans["kind"], serde_json::json!([2, 3, 2, 3]));
    assert_eq!(spans["status"], serde_json::json!([2, 2, 2, 0]));
    assert_eq!(
        spans["start"],
        serde_json::json!([0, 5 * MS, 10 * MS, 20 * MS])
    );
    assert_eq!(spans["end"][0], 100 * MS);
    let names = body["names"].as_array().unwrap();
    let name_of = |k: usize| {
        names[spans["name"][k].as_u64().unwrap() as usize]
            .as_str()
            .unwrap()
    };
    assert_eq!(name_of(0), "GET /checkout");
    assert_eq!(name_of(1), "POST /orders");
    assert_eq!(name_of(2), "POST /orders");
    assert_eq!(spans["name"][1], spans["name"][2], "names are interned");
    let resources = body["resources"].as_array().unwrap();
    let service_of = |k: usize| {
        resources[spans["resource"][k].as_u64().unwrap() as usize]["service"]
            .as_str()
            .unwrap()
    };
    assert_eq!(service_of(2), "orders");
    assert_eq!(
        body["events"],
        serde_json::json!({"span": [1], "time": [20 * MS], "name": [names.iter().position(|n| n == "sent").unwrap()]})
    );
    assert_eq!(body["missingParents"], serde_json::json!([]));

    let (status, body) = get(&router, "/api/v1/traces/123456/waterfall").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
}

#[tokio::test]
async fn an_orphans_missing_parent_is_listed() {
    let mut t = checkout(7, 0, false, 1);
    // Drop the frontend's client span: the orders server span loses its parent.
    t.resource_spans.remove(1);
    let router = app(Arc::new(MemoryStore::from_traces([t])));
    let id = TraceId::from_halves(0xabc, 7).to_hex();
    let (_, body) = get(&router, &format!("/api/v1/traces/{id}/waterfall")).await;
    assert_eq!(body["spans"]["parent"], serde_json::json!([-1, -1, 1]));
    let missing = SpanId::from_u64((7 << 32) + 2).to_hex();
    assert_eq!(body["missingParents"], serde_json::json!([[1, missing]]));
}

#[tokio::test]
async fn a_span_detail_is_the_span_with_its_resource_and_scope_as_otlp_json() {
    let router = app(reader());
    let id = TraceId::from_halves(0xabc, 1).to_hex();
    let span = SpanId::from_u64((1 << 32) + 4).to_hex();
    let (status, body) = get(&router, &format!("/api/v1/traces/{id}/spans/{span}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["span"]["spanId"], span);
    assert_eq!(body["span"]["name"], "SELECT");
    assert_eq!(body["span"]["attributes"][0]["key"], "db.system");
    assert_eq!(body["scope"]["name"], "test");
    assert_eq!(
        body["resource"]["attributes"][0]["value"]["stringValue"],
        "orders"
    );
    let (status, _) = get(
        &router,
        &format!("/api/v1/traces/{id}/spans/00000000000000ff"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&router, &format!("/api/v1/traces/{id}/spans/xyz")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_ui_shell_answers_every_deep_link_and_assets_have_types_and_cache_headers() {
    let router = app(reader());
    for path in [
        "/",
        "/search?service=a",
        "/trace/abc?span=00f067aa0ba902b7",
        "/services",
        "/services/orders",
    ] {
        let (status, headers, body) = get_raw(&router, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'self'")
        );
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains("<main id=\"main\">")
        );
    }
    let (_, _, shell) = get_raw(&router, "/").await;
    let shell = String::from_utf8(shell).unwrap();
    let start = shell.find("/ui/").unwrap() + 4;
    let version = &shell[start..start + shell[start..].find('/').unwrap()];

    for (name, ty) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let (status, headers, _) = get_raw(&router, &format!("/ui/{version}/{name}")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(headers[header::CONTENT_TYPE], ty);
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let (_, headers, _) = get_raw(&router, &format!("/ui/{name}")).await;
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        let resp = router
            .clone()
            .oneshot(
                Request::get(format!("/ui/{name}"))
                    .header(header::IF_NONE_MATCH, &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    }
    let (status, _, _) = get_raw(&router, "/ui/nothing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The UI does not shadow the API.
    let (status, body) = get(&router, "/api/services").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0], "frontend");
}
