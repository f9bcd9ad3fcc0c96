//! Caps on the work one request may ask for, in every API family: a request over a cap is a
//! 400 whose message states the cap, and a search answer never carries more than
//! `MAX_ANSWER_SPANS` spans.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use stitch_model::{Trace, TraceId};
use stitch_testkit::{MemoryStore, TraceBuilder};
use tower::ServiceExt;

mod common;
use common::enc;

const SPANS_PER_TRACE: usize = 8_000;

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Three traces of 8,000 spans of service `big`, a second apart, the newest a minute ago.
fn big_traces() -> Vec<Trace> {
    let t0 = now_nanos() - 60_000_000_000;
    (0..3u64)
        .map(|n| {
            let start = t0 - n * 1_000_000_000;
            let mut trace = TraceBuilder::with_id(TraceId::from_halves(0xb16, n + 1));
            for i in 0..SPANS_PER_TRACE as u64 {
                trace = trace.ns(
                    "big",
                    i + 1,
                    (i > 0).then_some(1),
                    &format!("op {}", i % 7),
                    start + i * 1_000,
                    start + i * 1_000 + 500,
                );
            }
            trace.build()
        })
        .collect()
}

fn app() -> Router {
    let reader = Arc::new(MemoryStore::from_traces(big_traces()));
    stitch_api::router(reader.clone(), None)
        .merge(stitch_api::zipkin::router(reader, Default::default()))
}

async fn get(router: &Router, uri: &str) -> (StatusCode, http::HeaderMap, String) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn every_request_over_a_cap_is_a_400_stating_the_cap() {
    let router = app();
    let ids = (1..=101)
        .map(|i| format!("traceID={i:x}"))
        .collect::<Vec<_>>()
        .join("&");
    let many_tags = format!(
        "{{{}}}",
        (0..33)
            .map(|i| format!("\"k{i}\":\"v\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let zipkin_ids = (1..=101)
        .map(|i| format!("{i:x}"))
        .collect::<Vec<_>>()
        .join(",");
    let zipkin_terms = (0..33)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(" and ");
    let cases = [
        ("/api/traces?service=big&limit=1501".to_owned(), "cap of 1500 traces"),
        ("/api/traces?service=big&lookback=400d".to_owned(), "cap of 366 days"),
        (format!("/api/traces?{ids}"), "cap of 100"),
        (
            format!("/api/traces?service=big&tags={}", enc(&many_tags)),
            "cap of 32",
        ),
        ("/api/v2/traces?serviceName=big&limit=1501".to_owned(), "cap of 1500 traces"),
        (
            format!("/api/v2/traces?serviceName=big&lookback={}", 400u64 * 86_400_000),
            "cap of 366 days",
        ),
        (
            format!("/api/v2/traces?annotationQuery={}", enc(&zipkin_terms)),
            "cap of 32",
        ),
        (format!("/api/v2/traceMany?traceIds={zipkin_ids}"), "cap of 100"),
        (
            "/api/v3/traces?query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2020-01-02T00:00:00Z&query.num_traces=5000".to_owned(),
            "cap of 1500 traces",
        ),
        (
            format!("/api/v1/search?q={}&limit=1501", enc("{ }")),
            "from 0 to 1500",
        ),
        (
            format!("/api/v1/search?q={}&lookback=400d", enc("{ }")),
            "cap of 366 days",
        ),
    ];
    for (uri, needle) in cases {
        let (status, _, body) = get(&router, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.contains(needle), "{uri}: {body:?} lacks {needle:?}");
    }
    // At the caps, the same requests are served; explicit windows have no cap.
    let start = now_nanos() / 1_000 - 3 * 366 * 86_400_000_000;
    for uri in [
        "/api/traces?service=big&limit=1500&lookback=366d",
        &format!("/api/traces?service=big&start={start}"),
        "/api/v3/traces?query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z",
        "/api/v2/traces?serviceName=big&limit=1500",
        "/api/v1/search?q=%7B%20%7D&limit=1500",
    ] {
        let (status, _, body) = get(&router, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
}

#[tokio::test]
async fn a_search_answer_holds_at_most_twenty_thousand_spans_and_says_what_it_left_out() {
    let router = app();
    // Jaeger: the two newest traces (16,000 spans) fit; the note is in `errors`.
    let (status, _, body) = get(&router, "/api/traces?service=big&limit=10&lookback=1h").await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "0000000000000b160000000000000001",
            "0000000000000b160000000000000002"
        ]
    );
    let note = body["errors"][0]["msg"].as_str().unwrap();
    assert!(
        note.contains("newest 2 of 3 traces") && note.contains("20000 spans"),
        "{note}"
    );
    // Zipkin: the same cut, said in a header.
    let (status, headers, body) = get(&router, "/api/v2/traces?serviceName=big&limit=10").await;
    assert_eq!(status, StatusCode::OK);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let note = headers["x-stitch-truncated"].to_str().unwrap();
    assert!(note.contains("newest 2 of 3 traces"), "{note}");
    // With fewer traces asked for, nothing is cut and nothing is said.
    let (_, _, body) = get(&router, "/api/traces?service=big&limit=1&lookback=1h").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["data"][0]["spans"].as_array().unwrap().len(),
        SPANS_PER_TRACE
    );
    assert_eq!(body["errors"], Value::Null);
}

/// Without live aggregates, service performance metrics scan at most 10,000 traces per
/// service; an answer that reached that bound says so in a header, one that did not has none.
#[tokio::test]
async fn a_scan_that_reached_its_bound_says_so() {
    let t0 = now_nanos() - 120_000_000_000;
    let traces = |n: u64| -> Vec<Trace> {
        (0..n)
            .map(|i| {
                TraceBuilder::with_id(TraceId::from_halves(0x5c, i + 1))
                    .ns(
                        "web",
                        1,
                        None,
                        "GET /",
                        t0 + i * 1_000,
                        t0 + i * 1_000 + 500,
                    )
                    .kind(stitch_model::SpanKind::Server)
                    .build()
            })
            .collect()
    };
    let end_ms = now_nanos() / 1_000_000;
    let uri = format!("/api/metrics/calls?service=web&endTs={end_ms}&lookback=600000");
    for (n, partial) in [(10, false), (10_001, true)] {
        let app = stitch_api::router(Arc::new(MemoryStore::from_traces(traces(n))), None);
        let (status, headers, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let said = headers
            .get("stitch-partial")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(said.is_some(), partial, "{n} traces: {said:?}");
        if let Some(why) = said {
            assert!(why.contains("newest 10000 traces of web"), "{why}");
        }
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["name"], "service_call_rate", "{json}");
    }
}
