//! `stitch loadgen` end to end: the real binary sends to a real `stitch serve` over every
//! protocol and reads a sample back (`--verify`); the canary fails when traces are missing;
//! throttled requests are retried after the server's `Retry-After`.

mod common;

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Stitch;

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stitch"))
        .arg("loadgen")
        .args(args)
        .output()
        .expect("run stitch loadgen")
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "loadgen printed no JSON report ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn loadgen_verify_finds_every_sampled_trace_complete_over_each_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let stitch = Stitch::start(&dir.path().join("data"), &[]);
    let api = stitch.api();
    let cases = [
        ("otlp-grpc", stitch.grpc, None),
        ("otlp-http-protobuf", stitch.http, None),
        ("otlp-http-json", stitch.http, None),
        ("zipkin-json", stitch.zipkin, None),
        ("jaeger-thrift-http", stitch.jaeger_http, None),
        // UDP has no backpressure: paced, so the kernel's socket buffer does not overflow.
        ("jaeger-thrift-udp", stitch.jaeger_compact, Some("2000")),
    ];
    for (i, (protocol, addr, rate)) in cases.into_iter().enumerate() {
        let addr = addr.to_string();
        let seed = (100 + i).to_string();
        let mut args = vec![
            "--protocol",
            protocol,
            "--endpoint",
            &addr,
            "--spans",
            "1100",
            "--traces-per-request",
            "10",
            "--connections",
            "2",
            "--seed",
            &seed,
            "--verify",
            "--verify-sample",
            "40",
            "--verify-timeout",
            "20s",
            "--query",
            &api,
            "--json",
        ];
        if let Some(rate) = rate {
            args.extend(["--rate", rate]);
        }
        let out = loadgen(&args);
        let r = report(&out);
        assert!(
            out.status.success(),
            "{protocol}: loadgen failed: {}\n{r:#}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            stitch.log()
        );
        assert_eq!(r["protocol"], protocol);
        assert_eq!(r["spans"], 1100, "{protocol}: 50 traces of 22 spans");
        assert_eq!(r["failed_requests"], 0, "{protocol}");
        assert_eq!(r["rejected_spans"], 0, "{protocol}");
        assert_eq!(r["verify"]["checked"], 40, "{protocol}");
        assert_eq!(r["verify"]["complete"], 40, "{protocol}: {:#}", r["verify"]);
    }
}

#[test]
fn loadgen_verify_fails_and_names_the_traces_when_they_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    let receiving = Stitch::start(&dir.path().join("a"), &[]);
    let empty = Stitch::start(&dir.path().join("b"), &[]);
    let out = loadgen(&[
        "--endpoint",
        &receiving.grpc.to_string(),
        "--spans",
        "220",
        "--verify",
        "--verify-timeout",
        "1s",
        // Read back from a server that never received them.
        "--query",
        &empty.api(),
        "--json",
    ]);
    assert!(!out.status.success(), "verification must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("verification failed: 10 of 10 sampled traces are not complete (10 missing"),
        "{stderr}"
    );
    let r = report(&out);
    assert_eq!(r["spans"], 220);
    assert_eq!(r["verify"]["missing"], 10);
    assert_eq!(r["verify"]["problems"][0]["problem"], "missing");
}

#[test]
fn loadgen_fails_when_nothing_is_listening() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let out = loadgen(&[
        "--protocol",
        "otlp-http-json",
        "--endpoint",
        &format!("127.0.0.1:{port}"),
        "--spans",
        "22",
        "--max-attempts",
        "2",
        "--quiet",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no batch was acknowledged"), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn throttled_requests_are_retried_after_the_servers_retry_after() {
    // A receiver that answers the first two requests 503 + Retry-After: 1, then 200.
    let seen = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                use axum::response::IntoResponse;
                if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        [("retry-after", "1")],
                        "overloaded",
                    )
                        .into_response()
                } else {
                    axum::http::StatusCode::OK.into_response()
                }
            }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });
    let t = Instant::now();
    let out = loadgen(&[
        "--protocol",
        "otlp-http-json",
        "--endpoint",
        &addr.to_string(),
        "--spans",
        "22",
        "--connections",
        "1",
        "--json",
    ]);
    let r = report(&out);
    assert!(out.status.success(), "{r:#}");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    assert_eq!(r["spans"], 22);
    assert_eq!(r["retried_requests"], 1);
    assert_eq!(r["retries"], 2);
    assert_eq!(r["retryable_answers"], 2);
    assert!(t.elapsed() >= Duration::from_secs(2), "waited as told");
    assert!(r["latency"]["max_ms"].as_f64().unwrap() >= 2000.0);
}
