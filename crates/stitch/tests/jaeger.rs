//! End to end with real Jaeger clients against the real `stitch` binary.
//!
//! - **jaeger-client for Node** (npm, 3.19.0; `tests/clients/jaeger/emit.js`) sends a known trace
//!   with its UDP sender — which speaks the Thrift *binary* protocol, so it goes to the agent's
//!   6832 port; the Node client has no compact protocol — and with its HTTP sender to the
//!   collector's `/api/traces`. The trace is read back through the Jaeger v1 API, api_v3 and the
//!   native API, and every field is checked.
//! - **OpenTelemetry's Jaeger exporters for Python** (1.21.0, the last release;
//!   `tests/clients/jaeger/emit.py`) send the same spans through the agent (Thrift *compact*
//!   over UDP, port 6831), the collector over HTTP, and `PostSpans` over gRPC (14250); the
//!   OTLP exporter of the same SDK sends them over OTLP/HTTP. The four stored traces are
//!   compared: they differ only where Jaeger (or these exporters) cannot express something.
//! - **gRPC with tonic**, using the hand-written api_v2 prost messages, checks the status codes
//!   of the gRPC collector; the Python proto-grpc exporter above is the real client.
//! - **Bad input**: undecodable UDP datagrams are counted and the listeners keep working; the
//!   HTTP collector answers each kind of bad body precisely.
//!
//! The clients are installed by `tests/clients/jaeger/install.sh` (run by `test.sh`, and here
//! when they are missing).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Stitch, eventually, fetch_trace, get_json};
use serde_json::Value;
use stitch_model::{AnyValue, KeyValue, SpanKind, StatusCode, Trace};
use stitch_testkit::TraceBuilder;
use stitch_wire::jaeger::{self as j, proto};

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/jaeger")
}

/// Installs the clients once per test binary (a no-op when `test.sh` already did).
fn clients() -> PathBuf {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let dir = clients_dir();
    INSTALLED.get_or_init(|| {
        let status = Command::new(dir.join("install.sh"))
            .status()
            .expect("run tests/clients/jaeger/install.sh");
        assert!(status.success(), "installing the Jaeger clients failed");
    });
    dir
}

fn run(program: &str, args: &[&str]) -> String {
    let dir = clients();
    let out = Command::new(program)
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn temp_server(extra: &[&str]) -> (tempfile::TempDir, Stitch) {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), extra);
    (dir, server)
}

/// Polls the native API until the trace has `spans` spans.
async fn trace_with(server: &Stitch, trace_id: &str, spans: usize) -> Trace {
    let api = server.api();
    eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            fetch_trace(&api, trace_id)
                .await
                .filter(|t| t.span_count() == spans)
        }
    })
    .await
    .unwrap_or_else(|| panic!("trace {trace_id} with {spans} spans never appeared"))
}

async fn metric(server: &Stitch, name: &str) -> u64 {
    common::metric(&server.api(), name).await as u64
}

// ---- jaeger-client for Node ----

/// A Jaeger JSON tag list as (key → (type, value)).
fn tags(v: &Value) -> Vec<(String, String, Value)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_owned(),
                t["type"].as_str().unwrap().to_owned(),
                t["value"].clone(),
            )
        })
        .collect()
}

fn tag<'a>(list: &'a [(String, String, Value)], key: &str) -> (&'a str, &'a Value) {
    let (_, t, v) = list
        .iter()
        .find(|(k, _, _)| k == key)
        .unwrap_or_else(|| panic!("no tag {key} in {list:?}"));
    (t.as_str(), v)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> &'a AnyValue {
    stitch_model::find_attribute(attrs, key).unwrap_or_else(|| panic!("no attribute {key}"))
}

struct NodeIds {
    trace: String,
    root: String,
    child: String,
    follower: String,
}

