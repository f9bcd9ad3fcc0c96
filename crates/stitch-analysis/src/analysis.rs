//! [`analyze`]: everything Stitch computes about one trace, ready to serialise.
//!
//! The steps, each O(n log n) or better in the number of spans:
//!
//! 1. build the [`SpanTree`];
//! 2. compute the clock-skew shifts ([`crate::skew`]) — the trace itself is not copied, the
//!    analysis works on shifted times;
//! 3. clamp every span into its parent and index children ([`crate::timeline`]);
//! 4. walk the critical path from the primary root ([`crate::critical_path`]);
//! 5. aggregate statistics ([`crate::stats`]);
//! 6. run the finding detectors ([`crate::findings`]).
//!
//! # Cost
//!
//! No step compares spans all against all: siblings are grouped per parent (sorting and
//! hashing), the critical-path walk visits each span once, and a call is classified only when
//! a detector asks (detectors about groups of sibling calls skip parents whose children cannot
//! cost enough to be reported). A large trace is mostly memory traffic: its spans, names and
//! attributes are scattered allocations, so each pass that reads them costs a cache miss per
//! span; the timeline reads what the later steps need (times, kinds, a number per operation)
//! in one pass into arrays. `bench/analysis.sh`: 2.2 ms for 10,000 spans, 45 ms for 100,000
//! (BENCHMARKS.md).
//!
//! The JSON form (served as `GET /api/v1/traces/{id}/analysis`) uses camelCase field names,
//! lower-case hex ids, decimal-string Unix-nanosecond timestamps and number nanosecond
//! durations.

use serde::Serialize;
use stitch_model::{SpanId, Trace, TraceId};

use crate::critical_path::{self, CriticalPath, CriticalPathSection, PathIndex};
use crate::findings::{self, AnalysisOptions, Ctx, Finding, FindingKind};
use crate::json;
use crate::propagation::BrokenHop;
use crate::render::format_duration;
use crate::skew::{self, SkewAdjustment};
use crate::stats::{self, TraceStats};
use crate::timeline::Timeline;
use crate::tree::SpanTree;

/// The analysis of one trace.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceAnalysis {
    #[serde(serialize_with = "json::trace_id")]
    pub trace_id: TraceId,
    /// Earliest start over all spans (after skew adjustment).
    #[serde(serialize_with = "json::u64_string")]
    pub start_unix_nano: u64,
    /// From the earliest start to the latest end over all spans (after skew adjustment).
    pub duration_nanos: u64,
    pub span_count: usize,
    /// Roots of the tree (more than one: orphans or broken propagation).
    pub root_count: usize,
    /// Spans moved by the clock-skew adjustment, with their original times.
    pub skew_adjustments: Vec<SkewAdjustment>,
    pub critical_path: CriticalPath,
    pub stats: TraceStats,
    /// Ranked by cost, most expensive first.
    pub findings: Vec<Finding>,
}

impl TraceAnalysis {
    /// Adds what `hops` say about this trace to its findings. `hops` come from
    /// [`crate::find_broken_propagation`] run with [`crate::PropagationOptions::focus_trace`]
    /// set to this trace over it and its neighbours in time: for each hop, its first example
    /// is this trace's occurrence.
    ///
    /// When this trace holds the caller, the finding is on the caller's span and costs its
    /// critical-path time (a dominant-leaf finding on the same span is replaced: it described
    /// the same wait as "a call that leaves the trace"). When it holds the callee, the finding
    /// is on the callee's root and costs nothing here (the missing time is the caller's); it
    /// names the caller's trace.
    pub fn add_broken_propagation(&mut self, hops: &[BrokenHop]) {
        let me = self.trace_id.to_hex();
        for hop in hops {
            let Some(ex) = hop.examples.first() else {
                continue;
            };
            let cause = hop.cause.describe();
            let times = if hop.occurrences > 1 {
                format!("; the hop broke {} times in the window", hop.occurrences)
            } else {
                String::new()
            };
            let mut f = if ex.caller_trace_id == me {
                let Ok(span) = SpanId::from_hex(&ex.caller_span_id) else {
                    continue;
                };
                let cost: u64 = self
                    .critical_path
                    .sections
                    .iter()
                    .filter(|s| s.span_id == span)
                    .map(CriticalPathSection::duration_nanos)
                    .sum();
                self.findings.retain(|f| {
                    !(f.kind == FindingKind::DominantLeaf && f.spans.first() == Some(&span))
                });
                Finding {
                    title: format!(
                        "{} {:?} called {} {:?}, which did not receive the trace context \
                         ({cause}{times}): the rest of this request is trace {}; here the call \
                         is {} of waiting with nothing under it",
                        hop.caller_service,
                        hop.caller_operation,
                        hop.callee_service,
                        hop.callee_operation,
                        ex.callee_trace_id,
                        format_duration(cost),
                    ),
                    spans: vec![span],
                    cost_nanos: cost,
                    ..finding_base(hop)
                }
            } else if ex.callee_trace_id == me {
                let Ok(span) = SpanId::from_hex(&ex.callee_span_id) else {
                    continue;
                };
                Finding {
                    title: format!(
                        "This trace is the {} {:?} part of a request from {} {:?} (trace {}): \
                         the trace context was lost on the way ({cause}{times})",
                        hop.callee_service,
                        hop.callee_operation,
                        hop.caller_service,
                        hop.caller_operation,
                        ex.caller_trace_id,
                    ),
                    spans: vec![span],
                    ..finding_base(hop)
                }
            } else {
                continue;
            };
            f.count = Some(hop.occurrences as u32);
            let at = self
                .findings
                .iter()
                .position(|g| g.cost_nanos < f.cost_nanos)
                .unwrap_or(self.findings.len());
            self.findings.insert(at, f);
        }
    }
}

/// The fields of a broken-propagation finding that do not depend on the side.
fn finding_base(hop: &BrokenHop) -> Finding {
    Finding {
        kind: FindingKind::BrokenPropagation,
        title: String::new(),
        spans: Vec::new(),
        cost_nanos: 0,
        saving_nanos: None,
        service: hop.caller_service.clone(),
        operation: hop.caller_operation.clone(),
        target: Some(hop.callee_service.clone()),
        count: None,
    }
}

/// Analyses `trace`: clock-skew adjustment, critical path, statistics and ranked findings.
pub fn analyze(trace: &Trace, opts: &AnalysisOptions) -> TraceAnalysis {
    let tree = SpanTree::build(trace);
    let (shift, skew_adjustments) = if opts.adjust_clock_skew {
        let shifts = skew::compute(&tree);
        let adjustments = skew::adjustments(&tree, &shifts);
        (shifts.shift, adjustments)
    } else {
        (Vec::new(), Vec::new())
    };
    let tl = Timeline::new(&tree, &shift);
    let sections = tl
        .primary_root()
        .map_or_else(Vec::new, |r| critical_path::walk(&tl, r));
    let index = PathIndex::new(&tl, &sections);
    let stats = stats::compute(&tl, &index);
    let findings = findings::find(&Ctx {
        tl: &tl,
        path: &index,
        opts,
        shift: &shift,
    });
    let (start, end) = (
        tl.start.iter().copied().min().unwrap_or(0),
        tl.end.iter().copied().max().unwrap_or(0),
    );
    TraceAnalysis {
        trace_id: trace.trace_id,
        start_unix_nano: start,
        duration_nanos: end.saturating_sub(start),
        span_count: tree.len(),
        root_count: tree.roots().len(),
        skew_adjustments,
        critical_path: critical_path::to_public(&tl, &sections),
        stats,
        findings,
    }
}
