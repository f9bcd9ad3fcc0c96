//! The tail sampler end to end: the seeds' incident, whole traces, the byte budget, late
//! spans, recovery hooks and adaptive rates.

use std::collections::HashMap;
use std::mem::size_of;
use std::time::Duration;

use proptest::prelude::*;
use stitch_model::{
    AnyValue, Batch, KeyValue, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};
use stitch_pipeline::config::{AdaptiveConfig, SamplingConfig};
use stitch_pipeline::head::HeadSampler;
use stitch_pipeline::{
    Decision, DecisionReason, ModelSpan, SpanRecord, SpanView, TailSampler, Verdict, group_spans,
    split_batch,
};
use stitch_testkit::{MS, Rng, SECOND as SEC, batch_of, resource};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A trace id from both of the generator's next words, as drawn.
fn next_trace_id(rng: &mut Rng) -> TraceId {
    TraceId::from_halves(rng.next_u64(), rng.next_u64())
}

/// A minimal span record: what the policies need and nothing else.
#[derive(Clone, Debug)]
struct Tiny {
    span_id: u64,
    service: &'static str,
    start: u64,
    end: u64,
    status: StatusCode,
    root: bool,
}

impl SpanRecord for Tiny {
    fn view(&self) -> SpanView<'_> {
        SpanView {
            span_id: SpanId::from_u64(self.span_id),
            is_root: self.root,
            service: self.service,
            name: "GET /checkout",
            kind: SpanKind::Server,
            start_unix_nano: self.start,
            end_unix_nano: self.end,
            status: self.status,
            trace_state: "",
            flags: 1,
            attributes: &[],
            resource_attributes: &[],
        }
    }
    fn size_bytes(&self) -> usize {
        size_of::<Tiny>()
    }
}

