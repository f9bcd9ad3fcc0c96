//! Latency breakdown across many traces of one endpoint: the share of critical-path time each
//! service and each operation contributes (seed 003's "40% CDN redirect, 30% DRM license
//! fetch, ...").
//!
//! The critical path is a parameter: any `Fn(&Trace) -> Vec<(SpanId, u64)>` that returns, for
//! one trace, the spans on its critical path with the nanoseconds each one is responsible for
//! (a span may appear several times, one entry per section). [`simple_critical_path`] is a
//! built-in fallback; a fuller implementation (skew-adjusted, producer/consumer-aware) plugs in
//! the same way:
//!
//! ```ignore
//! let b = latency_breakdown(&traces, &endpoint, |t: &Trace| {
//!     critical_path(&SpanTree::build(t))
//!         .sections
//!         .iter()
//!         .map(|s| (s.span_id, s.duration_nanos()))
//!         .collect::<Vec<_>>()
//! });
//! ```
//!
//! (`tests/breakdown.rs` checks that this gives the same shares as the fallback on traces
//! where the two walks agree.)
//!
//! Each section is credited to the service and span name of its span. Because a critical path
//! covers its root exactly once, the shares of a breakdown sum to 100%.

use std::collections::HashMap;

use serde::Serialize;
use stitch_model::{SpanId, SpanKind, Trace};

use crate::render::format_duration;
use crate::tree::{NodeId, SpanTree};

/// Service and operation named when a critical-path section's span is not in the trace.
pub const UNKNOWN: &str = "(unknown)";

/// An endpoint: the service and operation (span name) of a trace's root span.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub service: String,
    pub operation: String,
}

impl Endpoint {
    pub fn new(service: impl Into<String>, operation: impl Into<String>) -> Endpoint {
        Endpoint {
            service: service.into(),
            operation: operation.into(),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.service, self.operation)
    }
}

/// The part of the critical path one service (or one operation of a service) accounts for.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakdownShare {
    pub service: String,
    /// `None` in the per-service list.
    pub operation: Option<String>,
    /// Critical-path nanoseconds summed over every trace.
    pub total_nanos: u64,
    /// `total_nanos / traces`.
    pub mean_nanos_per_trace: u64,
    /// Fraction of all critical-path time, 0 to 1.
    pub share: f64,
    /// "cdn: 40.0% of the critical path (mean 480ms per trace)".
    pub line: String,
}

/// Where the time of one endpoint's traces goes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyBreakdown {
    pub endpoint: Endpoint,
    /// Traces whose root is the endpoint.
    pub traces: usize,
    /// Mean duration of the endpoint's root span.
    pub mean_duration_nanos: u64,
    /// Critical-path nanoseconds summed over every trace.
    pub total_critical_path_nanos: u64,
    /// Largest share first.
    pub by_service: Vec<BreakdownShare>,
    /// Largest share first.
    pub by_operation: Vec<BreakdownShare>,
}

/// The root of `tree` that is the endpoint, if any: a root (genuine or orphan) with the
/// endpoint's service and span name; the earliest when several.
pub(crate) fn endpoint_root(tree: &SpanTree<'_>, endpoint: &Endpoint) -> Option<NodeId> {
    tree.roots().iter().copied().find(|&r| {
        let n = tree.node(r);
        n.service_name() == endpoint.service && n.span().name == endpoint.operation
    })
}

