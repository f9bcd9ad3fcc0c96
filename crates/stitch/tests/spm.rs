//! Jaeger's service performance monitoring API (the Jaeger UI's Monitor tab) end to end:
//! spans from the real OpenTelemetry Rust SDK, then latencies, call rates and error rates per
//! service and per operation as the Monitor tab asks for them, and refusals of bad parameters.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Stitch, eventually, get_json, sdk_provider};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer, TracerProvider as _};

/// `shop` serves 10 `GET /cart` (10 ms each) and 5 `POST /pay` (200 ms, 2 of them failing),
/// and makes one client call per `GET /cart`.
fn emit(endpoint: &str) {
    let shop = sdk_provider(endpoint, "shop");
    let tracer = shop.tracer("e2e");
    let start = SystemTime::now() - Duration::from_secs(30);
    for i in 0..10u64 {
        let at = start + Duration::from_millis(100 * i);
        let mut s = tracer
            .span_builder("GET /cart")
            .with_kind(SpanKind::Server)
            .with_start_time(at)
            .start(&tracer);
        s.end_with_timestamp(at + Duration::from_millis(10));
        let mut c = tracer
            .span_builder("SELECT cart")
            .with_kind(SpanKind::Client)
            .with_start_time(at)
            .start(&tracer);
        c.end_with_timestamp(at + Duration::from_millis(5));
    }
    for i in 0..5u64 {
        let at = start + Duration::from_millis(2_000 + 100 * i);
        let mut s = tracer
            .span_builder("POST /pay")
            .with_kind(SpanKind::Server)
            .with_start_time(at)
            .start(&tracer);
        if i < 2 {
            s.set_status(Status::error("declined"));
        }
        s.end_with_timestamp(at + Duration::from_millis(200));
    }
    shop.force_flush().expect("flush");
    let _ = shop.shutdown();
}

fn series<'a>(family: &'a serde_json::Value, operation: Option<&str>) -> &'a serde_json::Value {
    family["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            let labels = m["labels"].as_array().unwrap();
            labels[0] == serde_json::json!({"name": "service_name", "value": "shop"})
                && labels.get(1).map(|l| l["value"].as_str().unwrap()) == operation
        })
        .unwrap_or_else(|| panic!("no series for {operation:?}: {family}"))
}

/// The value of a series' last point.
fn last(series: &serde_json::Value) -> f64 {
    let points = series["metricPoints"].as_array().unwrap();
    let p = points
        .last()
        .unwrap_or_else(|| panic!("no points: {series}"));
    assert!(p["timestamp"].as_str().unwrap().ends_with('Z'), "{p}");
    p["gaugeValue"]["doubleValue"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_tab_reads_rates_errors_and_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    let endpoint = server.otlp_grpc();
    tokio::task::spawn_blocking(move || emit(&endpoint))
        .await
        .unwrap();
    let api = server.api();
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    // What the Monitor tab sends: an hour back, one point a minute, rates over 10 minutes.
    let common = format!(
        "service=shop&endTs={end}&lookback=3600000&step=60000&ratePer=600000&spanKind=server"
    );

    let calls = eventually(Duration::from_secs(10), || {
        let url = format!("{api}/api/metrics/calls?{common}");
        async move {
            let (status, body) = get_json(&url).await;
            assert_eq!(status, 200, "{body}");
            let n = body["metrics"].as_array().map_or(0, Vec::len);
            (n == 1 && last(&body["metrics"][0]) > 0.0).then_some(body)
        }
    })
    .await
    .unwrap_or_else(|| panic!("no call rate; log:\n{}", server.log()));
    assert_eq!(calls["name"], "service_call_rate");
    assert_eq!(calls["help"], "calls/sec, grouped by service");
    assert_eq!(calls["type"], "GAUGE");
    assert_eq!(
        series(&calls, None)["metricPoints"]
            .as_array()
            .unwrap()
            .len(),
        61
    );
    // 15 server spans over the 10-minute rate window (the client calls are another kind).
    let rate = last(series(&calls, None));
    assert!((rate - 15.0 / 600.0).abs() < 1e-9, "{rate}");

    let (_, errors) = get_json(&format!(
        "{api}/api/metrics/errors?{common}&groupByOperation=true"
    ))
    .await;
    assert_eq!(errors["name"], "service_operation_error_rate");
    assert_eq!(
        errors["help"],
        "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service & operation"
    );
    assert_eq!(last(series(&errors, Some("POST /pay"))), 0.4);
    assert_eq!(last(series(&errors, Some("GET /cart"))), 0.0);

    for (quantile, cart_ms, pay_ms) in [(0.5, 10.0, 200.0), (0.95, 10.0, 200.0)] {
        let (status, lat) = get_json(&format!(
            "{api}/api/metrics/latencies?{common}&groupByOperation=true&quantile={quantile}"
        ))
        .await;
        assert_eq!(status, 200, "{lat}");
        assert_eq!(lat["name"], "service_operation_latencies");
        for (op, want) in [("GET /cart", cart_ms), ("POST /pay", pay_ms)] {
            let got = last(series(&lat, Some(op)));
            assert!((got - want).abs() <= want * 0.01, "{op} q{quantile}: {got}");
        }
    }
    // The whole service's median: 10 of the 15 requests took 10 ms.
    let (_, lat) = get_json(&format!(
        "{api}/api/metrics/latencies?{common}&quantile=0.5"
    ))
    .await;
    assert_eq!(lat["name"], "service_latencies");
    assert_eq!(lat["help"], "0.50th quantile latency, grouped by service");
    assert!((last(series(&lat, None)) - 10.0).abs() < 0.1, "{lat}");
    // Client spans: the database calls alone.
    let (_, client) = get_json(&format!(
        "{api}/api/metrics/calls?service=shop&endTs={end}&spanKind=client&groupByOperation=true"
    ))
    .await;
    assert_eq!(client["metrics"].as_array().unwrap().len(), 1, "{client}");
    series(&client, Some("SELECT cart"));

    let (status, step) = get_json(&format!("{api}/api/metrics/minstep")).await;
    assert_eq!((status, step["data"].as_u64()), (200, Some(10_000)));
    // A step that is not whole buckets is rounded up: 500 s becomes 510 s, 8 points an hour.
    let (status, coarse) = get_json(&format!(
        "{api}/api/metrics/calls?service=shop&endTs={end}&lookback=3600000&step=500000"
    ))
    .await;
    assert_eq!(status, 200, "{coarse}");
    assert_eq!(
        series(&coarse, None)["metricPoints"]
            .as_array()
            .unwrap()
            .len(),
        8
    );

    for (query, says) in [
        (
            "calls?step=60000",
            "please provide at least one service name",
        ),
        ("latencies?service=shop", "quantile"),
        ("latencies?service=shop&quantile=2", "quantile"),
        ("calls?service=shop&spanKind=galaxy", "spanKind"),
        ("calls?service=shop&lookback=100000000&step=10000", "points"),
        ("calls?service=shop&endTs=soon", "endTs"),
        ("calls?service=shop&ratePer=99999999999", "ratePer"),
        ("errors?service=shop&lookback=99999999999", "lookback"),
    ] {
        let (status, body) = get_json(&format!("{api}/api/metrics/{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let msg = body["errors"][0]["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{query}: {body}");
    }
}