fn config(yaml: &str) -> SamplingConfig {
    SamplingConfig::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------------
// The seeds' incident

#[test]
fn the_seed_preset_keeps_every_slow_request_of_a_million_and_five_percent_of_the_rest() {
    const REQUESTS: u64 = 1_000_000;
    // 0.01% of requests take 30 s: one in 10,000. Half of them end as errors (timeouts), the
    // other half finish slowly without an error status.
    let is_slow = |i: u64| i % 10_000 == 1_234;
    let mut tail: TailSampler<Tiny> = TailSampler::new(&SamplingConfig::seed_preset()).unwrap();
    // What the incident's team switched to: every error and slow request, 1% of the rest.
    let mut incident: TailSampler<Tiny> = TailSampler::new(&config(
        "policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 1000}}
  - {name: rest, type: probabilistic, probabilistic: {sampling_percentage: 1}}",
    ))
    .unwrap();
    let (mut incident_slow, mut incident_normal) = (0u64, 0u64);
    let mut head = HeadSampler::new(&config("head: {percentage: 1}").head);
    let mut rng = Rng::new(2024);

    let mut kept_slow = 0u64;
    let mut kept_normal = 0u64;
    let mut head_slow = 0u64;
    let mut head_all = 0u64;
    let count = |decisions: Vec<Decision<Tiny>>, kept_slow: &mut u64, kept_normal: &mut u64| {
        for d in decisions {
            if d.verdict.is_sampled() {
                assert_eq!(d.spans.len(), 1);
                let s = &d.spans[0];
                if s.end - s.start == 30 * SEC {
                    *kept_slow += 1;
                } else {
                    *kept_normal += 1;
                }
            }
        }
    };
    // 10,000 requests per second: one arrives every 100 µs; a request's (root) span arrives
    // when it ends.
    for i in 0..REQUESTS {
        let now = 1_700_000_000 * SEC + i * 100_000;
        let id = next_trace_id(&mut rng);
        let slow = is_slow(i);
        let duration = if slow {
            30 * SEC
        } else {
            20 * MS + rng.next_u64() % (200 * MS)
        };
        let span = Tiny {
            span_id: i + 1,
            service: "checkout",
            start: now - duration,
            end: now,
            status: if slow && i % 20_000 == 1_234 {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            root: true,
        };
        let h = head.decide(id, "", now);
        head_all += h.sampled as u64;
        head_slow += (h.sampled && slow) as u64;
        count(
            incident.add(id, vec![span.clone()], i / 1000, now),
            &mut incident_slow,
            &mut incident_normal,
        );
        count(
            tail.add(id, vec![span], i / 1000, now),
            &mut kept_slow,
            &mut kept_normal,
        );
        if i % 100 == 0 {
            count(tail.tick(now), &mut kept_slow, &mut kept_normal);
            count(incident.tick(now), &mut incident_slow, &mut incident_normal);
        }
    }
    let end = 1_700_000_000 * SEC + REQUESTS * 100_000;
    count(tail.tick(end + 60 * SEC), &mut kept_slow, &mut kept_normal);
    count(
        incident.tick(end + 60 * SEC),
        &mut incident_slow,
        &mut incident_normal,
    );
    assert_eq!(tail.buffered_traces(), 0);
    assert_eq!(incident.buffered_traces(), 0);

    let slow_total = REQUESTS / 10_000;
    assert_eq!(slow_total, 100);
    // Tail sampling with the seed preset: every slow request is kept...
    assert_eq!(kept_slow, slow_total);
    // ... and about 5% of the rest.
    let normal_total = REQUESTS - slow_total;
    let share = kept_normal as f64 / normal_total as f64;
    assert!(
        (0.048..0.052).contains(&share),
        "kept {share:.4} of normal traces"
    );
    let m = tail.metrics();
    assert_eq!(m.sampled_by_policy["errors"], 50);
    assert_eq!(m.sampled_by_policy["slow"], 50);
    assert_eq!(m.sampled_by_policy["rest"], kept_normal);
    assert_eq!(m.traces_sampled + m.traces_not_sampled, REQUESTS);
    // Root spans arrived with the requests, so decisions came decision_wait_after_root later.
    assert_eq!(m.decided_after_root, REQUESTS);
    assert_eq!(m.early_decisions_byte_budget, 0);
    // The incident team's policies: every slow request too, and about 1% of the rest.
    assert_eq!(incident_slow, slow_total);
    let share = incident_normal as f64 / normal_total as f64;
    assert!(
        (0.009..0.011).contains(&share),
        "incident policies kept {share:.4} of normal traces"
    );

    // Head sampling at 1%: about 1% of everything, and so about 1% of the slow requests:
    // the expected catch is one of the hundred, i.e. one slow trace per million requests,
    // the seeds' two weeks without a trace of the failure.
    let head_share = head_all as f64 / REQUESTS as f64;
    assert!((0.009..0.011).contains(&head_share), "{head_share}");
    let captured = head_slow as f64 / slow_total as f64;
    let miss_all = 0.99f64.powi(slow_total as i32);
    eprintln!(
        "head 1%: kept {head_all} of {REQUESTS} requests, {head_slow} of {slow_total} slow ones \
         ({:.0}% missed; chance of missing all {slow_total}: {:.0}%); tail (seed preset): \
         {kept_slow} of {slow_total} slow, {kept_normal} normal",
        100.0 * (1.0 - captured),
        100.0 * miss_all
    );
    assert!(
        captured <= 0.05,
        "head sampling caught {captured:.2} of slow traces"
    );
    assert!((0.95..=1.0).contains(&(1.0 - captured)));

    // The same workload a hundred times over (only the slow requests matter to head
    // sampling, whose verdict ignores latency): about 1% of slow requests are captured, and
    // in about 37% of the workloads (0.99^100) not a single one is.
    let mut captured_slow = 0u32;
    let mut workloads_without_any = 0u32;
    for _ in 0..100 {
        let caught = (0..slow_total)
            .filter(|_| head.decide(next_trace_id(&mut rng), "", end).sampled)
            .count() as u32;
        captured_slow += caught;
        workloads_without_any += (caught == 0) as u32;
    }
    let rate = captured_slow as f64 / (100 * slow_total) as f64;
    eprintln!(
        "head 1% over 100 workloads: {:.2}% of slow requests captured, {workloads_without_any} \
         workloads without a single slow trace",
        rate * 100.0
    );
    assert!((0.007..0.013).contains(&rate), "{rate}");
    assert!(
        (25..=50).contains(&workloads_without_any),
        "{workloads_without_any}"
    );
}

// ---------------------------------------------------------------------------------------------
// Whole traces

#[derive(Debug, Clone)]
struct GenSpan {
    arrive_ms: u64,
    batch_with_next: bool,
    error: bool,
    duration_ms: u64,
    root: bool,
}

fn arb_trace() -> impl Strategy<Value = Vec<GenSpan>> {
    prop::collection::vec(
        (
            0u64..30_000,
            any::<bool>(),
            prop::bool::weighted(0.1),
            1u64..3_000,
        ),
        1..8,
    )
    .prop_map(|spans| {
        spans
            .into_iter()
            .enumerate()
            .map(
                |(i, (arrive_ms, batch_with_next, error, duration_ms))| GenSpan {
                    arrive_ms,
                    batch_with_next,
                    error,
                    duration_ms,
                    root: i == 0,
                },
            )
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_trace_is_kept_or_dropped_whole_across_batches_late_spans_and_early_decisions(
        traces in prop::collection::vec(arb_trace(), 1..25),
        budget in 300u64..6_000,
        tick_ms in 1u64..2_000,
    ) {
        let yaml = format!(r#"
decision_wait: 10s
decision_wait_after_root: 3s
max_buffered_bytes: {budget}
decision_cache: {{sampled_cache_size: 1000, non_sampled_cache_size: 1000}}
policies:
  - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}
  - {{name: slow, type: latency, latency: {{threshold_ms: 2000}}}}
  - {{name: some, type: probabilistic, probabilistic: {{sampling_percentage: 30}}}}
  - {{name: limited, type: rate_limiting, rate_limiting: {{spans_per_second: 3}}}}
"#);
        let mut tail: TailSampler<Tiny> = TailSampler::new(&config(&yaml)).unwrap();
        // Arrivals: (time, trace index, spans arriving together).
        let mut arrivals: Vec<(u64, usize, Vec<Tiny>)> = Vec::new();
        let mut next_id = 1;
        for (t, spans) in traces.iter().enumerate() {
            let mut group: Vec<Tiny> = Vec::new();
            for (i, s) in spans.iter().enumerate() {
                let start = s.arrive_ms * MS;
                group.push(Tiny {
                    span_id: next_id,
                    service: if i % 2 == 0 { "a" } else { "b" },
                    start,
                    end: start + s.duration_ms * MS,
                    status: if s.error { StatusCode::Error } else { StatusCode::Ok },
                    root: s.root,
                });
                next_id += 1;
                if !s.batch_with_next || i + 1 == spans.len() {
                    let at = group.iter().map(|g| g.start).max().unwrap();
                    arrivals.push((at, t, std::mem::take(&mut group)));
                }
            }
        }
        arrivals.sort_by_key(|(at, t, _)| (*at, *t));
        let ids: Vec<TraceId> = (0..traces.len()).map(|t| TraceId::from_halves(7, t as u64 + 1)).collect();
        let mut kept: HashMap<usize, u64> = HashMap::new();
        let mut not_kept: HashMap<usize, u64> = HashMap::new();
        let mut verdict: HashMap<usize, bool> = HashMap::new();
        let index: HashMap<TraceId, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut record = |ds: Vec<Decision<Tiny>>| -> Result<(), TestCaseError> {
            for d in ds {
                let t = index[&d.trace_id];
                let sampled = d.verdict.is_sampled();
                if let Some(before) = verdict.insert(t, sampled) {
                    prop_assert_eq!(before, sampled, "trace {} changed its verdict", t);
                }
                if sampled {
                    prop_assert_eq!(d.spans.len() as u32, d.span_count);
                    *kept.entry(t).or_default() += d.span_count as u64;
                } else {
                    prop_assert!(d.spans.is_empty());
                    *not_kept.entry(t).or_default() += d.span_count as u64;
                }
            }
            Ok(())
        };
        let mut clock = 0;
        for (pos, (at, t, spans)) in arrivals.into_iter().enumerate() {
            while clock + tick_ms * MS <= at {
                clock += tick_ms * MS;
                record(tail.tick(clock))?;
            }
            record(tail.add(ids[t], spans, pos as u64, at))?;
            prop_assert!(tail.buffered_bytes() <= budget, "{} > {}", tail.buffered_bytes(), budget);
        }
        record(tail.tick(clock + 60 * SEC))?;
        record(tail.flush_all(clock + 61 * SEC))?;
        prop_assert_eq!(tail.buffered_traces(), 0);
        prop_assert_eq!(tail.buffered_bytes(), 0);
        for (t, spans) in traces.iter().enumerate() {
            let total = spans.len() as u64;
            let k = kept.get(&t).copied().unwrap_or(0);
            let n = not_kept.get(&t).copied().unwrap_or(0);
            prop_assert_eq!(k + n, total, "trace {}: every span accounted for once", t);
            prop_assert!(k == 0 || n == 0, "trace {}: {} kept and {} not", t, k, n);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Byte budget

#[test]
fn exceeding_the_byte_budget_decides_the_oldest_traces_first_and_stays_within_it() {
    let tiny = |i: u64| Tiny {
        span_id: i,
        service: "a",
        start: 0,
        end: MS,
        status: StatusCode::Unset,
        root: false,
    };
    // Measure what one single-span trace costs, then allow ten of them.
    let mut probe: TailSampler<Tiny> = TailSampler::new(&SamplingConfig::seed_preset()).unwrap();
    probe.add(TraceId([1; 16]), vec![tiny(1)], 0, 0);
    let per_trace = probe.buffered_bytes();
    let mut c = SamplingConfig::seed_preset();
    c.max_buffered_bytes = per_trace * 10;
    let mut tail: TailSampler<Tiny> = TailSampler::new(&c).unwrap();
    let mut early = Vec::new();
    for i in 0..25u64 {
        let id = TraceId::from_halves(1, i + 1);
        for d in tail.add(id, vec![tiny(i)], i, i * MS) {
            assert_eq!(d.reason, DecisionReason::ByteBudget);
            early.push(d.trace_id.halves().1 - 1);
        }
        assert!(tail.buffered_bytes() <= c.max_buffered_bytes);
        assert!(tail.buffered_traces() <= 10);
    }
    // Oldest first: traces 0..15 went early, in arrival order.
    assert_eq!(early, (0..15).collect::<Vec<_>>());
    assert_eq!(tail.metrics().early_decisions_byte_budget, 15);
    // The WAL low watermark follows the oldest buffered trace.
    assert_eq!(tail.low_watermark(), Some(15));

    // A trace that grows past the budget is decided by itself, whole.
    let mut one: TailSampler<Tiny> = TailSampler::new(&c).unwrap();
    let big = TraceId([9; 16]);
    let mut decided = Vec::new();
    for i in 0..40 {
        decided.extend(one.add(big, vec![tiny(i)], 0, 0));
        assert!(one.buffered_bytes() <= c.max_buffered_bytes);
    }
    assert!(!decided.is_empty());
    // Later spans follow the first (early) decision.
    let first = decided[0].verdict.is_sampled();
    assert!(decided.iter().all(|d| d.verdict.is_sampled() == first));
    assert_eq!(
        decided.iter().map(|d| d.span_count).sum::<u32>() as usize + one.buffered_spans() as usize,
        40
    );
}

#[test]
fn the_trace_limit_also_decides_early() {
    let mut c = SamplingConfig::seed_preset();
    c.num_traces = 3;
    let mut tail: TailSampler<Tiny> = TailSampler::new(&c).unwrap();
    let mut reasons = Vec::new();
    for i in 0..5u64 {
        let span = Tiny {
            span_id: i,
            service: "a",
            start: 0,
            end: 1,
            status: StatusCode::Unset,
            root: false,
        };
        reasons.extend(
            tail.add(TraceId::from_halves(0, i + 1), vec![span], 0, 0)
                .into_iter()
                .map(|d| d.reason),
        );
    }
    assert_eq!(reasons, vec![DecisionReason::TraceLimit; 2]);
    assert_eq!(tail.buffered_traces(), 3);
}

// ---------------------------------------------------------------------------------------------
// With model spans

fn model_span(
    trace: TraceId,
    id: u64,
    parent: Option<u64>,
    start_ms: u64,
    end_ms: u64,
    status: StatusCode,
) -> Span {
    Span {
        trace_id: trace,
        span_id: SpanId::from_u64(id),
        parent_span_id: parent.map(SpanId::from_u64),
        name: format!("op-{id}"),
        kind: SpanKind::Server,
        start_time_unix_nano: start_ms * MS,
        end_time_unix_nano: end_ms * MS,
        status: Status {
            code: status,
            message: String::new(),
        },
        flags: 1,
        ..Default::default()
    }
}

fn batch(service: &str, spans: Vec<Span>) -> Batch {
    batch_of(&resource(service), spans)
}

fn feed(
    tail: &mut TailSampler<ModelSpan>,
    b: Batch,
    pos: u64,
    now: u64,
) -> Vec<Decision<ModelSpan>> {
    let mut out = Vec::new();
    for (id, spans) in split_batch(b) {
        out.extend(tail.add(id, spans, pos, now));
    }
    out
}

#[test]
fn a_trace_is_decided_after_decision_wait_or_sooner_after_its_root_and_late_spans_follow() {
    let mut tail: TailSampler<ModelSpan> = TailSampler::new(&config(
        "decision_wait: 10s\ndecision_wait_after_root: 2s\npolicies: [{name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]",
    )).unwrap();
    let a = TraceId([0xa; 16]);
    let b = TraceId([0xb; 16]);
    // Trace a: a failing child first, its root 1 s later. Trace b: no root ever, no error.
    assert!(
        feed(
            &mut tail,
            batch(
                "db",
                vec![model_span(a, 2, Some(1), 0, 5, StatusCode::Error)]
            ),
            1,
            0
        )
        .is_empty()
    );
    assert!(
        feed(
            &mut tail,
            batch("web", vec![model_span(b, 5, Some(4), 0, 5, StatusCode::Ok)]),
            1,
            0
        )
        .is_empty()
    );
    assert!(
        feed(
            &mut tail,
            batch(
                "web",
                vec![model_span(a, 1, None, 0, 900, StatusCode::Unset)]
            ),
            2,
            SEC
        )
        .is_empty()
    );
    assert_eq!(tail.low_watermark(), Some(1));
    assert_eq!(tail.next_deadline(), Some(3 * SEC));
    assert!(tail.tick(2 * SEC).is_empty());
    let d = tail.tick(3 * SEC);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].trace_id, a);
    assert_eq!(d[0].reason, DecisionReason::AfterRoot);
    assert_eq!(
        d[0].verdict,
        Verdict::Sampled {
            policy: "errors".into(),
            probability: Some(1.0)
        }
    );
    assert_eq!(d[0].spans.len(), 2);
    assert_eq!(d[0].first_wal_pos, 1);
    let stored = group_spans(d.into_iter().next().unwrap().spans);
    assert_eq!(stored.len(), 2, "one group per resource");

    let d = tail.tick(10 * SEC);
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].trace_id, d[0].reason, d[0].verdict.clone()),
        (b, DecisionReason::DecisionWait, Verdict::NotSampled)
    );
    assert_eq!(tail.low_watermark(), None);

    // Late spans follow the cached decisions, at once.
    let late = feed(
        &mut tail,
        batch(
            "cache",
            vec![
                model_span(a, 3, Some(1), 10, 20, StatusCode::Ok),
                model_span(b, 6, Some(4), 1, 2, StatusCode::Error),
            ],
        ),
        3,
        20 * SEC,
    );
    assert_eq!(late.len(), 2);
    let by_id: HashMap<TraceId, &Decision<ModelSpan>> =
        late.iter().map(|d| (d.trace_id, d)).collect();
    assert_eq!(by_id[&a].reason, DecisionReason::Cached);
    assert_eq!(by_id[&a].verdict.kept_by(), Some("errors"));
    assert_eq!(by_id[&a].spans.len(), 1);
    assert!(
        !by_id[&b].verdict.is_sampled(),
        "an error arriving late does not resurrect a dropped trace"
    );
    let m = tail.metrics();
    assert_eq!((m.late_spans_sampled, m.late_spans_not_sampled), (1, 1));
    assert_eq!((m.decided_after_root, m.decided_after_wait), (1, 1));
    assert_eq!(m.buffered_traces, 0);
}

#[test]
fn without_policies_spans_pass_through_unbuffered() {
    let mut tail: TailSampler<ModelSpan> = TailSampler::new(&SamplingConfig::default()).unwrap();
    assert!(tail.is_pass_through());
    let t = TraceId([1; 16]);
    let d = feed(
        &mut tail,
        batch("a", vec![model_span(t, 1, None, 0, 1, StatusCode::Ok)]),
        0,
        0,
    );
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].reason, DecisionReason::PassThrough);
    assert_eq!(d[0].verdict.kept_by(), Some("keep_all"));
    assert_eq!(tail.buffered_traces(), 0);
}

