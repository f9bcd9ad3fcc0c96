//! The cross-trace analyses of one endpoint — latency breakdown and cohort diff — driven
//! through the router against an in-memory store of constructed traces whose critical paths
//! are known exactly.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use stitch_model::{SpanKind, Trace, TraceId};
use stitch_testkit::{MS, MemoryStore, SECOND, TraceBuilder};
use tower::ServiceExt;

/// 2023-11-14T22:14:00Z.
const T0: u64 = 1_700_000_040 * SECOND;
/// A window of ten minutes from T0, in Unix microseconds.
const WINDOW: &str = "start=1700000040000000&end=1700000640000000";

/// One span: id, parent, service, name, start and end in ms from the trace's start.
type Sp = (u64, Option<u64>, &'static str, &'static str, u64, u64);

fn trace(n: u64, spans: &[Sp]) -> Trace {
    let start = T0 + n * SECOND;
    let mut builder = TraceBuilder::with_id(TraceId::from_halves(0xfeed, n));
    for &(id, parent, service, name, start_ms, end_ms) in spans {
        let kind = if parent.is_none() {
            SpanKind::Server
        } else {
            SpanKind::Internal
        };
        builder = builder
            .ns(
                service,
                (n << 16) + id,
                parent.map(|p| (n << 16) + p),
                name,
                start + start_ms * MS,
                start + end_ms * MS,
            )
            .kind(kind);
    }
    builder.build()
}

/// gateway `POST /checkout` (the endpoint): 5 ms of its own, auth 15 ms, then payment and
/// inventory one after the other, then 5 ms of its own again. The critical path is every span
/// in turn, so it is exactly: gateway 10 ms, auth 15 ms, payment `payment_ms`, inventory
/// `inventory_ms`.
fn checkout(n: u64, payment_ms: u64, inventory_ms: u64) -> Trace {
    let pay_end = 20 + payment_ms;
    let inv_end = pay_end + inventory_ms;
    trace(
        n,
        &[
            (1, None, "gateway", "POST /checkout", 0, inv_end + 5),
            (2, Some(1), "auth", "validate token", 5, 20),
            (3, Some(1), "payment", "charge card", 20, pay_end),
            (4, Some(1), "inventory", "reserve items", pay_end, inv_end),
        ],
    )
}

/// 98 typical checkouts (payment 100 ms, inventory 30 ms: 155 ms) and two slow ones (payment
/// 1,300 ms, inventory 80 ms: 1,405 ms); plus three traces where the endpoint's span is not
/// the root (an edge proxy in front), which are read but not used.
fn reader() -> Arc<MemoryStore> {
    let mut traces = Vec::new();
    for n in 1..=100 {
        traces.push(if n == 37 || n == 81 {
            checkout(n, 1_300, 80)
        } else {
            checkout(n, 100, 30)
        });
    }
    for n in 101..=103 {
        traces.push(trace(
            n,
            &[
                (1, None, "edge", "GET /", 0, 200),
                (2, Some(1), "gateway", "POST /checkout", 10, 190),
            ],
        ));
    }
    Arc::new(MemoryStore::from_traces(traces))
}

