//! What the samplers see of a span, and the span records the tail buffer holds.
//!
//! The tail sampler is generic over its span record type ([`SpanRecord`]). Policies only ever
//! look at a [`SpanView`], so a record needs to keep only what the configured policies read:
//!
//! * [`ModelSpan`]: the whole decoded span (tests, benchmarks, recovery);
//! * [`CompactSpan`]: what the server buffers. It keeps ids, times, kind, status, flags, the
//!   service and only the attributes (and, when asked for, the name and `tracestate`) that the
//!   policies read ([`SpanNeeds`]), in 64 bytes plus the projected attributes. The span itself
//!   stays in the write-ahead log, from which the store reads kept traces back.

use std::collections::{BTreeSet, HashMap};
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
    /// Shared data (a resource behind an `Arc`) is not counted. This feeds the byte budget.
    fn size_bytes(&self) -> usize;
    /// The span's size as received (encoded), which the `bytes_limiting` policy counts.
    /// Defaults to [`SpanRecord::size_bytes`].
    fn wire_bytes(&self) -> usize {
        self.size_bytes()
    }
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

/// The span fields the configured policies read beyond the ones every record keeps (span id,
/// root flag, service, kind, times, status, trace flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanNeeds {
    /// The span name (a condition on `name`).
    pub name: bool,
    /// The W3C `tracestate` (a `trace_state` policy).
    pub trace_state: bool,
    /// Attribute keys, looked up on the span and on its resource.
    pub attributes: BTreeSet<String>,
}

/// The service and the projected attributes of a resource, shared by the spans it produced.
#[derive(Debug, PartialEq)]
pub struct CompactResource {
    service: String,
    attributes: Vec<KeyValue>,
}

/// A buffered span reduced to what the configured policies read (see the module docs), made
/// by a [`Compactor`].
#[derive(Clone, Debug)]
pub struct CompactSpan {
    start_unix_nano: u64,
    end_unix_nano: u64,
    span_id: SpanId,
    resource: Arc<CompactResource>,
    /// Interned; `None` unless the policies read names.
    name: Option<Arc<String>>,
    /// Interned; `None` when empty or not read.
    trace_state: Option<Arc<String>>,
    /// The span's attributes whose keys the policies read; `None` when there are none. A
    /// boxed `Vec` is one pointer wide, which keeps the record at 64 bytes.
    #[allow(clippy::box_collection)]
    attributes: Option<Box<Vec<KeyValue>>>,
    wire_bytes: u32,
    flags: u8,
    kind: SpanKind,
    status: StatusCode,
    is_root: bool,
}

impl SpanRecord for CompactSpan {
    fn view(&self) -> SpanView<'_> {
        SpanView {
            span_id: self.span_id,
            is_root: self.is_root,
            service: &self.resource.service,
            name: self.name.as_deref().map_or("", |s| s.as_str()),
            kind: self.kind,
            start_unix_nano: self.start_unix_nano,
            end_unix_nano: self.end_unix_nano,
            status: self.status,
            trace_state: self.trace_state.as_deref().map_or("", |s| s.as_str()),
            flags: self.flags as u32,
            attributes: self.attributes.as_deref().map_or(&[], |a| a.as_slice()),
            resource_attributes: &self.resource.attributes,
        }
    }

    fn size_bytes(&self) -> usize {
        size_of::<CompactSpan>()
            + self
                .attributes
                .as_ref()
                .map_or(0, |a| size_of::<Vec<KeyValue>>() + attributes_heap_bytes(a))
    }

    fn wire_bytes(&self) -> usize {
        self.wire_bytes as usize
    }
}

/// Interned strings and resources beyond this many are forgotten (records made earlier keep
/// theirs); it bounds the interners under high-cardinality names.
const MAX_INTERNED: usize = 1 << 16;

/// Makes [`CompactSpan`]s for one set of [`SpanNeeds`], interning names, trace states and
/// resources so that spans of the same service and operation share them.
#[derive(Debug, Default)]
pub struct Compactor {
    needs: SpanNeeds,
    strings: HashMap<String, Arc<String>>,
    resources: HashMap<String, Arc<CompactResource>>,
    /// The resource seen last and what it became: spans of one export request share their
    /// `Arc<Resource>`.
    last: Option<(Arc<Resource>, Arc<CompactResource>)>,
}

impl Compactor {
    pub fn new(needs: SpanNeeds) -> Compactor {
        Compactor {
            needs,
            ..Compactor::default()
        }
    }

    pub fn needs(&self) -> &SpanNeeds {
        &self.needs
    }

