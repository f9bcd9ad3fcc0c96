//! Trace statistics per service and per operation: span count, total time, self time,
//! critical-path time and shares of the trace.
//!
//! Definitions (all times in nanoseconds):
//!
//! * **total**: the sum of the spans' durations as recorded (after skew adjustment in
//!   [`crate::analyze`]); concurrent spans count in full, so totals can exceed the trace.
//! * **self time** of a span: the part of its interval during which none of its synchronous
//!   children was running, with each child clamped into its parent (see
//!   [`mod@crate::critical_path`] for which children are synchronous). Asynchronous children
//!   (consumers, FOLLOWS_FROM) are not clamped and do not cover their parent: their time is
//!   their own.
//! * **busy time** of the trace: the sum of all self times. At any instant, each branch of
//!   the trace that is running without a running synchronous child counts once; a trace
//!   without concurrency has a busy time equal to its duration, one with parallel branches
//!   more.
//! * **critical-path time**: the time the span owns on the critical path.
//! * **shares** are fractions of the trace's duration: the primary root's duration, which is
//!   also the critical path's length. The critical-path shares of all groups add up to 1.
//!
//! Cost: O(n) after the timeline is built, plus sorting the groups.

use crate::fast_hash::FastMap;

use serde::Serialize;

use crate::critical_path::{self, PathIndex};
use crate::timeline::Timeline;
use crate::tree::SpanTree;

/// Statistics of one trace.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceStats {
    /// The duration shares are relative to: the primary root's duration.
    pub duration_nanos: u64,
    /// Sum of all self times.
    pub busy_nanos: u64,
    /// One row per service, by critical-path time then self time, descending.
    pub services: Vec<GroupStats>,
    /// One row per (service, operation), ordered like `services`.
    pub operations: Vec<GroupStats>,
}

/// Statistics of the spans of one service, or of one operation of one service.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStats {
    pub service: String,
    /// The span name; `None` on a per-service row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    pub span_count: u64,
    pub total_nanos: u64,
    pub self_nanos: u64,
    pub critical_path_nanos: u64,
    /// `self_nanos / duration`.
    pub self_share: f64,
    /// `critical_path_nanos / duration`: the share of the trace's latency this group is
    /// responsible for.
    pub critical_path_share: f64,
}

/// Statistics of `tree` with the span times as recorded.
pub fn trace_stats(tree: &SpanTree<'_>) -> TraceStats {
    let tl = Timeline::new(tree, &[]);
    let sections = tl
        .primary_root()
        .map_or_else(Vec::new, |r| critical_path::walk(&tl, r));
    let index = PathIndex::new(&tl, &sections);
    compute(&tl, &index)
}

/// Self time of every span of `tree`, indexed by [`crate::NodeId::index`].
pub fn self_times(tree: &SpanTree<'_>) -> Vec<u64> {
    let tl = Timeline::new(tree, &[]);
    (0..tl.len()).map(|i| tl.self_time(i)).collect()
}

pub(crate) fn compute(tl: &Timeline<'_, '_>, index: &PathIndex) -> TraceStats {
    let duration = tl.primary_root().map_or(0, |r| tl.width(r));
    let share = |v: u64| {
        if duration == 0 {
            0.0
        } else {
            v as f64 / duration as f64
        }
    };
    #[derive(Default)]
    struct Acc {
        count: u64,
        total: u64,
        own: u64,
        cp: u64,
    }
    let mut by_op: Vec<Acc> = (0..tl.ops.len()).map(|_| Acc::default()).collect();
    let mut busy = 0u64;
    for i in 0..tl.len() {
        let own = tl.self_time(i);
        busy += own;
        let acc = &mut by_op[tl.op[i] as usize];
        acc.count += 1;
        acc.total += tl.duration(i);
        acc.own += own;
        acc.cp += index.own[i];
    }
    let mut operations: FastMap<(&str, &str), Acc> = FastMap::default();
    for (&(service, name), a) in tl.ops.iter().zip(&by_op) {
        let acc = operations.entry((service, name)).or_default();
        acc.count += a.count;
        acc.total += a.total;
        acc.own += a.own;
        acc.cp += a.cp;
    }
    let mut services: FastMap<&str, Acc> = FastMap::default();
    for (&(service, _), a) in &operations {
        let acc = services.entry(service).or_default();
        acc.count += a.count;
        acc.total += a.total;
        acc.own += a.own;
        acc.cp += a.cp;
    }
    let row = |service: &str, operation: Option<&str>, a: &Acc| GroupStats {
        service: service.to_owned(),
        operation: operation.map(str::to_owned),
        span_count: a.count,
        total_nanos: a.total,
        self_nanos: a.own,
        critical_path_nanos: a.cp,
        self_share: share(a.own),
        critical_path_share: share(a.cp),
    };
    // Sort on borrowed keys, then build the rows.
    let rank = |a: &Acc| (std::cmp::Reverse(a.cp), std::cmp::Reverse(a.own));
    let mut services: Vec<(&str, Acc)> = services.into_iter().collect();
    services.sort_unstable_by(|x, y| (rank(&x.1), x.0).cmp(&(rank(&y.1), y.0)));
    let mut operations: Vec<((&str, &str), Acc)> = operations.into_iter().collect();
    operations.sort_unstable_by(|x, y| (rank(&x.1), x.0).cmp(&(rank(&y.1), y.0)));
    let services = services.iter().map(|(s, a)| row(s, None, a)).collect();
    let operations = operations
        .iter()
        .map(|((s, o), a)| row(s, Some(o), a))
        .collect();
    TraceStats {
        duration_nanos: duration,
        busy_nanos: busy,
        services,
        operations,
    }
}