#[test]
fn a_drop_policy_overrides_every_sampling_policy() {
    let yaml = r#"
policies:
  - {name: all, type: always_sample}
  - name: no-health
    type: drop
    drop: {drop_sub_policy: [{name: h, type: condition, condition: 'name = "op-1"'}]}
"#;
    let mut tail: TailSampler<ModelSpan> = TailSampler::new(&config(yaml)).unwrap();
    let t = TraceId([3; 16]);
    feed(
        &mut tail,
        batch("a", vec![model_span(t, 1, None, 0, 1, StatusCode::Error)]),
        0,
        0,
    );
    let d = tail.flush_all(SEC);
    assert_eq!(
        d[0].verdict,
        Verdict::Dropped {
            policy: "no-health".into()
        }
    );
    assert_eq!(d[0].reason, DecisionReason::Flush);
    assert_eq!(tail.metrics().dropped_by_policy["no-health"], 1);
}

#[test]
fn recovery_restores_decisions_from_before_a_restart() {
    let mut tail: TailSampler<ModelSpan> =
        TailSampler::new(&SamplingConfig::seed_preset()).unwrap();
    let kept = TraceId([1; 16]);
    let gone = TraceId([2; 16]);
    // Replaying the WAL: spans come back, then the decision records written before the crash.
    feed(
        &mut tail,
        batch("a", vec![model_span(kept, 1, None, 0, 1, StatusCode::Ok)]),
        7,
        0,
    );
    feed(
        &mut tail,
        batch(
            "a",
            vec![model_span(gone, 2, None, 0, 1, StatusCode::Error)],
        ),
        7,
        0,
    );
    let d = tail.restore_decision(kept, true, 0).unwrap();
    assert_eq!((d.reason, d.spans.len()), (DecisionReason::Restored, 1));
    assert_eq!(d.verdict.kept_by(), Some("restored"));
    let d = tail.restore_decision(gone, false, 0).unwrap();
    assert!(d.spans.is_empty());
    assert_eq!(tail.buffered_traces(), 0);
    // Spans replayed after the decision record follow it.
    let late = feed(
        &mut tail,
        batch(
            "b",
            vec![model_span(gone, 3, Some(2), 0, 1, StatusCode::Ok)],
        ),
        8,
        0,
    );
    assert!(!late[0].verdict.is_sampled());
    assert_eq!(tail.cached_decision(&kept), Some(true));
    // A decision for a trace that is not buffered only primes the cache.
    assert!(tail.restore_decision(TraceId([4; 16]), true, 0).is_none());
    assert_eq!(tail.cached_decision(&TraceId([4; 16])), Some(true));
}

