//! The tail sampler: buffers spans by trace id, decides whole traces, remembers decisions.
//!
//! # Life of a trace
//!
//! 1. [`TailSampler::add`] buffers spans under their trace id together with a small summary
//!    (span count, bytes, time range, status codes seen, root seen) and the smallest WAL
//!    position the caller gave for them.
//! 2. The trace is due `decision_wait` after its first span arrived, or
//!    `decision_wait_after_root` after its root span arrived if that is earlier.
//!    [`TailSampler::tick`] decides every due trace: all policies are evaluated on the whole
//!    trace ([`crate::policy`]), the adaptive controller may keep more of a service's
//!    traffic, and the verdict goes into the sampled or not-sampled decision cache (LRUs).
//! 3. Spans of a decided trace that arrive later follow the cached decision at once (they
//!    come back from `add` as a [`Decision`] with reason [`DecisionReason::Cached`]). Only
//!    when the cache has forgotten the trace is it buffered and decided anew.
//! 4. When the buffer would exceed `max_buffered_bytes` or `num_traces`, `add` decides the
//!    oldest traces early (first-arrived first) instead of growing: after `add` returns, the
//!    estimate is within budget again, so it never exceeds the budget by more than the
//!    spans of the one `add` call that is in progress.
//!
//! Every [`Decision`] hands back the spans of a kept trace (for the store) and says which
//! policy kept it and with what probability, or that the trace was not kept.
//!
//! # Clock
//!
//! Every call takes `now` in nanoseconds (Unix time in the server). Nothing here reads a
//! clock, sleeps or spawns. A `now` smaller than one seen before is treated as the latest
//! one seen.
//!
//! # Memory accounting
//!
//! [`TailSampler::buffered_bytes`] is the sum, over buffered traces, of
//!
//! * each span's [`SpanRecord::size_bytes`] (the record's inline size plus the heap it owns:
//!   for [`crate::span::ModelSpan`], the `Span` with its strings, attributes, events and
//!   links, plus the two `Arc` pointers to the shared resource and scope);
//! * per `add` call that contributed spans (a chunk): the boxed slice pointer in the trace's
//!   chunk list and an allocation header ([`ALLOC_OVERHEAD`]);
//! * per trace: its hash-map slot (trace id + summary + control byte), its entry in the
//!   first-arrival queue, its entry in the root queue when it has one, and the capacity of
//!   its chunk list.
//!
//! Not counted: shared resources and scopes (one per export request, shared by all its
//! spans), the hash map's spare capacity, queue entries of traces already decided (they
//! leave the queues when their deadline passes) and the decision caches (reported
//! separately in [`TailMetrics::decision_cache_bytes`]). Overhead beyond the span itself is
//! therefore 16 bytes per span, plus ~48 bytes per chunk and ~170 bytes per trace: about
//! 50 bytes per span for 10-span traces arriving in three batches.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::mem::size_of;
use std::sync::Arc;

use serde::Serialize;
use stitch_model::{StatusCode, TraceId};

use crate::adaptive::{AdaptiveEvent, ErrorRateController, ServiceState};
use crate::config::{ConfigError, SamplingConfig};
use crate::lru::Lru;
use crate::policy::{
    DEFAULT_HASH_SALT, Outcome, PolicySet, SpanSource, TraceData, hash_threshold, hash_trace_id,
    status_bit,
};
use crate::span::{SpanRecord, SpanView};

/// Bytes an allocation costs beyond what it holds (allocator header and rounding), as
/// counted by the estimate.
pub const ALLOC_OVERHEAD: usize = 16;

/// The name recorded for traces kept because no policy is configured.
pub const KEEP_ALL: &str = "keep_all";
/// The name recorded for traces kept by the adaptive controller.
pub const ADAPTIVE: &str = "adaptive";
/// The name recorded for decisions restored with [`TailSampler::restore_decision`].
pub const RESTORED: &str = "restored";

