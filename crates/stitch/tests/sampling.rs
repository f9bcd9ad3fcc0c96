//! Tail sampling end to end, with the real binary: the seeds' preset keeps every error and
//! every slow trace and about 5% of the rest, whole; late spans follow the decision; the
//! policy that kept a trace shows in the APIs; `kill -9` while traces wait for their decision
//! loses no acknowledged span of a kept trace; a bad `sampling` section stops the server with
//! the path of the field. Head sampling keeps whole traces by their random bits, honours a
//! stricter upstream `th`, and records the threshold; RED scales kept traces by what they
//! stand for under both.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{Stitch, eventually, fetch_trace, get_json, hex_of, service_spans};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use prost::Message;

const MS: u64 = 1_000_000;

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Trace ids from a counter, spread over the id space by a multiplicative hash.
fn trace_id(kind: u64, n: u64) -> [u8; 16] {
    let a = (kind << 32 | n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let b = (n << 8 | kind).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ a.rotate_left(17);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a.to_be_bytes());
    id[8..].copy_from_slice(&b.to_be_bytes());
    id
}

/// What the `probabilistic` policy decides for a trace id with the default salt (FNV-1a over
/// salt and id, compared with `ratio · u64::MAX`): the expected kept set is known exactly.
fn probabilistic_keeps(id: &[u8; 16], percent: f64) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"default-hash-seed".iter().chain(id.iter()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h <= (percent / 100.0 * u64::MAX as f64) as u64
}

struct SpanSpec {
    trace: [u8; 16],
    id: u64,
    parent: Option<u64>,
    name: &'static str,
    start: u64,
    duration: u64,
    error: bool,
}

fn span(s: SpanSpec) -> Span {
    let sid = |n: u64| {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&s.trace[..4]);
        b[4..].copy_from_slice(&(n as u32).to_be_bytes());
        b.to_vec()
    };
    Span {
        trace_id: s.trace.to_vec(),
        span_id: sid(s.id),
        parent_span_id: s.parent.map(sid).unwrap_or_default(),
        name: s.name.into(),
        kind: if s.parent.is_none() { 2 } else { 3 },
        start_time_unix_nano: s.start,
        end_time_unix_nano: s.start + s.duration,
        status: Some(Status {
            code: if s.error { 2 } else { 0 },
            message: String::new(),
        }),
        ..Default::default()
    }
}

async fn send(server: &Stitch, service: &str, spans: Vec<Span>) {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![service_spans(service, spans)],
    };
    server.export(&request).await;
}

/// A root and one child; `error` marks the child, `duration` is the root's.
fn two_spans(trace: [u8; 16], t0: u64, duration: u64, error: bool) -> Vec<Span> {
    vec![
        span(SpanSpec {
            trace,
            id: 1,
            parent: None,
            name: "GET /checkout",
            start: t0,
            duration,
            error: false,
        }),
        span(SpanSpec {
            trace,
            id: 2,
            parent: Some(1),
            name: "SELECT",
            start: t0 + MS,
            duration: 2 * MS,
            error,
        }),
    ]
}

