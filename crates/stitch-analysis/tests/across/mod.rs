//! Builders for the across-traces tests: spans with kinds, attributes and trace ids of their
//! own, assembled into traces, and a seeded random number generator.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use stitch_model::{
    AnyValue, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind, Status,
    StatusCode, Trace, TraceId,
};

/// Start of every test window, in Unix nanoseconds.
pub const T0: u64 = 1_700_000_000_000_000_000;
pub const MS: u64 = 1_000_000;
pub const SEC: u64 = 1_000_000_000;

/// A span and the service that produced it.
#[derive(Clone, Debug)]
pub struct S {
    pub service: String,
    pub scope: String,
    pub span: Span,
}

impl S {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        service: &str,
        trace_id: TraceId,
        id: u64,
        parent: Option<u64>,
        name: &str,
        kind: SpanKind,
        start: u64,
        end: u64,
    ) -> S {
        S {
            service: service.to_owned(),
            scope: String::new(),
            span: Span {
                trace_id,
                span_id: SpanId::from_u64(id),
                parent_span_id: parent.map(SpanId::from_u64),
                name: name.to_owned(),
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                ..Default::default()
            },
        }
    }

    pub fn attr(mut self, key: &str, value: impl Into<AnyValue>) -> S {
        self.span.attributes.push(KeyValue::new(key, value));
        self
    }

    pub fn error(mut self) -> S {
        self.span.status = Status {
            code: StatusCode::Error,
            message: "failed".to_owned(),
        };
        self
    }

    pub fn scope(mut self, name: &str) -> S {
        self.scope = name.to_owned();
        self
    }

    /// An outgoing HTTP call to `host` (attributes as the OpenTelemetry HTTP client
    /// instrumentations record them).
    pub fn http_client(self, method: &str, host: &str, path: &str) -> S {
        self.attr("http.request.method", method)
            .attr("server.address", host)
            .attr("server.port", 8080i64)
            .attr("url.full", format!("http://{host}:8080{path}"))
    }

    /// An incoming HTTP request on `route`, for the concrete `path`.
    pub fn http_server(self, method: &str, route: &str, path: &str) -> S {
        self.attr("http.request.method", method)
            .attr("http.route", route)
            .attr("url.path", path)
    }
}

/// Resource attributes every service reports besides `service.name`.
pub fn otel_sdk(_service: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        KeyValue::new("telemetry.sdk.language", "java"),
    ]
}

/// Groups spans into one trace per trace id (in order of first appearance), one
/// `ResourceSpans` per service, with `resource_attrs(service)` on each resource.
pub fn assemble_with(spans: Vec<S>, resource_attrs: &dyn Fn(&str) -> Vec<KeyValue>) -> Vec<Trace> {
    let mut order: Vec<TraceId> = Vec::new();
    let mut grouped: BTreeMap<TraceId, BTreeMap<(String, String), Vec<Span>>> = BTreeMap::new();
    for s in spans {
        let id = s.span.trace_id;
        if !grouped.contains_key(&id) {
            order.push(id);
        }
        grouped
            .entry(id)
            .or_default()
            .entry((s.service, s.scope))
            .or_default()
            .push(s.span);
    }
    let mut resources: BTreeMap<String, Arc<Resource>> = BTreeMap::new();
    order
        .into_iter()
        .map(|id| {
            let mut trace = Trace::new(id);
            for ((service, scope), spans) in grouped.remove(&id).unwrap_or_default() {
                let resource = resources
                    .entry(service.clone())
                    .or_insert_with(|| {
                        let mut attributes = vec![KeyValue::new("service.name", service.as_str())];
                        attributes.extend(resource_attrs(&service));
                        Arc::new(Resource {
                            attributes,
                            ..Default::default()
                        })
                    })
                    .clone();
                trace.resource_spans.push(ResourceSpans {
                    resource,
                    scope_spans: vec![ScopeSpans {
                        scope: Arc::new(Scope {
                            name: scope,
                            ..Default::default()
                        }),
                        spans,
                    }],
                });
            }
            trace
        })
        .collect()
}

/// [`assemble_with`] with the OpenTelemetry SDK attributes on every resource.
pub fn assemble(spans: Vec<S>) -> Vec<Trace> {
    assemble_with(spans, &otel_sdk)
}

#[allow(unused_imports)]
pub use stitch_testkit::Rng;
