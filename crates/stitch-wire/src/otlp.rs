//! OTLP protobuf: `ExportTraceServiceRequest` ⇄ [`Batch`], and the response bodies.
//!
//! Decoding uses the prost types of `opentelemetry-proto` (re-exported as [`proto`]) and then
//! converts them with [`from_proto`], which leaves invalid spans out (see [`SpanError`]).
//!
//! # What the model normalises
//!
//! The conversion is lossless for everything the model holds. Protobuf → model → protobuf gives
//! back the input when the input is in the canonical form [`to_proto`] writes, which differs
//! from other valid encodings only in details that carry no information:
//!
//! - `resource`, `scope`, `status` and `KeyValue.value` are always present in the output, empty
//!   when the model holds defaults (an absent message and an empty one decode alike);
//! - an 8-byte all-zero `parent_span_id` becomes an empty one (no parent);
//! - resource and scope groups without valid spans are dropped;
//! - the profiles-only fields `Resource.entity_refs`, `KeyValue.key_strindex` and
//!   `AnyValue.string_value_strindex` have no meaning for traces and are not kept (a
//!   `string_value_strindex` value decodes as an empty value).

use std::sync::Arc;

use prost::Message;
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanId, SpanKind, Status, StatusCode, Trace, TraceId,
};

use crate::{Decoded, IdField, Rejections, SpanError, SpanPos};

/// The generated OTLP protobuf types this module converts from and to.
pub mod proto {
    pub use opentelemetry_proto::tonic::collector::trace::v1 as collector;
    pub use opentelemetry_proto::tonic::common::v1 as common;
    pub use opentelemetry_proto::tonic::resource::v1 as resource;
    pub use opentelemetry_proto::tonic::trace::v1 as trace;
}

pub use proto::collector::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use proto::common as pc;
use proto::resource as pr;
use proto::trace as pt;

/// Why bytes are not an OTLP protobuf export request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("export trace request is not valid protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Decodes a protobuf `ExportTraceServiceRequest` and converts it into the model.
pub fn decode_export_request(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let request = ExportTraceServiceRequest::decode(bytes)?;
    Ok(from_proto(request))
}

/// Converts a decoded request into the model, leaving invalid spans out.
pub fn from_proto(request: ExportTraceServiceRequest) -> Decoded {
    convert(request, &[])
}

/// [`from_proto`] with rejections found before the protobuf stage (by the JSON decoder), in
/// document order. A span listed there is rejected with that error whatever its fields say.
pub(crate) fn convert(
    request: ExportTraceServiceRequest,
    early: &[(SpanPos, SpanError)],
) -> Decoded {
    let mut early = early.iter().peekable();
    let mut rejections = Rejections::default();
    let mut resource_spans = Vec::with_capacity(request.resource_spans.len());
    for (ri, rs) in request.resource_spans.into_iter().enumerate() {
        let resource = Arc::new(resource_from_proto(
            rs.resource.unwrap_or_default(),
            rs.schema_url,
        ));
        let mut scope_spans = Vec::with_capacity(rs.scope_spans.len());
        for (si, ss) in rs.scope_spans.into_iter().enumerate() {
            let scope = Arc::new(scope_from_proto(
                ss.scope.unwrap_or_default(),
                ss.schema_url,
            ));
            let mut spans = Vec::with_capacity(ss.spans.len());
            for (i, span) in ss.spans.into_iter().enumerate() {
                let pos = SpanPos {
                    resource: ri,
                    scope: si,
                    span: i,
                };
                if let Some((_, error)) = early.next_if(|(p, _)| *p == pos) {
                    rejections.add(pos, error);
                    continue;
                }
                match span_from_proto(span) {
                    Ok(span) => spans.push(span),
                    Err(error) => rejections.add(pos, &error),
                }
            }
            if !spans.is_empty() {
                scope_spans.push(ScopeSpans { scope, spans });
            }
        }
        if !scope_spans.is_empty() {
            resource_spans.push(ResourceSpans {
                resource,
                scope_spans,
            });
        }
    }
    rejections.finish(Batch { resource_spans })
}

/// Converts the model into a request in canonical form.
pub fn to_proto(batch: &Batch) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: batch
            .resource_spans
            .iter()
            .map(resource_spans_to_proto)
            .collect(),
    }
}

/// A whole trace as OTLP `TracesData` (the same shape as an export request).
pub fn trace_to_proto(trace: &Trace) -> pt::TracesData {
    pt::TracesData {
        resource_spans: trace
            .resource_spans
            .iter()
            .map(resource_spans_to_proto)
            .collect(),
    }
}

/// [`trace_to_proto`], encoded: the bytes of an OTLP `TracesData` (and of Tempo's `Trace`,
/// the same message on the wire).
pub fn encode_trace(trace: &Trace) -> Vec<u8> {
    trace_to_proto(trace).encode_to_vec()
}

/// Grafana Tempo's `TraceByIDResponse` for a complete lookup: `trace` in field 1 (Tempo's
/// `Trace`, the same message as `TracesData` on the wire), the status left at `COMPLETE`.
pub fn encode_trace_by_id_response(trace: &Trace) -> Vec<u8> {
    let inner = trace_to_proto(trace);
    let mut out = Vec::with_capacity(inner.encoded_len() + 11);
    prost::encoding::message::encode(1, &inner, &mut out);
    out
}

