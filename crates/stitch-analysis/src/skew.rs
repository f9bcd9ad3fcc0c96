//! Per-trace clock-skew adjustment.
//!
//! Spans are timed by the clocks of the machines that produced them, and those clocks drift.
//! A server span can then appear to start before the client span that called it, which makes
//! the waterfall lie and breaks every interval computation (critical path, self time, gaps).
//! The adjustment follows the idea of Jaeger's clock-skew adjuster:
//!
//! * Spans are grouped into **clock domains**: spans of one resource share a clock (resources
//!   that name the same `host.id` or `host.name` share one too).
//! * The tree is walked from the roots down. A span in the same clock domain as its parent is
//!   shifted by the same amount as its parent, so a whole subtree produced by one process moves
//!   together and keeps its internal timing.
//! * A synchronous child from another clock domain (a SERVER span under its CLIENT, or any
//!   child its parent waits for) that does not lie inside its (already adjusted) parent is
//!   shifted so that it does:
//!   * if it is no longer than the parent, it is centred in it — the network latency is
//!     assumed to be split evenly between request and response;
//!   * if it is longer (the caller timed out, or the child went on asynchronously), the only
//!     safe fix is to make it start no earlier than the parent: it is shifted forward to the
//!     parent's start when it started before it, and left alone otherwise.
//! * An asynchronous child from another clock domain (a CONSUMER, a child of a PRODUCER, a
//!   FOLLOWS_FROM child) may legitimately run after its parent ended; it is only moved when it
//!   starts before its parent starts, to the parent's start (an effect cannot precede its
//!   cause).
//!
//! Every shifted span is reported as a [`SkewAdjustment`] with its original timestamps, so
//! the raw data is always retrievable. [`adjust_clock_skew`] also returns an adjusted copy of
//! the trace in which each shifted span carries its shift in the [`SHIFT_ATTRIBUTE`]
//! attribute; the copy is only made when something moved.
//!
//! Cost: O(n) after the tree is built (one pre-order walk and a hash lookup per resource).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use stitch_model::{AnyValue, KeyValue, Resource, SpanId, Trace, find_attribute};

use crate::json;
use crate::timeline::{blocks_parent, shift_time};
use crate::tree::SpanTree;

/// Attribute added to each span of the adjusted copy that was moved: the shift applied, in
/// nanoseconds (positive: moved later).
pub const SHIFT_ATTRIBUTE: &str = "stitch.clock_skew.shift_ns";

/// One span moved by the clock-skew adjustment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkewAdjustment {
    #[serde(serialize_with = "json::span_id")]
    pub span_id: SpanId,
    pub service: String,
    pub operation: String,
    /// Nanoseconds added to the span's start, end and event times (negative: moved earlier).
    pub shift_nanos: i64,
    /// True when the span moved only because its parent did (same clock domain); false for
    /// the span whose own position against its parent decided the shift.
    pub inherited: bool,
    #[serde(serialize_with = "json::u64_string")]
    pub original_start_unix_nano: u64,
    #[serde(serialize_with = "json::u64_string")]
    pub original_end_unix_nano: u64,
}

/// The result of [`adjust_clock_skew`].
#[derive(Clone, Debug)]
pub struct SkewAdjusted<'a> {
    /// The trace with adjusted times; borrowed unchanged when nothing moved.
    pub trace: Cow<'a, Trace>,
    /// Every moved span, in tree pre-order.
    pub adjustments: Vec<SkewAdjustment>,
}

/// Adjusts `trace` for clock skew: the adjusted copy (borrowed when nothing moved) and the
/// list of moved spans.
pub fn adjust_clock_skew(trace: &Trace) -> SkewAdjusted<'_> {
    let adjustments = clock_skew(&SpanTree::build(trace));
    if adjustments.is_empty() {
        return SkewAdjusted {
            trace: Cow::Borrowed(trace),
            adjustments,
        };
    }
    let by_id: HashMap<SpanId, i64> = adjustments
        .iter()
        .map(|a| (a.span_id, a.shift_nanos))
        .collect();
    let mut copy = trace.clone();
    for rs in &mut copy.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                let Some(&d) = by_id.get(&span.span_id) else {
                    continue;
                };
                span.start_time_unix_nano = shift_time(span.start_time_unix_nano, d);
                span.end_time_unix_nano = shift_time(span.end_time_unix_nano, d);
                for event in &mut span.events {
                    event.time_unix_nano = shift_time(event.time_unix_nano, d);
                }
                span.attributes.retain(|kv| kv.key != SHIFT_ATTRIBUTE);
                span.attributes
                    .push(KeyValue::new(SHIFT_ATTRIBUTE, AnyValue::Int(d)));
            }
        }
    }
    SkewAdjusted {
        trace: Cow::Owned(copy),
        adjustments,
    }
}

