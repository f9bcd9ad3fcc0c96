//! RED and the dependency graph answered from the aggregates the store maintains as spans
//! arrive, against a real store: the same numbers as a scan of the stored traces, and spans that
//! arrive after their trace was counted are counted once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use stitch_model::{Batch, Span, SpanId, SpanKind, Status, StatusCode as SpanStatus, TraceId};
use stitch_query::{Live, LiveOptions, TraceReader};
use stitch_store::{Store, StoreConfig};
use stitch_testkit::{batch_of, resource};
use tower::ServiceExt;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn span(
    t: u64,
    id: u8,
    parent: Option<u8>,
    kind: SpanKind,
    name: &str,
    start: u64,
    ms: u64,
) -> Span {
    Span {
        trace_id: TraceId([t as u8 + 1; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: parent.map(|p| SpanId([p; 8])),
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms * 1_000_000,
        ..Default::default()
    }
}

fn batch(service: &str, spans: Vec<Span>) -> Batch {
    batch_of(&resource(service), spans)
}

async fn append(store: &Store, b: &Batch) {
    store
        .append(stitch_wire::otlp::encode_batch(b), b.clone())
        .await
        .unwrap();
}

async fn get(router: &Router, uri: &str) -> Value {
    let resp = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{uri}");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

async fn settled(live: &Live, added: u64, late: u64) {
    for _ in 0..100 {
        if live.with(|l| (l.traces_added, l.late_updates)) == (added, late) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "live aggregates did not settle: {:?}",
        live.with(|l| (l.traces_added, l.late_updates))
    );
}

/// A store (no fsync) followed by live aggregates that take a trace once it has been quiet for
/// `settle`, composed as `stitch serve` does: the store, the aggregates, and the reader their
/// feeder reads through (it stops once that reader is dropped).
async fn open_store(
    dir: &std::path::Path,
    settle: Duration,
) -> (Store, Arc<Live>, Arc<dyn TraceReader>) {
    let live = Arc::new(Live::new(LiveOptions {
        settle,
        ..LiveOptions::default()
    }));
    let mut config = StoreConfig::new(dir);
    config.fsync = false;
    config.observer = Some(live.clone());
    let store = Store::open(config).await.unwrap();
    let reader: Arc<dyn TraceReader> = Arc::new(store.clone());
    live.spawn_feeder(&reader);
    (store, live, reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_and_dependencies_come_from_live_aggregates_with_the_numbers_of_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (store, live, _reader) = open_store(dir.path(), Duration::from_millis(300)).await;
    let t0 = now() + 1_000_000_000;
    // Ten requests frontend → orders; the third fails in orders. Frontend exports first; the
    // orders spans of the last four arrive after their traces were counted (late).
    let mut late = Vec::new();
    for t in 0..10u64 {
        let start = t0 + t * 1_000_000;
        append(
            &store,
            &batch(
                "frontend",
                vec![
                    span(t, 1, None, SpanKind::Server, "GET /checkout", start, 100),
                    span(
                        t,
                        2,
                        Some(1),
                        SpanKind::Client,
                        "POST /orders",
                        start + 5_000_000,
                        90,
                    ),
                ],
            ),
        )
        .await;
        let mut server = span(
            t,
            3,
            Some(2),
            SpanKind::Server,
            "POST /orders",
            start + 10_000_000,
            80,
        );
        if t == 2 {
            server.status = Status {
                code: SpanStatus::Error,
                message: "out of stock".into(),
            };
        }
        let orders = batch("orders", vec![server]);
        if t < 6 {
            append(&store, &orders).await;
        } else {
            late.push(orders);
        }
    }
    let live_router = stitch_api::router(Arc::new(store.clone()), Some(live.clone()));
    // The same store without live aggregates: every answer is a scan.
    let scan_router = stitch_api::router(Arc::new(store.clone()), None);
    let calls = |v: &Value| {
        v["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["parent"] == "frontend" && e["child"] == "orders")
            .map(|e| e["callCount"].as_f64().unwrap())
    };
    settled(&live, 10, 0).await;
    // What is counted goes to a block; the late spans start after everything in it, and are
    // placed in their traces (the frontend's client spans make the calls) only if the feeder
    // reads that block for them too.
    store.flush().await.unwrap();
    for b in &late {
        append(&store, b).await;
    }
    // Before the late spans settle, they are read as pending and the spans already counted are
    // not added again: every request and call once, whatever the feeder has done meanwhile.
    let deps = get(&live_router, "/api/v1/dependencies?lookback=10m").await;
    assert_eq!(deps["source"], "live");
    assert_eq!(calls(&deps), Some(10.0), "{deps}");
    let red = get(
        &live_router,
        "/api/v1/services/orders/red?lookback=10m&step=60s",
    )
    .await;
    assert_eq!(red["overall"]["summary"]["requests"], 10.0, "{red}");
    settled(&live, 10, 4).await;
    let red_uri = "/api/v1/services/orders/red?lookback=10m&step=60s";
    let (live, scan) = (
        get(&live_router, red_uri).await,
        get(&scan_router, red_uri).await,
    );
    assert_eq!(live["source"], "live");
    assert_eq!(scan["source"], "scan");
    assert_eq!(live["overall"]["summary"]["requests"], 10.0);
    assert_eq!(live["overall"]["summary"]["errors"], 1.0);
    for key in ["requests", "errors", "p50Nanos", "p99Nanos"] {
        assert_eq!(
            live["overall"]["summary"][key], scan["overall"]["summary"][key],
            "{key}: live and scan differ"
        );
    }

    let deps_uri = "/api/v1/dependencies?lookback=10m";
    let (live, scan) = (
        get(&live_router, deps_uri).await,
        get(&scan_router, deps_uri).await,
    );
    assert_eq!(live["source"], "live");
    let edge = |v: &Value| {
        v["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["parent"] == "frontend" && e["child"] == "orders")
            .cloned()
            .unwrap_or_else(|| panic!("no frontend → orders edge: {v}"))
    };
    let (l, s) = (edge(&live), edge(&scan));
    assert_eq!(
        l["callCount"], 10.0,
        "each call once, late server spans included"
    );
    assert_eq!(l["errorCount"], 1.0);
    assert_eq!(
        (l["callCount"].clone(), l["errorCount"].clone()),
        (s["callCount"].clone(), s["errorCount"].clone())
    );

    // A window before the store opened is not covered: the answer is a scan.
    let before = get(
        &live_router,
        "/api/v1/services/orders/red?lookback=2h&step=60s",
    )
    .await;
    assert_eq!(before["source"], "scan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_still_arriving_are_in_live_answers_before_they_settle() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing settles during the test: every answer needs the pending traces.
    let (store, live, _reader) = open_store(dir.path(), Duration::from_secs(3_600)).await;
    let t0 = now();
    for t in 0..5u64 {
        let start = t0 + t * 1_000_000;
        append(
            &store,
            &batch(
                "frontend",
                vec![
                    span(t, 1, None, SpanKind::Server, "GET /cart", start, 50),
                    span(
                        t,
                        2,
                        Some(1),
                        SpanKind::Client,
                        "GET /stock",
                        start + 1_000_000,
                        40,
                    ),
                ],
            ),
        )
        .await;
        append(
            &store,
            &batch(
                "stock",
                vec![span(
                    t,
                    3,
                    Some(2),
                    SpanKind::Server,
                    "GET /stock",
                    start + 2_000_000,
                    30,
                )],
            ),
        )
        .await;
    }
    assert_eq!(live.with(|l| l.traces_added), 0, "nothing settled yet");
    assert_eq!(live.pending(100).traces.len(), 5);

    let router = stitch_api::router(Arc::new(store.clone()), Some(live.clone()));
    let deps = get(&router, "/api/v1/dependencies?lookback=10m").await;
    assert_eq!(deps["source"], "live");
    assert_eq!(deps["pendingTracesLeftOut"], 0);
    let edge = deps["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["parent"] == "frontend" && e["child"] == "stock")
        .unwrap_or_else(|| panic!("no frontend → stock edge: {deps}"));
    assert_eq!(edge["callCount"], 5.0);
    let red = get(&router, "/api/v1/services/stock/red?lookback=10m&step=10s").await;
    assert_eq!(red["source"], "live");
    assert_eq!(red["overall"]["summary"]["requests"], 5.0, "{red}");
    // The answer is a view: the aggregates themselves still wait for the traces to settle.
    assert_eq!(live.with(|l| l.traces_added), 0);
    // At most so many pending traces are read; the rest are reported as left out.
    let p = live.pending(2);
    assert_eq!((p.traces.len(), p.left_out), (2, 3));
}