/// [`to_proto`], encoded.
pub fn encode_batch(batch: &Batch) -> Vec<u8> {
    to_proto(batch).encode_to_vec()
}

/// The body of an OTLP/gRPC or OTLP/HTTP protobuf export response. `partial_success` is set
/// only when spans were rejected or there is a message.
pub fn encode_export_response(rejected: u64, message: &str) -> Vec<u8> {
    let partial_success =
        (rejected > 0 || !message.is_empty()).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: message.to_owned(),
        });
    ExportTraceServiceResponse { partial_success }.encode_to_vec()
}

/// `google.rpc.Status` without details, the body of an OTLP/HTTP protobuf error response.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// Encodes a `google.rpc.Status` (code and message, no details) as protobuf.
pub fn encode_status_proto(code: i32, message: &str) -> Vec<u8> {
    RpcStatus {
        code,
        message: message.to_owned(),
    }
    .encode_to_vec()
}

/// One resource group in canonical form; the resource's schema URL goes to
/// `ResourceSpans.schema_url`.
pub fn resource_spans_to_proto(rs: &ResourceSpans) -> pt::ResourceSpans {
    pt::ResourceSpans {
        resource: Some(resource_to_proto(&rs.resource)),
        scope_spans: rs.scope_spans.iter().map(scope_spans_to_proto).collect(),
        schema_url: rs.resource.schema_url.clone(),
    }
}

/// One scope group in canonical form; the scope's schema URL goes to `ScopeSpans.schema_url`.
pub fn scope_spans_to_proto(ss: &ScopeSpans) -> pt::ScopeSpans {
    pt::ScopeSpans {
        scope: Some(scope_to_proto(&ss.scope)),
        spans: ss.spans.iter().map(span_to_proto).collect(),
        schema_url: ss.scope.schema_url.clone(),
    }
}

