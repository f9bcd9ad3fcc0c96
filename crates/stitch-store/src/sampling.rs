//! The tail sampler inside the store: the WAL writer thread owns one
//! [`TailSampler<ModelSpan>`] (no lock), feeds it every batch after the group commit, and
//! moves the traces it keeps into the active head. Decisions are framed into WAL records
//! (kind 3, see [`crate::wal`]) that are written with the next group commit, so that recovery
//! can tell kept, dropped and undecided traces apart.
//!
//! Kept spans carry two attributes, visible in every API:
//!
//! * `stitch.sampling.policy`: the policy that kept the trace (`errors`, `slow`, `rest`,
//!   `adaptive`, `composite/sub`, ...);
//! * `stitch.sampling.probability`: the probability that a trace like this one is kept by the
//!   tail sampler, when known (1 for deterministic policies, the percentage for
//!   probabilistic ones; absent for rate limits and for late spans that followed a cached
//!   decision). Multiply by the head-sampling probability (the `th` in the span's
//!   `tracestate`) and count each kept trace `1 / p` times to scale RED metrics.
//!
//! Without policies (and without adaptive sampling) the sampler is a pass-through: the writer
//! does not call it, spans go to the head as before and the WAL holds kind-1 records.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use stitch_model::{AnyValue, KeyValue, ResourceSpans, Span, TraceId};
use stitch_pipeline::{
    AdaptiveEvent, Decision, DecisionReason, ModelSpan, SamplingConfig, ServiceState, SpanRecord,
    TailMetrics, TailSampler, Verdict, group_spans, split_batch,
};

use crate::StoreError;
use crate::head::Head;
use crate::wal::{self, SegmentEnd};

/// Attribute on kept spans: the policy that kept the trace.
pub const POLICY_ATTRIBUTE: &str = "stitch.sampling.policy";
/// Attribute on kept spans: the tail sampler's probability of keeping such a trace.
pub const PROBABILITY_ATTRIBUTE: &str = "stitch.sampling.probability";
/// Adaptive events kept for the API.
const RECENT_EVENTS: usize = 100;
/// How often the writer publishes the sampler's metrics for `/metrics` and the API.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// What the tail sampler is doing, published by the WAL writer (at most every 250 ms).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SamplingStatus {
    /// False when every trace is kept without buffering (no policies and no adaptive rates).
    pub tail_sampling: bool,
    pub tail: TailMetrics,
    /// Adaptive state per service (empty when adaptive sampling is off).
    pub adaptive: Vec<ServiceState>,
    /// The latest adaptive changes, oldest first.
    pub recent_events: Vec<AdaptiveEvent>,
    /// Decision records (kind 3) written to the WAL, and the decisions they held.
    pub decision_records: u64,
    pub decisions_logged: u64,
    /// The oldest WAL segment holding an undecided span; older segments may be deleted.
    pub low_watermark_segment: Option<u64>,
    pub updated_unix_nanos: u64,
}

/// A kept trace, ready for the head.
pub(crate) struct KeptTrace {
    pub trace_id: TraceId,
    pub fragments: Vec<ResourceSpans>,
    pub bytes: usize,
    pub source: u64,
    pub spans: u64,
}

impl KeptTrace {
    pub fn insert_into(self, head: &mut Head) {
        head.insert_trace(self.trace_id, self.fragments, self.bytes, self.source);
    }
}

/// The writer thread's sampling state.
pub(crate) struct Sampler {
    pub tail: TailSampler<ModelSpan>,
    pub pass_through: bool,
    /// Body of the kind-3 record under construction: decisions not yet written.
    pending: Vec<u8>,
    pending_decisions: u64,
    events: VecDeque<AdaptiveEvent>,
    last_publish: Option<Instant>,
    decision_records: u64,
    decisions_logged: u64,
}

pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

