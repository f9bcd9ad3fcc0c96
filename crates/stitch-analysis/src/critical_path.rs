//! The critical path: the chain of work that determined when the request finished.
//!
//! The algorithm is the last-finishing-child walk that Jaeger's UI uses. A cursor starts at
//! the end of the root span and moves back in time:
//!
//! 1. Among the children of the current span that end at or before the cursor, take the one
//!    that ends last (the child the span was waiting for when the cursor's moment came).
//!    The time between that child's end and the cursor is the span's own: a section of the
//!    path.
//! 2. Descend into that child with the cursor at its end, and walk it the same way.
//! 3. When the child's walk is done, the cursor is at the child's start; continue with the
//!    span's remaining children. Children that end after the cursor ran concurrently with the
//!    child already taken and are skipped.
//! 4. When no child is left, the time from the span's start to the cursor is the span's own.
//!
//! Before the walk, every child is clamped to its parent's (clamped) interval and children
//! left with nothing are dropped. Children the parent does not wait for never block it and
//! are left out of the walk: CONSUMER spans, children of PRODUCER spans, and FOLLOWS_FROM
//! children (a link to the parent with `opentracing.ref_type = follows_from`). Unlike Jaeger,
//! a child that ends exactly when the cursor is (back-to-back calls) is taken.
//!
//! The result is a list of [`CriticalPathSection`]s `[start, end)` per span id: a span can own
//! several sections (its self time between children). The sections never overlap, tile the
//! root span exactly and so add up to its duration.
//!
//! A trace with several roots (orphans, broken propagation) has its path computed for the
//! **primary root**: the longest root, then the earliest. Spans under other roots have no
//! section.
//!
//! Cost: every span is visited at most once and the children of each visited span are sorted
//! once: O(n log n) time, O(n) memory, no recursion (deep traces cannot overflow the stack).

use std::collections::HashMap;

use serde::Serialize;
use stitch_model::SpanId;

use crate::json;
use crate::timeline::Timeline;
use crate::tree::SpanTree;

/// The critical path of a trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalPath {
    /// The root the path was computed for; `None` for an empty trace.
    #[serde(serialize_with = "json::opt_span_id")]
    pub root_span_id: Option<SpanId>,
    /// Length of the path: the root's duration.
    pub total_nanos: u64,
    /// Sections in time order; they tile the root span.
    pub sections: Vec<CriticalPathSection>,
}

/// A stretch of time during which `span_id` was the span the request was waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalPathSection {
    #[serde(serialize_with = "json::span_id")]
    pub span_id: SpanId,
    #[serde(serialize_with = "json::u64_string")]
    pub start_unix_nano: u64,
    #[serde(serialize_with = "json::u64_string")]
    pub end_unix_nano: u64,
}

impl CriticalPathSection {
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano - self.start_unix_nano
    }
}

impl CriticalPath {
    /// Critical-path time per span id (spans off the path are absent).
    pub fn time_by_span(&self) -> HashMap<SpanId, u64> {
        let mut out = HashMap::new();
        for s in &self.sections {
            *out.entry(s.span_id).or_insert(0) += s.duration_nanos();
        }
        out
    }

    /// Sections per span id, each list in time order.
    pub fn sections_by_span(&self) -> HashMap<SpanId, Vec<(u64, u64)>> {
        let mut out: HashMap<SpanId, Vec<(u64, u64)>> = HashMap::new();
        for s in &self.sections {
            out.entry(s.span_id)
                .or_default()
                .push((s.start_unix_nano, s.end_unix_nano));
        }
        out
    }
}

/// The critical path of `tree`, with the span times as recorded (no clock-skew adjustment;
/// [`crate::analyze`] adjusts first).
pub fn critical_path(tree: &SpanTree<'_>) -> CriticalPath {
    let tl = Timeline::new(tree, &[]);
    let sections = tl.primary_root().map_or_else(Vec::new, |r| walk(&tl, r));
    to_public(&tl, &sections)
}

