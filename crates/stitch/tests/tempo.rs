//! Tempo's query API on its own port, as Grafana's Tempo data source uses it: traces emitted by
//! the real OpenTelemetry Rust SDK (two services, over OTLP/gRPC) read back by id (JSON and
//! protobuf, decoded with Tempo's messages declared here), searched with TraceQL and with
//! logfmt tags, and the tag names and values Grafana's editor autocompletes from. Each answer is
//! checked field by field against the shapes Tempo documents.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Stitch, eventually, get_json, sdk_provider, url_encode};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;
use serde_json::json;

/// Tempo's `Trace` message (`tempopb`), declared from its documented definition.
#[derive(Clone, PartialEq, Message)]
struct TempoTrace {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

/// Tempo's `TraceByIDResponse`: the trace, metrics (not read here), a partial status and its
/// message.
#[derive(Clone, PartialEq, Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TempoTrace>,
    #[prost(int32, tag = "3")]
    status: i32,
    #[prost(string, tag = "4")]
    message: String,
}

/// Two traces from `shop`: `GET /cart` (200, 30 ms, calls `db`) and `POST /pay` (500, an error,
/// 250 ms). Returns their ids (hex).
fn emit(endpoint: &str) -> [String; 2] {
    let shop = sdk_provider(endpoint, "shop");
    let db = sdk_provider(endpoint, "db");
    let (tracer, db_tracer) = (shop.tracer("e2e"), db.tracer("e2e"));
    let start = SystemTime::now() - Duration::from_secs(20);
    let cart = tracer
        .span_builder("GET /cart")
        .with_kind(SpanKind::Server)
        .with_start_time(start)
        .with_attributes([
            KeyValue::new("http.route", "/cart"),
            KeyValue::new("http.response.status_code", 200i64),
        ])
        .start(&tracer);
    let cart_id = cart.span_context().trace_id().to_string();
    let cx = Context::current_with_span(cart);
    let mut q = db_tracer
        .span_builder("SELECT cart")
        .with_kind(SpanKind::Client)
        .with_start_time(start + Duration::from_millis(5))
        .with_attributes([KeyValue::new("db.system", "postgresql")])
        .start_with_context(&db_tracer, &cx);
    q.end_with_timestamp(start + Duration::from_millis(20));
    cx.span()
        .end_with_timestamp(start + Duration::from_millis(30));

    let pay_start = start + Duration::from_millis(100);
    let mut pay = tracer
        .span_builder("POST /pay")
        .with_kind(SpanKind::Server)
        .with_start_time(pay_start)
        .with_attributes([
            KeyValue::new("http.route", "/pay"),
            KeyValue::new("http.response.status_code", 500i64),
        ])
        .start(&tracer);
    let pay_id = pay.span_context().trace_id().to_string();
    pay.set_status(Status::error("card declined"));
    pay.end_with_timestamp(pay_start + Duration::from_millis(250));
    for p in [shop, db] {
        p.force_flush().expect("flush");
        let _ = p.shutdown();
    }
    [cart_id, pay_id]
}

/// A server holding the two traces of [`emit`], and the query window around them.
struct Emitted {
    server: Stitch,
    ids: [String; 2],
    /// Tempo's base URL.
    tempo: String,
    /// Unix seconds when the traces were sent.
    now: u64,
    /// `&start=...&end=...`: from ten minutes before `now` to a minute after.
    window: String,
}

impl Emitted {
    async fn start(dir: &std::path::Path) -> Emitted {
        let server = Stitch::start(&dir.join("data"), &[]);
        let endpoint = server.otlp_grpc();
        let ids = tokio::task::spawn_blocking(move || emit(&endpoint))
            .await
            .unwrap();
        let tempo = server.tempo();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Emitted {
            server,
            ids,
            tempo,
            now,
            window: format!("&start={}&end={}", now - 600, now + 60),
        }
    }
}