/// The ids `emit.js` printed. jaeger-client prints ids without leading zeros; Jaeger's API
/// pads them to 16 or 32 digits.
fn node_ids(out: &str, trace_digits: usize) -> NodeIds {
    let v: Value = serde_json::from_str(out.trim()).expect("emit.js prints JSON");
    let s = |k: &str| format!("{:0>16}", v[k].as_str().unwrap());
    NodeIds {
        trace: format!("{:0>trace_digits$}", v["traceId"].as_str().unwrap()),
        root: s("root"),
        child: s("child"),
        follower: s("follower"),
    }
}

/// Checks the known trace of `emit.js`, started at `t0_ms`, through all three APIs.
async fn check_node_trace(server: &Stitch, ids: &NodeIds, t0_ms: u64, trace_id_digits: usize) {
    assert_eq!(ids.trace.len(), trace_id_digits, "{}", ids.trace);
    let full_id = format!("{:0>32}", ids.trace);
    let t0_us = t0_ms * 1_000;
    let trace = trace_with(server, &full_id, 3).await;

    // Jaeger v1 API.
    let (status, body) = get_json(&format!("{}/api/traces/{}", server.api(), ids.trace)).await;
    assert_eq!(status, 200, "{body}");
    let jt = &body["data"][0];
    assert_eq!(jt["traceID"], ids.trace.as_str());
    let span = |id: &str| {
        jt["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["spanID"] == id)
            .unwrap_or_else(|| panic!("no span {id}"))
            .clone()
    };
    let root = span(&ids.root);
    assert_eq!(root["operationName"], "POST /checkout");
    assert_eq!(root["references"], serde_json::json!([]));
    assert_eq!(root["startTime"], t0_us);
    assert_eq!(root["duration"], 250_000);
    assert_eq!(root["flags"], 1);
    let rt = tags(&root["tags"]);
    assert_eq!(tag(&rt, "http.method"), ("string", &Value::from("POST")));
    assert_eq!(tag(&rt, "http.status_code").0, "float64");
    assert_eq!(tag(&rt, "http.status_code").1.as_f64(), Some(500.0));
    assert_eq!(tag(&rt, "order.total"), ("float64", &Value::from(299.97)));
    assert_eq!(tag(&rt, "customer.premium"), ("bool", &Value::from(true)));
    assert_eq!(tag(&rt, "payload"), ("binary", &Value::from("AAH+/w==")));
    assert_eq!(tag(&rt, "text"), ("string", &Value::from("héllo, wörld")));
    assert_eq!(tag(&rt, "span.kind"), ("string", &Value::from("server")));
    assert_eq!(tag(&rt, "error"), ("bool", &Value::from(true)));
    assert_eq!(
        tag(&rt, "otel.status_code"),
        ("string", &Value::from("ERROR"))
    );
    assert_eq!(tag(&rt, "sampler.type"), ("string", &Value::from("const")));
    let logs = root["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["timestamp"], t0_us + 1_500);
    let l0 = tags(&logs[0]["fields"]);
    assert_eq!(
        tag(&l0, "event"),
        ("string", &Value::from("inventory_check"))
    );
    assert_eq!(tag(&l0, "warehouse"), ("string", &Value::from("us-east")));
    assert_eq!(tag(&l0, "items").0, "float64");
    assert_eq!(logs[1]["timestamp"], t0_us + 200_000);
    let l1 = tags(&logs[1]["fields"]);
    assert_eq!(tag(&l1, "event"), ("string", &Value::from("error")));
    assert_eq!(
        tag(&l1, "error.kind"),
        ("string", &Value::from("PaymentDeclined"))
    );
    assert_eq!(
        tag(&l1, "message"),
        ("string", &Value::from("payment declined"))
    );

    let child = span(&ids.child);
    assert_eq!(child["operationName"], "charge card");
    assert_eq!(child["startTime"], t0_us + 10_000);
    assert_eq!(child["duration"], 190_250);
    assert_eq!(
        child["references"],
        serde_json::json!([
            {"refType": "CHILD_OF", "traceID": ids.trace, "spanID": ids.root},
            {"refType": "FOLLOWS_FROM", "traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "00000000000004d2"},
        ])
    );
    let ct = tags(&child["tags"]);
    assert_eq!(
        tag(&ct, "peer.service"),
        ("string", &Value::from("payments"))
    );
    assert_eq!(tag(&ct, "span.kind"), ("string", &Value::from("client")));

    let follower = span(&ids.follower);
    assert_eq!(
        follower["references"],
        serde_json::json!([{"refType": "FOLLOWS_FROM", "traceID": ids.trace, "spanID": ids.root}]),
        "a follows-from parent stays one FOLLOWS_FROM reference"
    );
    assert_eq!(tag(&tags(&follower["tags"]), "span.kind").1, "producer");

    let process = &jt["processes"][root["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], "jaeger-node-e2e");
    let pt = tags(&process["tags"]);
    assert_eq!(
        tag(&pt, "deployment.environment"),
        ("string", &Value::from("e2e"))
    );
    assert_eq!(tag(&pt, "host.cpu.count").0, "float64");
    assert_eq!(tag(&pt, "process.debug"), ("bool", &Value::from(false)));
    assert_eq!(
        tag(&pt, "jaeger.version"),
        ("string", &Value::from("Node-3.19.0"))
    );
    for key in ["hostname", "ip", "client-uuid"] {
        assert_eq!(tag(&pt, key).0, "string");
    }

    // api_v3: OTLP JSON in Jaeger's envelope.
    let (status, v3) = get_json(&format!("{}/api/v3/traces/{}", server.api(), ids.trace)).await;
    assert_eq!(status, 200, "{v3}");
    let rs = &v3["result"]["resourceSpans"];
    assert_eq!(rs.as_array().unwrap().len(), 1);
    let v3_spans: Vec<&Value> = rs[0]["scopeSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|ss| ss["spans"].as_array().unwrap())
        .collect();
    assert_eq!(v3_spans.len(), 3);
    let v3_root = v3_spans
        .iter()
        .find(|s| s["spanId"] == ids.root.as_str())
        .unwrap();
    assert_eq!(v3_root["traceId"], full_id.as_str());
    assert_eq!(v3_root["kind"], 2);
    assert_eq!(v3_root["status"]["code"], 2);
    assert_eq!(
        v3_root["startTimeUnixNano"],
        (t0_us * 1_000).to_string().as_str()
    );
    assert_eq!(v3_root["events"][0]["name"], "inventory_check");
    let v3_child = v3_spans
        .iter()
        .find(|s| s["spanId"] == ids.child.as_str())
        .unwrap();
    assert_eq!(v3_child["parentSpanId"], ids.root.as_str());
    assert_eq!(
        v3_child["links"][0]["traceId"],
        "0af7651916cd43dd8448eb211c80319c"
    );

    // Native API: the model.
    let rs = &trace.resource_spans;
    assert_eq!(rs.len(), 1);
    let resource = &rs[0].resource;
    assert_eq!(resource.service_name(), "jaeger-node-e2e");
    assert_eq!(
        attr(&resource.attributes, "host.cpu.count"),
        &AnyValue::Double(8.0)
    );
    assert_eq!(
        attr(&resource.attributes, "process.debug"),
        &AnyValue::Bool(false)
    );
    let by_id = |id: &str| {
        trace
            .spans()
            .find(|s| s.span.span_id.to_hex() == id)
            .unwrap()
            .span
    };
    let root = by_id(&ids.root);
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.status.code, StatusCode::Error);
    assert_eq!(root.flags, 1);
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.start_time_unix_nano, t0_us * 1_000);
    assert_eq!(root.end_time_unix_nano, (t0_us + 250_000) * 1_000);
    assert_eq!(
        attr(&root.attributes, "payload"),
        &AnyValue::Bytes(vec![0, 1, 254, 255])
    );
    assert_eq!(
        attr(&root.attributes, "order.total"),
        &AnyValue::Double(299.97)
    );
    assert!(
        root.attributes
            .iter()
            .all(|kv| kv.key != "span.kind" && kv.key != "error"),
        "span.kind and error became span fields: {:?}",
        root.attributes
    );
    assert_eq!(root.events.len(), 2);
    assert_eq!(root.events[0].name, "inventory_check");
    assert_eq!(root.events[0].time_unix_nano, (t0_us + 1_500) * 1_000);
    assert_eq!(
        root.events[0].attributes,
        vec![
            KeyValue::new("warehouse", "us-east"),
            KeyValue::new("items", 3.0)
        ]
    );
    assert_eq!(root.events[1].name, "error");
    let child = by_id(&ids.child);
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(
        child.parent_span_id.map(|p| p.to_hex()),
        Some(ids.root.clone())
    );
    assert_eq!(child.links.len(), 1);
    assert_eq!(
        child.links[0].trace_id.to_hex(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(
        child.links[0].attributes,
        vec![KeyValue::new("opentracing.ref_type", "follows_from")]
    );
    let follower = by_id(&ids.follower);
    assert_eq!(follower.kind, SpanKind::Producer);
    assert_eq!(
        follower.parent_span_id.map(|p| p.to_hex()),
        Some(ids.root.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_client_for_node_over_udp_and_http() {
    let (_dir, server) = temp_server(&[]);
    let t0_ms = now_nanos() / 1_000_000 - 60_000;
    let t0 = t0_ms.to_string();

    let port = server.jaeger_binary.port().to_string();
    let out = run("node", &["emit.js", "udp", "127.0.0.1", &port, &t0]);
    check_node_trace(&server, &node_ids(&out, 32), t0_ms, 32).await;

    let url = format!("http://{}/api/traces", server.jaeger_http);
    let out = run("node", &["emit.js", "http", &url, &t0]);
    check_node_trace(&server, &node_ids(&out, 16), t0_ms, 16).await;

    assert_eq!(
        metric(&server, "stitch_receiver_udp_datagrams_total").await,
        1
    );
    assert_eq!(
        metric(&server, "stitch_receiver_udp_malformed_datagrams_total").await,
        0
    );

    // Search through api_v3, services, operations and dependencies see both traces.
    let api = server.api();
    let (status, found) = get_json(&format!(
        "{api}/api/v3/traces?query.service_name=jaeger-node-e2e&query.operation_name=charge%20card\
         &query.attributes=%7B%22peer.service%22%3A%22payments%22%7D\
         &query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z\
         &query.duration_min=190ms&query.search_depth=10"
    ))
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["result"]["resourceSpans"].as_array().unwrap().len(),
        2
    );
    // The current Jaeger UI's search: trace summaries, with its camelCase parameters.
    let (status, found) = get_json(&format!(
        "{api}/api/v3/trace-summaries?query.serviceName=jaeger-node-e2e\
         &query.operationName=charge%20card\
         &query.attributes=%7B%22peer.service%22%3A%22payments%22%7D\
         &query.startTimeMin=2020-01-01T00:00:00.000Z&query.startTimeMax=2100-01-01T00:00:00.000Z\
         &query.durationMin=190ms&query.searchDepth=10"
    ))
    .await;
    assert_eq!(status, 200, "{found}");
    let summaries = found["summaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 2, "{found}");
    for s in summaries {
        assert_eq!(s["traceId"].as_str().map(str::len), Some(32), "{s}");
        assert_eq!(s["rootServiceName"], "jaeger-node-e2e");
        assert_eq!(s["rootOperationName"], "POST /checkout");
        assert_eq!(s["spanCount"], 3);
        assert!(s["errorSpanCount"].as_u64().is_some_and(|n| n >= 1), "{s}");
        assert!(s.get("orphanSpanCount").is_none(), "{s}");
        let start: u64 = s["minStartTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = s["maxEndTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert_eq!(start, t0_ms * 1_000_000);
        assert!(end >= start + 250_000_000, "{s}");
        assert_eq!(s["services"][0]["name"], "jaeger-node-e2e");
        assert_eq!(s["services"][0]["spanCount"], 3);
    }
    let (status, none) = get_json(&format!(
        "{api}/api/v3/trace-summaries?query.serviceName=jaeger-node-e2e&query.durationMin=1h\
         &query.startTimeMin=2020-01-01T00:00:00Z&query.startTimeMax=2100-01-01T00:00:00Z"
    ))
    .await;
    assert_eq!((status, none), (200, serde_json::json!({"summaries": []})));
    let (status, refused) = get_json(&format!(
        "{api}/api/v3/trace-summaries?query.serviceName=jaeger-node-e2e"
    ))
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "query.startTimeMin and query.startTimeMax are required"
    );
    let (status, none) = get_json(&format!(
        "{api}/api/v3/traces?query.service_name=jaeger-node-e2e&query.duration_min=1h\
         &query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z"
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(none["error"]["message"], "No traces found");
    let (_, services) = get_json(&format!("{api}/api/v3/services")).await;
    assert_eq!(
        services,
        serde_json::json!({"services": ["jaeger-node-e2e"]})
    );
    for kind in ["span_kind", "spanKind"] {
        let (_, ops) = get_json(&format!(
            "{api}/api/v3/operations?service=jaeger-node-e2e&{kind}=server"
        ))
        .await;
        assert_eq!(
            ops,
            serde_json::json!({"operations": [{"name": "POST /checkout", "spanKind": "server"}]})
        );
    }
    let end_ms = now_nanos() / 1_000_000;
    let (status, deps) = get_json(&format!(
        "{api}/api/dependencies?endTs={end_ms}&lookback=3600000"
    ))
    .await;
    assert_eq!(status, 200, "{deps}");
    assert_eq!(
        deps["data"],
        serde_json::json!([{"parent": "jaeger-node-e2e", "child": "payments", "callCount": 2}])
    );
}

// ---- OpenTelemetry's Python Jaeger exporters, compared with OTLP ----

/// The trace as sent over OTLP, normalised for comparison: trace ids blanked (each run has its
/// own), times relative to `t0`.
fn comparable(trace: &Trace) -> Trace {
    let mut t = trace.clone();
    t.trace_id = Default::default();
    for rs in &mut t.resource_spans {
        for ss in &mut rs.scope_spans {
            for s in &mut ss.spans {
                s.trace_id = Default::default();
            }
        }
    }
    t
}

/// What the Python Jaeger exporters do to the OTLP trace, plus what Jaeger cannot carry:
/// - the Thrift exporter sends only `serviceName` as the process; the gRPC exporter sends the
///   resource attributes as process tags too;
/// - both copy every resource attribute into every span's tags;
/// - links keep only their ids and become FOLLOWS_FROM;
/// - the OTLP exporter of 1.21 leaves span flags at 0 where Jaeger's carry `sampled`.
fn as_python_jaeger_sends_it(otlp: &Trace, grpc: bool) -> Trace {
    let mut t = comparable(otlp);
    for rs in &mut t.resource_spans {
        let resource_attrs = rs.resource.attributes.clone();
        let mut resource = (*rs.resource).clone();
        let service = resource.service_name().to_owned();
        resource.attributes = vec![KeyValue::new("service.name", service)];
        if grpc {
            resource.attributes.extend(
                resource_attrs
                    .iter()
                    .filter(|kv| kv.key != "service.name")
                    .cloned(),
            );
        }
        rs.resource = std::sync::Arc::new(resource);
        for ss in &mut rs.scope_spans {
            for s in &mut ss.spans {
                s.attributes.extend(resource_attrs.iter().cloned());
                s.flags = 1;
                for l in &mut s.links {
                    l.attributes = vec![KeyValue::new("opentracing.ref_type", "follows_from")];
                }
            }
        }
    }
    t
}

/// Python's gRPC exporter turns nanoseconds into float seconds: times come back within a
/// microsecond. Snap them to the expected ones when they are that close.
fn snap_times(got: &mut Trace, want: &Trace) {
    let snap = |g: &mut u64, w: u64| {
        if g.abs_diff(w) <= 1_000 {
            *g = w;
        }
    };
    for (grs, wrs) in got.resource_spans.iter_mut().zip(&want.resource_spans) {
        for (gss, wss) in grs.scope_spans.iter_mut().zip(&wrs.scope_spans) {
            for (g, w) in gss.spans.iter_mut().zip(&wss.spans) {
                snap(&mut g.start_time_unix_nano, w.start_time_unix_nano);
                snap(&mut g.end_time_unix_nano, w.end_time_unix_nano);
                for (ge, we) in g.events.iter_mut().zip(&w.events) {
                    snap(&mut ge.time_unix_nano, we.time_unix_nano);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_python_jaeger_exporters_store_what_otlp_stores() {
    let (_dir, server) = temp_server(&[]);
    let t0 = (now_nanos() - 60_000_000_000) / 1_000 * 1_000;
    let t0 = t0.to_string();
    let python = clients().join(".venv/bin/python");
    let python = python.to_str().unwrap();
    let sends = [
        ("otlp", format!("http://{}/v1/traces", server.http), "1"),
        ("agent", server.jaeger_compact.to_string(), "2"),
        (
            "collector",
            format!("http://{}/api/traces", server.jaeger_http),
            "3",
        ),
        ("grpc", server.jaeger_grpc.to_string(), "4"),
    ];
    let mut traces = Vec::new();
    for (mode, target, digit) in &sends {
        let trace_id = format!("4bf92f3577b34da6a3ce929d0e0e473{digit}");
        let out = run(python, &["emit.py", mode, target, &trace_id, &t0]);
        assert!(out.contains("\"ok\": true"), "{mode}: {out}");
        traces.push((*mode, trace_with(&server, &trace_id, 4).await));
    }

    // The OTLP trace, checked on its own.
    let otlp = &traces[0].1;
    let t0: u64 = t0.parse().unwrap();
    let root = otlp
        .spans()
        .find(|s| s.span.name == "POST /checkout")
        .unwrap();
    assert_eq!(root.scope.name, "stitch.e2e");
    assert_eq!(root.span.start_time_unix_nano, t0);
    assert_eq!(root.span.status.message, "payment declined");
    assert_eq!(otlp.spans().count(), 4);

    for (mode, trace) in &traces[1..] {
        let want = as_python_jaeger_sends_it(otlp, *mode == "grpc");
        let mut got = comparable(trace);
        if *mode == "grpc" {
            snap_times(&mut got, &want);
        }
        assert_eq!(got, want, "{mode}");
    }
    assert_eq!(
        metric(&server, "stitch_receiver_udp_datagrams_total").await,
        1
    );
}

// ---- gRPC status codes ----

async fn post_spans<T: prost::Message + Default + Send + Sync + 'static>(
    addr: std::net::SocketAddr,
    request: T,
) -> Result<proto::PostSpansResponse, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(proto::POST_SPANS_PATH);
    grpc.unary(
        tonic::Request::new(request),
        path,
        tonic_prost::ProstCodec::<T, proto::PostSpansResponse>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A message whose field 1 (PostSpansRequest.batch) holds bytes that are not a Batch.
#[derive(Clone, PartialEq, prost::Message)]
struct NotABatch {
    #[prost(bytes = "vec", tag = "1")]
    batch: Vec<u8>,
}

fn known_model_batch(trace: u8, service: &str) -> stitch_model::Batch {
    let now = now_nanos() / 1_000 * 1_000;
    // Span id `n` is `[n; 8]`.
    let id = |n: u8| u64::from_be_bytes([n; 8]);
    let mut trace = TraceBuilder::with_id(stitch_model::TraceId([trace; 16]));
    for (n, parent) in [(1, None), (2, Some(1))] {
        trace = trace
            .ns(
                service,
                id(n),
                parent.map(id),
                &format!("op {n}"),
                now - 5_000_000 + u64::from(n),
                now,
            )
            .kind(SpanKind::Server)
            .attr("n", i64::from(n));
    }
    trace.batch()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_collector_stores_and_answers_with_grpc_codes() {
    let (_dir, server) = temp_server(&["--max-request-bytes", "65536"]);
    let addr = server.jaeger_grpc;

    // Spans stored, nanoseconds kept.
    let batch = known_model_batch(7, "grpc-svc");
    let request = proto::PostSpansRequest {
        batch: Some(j::to_proto(&batch).remove(0)),
    };
    post_spans(addr, request).await.expect("PostSpans");
    let stored = trace_with(&server, &"07".repeat(16), 2).await;
    let want: Vec<_> = batch.spans().map(|s| s.span.clone()).collect();
    let got: Vec<_> = stored.spans().map(|s| s.span.clone()).collect();
    assert_eq!(got, want);

    // Not a PostSpansRequest: INVALID_ARGUMENT.
    let e = post_spans(
        addr,
        NotABatch {
            batch: vec![0xff, 0xff, 0xff],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("PostSpansRequest"), "{e:?}");

    // Every span invalid: INVALID_ARGUMENT naming them; some invalid: stored, counted.
    let mut bad = j::to_proto(&known_model_batch(8, "grpc-svc")).remove(0);
    for s in &mut bad.spans {
        s.trace_id = vec![0; 16];
    }
    let e = post_spans(
        addr,
        proto::PostSpansRequest {
            batch: Some(bad.clone()),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("span 0: trace id is all zeros"),
        "{e:?}"
    );
    let mut mixed = j::to_proto(&known_model_batch(9, "grpc-svc")).remove(0);
    mixed.spans.push(bad.spans[0].clone());
    post_spans(addr, proto::PostSpansRequest { batch: Some(mixed) })
        .await
        .expect("partly valid batch");
    trace_with(&server, &"09".repeat(16), 2).await;
    assert!(metric(&server, "stitch_receiver_rejected_spans_total").await >= 3);

    // Over the size limit: RESOURCE_EXHAUSTED.
    let e = post_spans(
        addr,
        NotABatch {
            batch: vec![0; 100_000],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
}

// ---- bad input ----

fn valid_thrift_batch(trace: u8) -> j::types::Batch {
    j::to_thrift(&known_model_batch(trace, "udp-svc")).remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_udp_datagrams_are_counted_and_the_listeners_keep_working() {
    let (_dir, server) = temp_server(&[]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let good_compact = j::encode_agent_compact(&valid_thrift_batch(1), 1);
    let good_binary = j::encode_agent_binary(&valid_thrift_batch(2), 1);
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("garbage", b"hello, jaeger".to_vec()),
        ("truncated", good_compact[..good_compact.len() / 2].to_vec()),
        ("huge length", {
            let mut b = vec![0x82, 0x81, 0x00];
            b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
            b
        }),
        ("wrong protocol", good_binary.clone()),
        ("emitZipkinBatch", {
            let mut b = vec![0x82, 0x81, 0x00, 0x0f];
            b.extend_from_slice(b"emitZipkinBatch");
            b.push(0);
            b
        }),
    ];
    for (_, datagram) in &bad {
        socket.send_to(datagram, server.jaeger_compact).unwrap();
    }
    // The binary port gets the compact datagram: as wrong as the other way round.
    socket.send_to(&good_compact, server.jaeger_binary).unwrap();
    let expected = bad.len() as u64 + 1;
    let counted = eventually(Duration::from_secs(10), || async {
        let n = metric(&server, "stitch_receiver_udp_malformed_datagrams_total").await;
        (n == expected).then_some(n)
    })
    .await;
    assert_eq!(counted, Some(expected), "every bad datagram is counted");

    // Both listeners still work.
    socket
        .send_to(&good_compact, server.jaeger_compact)
        .unwrap();
    socket.send_to(&good_binary, server.jaeger_binary).unwrap();
    trace_with(&server, &"01".repeat(16), 2).await;
    trace_with(&server, &"02".repeat(16), 2).await;
    assert_eq!(
        metric(&server, "stitch_receiver_udp_datagrams_total").await,
        expected + 2
    );
    assert_eq!(
        metric(&server, "stitch_receiver_udp_dropped_datagrams_total").await,
        0
    );
    let log = server.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("does not decode"))
        .count();
    assert!(
        (1..=2).contains(&warnings),
        "bad datagrams are logged at a rate limit (one line per listener per 10 s), got {warnings}:\n{log}"
    );
}

async fn post_thrift(
    server: &Stitch,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let resp = common::post(
        &format!("http://{}/api/traces", server.jaeger_http),
        content_type,
        encoding,
        body,
    )
    .await;
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").is_some();
    let text = resp.text().await.unwrap();
    assert_eq!(retry_after, status == 503, "{status} {text}");
    (status, text)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_collector_answers_bad_input_precisely() {
    let (_dir, server) = temp_server(&["--max-request-bytes", "65536"]);
    let thrift = "application/x-thrift";
    let good = j::encode_collector_thrift(&valid_thrift_batch(3));

    let (status, text) = post_thrift(&server, "application/json", None, good.clone()).await;
    assert_eq!(
        (status, text.contains("unsupported content type")),
        (415, true),
        "{text}"
    );
    let (status, text) = post_thrift(&server, thrift, Some("br"), good.clone()).await;
    assert_eq!(
        (status, text.contains("content encoding")),
        (415, true),
        "{text}"
    );
    let (status, text) = post_thrift(&server, thrift, None, b"not thrift".to_vec()).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.starts_with("unable to process request body: not a Jaeger Thrift batch"),
        "{text}"
    );
    let (status, text) = post_thrift(&server, thrift, None, good[..good.len() - 3].to_vec()).await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = post_thrift(&server, thrift, Some("gzip"), b"not gzip".to_vec()).await;
    assert_eq!((status, text.contains("decompress")), (400, true), "{text}");
    let (status, text) = post_thrift(&server, thrift, None, vec![0; 70_000]).await;
    assert_eq!(status, 413, "{text}");
    let (status, text) = post_thrift(&server, thrift, Some("gzip"), gzip(&vec![0; 200_000])).await;
    assert_eq!(
        (status, text.contains("decompressed")),
        (413, true),
        "{text}"
    );

    // Every span invalid: 400. Some invalid: 202 naming them.
    let mut invalid = valid_thrift_batch(4);
    for s in &mut invalid.spans {
        s.span_id = 0;
    }
    let (status, text) =
        post_thrift(&server, thrift, None, j::encode_collector_thrift(&invalid)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("span 0: span id is all zeros"), "{text}");
    let mut mixed = valid_thrift_batch(5);
    mixed.spans.push(invalid.spans[0].clone());
    let (status, text) = post_thrift(
        &server,
        "application/vnd.apache.thrift.binary",
        Some("gzip"),
        gzip(&j::encode_collector_thrift(&mixed)),
    )
    .await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        text,
        "accepted 2 spans; rejected 1: span 2: span id is all zeros"
    );
    trace_with(&server, &"05".repeat(16), 2).await;

    // And a good one.
    let (status, text) = post_thrift(&server, thrift, None, good).await;
    assert_eq!((status, text.as_str()), (202, ""));
    trace_with(&server, &"03".repeat(16), 2).await;
}
