//! What the samplers see of a span, and the span records the tail buffer holds.
//!
//! The tail sampler is generic over its span record type ([`SpanRecord`]) so that the server
//! buffers real model spans ([`ModelSpan`]) while tests and benchmarks can feed a cheap record
//! of their own. Policies only ever look at a [`SpanView`].

use std::mem::size_of;
use std::sync::Arc;

use stitch_model::{
    AnyValue, Batch, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind,
    StatusCode, TraceId, find_attribute,
};

/// The fields of one span that sampling policies read.
#[derive(Clone, Copy, Debug)]
pub struct SpanView<'a> {
    pub span_id: SpanId,
    /// True when the span has no parent (the root of its trace).
    pub is_root: bool,
    /// `service.name` of the span's resource.
    pub service: &'a str,
    /// The span (operation) name.
    pub name: &'a str,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub status: StatusCode,
    /// W3C `tracestate` of the span context.
    pub trace_state: &'a str,
    /// W3C trace flags in the low 8 bits.
    pub flags: u32,
    pub attributes: &'a [KeyValue],
    pub resource_attributes: &'a [KeyValue],
}

impl<'a> SpanView<'a> {
    /// A span attribute, or else a resource attribute, named `key`.
    pub fn attribute(&self, key: &str) -> Option<&'a AnyValue> {
        find_attribute(self.attributes, key)
            .or_else(|| find_attribute(self.resource_attributes, key))
    }

    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// A span as the tail sampler buffers it.
pub trait SpanRecord {
    /// The fields policies evaluate.
    fn view(&self) -> SpanView<'_>;
    /// Approximate bytes this record occupies: its inline size plus the heap it owns alone.
    /// Shared data (a resource behind an `Arc`) is not counted. This feeds the byte budget
    /// and the `bytes_limiting` policy.
    fn size_bytes(&self) -> usize;
}

/// A model span with the resource and scope that produced it: the record the server buffers.
///
/// The two `Arc`s are shared with every other span of the same export request, so buffering a
/// span costs 16 bytes of pointers beyond the span itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpan {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub span: Span,
}

impl SpanRecord for ModelSpan {
    fn view(&self) -> SpanView<'_> {
        let s = &self.span;
        SpanView {
            span_id: s.span_id,
            is_root: s.parent_span_id.is_none(),
            service: self.resource.service_name(),
            name: &s.name,
            kind: s.kind,
            start_unix_nano: s.start_time_unix_nano,
            end_unix_nano: s.end_time_unix_nano,
            status: s.status.code,
            trace_state: &s.trace_state,
            flags: s.flags,
            attributes: &s.attributes,
            resource_attributes: &self.resource.attributes,
        }
    }

    fn size_bytes(&self) -> usize {
        size_of::<ModelSpan>() + span_heap_bytes(&self.span)
    }
}

/// Heap bytes owned by a span (strings, attributes, events, links), by capacity.
pub fn span_heap_bytes(span: &Span) -> usize {
    span.trace_state.capacity()
        + span.name.capacity()
        + span.status.message.capacity()
        + attributes_heap_bytes(&span.attributes)
        + span.events.capacity() * size_of::<stitch_model::Event>()
        + span
            .events
            .iter()
            .map(|e| e.name.capacity() + attributes_heap_bytes(&e.attributes))
            .sum::<usize>()
        + span.links.capacity() * size_of::<stitch_model::Link>()
        + span
            .links
            .iter()
            .map(|l| l.trace_state.capacity() + attributes_heap_bytes(&l.attributes))
            .sum::<usize>()
}

fn attributes_heap_bytes(attrs: &Vec<KeyValue>) -> usize {
    attrs.capacity() * size_of::<KeyValue>()
        + attrs
            .iter()
            .map(|kv| kv.key.capacity() + value_heap_bytes(&kv.value))
            .sum::<usize>()
}

fn value_heap_bytes(v: &AnyValue) -> usize {
    match v {
        AnyValue::String(s) => s.capacity(),
        AnyValue::Bytes(b) => b.capacity(),
        AnyValue::Array(items) => {
            items.capacity() * size_of::<AnyValue>()
                + items.iter().map(value_heap_bytes).sum::<usize>()
        }
        AnyValue::KvList(kvs) => attributes_heap_bytes(kvs),
        AnyValue::Empty | AnyValue::Bool(_) | AnyValue::Int(_) | AnyValue::Double(_) => 0,
    }
}