/// A section by node index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    pub node: usize,
    pub start: u64,
    pub end: u64,
}

pub(crate) fn to_public(tl: &Timeline<'_, '_>, sections: &[Section]) -> CriticalPath {
    let root = tl.primary_root();
    CriticalPath {
        root_span_id: root.map(|r| tl.span(r).span_id),
        total_nanos: root.map_or(0, |r| tl.width(r)),
        sections: sections
            .iter()
            .map(|s| CriticalPathSection {
                span_id: tl.span(s.node).span_id,
                start_unix_nano: s.start,
                end_unix_nano: s.end,
            })
            .collect(),
    }
}

struct Frame {
    node: usize,
    cursor: u64,
    /// Next candidate child in `buf`.
    next: usize,
    /// This frame's children are `buf[base..end]`, by end descending.
    base: usize,
    end: usize,
}

/// The last-finishing-child walk from `root`; sections in time order.
pub(crate) fn walk(tl: &Timeline<'_, '_>, root: usize) -> Vec<Section> {
    let mut out = Vec::new();
    let mut buf: Vec<usize> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let push = |stack: &mut Vec<Frame>, buf: &mut Vec<usize>, node: usize| {
        let base = buf.len();
        buf.extend(tl.sync_kids(node));
        buf[base..].sort_unstable_by_key(|&c| (std::cmp::Reverse(tl.hi[c]), tl.lo[c], c));
        stack.push(Frame {
            node,
            cursor: tl.hi[node],
            next: base,
            base,
            end: buf.len(),
        });
    };
    push(&mut stack, &mut buf, root);
    while let Some(top) = stack.last_mut() {
        while top.next < top.end && tl.hi[buf[top.next]] > top.cursor {
            top.next += 1;
        }
        if top.next < top.end {
            let child = buf[top.next];
            top.next += 1;
            if tl.hi[child] < top.cursor {
                out.push(Section {
                    node: top.node,
                    start: tl.hi[child],
                    end: top.cursor,
                });
            }
            top.cursor = tl.lo[child];
            push(&mut stack, &mut buf, child);
        } else {
            if tl.lo[top.node] < top.cursor {
                out.push(Section {
                    node: top.node,
                    start: tl.lo[top.node],
                    end: top.cursor,
                });
            }
            let base = top.base;
            stack.pop();
            buf.truncate(base);
        }
    }
    out.reverse();
    out
}

/// Per-node views of a path: sections grouped by node, critical-path time per node and per
/// subtree.
pub(crate) struct PathIndex {
    off: Vec<usize>,
    by_node: Vec<(u64, u64)>,
    /// Critical-path time of each node's own sections.
    pub own: Vec<u64>,
    /// Critical-path time of each node's subtree (the node and its descendants).
    pub subtree: Vec<u64>,
}