async fn get(router: &Router, uri: &str) -> (StatusCode, Value) {
    let resp = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

const ENDPOINT: &str = "service=gateway&operation=POST%20%2Fcheckout";

fn rows<'a>(list: &'a Value, key: &str) -> Vec<(&'a str, u64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[key].as_str().unwrap(),
                r["meanNanosPerTrace"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_breakdown_shares_match_the_constructed_critical_paths() {
    let r = reader();
    let router = stitch_api::router(r.clone(), None);
    let (status, body) = get(
        &router,
        &format!("/api/v1/analysis/breakdown?{ENDPOINT}&{WINDOW}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let q = r.searches().last().cloned().unwrap();
    assert_eq!(q.service.as_deref(), Some("gateway"));
    assert_eq!(q.operation.as_deref(), Some("POST /checkout"));
    assert_eq!(q.start_unix_nanos, Some(T0));
    assert_eq!(q.end_unix_nanos, Some(T0 + 600 * SECOND));
    assert_eq!(q.limit, stitch_api::analysis::DEFAULT_ANALYSIS_LIMIT);

    assert_eq!(body["tracesScanned"], 103);
    assert_eq!(body["tracesUsed"], 100);
    assert_eq!(body["truncated"], false);
    assert_eq!(body["window"]["startUnixNano"], T0.to_string());
    let b = &body["breakdown"];
    assert_eq!(b["endpoint"]["service"], "gateway");
    assert_eq!(b["endpoint"]["operation"], "POST /checkout");
    assert_eq!(b["traces"], 100);
    // 98 × 155 ms + 2 × 1,405 ms.
    assert_eq!(b["totalCriticalPathNanos"], 18_000 * MS);
    assert_eq!(b["meanDurationNanos"], 180 * MS);
    // payment 98 × 100 + 2 × 1,300 = 12,400 ms; inventory 98 × 30 + 2 × 80 = 3,100 ms;
    // auth 1,500 ms; gateway 1,000 ms.
    assert_eq!(
        rows(&b["byService"], "service"),
        [
            ("payment", 124 * MS),
            ("inventory", 31 * MS),
            ("auth", 15 * MS),
            ("gateway", 10 * MS)
        ]
    );
    let shares: Vec<f64> = b["byService"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["share"].as_f64().unwrap())
        .collect();
    for (got, want) in shares.iter().zip([12_400.0, 3_100.0, 1_500.0, 1_000.0]) {
        assert!((got - want / 18_000.0).abs() < 1e-9, "{shares:?}");
    }
    assert_eq!(
        b["byService"][0]["line"],
        "payment: 68.9% of the critical path (mean 124ms per trace)"
    );
    assert_eq!(b["byOperation"][0]["service"], "payment");
    assert_eq!(b["byOperation"][0]["operation"], "charge card");
    assert_eq!(b["byOperation"][0]["totalNanos"], 12_400 * MS);
}

#[tokio::test]
async fn the_cohort_diff_names_the_service_where_slow_traces_spend_the_extra_time() {
    let router = stitch_api::router(reader(), None);
    let (status, body) = get(
        &router,
        &format!("/api/v1/analysis/cohort?{ENDPOINT}&{WINDOW}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tracesScanned"], 103);
    assert_eq!(body["tracesUsed"], 100);
    assert_eq!(body["minTraces"], 20);
    assert!(body.get("reason").is_none(), "{body}");
    let c = &body["cohort"];
    assert_eq!(c["traces"], 100);
    assert_eq!(c["slowTraces"], 2);
    assert_eq!(c["typicalTraces"], 98);
    assert_eq!(c["slowThresholdNanos"], 1_405 * MS);
    assert_eq!(c["slowMeanNanos"], 1_405 * MS);
    assert_eq!(c["typicalMeanNanos"], 155 * MS);
    assert_eq!(c["differenceNanos"], 1_250 * MS);

    let top = &c["byService"][0];
    assert_eq!(top["key"], "payment");
    assert_eq!(top["typicalMeanNanos"], 100 * MS);
    assert_eq!(top["slowMeanNanos"], 1_300 * MS);
    assert_eq!(top["deltaNanos"], 1_200 * MS);
    assert!((top["shareOfDifference"].as_f64().unwrap() - 0.96).abs() < 1e-9);
    assert_eq!(
        top["line"],
        "payment: +1.20s per slow trace, 96% of the difference"
    );
    let second = &c["byService"][1];
    assert_eq!(second["key"], "inventory");
    assert_eq!(second["deltaNanos"], 50 * MS);
    for quiet in &c["byService"].as_array().unwrap()[2..] {
        assert_eq!(quiet["deltaNanos"], 0, "{quiet}");
    }
    assert_eq!(c["byOperation"][0]["key"], "payment charge card");
    assert_eq!(c["summary"][1], top["line"]);

    // The finding kinds: in a slow trace the payment call is a dominant leaf.
    let kinds = &c["extra"][0];
    assert_eq!(kinds["name"], "findingKind");
    let dominant = kinds["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "dominantLeaf")
        .unwrap_or_else(|| panic!("no dominantLeaf in {kinds}"));
    assert!(
        dominant["slowMeanNanos"].as_u64().unwrap() >= 1_300 * MS,
        "{dominant}"
    );
}

#[tokio::test]
async fn the_limit_bounds_the_traces_read_and_too_few_make_no_cohort() {
    let router = stitch_api::router(reader(), None);
    let (status, body) = get(
        &router,
        &format!("/api/v1/analysis/cohort?{ENDPOINT}&{WINDOW}&limit=10"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tracesScanned"], 10);
    assert_eq!(body["truncated"], true);
    // The newest ten: the three proxied traces and seven checkouts.
    assert_eq!(body["tracesUsed"], 7);
    assert_eq!(body["cohort"], Value::Null);
    assert_eq!(
        body["reason"],
        "found 7 traces of the endpoint; a cohort diff needs at least 20"
    );

    let (status, body) = get(
        &router,
        &format!("/api/v1/analysis/breakdown?{ENDPOINT}&{WINDOW}&limit=10"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tracesUsed"], 7);
    assert_eq!(body["breakdown"]["traces"], 7);

    // An endpoint without traces: an empty breakdown.
    let (status, body) = get(
        &router,
        &format!("/api/v1/analysis/breakdown?service=gateway&operation=GET%20%2Fnothing&{WINDOW}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tracesScanned"], 0);
    assert_eq!(body["breakdown"]["byService"], serde_json::json!([]));
}

#[tokio::test]
async fn missing_or_bad_parameters_are_400s_naming_the_parameter() {
    let router = stitch_api::router(reader(), None);
    for route in ["breakdown", "cohort"] {
        for (query, needle) in [
            ("operation=POST%20%2Fcheckout", "'service'"),
            ("service=gateway", "'operation'"),
            ("service=gateway&operation=", "'operation'"),
            (&format!("{ENDPOINT}&lookback=forever"), "'lookback'"),
            (&format!("{ENDPOINT}&limit=20001"), "'limit'"),
            (&format!("{ENDPOINT}&limit=-5"), "'limit'"),
            (&format!("{ENDPOINT}&end=yesterday"), "'end'"),
        ] {
            let (status, body) = get(&router, &format!("/api/v1/analysis/{route}?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route}?{query}: {body}");
            assert_eq!(body["error"]["code"], 400);
            let msg = body["error"]["message"].as_str().unwrap();
            assert!(msg.contains(needle), "{route}?{query}: {msg}");
        }
    }
}
