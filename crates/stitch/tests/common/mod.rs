//! Shared helpers for the end-to-end tests: start the real `stitch` binary on free loopback
//! ports and talk to it.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `stitch serve`, killed when dropped.
pub struct Stitch {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub query: SocketAddr,
    /// Zipkin collector and Zipkin v2 query API.
    pub zipkin: SocketAddr,
    /// Jaeger agent, UDP, Thrift compact protocol.
    pub jaeger_compact: SocketAddr,
    /// Jaeger agent, UDP, Thrift binary protocol.
    pub jaeger_binary: SocketAddr,
    /// Jaeger collector, HTTP.
    pub jaeger_http: SocketAddr,
    /// Jaeger collector, gRPC.
    pub jaeger_grpc: SocketAddr,
    /// Jaeger remote sampling (`GET /sampling?service=`).
    pub sampling: SocketAddr,
    /// Tempo's query API.
    pub tempo: SocketAddr,
    pub data_dir: PathBuf,
}

impl Stitch {
    /// Starts `stitch serve` on ports chosen by the OS, storing data in `data_dir`.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Stitch {
        let log = std::fs::File::create(data_dir.with_extension("log"))
            .expect("create the server log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_stitch"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--otlp-grpc-addr", "127.0.0.1:0"])
            .args(["--otlp-http-addr", "127.0.0.1:0"])
            .args(["--query-addr", "127.0.0.1:0"])
            .args(["--zipkin-addr", "127.0.0.1:0"])
            .args(["--jaeger-agent-compact-addr", "127.0.0.1:0"])
            .args(["--jaeger-agent-binary-addr", "127.0.0.1:0"])
            .args(["--jaeger-http-addr", "127.0.0.1:0"])
            .args(["--jaeger-grpc-addr", "127.0.0.1:0"])
            .args(["--sampling-addr", "127.0.0.1:0"])
            .args(["--tempo-addr", "127.0.0.1:0"])
            .args(extra_args)
            .env("STITCH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the stitch binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Keep draining so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        let (mut grpc, mut http, mut query) = (None, None, None);
        let mut zipkin = None;
        let mut jaeger: [Option<SocketAddr>; 4] = [None; 4];
        let mut sampling = None;
        let mut tempo = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while grpc.is_none()
            || http.is_none()
            || query.is_none()
            || zipkin.is_none()
            || jaeger.iter().any(Option::is_none)
            || sampling.is_none()
            || tempo.is_none()
        {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    let log =
                        std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default();
                    panic!("stitch did not report its listeners in time; its log:\n{log}");
                }
            };
            let addr = |prefix: &str| -> Option<SocketAddr> {
                line.strip_prefix(prefix)?.trim().parse().ok()
            };
            if let Some(a) = addr("stitch: otlp-grpc listening on ") {
                grpc = Some(a);
            }
            if let Some(a) = addr("stitch: otlp-http listening on ") {
                http = Some(a);
            }
            if let Some(a) = addr("stitch: query listening on ") {
                query = Some(a);
            }
            if let Some(a) = addr("stitch: zipkin listening on ") {
                zipkin = Some(a);
            }
            if let Some(a) = addr("stitch: sampling listening on ") {
                sampling = Some(a);
            }
            if let Some(a) = addr("stitch: tempo listening on ") {
                tempo = Some(a);
            }
            for (slot, name) in jaeger.iter_mut().zip([
                "jaeger-agent-compact",
                "jaeger-agent-binary",
                "jaeger-http",
                "jaeger-grpc",
            ]) {
                if let Some(a) = addr(&format!("stitch: {name} listening on ")) {
                    *slot = Some(a);
                }
            }
        }
        Stitch {
            child,
            grpc: grpc.expect("set above"),
            http: http.expect("set above"),
            query: query.expect("set above"),
            zipkin: zipkin.expect("set above"),
            tempo: tempo.expect("set above"),
            jaeger_compact: jaeger[0].expect("set above"),
            jaeger_binary: jaeger[1].expect("set above"),
            jaeger_http: jaeger[2].expect("set above"),
            jaeger_grpc: jaeger[3].expect("set above"),
            sampling: sampling.expect("set above"),
            data_dir: data_dir.to_owned(),
        }
    }

    pub fn api(&self) -> String {
        format!("http://{}", self.query)
    }

    pub fn otlp_http(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    /// Base URL of the Zipkin listener (collector and query API).
    pub fn zipkin(&self) -> String {
        format!("http://{}", self.zipkin)
    }

    /// Base URL of Tempo's query API.
    pub fn tempo(&self) -> String {
        format!("http://{}", self.tempo)
    }

    pub fn otlp_grpc(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Sends SIGKILL and waits for the process to die: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for Stitch {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// GET a URL and parse the JSON body, returning the status too.
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(url).await.expect("GET");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    let json = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{url} returned non-JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, json)
}

/// The value of one unlabelled metric on the server's `/metrics` page.
pub async fn metric(api: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{api}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{name} is not a number: {e}"))
}

/// Fetches a trace from the native API and decodes it into the model.
pub async fn fetch_trace(api: &str, trace_id: &str) -> Option<stitch_model::Trace> {
    let resp = reqwest::get(format!("{api}/api/v1/traces/{trace_id}"))
        .await
        .expect("GET trace");
    if resp.status().as_u16() == 404 {
        return None;
    }
    assert!(resp.status().is_success(), "status {}", resp.status());
    let body = resp.bytes().await.expect("body");
    let decoded =
        stitch_wire::otlp_json::decode_export_request(&body).expect("native API returns OTLP JSON");
    let mut trace = stitch_model::Trace::new(trace_id.parse().expect("trace id"));
    trace.resource_spans = decoded.batch.resource_spans;
    Some(trace)
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// A request with `traces` traces of `spans_per_trace` spans each (a root and its children),
/// trace ids derived from `seed` so the caller knows them. Built by hand because the tests that
/// use it are about the server (limits, durability), not about client compatibility.
pub fn synthetic_request(
    seed: u64,
    traces: u64,
    spans_per_trace: u64,
) -> (ExportTraceServiceRequest, Vec<String>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut spans = Vec::new();
    let mut ids = Vec::new();
    for t in 0..traces {
        let n = seed * 1_000_003 + t + 1;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&n.to_be_bytes());
        trace_id[8..].copy_from_slice(&(n ^ 0x5bd1_e995).to_be_bytes());
        ids.push(hex_of(&trace_id));
        for s in 0..spans_per_trace {
            let span_id = (n << 8 | (s + 1)).to_be_bytes().to_vec();
            let parent = if s == 0 {
                Vec::new()
            } else {
                (n << 8 | 1).to_be_bytes().to_vec()
            };
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id,
                parent_span_id: parent,
                name: format!("op-{s}"),
                kind: if s == 0 { 2 } else { 3 },
                start_time_unix_nano: now + s * 1000,
                end_time_unix_nano: now + s * 1000 + 500_000,
                attributes: vec![KeyValue {
                    key: "http.route".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!("/item/{s}"))),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }
    let request = ExportTraceServiceRequest {
        resource_spans: vec![service_spans("synthetic", spans)],
    };
    (request, ids)
}

/// One resource named `service` (its `service.name`) holding `spans` in one scope.
pub fn service_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(service.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        schema_url: String::new(),
    }
}

impl Stitch {
    /// Exports `request` over OTLP/HTTP protobuf; the server must accept it.
    pub async fn export(&self, request: &ExportTraceServiceRequest) {
        use prost::Message;
        let resp = post(
            &self.otlp_http(),
            "application/x-protobuf",
            None,
            request.encode_to_vec(),
        )
        .await;
        assert!(resp.status().is_success(), "export: {}", resp.status());
    }
}

/// Runs the `stitch` command line with `COLUMNS` unset (so its width is its default): whether it
/// succeeded, its standard output and its standard error.
pub fn stitch(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stitch"))
        .args(args)
        .env_remove("COLUMNS")
        .output()
        .expect("run stitch");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

pub fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// POSTs a body to OTLP/HTTP with the given headers.
pub async fn post(
    url: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    req.send().await.expect("POST")
}

/// A tracer provider of the real OpenTelemetry Rust SDK exporting over OTLP/gRPC to `endpoint`
/// as `service`, in batches.
pub fn sdk_provider(endpoint: &str, service: &str) -> opentelemetry_sdk::trace::SdkTracerProvider {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .expect("exporter");
    opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build()
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
