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
use stitch_model::{Trace, TraceId};

use crate::critical_path::{self, CriticalPath, PathIndex};
use crate::findings::{self, AnalysisOptions, Ctx, Finding};
use crate::json;
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
