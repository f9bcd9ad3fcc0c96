//! End to end with real Zipkin clients: the Zipkin JavaScript tracer (`zipkin` +
//! `zipkin-transport-http`, v2 and v1 JSON) and OpenTelemetry's JavaScript Zipkin exporter
//! send known traces to the real `stitch` binary, which are read back through the native API,
//! the Jaeger-compatible API and the Zipkin API. Also: the Zipkin receiver's answers to bad
//! input, and the same trace sent over OTLP and over Zipkin.
//!
//! The clients live in `tests/clients/zipkin/`; `npm ci` installs them there when
//! `node_modules` is missing (`./test.sh` does it beforehand). Without Node and npm these tests
//! fail with a message saying so.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Stitch, eventually, fetch_trace, get_json, post};
use serde_json::{Value, json};
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanId, SpanKind, Status, StatusCode, Trace, TraceId,
};
use stitch_wire::zipkin::shared_span_id;

const V2_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const V1_TRACE: &str = "a3ce929d0e0e4736";

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/zipkin")
}

/// Installs the Node clients once (`npm ci`) unless `node_modules` is already there.
fn npm_ready() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = clients_dir();
        if dir.join("node_modules/zipkin-transport-http").is_dir()
            && dir.join("node_modules/@opentelemetry/exporter-zipkin").is_dir()
        {
            return;
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run npm to install the Zipkin clients in {}: {e}; install Node.js and npm", dir.display())
            });
        assert!(
            out.status.success(),
            "`npm ci` in {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Runs a client script with `node`, killing it after a minute; returns its stdout.
fn run_node(script: &str, args: &[&str]) -> String {
    npm_ready();
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(clients_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}; install Node.js"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait for node").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node {script} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("node output");
    assert!(
        out.status.success(),
        "node {script} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Runs the zipkin-js client; returns the spans it sent (parsed from its "sent" lines).
async fn emit_zipkin_js(
    server: &Stitch,
    encoding: &'static str,
    trace_id: &str,
    t0: u64,
) -> Vec<Value> {
    let url = format!("{}/api/{}/spans", server.zipkin(), encoding);
    let trace_id = trace_id.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        run_node(
            "emit_zipkin_js.cjs",
            &[&url, encoding, &trace_id, &t0.to_string()],
        )
    })
    .await
    .unwrap();
    out.lines()
        .filter_map(|l| l.strip_prefix("sent "))
        .flat_map(|body| {
            serde_json::from_str::<Vec<Value>>(body).expect("the client printed its JSON body")
        })
        .collect()
}

fn t0() -> u64 {
    // Whole milliseconds, a little in the past so that every span is inside the query windows.
    (now_micros() / 1_000 - 60_000) * 1_000
}

fn s(v: &str) -> AnyValue {
    AnyValue::String(v.to_owned())
}

fn sorted_attrs(span: &Span) -> Vec<(String, AnyValue)> {
    let mut a: Vec<_> = span
        .attributes
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    a.sort_by(|x, y| x.0.cmp(&y.0));
    a
}

fn pairs(list: &[(&str, AnyValue)]) -> Vec<(String, AnyValue)> {
    let mut a: Vec<_> = list
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    a.sort_by(|x, y| x.0.cmp(&y.0));
    a
}

