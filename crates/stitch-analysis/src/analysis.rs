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
use crate::propagation::{BrokenHop, HopExample};
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
    /// set to this trace over it and its neighbours in time, so that this trace's occurrences
    /// lead each hop's examples (at most `max_examples` of them are seen here).
    ///
    /// Per hop, one finding for the calls this trace makes on it: on the caller spans, costing
    /// their critical-path time (a dominant-leaf finding on one of them is replaced: it
    /// described the same wait as "a call that leaves the trace"); and one for the calls it
    /// receives on it: on the callee roots, costing nothing here (the missing time is the
    /// caller's), naming the caller's trace. `count` is the occurrences in this trace.
    pub fn add_broken_propagation(&mut self, hops: &[BrokenHop]) {
        let me = self.trace_id.to_hex();
        for hop in hops {
            let cause = hop.cause.describe();
            let times = if hop.occurrences > 1 {
                format!("; the hop broke {} times in the window", hop.occurrences)
            } else {
                String::new()
            };
            let side = |mine: fn(&HopExample) -> (&str, &str), other: fn(&HopExample) -> &str| {
                let examples: Vec<&HopExample> =
                    hop.examples.iter().filter(|e| mine(e).0 == me).collect();
                let spans: Vec<SpanId> = examples
                    .iter()
                    .filter_map(|e| SpanId::from_hex(mine(e).1).ok())
                    .collect();
                let others: Vec<&str> = examples.iter().map(|e| other(e)).collect();
                (spans, others)
            };
            let (calls, callee_traces) = side(
                |e| (&e.caller_trace_id, &e.caller_span_id),
                |e| &e.callee_trace_id,
            );
            if !calls.is_empty() {
                let cost: u64 = self
                    .critical_path
                    .sections
                    .iter()
                    .filter(|s| calls.contains(&s.span_id))
                    .map(CriticalPathSection::duration_nanos)
                    .sum();
                self.findings.retain(|f| {
                    !(f.kind == FindingKind::DominantLeaf
                        && f.spans.first().is_some_and(|s| calls.contains(s)))
                });
                let what = match calls.len() {
                    1 => "the call".to_owned(),
                    n => format!("the {n} calls"),
                };
                let f = Finding {
                    title: format!(
                        "{} {:?} called {} {:?}, which did not receive the trace context \
                         ({cause}{times}): the rest of this request is in {}; here {what} \
                         {} {} of waiting with nothing under it",
                        hop.caller_service,
                        hop.caller_operation,
                        hop.callee_service,
                        hop.callee_operation,
                        trace_list(&callee_traces),
                        if calls.len() == 1 { "is" } else { "are" },
                        format_duration(cost),
                    ),
                    count: Some(calls.len() as u32),
                    cost_nanos: cost,
                    spans: calls,
                    ..finding_base(hop)
                };
                self.insert_ranked(f);
            }
            let (roots, caller_traces) = side(
                |e| (&e.callee_trace_id, &e.callee_span_id),
                |e| &e.caller_trace_id,
            );
            if !roots.is_empty() {
                let f = Finding {
                    title: format!(
                        "This trace is the {} {:?} part of a request from {} {:?} ({}): the \
                         trace context was lost on the way ({cause}{times})",
                        hop.callee_service,
                        hop.callee_operation,
                        hop.caller_service,
                        hop.caller_operation,
                        trace_list(&caller_traces),
                    ),
                    count: Some(roots.len() as u32),
                    spans: roots,
                    ..finding_base(hop)
                };
                self.insert_ranked(f);
            }
        }
    }

    /// Inserts `f` after every finding that costs at least as much.
    fn insert_ranked(&mut self, f: Finding) {
        let at = self
            .findings
            .iter()
            .position(|g| g.cost_nanos < f.cost_nanos)
            .unwrap_or(self.findings.len());
        self.findings.insert(at, f);
    }
}

/// "trace 4bf9…" or "traces 4bf9… and 00f0…".
fn trace_list(ids: &[&str]) -> String {
    match ids {
        [one] => format!("trace {one}"),
        [init @ .., last] => format!("traces {} and {last}", init.join(", ")),
        [] => "another trace".to_owned(),
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
