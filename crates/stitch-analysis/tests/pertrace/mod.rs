//! Trace builders for the per-trace analysis tests (skew, critical path, stats, findings).
#![allow(dead_code)]

use std::collections::HashMap;

use stitch_analysis::{Finding, FindingKind, TraceAnalysis};
use stitch_model::{
    AnyValue, Event, KeyValue, ResourceSpans, ScopeSpans, Span, SpanId, SpanKind, Status,
    StatusCode, Trace, TraceId,
};
use stitch_testkit::resource;

/// Start of every test trace ([`T0`], in Unix nanoseconds), and a millisecond.
pub use stitch_testkit::{MS, T0};

pub fn trace_id() -> TraceId {
    TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
}

/// Builds a trace span by span; ids are 1, 2, 3, ... in the order spans are added. Times are
/// milliseconds after [`T0`].
#[derive(Default)]
pub struct Builder {
    spans: Vec<(String, Span)>,
    /// Per-service clock error in milliseconds, applied by [`Builder::build`].
    offsets: HashMap<String, i64>,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn span(
        &mut self,
        service: &str,
        parent: Option<u64>,
        kind: SpanKind,
        name: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> u64 {
        let id = self.spans.len() as u64 + 1;
        self.spans.push((
            service.to_owned(),
            Span {
                trace_id: trace_id(),
                span_id: SpanId::from_u64(id),
                parent_span_id: parent.map(SpanId::from_u64),
                name: name.to_owned(),
                kind,
                start_time_unix_nano: T0 + start_ms * MS,
                end_time_unix_nano: T0 + end_ms * MS,
                ..Default::default()
            },
        ));
        id
    }

    fn get(&mut self, id: u64) -> &mut Span {
        &mut self.spans[id as usize - 1].1
    }

    pub fn attr(&mut self, id: u64, key: &str, value: impl Into<AnyValue>) -> &mut Self {
        self.get(id).attributes.push(KeyValue::new(key, value));
        self
    }

    pub fn error(&mut self, id: u64, message: &str) -> &mut Self {
        self.get(id).status = Status {
            code: StatusCode::Error,
            message: message.to_owned(),
        };
        self
    }

    pub fn event(&mut self, id: u64, name: &str, at_ms: u64) -> &mut Self {
        self.get(id).events.push(Event {
            time_unix_nano: T0 + at_ms * MS,
            name: name.to_owned(),
            ..Default::default()
        });
        self
    }

    /// A database call: `db.system`, `db.name` and `db.statement`.
    pub fn db(&mut self, id: u64, system: &str, name: &str, statement: &str) -> &mut Self {
        self.attr(id, "db.system", system)
            .attr(id, "db.name", name)
            .attr(id, "db.statement", statement)
    }

    /// Makes every span of `service` `ms` milliseconds late (negative: early), as a skewed
    /// clock would.
    pub fn clock_offset(&mut self, service: &str, ms: i64) -> &mut Self {
        self.offsets.insert(service.to_owned(), ms);
        self
    }

    pub fn build(&self) -> Trace {
        let mut trace = Trace::new(trace_id());
        let mut resources: HashMap<&str, usize> = HashMap::new();
        for (service, span) in &self.spans {
            let mut span = span.clone();
            if let Some(&off) = self.offsets.get(service) {
                let shift = |t: u64| (t as i128 + off as i128 * MS as i128) as u64;
                span.start_time_unix_nano = shift(span.start_time_unix_nano);
                span.end_time_unix_nano = shift(span.end_time_unix_nano);
            }
            let slot = *resources.entry(service).or_insert_with(|| {
                trace.resource_spans.push(ResourceSpans {
                    resource: resource(service),
                    scope_spans: vec![ScopeSpans::default()],
                });
                trace.resource_spans.len() - 1
            });
            trace.resource_spans[slot].scope_spans[0].spans.push(span);
        }
        trace
    }
}

pub fn id(n: u64) -> SpanId {
    SpanId::from_u64(n)
}

pub fn ms(n: u64) -> u64 {
    n * MS
}

/// The findings of one kind, in rank order.
pub fn of_kind(analysis: &TraceAnalysis, kind: FindingKind) -> Vec<&Finding> {
    analysis
        .findings
        .iter()
        .filter(|f| f.kind == kind)
        .collect()
}

/// `(kind, cost in ms)` of every finding, in rank order (costs rounded down to whole ms).
pub fn summary(analysis: &TraceAnalysis) -> Vec<(FindingKind, u64)> {
    analysis
        .findings
        .iter()
        .map(|f| (f.kind, f.cost_nanos / MS))
        .collect()
}

/// All titles, one per line, for assertion messages.
pub fn titles(analysis: &TraceAnalysis) -> String {
    analysis
        .findings
        .iter()
        .map(|f| format!("{:?} {}ms: {}", f.kind, f.cost_nanos / MS, f.title))
        .collect::<Vec<_>>()
        .join("\n")
}