/// The stored form of the zipkin-js trace, checked field by field.
fn check_stored_zipkin_js_trace(trace: &Trace, t0: u64) {
    let ns = |ms: u64| (t0 + ms * 1_000) * 1_000;
    let by_id = |hex: &str| {
        let id = SpanId::from_hex(hex).unwrap();
        trace
            .spans()
            .find(|s| s.span.span_id == id)
            .unwrap_or_else(|| panic!("span {hex} missing"))
    };
    assert_eq!(trace.span_count(), 5);
    for s in trace.spans() {
        assert_eq!(s.span.flags, 1);
    }

    let root = by_id("a1b2c3d4e5f60718");
    assert_eq!(root.service_name(), "frontend");
    assert_eq!(root.span.name, "get /checkout");
    assert_eq!(root.span.kind, SpanKind::Server);
    assert_eq!(root.span.parent_span_id, None);
    assert_eq!(
        (root.span.start_time_unix_nano, root.span.end_time_unix_nano),
        (ns(0), ns(250))
    );
    assert_eq!(
        sorted_attrs(root.span),
        pairs(&[
            ("http.method", s("GET")),
            ("http.path", s("/checkout")),
            ("net.host.ip", s("10.0.0.1")),
            ("net.host.port", AnyValue::Int(8080)),
            ("net.peer.ip", s("192.0.2.7")),
            ("net.peer.port", AnyValue::Int(51234)),
        ])
    );
    assert_eq!(
        root.span.events,
        vec![Event {
            time_unix_nano: ns(5),
            name: "cache.miss".into(),
            ..Default::default()
        }]
    );

    let client = by_id("53995c3f42cd8ad8");
    assert_eq!(client.service_name(), "frontend");
    assert_eq!(client.span.kind, SpanKind::Client);
    assert_eq!(
        client.span.parent_span_id,
        Some(SpanId::from_hex("a1b2c3d4e5f60718").unwrap())
    );
    assert_eq!(
        (
            client.span.start_time_unix_nano,
            client.span.end_time_unix_nano
        ),
        (ns(20), ns(200))
    );
    assert_eq!(
        sorted_attrs(client.span),
        pairs(&[
            ("http.method", s("POST")),
            ("http.status_code", s("502")),
            ("net.peer.ip", s("10.0.0.2")),
            ("net.peer.port", AnyValue::Int(9000)),
            ("peer.service", s("backend")),
        ])
    );
    assert_eq!(
        client.span.status,
        Status {
            code: StatusCode::Error,
            message: "payment declined".into()
        }
    );

    let server = by_id(&shared_span_id(SpanId::from_hex("53995c3f42cd8ad8").unwrap()).to_hex());
    assert_eq!(server.service_name(), "backend");
    assert_eq!(server.span.name, "post /charge");
    assert_eq!(server.span.kind, SpanKind::Server);
    assert_eq!(server.span.parent_span_id, Some(client.span.span_id));
    assert_eq!(
        (
            server.span.start_time_unix_nano,
            server.span.end_time_unix_nano
        ),
        (ns(30), ns(190))
    );
    assert_eq!(
        sorted_attrs(server.span),
        pairs(&[
            ("charge.amount", s("42.50")),
            ("net.host.ip", s("10.0.0.2")),
            ("net.host.port", AnyValue::Int(9000)),
            ("net.peer.ip", s("10.0.0.1")),
            ("net.peer.port", AnyValue::Int(40000)),
        ])
    );
    assert_eq!(server.span.events.len(), 1);
    assert_eq!(server.span.events[0].name, "card.authorized");
    assert_eq!(server.span.events[0].time_unix_nano, ns(35));
    assert_eq!(
        server.span.status,
        Status {
            code: StatusCode::Error,
            message: "card declined".into()
        }
    );

    let db = by_id("c0ffee0000000001");
    assert_eq!(db.service_name(), "backend");
    assert_eq!(db.span.name, "db.query");
    assert_eq!(db.span.kind, SpanKind::Unspecified);
    assert_eq!(db.span.parent_span_id, Some(client.span.span_id));
    assert_eq!(
        (db.span.start_time_unix_nano, db.span.end_time_unix_nano),
        (ns(40), ns(90))
    );
    assert_eq!(
        sorted_attrs(db.span),
        pairs(&[
            (
                "db.statement",
                s("SELECT balance FROM accounts WHERE id = ?")
            ),
            ("zipkin.debug", AnyValue::Bool(true)),
        ])
    );

    let publish = by_id("d00d000000000002");
    assert_eq!(publish.service_name(), "backend");
    assert_eq!(publish.span.name, "publish order");
    assert_eq!(publish.span.kind, SpanKind::Producer);
    assert_eq!(
        (
            publish.span.start_time_unix_nano,
            publish.span.end_time_unix_nano
        ),
        (ns(100), ns(110))
    );
    assert_eq!(
        sorted_attrs(publish.span),
        pairs(&[
            ("net.peer.ip", s("10.0.0.9")),
            ("net.peer.port", AnyValue::Int(9092)),
            ("peer.service", s("kafka")),
        ])
    );
}