impl PathIndex {
    pub fn new(tl: &Timeline<'_, '_>, sections: &[Section]) -> PathIndex {
        let n = tl.len();
        let mut own = vec![0u64; n];
        let mut count = vec![0usize; n + 1];
        for s in sections {
            own[s.node] += s.end - s.start;
            count[s.node + 1] += 1;
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let off = count.clone();
        let mut fill = count;
        let mut by_node = vec![(0, 0); sections.len()];
        // Sections are in time order, so each node's list is too.
        for s in sections {
            by_node[fill[s.node]] = (s.start, s.end);
            fill[s.node] += 1;
        }
        let mut subtree = own.clone();
        for &i in tl.order.iter().rev() {
            if let Some(p) = tl.parent(i) {
                subtree[p] += subtree[i];
            }
        }
        PathIndex {
            off,
            by_node,
            own,
            subtree,
        }
    }

    /// The sections of node `i`, in time order.
    pub fn sections(&self, i: usize) -> &[(u64, u64)] {
        &self.by_node[self.off[i]..self.off[i + 1]]
    }
}

/// Total length of the intersection of two sorted lists of disjoint intervals, and the
/// intersection itself.
pub(crate) fn intersect(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let (mut i, mut j) = (0, 0);
    let mut out: Vec<(u64, u64)> = Vec::new();
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo < hi {
            match out.last_mut() {
                Some(last) if last.1 == lo => last.1 = hi,
                _ => out.push((lo, hi)),
            }
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use stitch_model::{KeyValue, Resource, ResourceSpans, ScopeSpans, Span, SpanKind, Trace};

    fn trace(spans: Vec<(u64, Option<u64>, SpanKind, u64, u64)>) -> Trace {
        let spans = spans
            .into_iter()
            .map(|(id, parent, kind, start, end)| Span {
                span_id: SpanId::from_u64(id),
                parent_span_id: parent.map(SpanId::from_u64),
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                ..Default::default()
            })
            .collect();
        Trace {
            trace_id: Default::default(),
            resource_spans: vec![ResourceSpans {
                resource: Arc::new(Resource {
                    attributes: vec![KeyValue::new("service.name", "a")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::default(),
                    spans,
                }],
            }],
        }
    }

    fn sections(t: &Trace) -> Vec<(u64, u64, u64)> {
        critical_path(&SpanTree::build(t))
            .sections
            .iter()
            .map(|s| (s.span_id.as_u64(), s.start_unix_nano, s.end_unix_nano))
            .collect()
    }

    use SpanKind::{Consumer, Internal, Producer};

    #[test]
    fn the_walk_takes_the_last_finishing_child_and_skips_the_ones_that_overlap_it() {
        // A: 0..100; B: 10..60; C: 40..90 (finishes last); D: 0..30 (ends before C starts).
        let t = trace(vec![
            (1, None, Internal, 0, 100),
            (2, Some(1), Internal, 10, 60),
            (3, Some(1), Internal, 40, 90),
            (4, Some(1), Internal, 0, 30),
        ]);
        assert_eq!(
            sections(&t),
            vec![(4, 0, 30), (1, 30, 40), (3, 40, 90), (1, 90, 100)]
        );
    }

    #[test]
    fn back_to_back_children_are_both_on_the_path() {
        let t = trace(vec![
            (1, None, Internal, 0, 100),
            (2, Some(1), Internal, 10, 50),
            (3, Some(1), Internal, 50, 90),
        ]);
        assert_eq!(
            sections(&t),
            vec![(1, 0, 10), (2, 10, 50), (3, 50, 90), (1, 90, 100)]
        );
    }

    #[test]
    fn children_are_clamped_to_their_parent_and_dropped_when_outside_it() {
        let t = trace(vec![
            (1, None, Internal, 0, 100),
            (2, Some(1), Internal, 80, 150),
            (3, Some(2), Internal, 90, 140),
            (4, Some(1), Internal, 120, 130),
        ]);
        assert_eq!(sections(&t), vec![(1, 0, 80), (2, 80, 90), (3, 90, 100)]);
    }

    #[test]
    fn consumers_and_children_of_producers_do_not_block_their_parent() {
        let t = trace(vec![
            (1, None, Internal, 0, 100),
            (2, Some(1), Producer, 10, 20),
            (3, Some(2), Consumer, 15, 95),
            (4, Some(1), Consumer, 30, 99),
        ]);
        assert_eq!(sections(&t), vec![(1, 0, 10), (2, 10, 20), (1, 20, 100)]);
    }

    #[test]
    fn intersections_of_interval_lists_merge_touching_pieces() {
        assert_eq!(
            intersect(&[(0, 10), (10, 20), (30, 40)], &[(5, 35)]),
            vec![(5, 20), (30, 35)]
        );
        assert_eq!(intersect(&[(0, 10)], &[(10, 20)]), vec![]);
    }
}
