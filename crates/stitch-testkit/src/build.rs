//! Ids, spans, batches and traces for tests.

use std::sync::Arc;

use stitch_model::{
    AnyValue, Batch, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind,
    Status, StatusCode, Trace, TraceId,
};

/// A fixed start for test traces, in Unix nanoseconds (2023-11-14).
pub const T0: u64 = 1_700_000_000_000_000_000;
pub const MS: u64 = 1_000_000;
pub const SECOND: u64 = 1_000_000_000;

/// The trace id a [`TraceBuilder`] uses unless told otherwise (the W3C example's).
pub fn default_trace_id() -> TraceId {
    TraceId::from_halves(0x0af7_6519_16cd_43dd, 0x8448_eb21_1c80_319c)
}

/// Trace id number `n`: distinct for distinct `n`, spread over both halves, never zero.
pub fn trace_id(n: u64) -> TraceId {
    TraceId::from_halves(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, n)
}

/// Span id number `n`: distinct for distinct `n`, never zero.
pub fn span_id(n: u64) -> SpanId {
    SpanId::from_u64(n.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1)
}

/// A resource naming only its service.
pub fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", service)],
        ..Default::default()
    })
}

/// An instrumentation scope with a name.
pub fn scope(name: &str) -> Arc<Scope> {
    Arc::new(Scope {
        name: name.into(),
        ..Default::default()
    })
}

/// A server span of `trace` that starts at `start` and lasts `duration` nanoseconds.
pub fn span(trace: TraceId, id: SpanId, name: &str, start: u64, duration: u64) -> Span {
    Span {
        trace_id: trace,
        span_id: id,
        name: name.into(),
        kind: SpanKind::Server,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration,
        ..Default::default()
    }
}

/// One resource, one scope (`test`), these spans.
pub fn batch_of(resource: &Arc<Resource>, spans: Vec<Span>) -> Batch {
    Batch {
        resource_spans: vec![ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![ScopeSpans {
                scope: scope("test"),
                spans,
            }],
        }],
    }
}

/// Builds a trace span by span. Span ids are `SpanId::from_u64(id)` of the numbers given.
/// Consecutive spans of one service share a `ResourceSpans` (and one `Resource` per service
/// is shared across the trace), so `Trace::spans()` yields spans in the order they were added.
#[derive(Clone, Debug)]
pub struct TraceBuilder {
    trace_id: TraceId,
    spans: Vec<(String, Span)>,
}

impl Default for TraceBuilder {
    fn default() -> Self {
        TraceBuilder::new()
    }
}

impl TraceBuilder {
    /// A trace of [`default_trace_id`].
    pub fn new() -> TraceBuilder {
        TraceBuilder::with_id(default_trace_id())
    }

    pub fn with_id(trace_id: TraceId) -> TraceBuilder {
        TraceBuilder {
            trace_id,
            spans: Vec::new(),
        }
    }

    /// A span with times in milliseconds after [`T0`].
    pub fn ms(
        self,
        service: &str,
        id: u64,
        parent: Option<u64>,
        name: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> Self {
        self.ns(
            service,
            id,
            parent,
            name,
            T0 + start_ms * MS,
            T0 + end_ms * MS,
        )
    }

    /// A span with absolute times in nanoseconds.
    pub fn ns(
        mut self,
        service: &str,
        id: u64,
        parent: Option<u64>,
        name: &str,
        start: u64,
        end: u64,
    ) -> Self {
        self.spans.push((
            service.to_owned(),
            Span {
                trace_id: self.trace_id,
                span_id: SpanId::from_u64(id),
                parent_span_id: parent.map(SpanId::from_u64),
                name: name.to_owned(),
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                ..Default::default()
            },
        ));
        self
    }

    /// Marks the last span added as failed.
    pub fn error(self) -> Self {
        self.last(|span| {
            span.status = Status {
                code: StatusCode::Error,
                message: "boom".to_owned(),
            }
        })
    }

    /// Sets the kind of the last span added.
    pub fn kind(self, kind: SpanKind) -> Self {
        self.last(|span| span.kind = kind)
    }

    /// Adds an attribute to the last span added.
    pub fn attr(self, key: &str, value: impl Into<AnyValue>) -> Self {
        let value = value.into();
        self.last(|span| span.attributes.push(KeyValue::new(key, value)))
    }

    fn last(mut self, change: impl FnOnce(&mut Span)) -> Self {
        if let Some((_, span)) = self.spans.last_mut() {
            change(span);
        }
        self
    }

    pub fn build(self) -> Trace {
        let mut trace = Trace::new(self.trace_id);
        let mut resources: Vec<(String, Arc<Resource>)> = Vec::new();
        for (service, span) in self.spans {
            let same = trace
                .resource_spans
                .last()
                .is_some_and(|rs| rs.resource.service_name() == service);
            if !same {
                let shared = match resources.iter().find(|(s, _)| *s == service) {
                    Some((_, r)) => r.clone(),
                    None => {
                        let r = resource(&service);
                        resources.push((service.clone(), r.clone()));
                        r
                    }
                };
                trace.resource_spans.push(ResourceSpans {
                    resource: shared,
                    scope_spans: vec![ScopeSpans::default()],
                });
            }
            if let Some(ss) = trace
                .resource_spans
                .last_mut()
                .and_then(|rs| rs.scope_spans.last_mut())
            {
                ss.spans.push(span);
            }
        }
        trace
    }

    /// The trace's spans as one batch.
    pub fn batch(self) -> Batch {
        crate::trace_to_batch(&self.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_keep_their_order_and_services_share_resources() {
        let t = TraceBuilder::new()
            .ms("a", 1, None, "root", 0, 100)
            .ms("b", 2, Some(1), "call", 10, 60)
            .kind(SpanKind::Client)
            .attr("http.route", "/x")
            .error()
            .ms("a", 3, Some(1), "tail", 70, 90)
            .build();
        let spans: Vec<_> = t.spans().map(|s| s.span).collect();
        assert_eq!(
            spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["root", "call", "tail"]
        );
        assert_eq!(spans[1].kind, SpanKind::Client);
        assert_eq!(spans[1].status.code, StatusCode::Error);
        assert_eq!(spans[1].parent_span_id, Some(SpanId::from_u64(1)));
        assert_eq!(
            spans[1].end_time_unix_nano - spans[1].start_time_unix_nano,
            50 * MS
        );
        assert_eq!(t.resource_spans.len(), 3);
        assert!(Arc::ptr_eq(
            &t.resource_spans[0].resource,
            &t.resource_spans[2].resource
        ));
        assert_eq!(
            default_trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_ne!(trace_id(1), trace_id(2));
        assert_ne!(span_id(1), span_id(2));
    }
}
