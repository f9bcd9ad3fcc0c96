//! Trace builders shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use stitch_model::{
    KeyValue, Resource, ResourceSpans, ScopeSpans, Span, SpanId, Status, StatusCode, Trace, TraceId,
};

/// Start of every test trace, in Unix nanoseconds.
pub const T0: u64 = 1_700_000_000_000_000_000;
pub const MS: u64 = 1_000_000;

pub fn trace_id() -> TraceId {
    TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()
}

/// Builds a trace span by span. Consecutive spans of one service share a `ResourceSpans`, so
/// `Trace::spans()` yields spans exactly in the order they were added.
#[derive(Default)]
pub struct TraceBuilder {
    spans: Vec<(String, Span)>,
}

impl TraceBuilder {
    pub fn new() -> Self {
        Self::default()
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
                trace_id: trace_id(),
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
    pub fn error(mut self) -> Self {
        if let Some((_, span)) = self.spans.last_mut() {
            span.status = Status {
                code: StatusCode::Error,
                message: "boom".to_owned(),
            };
        }
        self
    }

    pub fn build(self) -> Trace {
        let mut trace = Trace::new(trace_id());
        let mut resources: Vec<(String, Arc<Resource>)> = Vec::new();
        for (service, span) in self.spans {
            let same = trace
                .resource_spans
                .last()
                .is_some_and(|rs| rs.resource.service_name() == service);
            if !same {
                let resource = match resources.iter().find(|(s, _)| *s == service) {
                    Some((_, r)) => r.clone(),
                    None => {
                        let r = Arc::new(Resource {
                            attributes: vec![KeyValue::new("service.name", service.as_str())],
                            ..Default::default()
                        });
                        resources.push((service.clone(), r.clone()));
                        r
                    }
                };
                trace.resource_spans.push(ResourceSpans {
                    resource,
                    scope_spans: vec![ScopeSpans::default()],
                });
            }
            trace
                .resource_spans
                .last_mut()
                .unwrap()
                .scope_spans
                .last_mut()
                .unwrap()
                .spans
                .push(span);
        }
        trace
    }
}

/// The seed case: a checkout request of 2,400 ms. API Gateway 2400ms → Auth 45ms, Cart 180ms
/// (→ DB 150ms), Payment 1800ms (→ Fraud Check 1200ms, Payment Gateway API 580ms),
/// Inventory 320ms.
pub fn checkout() -> Trace {
    TraceBuilder::new()
        .ms("api-gateway", 1, None, "API Gateway", 0, 2400)
        .ms("auth", 2, Some(1), "Auth", 5, 50)
        .ms("cart", 3, Some(1), "Cart", 55, 235)
        .ms("postgres", 4, Some(3), "DB", 70, 220)
        .ms("payment", 5, Some(1), "Payment", 240, 2040)
        .ms("fraud", 6, Some(5), "Fraud Check", 250, 1450)
        .ms("payment", 7, Some(5), "Payment Gateway API", 1455, 2035)
        .ms("inventory", 8, Some(1), "Inventory", 2045, 2365)
        .build()
}