async fn get_text(url: &str, accept: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        resp.bytes().await.expect("body").to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_reads_and_searches_stitch_through_the_tempo_api() {
    let dir = tempfile::tempdir().unwrap();
    let Emitted {
        server,
        ids: [cart, pay],
        tempo,
        window,
        ..
    } = Emitted::start(dir.path()).await;

    // The data source's connection check and build info.
    let (status, content_type, body) = get_text(&format!("{tempo}/api/echo"), None).await;
    assert_eq!((status, body.as_slice()), (200, &b"echo\n"[..]));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let (status, info) = get_json(&format!("{tempo}/api/status/buildinfo")).await;
    assert_eq!(status, 200);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    for field in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(info[field].is_string(), "{field}: {info}");
    }

    // Both traces arrive (the search finds them once stored).
    let url = format!("{tempo}/api/search?q={}{window}", url_encode("{ }"));
    let found = eventually(Duration::from_secs(10), || {
        let url = url.clone();
        async move {
            let (status, body) = get_json(&url).await;
            assert_eq!(status, 200, "{body}");
            (body["traces"].as_array().map_or(0, Vec::len) == 2).then_some(body)
        }
    })
    .await
    .unwrap_or_else(|| panic!("the traces never arrived; log:\n{}", server.log()));
    let ids: Vec<&str> = found["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [pay.as_str(), cart.as_str()], "newest first");
    assert_eq!(found["metrics"]["inspectedTraces"], 2);

    // TraceQL search: the error, with its matched span and the fields Tempo answers.
    let url = format!(
        "{tempo}/api/search?q={}&limit=5&spss=2{window}",
        url_encode("{ status = error && span.http.route = \"/pay\" }")
    );
    let (status, body) = get_json(&url).await;
    assert_eq!(status, 200, "{body}");
    let t = &body["traces"][0];
    assert_eq!(body["traces"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(t["traceID"], pay);
    assert_eq!(t["rootServiceName"], "shop");
    assert_eq!(t["rootTraceName"], "POST /pay");
    assert!(t["startTimeUnixNano"].is_string(), "{t}");
    assert_eq!(t["durationMs"], 250);
    assert_eq!(t["spanSet"], t["spanSets"][0]);
    assert_eq!(t["spanSets"][0]["matched"], 1);
    let span = &t["spanSets"][0]["spans"][0];
    assert_eq!(span["name"], "POST /pay");
    assert_eq!(span["durationNanos"], "250000000");
    assert!(
        span["spanID"].as_str().is_some_and(|s| s.len() == 16),
        "{span}"
    );
    assert_eq!(
        t["serviceStats"],
        json!({"shop": {"spanCount": 1, "errorCount": 1}})
    );

    // Logfmt tags with a number as text, and trace-duration bounds.
    for (tags, extra, want) in [
        (
            "service.name=shop http.response.status_code=200",
            "",
            vec![cart.as_str()],
        ),
        (
            "service.name=shop",
            "&minDuration=100ms",
            vec![pay.as_str()],
        ),
        (
            "service.name=shop",
            "&maxDuration=100ms",
            vec![cart.as_str()],
        ),
        ("db.system=postgresql", "", vec![cart.as_str()]),
        ("error=true", "", vec![pay.as_str()]),
    ] {
        let url = format!(
            "{tempo}/api/search?tags={}{extra}{window}",
            url_encode(tags)
        );
        let (status, body) = get_json(&url).await;
        assert_eq!(status, 200, "{tags}: {body}");
        let got: Vec<&str> = body["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap())
            .collect();
        assert_eq!(got, want, "{tags}{extra}");
    }

    // Trace by id, JSON: v1 `batches`, v2 `trace.resourceSpans`; ids base64, enums by name.
    let (status, v1) = get_json(&format!("{tempo}/api/traces/{pay}")).await;
    assert_eq!(status, 200, "{v1}");
    let span = &v1["batches"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["name"], "POST /pay");
    assert_eq!(span["kind"], "SPAN_KIND_SERVER");
    assert_eq!(span["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(span["status"]["message"], "card declined");
    let id_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&pay[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(span["traceId"].as_str().map(str::len), Some(24), "{span}");
    let (status, v2) = get_json(&format!("{tempo}/api/v2/traces/{cart}?{}", &window[1..])).await;
    assert_eq!(status, 200, "{v2}");
    let groups = v2["trace"]["resourceSpans"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .flat_map(|g| g["scopeSpans"][0]["spans"].as_array().unwrap())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{v2}");
    assert!(names.contains(&"GET /cart") && names.contains(&"SELECT cart"));

    // Trace by id, protobuf: the messages Grafana decodes.
    let (status, content_type, body) = get_text(
        &format!("{tempo}/api/traces/{pay}"),
        Some("application/protobuf"),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/protobuf")
    );
    let trace = TempoTrace::decode(body.as_slice()).expect("a tempopb.Trace");
    let span = &trace.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id, id_bytes);
    assert_eq!(span.name, "POST /pay");
    let (status, _, body) = get_text(
        &format!("{tempo}/api/v2/traces/{cart}"),
        Some("application/protobuf"),
    )
    .await;
    assert_eq!(status, 200);
    let answer = TraceByIdResponse::decode(body.as_slice()).expect("a TraceByIDResponse");
    assert_eq!((answer.status, answer.message.as_str()), (0, ""));
    let spans: usize = answer
        .trace
        .expect("the trace")
        .resource_spans
        .iter()
        .flat_map(|g| &g.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    assert_eq!(spans, 2);

    // Tag names: v1 (attribute scopes, or the intrinsics), v2 by scope.
    let (_, tags) = get_json(&format!("{tempo}/api/search/tags?{}", &window[1..])).await;
    let names = tags["tagNames"].as_array().unwrap();
    for want in [
        "service.name",
        "http.route",
        "db.system",
        "http.response.status_code",
    ] {
        assert!(names.contains(&json!(want)), "{want}: {tags}");
    }
    let (_, tags) = get_json(&format!("{tempo}/api/search/tags?scope=intrinsic")).await;
    assert!(
        tags["tagNames"]
            .as_array()
            .unwrap()
            .contains(&json!("trace:duration"))
    );
    let (_, v2) = get_json(&format!("{tempo}/api/v2/search/tags?{}", &window[1..])).await;
    let scope = |name: &str| {
        v2["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["tags"].clone())
            .unwrap_or_else(|| panic!("no scope {name}: {v2}"))
    };
    assert!(
        scope("resource")
            .as_array()
            .unwrap()
            .contains(&json!("service.name"))
    );
    assert!(
        scope("span")
            .as_array()
            .unwrap()
            .contains(&json!("http.route"))
    );
    assert!(
        scope("intrinsic")
            .as_array()
            .unwrap()
            .contains(&json!("status"))
    );

    // Tag values: v1 strings; v2 typed, filtered by `q`, fixed for keywords.
    let (_, v) = get_json(&format!("{tempo}/api/search/tag/service.name/values")).await;
    assert_eq!(v["tagValues"], json!(["db", "shop"]));
    let (_, v) = get_json(&format!(
        "{tempo}/api/search/tag/http.route/values?{}",
        &window[1..]
    ))
    .await;
    assert_eq!(v["tagValues"], json!(["/cart", "/pay"]));
    let (_, v) = get_json(&format!(
        "{tempo}/api/v2/search/tag/span.http.response.status_code/values?{}",
        &window[1..]
    ))
    .await;
    assert_eq!(
        v["tagValues"],
        json!([{"type": "int", "value": "200"}, {"type": "int", "value": "500"}])
    );
    let (_, v) = get_json(&format!(
        "{tempo}/api/v2/search/tag/span.http.route/values?q={}{window}",
        url_encode("{ status = error }")
    ))
    .await;
    assert_eq!(v["tagValues"], json!([{"type": "string", "value": "/pay"}]));
    let (_, v) = get_json(&format!("{tempo}/api/v2/search/tag/status/values")).await;
    assert_eq!(
        v["tagValues"],
        json!([
            {"type": "keyword", "value": "error"},
            {"type": "keyword", "value": "ok"},
            {"type": "keyword", "value": "unset"}
        ])
    );
    let (_, v) = get_json(&format!(
        "{tempo}/api/v2/search/tag/name/values?{}",
        &window[1..]
    ))
    .await;
    assert_eq!(
        v["tagValues"],
        json!([
            {"type": "string", "value": "GET /cart"},
            {"type": "string", "value": "POST /pay"},
            {"type": "string", "value": "SELECT cart"}
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_plain_text_reason_and_unknown_traces_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    let tempo = server.tempo();
    for (path, status, says) in [
        (
            "/api/traces/00000000000000000000000000000abc",
            404,
            "not found",
        ),
        (
            "/api/v2/traces/00000000000000000000000000000abc",
            404,
            "not found",
        ),
        ("/api/traces/not-hex", 400, "hex"),
        (
            "/api/search?q=%7B%20status%20%3D%20%7D",
            400,
            "invalid TraceQL query",
        ),
        ("/api/search?q=%7B%7D&tags=a%3Db", 400, "not both"),
        ("/api/search?limit=0", 400, "invalid limit"),
        ("/api/search?limit=100000", 400, "exceeds max limit 1500"),
        ("/api/search?spss=5000", 400, "exceeds max spss"),
        (
            "/api/search?start=100&end=50",
            400,
            "start must be before end",
        ),
        (
            "/api/search?minDuration=2s&maxDuration=1s",
            400,
            "minDuration",
        ),
        ("/api/search?minDuration=soon", 400, "invalid minDuration"),
        (
            "/api/search?maxDuration=3000000h",
            400,
            "invalid maxDuration",
        ),
        ("/api/search?tags=a%3D%22open", 400, "no closing quote"),
        ("/api/search/tags?scope=galaxy", 400, "invalid scope"),
        (
            "/api/v2/search/tag/http.route/values",
            400,
            "valid tag name",
        ),
        (
            "/api/search?q=%7B%20%7D%20%7C%20rate()",
            400,
            "/api/metrics/query_range",
        ),
        ("/api/metrics/query_range", 400, "q is required"),
        (
            "/api/metrics/query_range?q=%7B%20%7D",
            400,
            "metrics function",
        ),
        (
            "/api/metrics/query_range?q=%7B%20%7D%20%7C%20rate()&step=1ms",
            400,
            "step too small",
        ),
        (
            "/api/metrics/query?q=%7B%20%7D%20%7C%20rate()&start=soon",
            400,
            "invalid start",
        ),
    ] {
        let (got, content_type, body) = get_text(&format!("{tempo}{path}"), None).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            content_type.starts_with("text/plain"),
            "{path}: {content_type}"
        );
        assert!(body.contains(says), "{path}: {body}");
    }
}

/// The sum of a series' sample values.
fn total(series: &serde_json::Value) -> f64 {
    series["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

/// TraceQL metrics as Grafana's Explore and Traces Drilldown ask for them: series per group
/// with typed labels, samples at step starts, exemplars naming stored traces, and the instant
/// form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_reads_traceql_metrics_from_stitch() {
    let dir = tempfile::tempdir().unwrap();
    let Emitted {
        server,
        ids: [cart, pay],
        tempo,
        now,
        window,
    } = Emitted::start(dir.path()).await;
    let range = |q: &str| {
        format!(
            "{tempo}/api/metrics/query_range?q={}{window}&step=60s",
            url_encode(q)
        )
    };

    // Spans per service, once all three are stored.
    let url = range("{ } | count_over_time() by (resource.service.name)");
    let counts = eventually(Duration::from_secs(10), || {
        let url = url.clone();
        async move {
            let (status, body) = get_json(&url).await;
            assert_eq!(status, 200, "{body}");
            let spans: f64 = body["series"].as_array()?.iter().map(total).sum();
            (spans == 3.0).then_some(body)
        }
    })
    .await
    .unwrap_or_else(|| panic!("the spans never arrived; log:\n{}", server.log()));
    let series = counts["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{counts}");
    let by_service: Vec<(String, f64)> = series
        .iter()
        .map(|s| {
            assert_eq!(s["labels"].as_array().unwrap().len(), 1, "{s}");
            assert_eq!(s["labels"][0]["key"], "resource.service.name");
            (
                s["labels"][0]["value"]["stringValue"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                total(s),
            )
        })
        .collect();
    assert_eq!(
        by_service,
        vec![("db".to_owned(), 1.0), ("shop".to_owned(), 2.0)]
    );
    let shop = &series[1];
    assert_eq!(shop["promLabels"], "{resource.service.name=\"shop\"}");
    // A sample for every minute the window touches, at minute starts.
    let samples = shop["samples"].as_array().unwrap();
    let first_minute = (now - 600) / 60 * 60;
    assert_eq!(
        samples.len() as u64,
        (now + 60 - first_minute).div_ceil(60),
        "{shop}"
    );
    for s in samples {
        let ms: u64 = s["timestampMs"].as_str().unwrap().parse().unwrap();
        assert_eq!(ms % 60_000, 0, "{s}");
    }
    // Exemplars name the stored traces.
    let exemplars = shop["exemplars"].as_array().unwrap();
    assert_eq!(exemplars.len(), 2, "{shop}");
    let mut named: Vec<&str> = exemplars
        .iter()
        .map(|e| {
            assert_eq!(e["labels"][0]["key"], "trace:id");
            assert!(e["timestampMs"].as_str().unwrap().parse::<u64>().unwrap() > 0);
            e["labels"][0]["value"]["stringValue"].as_str().unwrap()
        })
        .collect();
    named.sort();
    let mut ids = vec![cart.as_str(), pay.as_str()];
    ids.sort();
    assert_eq!(named, ids);

    // The error rate: one failed span in the window, per second of its minute.
    let (status, errors) = get_json(&range("{ status = error } | rate()")).await;
    assert_eq!(status, 200, "{errors}");
    assert_eq!(errors["series"].as_array().unwrap().len(), 1, "{errors}");
    assert!(
        (total(&errors["series"][0]) - 1.0 / 60.0).abs() < 1e-9,
        "{errors}"
    );
    assert_eq!(errors["series"][0]["labels"], json!([]));
    assert_eq!(
        errors["series"][0]["exemplars"][0]["labels"][0]["value"]["stringValue"],
        pay.as_str()
    );

    // Traces Drilldown's first question: the rate of root spans, by service.
    let (status, roots) = get_json(&range(
        "{nestedSetParent<0 && true && resource.service.name != nil} | rate() by(resource.service.name) with(sample=true)",
    ))
    .await;
    assert_eq!(status, 200, "{roots}");
    assert_eq!(roots["series"].as_array().unwrap().len(), 1, "{roots}");
    assert_eq!(
        roots["series"][0]["labels"][0]["value"]["stringValue"],
        "shop"
    );
    assert!(
        (total(&roots["series"][0]) - 2.0 / 60.0).abs() < 1e-9,
        "{roots}"
    );

    // Instant quantiles of the shop's span durations (30 ms and 250 ms), in seconds.
    let (status, quantiles) = get_json(&format!(
        "{tempo}/api/metrics/query?q={}{window}",
        url_encode(r#"{ resource.service.name = "shop" } | quantile_over_time(duration, 0.5, 1)"#)
    ))
    .await;
    assert_eq!(status, 200, "{quantiles}");
    let got: Vec<(f64, f64)> = quantiles["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["labels"][0]["key"], "p");
            (
                s["labels"][0]["value"]["doubleValue"].as_f64().unwrap(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 2, "{quantiles}");
    assert_eq!(got[0].0, 0.5);
    assert!((got[0].1 - 0.14).abs() < 1e-9, "{quantiles}");
    assert_eq!(got[1], (1.0, 0.25));
    assert_eq!(quantiles["metrics"]["inspectedTraces"], "2");
}
