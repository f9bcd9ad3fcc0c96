//! The tail sampler inside the store: the WAL writer thread owns one
//! [`TailSampler<CompactSpan>`] (no lock), feeds it every batch after the group commit, and
//! moves the traces it keeps into the active head. Decisions are framed into WAL records
//! (kind 3, see [`crate::wal`]) that are written with the next group commit, so that recovery
//! can tell kept, dropped and undecided traces apart.
//!
//! # What is buffered
//!
//! A buffered span is a [`CompactSpan`]: what the configured policies read (ids, times, kind,
//! status, service, and only the attributes the policies name), 64 bytes plus any projected
//! attributes. The whole span is already in the WAL (kind-2 record), and each buffered chunk
//! remembers the record's position ([`wal::position`]). When a trace is kept, its spans are
//! read back from those records (a few recently decoded records are cached, so the traces of
//! one request decided together decode it once); late spans of a kept trace are stored from
//! the batch at hand. WAL segments stay until every span in them is decided (the low
//! watermark), so the records are there to read.
//!
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stitch_model::{AnyValue, KeyValue, ResourceSpans, Span, TraceId};
use stitch_pipeline::{
    AdaptiveEvent, CompactSpan, Compactor, Decision, DecisionReason, ModelSpan, SamplingConfig,
    SpanRecord, TailSampler, Verdict, group_spans, split_batch,
};

use crate::StoreError;
use crate::clock::Clock;
use crate::head::Head;
use crate::wal::{self, SegmentEnd};

pub use stitch_pipeline::SamplingStatus;
/// Attribute on kept spans: the policy that kept the trace.
pub use stitch_pipeline::weight::POLICY_ATTRIBUTE;
/// Attribute on kept spans: the tail sampler's probability of keeping such a trace.
pub use stitch_pipeline::weight::TAIL_PROBABILITY_ATTRIBUTE as PROBABILITY_ATTRIBUTE;
/// Adaptive events kept for the API.
const RECENT_EVENTS: usize = 100;
/// How often the writer publishes the sampler's metrics for `/metrics` and the API.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// Decoded WAL records kept for reading kept traces back.
const RECORD_CACHE: usize = 16;

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

/// Reads the spans of kept traces back from the WAL records that hold them.
struct WalSpans {
    dir: PathBuf,
    /// The segment read last.
    file: Option<(u64, File)>,
    /// Recently decoded records by position: their spans by trace, taken out as used.
    records: VecDeque<(u64, HashMap<TraceId, Vec<ModelSpan>>)>,
}

impl WalSpans {
    fn new(dir: &Path) -> WalSpans {
        WalSpans {
            dir: dir.to_path_buf(),
            file: None,
            records: VecDeque::new(),
        }
    }

    /// The spans of `trace_id` in the records at `positions`, in order.
    fn take(&mut self, trace_id: &TraceId, positions: &[u64]) -> Vec<ModelSpan> {
        let mut out = Vec::new();
        for &pos in positions {
            let index = match self.records.iter().position(|(p, _)| *p == pos) {
                Some(i) => i,
                None => match self.decode(pos) {
                    Ok(by_trace) => {
                        if self.records.len() == RECORD_CACHE {
                            self.records.pop_front();
                        }
                        self.records.push_back((pos, by_trace));
                        self.records.len() - 1
                    }
                    Err(e) => {
                        tracing::error!(
                            segment = wal::position_segment(pos),
                            offset = wal::position_offset(pos),
                            trace_id = %trace_id,
                            error = %e,
                            "cannot read the spans of a kept trace back from the write-ahead log"
                        );
                        continue;
                    }
                },
            };
            if let Some(spans) = self.records[index].1.remove(trace_id) {
                out.extend(spans);
            }
        }
        out
    }

