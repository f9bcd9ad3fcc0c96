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

mod decide;
mod status;

pub use status::SamplingStatus;

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
        let policies = PolicySet::compile(&config.effective_policies())?;
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
}
