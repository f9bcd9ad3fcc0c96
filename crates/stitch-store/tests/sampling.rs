//! Tail sampling in the store: WAL segments holding undecided spans outlive the blocks that
//! cover them, decision records tell recovery which traces were kept, dropped or undecided,
//! and no kept span is lost or duplicated across crashes (a `Store` dropped without flushing
//! is a crash).
//!
//! The store runs on a [`ManualClock`]: a test moves it and calls [`Store::tick`], after which
//! every decision due is in the head and the status is published, so nothing waits for time.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use stitch_model::{AnyValue, Span, SpanId, StatusCode, Trace, TraceId, find_attribute};
use stitch_pipeline::SamplingConfig;
use stitch_query::conformance::spans_of;
use stitch_store::sampling::{POLICY_ATTRIBUTE, PROBABILITY_ATTRIBUTE};
use stitch_store::wal::{self, Verdict};
use stitch_store::{ManualClock, SamplingStatus, Store, StoreConfig};

/// Keeps traces with an error; decides 100 ms after the root span arrives and never sooner
/// than an hour after the first span otherwise, so traces without a root stay undecided.
const ERRORS_AFTER_ROOT: &str = "
decision_wait: 1h
decision_wait_after_root: 100ms
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
";

/// A store configuration with these sampling rules, on a clock that moves only when told.
fn sampling_config(dir: &std::path::Path, yaml: &str) -> (StoreConfig, Arc<ManualClock>) {
    let mut c = config(dir);
    c.sampling = SamplingConfig::from_yaml(yaml).unwrap();
    let clock = ManualClock::new(now_nanos());
    c.clock = clock.clone();
    (c, clock)
}

/// Moves the store's clock by `by` and runs the tail sampler's timers.
async fn advance(store: &Store, clock: &ManualClock, by: Duration) {
    clock.advance(by);
    store.tick().await.unwrap();
}

/// The sampling status once the writer has caught up with the clock.
async fn status(store: &Store) -> SamplingStatus {
    store.tick().await.unwrap();
    store.sampling_status()
}

fn root(trace: TraceId, n: u64, t0: u64, code: StatusCode) -> Span {
    let mut s = span(trace, span_id(n), "root", t0, 50 * MILLI);
    s.status.code = code;
    s
}

fn child(trace: TraceId, n: u64, parent: u64, t0: u64) -> Span {
    let mut s = span(trace, span_id(n), "child", t0 + MILLI, 10 * MILLI);
    s.parent_span_id = Some(span_id(parent));
    s
}

/// The span ids of a trace, sorted, duplicates kept.
fn ids(trace: &Trace) -> Vec<SpanId> {
    let mut v: Vec<SpanId> = trace.spans().map(|s| s.span.span_id).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<SpanId>) -> Vec<SpanId> {
    v.sort();
    v
}

fn policies(trace: &Trace) -> Vec<String> {
    trace
        .spans()
        .map(
            |s| match find_attribute(&s.span.attributes, POLICY_ATTRIBUTE) {
                Some(AnyValue::String(p)) => p.clone(),
                other => format!("{other:?}"),
            },
        )
        .collect()
}

/// The trace as the store shows it once the writer has caught up with the clock; it must hold
/// `n` spans.
async fn visible(store: &Store, id: TraceId, n: usize) -> Trace {
    store.tick().await.unwrap();
    let t = get(store, id)
        .await
        .unwrap_or_else(|| panic!("trace {id} is not visible"));
    assert_eq!(t.span_count(), n, "trace {id}");
    t
}

fn segment_ids(data: &std::path::Path) -> Vec<u64> {
    wal::list_segments(&wal_dir(data)).unwrap()
}