    fn decode(&mut self, pos: u64) -> Result<HashMap<TraceId, Vec<ModelSpan>>, String> {
        let segment = wal::position_segment(pos);
        if self.file.as_ref().is_none_or(|(id, _)| *id != segment) {
            let path = wal::segment_path(&self.dir, segment);
            let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            self.file = Some((segment, file));
        }
        let (_, file) = self.file.as_ref().expect("opened above");
        let (kind, body) =
            wal::read_record_at(file, wal::position_offset(pos)).map_err(|e| e.to_string())?;
        if kind != wal::KIND_OTLP_SAMPLED {
            return Err(format!(
                "record of kind {kind}, expected {}",
                wal::KIND_OTLP_SAMPLED
            ));
        }
        let decoded = stitch_wire::otlp::decode_export_request(&body).map_err(|e| e.to_string())?;
        Ok(split_batch(decoded.batch).into_iter().collect())
    }

    /// Forgets the cached records (the spans they still hold are of traces not kept).
    fn clear(&mut self) {
        self.records.clear();
    }
}

/// The writer thread's sampling state.
pub(crate) struct Sampler {
    pub tail: TailSampler<CompactSpan>,
    compactor: Compactor,
    wal: WalSpans,
    pub pass_through: bool,
    /// Body of the kind-3 record under construction: decisions not yet written.
    pending: Vec<u8>,
    pending_decisions: u64,
    events: VecDeque<AdaptiveEvent>,
    last_publish: Option<Instant>,
    decision_records: u64,
    decisions_logged: u64,
    clock: Arc<dyn Clock>,
}

