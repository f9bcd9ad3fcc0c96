//! Jaeger remote sampling over gRPC, end to end: a grpcio client of
//! `jaeger.api_v2.SamplingManager` (`tests/clients/jaeger/sampling/client.py`, stubs generated
//! by grpcio-tools from `sampling.proto` when `install.sh` runs) asks the real `stitch` binary
//! on its Jaeger gRPC port, and every answer is compared with what the HTTP form
//! (`GET /sampling?service=` on the sampling port) says for the same service:
//!
//! - after root spans of two operations have gone through a calculation interval, so that the
//!   per-operation probabilities are computed from traffic;
//! - for a service Stitch has never seen (the default strategy);
//! - for bad requests: bytes that are not a `SamplingStrategyParameters`, and an empty service
//!   name, both `INVALID_ARGUMENT` (HTTP: 400).
//!
//! No package on PyPI or npm ships generated stubs of the sampling service, and the stock
//! clients that speak it (Java's remote sampler) come from Maven; hence the stubs generated
//! from the IDL's messages.
//!
//! The HTTP form is also polled by a stock client: jaeger-client's `RemoteSampler` (npm,
//! `tests/clients/jaeger/remote_sampler.js`), which must build per-operation samplers from
//! Stitch's answer, also on a server with no `sampling` section at all. And OpenTelemetry's
//! Python SDK, sampling with its stock ratio sampler (`tests/clients/jaeger/ratio_sampled.py`),
//! checks that the probability such an SDK used, which its spans do not state, is estimated
//! from its trace ids when the strategy is recalculated.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Stitch, get_json, service_spans};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value;

/// `remote_sampling.calculation_interval` of the server under test.
const INTERVAL: Duration = Duration::from_secs(2);

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