#[test]
fn an_error_spike_raises_a_services_share_of_kept_traffic_and_calm_lowers_it() {
    let mut c = SamplingConfig::seed_preset();
    c.decision_wait = Duration::from_secs(1);
    c.adaptive = AdaptiveConfig {
        enabled: true,
        min_requests: 20,
        ..AdaptiveConfig::default()
    };
    let mut tail: TailSampler<Tiny> = TailSampler::new(&c).unwrap();
    let mut rng = Rng::new(5);
    // Per minute: normal (OK) traces decided, and how many of them were kept.
    let mut kept_ok_by_minute: Vec<(u64, u64)> = vec![(0, 0); 50];
    // Per minute: the kept normal traces' adjusted counts (1 / recorded probability) summed.
    let mut estimated_ok_by_minute: Vec<f64> = vec![0.0; 50];
    let mut ok_traces: HashMap<TraceId, usize> = HashMap::new();
    // 20 traces/s for 50 minutes; from minute 35 to 38 a third of "pay"'s traces fail.
    for minute in 0..50u64 {
        for s in 0..60u64 {
            let now = (minute * 60 + s) * SEC;
            for i in 0..20u64 {
                let spike = (35..38).contains(&minute);
                let fail = if spike {
                    i % 3 == 0
                } else {
                    (minute * 1200 + s * 20 + i) % 400 == 0
                };
                let id = next_trace_id(&mut rng);
                if !fail {
                    ok_traces.insert(id, minute as usize);
                }
                let span = Tiny {
                    span_id: i + 1,
                    service: "pay",
                    start: now,
                    end: now + MS,
                    status: if fail {
                        StatusCode::Error
                    } else {
                        StatusCode::Ok
                    },
                    root: true,
                };
                tail.add(id, vec![span], 0, now + i * 50 * MS);
            }
            for d in tail.tick(now + SEC) {
                if let Some(m) = ok_traces.remove(&d.trace_id) {
                    kept_ok_by_minute[m].0 += 1;
                    kept_ok_by_minute[m].1 += d.verdict.is_sampled() as u64;
                    if let Verdict::Sampled { probability, .. } = &d.verdict {
                        let p = probability.expect("probabilistic and adaptive keeps are known");
                        estimated_ok_by_minute[m] += 1.0 / p;
                    }
                }
            }
        }
    }
    let events = tail.take_adaptive_events();
    assert!(events.len() >= 2, "{events:#?}");
    assert_eq!(events[0].service, "pay");
    assert!(events[0].to_percentage > events[0].from_percentage);
    assert_eq!(events[0].from_percentage, 5.0);
    assert!(
        events[0].reason.contains("error rate"),
        "{}",
        events[0].reason
    );
    let last = events.last().unwrap();
    assert_eq!(last.to_percentage, 5.0, "back to normal: {events:#?}");
    let share = |m: usize| kept_ok_by_minute[m].1 as f64 / kept_ok_by_minute[m].0.max(1) as f64;
    assert!(share(20) < 0.1, "before: {}", share(20));
    assert!(share(37) > 0.4, "during: {}", share(37));
    assert!(share(49) < 0.1, "after: {}", share(49));
    assert!(tail.metrics().adaptive_sampled_traces > 0);
    assert!(tail.metrics().sampled_by_policy.contains_key("adaptive"));
    // The recorded probabilities scale the kept traces back to the traffic, before, during and
    // after the boost (a trace the base policy keeps while boosted is kept with the boost's
    // probability, not the base one's).
    for (minutes, tolerance) in [(0..35, 0.1), (35..38, 0.1), (38..50, 0.1), (0..50, 0.05)] {
        let sent: u64 = kept_ok_by_minute[minutes.clone()].iter().map(|k| k.0).sum();
        let estimated: f64 = estimated_ok_by_minute[minutes.clone()].iter().sum();
        let error = (estimated - sent as f64).abs() / sent as f64;
        assert!(
            error < tolerance,
            "minutes {minutes:?}: {sent} normal traces, estimated {estimated:.0}"
        );
    }
}

#[test]
fn spans_keep_their_values_through_the_buffer() {
    let mut tail: TailSampler<ModelSpan> =
        TailSampler::new(&config("policies: [{name: all, type: always_sample}]")).unwrap();
    let t = TraceId([5; 16]);
    let mut s = model_span(t, 1, None, 0, 5, StatusCode::Ok);
    s.attributes
        .push(KeyValue::new("k", AnyValue::Bytes(vec![1, 2, 3])));
    feed(&mut tail, batch("svc", vec![s.clone()]), 0, 0);
    let d = tail.flush_all(1);
    let groups = group_spans(d.into_iter().next().unwrap().spans);
    assert_eq!(groups[0].resource.service_name(), "svc");
    assert_eq!(groups[0].scope_spans[0].spans, vec![s]);
}