/// The spans of `tree` that the clock-skew adjustment moves, in tree pre-order.
pub fn clock_skew(tree: &SpanTree<'_>) -> Vec<SkewAdjustment> {
    adjustments(tree, &compute(tree))
}

/// The shift of every node and whether it was inherited from its parent, indexed by
/// [`crate::NodeId::index`].
pub(crate) struct Shifts {
    pub shift: Vec<i64>,
    pub inherited: Vec<bool>,
}

/// The moved spans of `tree` given its shifts, in tree pre-order.
pub(crate) fn adjustments(tree: &SpanTree<'_>, shifts: &Shifts) -> Vec<SkewAdjustment> {
    let (shift, inherited) = (&shifts.shift, &shifts.inherited);
    if shift.iter().all(|&d| d == 0) {
        return Vec::new();
    }
    tree.pre_order()
        .filter(|(id, _)| shift[id.index()] != 0)
        .map(|(id, _)| {
            let node = tree.node(id);
            SkewAdjustment {
                span_id: node.span().span_id,
                service: node.service_name().to_owned(),
                operation: node.span().name.clone(),
                shift_nanos: shift[id.index()],
                inherited: inherited[id.index()],
                original_start_unix_nano: node.span().start_time_unix_nano,
                original_end_unix_nano: node.span().end_time_unix_nano,
            }
        })
        .collect()
}

/// Computes the shift of every node.
pub(crate) fn compute(tree: &SpanTree<'_>) -> Shifts {
    let n = tree.len();
    let domain = clock_domains(tree);
    let mut shift = vec![0i64; n];
    let mut inherited = vec![false; n];
    let ids: Vec<_> = tree.nodes().map(|(id, _)| id).collect();
    for (id, _) in tree.pre_order() {
        let i = id.index();
        let Some(p) = tree.parent(id) else { continue };
        let pi = p.index();
        if domain[i] == domain[pi] {
            shift[i] = shift[pi];
            inherited[i] = shift[i] != 0;
            continue;
        }
        let parent = tree.node(ids[pi]);
        let child = tree.node(ids[i]);
        let ps = shift_time(parent.start(), shift[pi]) as i128;
        let pe = shift_time(parent.end(), shift[pi]) as i128;
        let (cs, ce) = (child.start() as i128, child.end() as i128);
        let delta: i128 = if !blocks_parent(parent.span(), child.span()) || ce - cs > pe - ps {
            // Asynchronous, or longer than its parent: only make it start no earlier.
            (ps - cs).max(0)
        } else if cs >= ps && ce <= pe {
            0
        } else {
            ps + (pe - ps - (ce - cs)) / 2 - cs
        };
        shift[i] = delta.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    }
    Shifts { shift, inherited }
}

/// A clock-domain number per node: equal for nodes whose resources share a clock.
fn clock_domains(tree: &SpanTree<'_>) -> Vec<u32> {
    let mut by_ptr: HashMap<*const Resource, u32> = HashMap::new();
    let mut by_key: HashMap<String, u32> = HashMap::new();
    let mut last: Option<(*const Resource, u32)> = None;
    tree.nodes()
        .map(|(_, node)| {
            let resource = node.resource();
            let ptr = resource as *const Resource;
            // Spans of one resource are usually adjacent.
            if let Some((p, d)) = last
                && p == ptr
            {
                return d;
            }
            let d = *by_ptr.entry(ptr).or_insert_with(|| {
                let next = by_key.len() as u32;
                *by_key.entry(clock_key(resource)).or_insert(next)
            });
            last = Some((ptr, d));
            d
        })
        .collect()
}

