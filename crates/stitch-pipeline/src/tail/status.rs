//! What the tail sampler reports: the WAL low watermark, buffer sizes, metrics, adaptive
//! state, and the status a store publishes.

use super::*;

impl<S: SpanRecord> TailSampler<S> {
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