impl Sampler {
    pub fn new(
        config: &SamplingConfig,
        wal_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Sampler, StoreError> {
        let tail = TailSampler::<CompactSpan>::new(config)?;
        Ok(Sampler {
            pass_through: tail.is_pass_through(),
            compactor: Compactor::new(tail.span_needs()),
            wal: WalSpans::new(wal_dir),
            tail,
            pending: Vec::new(),
            pending_decisions: 0,
            events: VecDeque::new(),
            last_publish: None,
            decision_records: 0,
            decisions_logged: 0,
            clock,
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

    /// Feeds the spans of one batch, written as the kind-2 WAL record of `record_len` bytes
    /// at `position` ([`wal::position`]), to the tail sampler.
    pub fn add(
        &mut self,
        batch: stitch_model::Batch,
        position: u64,
        record_len: usize,
        now: u64,
        kept: &mut Vec<KeptTrace>,
    ) {
        let per_span = (record_len / batch.span_count().max(1)).min(u32::MAX as usize) as u32;
        for (trace_id, spans) in split_batch(batch) {
            self.add_trace(trace_id, spans, position, per_span, now, kept);
        }
        self.wal.clear();
    }

    /// Buffers the spans of one trace from the record at `position`.
    fn add_trace(
        &mut self,
        trace_id: TraceId,
        spans: Vec<ModelSpan>,
        position: u64,
        wire_bytes_per_span: u32,
        now: u64,
        kept: &mut Vec<KeptTrace>,
    ) {
        let compact: Vec<CompactSpan> = spans
            .iter()
            .map(|s| self.compactor.compact(s, wire_bytes_per_span))
            .collect();
        let mut at_hand = Some(spans);
        for d in self.tail.add(trace_id, compact, position, now) {
            if d.reason == DecisionReason::Cached && d.trace_id == trace_id {
                // Late spans of a decided trace: the decoded spans are at hand.
                let spans = at_hand.take().unwrap_or_default();
                self.record_one(d, Some(spans), kept);
            } else {
                self.record_one(d, None, kept);
            }
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
        self.wal.clear();
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

    fn record(&mut self, decisions: Vec<Decision<CompactSpan>>, kept: &mut Vec<KeptTrace>) {
        for d in decisions {
            self.record_one(d, None, kept);
        }
    }

    /// Logs a decision and, for a kept trace, hands its spans over: `spans` when the caller
    /// has them decoded, else read back from the WAL.
    fn record_one(
        &mut self,
        d: Decision<CompactSpan>,
        spans: Option<Vec<ModelSpan>>,
        kept: &mut Vec<KeptTrace>,
    ) {
        {
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
            if verdict != wal::Verdict::Sampled || d.span_count == 0 {
                return;
            }
        }
        let spans = spans.unwrap_or_else(|| self.wal.take(&d.trace_id, &d.positions));
        if spans.len() != d.span_count as usize {
            tracing::error!(
                trace_id = %d.trace_id,
                decided = d.span_count,
                read = spans.len(),
                "a kept trace's spans in the write-ahead log differ from the ones buffered"
            );
        }
        if !spans.is_empty() {
            kept.push(prepare_kept(&d, spans));
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

    /// The oldest WAL segment holding an undecided span.
    pub fn low_watermark_segment(&mut self) -> Option<u64> {
        self.tail.low_watermark().map(wal::position_segment)
    }

    /// The store's time.
    pub fn now(&self) -> u64 {
        self.clock.unix_nanos()
    }

    /// Publishes the low watermark (every call: the flusher's deletions depend on it) and,
    /// at most every 250 ms unless `force`, the status for the API.
    pub fn publish(
        &mut self,
        watermark: &AtomicU64,
        status: &parking_lot::Mutex<SamplingStatus>,
        force: bool,
    ) {
        let low = self.low_watermark_segment();
        watermark.store(low.unwrap_or(u64::MAX), Ordering::Release);
        if !force
            && self
                .last_publish
                .is_some_and(|t| t.elapsed() < PUBLISH_EVERY)
        {
            return;
        }
        self.last_publish = Some(Instant::now());
        let now = self.now();
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
fn prepare_kept(d: &Decision<CompactSpan>, mut spans: Vec<ModelSpan>) -> KeptTrace {
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
        source: wal::position_segment(d.first_wal_pos),
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
    clock: Arc<dyn Clock>,
) -> Result<Recovered, StoreError> {
    struct Chunk {
        order: u64,
        segment: u64,
        position: u64,
        wire_bytes_per_span: u32,
        spans: Vec<ModelSpan>,
    }
    let mut head = Head::new(next_segment, clock.unix_nanos());
    let mut held: HashMap<TraceId, Vec<Chunk>> = HashMap::new();
    let mut decided: HashMap<TraceId, (bool, String)> = HashMap::new();
    let mut order = 0u64;
    let mut recovered_spans = 0u64;
    for &seg in segments {
        let path = wal::segment_path(wal_dir, seg);
        let mut bad_records = 0u64;
        let end = wal::read_segment_with_offsets(&path, |offset, kind, body| match kind {
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
                    let record_len = body.len() + 1;
                    let per_span = (record_len / decoded.batch.span_count().max(1))
                        .min(u32::MAX as usize) as u32;
                    for (trace_id, spans) in split_batch(decoded.batch) {
                        order += 1;
                        held.entry(trace_id).or_default().push(Chunk {
                            order,
                            segment: seg,
                            position: wal::position(seg, offset),
                            wire_bytes_per_span: per_span,
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
        match end {
            SegmentEnd::Clean => {}
            // Nothing valid follows: a write that failed or was cut short by a crash, never
            // acknowledged (the writer seals a segment after any failed write).
            SegmentEnd::Torn { offset, reason } => tracing::info!(
                segment = %path.display(),
                offset,
                %reason,
                "WAL segment ends in an unfinished write, which was never acknowledged; it is ignored"
            ),
            SegmentEnd::Damaged {
                offset,
                reason,
                resume,
            } => {
                return Err(StoreError::WalDamaged {
                    path,
                    offset,
                    reason,
                    resume,
                });
            }
        }
    }

    let mut sampler = Sampler::new(config, wal_dir, clock)?;
    let now = sampler.now();
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
        sampler.add_trace(
            trace_id,
            c.spans,
            c.position,
            c.wire_bytes_per_span,
            now,
            &mut kept,
        );
    }
    sampler.wal.clear();
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