/// Splits a batch into one group of spans per trace id, in order of first appearance,
/// moving the spans (no copy) and sharing resources and scopes.
pub fn split_batch(batch: Batch) -> Vec<(TraceId, Vec<ModelSpan>)> {
    let mut out: Vec<(TraceId, Vec<ModelSpan>)> = Vec::new();
    // Batches usually hold few traces per resource; a linear probe of the last few groups
    // beats hashing for the common case, with a map once there are many.
    let mut index: std::collections::HashMap<TraceId, usize> = std::collections::HashMap::new();
    for rs in batch.resource_spans {
        for ss in rs.scope_spans {
            for span in ss.spans {
                let slot = match out.last() {
                    Some((id, _)) if *id == span.trace_id => out.len() - 1,
                    _ => *index.entry(span.trace_id).or_insert_with(|| {
                        out.push((span.trace_id, Vec::new()));
                        out.len() - 1
                    }),
                };
                out[slot].1.push(ModelSpan {
                    resource: rs.resource.clone(),
                    scope: ss.scope.clone(),
                    span,
                });
            }
        }
    }
    out
}

/// Regroups buffered spans into OTLP-shaped fragments for the store: consecutive runs of the
/// same resource and scope (compared by pointer, then by value) share one group.
pub fn group_spans(spans: Vec<ModelSpan>) -> Vec<ResourceSpans> {
    let mut out: Vec<ResourceSpans> = Vec::new();
    for ms in spans {
        let rs_index = out
            .iter()
            .rposition(|rs| Arc::ptr_eq(&rs.resource, &ms.resource))
            .or_else(|| out.iter().rposition(|rs| rs.resource == ms.resource));
        let rs = match rs_index {
            Some(i) => &mut out[i],
            None => {
                out.push(ResourceSpans {
                    resource: ms.resource.clone(),
                    scope_spans: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        let ss_index = rs
            .scope_spans
            .iter()
            .rposition(|ss| Arc::ptr_eq(&ss.scope, &ms.scope))
            .or_else(|| rs.scope_spans.iter().rposition(|ss| ss.scope == ms.scope));
        match ss_index {
            Some(i) => rs.scope_spans[i].spans.push(ms.span),
            None => rs.scope_spans.push(ScopeSpans {
                scope: ms.scope,
                spans: vec![ms.span],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(t: u8, s: u8) -> Span {
        Span {
            trace_id: TraceId([t; 16]),
            span_id: SpanId([s; 8]),
            name: "op".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_batch_splits_by_trace_without_copying_and_regroups_by_resource() {
        let r1 = Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", "a")],
            ..Default::default()
        });
        let r2 = Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", "b")],
            ..Default::default()
        });
        let batch = Batch {
            resource_spans: vec![
                ResourceSpans {
                    resource: r1.clone(),
                    scope_spans: vec![ScopeSpans {
                        scope: Arc::default(),
                        spans: vec![span(1, 1), span(2, 2), span(1, 3)],
                    }],
                },
                ResourceSpans {
                    resource: r2.clone(),
                    scope_spans: vec![ScopeSpans {
                        scope: Arc::default(),
                        spans: vec![span(1, 4)],
                    }],
                },
            ],
        };
        let parts = split_batch(batch);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, TraceId([1; 16]));
        assert_eq!(parts[0].1.len(), 3);
        assert_eq!(parts[0].1[2].view().service, "b");
        let grouped = group_spans(parts.into_iter().next().unwrap().1);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].scope_spans[0].spans.len(), 2);
        assert!(Arc::ptr_eq(&grouped[1].resource, &r2));
    }

    #[test]
    fn size_counts_the_span_and_its_heap() {
        let mut s = span(1, 1);
        let base = ModelSpan {
            resource: Arc::default(),
            scope: Arc::default(),
            span: s.clone(),
        }
        .size_bytes();
        s.attributes = vec![KeyValue::new("http.route", "/api/orders/{id}")];
        let with = ModelSpan {
            resource: Arc::default(),
            scope: Arc::default(),
            span: s,
        }
        .size_bytes();
        assert!(with >= base + size_of::<KeyValue>() + "http.route/api/orders/{id}".len());
    }
}
