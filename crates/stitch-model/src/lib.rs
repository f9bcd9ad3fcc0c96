//! Stitch's one internal trace model.
//!
//! Every receiver converts its wire format into these types at the edge, and every API converts
//! out of them. The shape follows OTLP (resource → scope → span) because OTLP is the richest of
//! the formats Stitch speaks: a Zipkin or Jaeger span fits into it without loss, and an OTLP span
//! round-trips through it unchanged.
//!
//! This crate performs no I/O, knows no wire format and never allocates behind the caller's back
//! beyond the values it owns.

mod ids;
mod trace;
mod value;

pub use ids::{IdError, SpanId, TraceId};
pub use trace::{SpanRef, Trace};
pub use value::{AnyValue, KeyValue, find_attribute};

use std::sync::Arc;

/// The attribute key OpenTelemetry uses for the logical name of a service.
pub const SERVICE_NAME: &str = "service.name";

/// The service name used when a resource carries none, as the OpenTelemetry SDKs do.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Nanoseconds in one of the duration units Go's `time.ParseDuration` knows, as every duration
/// Stitch reads is written (TraceQL, sampling conditions, API parameters): `ns`, `us` (also
/// `µs` and `μs`), `ms`, `s`, `m`, `h`. `None` for anything else.
pub fn duration_unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// A batch of spans as it arrives from one export request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub resource_spans: Vec<ResourceSpans>,
}

impl Batch {
    /// Number of spans in the batch.
    pub fn span_count(&self) -> usize {
        self.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }

    /// Keeps the spans for which `keep` is true (it may change them), in order, and drops the
    /// scope and resource groups left empty.
    pub fn retain_spans(&mut self, mut keep: impl FnMut(&mut Span) -> bool) {
        for rs in &mut self.resource_spans {
            for ss in &mut rs.scope_spans {
                ss.spans.retain_mut(&mut keep);
            }
            rs.scope_spans.retain(|ss| !ss.spans.is_empty());
        }
        self.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
    }

    /// Every span with the resource and scope that produced it.
    pub fn spans(&self) -> impl Iterator<Item = SpanRef<'_>> {
        self.resource_spans.iter().flat_map(|rs| {
            rs.scope_spans.iter().flat_map(move |ss| {
                ss.spans.iter().map(move |span| SpanRef {
                    resource: &rs.resource,
                    scope: &ss.scope,
                    span,
                })
            })
        })
    }
}

/// Spans produced by one resource (a process, a container, a function).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceSpans {
    /// Shared so that a batch can be split by trace id without copying the resource.
    pub resource: Arc<Resource>,
    pub scope_spans: Vec<ScopeSpans>,
}

/// Spans produced by one instrumentation scope within a resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScopeSpans {
    pub scope: Arc<Scope>,
    pub spans: Vec<Span>,
}

/// The entity that produced telemetry, described by attributes such as `service.name`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    /// The schema URL of the resource (OTLP `ResourceSpans.schema_url`).
    pub schema_url: String,
}

impl Resource {
    /// The `service.name` attribute, or [`UNKNOWN_SERVICE`] when it is absent or not a string.
    pub fn service_name(&self) -> &str {
        match find_attribute(&self.attributes, SERVICE_NAME) {
            Some(AnyValue::String(s)) if !s.is_empty() => s,
            _ => UNKNOWN_SERVICE,
        }
    }
}

/// The instrumentation library that created spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    /// The schema URL of the scope (OTLP `ScopeSpans.schema_url`).
    pub schema_url: String,
}

/// One unit of work.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C `tracestate` of the span context, verbatim.
    pub trace_state: String,
    /// W3C trace flags in the low 8 bits; OTLP's context flags in bits 8 and 9.
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status: Status,
}

impl Span {
    /// Duration in nanoseconds; zero when the end precedes the start.
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }

    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }
}

/// The role of a span in a trace, as OTLP defines it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// The OTLP enum number.
    pub fn as_i32(self) -> i32 {
        match self {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }

    /// The kind for an OTLP enum number; `None` for numbers OTLP does not define.
    pub fn from_i32(n: i32) -> Option<SpanKind> {
        Some(match n {
            0 => SpanKind::Unspecified,
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => return None,
        })
    }

    /// Lower-case name as Jaeger and Zipkin spell kinds (`server`, `client`, ...); empty for
    /// unspecified.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Parses the lower-case names of [`SpanKind::as_str`] (case-insensitive) and the OTLP
    /// enum names (`SPAN_KIND_SERVER`).
    pub fn parse(s: &str) -> Option<SpanKind> {
        let s = s.trim();
        let s = s
            .strip_prefix("SPAN_KIND_")
            .or_else(|| s.strip_prefix("span_kind_"))
            .unwrap_or(s);
        Some(match s.to_ascii_lowercase().as_str() {
            "unspecified" | "" => SpanKind::Unspecified,
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }
}

/// Outcome of a span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub fn as_i32(self) -> i32 {
        match self {
            StatusCode::Unset => 0,
            StatusCode::Ok => 1,
            StatusCode::Error => 2,
        }
    }

    pub fn from_i32(n: i32) -> Option<StatusCode> {
        Some(match n {
            0 => StatusCode::Unset,
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => return None,
        })
    }
}

/// A timestamped annotation within a span.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// A reference from a span to a span of the same or another trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

#[cfg(test)]
mod tests {
    use super::duration_unit_nanos;

    #[test]
    fn go_duration_units_and_both_micro_signs() {
        for (unit, nanos) in [
            ("ns", 1),
            ("us", 1_000),
            ("\u{b5}s", 1_000),
            ("\u{3bc}s", 1_000),
            ("ms", 1_000_000),
            ("s", 1_000_000_000),
            ("m", 60_000_000_000),
            ("h", 3_600_000_000_000),
        ] {
            assert_eq!(duration_unit_nanos(unit), Some(nanos), "{unit}");
        }
        for unit in ["", "d", "w", "sec", "MS", "H"] {
            assert_eq!(duration_unit_nanos(unit), None, "{unit}");
        }
    }
}