/// The Jaeger view of the zipkin-js trace: processes, kinds, errors, references, logs.
fn check_jaeger_view(body: &Value, trace_id: &str) {
    let trace = &body["data"][0];
    assert_eq!(
        trace["traceID"],
        trace_id.trim_start_matches("0000000000000000")
    );
    let processes = trace["processes"].as_object().unwrap();
    let mut services: Vec<&str> = processes
        .values()
        .map(|p| p["serviceName"].as_str().unwrap())
        .collect();
    services.sort();
    assert_eq!(services, ["backend", "frontend"]);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 5);
    let tags = |span: &Value| -> BTreeMap<String, Value> {
        span["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["key"].as_str().unwrap().to_owned(), t["value"].clone()))
            .collect()
    };
    let service_of = |span: &Value| {
        processes[span["processID"].as_str().unwrap()]["serviceName"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let client = spans
        .iter()
        .find(|s| s["spanID"] == "53995c3f42cd8ad8")
        .unwrap();
    let t = tags(client);
    assert_eq!(t["span.kind"], "client");
    assert_eq!(t["error"], true);
    assert_eq!(t["otel.status_description"], "payment declined");
    assert_eq!(t["peer.service"], "backend");
    assert_eq!(t["http.status_code"], "502");
    assert_eq!(t["net.peer.port"], 9000);
    assert_eq!(client["references"][0]["spanID"], "a1b2c3d4e5f60718");
    let server = spans
        .iter()
        .find(|s| s["operationName"] == "post /charge" && service_of(s) == "backend")
        .unwrap();
    assert_eq!(server["references"][0]["refType"], "CHILD_OF");
    assert_eq!(server["references"][0]["spanID"], "53995c3f42cd8ad8");
    assert_eq!(tags(server)["span.kind"], "server");
    assert_eq!(server["logs"][0]["fields"][0]["value"], "card.authorized");
    let root = spans
        .iter()
        .find(|s| s["spanID"] == "a1b2c3d4e5f60718")
        .unwrap();
    assert_eq!(root["duration"], 250_000);
    assert_eq!(root["references"], json!([]));
    let db = spans
        .iter()
        .find(|s| s["spanID"] == "c0ffee0000000001")
        .unwrap();
    assert_eq!(tags(db)["zipkin.debug"], true);
}

/// Sorts spans by (id, shared) and drops the `otel.status_code` tag Stitch adds next to an
/// `error` tag, so an answer of the Zipkin API compares with what a Zipkin client sent.
fn comparable(spans: &[Value]) -> Vec<Value> {
    let mut out = spans.to_vec();
    for span in &mut out {
        if let Some(tags) = span.get_mut("tags").and_then(Value::as_object_mut)
            && tags.contains_key("error")
            && let Some(code) = tags.remove("otel.status_code")
        {
            assert_eq!(code, json!("ERROR"));
        }
    }
    out.sort_by_key(|v| format!("{}{}", v["id"], v["shared"]));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_js_traces_survive_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    let t0 = t0();
    let sent_v2 = emit_zipkin_js(&server, "v2", V2_TRACE, t0).await;
    assert_eq!(sent_v2.len(), 5, "the client sent the five spans");
    let _sent_v1 = emit_zipkin_js(&server, "v1", V1_TRACE, t0).await;

    // Native API: the stored model.
    let api = server.api();
    for id in [V2_TRACE, &format!("{:0>32}", V1_TRACE)] {
        let trace = eventually(Duration::from_secs(10), || fetch_trace(&api, id))
            .await
            .unwrap_or_else(|| panic!("trace {id} stored; log:\n{}", server.log()));
        check_stored_zipkin_js_trace(&trace, t0);
    }

    // Jaeger API.
    for id in [V2_TRACE, V1_TRACE] {
        let (status, body) = get_json(&format!("{api}/api/traces/{id}")).await;
        assert_eq!(status, 200, "{body}");
        check_jaeger_view(&body, id);
    }

    // Zipkin API: exactly what the client sent.
    let zipkin = server.zipkin();
    let (status, back) = get_json(&format!("{zipkin}/api/v2/trace/{V2_TRACE}")).await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(
        comparable(back.as_array().unwrap()),
        comparable(&sent_v2),
        "the Zipkin API gives back what zipkin-js sent"
    );
    // The v1 upload reads back as the same v2 spans, under its 64-bit trace id.
    let (status, back_v1) = get_json(&format!("{zipkin}/api/v2/trace/{V1_TRACE}")).await;
    assert_eq!(status, 200, "{back_v1}");
    let mut v1_as_v2 = back_v1.as_array().unwrap().clone();
    for span in &mut v1_as_v2 {
        assert_eq!(span["traceId"], V1_TRACE);
        span["traceId"] = json!(V2_TRACE);
    }
    assert_eq!(comparable(&v1_as_v2), comparable(back.as_array().unwrap()));

    // The rest of the Zipkin query API.
    let get = |path: String| {
        let url = format!("{zipkin}{path}");
        async move { get_json(&url).await }
    };
    assert_eq!(
        get("/api/v2/services".into()).await.1,
        json!(["backend", "frontend"])
    );
    assert_eq!(
        get("/api/v2/spans?serviceName=backend".into()).await.1,
        json!(["db.query", "post /charge", "publish order"])
    );
    assert_eq!(
        get("/api/v2/remoteServices?serviceName=frontend".into())
            .await
            .1,
        json!(["backend"])
    );
    assert_eq!(
        get("/api/v2/remoteServices?serviceName=backend".into())
            .await
            .1,
        json!(["kafka"])
    );
    let count = |v: &Value| v.as_array().map_or(usize::MAX, Vec::len);
    let search = |q: &str| get(format!("/api/v2/traces?{q}"));
    assert_eq!(
        count(
            &search("serviceName=frontend&annotationQuery=error%20and%20http.method%3DPOST")
                .await
                .1
        ),
        2
    );
    assert_eq!(
        count(
            &search("serviceName=frontend&annotationQuery=cache.miss")
                .await
                .1
        ),
        2
    );
    assert_eq!(
        count(
            &search("serviceName=backend&annotationQuery=cache.miss")
                .await
                .1
        ),
        0
    );
    assert_eq!(
        count(
            &search("serviceName=frontend&spanName=get%20/checkout&minDuration=250000")
                .await
                .1
        ),
        2
    );
    assert_eq!(
        count(&search("serviceName=frontend&minDuration=250001").await.1),
        0
    );
    assert_eq!(
        count(
            &search("serviceName=backend&remoteServiceName=kafka&limit=1")
                .await
                .1
        ),
        1
    );
    let end_ts = now_micros() / 1_000;
    assert_eq!(
        count(
            &search(&format!(
                "serviceName=frontend&endTs={}&lookback=1000",
                t0 / 1_000 - 1_000
            ))
            .await
            .1
        ),
        0,
        "a window before the trace finds nothing"
    );
    let (_, many) = get(format!(
        "/api/v2/traceMany?traceIds={V2_TRACE},{V1_TRACE},0000000000000bad"
    ))
    .await;
    assert_eq!(count(&many), 2);
    let (_, deps) = get(format!(
        "/api/v2/dependencies?endTs={end_ts}&lookback=3600000"
    ))
    .await;
    assert_eq!(
        deps,
        json!([
            {"parent": "backend", "child": "kafka", "callCount": 2},
            {"parent": "frontend", "child": "backend", "callCount": 2, "errorCount": 2},
        ])
    );
    let (_, keys) = get("/api/v2/autocompleteKeys".into()).await;
    assert!(
        keys.as_array().unwrap().contains(&json!("http.method")),
        "{keys}"
    );
    assert_eq!(
        get("/api/v2/autocompleteValues?key=http.method".into())
            .await
            .1,
        json!(["GET", "POST"])
    );

    // Errors are plain text with the right status.
    for (path, status, message) in [
        ("/api/v2/trace/0000000000000bad", 404, "not found"),
        ("/api/v2/trace/xyz", 400, "invalid trace id"),
        ("/api/v2/spans", 400, "serviceName is required"),
        ("/api/v2/dependencies", 400, "endTs is required"),
        ("/api/v2/traces?minDuration=1s", 400, "minDuration"),
        ("/api/v2/traceMany", 400, "traceIds is required"),
    ] {
        let resp = reqwest::get(format!("{zipkin}{path}")).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(message), "{path}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentelemetry_js_zipkin_exporter_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Stitch::start(&dir.path().join("data"), &[]));
    let t0_ms = t0() / 1_000;
    let url = format!("{}/api/v2/spans", server.zipkin());
    tokio::task::spawn_blocking(move || {
        run_node("emit_otel_js.cjs", &[&url, V2_TRACE, &t0_ms.to_string()])
    })
    .await
    .unwrap();
    let api = server.api();
    let trace = eventually(Duration::from_secs(10), || fetch_trace(&api, V2_TRACE))
        .await
        .expect("stored");
    assert_eq!(trace.span_count(), 3);
    let resource = &trace.resource_spans[0].resource;
    assert_eq!(resource.service_name(), "checkout");
    let mut rattrs: Vec<_> = resource
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    rattrs.sort();
    assert_eq!(
        rattrs,
        [
            "deployment.environment.name",
            "host.cpu.count",
            "service.name",
            "service.version"
        ]
    );
    let root = trace
        .spans()
        .find(|s| s.span.name == "GET /checkout")
        .unwrap()
        .span;
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.status.code, StatusCode::Error);
    assert_eq!(root.status.message, "payment declined");
    assert_eq!(
        stitch_model::find_attribute(&root.attributes, "http.response.status_code"),
        Some(&s("500"))
    );
    assert_eq!(root.events[0].name, "inventory_check_passed");
    assert_eq!(root.start_time_unix_nano, t0_ms * 1_000_000);
    assert_eq!(root.end_time_unix_nano, (t0_ms + 250) * 1_000_000);
    let call = trace
        .spans()
        .find(|s| s.span.name == "charge card")
        .unwrap()
        .span;
    assert_eq!(call.kind, SpanKind::Client);
    assert_eq!(call.status.code, StatusCode::Ok);
    assert_eq!(call.parent_span_id, Some(root.span_id));
    // Searchable through the Jaeger API by a tag, compared as text.
    let (_, found) = get_json(&format!(
        "{api}/api/traces?service=checkout&tags=%7B%22http.response.status_code%22%3A500%7D&lookback=1h"
    ))
    .await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zipkin_receiver_answers_bad_input_like_the_otlp_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &["--max-request-bytes", "4096"]);
    let v2 = format!("{}/api/v2/spans", server.zipkin());
    let v1 = format!("{}/api/v1/spans", server.zipkin());
    let ts = now_micros();
    let good = |id: &str| {
        format!(
            r#"{{"traceId":"{id}","id":"1","name":"op","timestamp":{ts},"duration":5,"localEndpoint":{{"serviceName":"svc"}}}}"#
        )
    };
    let gzip = |body: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    };
    let bomb = gzip(&vec![b' '; 1 << 20]);
    // (name, url, content type, content encoding, body, status, message)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        ("ok", &v2, "application/json", None, format!("[{}]", good("a1")).into_bytes(), 202, ""),
        ("ok gzip", &v2, "application/json", Some("gzip"), gzip(format!("[{}]", good("a2")).as_bytes()), 202, ""),
        ("without content type", &v2, "", None, format!("[{}]", good("a3")).into_bytes(), 415, "missing Content-Type: send application/json"),
        ("empty list", &v2, "application/json", None, b"[]".to_vec(), 202, ""),
        ("partly invalid", &v2, "application/json", None, format!(r#"[{},{{"traceId":"zz","id":"1","timestamp":1}}]"#, good("a4")).into_bytes(), 202, r#"accepted 1 spans; rejected 1: span 1: trace id must be 1 to 32 hex digits, got "zz""#),
        ("all invalid", &v2, "application/json", None, br#"[{"traceId":"1","id":"0","timestamp":1}]"#.to_vec(), 400, "no valid span in the request; rejected 1: span 0: span id is all zeros"),
        ("not json", &v2, "application/json", None, b"{".to_vec(), 400, "failed to decode Zipkin spans: request body is not valid json"),
        ("wrong type", &v2, "application/json", None, br#"[{"traceId":1}]"#.to_vec(), 400, "[0].traceId: expected a string, got 1"),
        ("bad protobuf", &v2, "application/x-protobuf", None, vec![0xff; 8], 400, "not a valid zipkin.proto3.ListOfSpans"),
        ("bad gzip", &v2, "application/json", Some("gzip"), b"not gzip".to_vec(), 400, "failed to decompress gzip request body"),
        ("thrift", &v2, "application/x-thrift", None, vec![1, 2], 415, "unsupported content type"),
        ("protobuf on v1", &v1, "application/x-protobuf", None, vec![1, 2], 415, "/api/v1/spans takes application/json"),
        ("brotli", &v2, "application/json", Some("br"), b"[]".to_vec(), 415, "unsupported content encoding"),
        ("too large", &v2, "application/json", None, vec![b' '; 5000], 413, "request body exceeds the limit of 4096 bytes"),
        ("bomb", &v2, "application/json", Some("gzip"), bomb, 413, "decompressed request body exceeds the limit"),
        ("v1 ok", &v1, "application/json", None, format!(r#"[{{"traceId":"a5","id":"1","name":"op","timestamp":{ts},"duration":5,"binaryAnnotations":[{{"key":"k","value":"v","endpoint":{{"serviceName":"svc"}}}}]}}]"#).into_bytes(), 202, ""),
    ];
    for (name, url, content_type, encoding, body, status, message) in cases {
        let mut req = reqwest::Client::new().post(url).body(body);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{name}");
        if status == 503 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        let text = resp.text().await.unwrap();
        assert!(text.contains(message), "{name}: {text:?} lacks {message:?}");
    }
    // Everything that was accepted is stored, nothing else; the server still works.
    for id in ["a1", "a2", "a4", "a5"] {
        let trace = fetch_trace(&server.api(), &format!("{id:0>32}")).await;
        assert_eq!(trace.map(|t| t.span_count()), Some(1), "{id}");
    }
    assert!(
        fetch_trace(&server.api(), &format!("{:0>32}", "a3"))
            .await
            .is_none()
    );
    let resp = post(
        &v2,
        "application/json",
        None,
        format!("[{}]", good("a6")).into_bytes(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporters_without_a_content_type_are_served_when_the_config_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stitch.yaml");
    std::fs::write(&config, "zipkin:\n  accept_missing_content_type: true\n").unwrap();
    let server = Stitch::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let ts = now_micros();
    let body = format!(
        r#"[{{"traceId":"b1","id":"1","name":"op","timestamp":{ts},"duration":5,"localEndpoint":{{"serviceName":"svc"}}}}]"#
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/spans", server.zipkin()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let trace = fetch_trace(&server.api(), &format!("{:0>32}", "b1")).await;
    assert_eq!(trace.map(|t| t.span_count()), Some(1));
}

// ---------------------------------------------------------------------------------------------
// The same trace over OTLP and over Zipkin
// ---------------------------------------------------------------------------------------------

/// A trace with what OTLP can say, in the model.
fn otlp_trace(trace_id: TraceId, t0_ns: u64) -> Batch {
    let at = |ms: u64| t0_ns + ms * 1_000_000;
    let root_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let call_id = SpanId::from_hex("53995c3f42cd8ad8").unwrap();
    let spans = vec![
        Span {
            trace_id,
            span_id: root_id,
            flags: 0x101,
            name: "GET /checkout".into(),
            kind: SpanKind::Server,
            start_time_unix_nano: at(0),
            end_time_unix_nano: at(250),
            attributes: vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.response.status_code", 500i64),
                KeyValue::new("order.total", 299.97),
                KeyValue::new("customer.premium", true),
                KeyValue::new("order.skus", AnyValue::Array(vec![s("A-1"), s("B-2")])),
                KeyValue::new("net.host.ip", "10.0.0.1"),
                KeyValue::new("net.host.port", 8080i64),
            ],
            events: vec![Event {
                time_unix_nano: at(5),
                name: "inventory_check_passed".into(),
                attributes: vec![
                    KeyValue::new("warehouse", "us-east"),
                    KeyValue::new("items", 3i64),
                ],
                dropped_attributes_count: 0,
            }],
            status: Status {
                code: StatusCode::Error,
                message: "payment declined".into(),
            },
            ..Default::default()
        },
        Span {
            trace_id,
            span_id: call_id,
            parent_span_id: Some(root_id),
            trace_state: "vendor=abc".into(),
            flags: 0x101,
            name: "charge card".into(),
            kind: SpanKind::Client,
            start_time_unix_nano: at(20),
            end_time_unix_nano: at(200),
            attributes: vec![
                KeyValue::new("peer.service", "payments"),
                KeyValue::new("net.peer.ip", "10.0.0.2"),
                KeyValue::new("net.peer.port", 8443i64),
            ],
            links: vec![Link {
                trace_id: TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
                span_id: SpanId::from_hex("b7ad6b7169203331").unwrap(),
                trace_state: String::new(),
                attributes: vec![KeyValue::new("link.reason", "retry-of")],
                dropped_attributes_count: 0,
                flags: 0x301,
            }],
            status: Status {
                code: StatusCode::Ok,
                message: String::new(),
            },
            ..Default::default()
        },
        Span {
            trace_id,
            span_id: SpanId::from_hex("b9c7c989f97918e1").unwrap(),
            parent_span_id: Some(call_id),
            flags: 0x101,
            name: "serialize".into(),
            kind: SpanKind::Internal,
            start_time_unix_nano: at(21),
            end_time_unix_nano: at(23),
            attributes: vec![KeyValue::new("payload.bytes", 512i64)],
            dropped_attributes_count: 2,
            ..Default::default()
        },
    ];
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: Arc::new(Resource {
                attributes: vec![
                    KeyValue::new("service.name", "checkout"),
                    KeyValue::new("service.version", "2.0.1"),
                    KeyValue::new("host.cpu.count", 8i64),
                    KeyValue::new("team", "payments"),
                ],
                dropped_attributes_count: 0,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Arc::new(Scope {
                    name: "stitch-e2e".into(),
                    version: "1.2.3".into(),
                    attributes: vec![KeyValue::new("scope.flavour", "vanilla")],
                    ..Default::default()
                }),
                spans,
            }],
        }],
    }
}

/// The same trace as a Zipkin v2 client (here: OpenTelemetry's Zipkin exporters plus the
/// Collector's link and event formats) writes it, by hand.
fn zipkin_body(trace_id: &str, t0_us: u64) -> String {
    let at = |ms: u64| t0_us + ms * 1_000;
    let resource = r#""service.version":"2.0.1","host.cpu.count":"8","team":"payments","otel.scope.name":"stitch-e2e","otel.scope.version":"1.2.3""#;
    format!(
        r#"[
  {{"traceId":"{trace_id}","id":"00f067aa0ba902b7","kind":"SERVER","name":"GET /checkout",
    "timestamp":{t0},"duration":250000,
    "localEndpoint":{{"serviceName":"checkout","ipv4":"10.0.0.1","port":8080}},
    "annotations":[{{"timestamp":{t5},"value":"inventory_check_passed|{{\"warehouse\":\"us-east\",\"items\":3}}|0"}}],
    "tags":{{"http.request.method":"GET","http.response.status_code":"500","order.total":"299.97",
      "customer.premium":"true","order.skus":"[\"A-1\",\"B-2\"]",
      "otel.status_code":"ERROR","error":"payment declined",{resource}}}}},
  {{"traceId":"{trace_id}","parentId":"00f067aa0ba902b7","id":"53995c3f42cd8ad8","kind":"CLIENT",
    "name":"charge card","timestamp":{t20},"duration":180000,
    "localEndpoint":{{"serviceName":"checkout"}},
    "remoteEndpoint":{{"serviceName":"payments","ipv4":"10.0.0.2","port":8443}},
    "tags":{{"otel.status_code":"OK","w3c.tracestate":"vendor=abc",
      "otlp.link.0":"0af7651916cd43dd8448eb211c80319c|b7ad6b7169203331||{{\"link.reason\":\"retry-of\"}}|0",
      {resource}}}}},
  {{"traceId":"{trace_id}","parentId":"53995c3f42cd8ad8","id":"b9c7c989f97918e1",
    "name":"serialize","timestamp":{t21},"duration":2000,
    "localEndpoint":{{"serviceName":"checkout"}},
    "tags":{{"span.kind":"internal","payload.bytes":"512","otel.dropped_attributes_count":"2",{resource}}}}}
]"#,
        t0 = at(0),
        t5 = at(5),
        t20 = at(20),
        t21 = at(21),
    )
}

/// What Zipkin cannot express, applied to an OTLP trace: the differences the zipkin module
/// documents. Resource attributes outside the resource namespaces move to the spans,
/// attribute values become text, scope attributes and schema URLs go, flags become sampled,
/// link flags go, attributes are in key order.
fn as_zipkin_can_express(trace: &Trace) -> Vec<(Vec<KeyValue>, (String, String), Span)> {
    let mut out = Vec::new();
    for s in trace.spans() {
        let mut resource: Vec<KeyValue> = Vec::new();
        let mut moved: Vec<KeyValue> = Vec::new();
        for kv in &s.resource.attributes {
            let text = KeyValue::new(kv.key.clone(), kv.value.to_text());
            if kv.key == "service.name" || stitch_wire::zipkin::is_resource_tag(&kv.key) {
                resource.push(text);
            } else {
                moved.push(text);
            }
        }
        resource.sort_by(|a, b| a.key.cmp(&b.key));
        let mut span = s.span.clone();
        let mut attributes: Vec<KeyValue> = span
            .attributes
            .iter()
            .map(|kv| match kv.key.as_str() {
                // Endpoint fields keep their types.
                "net.host.port" | "net.peer.port" => kv.clone(),
                _ => KeyValue::new(kv.key.clone(), kv.value.to_text()),
            })
            .collect();
        attributes.extend(moved);
        attributes.sort_by(|a, b| a.key.cmp(&b.key));
        span.attributes = attributes;
        span.flags = 0x01;
        for l in &mut span.links {
            l.flags = 0;
        }
        for e in &mut span.events {
            e.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        }
        out.push((
            resource,
            (s.scope.name.clone(), s.scope.version.clone()),
            span,
        ));
    }
    out.sort_by_key(|(_, _, span)| span.span_id);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_trace_over_otlp_and_zipkin_is_stored_alike_but_for_what_zipkin_cannot_express() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    let t0_us = t0();
    let otlp_id = TraceId::from_hex("11111111111111111111111111111111").unwrap();
    let zipkin_id = TraceId::from_hex("22222222222222222222222222222222").unwrap();

    let batch = otlp_trace(otlp_id, t0_us * 1_000);
    let resp = post(
        &server.otlp_http(),
        "application/x-protobuf",
        None,
        stitch_wire::otlp::encode_batch(&batch),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let resp = post(
        &format!("{}/api/v2/spans", server.zipkin()),
        "application/json",
        None,
        zipkin_body(&zipkin_id.to_hex(), t0_us).into_bytes(),
    )
    .await;
    assert_eq!(
        resp.status().as_u16(),
        202,
        "{}",
        resp.text().await.unwrap()
    );

    let api = server.api();
    let from_otlp = fetch_trace(&api, &otlp_id.to_hex())
        .await
        .expect("OTLP trace");
    let from_zipkin = fetch_trace(&api, &zipkin_id.to_hex())
        .await
        .expect("Zipkin trace");
    let mut expected = as_zipkin_can_express(&from_otlp);
    for (_, _, span) in &mut expected {
        span.trace_id = zipkin_id;
    }
    let got = as_zipkin_can_express(&from_zipkin);
    assert_eq!(got, expected);
    // And the differences are real: the raw stored traces are not equal.
    assert_ne!(
        from_otlp.spans().next().unwrap().span.attributes,
        from_zipkin.spans().next().unwrap().span.attributes
    );
}
