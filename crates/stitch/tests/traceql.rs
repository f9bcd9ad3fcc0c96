//! TraceQL end to end: traces emitted by the real OpenTelemetry Rust SDK (two services, over
//! OTLP/gRPC) into the real binary, found with `GET /api/v1/search` and `stitch search`; bad
//! queries, huge limits and empty windows get precise answers.

mod common;

use std::time::{Duration, SystemTime};

use common::{Stitch, eventually, get_json, sdk_provider, stitch, url_encode};
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};

const QUERY: &str = r#"{ span.http.status_code >= 500 } >> { resource.service.name = "db" }"#;

/// Three traces from `api` (a server span with `http.status_code`), two of which call `db`:
/// 500 with a db call (the match), 200 with a db call, 503 without. Returns their ids.
fn emit(endpoint: &str) -> Vec<String> {
    let api = sdk_provider(endpoint, "api");
    let db = sdk_provider(endpoint, "db");
    let (api_tracer, db_tracer) = (api.tracer("e2e"), db.tracer("e2e"));
    let now = SystemTime::now() - Duration::from_secs(30);
    let mut ids = Vec::new();
    for (i, (status, calls_db)) in [(500i64, true), (200, true), (503, false)]
        .into_iter()
        .enumerate()
    {
        let start = now + Duration::from_millis(100 * i as u64);
        let root = api_tracer
            .span_builder(format!("POST /orders/{i}"))
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes([KeyValue::new("http.status_code", status)])
            .start(&api_tracer);
        ids.push(root.span_context().trace_id().to_string());
        let cx = Context::current_with_span(root);
        if calls_db {
            let mut q = db_tracer
                .span_builder(if status == 500 {
                    "INSERT orders"
                } else {
                    "SELECT orders"
                })
                .with_kind(SpanKind::Server)
                .with_start_time(start + Duration::from_millis(5))
                .start_with_context(&db_tracer, &cx);
            q.end_with_timestamp(start + Duration::from_millis(25));
        }
        cx.span()
            .end_with_timestamp(start + Duration::from_millis(40));
    }
    for p in [api, db] {
        p.force_flush().expect("flush");
        let _ = p.shutdown();
    }
    ids
}

fn search_url(api: &str, query: &str, extra: &str) -> String {
    format!("{api}/api/v1/search?q={}{extra}", url_encode(query))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceql_finds_sdk_traces_through_the_api_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    let endpoint = server.otlp_grpc();
    let ids = tokio::task::spawn_blocking(move || emit(&endpoint))
        .await
        .unwrap();
    let api = server.api();

    // The API: exactly the 500 that reached the db, with the db span as the match.
    let url = search_url(&api, QUERY, "");
    let body = eventually(Duration::from_secs(10), || {
        let url = url.clone();
        async move {
            let (status, body) = get_json(&url).await;
            assert_eq!(status, 200, "{body}");
            (body["traces"].as_array().map_or(0, Vec::len) == 1).then_some(body)
        }
    })
    .await
    .unwrap_or_else(|| panic!("the query never matched; server log:\n{}", server.log()));
    let t = &body["traces"][0];
    assert_eq!(t["traceID"], ids[0]);
    assert_eq!(t["rootServiceName"], "api");
    assert_eq!(t["rootTraceName"], "POST /orders/0");
    assert_eq!(t["durationMs"], 40);
    let set = &t["spanSets"][0];
    assert_eq!(set["matched"], 1);
    assert_eq!(set["spans"][0]["name"], "INSERT orders");
    assert_eq!(set["spans"][0]["serviceName"], "db");
    assert_eq!(set["spans"][0]["durationNanos"], "20000000");
    assert_eq!(
        set["spans"][0]["attributes"][0],
        serde_json::json!({"key": "resource.service.name", "value": {"stringValue": "db"}})
    );
    // Only the traces with a span of service db can match, and only they are evaluated: the
    // 500 and the 200 that called db, not the 503 that did not.
    assert_eq!(body["metrics"]["inspectedTraces"], 2);
    assert_eq!(body["metrics"]["truncated"], false);

    // Every trace with a server span: newest first; two spans listed of the two matched.
    let (_, all) = get_json(&search_url(
        &api,
        "{ kind = server } | count() >= 1",
        "&spss=1",
    ))
    .await;
    let listed: Vec<&str> = all["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);
    assert_eq!(all["traces"][2]["spanSets"][0]["matched"], 2);
    assert_eq!(
        all["traces"][2]["spanSets"][0]["spans"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The CLI prints the trace and its matching span.
    let a = api.clone();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || stitch(&["search", QUERY, "--server", &a]))
            .await
            .unwrap();
    assert!(ok, "{err}");
    assert!(out.starts_with("TRACE ID"), "{out}");
    assert!(
        out.contains(&ids[0]) && out.contains("db: INSERT orders"),
        "{out}"
    );
    assert!(!out.contains(&ids[1]) && !out.contains(&ids[2]), "{out}");
    let a = api.clone();
    let (ok, out, _) = tokio::task::spawn_blocking(move || {
        stitch(&["search", "{ name = \"nothing\" }", "--server", &a])
    })
    .await
    .unwrap();
    assert!(ok);
    assert_eq!(out, "no traces matched\n");

    // A query that cannot hold: 400 with the position; the CLI points at it.
    let (status, bad) = get_json(&search_url(&api, "{ status = 500 }", "")).await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["position"], 9);
    let msg = bad["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("at character 10") && msg.contains("cannot compare a status"),
        "{msg}"
    );
    let a = api.clone();
    let (ok, _, err) = tokio::task::spawn_blocking(move || {
        stitch(&["search", "{ status = 500 }", "--server", &a])
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(err.contains("{ status = 500 }\n           ^"), "{err}");

    // Huge limits, a missing query and an empty window.
    let (status, e) = get_json(&search_url(&api, "{ }", "&limit=1000000")).await;
    assert_eq!(status, 400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'limit'"),
        "{e}"
    );
    let (status, e) = get_json(&format!("{api}/api/v1/search?limit=5")).await;
    assert_eq!(status, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing parameter 'q'"),
        "{e}"
    );
    let (status, e) = get_json(&search_url(&api, "{ }", "&spss=0")).await;
    assert_eq!(status, 400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'spss'"),
        "{e}"
    );
    let (status, empty) = get_json(&search_url(&api, "{ }", "&start=1000&end=2000")).await;
    assert_eq!(status, 200);
    assert_eq!(empty["traces"], serde_json::json!([]));
    assert_eq!(empty["metrics"]["inspectedTraces"], 0);
}