/// The verdict on a trace.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Sampled {
        /// The policy that kept it (`composite/sub` for a composite's sub-policy, `adaptive`,
        /// `keep_all`, `restored`).
        policy: Arc<str>,
        /// The probability that a trace like this is kept, when known: 1 for deterministic
        /// policies (errors, latency, attributes), the percentage for probabilistic ones,
        /// `None` for rate limits. Scale counts by `1 / probability`.
        probability: Option<f64>,
    },
    /// No policy kept it.
    NotSampled,
    /// A `drop` policy matched.
    Dropped { policy: Arc<str> },
}

impl Verdict {
    pub fn is_sampled(&self) -> bool {
        matches!(self, Verdict::Sampled { .. })
    }

    /// The policy that kept the trace, if it was kept.
    pub fn kept_by(&self) -> Option<&str> {
        match self {
            Verdict::Sampled { policy, .. } => Some(policy),
            _ => None,
        }
    }
}

/// Why a decision was made when it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionReason {
    /// `decision_wait` after the first span.
    DecisionWait,
    /// `decision_wait_after_root` after the root span.
    AfterRoot,
    /// Early, to stay within `max_buffered_bytes`.
    ByteBudget,
    /// Early, to stay within `num_traces`.
    TraceLimit,
    /// [`TailSampler::flush_all`] (shutdown).
    Flush,
    /// Late spans of a trace already decided: the cached decision.
    Cached,
    /// No policies: every span is kept without buffering.
    PassThrough,
    /// [`TailSampler::restore_decision`] (recovery).
    Restored,
}

/// A decision on a trace (or on late spans of a decided trace).
#[derive(Debug)]
pub struct Decision<S> {
    pub trace_id: TraceId,
    pub verdict: Verdict,
    pub reason: DecisionReason,
    /// The kept spans, to be stored; empty unless the verdict is `Sampled`.
    pub spans: Vec<S>,
    /// Spans this decision covers (kept or not).
    pub span_count: u32,
    /// Smallest WAL position of the decided spans (as given to `add`).
    pub first_wal_pos: u64,
    /// The WAL positions given to `add` for the decided spans, in arrival order, each once:
    /// where a caller that buffers reduced records finds the spans again.
    pub positions: Vec<u64>,
    /// When the trace's first span was buffered (for `Cached`: when these spans arrived).
    pub first_seen_unix_nanos: u64,
    pub decided_at_unix_nanos: u64,
}

/// Counters and gauges for `/metrics` and the API.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TailMetrics {
    pub buffered_traces: u64,
    pub buffered_spans: u64,
    pub buffered_bytes: u64,
    pub max_buffered_bytes: u64,
    /// Traces that entered the buffer.
    pub traces_received: u64,
    pub spans_received: u64,
    pub traces_sampled: u64,
    pub traces_not_sampled: u64,
    /// Traces a `drop` policy removed (also counted in `traces_not_sampled`).
    pub traces_dropped: u64,
    pub spans_sampled: u64,
    pub spans_not_sampled: u64,
    /// Traces kept, by the policy that kept them.
    pub sampled_by_policy: BTreeMap<String, u64>,
    /// Traces dropped, by drop policy.
    pub dropped_by_policy: BTreeMap<String, u64>,
    /// How often each top-level policy voted to sample (drop policies: matched).
    pub policy_votes: BTreeMap<String, u64>,
    pub decided_after_wait: u64,
    pub decided_after_root: u64,
    /// Traces decided early because of the byte budget (evicted from the buffer).
    pub early_decisions_byte_budget: u64,
    /// Traces decided early because of `num_traces`.
    pub early_decisions_trace_limit: u64,
    pub decided_on_flush: u64,
    pub late_spans_sampled: u64,
    pub late_spans_not_sampled: u64,
    /// Decisions the caches forgot to make room.
    pub decision_cache_evictions: u64,
    pub decision_cache_entries: u64,
    pub decision_cache_bytes: u64,
    /// Traces kept by the adaptive controller's raised rate.
    pub adaptive_sampled_traces: u64,
}