impl Sampler {
    pub fn new(config: &SamplingConfig) -> Result<Sampler, StoreError> {
        let tail = TailSampler::new(config)?;
        Ok(Sampler {
            pass_through: tail.is_pass_through(),
            tail,
            pending: Vec::new(),
            pending_decisions: 0,
            events: VecDeque::new(),
            last_publish: None,
            decision_records: 0,
            decisions_logged: 0,
        })
    }

    /// The WAL record kind for received spans.
    pub fn record_kind(&self) -> u8 {
        if self.pass_through {
            wal::KIND_OTLP_PROTO
        } else {
            wal::KIND_OTLP_SAMPLED
        }
    }

    /// Feeds the spans of one batch, written to WAL segment `segment`, to the tail sampler.
    pub fn add(
        &mut self,
        batch: stitch_model::Batch,
        segment: u64,
        now: u64,
        kept: &mut Vec<KeptTrace>,
    ) {
        for (trace_id, spans) in split_batch(batch) {
            let decisions = self.tail.add(trace_id, spans, segment, now);
            self.record(decisions, kept);
        }
    }

    /// Decides the traces whose wait is over.
    pub fn tick(&mut self, now: u64, kept: &mut Vec<KeptTrace>) {
        if self.pass_through {
            return;
        }
        // Also when nothing is due: `tick` evaluates the adaptive rates.
        let decisions = self.tail.tick(now);
        self.record(decisions, kept);
        for e in self.tail.take_adaptive_events() {
            tracing::info!(
                service = %e.service,
                from = ?e.from_level,
                to = ?e.to_level,
                from_percentage = e.from_percentage,
                to_percentage = e.to_percentage,
                error_rate = e.error_rate,
                baseline_error_rate = e.baseline_error_rate,
                requests = e.requests,
                reason = %e.reason,
                "adaptive sampling changed"
            );
            if self.events.len() == RECENT_EVENTS {
                self.events.pop_front();
            }
            self.events.push_back(e);
            self.last_publish = None;
        }
    }

    /// How long the writer may wait for appends before `tick` has work.
    pub fn timeout(&self, now: u64, idle: Duration) -> Duration {
        if self.pass_through {
            return idle;
        }
        match self.tail.next_deadline() {
            Some(d) => {
                Duration::from_nanos(d.saturating_sub(now)).clamp(Duration::from_millis(1), idle)
            }
            None => idle,
        }
    }