    /// The compact record of `span`, which arrived encoded in `wire_bytes` bytes.
    pub fn compact(&mut self, span: &ModelSpan, wire_bytes: u32) -> CompactSpan {
        let resource = self.resource(&span.resource);
        let s = &span.span;
        let name = self.needs.name.then(|| self.intern(&s.name));
        let trace_state = (self.needs.trace_state && !s.trace_state.is_empty())
            .then(|| self.intern(&s.trace_state));
        let attributes = self.project(&s.attributes).map(Box::new);
        CompactSpan {
            start_unix_nano: s.start_time_unix_nano,
            end_unix_nano: s.end_time_unix_nano,
            span_id: s.span_id,
            resource,
            name,
            trace_state,
            attributes,
            wire_bytes,
            flags: s.flags as u8,
            kind: s.kind,
            status: s.status.code,
            is_root: s.parent_span_id.is_none(),
        }
    }

    fn project(&self, attributes: &[KeyValue]) -> Option<Vec<KeyValue>> {
        if self.needs.attributes.is_empty() {
            return None;
        }
        let kept: Vec<KeyValue> = attributes
            .iter()
            .filter(|kv| self.needs.attributes.contains(&kv.key))
            .cloned()
            .collect();
        (!kept.is_empty()).then_some(kept)
    }

    fn intern(&mut self, s: &str) -> Arc<String> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        if self.strings.len() >= MAX_INTERNED {
            self.strings.clear();
        }
        let a = Arc::new(s.to_owned());
        self.strings.insert(s.to_owned(), a.clone());
        a
    }

    fn resource(&mut self, resource: &Arc<Resource>) -> Arc<CompactResource> {
        if let Some((r, c)) = &self.last
            && Arc::ptr_eq(r, resource)
        {
            return c.clone();
        }
        let service = resource.service_name();
        let attributes = self.project(&resource.attributes).unwrap_or_default();
        let key = if attributes.is_empty() {
            service.to_owned()
        } else {
            format!("{service}\u{0}{attributes:?}")
        };
        let compact = match self.resources.get(&key) {
            Some(c) => c.clone(),
            None => {
                if self.resources.len() >= MAX_INTERNED {
                    self.resources.clear();
                }
                let c = Arc::new(CompactResource {
                    service: service.to_owned(),
                    attributes,
                });
                self.resources.insert(key, c.clone());
                c
            }
        };
        self.last = Some((resource.clone(), compact.clone()));
        compact
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

    #[test]
    fn a_compact_span_is_64_bytes_and_keeps_what_policies_read() {
        assert_eq!(size_of::<CompactSpan>(), 64);
        let resource = Arc::new(Resource {
            attributes: vec![
                KeyValue::new("service.name", "pay"),
                KeyValue::new("deployment.environment", "prod"),
                KeyValue::new("host.name", "h1"),
            ],
            ..Default::default()
        });
        let mut s = span(1, 1);
        s.name = "charge".into();
        s.trace_state = "ot=th:8".into();
        s.attributes = vec![
            KeyValue::new("http.route", "/pay"),
            KeyValue::new("user.id", "u-1"),
        ];
        s.kind = SpanKind::Server;
        s.status.code = StatusCode::Error;
        s.flags = 1;
        s.start_time_unix_nano = 10;
        s.end_time_unix_nano = 30;
        let model = ModelSpan {
            resource,
            scope: Arc::default(),
            span: s,
        };

        let mut bare = Compactor::new(SpanNeeds::default());
        let c = bare.compact(&model, 120);
        let v = c.view();
        assert_eq!(
            (v.service, v.name, v.trace_state, v.attributes.len()),
            ("pay", "", "", 0)
        );
        assert_eq!(v.resource_attributes.len(), 0);
        assert_eq!(
            (v.kind, v.status, v.flags, v.is_root),
            (SpanKind::Server, StatusCode::Error, 1, true)
        );
        assert_eq!(v.duration_nanos(), 20);
        assert_eq!((c.size_bytes(), c.wire_bytes()), (64, 120));

        let mut needs = SpanNeeds {
            name: true,
            trace_state: true,
            ..Default::default()
        };
        needs.attributes.insert("http.route".into());
        needs.attributes.insert("deployment.environment".into());
        let mut full = Compactor::new(needs);
        let c = full.compact(&model, 120);
        let v = c.view();
        assert_eq!((v.name, v.trace_state), ("charge", "ot=th:8"));
        assert_eq!(
            v.attribute("http.route"),
            Some(&AnyValue::String("/pay".into()))
        );
        assert_eq!(
            v.attribute("deployment.environment"),
            Some(&AnyValue::String("prod".into()))
        );
        assert_eq!(v.attribute("user.id"), None);
        assert_eq!(v.attribute("host.name"), None);
        // Spans of one service and operation share the interned name and resource.
        let again = full.compact(&model, 120);
        assert!(Arc::ptr_eq(&c.resource, &again.resource));
        assert!(Arc::ptr_eq(
            c.name.as_ref().unwrap(),
            again.name.as_ref().unwrap()
        ));
    }

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