fn write_config(dir: &Path, yaml: &str) -> String {
    let path = dir.join("stitch.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The `stitch.sampling.policy` of every span of a trace.
fn policies(t: &stitch_model::Trace) -> BTreeSet<String> {
    t.spans()
        .map(
            |s| match stitch_model::find_attribute(&s.span.attributes, "stitch.sampling.policy") {
                Some(stitch_model::AnyValue::String(p)) => p.clone(),
                other => format!("{other:?}"),
            },
        )
        .collect()
}

fn one(p: &str) -> BTreeSet<String> {
    BTreeSet::from([p.to_owned()])
}

/// Waits until the tail sampler holds nothing and has seen `traces` traces.
async fn all_decided(server: &Stitch, traces: u64) -> serde_json::Value {
    let url = format!("{}/api/v1/sampling", server.api());
    eventually(Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let (status, body) = get_json(&url).await;
            assert_eq!(status, 200);
            let t = &body["tail"];
            (t["buffered_traces"] == 0 && t["traces_received"].as_u64() >= Some(traces))
                .then_some(body)
        }
    })
    .await
    .unwrap_or_else(|| panic!("traces were not decided in time; log:\n{}", server.log()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_preset_keeps_errors_slow_traces_and_five_percent_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "sampling:\n  preset: seed\n  decision_wait: 1s\n",
    );
    let server = Stitch::start(&dir.path().join("data"), &["--config", &config]);
    let api = server.api();
    let t0 = now_nanos() - 60_000 * MS;

    const NORMAL: u64 = 2000;
    let normal: Vec<[u8; 16]> = (0..NORMAL).map(|n| trace_id(1, n)).collect();
    let errors: Vec<[u8; 16]> = (0..40).map(|n| trace_id(2, n)).collect();
    let slow: Vec<[u8; 16]> = (0..40).map(|n| trace_id(3, n)).collect();
    // Split across three requests: root, then a child, then a child that fails (for the
    // first half) — the decision must see all three.
    let split: Vec<[u8; 16]> = (0..20).map(|n| trace_id(4, n)).collect();

    for chunk in normal.chunks(250) {
        let spans = chunk
            .iter()
            .flat_map(|id| two_spans(*id, t0, 10 * MS, false))
            .collect();
        send(&server, "shop", spans).await;
    }
    let spans = errors
        .iter()
        .flat_map(|id| two_spans(*id, t0, 10 * MS, true))
        .chain(
            slow.iter()
                .flat_map(|id| two_spans(*id, t0, 1500 * MS, false)),
        )
        .collect();
    send(&server, "shop", spans).await;
    for part in 0..3u64 {
        let spans = split
            .iter()
            .enumerate()
            .map(|(i, id)| {
                span(SpanSpec {
                    trace: *id,
                    id: part + 1,
                    parent: (part > 0).then_some(1),
                    name: "step",
                    start: t0 + part * MS,
                    duration: 5 * MS,
                    error: part == 2 && i < 10,
                })
            })
            .collect();
        send(&server, if part == 1 { "payments" } else { "shop" }, spans).await;
    }
    let total = NORMAL + 40 + 40 + 20;
    let report = all_decided(&server, total).await;
    assert_eq!(report["config"]["preset"], "seed");
    let names: Vec<&str> = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["errors", "slow", "rest"]);

    for id in &errors {
        let t = fetch_trace(&api, &hex_of(id))
            .await
            .expect("error trace kept");
        assert_eq!(t.span_count(), 2);
        assert_eq!(policies(&t), one("errors"));
    }
    for id in &slow {
        let t = fetch_trace(&api, &hex_of(id))
            .await
            .expect("slow trace kept");
        assert_eq!(t.span_count(), 2);
        assert_eq!(policies(&t), one("slow"));
    }
    let mut kept = BTreeSet::new();
    for id in &normal {
        if let Some(t) = fetch_trace(&api, &hex_of(id)).await {
            assert_eq!(t.span_count(), 2, "a trace is kept whole");
            assert_eq!(policies(&t), one("rest"));
            let p = t
                .spans()
                .next()
                .unwrap()
                .span
                .attributes
                .iter()
                .find_map(|kv| (kv.key == "stitch.sampling.probability").then(|| kv.value.clone()));
            assert_eq!(p, Some(stitch_model::AnyValue::Double(0.05)));
            kept.insert(*id);
        }
    }
    let predicted: BTreeSet<[u8; 16]> = normal
        .iter()
        .filter(|id| probabilistic_keeps(id, 5.0))
        .copied()
        .collect();
    assert_eq!(kept, predicted, "the probabilistic policy is deterministic");
    let share = kept.len() as f64 / NORMAL as f64;
    assert!((0.03..=0.07).contains(&share), "kept {share} of the rest");
    for (i, id) in split.iter().enumerate() {
        match fetch_trace(&api, &hex_of(id)).await {
            Some(t) => {
                assert_eq!(t.span_count(), 3, "split trace {i} kept whole");
                if i < 10 {
                    assert_eq!(policies(&t), one("errors"));
                }
            }
            None => assert!(i >= 10, "split error trace {i} was dropped"),
        }
    }

    // RED scales each kept trace by its recorded probability: the service's requests estimate
    // the traffic sent (2,100 requests), not the 5% of normal ones that were kept, and the
    // duration quantiles are those of the traffic, where 1.5 s requests are 40 in 2,100.
    let kept_split_by_rest = split[10..]
        .iter()
        .filter(|id| probabilistic_keeps(id, 5.0))
        .count();
    let expected = 20.0 * (kept.len() + kept_split_by_rest) as f64 + 40.0 + 40.0 + 10.0;
    let (status, red) = get_json(&format!(
        "{api}/api/v1/services/shop/red?lookback=10m&step=60s"
    ))
    .await;
    assert_eq!(status, 200, "{red}");
    let summary = &red["overall"]["summary"];
    let requests = summary["requests"].as_f64().unwrap();
    assert!(
        (requests - expected).abs() < 1e-6,
        "{requests} estimated requests, expected {expected}: {red}"
    );
    assert!(
        (requests - total as f64).abs() / (total as f64) < 0.2,
        "{requests} estimated for {total} sent"
    );
    assert_eq!(
        summary["sampledSpans"],
        (kept.len() + 80 + 10 + kept_split_by_rest) as u64
    );
    let p95_ms = summary["p95Nanos"].as_u64().unwrap() / MS;
    assert!(
        p95_ms < 100,
        "p95 {p95_ms} ms: the 40 slow traces weigh 1 each"
    );

    // The Jaeger API shows the policy as a tag.
    let (status, body) = get_json(&format!("{api}/api/traces/{}", hex_of(&errors[0]))).await;
    assert_eq!(status, 200);
    let tags = body["data"][0]["spans"][0]["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["key"] == "stitch.sampling.policy" && t["value"] == "errors"),
        "{tags:?}"
    );

    // Late spans follow the cached decision: one for a kept trace, one for a dropped one.
    let dropped = *normal.iter().find(|id| !kept.contains(*id)).unwrap();
    for (id, service) in [(errors[0], "late"), (dropped, "late")] {
        let late = span(SpanSpec {
            trace: id,
            id: 9,
            parent: Some(1),
            name: "late",
            start: t0 + 3 * MS,
            duration: MS,
            error: false,
        });
        send(&server, service, vec![late]).await;
    }
    let first_error = errors[0];
    let t = eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            fetch_trace(&api, &hex_of(&first_error))
                .await
                .filter(|t| t.span_count() == 3)
        }
    })
    .await
    .expect("the late span of a kept trace is stored");
    assert_eq!(policies(&t), one("errors"));
    let report = eventually(Duration::from_secs(10), || {
        let url = format!("{api}/api/v1/sampling");
        async move {
            let (_, body) = get_json(&url).await;
            (body["tail"]["late_spans_not_sampled"] == 1).then_some(body)
        }
    })
    .await
    .expect("the late span of a dropped trace is counted");
    assert_eq!(report["tail"]["late_spans_sampled"], 1);
    assert!(fetch_trace(&api, &hex_of(&dropped)).await.is_none());

    let metrics = reqwest::get(format!("{api}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("stitch_sampling_traces_kept_by_policy_total{policy=\"errors\"} 50"),
        "{metrics}"
    );
    assert!(metrics.contains("stitch_sampling_buffered_traces 0"));
    // The split traces without an error are subject to the 5% too.
    let rest = kept.len()
        + split[10..]
            .iter()
            .filter(|id| probabilistic_keeps(id, 5.0))
            .count();
    assert!(metrics.contains(&format!(
        "stitch_sampling_traces_kept_by_policy_total{{policy=\"rest\"}} {rest}"
    )));

    // Jaeger remote sampling: the operations of the root spans seen, per service.
    let (status, body) =
        get_json(&format!("http://{}/sampling?service=shop", server.sampling)).await;
    assert_eq!(status, 200);
    assert_eq!(body["strategyType"], "PROBABILISTIC");
    let ops: Vec<&str> = body["operationSampling"]["perOperationStrategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["GET /checkout", "step"]);
    let resp = reqwest::get(format!("http://{}/sampling", server.sampling))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_decision_wait_loses_no_span_of_a_kept_trace() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        "sampling:
  decision_wait: 3s
  decision_wait_after_root: 0s
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
",
    );
    // Small heads, so that blocks are written while traces wait for their decision.
    let args = ["--config", config.as_str(), "--head-max-spans", "100"];
    let mut server = Stitch::start(&data, &args);
    let t0 = now_nanos() - 60_000 * MS;
    let first_errors: Vec<[u8; 16]> = (0..100).map(|n| trace_id(5, n)).collect();
    let errors: Vec<[u8; 16]> = (0..200).map(|n| trace_id(6, n)).collect();
    let fine: Vec<[u8; 16]> = (0..200).map(|n| trace_id(7, n)).collect();

    // Phase 1: decided, kept and partly written as blocks before the crash.
    let spans = first_errors
        .iter()
        .flat_map(|id| two_spans(*id, t0, 10 * MS, true))
        .collect();
    send(&server, "svc", spans).await;
    all_decided(&server, 100).await;

    // Phase 2: acknowledged, then killed while every trace waits for its decision. Each
    // trace arrives in two requests (root, then the child that may fail).
    for part in 0..2 {
        let spans = errors
            .iter()
            .map(|id| (id, true))
            .chain(fine.iter().map(|id| (id, false)))
            .map(|(id, err)| two_spans(*id, t0, 10 * MS, err).remove(part))
            .collect();
        send(&server, "svc", spans).await;
    }
    let (_, report) = get_json(&format!("{}/api/v1/sampling", server.api())).await;
    assert!(
        report["tail"]["traces_sampled"].as_u64() <= Some(100),
        "phase 2 was decided before the kill: the test did not test anything"
    );
    assert!(
        fetch_trace(&server.api(), &hex_of(&errors[0]))
            .await
            .is_none()
    );
    server.kill9();

    let server = Stitch::start(&data, &args);
    let api = server.api();
    // Decided within decision_wait after the restart.
    all_decided(&server, 400).await;
    let mut lost = Vec::new();
    for id in first_errors.iter().chain(&errors) {
        match fetch_trace(&api, &hex_of(id)).await {
            Some(t) if t.span_count() == 2 && policies(&t) == one("errors") => {}
            Some(t) => lost.push(format!(
                "{}: {} spans {:?}",
                hex_of(id),
                t.span_count(),
                policies(&t)
            )),
            None => lost.push(format!("{}: absent", hex_of(id))),
        }
    }
    assert!(
        lost.is_empty(),
        "{} kept traces damaged after kill -9, e.g. {:?}\nlog:\n{}",
        lost.len(),
        &lost[..lost.len().min(5)],
        server.log()
    );
    for id in &fine {
        assert!(fetch_trace(&api, &hex_of(id)).await.is_none());
    }
}

