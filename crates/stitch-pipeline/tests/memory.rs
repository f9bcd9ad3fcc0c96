//! Resident bytes per buffered span, measured with a counting allocator.
//!
//! This binary holds this one test only: the allocator's counters are process-wide.

use std::alloc::System;
use std::mem::size_of;
use std::sync::Arc;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stitch_model::{
    Batch, KeyValue, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind, Status, TraceId,
};
use stitch_pipeline::span::span_heap_bytes;
use stitch_pipeline::{ModelSpan, SamplingConfig, TailSampler, split_batch};
use stitch_testkit::{MS, Rng, resource};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn batch(service: &str, spans: Vec<Span>) -> Batch {
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                scope: Arc::new(Scope::default()),
                spans,
            }],
        }],
    }
}

fn feed(tail: &mut TailSampler<ModelSpan>, b: Batch) {
    for (id, spans) in split_batch(b) {
        assert!(tail.add(id, spans, 0, 0).is_empty());
    }
}

fn realistic_span(trace: TraceId, id: u64, service: &str, start: u64) -> Span {
    Span {
        trace_id: trace,
        span_id: SpanId::from_u64(id),
        parent_span_id: (id != 1).then(|| SpanId::from_u64(id - 1)),
        name: format!("{service} GET /api/v1/orders/{{id}}"),
        kind: SpanKind::Server,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 12 * MS,
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/api/v1/orders/{id}"),
            KeyValue::new("http.response.status_code", 200i64),
            KeyValue::new("server.address", "orders.internal"),
            KeyValue::new("url.path", format!("/api/v1/orders/{id}")),
            KeyValue::new("user_agent.original", "python-requests/2.32"),
        ],
        status: Status::default(),
        flags: 1,
        ..Default::default()
    }
}

#[test]
fn buffered_spans_cost_at_most_100_bytes_beyond_the_span_itself_and_the_estimate_tracks_reality() {
    const TRACES: u64 = 5_000;
    const SPANS_PER_TRACE: u64 = 10;
    let services = ["web", "orders", "db"];
    let mut c = SamplingConfig::seed_preset();
    c.max_buffered_bytes = u64::MAX / 2;
    c.num_traces = usize::MAX / 2;
    c.decision_wait = Duration::from_secs(3600);
    c.decision_wait_after_root = Duration::ZERO;
    let mut rng = Rng::new(9);
    let ids: Vec<TraceId> = (0..TRACES)
        .map(|_| TraceId::from_halves(rng.next_u64(), rng.next_u64()))
        .collect();
    let region = Region::new(GLOBAL);
    let mut tail: TailSampler<ModelSpan> = TailSampler::new(&c).unwrap();
    let mut own_bytes = 0usize;
    // Export requests as SDKs send them: each service's batch holds spans of many traces
    // (here, 3-4 spans of each of 100 traces), with one resource per request.
    for chunk in ids.chunks(100) {
        for (s, service) in services.iter().enumerate() {
            let mut spans = Vec::new();
            for (t, id) in chunk.iter().enumerate() {
                for k in 0..SPANS_PER_TRACE {
                    if k as usize % services.len() == s {
                        let span = realistic_span(*id, k + 1, service, (t as u64) * MS);
                        own_bytes += size_of::<Span>() + span_heap_bytes(&span);
                        spans.push(span);
                    }
                }
            }
            feed(&mut tail, batch(service, spans));
        }
    }
    let spans = (TRACES * SPANS_PER_TRACE) as usize;
    assert_eq!(tail.buffered_spans() as usize, spans);
    let change = region.change();
    // Reallocations are already in the allocated and deallocated totals.
    let resident = change.bytes_allocated - change.bytes_deallocated;
    let overhead = (resident - own_bytes) as f64 / spans as f64;
    let estimate = tail.buffered_bytes() as usize;
    let estimate_overhead = (estimate - own_bytes) as f64 / spans as f64;
    eprintln!(
        "{spans} spans buffered: {resident} bytes resident, {own_bytes} of them the spans \
         themselves ({:.0} B/span); overhead {overhead:.1} B/span measured, \
         {estimate_overhead:.1} B/span estimated; estimate {estimate} bytes",
        own_bytes as f64 / spans as f64
    );
    assert!(
        overhead <= 100.0,
        "{overhead:.1} bytes of overhead per span"
    );
    let ratio = estimate as f64 / resident as f64;
    assert!(
        (0.9..1.15).contains(&ratio),
        "estimate/resident = {ratio:.3}"
    );
    // Deciding everything gives the memory back.
    let decided = tail.flush_all(1);
    assert_eq!(decided.len(), TRACES as usize);
    drop(decided);
    assert_eq!(tail.buffered_bytes(), 0);
}
