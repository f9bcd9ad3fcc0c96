//! Deciding a buffered trace: running the policies, the decision caches, and decisions
//! restored from the WAL after a restart.

use super::*;

impl<S: SpanRecord> TailSampler<S> {
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

    pub(super) fn remove_pending(&mut self, trace_id: TraceId) -> Option<Pending<S>> {
        let p = self.pending.remove(&trace_id)?;
        self.bytes -= p.bytes;
        self.spans -= p.span_count as u64;
        Some(p)
    }

    pub(super) fn insert_sampled(&mut self, trace_id: TraceId, idx: u16) {
        if self.sampled_cache.insert(trace_id, idx).is_some() {
            self.m.decision_cache_evictions += 1;
        }
    }

    pub(super) fn insert_not_sampled(&mut self, trace_id: TraceId) {
        if self.not_sampled_cache.insert(trace_id, ()).is_some() {
            self.m.decision_cache_evictions += 1;
        }
    }

    pub(super) fn decide(
        &mut self,
        trace_id: TraceId,
        reason: DecisionReason,
        now: u64,
    ) -> Decision<S> {
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
}