/// Runs the grpcio client; its one line of JSON output.
fn grpc_client(addr: SocketAddr, mode: &str, arg: &str) -> Value {
    let dir = clients().join("sampling");
    let out = Command::new(dir.join(".venv/bin/python"))
        .arg("client.py")
        .arg(addr.to_string())
        .args([mode, arg])
        .current_dir(&dir)
        .output()
        .expect("run the sampling client");
    assert!(
        out.status.success(),
        "client.py {mode} {arg:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `GetSamplingStrategy(service)` over gRPC: the response as protobuf's JSON mapping.
fn grpc_strategy(server: &Stitch, service: &str) -> Value {
    let out = grpc_client(server.jaeger_grpc, "strategy", service);
    assert_eq!(out["ok"], true, "{service}: {out}");
    out["response"].clone()
}

async fn http_strategy(server: &Stitch, service: &str) -> Value {
    let (status, body) = get_json(&format!(
        "http://{}/sampling?service={service}",
        server.sampling
    ))
    .await;
    assert_eq!(status, 200, "{service}: {body}");
    body
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// Sleeps until `margin` after the next boundary of the calculation interval (the server
/// counts intervals from the Unix epoch on the same clock).
async fn after_next_boundary(margin: Duration) {
    let into = now().as_nanos() % INTERVAL.as_nanos();
    let left = INTERVAL.as_nanos() - into;
    tokio::time::sleep(Duration::from_nanos(left as u64) + margin).await;
}

/// `n` root spans named `operation` of `service`, one trace each, over OTLP/HTTP.
async fn send_roots(server: &Stitch, service: &str, operation: &str, n: u64, seed: u64) {
    let start = now().as_nanos() as u64 - 1_000_000_000;
    let spans = (0..n)
        .map(|i| {
            // Spread over the id space, as an SDK's random ids are.
            let a = (seed << 32 | i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let b = (i << 8 | seed).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ a.rotate_left(17);
            let mut trace_id = a.to_be_bytes().to_vec();
            trace_id.extend(b.to_be_bytes());
            Span {
                trace_id,
                span_id: (i + 1).to_be_bytes().to_vec(),
                name: operation.into(),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 5_000_000,
                ..Default::default()
            }
        })
        .collect();
    server
        .export(&ExportTraceServiceRequest {
            resource_spans: vec![service_spans(service, spans)],
        })
        .await;
}

/// The strategy of `service` over HTTP, then gRPC, then HTTP again, all within one calculation
/// interval (probabilities only change at its boundaries); retried when a boundary slipped in.
async fn both_forms(server: &Stitch, service: &str) -> (Value, Value) {
    for _ in 0..5 {
        after_next_boundary(Duration::from_millis(100)).await;
        let started = now();
        let before = http_strategy(server, service).await;
        let grpc = grpc_strategy(server, service);
        let after = http_strategy(server, service).await;
        let elapsed = now() - started;
        if before == after && elapsed < INTERVAL - Duration::from_millis(100) {
            return (before, grpc);
        }
    }
    panic!("could not ask both forms within one calculation interval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_sampling_manager_serves_what_http_serves() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stitch.yaml");
    std::fs::write(
        &config,
        "sampling:\n  remote_sampling:\n    calculation_interval: 2s\n",
    )
    .unwrap();
    let server = Stitch::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    // Fail fast on a missing client rather than after the traffic.
    clients();

    // Traffic: many roots of one operation and a few of another, in one interval.
    after_next_boundary(Duration::from_millis(50)).await;
    send_roots(&server, "shop", "GET /checkout", 60, 1).await;
    send_roots(&server, "shop", "GET /cart", 3, 2).await;
    send_roots(&server, "payments", "charge", 5, 3).await;

    // Known service, once that interval has been closed and probabilities recalculated.
    let (http, grpc) = both_forms(&server, "shop").await;
    assert_eq!(grpc, http, "gRPC and HTTP disagree for a known service");
    assert_eq!(http["strategyType"], "PROBABILISTIC");
    let default = http["operationSampling"]["defaultSamplingProbability"]
        .as_f64()
        .unwrap();
    assert_eq!(default, 0.001);
    assert_eq!(http["probabilisticSampling"]["samplingRate"], default);
    let ops = http["operationSampling"]["perOperationStrategies"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = ops
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["GET /cart", "GET /checkout"]);
    let rates: Vec<f64> = ops
        .iter()
        .map(|o| o["probabilisticSampling"]["samplingRate"].as_f64().unwrap())
        .collect();
    assert!(
        rates.iter().all(|r| *r != default) && rates[0] != rates[1],
        "per-operation probabilities were not computed from the traffic: {http}"
    );
    assert!(
        http.get("rateLimitingSampling").is_none(),
        "no rate-limiting strategy in either form: {http}"
    );

    // Another known service, one operation.
    let (http, grpc) = both_forms(&server, "payments").await;
    assert_eq!(grpc, http);
    assert_eq!(
        http["operationSampling"]["perOperationStrategies"][0]["operation"],
        "charge"
    );

    // A service never seen: the default strategy, no operations, in both forms.
    let (http, grpc) = both_forms(&server, "never-seen").await;
    assert_eq!(grpc, http, "gRPC and HTTP disagree for an unknown service");
    assert_eq!(http["probabilisticSampling"]["samplingRate"], default);
    assert_eq!(
        http["operationSampling"]["defaultSamplingProbability"],
        default
    );
    assert_eq!(
        http["operationSampling"]["perOperationStrategies"],
        serde_json::json!([])
    );

    // Bytes that are not a SamplingStrategyParameters: field 1 claims 10 bytes, has 2.
    let out = grpc_client(server.jaeger_grpc, "raw", "0a0a6162");
    assert_eq!(out["ok"], false, "{out}");
    assert_eq!(out["code"], "INVALID_ARGUMENT", "{out}");
    assert!(
        out["details"]
            .as_str()
            .unwrap()
            .contains("SamplingStrategyParameters"),
        "{out}"
    );
    // No service name: INVALID_ARGUMENT, as HTTP answers 400.
    let out = grpc_client(server.jaeger_grpc, "strategy", "");
    assert_eq!(out["code"], "INVALID_ARGUMENT", "{out}");
    let resp = reqwest::get(format!("http://{}/sampling?service=", server.sampling))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // The server is still serving.
    assert_eq!(
        grpc_strategy(&server, "never-seen"),
        http_strategy(&server, "never-seen").await
    );
}

/// jaeger-client's `RemoteSampler` (`tests/clients/jaeger/remote_sampler.js`) against the
/// sampling port: what the stock client builds from Stitch's answer.
fn jaeger_client_sampler(server: &Stitch, service: &str) -> Value {
    let dir = clients();
    let out = Command::new("node")
        .arg("remote_sampler.js")
        .arg(server.sampling.to_string())
        .arg(service)
        .current_dir(&dir)
        .output()
        .expect("run node remote_sampler.js");
    assert!(
        out.status.success(),
        "remote_sampler.js failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_jaeger_client_gets_per_operation_strategies_without_any_sampling_config() {
    // No config file at all: Stitch keeps every trace, and still learns the operations it
    // serves strategies for from the root spans it receives.
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    send_roots(&server, "shop", "GET /checkout", 20, 1).await;
    send_roots(&server, "shop", "GET /cart", 2, 2).await;

    let sampler = jaeger_client_sampler(&server, "shop");
    assert_eq!(sampler["ok"], true, "{sampler}");
    assert_eq!(sampler["sampler"], "PerOperationSampler", "{sampler}");
    let http = http_strategy(&server, "shop").await;
    let ops = &http["operationSampling"];
    assert_eq!(
        sampler["defaultProbability"], ops["defaultSamplingProbability"],
        "{sampler} vs {http}"
    );
    assert_eq!(
        sampler["defaultLowerBound"], ops["defaultLowerBoundTracesPerSecond"],
        "{sampler} vs {http}"
    );
    for op in ["GET /checkout", "GET /cart"] {
        let served = ops["perOperationStrategies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["operation"] == op)
            .unwrap_or_else(|| panic!("{op} is not served: {http}"));
        assert_eq!(
            sampler["operations"][op]["probability"],
            served["probabilisticSampling"]["samplingRate"],
            "{op}: {sampler}"
        );
        assert_eq!(
            sampler["operations"][op]["lowerBound"], ops["defaultLowerBoundTracesPerSecond"],
            "{op}: {sampler}"
        );
    }

    // A service Stitch has not seen gets the default strategy and no operations.
    let unknown = jaeger_client_sampler(&server, "never-seen");
    assert_eq!(unknown["sampler"], "PerOperationSampler", "{unknown}");
    assert_eq!(unknown["operations"], serde_json::json!({}), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probability_a_stock_otel_sdk_used_is_estimated_from_its_trace_ids() {
    // The Python SDK's TraceIdRatioBased sampler keeps half of its traces and says so nowhere
    // on the spans. Stitch must work out that each sampled root stands for two requests before
    // moving the probability toward the target (1 trace/s): serving p · target / qps with the
    // probability it would otherwise assume (its own initial 0.001) would be 50 times too low.
    const INTERVAL_SECS: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stitch.yaml");
    std::fs::write(
        &config,
        format!("sampling:\n  remote_sampling:\n    calculation_interval: {INTERVAL_SECS}s\n"),
    )
    .unwrap();
    let server = Stitch::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let dir_clients = clients();

    // All sampled roots in one export, early in one interval.
    let boundary = |margin: Duration| {
        let interval = Duration::from_secs(INTERVAL_SECS).as_nanos();
        let left = interval - now().as_nanos() % interval;
        Duration::from_nanos(left as u64) + margin
    };
    tokio::time::sleep(boundary(Duration::from_millis(50))).await;
    let out = Command::new(dir_clients.join(".venv/bin/python"))
        .arg("ratio_sampled.py")
        .arg(server.otlp_http())
        .args(["ledger", "POST /entries", "0.5", "200"])
        .current_dir(&dir_clients)
        .output()
        .expect("run ratio_sampled.py");
    assert!(
        out.status.success(),
        "ratio_sampled.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let sampled = report["sampled"].as_u64().unwrap();
    assert!((60..=140).contains(&sampled), "{sampled} of 200 sampled");

    // Once that interval has closed (asking earlier would make the service a poller, whose
    // probability is the one served).
    tokio::time::sleep(boundary(Duration::from_millis(200))).await;
    let strategy = http_strategy(&server, "ledger").await;
    let op = strategy["operationSampling"]["perOperationStrategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operation"] == "POST /entries")
        .unwrap_or_else(|| panic!("{strategy}"));
    let served = op["probabilisticSampling"]["samplingRate"]
        .as_f64()
        .unwrap();
    // qps = sampled / interval; the SDK used about 0.5, so p' ≈ 0.5 · 1 / qps.
    let qps = sampled as f64 / INTERVAL_SECS as f64;
    let expected = 0.5 / qps;
    assert!(
        (expected * 0.8..=expected * 1.25).contains(&served),
        "served {served}, expected about {expected} ({sampled} sampled roots in {INTERVAL_SECS} s)"
    );
}