/// Critical-path time of one trace attributed to (service, operation).
pub(crate) fn attribute_path(
    tree: &SpanTree<'_>,
    sections: &[(SpanId, u64)],
) -> Vec<((String, String), u64)> {
    let mut by_key: HashMap<(String, String), u64> = HashMap::new();
    for &(span_id, nanos) in sections {
        let key = match tree.find(span_id) {
            Some(id) => {
                let n = tree.node(id);
                (n.service_name().to_owned(), n.span().name.clone())
            }
            None => (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
        };
        *by_key.entry(key).or_default() += nanos;
    }
    let mut out: Vec<_> = by_key.into_iter().collect();
    out.sort();
    out
}

/// The critical path of `trace` by the last-finishing-child walk: start at the longest root
/// (the earliest among equals) with a cursor at its end; repeatedly take the child that
/// finishes last before the cursor (children clamped to the parent's interval), credit the
/// time between that child's end and the cursor to the parent (self time), walk into the child,
/// and move the cursor to the child's start; what is left before the cursor is the parent's
/// too. CONSUMER children of PRODUCER spans do not block their parent and are skipped.
///
/// Returns `(span, nanoseconds)` sections in time order; they never overlap and sum to the
/// root's duration. This is a fallback: it does no clock-skew adjustment.
pub fn simple_critical_path(trace: &Trace) -> Vec<(SpanId, u64)> {
    let tree = SpanTree::build(trace);
    let Some(&root) = tree.roots().iter().max_by(|&&a, &&b| {
        let (na, nb) = (tree.node(a), tree.node(b));
        (na.end() - na.start())
            .cmp(&(nb.end() - nb.start()))
            .then(nb.start().cmp(&na.start()))
            .then(b.cmp(&a))
    }) else {
        return Vec::new();
    };
    let root_node = tree.node(root);
    let mut sections: Vec<(u64, SpanId, u64)> = Vec::new();
    let mut stack: Vec<(NodeId, u64, u64)> = vec![(root, root_node.start(), root_node.end())];
    while let Some((id, lo, hi)) = stack.pop() {
        let node = tree.node(id);
        let (start, end) = (node.start().max(lo), node.end().min(hi));
        if end <= start {
            continue;
        }
        let span_id = node.span().span_id;
        let mut children: Vec<(u64, u64, NodeId)> = tree
            .children(id)
            .iter()
            .filter(|&&c| {
                !(node.span().kind == SpanKind::Producer
                    && tree.node(c).span().kind == SpanKind::Consumer)
            })
            .filter_map(|&c| {
                let child = tree.node(c);
                let (cs, ce) = (child.start().max(start), child.end().min(end));
                (ce > cs).then_some((cs, ce, c))
            })
            .collect();
        // Latest end first; among equal ends the earliest start (the longer child).
        children.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)).then(a.2.cmp(&b.2)));
        let mut cursor = end;
        for (cs, ce, c) in children {
            if cs >= cursor {
                continue;
            }
            let child_end = ce.min(cursor);
            if cursor > child_end {
                sections.push((child_end, span_id, cursor - child_end));
            }
            stack.push((c, cs, child_end));
            cursor = cs;
        }
        if cursor > start {
            sections.push((start, span_id, cursor - start));
        }
    }
    sections.sort_by_key(|s| (s.0, s.1));
    sections.into_iter().map(|(_, id, n)| (id, n)).collect()
}

/// The latency breakdown of `endpoint` over `traces` (traces whose root is not the endpoint
/// are skipped), using `critical_path` to find each trace's critical path.
pub fn latency_breakdown<F>(
    traces: &[Trace],
    endpoint: &Endpoint,
    critical_path: F,
) -> LatencyBreakdown
where
    F: Fn(&Trace) -> Vec<(SpanId, u64)>,
{
    let mut n = 0usize;
    let mut duration_sum: u128 = 0;
    let mut by_op: HashMap<(String, String), u64> = HashMap::new();
    for trace in traces {
        let tree = SpanTree::build(trace);
        let Some(root) = endpoint_root(&tree, endpoint) else {
            continue;
        };
        n += 1;
        let r = tree.node(root);
        duration_sum += u128::from(r.end() - r.start());
        for (key, nanos) in attribute_path(&tree, &critical_path(trace)) {
            *by_op.entry(key).or_default() += nanos;
        }
    }
    let total: u64 = by_op.values().sum();
    let mut by_service: HashMap<String, u64> = HashMap::new();
    for ((service, _), nanos) in &by_op {
        *by_service.entry(service.clone()).or_default() += nanos;
    }
    let share = |service: String, operation: Option<String>, nanos: u64| {
        let fraction = if total > 0 {
            nanos as f64 / total as f64
        } else {
            0.0
        };
        let mean = if n > 0 { nanos / n as u64 } else { 0 };
        let label = match &operation {
            Some(op) => format!("{service} {op}"),
            None => service.clone(),
        };
        BreakdownShare {
            line: format!(
                "{label}: {:.1}% of the critical path (mean {} per trace)",
                fraction * 100.0,
                format_duration(mean)
            ),
            service,
            operation,
            total_nanos: nanos,
            mean_nanos_per_trace: mean,
            share: fraction,
        }
    };
    let mut services: Vec<BreakdownShare> = by_service
        .into_iter()
        .map(|(s, nanos)| share(s, None, nanos))
        .collect();
    let mut operations: Vec<BreakdownShare> = by_op
        .into_iter()
        .map(|((s, op), nanos)| share(s, Some(op), nanos))
        .collect();
    let order = |a: &BreakdownShare, b: &BreakdownShare| {
        b.total_nanos
            .cmp(&a.total_nanos)
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.operation.cmp(&b.operation))
    };
    services.sort_by(order);
    operations.sort_by(order);
    LatencyBreakdown {
        endpoint: endpoint.clone(),
        traces: n,
        mean_duration_nanos: if n > 0 {
            (duration_sum / n as u128) as u64
        } else {
            0
        },
        total_critical_path_nanos: total,
        by_service: services,
        by_operation: operations,
    }
}