    fn record(&mut self, decisions: Vec<Decision<ModelSpan>>, kept: &mut Vec<KeptTrace>) {
        for d in decisions {
            let (verdict, policy, probability) = match &d.verdict {
                Verdict::Sampled {
                    policy,
                    probability,
                } => (wal::Verdict::Sampled, &**policy, *probability),
                Verdict::NotSampled => (wal::Verdict::NotSampled, "", None),
                Verdict::Dropped { policy } => (wal::Verdict::Dropped, &**policy, None),
            };
            wal::push_decision(&mut self.pending, &d.trace_id, verdict, probability, policy);
            self.pending_decisions += 1;
            if verdict == wal::Verdict::Sampled && !d.spans.is_empty() {
                kept.push(prepare_kept(d));
            }
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Frames the pending decisions as one kind-3 record onto `out` (they stay pending until
    /// [`Sampler::written`]).
    pub fn frame_pending(&self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            wal::frame(out, wal::KIND_DECISIONS, &self.pending);
        }
    }

    /// The framed pending decisions reached the WAL.
    pub fn written(&mut self) {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.decision_records += 1;
            self.decisions_logged += self.pending_decisions;
            self.pending_decisions = 0;
        }
    }

    /// Publishes the low watermark (every call: the flusher's deletions depend on it) and,
    /// at most every 250 ms, the status for the API.
    pub fn publish(&mut self, watermark: &AtomicU64, status: &parking_lot::Mutex<SamplingStatus>) {
        let low = self.tail.low_watermark();
        watermark.store(low.unwrap_or(u64::MAX), Ordering::Release);
        if self
            .last_publish
            .is_some_and(|t| t.elapsed() < PUBLISH_EVERY)
        {
            return;
        }
        self.last_publish = Some(Instant::now());
        let now = unix_nanos();
        let snapshot = SamplingStatus {
            tail_sampling: !self.pass_through,
            tail: self.tail.metrics(),
            adaptive: self.tail.adaptive_state(now),
            recent_events: self.events.iter().cloned().collect(),
            decision_records: self.decision_records,
            decisions_logged: self.decisions_logged,
            low_watermark_segment: low,
            updated_unix_nanos: now,
        };
        *status.lock() = snapshot;
    }
}

/// Marks the spans of a kept trace with the policy (and probability) that kept it and
/// regroups them for the head.
fn prepare_kept(d: Decision<ModelSpan>) -> KeptTrace {
    let mut spans = d.spans;
    if d.reason != DecisionReason::PassThrough
        && let Verdict::Sampled {
            policy,
            probability,
        } = &d.verdict
    {
        for s in &mut spans {
            mark(&mut s.span, policy, *probability);
        }
    }
    let bytes = spans.iter().map(|s| s.size_bytes()).sum();
    KeptTrace {
        trace_id: d.trace_id,
        spans: spans.len() as u64,
        fragments: group_spans(spans),
        bytes,
        source: d.first_wal_pos,
    }
}

fn mark(span: &mut Span, policy: &str, probability: Option<f64>) {
    if span
        .attributes
        .iter()
        .any(|kv| kv.key.starts_with("stitch.sampling."))
    {
        span.attributes
            .retain(|kv| kv.key != POLICY_ATTRIBUTE && kv.key != PROBABILITY_ATTRIBUTE);
    }
    span.attributes.push(KeyValue {
        key: POLICY_ATTRIBUTE.to_owned(),
        value: AnyValue::String(policy.to_owned()),
    });
    if let Some(p) = probability {
        span.attributes.push(KeyValue {
            key: PROBABILITY_ATTRIBUTE.to_owned(),
            value: AnyValue::Double(p),
        });
    }
}

/// What recovery rebuilt from the WAL.
pub(crate) struct Recovered {
    pub head: Head,
    pub sampler: Sampler,
    /// Spans put into the head or back into the tail sampler.
    pub recovered_spans: u64,
    pub undecided_traces: usize,
    pub undecided_spans: u64,
}

/// Replays the WAL segments `segments` (ascending) into a head for segment `next_segment`
/// and a fresh tail sampler:
///
/// * kind 1 (spans that went straight into a head): skipped when the segment is at or below
///   `max_through` (already in a block), else put into the head;
/// * kind 2 (spans that entered the tail sampler): held per trace until the trace's next
///   decision record;
/// * kind 3 (decisions): the held spans of each trace are decided: kept ones go into the head
///   unless the record's segment is at or below `max_through` (then the head they went into
///   was written as a block), the others are dropped; the decision is remembered so that
///   late spans follow it.
///
/// Spans still held at the end were undecided at the crash: they are given to the tail
/// sampler again (in WAL order, with their original segments as positions, so the segments
/// stay until they are decided), and are decided `decision_wait` after the restart. Decisions
/// it makes at once (late spans of a remembered trace, byte budget) are applied to the head
/// and left pending, to be written by the WAL writer into its first segment.
pub(crate) fn replay(
    wal_dir: &Path,
    segments: &[u64],
    max_through: u64,
    next_segment: u64,
    config: &SamplingConfig,
) -> Result<Recovered, StoreError> {
    struct Chunk {
        order: u64,
        segment: u64,
        spans: Vec<ModelSpan>,
    }
    let mut head = Head::new(next_segment);
    let mut held: HashMap<TraceId, Vec<Chunk>> = HashMap::new();
    let mut decided: HashMap<TraceId, (bool, String)> = HashMap::new();
    let mut order = 0u64;
    let mut recovered_spans = 0u64;
    for &seg in segments {
        let path = wal::segment_path(wal_dir, seg);
        let mut bad_records = 0u64;
        let end = wal::read_segment(&path, |kind, body| match kind {
            wal::KIND_OTLP_PROTO => {
                if seg <= max_through {
                    // Its spans are already in a block; the crash came before it was deleted.
                    return;
                }
                match stitch_wire::otlp::decode_export_request(body) {
                    Ok(decoded) => {
                        recovered_spans += decoded.batch.span_count() as u64;
                        head.insert(&decoded.batch, body.len(), seg);
                    }
                    Err(_) => bad_records += 1,
                }
            }
            wal::KIND_OTLP_SAMPLED => match stitch_wire::otlp::decode_export_request(body) {
                Ok(decoded) => {
                    for (trace_id, spans) in split_batch(decoded.batch) {
                        order += 1;
                        held.entry(trace_id).or_default().push(Chunk {
                            order,
                            segment: seg,
                            spans,
                        });
                    }
                }
                Err(_) => bad_records += 1,
            },
            wal::KIND_DECISIONS => match wal::decode_decisions(body) {
                Some(entries) => {
                    for e in entries {
                        let chunks = held.remove(&e.trace_id).unwrap_or_default();
                        let sampled = e.verdict == wal::Verdict::Sampled;
                        if sampled && seg > max_through && !chunks.is_empty() {
                            let source = chunks.iter().map(|c| c.segment).min().unwrap_or(seg);
                            let mut spans: Vec<ModelSpan> =
                                chunks.into_iter().flat_map(|c| c.spans).collect();
                            let probability = (!e.probability.is_nan()).then_some(e.probability);
                            for s in &mut spans {
                                mark(&mut s.span, &e.policy, probability);
                            }
                            recovered_spans += spans.len() as u64;
                            let bytes = spans.iter().map(|s| s.size_bytes()).sum();
                            head.insert_trace(e.trace_id, group_spans(spans), bytes, source);
                        }
                        decided.insert(e.trace_id, (sampled, e.policy));
                    }
                }
                None => bad_records += 1,
            },
            _ => bad_records += 1,
        })?;
        if bad_records > 0 {
            tracing::error!(segment = %path.display(), bad_records, "WAL records that do not decode were skipped");
        }
        if let SegmentEnd::Torn { offset, reason } = end {
            let newest = Some(&seg) == segments.last();
            if newest {
                tracing::info!(segment = %path.display(), offset, %reason, "WAL ends in an unfinished write; it was never acknowledged");
            } else {
                tracing::error!(segment = %path.display(), offset, %reason, "WAL segment is corrupt; records after this offset are lost");
            }
        }
    }

    let mut sampler = Sampler::new(config)?;
    let now = unix_nanos();
    for (trace_id, (sampled, policy)) in decided {
        sampler
            .tail
            .restore_decision_as(trace_id, sampled, Some(&policy), now);
    }
    let undecided_traces = held.len();
    let mut chunks: Vec<(TraceId, Chunk)> = held
        .into_iter()
        .flat_map(|(id, cs)| cs.into_iter().map(move |c| (id, c)))
        .collect();
    chunks.sort_unstable_by_key(|(_, c)| c.order);
    let mut undecided_spans = 0u64;
    let mut kept = Vec::new();
    for (trace_id, c) in chunks {
        undecided_spans += c.spans.len() as u64;
        let decisions = sampler.tail.add(trace_id, c.spans, c.segment, now);
        sampler.record(decisions, &mut kept);
    }
    recovered_spans += undecided_spans;
    for k in kept {
        k.insert_into(&mut head);
    }
    Ok(Recovered {
        head,
        sampler,
        recovered_spans,
        undecided_traces,
        undecided_spans,
    })
}