/// The resource without its schema URL, which OTLP carries in `ResourceSpans`.
pub fn resource_to_proto(resource: &Resource) -> pr::Resource {
    pr::Resource {
        attributes: key_values_to_proto(&resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        entity_refs: Vec::new(),
    }
}

/// The resource from its message and the `ResourceSpans.schema_url` next to it.
pub fn resource_from_proto(resource: pr::Resource, schema_url: String) -> Resource {
    Resource {
        attributes: key_values_from_proto(resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        schema_url,
    }
}

/// The scope without its schema URL, which OTLP carries in `ScopeSpans`.
pub fn scope_to_proto(scope: &Scope) -> pc::InstrumentationScope {
    pc::InstrumentationScope {
        name: scope.name.clone(),
        version: scope.version.clone(),
        attributes: key_values_to_proto(&scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
    }
}

/// The scope from its message and the `ScopeSpans.schema_url` next to it.
pub fn scope_from_proto(scope: pc::InstrumentationScope, schema_url: String) -> Scope {
    Scope {
        name: scope.name,
        version: scope.version,
        attributes: key_values_from_proto(scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
        schema_url,
    }
}

pub fn span_to_proto(span: &Span) -> pt::Span {
    pt::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span
            .parent_span_id
            .map(|id| id.0.to_vec())
            .unwrap_or_default(),
        flags: span.flags,
        name: span.name.clone(),
        kind: span.kind.as_i32(),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: key_values_to_proto(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span.events.iter().map(event_to_proto).collect(),
        dropped_events_count: span.dropped_events_count,
        links: span.links.iter().map(link_to_proto).collect(),
        dropped_links_count: span.dropped_links_count,
        status: Some(pt::Status {
            message: span.status.message.clone(),
            code: span.status.code.as_i32(),
        }),
    }
}

/// Validates and converts one span; the error names the first field at fault.
pub fn span_from_proto(span: pt::Span) -> Result<Span, SpanError> {
    let trace_id = trace_id_from_bytes(&span.trace_id, IdField::TraceId)?;
    let span_id = span_id_from_bytes(&span.span_id, IdField::SpanId)?;
    let parent_span_id = parent_from_bytes(&span.parent_span_id)?;
    let kind = SpanKind::from_i32(span.kind).ok_or(SpanError::UnknownKind(span.kind))?;
    let status = match span.status {
        None => Status::default(),
        Some(status) => Status {
            code: StatusCode::from_i32(status.code)
                .ok_or(SpanError::UnknownStatusCode(status.code))?,
            message: status.message,
        },
    };
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(SpanError::EndBeforeStart {
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
        });
    }
    let links = span
        .links
        .into_iter()
        .enumerate()
        .map(|(i, link)| link_from_proto(link, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: key_values_from_proto(span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span.events.into_iter().map(event_from_proto).collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count: span.dropped_links_count,
        status,
    })
}

pub fn event_to_proto(event: &Event) -> pt::span::Event {
    pt::span::Event {
        time_unix_nano: event.time_unix_nano,
        name: event.name.clone(),
        attributes: key_values_to_proto(&event.attributes),
        dropped_attributes_count: event.dropped_attributes_count,
    }
}

pub fn event_from_proto(event: pt::span::Event) -> Event {
    Event {
        time_unix_nano: event.time_unix_nano,
        name: event.name,
        attributes: key_values_from_proto(event.attributes),
        dropped_attributes_count: event.dropped_attributes_count,
    }
}

pub fn link_to_proto(link: &Link) -> pt::span::Link {
    pt::span::Link {
        trace_id: link.trace_id.0.to_vec(),
        span_id: link.span_id.0.to_vec(),
        trace_state: link.trace_state.clone(),
        attributes: key_values_to_proto(&link.attributes),
        dropped_attributes_count: link.dropped_attributes_count,
        flags: link.flags,
    }
}

/// Validates and converts the link with index `index` of its span (the index names the link
/// in the error).
pub fn link_from_proto(link: pt::span::Link, index: usize) -> Result<Link, SpanError> {
    Ok(Link {
        trace_id: trace_id_from_bytes(&link.trace_id, IdField::LinkTraceId(index))?,
        span_id: span_id_from_bytes(&link.span_id, IdField::LinkSpanId(index))?,
        trace_state: link.trace_state,
        attributes: key_values_from_proto(link.attributes),
        dropped_attributes_count: link.dropped_attributes_count,
        flags: link.flags,
    })
}

pub fn key_values_to_proto(attributes: &[KeyValue]) -> Vec<pc::KeyValue> {
    attributes.iter().map(key_value_to_proto).collect()
}

pub fn key_values_from_proto(attributes: Vec<pc::KeyValue>) -> Vec<KeyValue> {
    attributes.into_iter().map(key_value_from_proto).collect()
}

/// The value is always present, empty for [`AnyValue::Empty`].
pub fn key_value_to_proto(kv: &KeyValue) -> pc::KeyValue {
    pc::KeyValue {
        key: kv.key.clone(),
        value: Some(any_value_to_proto(&kv.value)),
        key_strindex: 0,
    }
}

/// An absent value becomes [`AnyValue::Empty`].
pub fn key_value_from_proto(kv: pc::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key,
        value: kv.value.map(any_value_from_proto).unwrap_or_default(),
    }
}

pub fn any_value_to_proto(value: &AnyValue) -> pc::AnyValue {
    use pc::any_value::Value as V;
    let value = match value {
        AnyValue::Empty => None,
        AnyValue::String(s) => Some(V::StringValue(s.clone())),
        AnyValue::Bool(b) => Some(V::BoolValue(*b)),
        AnyValue::Int(i) => Some(V::IntValue(*i)),
        AnyValue::Double(d) => Some(V::DoubleValue(*d)),
        AnyValue::Bytes(b) => Some(V::BytesValue(b.clone())),
        AnyValue::Array(items) => Some(V::ArrayValue(pc::ArrayValue {
            values: items.iter().map(any_value_to_proto).collect(),
        })),
        AnyValue::KvList(kvs) => Some(V::KvlistValue(pc::KeyValueList {
            values: key_values_to_proto(kvs),
        })),
    };
    pc::AnyValue { value }
}

pub fn any_value_from_proto(value: pc::AnyValue) -> AnyValue {
    use pc::any_value::Value as V;
    match value.value {
        None | Some(V::StringValueStrindex(_)) => AnyValue::Empty,
        Some(V::StringValue(s)) => AnyValue::String(s),
        Some(V::BoolValue(b)) => AnyValue::Bool(b),
        Some(V::IntValue(i)) => AnyValue::Int(i),
        Some(V::DoubleValue(d)) => AnyValue::Double(d),
        Some(V::BytesValue(b)) => AnyValue::Bytes(b),
        Some(V::ArrayValue(array)) => {
            AnyValue::Array(array.values.into_iter().map(any_value_from_proto).collect())
        }
        Some(V::KvlistValue(list)) => AnyValue::KvList(key_values_from_proto(list.values)),
    }
}

fn trace_id_from_bytes(bytes: &[u8], field: IdField) -> Result<TraceId, SpanError> {
    let id = TraceId(bytes.try_into().map_err(|_| SpanError::IdLength {
        field,
        expected: 16,
        got: bytes.len(),
    })?);
    if !id.is_valid() {
        return Err(SpanError::ZeroId { field });
    }
    Ok(id)
}

fn span_id_from_bytes(bytes: &[u8], field: IdField) -> Result<SpanId, SpanError> {
    let id = SpanId(bytes.try_into().map_err(|_| SpanError::IdLength {
        field,
        expected: 8,
        got: bytes.len(),
    })?);
    if !id.is_valid() {
        return Err(SpanError::ZeroId { field });
    }
    Ok(id)
}

/// Empty or eight zero bytes mean "no parent" (some SDKs send the zero id for root spans).
fn parent_from_bytes(bytes: &[u8]) -> Result<Option<SpanId>, SpanError> {
    if bytes.is_empty() || bytes == [0u8; 8] {
        return Ok(None);
    }
    span_id_from_bytes(bytes, IdField::ParentSpanId).map(Some)
}