struct Pending<S> {
    seq: u64,
    first_seen: u64,
    first_pos: u64,
    start_min: u64,
    end_max: u64,
    bytes: u64,
    wire_bytes: u64,
    span_count: u32,
    status_mask: u8,
    root_seen: bool,
    sampled_flag: bool,
    /// The spans of each `add` call, with the WAL position given for them.
    chunks: Vec<(u64, Box<[S]>)>,
}

impl<S> Pending<S> {
    /// The distinct positions of the chunks, in arrival order.
    fn positions(&self) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::with_capacity(self.chunks.len());
        for (pos, _) in &self.chunks {
            if !out.contains(pos) {
                out.push(*pos);
            }
        }
        out
    }

    fn into_spans(self) -> Vec<S> {
        self.chunks
            .into_iter()
            .flat_map(|(_, c)| c.into_vec())
            .collect()
    }
}

#[derive(Clone, Copy)]
struct QueueItem {
    deadline: u64,
    seq: u64,
    trace_id: TraceId,
}

struct Chunks<'a, S>(&'a [(u64, Box<[S]>)]);

impl<S: SpanRecord> SpanSource for Chunks<'_, S> {
    fn any_span(&self, f: &mut dyn FnMut(&SpanView<'_>) -> bool) -> bool {
        self.0
            .iter()
            .flat_map(|(_, c)| c.iter())
            .any(|s| f(&s.view()))
    }
}

/// The tail sampler, generic over the span record it buffers.
pub struct TailSampler<S: SpanRecord> {
    wait: u64,
    after_root: u64,
    max_bytes: u64,
    max_traces: usize,
    policies: PolicySet,
    pass_through: bool,
    pending: HashMap<TraceId, Pending<S>>,
    by_first: VecDeque<QueueItem>,
    by_root: VecDeque<QueueItem>,
    /// Kept traces: index into `names`.
    sampled_cache: Lru<TraceId, u16>,
    not_sampled_cache: Lru<TraceId, ()>,
    names: Vec<Arc<str>>,
    name_index: HashMap<Arc<str>, u16>,
    kept_by_name: Vec<u64>,
    dropped_by_policy: Vec<u64>,
    bytes: u64,
    spans: u64,
    next_seq: u64,
    last_now: u64,
    m: TailMetrics,
    adaptive: Option<ErrorRateController>,
    adaptive_events: Vec<AdaptiveEvent>,
}

impl<S: SpanRecord> TailSampler<S> {
    /// A sampler for `config`, which is validated first (see [`SamplingConfig::validate`]).
    pub fn new(config: &SamplingConfig) -> Result<TailSampler<S>, ConfigError> {
        config.validate()?;
        let policies = PolicySet::compile(&config.effective_policies());
        let adaptive = config.adaptive.enabled.then(|| {
            ErrorRateController::new(&config.adaptive, policies.base_percentage().unwrap_or(0.0))
        });
        let pass_through = policies.is_empty() && adaptive.is_none();
        let mut s = TailSampler {
            wait: config.decision_wait.as_nanos() as u64,
            after_root: config.decision_wait_after_root.as_nanos() as u64,
            max_bytes: config.max_buffered_bytes,
            max_traces: config.num_traces.max(1),
            dropped_by_policy: vec![0; policies.len()],
            policies,
            pass_through,
            pending: HashMap::new(),
            by_first: VecDeque::new(),
            by_root: VecDeque::new(),
            sampled_cache: Lru::new(config.decision_cache.sampled_cache_size),
            not_sampled_cache: Lru::new(config.decision_cache.non_sampled_cache_size),
            names: Vec::new(),
            name_index: HashMap::new(),
            kept_by_name: Vec::new(),
            bytes: 0,
            spans: 0,
            next_seq: 0,
            last_now: 0,
            m: TailMetrics {
                max_buffered_bytes: config.max_buffered_bytes,
                ..TailMetrics::default()
            },
            adaptive,
            adaptive_events: Vec::new(),
        };
        for name in [KEEP_ALL, ADAPTIVE, RESTORED] {
            s.intern(&Arc::from(name));
        }
        for i in 0..s.policies.len() {
            let name = s.policies.name(i).clone();
            s.intern(&name);
        }
        Ok(s)
    }