/// Resources naming a host share that host's clock; otherwise a resource is its own domain
/// (identified by its attributes, so equal resources in different batches match).
fn clock_key(resource: &Resource) -> String {
    for key in ["host.id", "host.name"] {
        if let Some(AnyValue::String(v)) = find_attribute(&resource.attributes, key)
            && !v.is_empty()
        {
            return format!("{key}\u{0}{v}");
        }
    }
    let mut parts: Vec<String> = resource
        .attributes
        .iter()
        .map(|kv| format!("{}\u{0}{}", kv.key, kv.value.to_text()))
        .collect();
    parts.sort();
    format!("resource\u{0}{}", parts.join("\u{1}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use stitch_model::{ResourceSpans, ScopeSpans, Span, SpanKind, TraceId};

    fn span(id: u64, parent: Option<u64>, kind: SpanKind, start: u64, end: u64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId::from_u64(id),
            parent_span_id: parent.map(SpanId::from_u64),
            name: format!("s{id}"),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        }
    }

    fn group(service: &str, spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Arc::default(),
                spans,
            }],
        }
    }

    fn trace(groups: Vec<ResourceSpans>) -> Trace {
        Trace {
            trace_id: TraceId([1; 16]),
            resource_spans: groups,
        }
    }

    #[test]
    fn a_server_span_that_starts_before_its_client_is_centred_with_its_subtree() {
        // Client 100..200; the server's clock is 80 behind: it claims 40..120 (80 long).
        let t = trace(vec![
            group(
                "a",
                vec![
                    span(1, None, SpanKind::Server, 0, 300),
                    span(2, Some(1), SpanKind::Client, 100, 200),
                ],
            ),
            group(
                "b",
                vec![
                    span(3, Some(2), SpanKind::Server, 40, 120),
                    span(4, Some(3), SpanKind::Internal, 50, 60),
                ],
            ),
        ]);
        let adj = clock_skew(&SpanTree::build(&t));
        assert_eq!(adj.len(), 2);
        assert_eq!(adj[0].span_id, SpanId::from_u64(3));
        // Centred: 10 on each side → 110..190, a shift of +70.
        assert_eq!(adj[0].shift_nanos, 70);
        assert!(!adj[0].inherited);
        assert_eq!(adj[1].span_id, SpanId::from_u64(4));
        assert_eq!(adj[1].shift_nanos, 70);
        assert!(adj[1].inherited);
        assert_eq!(adj[1].original_start_unix_nano, 50);

        let out = adjust_clock_skew(&t);
        let moved: Vec<(u64, u64)> = out
            .trace
            .spans()
            .filter(|s| s.span.span_id.as_u64() >= 3)
            .map(|s| (s.span.start_time_unix_nano, s.span.end_time_unix_nano))
            .collect();
        assert_eq!(moved, vec![(110, 190), (120, 130)]);
        let marked = out
            .trace
            .spans()
            .find(|s| s.span.span_id.as_u64() == 4)
            .unwrap();
        assert_eq!(
            find_attribute(&marked.span.attributes, SHIFT_ATTRIBUTE),
            Some(&AnyValue::Int(70))
        );
    }

    #[test]
    fn a_child_longer_than_its_parent_is_only_moved_to_start_with_it() {
        let t = trace(vec![
            group("a", vec![span(1, None, SpanKind::Client, 100, 150)]),
            group("b", vec![span(2, Some(1), SpanKind::Server, 90, 400)]),
        ]);
        let adj = clock_skew(&SpanTree::build(&t));
        assert_eq!(adj[0].shift_nanos, 10);
        let t = trace(vec![
            group("a", vec![span(1, None, SpanKind::Client, 100, 150)]),
            group("b", vec![span(2, Some(1), SpanKind::Server, 110, 400)]),
        ]);
        assert!(clock_skew(&SpanTree::build(&t)).is_empty());
    }

    #[test]
    fn a_child_inside_its_parent_and_spans_of_one_resource_are_left_alone() {
        let t = trace(vec![
            group(
                "a",
                vec![
                    span(1, None, SpanKind::Server, 0, 100),
                    // Same resource, outside its parent: one clock, so no skew to fix.
                    span(2, Some(1), SpanKind::Internal, 90, 150),
                ],
            ),
            group("b", vec![span(3, Some(1), SpanKind::Server, 10, 20)]),
        ]);
        let adjusted = adjust_clock_skew(&t);
        assert!(adjusted.adjustments.is_empty());
        assert!(matches!(adjusted.trace, Cow::Borrowed(_)));
    }

    #[test]
    fn an_asynchronous_consumer_may_run_late_but_not_before_its_producer() {
        let t = trace(vec![
            group("a", vec![span(1, None, SpanKind::Producer, 100, 110)]),
            group("b", vec![span(2, Some(1), SpanKind::Consumer, 500, 600)]),
        ]);
        assert!(clock_skew(&SpanTree::build(&t)).is_empty());
        let t = trace(vec![
            group("a", vec![span(1, None, SpanKind::Producer, 100, 110)]),
            group("b", vec![span(2, Some(1), SpanKind::Consumer, 40, 60)]),
        ]);
        assert_eq!(clock_skew(&SpanTree::build(&t))[0].shift_nanos, 60);
    }

    #[test]
    fn resources_on_one_host_share_a_clock() {
        let host = |service: &str| {
            Arc::new(Resource {
                attributes: vec![
                    KeyValue::new("service.name", service),
                    KeyValue::new("host.name", "node-1"),
                ],
                ..Default::default()
            })
        };
        let t = trace(vec![
            ResourceSpans {
                resource: host("a"),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::default(),
                    spans: vec![span(1, None, SpanKind::Client, 100, 200)],
                }],
            },
            ResourceSpans {
                resource: host("b"),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::default(),
                    spans: vec![span(2, Some(1), SpanKind::Server, 50, 90)],
                }],
            },
        ]);
        assert!(clock_skew(&SpanTree::build(&t)).is_empty());
    }
}