#[test]
fn an_invalid_sampling_section_stops_the_server_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (yaml, path) in [
        (
            "sampling:\n  policies:\n    - {name: slow, type: latency, latency: {threshold_ms: 0}}\n",
            "sampling.policies[0].latency.threshold_ms",
        ),
        (
            "sampling:\n  policies:\n    - {name: x, type: probabilistic, probabilistic: {sampling_percentag: 5}}\n",
            "sampling.policies[0].probabilistic",
        ),
        (
            "sampling:\n  decision_wait: soon\n",
            "sampling.decision_wait",
        ),
    ] {
        let config = write_config(dir.path(), yaml);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stitch"))
            .args(["serve", "--config", &config, "--data-dir"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{yaml}: started anyway");
        assert!(stderr.contains(path), "{yaml}: {stderr}");
        assert!(
            !dir.path().join("data").exists(),
            "nothing opened before the check"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sustained_ingest_with_tail_sampling_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        "sampling:
  decision_wait: 2s
  policies:
    - {name: all, type: always_sample}
",
    );
    // Small heads: blocks are written (and WAL segments deleted) while traces wait.
    let args = ["--config", config.as_str(), "--head-max-spans", "3000"];
    let mut server = Stitch::start(&data, &args);
    let url = server.otlp_http();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    // Paced, so that checking every acknowledged trace afterwards stays quick.
    for worker in 0..2u64 {
        let (url, stop) = (url.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            let mut seed = worker * 1_000_000;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                seed += 1;
                let (req, ids) = common::synthetic_request(seed, 25, 4);
                let sent = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(req.encode_to_vec())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => acked.extend(ids),
                    Ok(_) => {}
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            acked
        }));
    }
    // Run until blocks were written and more than one decision_wait has passed, so that the
    // crash finds decided traces in blocks and in the head, and undecided ones in the WAL.
    let blocks = data.join("blocks");
    let started = std::time::Instant::now();
    loop {
        let flushed = std::fs::read_dir(&blocks).map(|d| d.count()).unwrap_or(0);
        if (flushed >= 2 && started.elapsed() > Duration::from_secs(3))
            || started.elapsed() > Duration::from_secs(20)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(
        acked.len() > 1000,
        "only {} traces acknowledged",
        acked.len()
    );
    eprintln!(
        "killed after {:?}; {} traces acknowledged",
        started.elapsed(),
        acked.len()
    );

    let restarted = std::time::Instant::now();
    let server = Stitch::start(&data, &args);
    let api = server.api();
    eprintln!("restarted in {:?}", restarted.elapsed());
    all_decided(&server, 0).await;
    eprintln!("decided after {:?}", restarted.elapsed());
    let mut missing = Vec::new();
    for id in &acked {
        match fetch_trace(&api, id).await {
            Some(t) if t.span_count() == 4 => {}
            Some(t) => missing.push(format!("{id}: {} of 4 spans", t.span_count())),
            None => missing.push(format!("{id}: absent")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces damaged after kill -9, e.g. {:?}\nlog:\n{}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)],
        server.log()
    );
}

/// The 56 random bits OpenTelemetry's consistent sampling reads from a trace id (its last 7
/// bytes).
fn randomness(id: &[u8; 16]) -> u64 {
    u64::from_be_bytes(id[8..].try_into().unwrap()) & ((1 << 56) - 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_sampling_keeps_whole_traces_by_their_random_bits_and_red_counts_what_they_stand_for()
{
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "sampling:\n  head: {percentage: 25}\n");
    let server = Stitch::start(&dir.path().join("data"), &["--config", &config]);
    let api = server.api();
    let t0 = now_nanos() - 60_000 * MS;

    // 400 traces sampled nowhere before, then 100 that an SDK sampling at 12.5% (`ot=th:e`)
    // exported — it exports only traces whose random bits reach its threshold — and that
    // stand for 800 requests.
    let plain: Vec<[u8; 16]> = (0..400).map(|n| trace_id(7, n)).collect();
    let upstream: Vec<[u8; 16]> = (0..)
        .map(|n| trace_id(8, n))
        .filter(|id| randomness(id) >= 0xe0_0000_0000_0000)
        .take(100)
        .collect();
    let with_state = |ids: &[[u8; 16]], state: &str| -> Vec<Span> {
        ids.iter()
            .flat_map(|id| two_spans(*id, t0, 10 * MS, false))
            .map(|mut s| {
                s.trace_state = state.into();
                s
            })
            .collect()
    };
    send(&server, "shop", with_state(&plain, "")).await;
    send(&server, "shop", with_state(&upstream, "ot=th:e")).await;

    let mut kept = 0u64;
    for (ids, threshold, th) in [
        (&plain, 0xc0_0000_0000_0000u64, "ot=th:c"),
        (&upstream, 0xe0_0000_0000_0000, "ot=th:e"),
    ] {
        for id in ids {
            let stored = fetch_trace(&api, &hex_of(id)).await;
            let keep = randomness(id) >= threshold;
            assert_eq!(stored.is_some(), keep, "{}", hex_of(id));
            if let Some(t) = stored {
                kept += 1;
                assert_eq!(t.span_count(), 2, "kept whole");
                for s in t.spans() {
                    assert_eq!(
                        s.span.trace_state, th,
                        "the effective threshold is recorded"
                    );
                }
            }
        }
    }
    let plain_kept = plain
        .iter()
        .filter(|id| randomness(id) >= 0xc0_0000_0000_0000)
        .count() as f64;
    let upstream_kept = upstream.len() as f64;
    assert!(
        (0.18..0.32).contains(&(plain_kept / 400.0)),
        "{plain_kept} of 400"
    );

    // RED counts each kept request as 1 / probability requests: 4 at 25%, 8 at 12.5%.
    let (status, red) = get_json(&format!(
        "{api}/api/v1/services/shop/red?lookback=10m&step=60s"
    ))
    .await;
    assert_eq!(status, 200, "{red}");
    let summary = &red["overall"]["summary"];
    assert_eq!(summary["sampledSpans"], kept, "{red}");
    let requests = summary["requests"].as_f64().unwrap();
    let expected = 4.0 * plain_kept + 8.0 * upstream_kept;
    assert!(
        (requests - expected).abs() < 1e-6,
        "{requests} vs {expected}"
    );
    assert!(
        (requests - 800.0 - 400.0).abs() < 100.0,
        "{requests} estimated for 400 requests plus the 800 the SDK's 100 stand for"
    );
}