/// Every decision record in the WAL, in order.
fn decision_records(data: &std::path::Path) -> Vec<(u64, wal::DecisionEntry)> {
    let mut out = Vec::new();
    for seg in segment_ids(data) {
        wal::read_segment(&wal::segment_path(&wal_dir(data), seg), |kind, body| {
            if kind == wal::KIND_DECISIONS {
                for e in wal::decode_decisions(body).unwrap() {
                    out.push((seg, e));
                }
            }
        })
        .unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_with_undecided_spans_outlive_the_blocks_and_kept_traces_reach_back() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, clock) = sampling_config(dir.path(), ERRORS_AFTER_ROOT);
    let t0 = now_nanos() - 10 * SECOND;
    let svc = resource("svc");
    let (t, x, ok) = (trace_id(1), trace_id(2), trace_id(3));

    let store = Store::open(cfg.clone()).await.unwrap();
    // T: two children, no root yet: undecided for an hour. They go to segment 1.
    let t_children = batch_of(&svc, vec![child(t, 11, 10, t0), child(t, 12, 10, t0)]);
    append(&store, &t_children).await;
    // X: an error trace with its root, kept 100 ms later into the first head.
    append(
        &store,
        &batch_of(&svc, vec![root(x, 20, t0, StatusCode::Error)]),
    )
    .await;
    // OK: a root without error, dropped.
    append(
        &store,
        &batch_of(&svc, vec![root(ok, 30, t0, StatusCode::Ok)]),
    )
    .await;
    advance(&store, &clock, Duration::from_millis(100)).await;
    let got = visible(&store, x, 1).await;
    assert_eq!(policies(&got), vec!["errors"]);
    assert!(
        get(&store, t).await.is_none(),
        "undecided traces are not visible"
    );

    // The first head becomes a block; segment 1 still holds T's undecided spans.
    store.flush().await.unwrap();
    assert_eq!(store.block_count(), 1);
    let segs = segment_ids(dir.path());
    assert_eq!(segs.first(), Some(&1), "segment 1 was deleted: {segs:?}");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(block_dirs(dir.path())[0].join("meta.json")).unwrap(),
    )
    .unwrap();
    assert!(meta["wal_through"].as_u64().unwrap() >= 1);
    assert_eq!(meta["min_source_segment"], 1);
    assert_eq!(status(&store).await.low_watermark_segment, Some(1));

    // T's root (an error) arrives in a later segment: T is kept into the second head, which
    // now reaches back to segment 1.
    let t_root = batch_of(&svc, vec![root(t, 10, t0, StatusCode::Error)]);
    append(&store, &t_root).await;
    advance(&store, &clock, Duration::from_millis(100)).await;
    let got = visible(&store, t, 3).await;
    assert_eq!(
        ids(&got),
        sorted(vec![span_id(10), span_id(11), span_id(12)])
    );
    assert_eq!(policies(&got), vec!["errors"; 3]);
    // Segment 1 stays while the head holding T is not a block.
    assert_eq!(segment_ids(dir.path()).first(), Some(&1));
    drop(store);

    // Crash: T comes back whole from segments 1 and later, X once from its block, OK never.
    let store = Store::open(cfg.clone()).await.unwrap();
    let got = get(&store, t).await.expect("kept trace lost in the crash");
    assert_eq!(
        ids(&got),
        sorted(vec![span_id(10), span_id(11), span_id(12)])
    );
    assert_eq!(policies(&got), vec!["errors"; 3]);
    assert_eq!(ids(&get(&store, x).await.unwrap()), vec![span_id(20)]);
    assert!(get(&store, ok).await.is_none());
    assert_eq!(status(&store).await.tail.buffered_traces, 0);

    // Once T's head is a block, nothing holds the old segments any more.
    store.flush().await.unwrap();
    let segs = segment_ids(dir.path());
    assert_eq!(segs.len(), 1, "only the active segment remains: {segs:?}");
    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(store.head_spans(), 0);
    assert_eq!(ids(&get(&store, t).await.unwrap()).len(), 3);
    assert_eq!(ids(&get(&store, x).await.unwrap()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecided_traces_are_decided_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, clock) = sampling_config(dir.path(), ERRORS_AFTER_ROOT);
    let t0 = now_nanos() - 10 * SECOND;
    let svc = resource("svc");
    let (kept, dropped) = (trace_id(1), trace_id(2));

    let store = Store::open(cfg.clone()).await.unwrap();
    let first = batch_of(
        &svc,
        vec![child(kept, 2, 1, t0), {
            let mut s = child(dropped, 12, 11, t0);
            s.status.code = StatusCode::Ok;
            s
        }],
    );
    append(&store, &first).await;
    drop(store);

    // Undecided before the crash: back in the buffer, not visible, segments kept.
    let store = Store::open(cfg.clone()).await.unwrap();
    assert_eq!(status(&store).await.tail.buffered_traces, 2);
    assert_eq!(store.stats().recovered_spans.load(Ordering::Relaxed), 2);
    assert!(get(&store, kept).await.is_none());
    append(
        &store,
        &batch_of(&svc, vec![root(kept, 1, t0, StatusCode::Error)]),
    )
    .await;
    append(
        &store,
        &batch_of(&svc, vec![root(dropped, 11, t0, StatusCode::Ok)]),
    )
    .await;
    advance(&store, &clock, Duration::from_millis(100)).await;
    let got = visible(&store, kept, 2).await;
    assert_eq!(ids(&got), sorted(vec![span_id(1), span_id(2)]));
    drop(store);

    let store = Store::open(cfg).await.unwrap();
    assert_eq!(
        ids(&get(&store, kept).await.unwrap()),
        sorted(vec![span_id(1), span_id(2)])
    );
    assert!(get(&store, dropped).await.is_none());
    assert_eq!(status(&store).await.tail.buffered_traces, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_records_bring_back_kept_traces_drop_the_rest_and_steer_late_spans() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, clock) = sampling_config(
        dir.path(),
        "
decision_wait: 200ms
decision_wait_after_root: 0s
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: some, type: probabilistic, probabilistic: {sampling_percentage: 0}}
",
    );
    let t0 = now_nanos() - 10 * SECOND;
    let svc = resource("svc");
    let (kept, dropped) = (trace_id(1), trace_id(2));

    let store = Store::open(cfg.clone()).await.unwrap();
    let k1 = batch_of(&svc, vec![root(kept, 1, t0, StatusCode::Error)]);
    let d1 = batch_of(&svc, vec![root(dropped, 11, t0, StatusCode::Ok)]);
    append(&store, &k1).await;
    append(&store, &d1).await;
    advance(&store, &clock, Duration::from_millis(200)).await;
    let got = visible(&store, kept, 1).await;
    let span = got.spans().next().unwrap().span.clone();
    assert_eq!(
        find_attribute(&span.attributes, PROBABILITY_ATTRIBUTE),
        Some(&AnyValue::Double(1.0))
    );
    // Idle: the writer writes the decisions without waiting for the next append.
    assert!(status(&store).await.decisions_logged >= 2);
    drop(store);

    let records = decision_records(dir.path());
    let verdict = |id: TraceId| {
        records
            .iter()
            .find(|(_, e)| e.trace_id == id)
            .map(|(_, e)| (e.verdict, e.policy.clone()))
    };
    assert_eq!(verdict(kept), Some((Verdict::Sampled, "errors".into())));
    assert_eq!(verdict(dropped), Some((Verdict::NotSampled, String::new())));

    // Recovery puts the kept trace back at once (no new decision), with its policy.
    let store = Store::open(cfg.clone()).await.unwrap();
    let got = get(&store, kept).await.expect("kept trace lost");
    assert_eq!(ids(&got), vec![span_id(1)]);
    assert_eq!(policies(&got), vec!["errors"]);
    assert!(get(&store, dropped).await.is_none());
    assert_eq!(status(&store).await.tail.buffered_traces, 0);

    // Late spans follow the decisions remembered from the log.
    append(&store, &batch_of(&svc, vec![child(kept, 3, 1, t0)])).await;
    append(&store, &batch_of(&svc, vec![child(dropped, 13, 11, t0)])).await;
    let got = visible(&store, kept, 2).await;
    assert_eq!(policies(&got), vec!["errors"; 2]);
    assert!(get(&store, dropped).await.is_none());
    let tail = status(&store).await.tail;
    assert_eq!(
        (tail.late_spans_sampled, tail.late_spans_not_sampled),
        (1, 1)
    );

    // A flush and two more crashes: every kept span exactly once.
    store.flush().await.unwrap();
    drop(store);
    let store = Store::open(cfg.clone()).await.unwrap();
    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(
        ids(&get(&store, kept).await.unwrap()),
        sorted(vec![span_id(1), span_id(3)])
    );
    assert!(get(&store, dropped).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_spans_already_in_a_block_are_not_replayed_from_restored_segments() {
    // A crash after the block was written but before the WAL segments were deleted.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, clock) = sampling_config(dir.path(), ERRORS_AFTER_ROOT);
    let t0 = now_nanos() - 10 * SECOND;
    let svc = resource("svc");
    let kept = trace_id(1);
    let store = Store::open(cfg.clone()).await.unwrap();
    append(&store, &batch_of(&svc, vec![child(kept, 2, 1, t0)])).await;
    append(
        &store,
        &batch_of(&svc, vec![root(kept, 1, t0, StatusCode::Error)]),
    )
    .await;
    advance(&store, &clock, Duration::from_millis(100)).await;
    visible(&store, kept, 2).await;
    assert!(status(&store).await.decisions_logged >= 1);
    let saved: Vec<(std::path::PathBuf, Vec<u8>)> = wal_segments(dir.path())
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    store.flush().await.unwrap();
    for (p, _) in &saved {
        assert!(!p.exists(), "{} outlived its block", p.display());
    }
    drop(store);
    for (p, b) in &saved {
        std::fs::write(p, b).unwrap();
    }
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(store.block_count(), 1);
    assert_eq!(
        store.head_spans(),
        0,
        "spans of the block were replayed again"
    );
    assert_eq!(status(&store).await.tail.buffered_traces, 0);
    assert_eq!(
        ids(&get(&store, kept).await.unwrap()),
        sorted(vec![span_id(1), span_id(2)])
    );
    for (p, _) in &saved {
        assert!(!p.exists(), "{} was not removed on recovery", p.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_of_dropped_traces_are_deleted_although_the_head_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, clock) = sampling_config(
        dir.path(),
        "
decision_wait: 50ms
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
",
    );
    cfg.head_max_age = Duration::from_millis(100);
    let store = Store::open(cfg).await.unwrap();
    let svc = resource("svc");
    let t0 = now_nanos();
    for n in 0..30u64 {
        append(
            &store,
            &batch_of(&svc, vec![root(trace_id(n), n + 1, t0, StatusCode::Ok)]),
        )
        .await;
        advance(&store, &clock, Duration::from_millis(20)).await;
    }
    advance(&store, &clock, Duration::from_millis(50)).await;
    assert_eq!(status(&store).await.tail.traces_not_sampled, 30);
    advance(&store, &clock, Duration::from_millis(500)).await;
    let segs = segment_ids(dir.path());
    assert!(segs.len() <= 2, "old segments were kept: {segs:?}");
    assert!(segs[0] > 1, "{segs:?}");
    assert!(store.stats().wal_segments_deleted.load(Ordering::Relaxed) >= 3);
    assert_eq!(store.head_spans(), 0);
    assert_eq!(store.block_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_spike_raises_a_services_sampling_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, clock) = sampling_config(
        dir.path(),
        "
decision_wait: 20ms
policies:
  - {name: rest, type: probabilistic, probabilistic: {sampling_percentage: 0}}
adaptive:
  enabled: true
  bucket: 100ms
  window: 300ms
  baseline_window: 600ms
  min_requests: 5
  min_error_rate: 0.1
  cool_down: 1h
",
    );
    let store = Store::open(cfg).await.unwrap();
    let svc = resource("pay");
    let t0 = now_nanos();
    let mut n = 0u64;
    let mut send = async |error: bool| {
        n += 1;
        let code = if error {
            StatusCode::Error
        } else {
            StatusCode::Ok
        };
        let id = trace_id(n);
        append(&store, &batch_of(&svc, vec![root(id, n, t0, code)])).await;
        id
    };
    // A calm baseline, then a spike of errors.
    for _ in 0..40 {
        send(false).await;
        advance(&store, &clock, Duration::from_millis(25)).await;
    }
    for _ in 0..20 {
        send(true).await;
        advance(&store, &clock, Duration::from_millis(25)).await;
    }
    let s = status(&store).await;
    assert!(
        s.adaptive
            .iter()
            .any(|a| a.service == "pay" && a.percentage == 100.0),
        "{s:?}"
    );
    assert!(s.recent_events.iter().any(|e| e.service == "pay"), "{s:?}");
    // Normal traffic of the service is now kept, by the adaptive controller.
    let calm = send(false).await;
    advance(&store, &clock, Duration::from_millis(20)).await;
    let got = visible(&store, calm, 1).await;
    assert_eq!(policies(&got), vec!["adaptive"]);
    assert!(status(&store).await.tail.adaptive_sampled_traces >= 1);
}

/// The buffer holds only what the policies read; a kept trace comes back whole from the WAL,
/// with every attribute, also when one record holds spans of kept and dropped traces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_traces_come_back_whole_from_the_log_with_attributes_the_policies_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, clock) = sampling_config(
        dir.path(),
        "
decision_wait: 1h
decision_wait_after_root: 100ms
policies:
  - {name: gold, type: string_attribute, string_attribute: {key: tenant, values: [gold]}}
",
    );
    let t0 = now_nanos() - 10 * SECOND;
    let svc = resource("svc");
    let tagged = |mut s: Span, tenant: &str| {
        s.attributes = vec![
            stitch_model::KeyValue::new("tenant", tenant),
            stitch_model::KeyValue::new("http.route", "/orders/{id}"),
            stitch_model::KeyValue::new("user.id", "u-42"),
        ];
        s
    };
    let (gold, free) = (trace_id(1), trace_id(2));
    let store = Store::open(cfg.clone()).await.unwrap();
    // One record with children of both traces, then one with both roots.
    append(
        &store,
        &batch_of(
            &svc,
            vec![
                tagged(child(gold, 11, 10, t0), "gold"),
                tagged(child(free, 21, 20, t0), "free"),
                tagged(child(gold, 12, 10, t0), "gold"),
            ],
        ),
    )
    .await;
    append(
        &store,
        &batch_of(
            &svc,
            vec![
                tagged(root(free, 20, t0, StatusCode::Ok), "free"),
                tagged(root(gold, 10, t0, StatusCode::Ok), "gold"),
            ],
        ),
    )
    .await;
    advance(&store, &clock, Duration::from_millis(100)).await;
    let got = visible(&store, gold, 3).await;
    assert_eq!(
        ids(&got),
        sorted(vec![span_id(10), span_id(11), span_id(12)])
    );
    assert_eq!(policies(&got), vec!["gold"; 3]);
    for (_, s) in spans_of(&got) {
        for key in ["tenant", "http.route", "user.id"] {
            assert!(
                find_attribute(&s.attributes, key).is_some(),
                "{key} missing on a kept span"
            );
        }
    }
    assert_eq!(status(&store).await.tail.buffered_traces, 0);
    assert!(get(&store, free).await.is_none());
    drop(store);

    // After a crash the kept trace comes back from its decision record, whole.
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(ids(&get(&store, gold).await.unwrap()).len(), 3);
    assert!(get(&store, free).await.is_none());
}