    fn intern(&mut self, name: &Arc<str>) -> u16 {
        if let Some(&i) = self.name_index.get(name) {
            return i;
        }
        let i = self.names.len().min(u16::MAX as usize) as u16;
        if (i as usize) == self.names.len() {
            self.names.push(name.clone());
            self.kept_by_name.push(0);
            self.name_index.insert(name.clone(), i);
        }
        i
    }

    fn clock(&mut self, now: u64) -> u64 {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    /// The span fields the configured policies read (see [`crate::CompactSpan`]).
    pub fn span_needs(&self) -> crate::SpanNeeds {
        self.policies.span_needs()
    }

    /// True when nothing is buffered because no policy can drop a trace.
    pub fn is_pass_through(&self) -> bool {
        self.pass_through
    }

    /// Buffers the spans of one trace that arrived together (all must have `trace_id`).
    /// `wal_pos` is the caller's durable position of these spans (e.g. WAL segment number),
    /// non-decreasing across calls; see [`TailSampler::low_watermark`].
    ///
    /// Returns decisions that could be made at once: late spans of an already decided trace,
    /// every span when no policy is configured, and traces decided early to respect the
    /// budget.
    pub fn add(
        &mut self,
        trace_id: TraceId,
        spans: Vec<S>,
        wal_pos: u64,
        now: u64,
    ) -> Vec<Decision<S>> {
        let now = self.clock(now);
        if spans.is_empty() {
            return Vec::new();
        }
        let n = spans.len() as u32;
        self.m.spans_received += n as u64;
        if self.pass_through {
            self.m.traces_sampled += 1;
            self.m.spans_sampled += n as u64;
            self.kept_by_name[0] += 1;
            return vec![Decision {
                trace_id,
                verdict: Verdict::Sampled {
                    policy: self.names[0].clone(),
                    probability: Some(1.0),
                },
                reason: DecisionReason::PassThrough,
                spans,
                span_count: n,
                first_wal_pos: wal_pos,
                positions: vec![wal_pos],
                first_seen_unix_nanos: now,
                decided_at_unix_nanos: now,
            }];
        }
        if !self.pending.contains_key(&trace_id) {
            if let Some(&idx) = self.sampled_cache.get(&trace_id) {
                self.m.late_spans_sampled += n as u64;
                self.m.spans_sampled += n as u64;
                return vec![Decision {
                    trace_id,
                    verdict: Verdict::Sampled {
                        policy: self.names[idx as usize].clone(),
                        probability: None,
                    },
                    reason: DecisionReason::Cached,
                    spans,
                    span_count: n,
                    first_wal_pos: wal_pos,
                    positions: vec![wal_pos],
                    first_seen_unix_nanos: now,
                    decided_at_unix_nanos: now,
                }];
            }
            if self.not_sampled_cache.get(&trace_id).is_some() {
                self.m.late_spans_not_sampled += n as u64;
                self.m.spans_not_sampled += n as u64;
                return vec![Decision {
                    trace_id,
                    verdict: Verdict::NotSampled,
                    reason: DecisionReason::Cached,
                    spans: Vec::new(),
                    span_count: n,
                    first_wal_pos: wal_pos,
                    positions: vec![wal_pos],
                    first_seen_unix_nanos: now,
                    decided_at_unix_nanos: now,
                }];
            }
        }
        self.buffer(trace_id, spans, wal_pos, now);
        let mut out = Vec::new();
        while self.bytes > self.max_bytes || self.pending.len() > self.max_traces {
            let reason = if self.bytes > self.max_bytes {
                DecisionReason::ByteBudget
            } else {
                DecisionReason::TraceLimit
            };
            match self.pop_oldest() {
                Some(id) => out.push(self.decide(id, reason, now)),
                None => break,
            }
        }
        out
    }

    fn buffer(&mut self, trace_id: TraceId, spans: Vec<S>, wal_pos: u64, now: u64) {
        let trace_overhead =
            (size_of::<(TraceId, Pending<S>)>() + 1 + size_of::<QueueItem>()) as u64;
        let is_new = !self.pending.contains_key(&trace_id);
        if is_new {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.pending.insert(
                trace_id,
                Pending {
                    seq,
                    first_seen: now,
                    first_pos: wal_pos,
                    start_min: u64::MAX,
                    end_max: 0,
                    bytes: trace_overhead,
                    wire_bytes: 0,
                    span_count: 0,
                    status_mask: 0,
                    root_seen: false,
                    sampled_flag: false,
                    chunks: Vec::new(),
                },
            );
            self.by_first.push_back(QueueItem {
                deadline: now.saturating_add(self.wait),
                seq,
                trace_id,
            });
            self.bytes += trace_overhead;
            self.m.traces_received += 1;
        }
        let p = self.pending.get_mut(&trace_id).expect("inserted above");
        let mut added: u64 = (size_of::<(u64, Box<[S]>)>() + ALLOC_OVERHEAD) as u64;
        let mut root_now = false;
        for s in &spans {
            let v = s.view();
            p.start_min = p.start_min.min(v.start_unix_nano);
            p.end_max = p.end_max.max(v.end_unix_nano);
            p.status_mask |= status_bit(v.status);
            p.sampled_flag |= v.flags & 1 == 1;
            if v.is_root && !p.root_seen {
                p.root_seen = true;
                root_now = true;
            }
            added += s.size_bytes() as u64;
            p.wire_bytes += s.wire_bytes() as u64;
        }
        let n = spans.len() as u32;
        let old_cap = p.chunks.capacity();
        p.chunks.push((wal_pos, spans.into_boxed_slice()));
        let new_cap = p.chunks.capacity();
        if new_cap != old_cap {
            added += ((new_cap - old_cap) * size_of::<(u64, Box<[S]>)>()) as u64;
            if old_cap == 0 {
                added += ALLOC_OVERHEAD as u64;
            }
        }
        p.span_count += n;
        p.first_pos = p.first_pos.min(wal_pos);
        if root_now && self.after_root > 0 {
            let deadline = now.saturating_add(self.after_root);
            if deadline < p.first_seen.saturating_add(self.wait) {
                self.by_root.push_back(QueueItem {
                    deadline,
                    seq: p.seq,
                    trace_id,
                });
                added += size_of::<QueueItem>() as u64;
            }
        }
        p.bytes += added;
        self.bytes += added;
        self.spans += n as u64;
    }

    fn is_live(&self, item: &QueueItem) -> bool {
        self.pending
            .get(&item.trace_id)
            .is_some_and(|p| p.seq == item.seq)
    }

    /// The oldest buffered trace (by first arrival), removing stale queue entries.
    fn pop_oldest(&mut self) -> Option<TraceId> {
        while let Some(item) = self.by_first.pop_front() {
            if self.is_live(&item) {
                return Some(item.trace_id);
            }
        }
        None
    }

    /// Decides every trace whose wait is over.
    pub fn tick(&mut self, now: u64) -> Vec<Decision<S>> {
        let now = self.clock(now);
        let mut out = Vec::new();
        // Both queues are ordered by deadline; take whichever is due first.
        loop {
            let first = self
                .by_first
                .front()
                .map(|i| i.deadline)
                .filter(|d| *d <= now);
            let root = self
                .by_root
                .front()
                .map(|i| i.deadline)
                .filter(|d| *d <= now);
            let (item, reason) = match (first, root) {
                (None, None) => break,
                (Some(f), Some(r)) if r <= f => {
                    (self.by_root.pop_front(), DecisionReason::AfterRoot)
                }
                (Some(_), _) => (self.by_first.pop_front(), DecisionReason::DecisionWait),
                (None, Some(_)) => (self.by_root.pop_front(), DecisionReason::AfterRoot),
            };
            let item = item.expect("front was there");
            if self.is_live(&item) {
                out.push(self.decide(item.trace_id, reason, now));
            }
        }
        if let Some(a) = &mut self.adaptive {
            self.adaptive_events.extend(a.evaluate(now));
        }
        // Give memory back after a burst.
        if self.pending.capacity() > 1024 && self.pending.len() < self.pending.capacity() / 4 {
            self.pending.shrink_to(self.pending.len() * 2);
        }
        for q in [&mut self.by_first, &mut self.by_root] {
            if q.capacity() > 1024 && q.len() < q.capacity() / 4 {
                q.shrink_to(q.len() * 2);
            }
        }
        out
    }

    /// Decides every buffered trace now (shutdown, or before handing state over).
    pub fn flush_all(&mut self, now: u64) -> Vec<Decision<S>> {
        let now = self.clock(now);
        let mut out = Vec::with_capacity(self.pending.len());
        while let Some(id) = self.pop_oldest() {
            out.push(self.decide(id, DecisionReason::Flush, now));
        }
        self.by_root.clear();
        out
    }

    /// Applies a decision made before a restart (recovery replaying a WAL decision record):
    /// caches it and, if the trace is buffered, decides it so. Returns the buffered spans as
    /// a decision (kept spans included when `sampled`).
    pub fn restore_decision(
        &mut self,
        trace_id: TraceId,
        sampled: bool,
        now: u64,
    ) -> Option<Decision<S>> {
        self.restore_decision_as(trace_id, sampled, None, now)
    }

    /// [`TailSampler::restore_decision`] that remembers the policy that kept the trace (as
    /// recorded before the restart), so late spans report it too. `None` records
    /// [`RESTORED`].
    pub fn restore_decision_as(
        &mut self,
        trace_id: TraceId,
        sampled: bool,
        policy: Option<&str>,
        now: u64,
    ) -> Option<Decision<S>> {
        let now = self.clock(now);
        let idx = match policy {
            Some(name) if !name.is_empty() => self.intern(&Arc::from(name)),
            _ => 2,
        };
        let name = self.names[idx as usize].clone();
        if sampled {
            self.insert_sampled(trace_id, idx);
        } else {
            self.insert_not_sampled(trace_id);
        }
        let p = self.remove_pending(trace_id)?;
        let positions = p.positions();
        let (span_count, first_pos, first_seen) = (p.span_count, p.first_pos, p.first_seen);
        let spans: Vec<S> = if sampled { p.into_spans() } else { Vec::new() };
        Some(Decision {
            trace_id,
            verdict: if sampled {
                Verdict::Sampled {
                    policy: name,
                    probability: None,
                }
            } else {
                Verdict::NotSampled
            },
            reason: DecisionReason::Restored,
            spans,
            span_count,
            first_wal_pos: first_pos,
            positions,
            first_seen_unix_nanos: first_seen,
            decided_at_unix_nanos: now,
        })
    }

    fn remove_pending(&mut self, trace_id: TraceId) -> Option<Pending<S>> {
        let p = self.pending.remove(&trace_id)?;
        self.bytes -= p.bytes;
        self.spans -= p.span_count as u64;
        Some(p)
    }

    fn insert_sampled(&mut self, trace_id: TraceId, idx: u16) {
        if self.sampled_cache.insert(trace_id, idx).is_some() {
            self.m.decision_cache_evictions += 1;
        }
    }

    fn insert_not_sampled(&mut self, trace_id: TraceId) {
        if self.not_sampled_cache.insert(trace_id, ()).is_some() {
            self.m.decision_cache_evictions += 1;
        }
    }

    fn decide(&mut self, trace_id: TraceId, reason: DecisionReason, now: u64) -> Decision<S> {
        let p = self.remove_pending(trace_id).expect("caller checked");
        let data = TraceData {
            trace_id,
            span_count: p.span_count as u64,
            bytes: p.wire_bytes,
            start_min: p.start_min,
            end_max: p.end_max,
            status_mask: p.status_mask,
            sampled_flag: p.sampled_flag,
            spans: &Chunks(&p.chunks),
        };
        let mut boost: Option<f64> = None;
        if let Some(a) = &mut self.adaptive {
            // One observation per service the trace touched: did it fail there?
            let mut seen: Vec<(&str, bool)> = Vec::new();
            for s in p.chunks.iter().flat_map(|(_, c)| c.iter()) {
                let v = s.view();
                let err = v.status == StatusCode::Error;
                match seen.iter_mut().find(|(name, _)| *name == v.service) {
                    Some(e) => e.1 |= err,
                    None => seen.push((v.service, err)),
                }
            }
            for (service, err) in &seen {
                a.observe(service, *err, now);
            }
            boost = seen
                .iter()
                .filter_map(|(service, _)| a.boost_percentage(service))
                .reduce(f64::max);
        }
        let mut outcome = self.policies.decide(&data, now);
        if let Some(b) = boost {
            match &mut outcome {
                Outcome::NotSampled
                    if hash_trace_id(DEFAULT_HASH_SALT.as_bytes(), &trace_id)
                        <= hash_threshold(b / 100.0) =>
                {
                    self.m.adaptive_sampled_traces += 1;
                    outcome = Outcome::Sampled {
                        policy: usize::MAX,
                        name: self.names[1].clone(),
                        probability: Some(b / 100.0),
                    };
                }
                // While boosted, a trace like this one is kept when a probabilistic policy or
                // the boost keeps it: with the same hash (the default salt), the larger of the
                // two percentages. (A policy with its own `hash_salt` decides independently of
                // the boost, and the true probability, 1 - (1 - p)(1 - b), is a little higher
                // than the one recorded.)
                Outcome::Sampled {
                    probability: Some(p),
                    ..
                } if *p < 1.0 => *p = p.max(b / 100.0),
                _ => {}
            }
        }
        match reason {
            DecisionReason::DecisionWait => self.m.decided_after_wait += 1,
            DecisionReason::AfterRoot => self.m.decided_after_root += 1,
            DecisionReason::ByteBudget => self.m.early_decisions_byte_budget += 1,
            DecisionReason::TraceLimit => self.m.early_decisions_trace_limit += 1,
            DecisionReason::Flush => self.m.decided_on_flush += 1,
            _ => {}
        }
        let positions = p.positions();
        let (span_count, first_pos, first_seen) = (p.span_count, p.first_pos, p.first_seen);
        let (verdict, spans) = match outcome {
            Outcome::Sampled {
                name, probability, ..
            } => {
                let idx = self.intern(&name);
                self.kept_by_name[idx as usize] += 1;
                self.insert_sampled(trace_id, idx);
                self.m.traces_sampled += 1;
                self.m.spans_sampled += span_count as u64;
                let spans: Vec<S> = p.into_spans();
                (
                    Verdict::Sampled {
                        policy: name,
                        probability,
                    },
                    spans,
                )
            }
            Outcome::NotSampled => {
                self.insert_not_sampled(trace_id);
                self.m.traces_not_sampled += 1;
                self.m.spans_not_sampled += span_count as u64;
                (Verdict::NotSampled, Vec::new())
            }
            Outcome::Dropped { policy } => {
                self.insert_not_sampled(trace_id);
                self.m.traces_not_sampled += 1;
                self.m.traces_dropped += 1;
                self.m.spans_not_sampled += span_count as u64;
                self.dropped_by_policy[policy] += 1;
                (
                    Verdict::Dropped {
                        policy: self.policies.name(policy).clone(),
                    },
                    Vec::new(),
                )
            }
        };
        Decision {
            trace_id,
            verdict,
            reason,
            spans,
            span_count,
            first_wal_pos: first_pos,
            positions,
            first_seen_unix_nanos: first_seen,
            decided_at_unix_nanos: now,
        }
    }

    /// The smallest WAL position of any buffered span: WAL segments before it hold no
    /// undecided span. `None` when nothing is buffered. Assumes positions given to `add`
    /// never decrease.
    pub fn low_watermark(&mut self) -> Option<u64> {
        while let Some(item) = self.by_first.front() {
            if let Some(p) = self.pending.get(&item.trace_id)
                && p.seq == item.seq
            {
                return Some(p.first_pos);
            }
            self.by_first.pop_front();
        }
        None
    }

    /// When `tick` next has work, if anything is buffered (may be early, never late).
    pub fn next_deadline(&self) -> Option<u64> {
        [self.by_first.front(), self.by_root.front()]
            .into_iter()
            .flatten()
            .map(|i| i.deadline)
            .min()
    }

    /// Estimated bytes held by buffered traces (see the module docs for what is counted).
    pub fn buffered_bytes(&self) -> u64 {
        self.bytes
    }

    pub fn buffered_traces(&self) -> usize {
        self.pending.len()
    }

    pub fn buffered_spans(&self) -> u64 {
        self.spans
    }

    /// Whether a trace is buffered (undecided).
    pub fn is_buffered(&self, trace_id: &TraceId) -> bool {
        self.pending.contains_key(trace_id)
    }

    /// The cached decision for a trace id, if any: `Some(true)` kept, `Some(false)` not.
    pub fn cached_decision(&self, trace_id: &TraceId) -> Option<bool> {
        if self.sampled_cache.peek(trace_id).is_some() {
            Some(true)
        } else if self.not_sampled_cache.peek(trace_id).is_some() {
            Some(false)
        } else {
            None
        }
    }

    /// A snapshot of the counters and gauges.
    pub fn metrics(&self) -> TailMetrics {
        let mut m = self.m.clone();
        m.buffered_traces = self.pending.len() as u64;
        m.buffered_spans = self.spans;
        m.buffered_bytes = self.bytes;
        m.decision_cache_entries = (self.sampled_cache.len() + self.not_sampled_cache.len()) as u64;
        m.decision_cache_bytes =
            (self.sampled_cache.memory_bytes() + self.not_sampled_cache.memory_bytes()) as u64;
        m.sampled_by_policy = self
            .names
            .iter()
            .zip(&self.kept_by_name)
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| (name.to_string(), *n))
            .collect();
        m.dropped_by_policy = (0..self.policies.len())
            .filter(|i| self.dropped_by_policy[*i] > 0)
            .map(|i| (self.policies.name(i).to_string(), self.dropped_by_policy[i]))
            .collect();
        m.policy_votes = (0..self.policies.len())
            .map(|i| (self.policies.name(i).to_string(), self.policies.votes[i]))
            .collect();
        m
    }

    /// Adaptive changes since the last call, for the caller to log and expose.
    pub fn take_adaptive_events(&mut self) -> Vec<AdaptiveEvent> {
        std::mem::take(&mut self.adaptive_events)
    }

    /// The adaptive controller's per-service state (empty when adaptive is off).
    pub fn adaptive_state(&self, now: u64) -> Vec<ServiceState> {
        self.adaptive
            .as_ref()
            .map(|a| a.snapshot(now))
            .unwrap_or_default()
    }
}

/// What the tail sampler of a store is doing, as the store publishes it (the store's WAL
/// writer, at most every 250 ms).
#[derive(Clone, Debug, Default, serde::Serialize)]
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
