//! Jaeger's span formats ⇄ the model: Thrift (compact and binary protocols, written by hand
//! from the Apache Thrift specifications and Jaeger's `jaeger.thrift` / `agent.thrift`) and the
//! api_v2 protobuf of the collector's gRPC endpoint (hand-written prost messages, no protoc).
//!
//! | what arrives | decoder |
//! | --- | --- |
//! | agent UDP datagram, compact protocol (port 6831): an `emitBatch` message | [`decode_agent_compact`] |
//! | agent UDP datagram, binary protocol (port 6832): an `emitBatch` message | [`decode_agent_binary`] |
//! | collector HTTP body (port 14268, `POST /api/traces`): a binary-protocol `Batch` | [`decode_collector_thrift`] |
//! | collector gRPC message (port 14250, `jaeger.api_v2.CollectorService/PostSpans`) | [`decode_post_spans`] |
//!
//! The same port serves remote sampling, `jaeger.api_v2.SamplingManager/GetSamplingStrategy`;
//! its messages (no spans in them) are in [`proto`] too.
//!
//! Like every codec in this crate they do no I/O and never panic: lengths and counts are
//! checked against the bytes left before anything is allocated, nesting is limited, bytes after
//! the message are ignored (as Jaeger's agent does), and a span that is invalid is left out and
//! counted in [`Decoded`] while the rest of the batch is kept.
//!
//! # From Jaeger to the model
//!
//! - **Process → resource.** `serviceName` becomes `service.name` (first; left out when
//!   empty), then every process tag, typed, except a `service.name` tag equal to `serviceName`
//!   (OpenTelemetry's gRPC exporter repeats it). In api_v2 a span's own `process` replaces the
//!   batch's; spans with equal processes share one resource.
//! - **Tags → attributes**, typed: STRING → string, DOUBLE → double, BOOL → bool, LONG → int,
//!   BINARY → bytes (a `vType` outside the IDL → empty value). These tags are *taken out* and
//!   become fields of the span instead, when their value has the expected type:
//!   - `span.kind` (`client`, `server`, `producer`, `consumer`, `internal`) → kind;
//!   - `otel.status_code` (`OK`, `ERROR`, `UNSET`) → status code; otherwise `error` = `true`
//!     (bool, or the string `true`) → ERROR. `error=false` is kept as an attribute;
//!   - `otel.status_description` → status message; for an ERROR without one, the message is
//!     the `error.message` tag's value (which stays an attribute);
//!   - `w3c.tracestate` → trace state;
//!   - `otel.scope.name` / `otel.scope.version` (or the older `otel.library.name` /
//!     `otel.library.version`) → the instrumentation scope; spans of one process are grouped by
//!     scope;
//!   - `otel.dropped_attributes_count`, `otel.dropped_events_count`,
//!     `otel.dropped_links_count` (ints) → the dropped counts.
//! - **Logs → events.** The time is the log's timestamp; the name is the string field `event`,
//!   or else the string field `message` (how OpenTelemetry's Jaeger exporters write event
//!   names), which is then taken out of the attributes; every other field is an attribute
//!   (`otel.dropped_attributes_count` → the event's dropped count).
//! - **References.** `parentSpanId` (Thrift) is the parent when not zero. Otherwise the first
//!   `CHILD_OF` reference to a span of the same trace is the parent. Every other reference
//!   becomes a link with the attribute `opentracing.ref_type` = `child_of` or `follows_from`
//!   (none for a reference type outside the IDL); a reference that repeats the parent is
//!   dropped. So `FOLLOWS_FROM` is always a link, never the parent.
//! - **Ids.** `traceIdHigh`/`traceIdLow` (Thrift) or the 16 bytes of api_v2 form the 128-bit
//!   trace id; a 64-bit id (high half zero) stays right-aligned, as Jaeger prints it. Span ids
//!   are the 64-bit value, big-endian.
//! - **Times.** Thrift times are microseconds, multiplied to nanoseconds; api_v2 timestamps and
//!   durations keep their nanoseconds. The end is start + duration.
//! - **Flags.** The low 8 bits of Jaeger's flags land verbatim in the W3C trace flags byte:
//!   sampled (1) means sampled in both; Jaeger's debug bit (2) keeps its position, so the
//!   Jaeger query API returns it unchanged.
//!
//! A span is rejected (counted, named in [`Decoded::error_message`] as `span N`, the rest kept)
//! when its trace id or span id is zero, an api_v2 id has the wrong length, a reference has a
//! zero id, a time or duration is negative or overflows, or a required Thrift field
//! (`traceIdLow`, `traceIdHigh`, `spanId`, `parentSpanId`, `operationName`, `flags`,
//! `startTime`, `duration`) is absent or has the wrong Thrift type. A `Batch` without
//! `process` or `spans`, or a `Process` without `serviceName`, fails the whole batch, as it
//! does in Jaeger. Tags without key or type and references without ids are dropped.
//!
//! # What a trace loses on the way through Jaeger
//!
//! The same trace sent over OTLP and over Jaeger is stored the same, except for what Jaeger's
//! formats cannot carry (checked by `tests/jaeger.rs` here and end to end):
//!
//! - **Time precision**: Thrift carries microseconds, so nanoseconds below a microsecond are
//!   cut (api_v2 keeps nanoseconds).
//! - **Attribute types**: arrays and key-value lists have no Jaeger type; senders (and
//!   [`to_thrift`]) turn them into strings, which arrive as strings. Empty values arrive as
//!   empty strings.
//! - **Scope**: only its name and version (as tags); scope attributes, scope and resource
//!   schema URLs and the resource's dropped attribute count are lost.
//! - **Links**: only trace id, span id and the reference type; link attributes, trace state
//!   and flags are lost. A link arrives with `opentracing.ref_type` even if it had none.
//! - **Events**: an attribute named `event` (or, when the name is empty, `message`) becomes
//!   the name.
//! - **Flags**: only the low 8 bits (the W3C trace flags); OTLP's context flags (bits 8 and 9)
//!   are lost.
//! - **Kind**: `internal` and unspecified are distinct only if the sender writes `span.kind`
//!   for one and not the other.
//! - **Tags with the names above** (`span.kind`, `error`, `otel.*`, `w3c.tracestate`) are
//!   read as span fields, so an OTLP attribute that happens to use one of these names cannot
//!   be told apart from the field.
//!
//! Senders add their own differences: OpenTelemetry's Python Jaeger exporter copies resource
//! attributes into every span's tags and sends only `serviceName` as the process, writes the
//! scope under both tag spellings, and rounds times to the nearest microsecond; jaeger-client
//! adds process tags of its own (`jaeger.version`, `hostname`, `ip`, `client-uuid`).
//!
//! # From the model to Jaeger
//!
//! [`to_thrift`] and [`to_proto`] write what a Jaeger client that knows the OpenTelemetry
//! conventions sends, with the same tag names as the query API's Jaeger JSON (see
//! [`ui_json`]): decoding what they write gives back the model for everything listed above as
//! expressible. They exist for tests, fixtures and tools; Stitch itself never sends Jaeger.

mod convert;
pub mod proto;
pub mod thrift;
pub mod types;
pub mod ui_json;

use prost::Message;

use crate::Decoded;
use thrift::{BinaryIn, BinaryOut, CompactIn, CompactOut, ThriftError};

pub use convert::{from_proto, from_thrift, tag_to_key_value, to_proto, to_thrift, value_to_tag};

/// Tag key of the span kind.
pub const TAG_SPAN_KIND: &str = "span.kind";
/// Tag key of the status code (`OK`, `ERROR`, `UNSET`).
pub const TAG_STATUS_CODE: &str = "otel.status_code";
/// Tag key of the status message.
pub const TAG_STATUS_DESCRIPTION: &str = "otel.status_description";
/// Tag key of the boolean error flag.
pub const TAG_ERROR: &str = "error";
/// Tag whose value is the status message of an error span without `otel.status_description`.
pub const TAG_ERROR_MESSAGE: &str = "error.message";
/// Tag key of the scope name.
pub const TAG_SCOPE_NAME: &str = "otel.scope.name";
/// Tag key of the scope version.
pub const TAG_SCOPE_VERSION: &str = "otel.scope.version";
/// The older tag key of the scope name.
pub const TAG_LIBRARY_NAME: &str = "otel.library.name";
/// The older tag key of the scope version.
pub const TAG_LIBRARY_VERSION: &str = "otel.library.version";
/// Tag key of the W3C trace state.
pub const TAG_TRACE_STATE: &str = "w3c.tracestate";
/// Tag keys of the dropped counts.
pub const TAG_DROPPED_ATTRIBUTES: &str = "otel.dropped_attributes_count";
pub const TAG_DROPPED_EVENTS: &str = "otel.dropped_events_count";
pub const TAG_DROPPED_LINKS: &str = "otel.dropped_links_count";
/// Log field holding an event's name.
pub const FIELD_EVENT: &str = "event";
/// Log field holding an event's name when there is no `event` field.
pub const FIELD_MESSAGE: &str = "message";
/// Link attribute holding the Jaeger reference type (`child_of`, `follows_from`).
pub const LINK_REF_TYPE: &str = "opentracing.ref_type";

const REF_CHILD_OF: i32 = proto::REF_CHILD_OF;
const REF_FOLLOWS_FROM: i32 = proto::REF_FOLLOWS_FROM;

/// Why bytes are not a Jaeger batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JaegerError {
    #[error("not a Jaeger Thrift batch: {0}")]
    Thrift(#[from] ThriftError),
    #[error("not a Jaeger api_v2 PostSpansRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Decodes an agent datagram in the compact protocol (an `emitBatch` message).
pub fn decode_agent_compact(bytes: &[u8]) -> Result<Decoded, JaegerError> {
    let batch = types::read_emit_batch(&mut CompactIn::new(bytes))?;
    Ok(from_thrift(batch))
}

/// Decodes an agent datagram in the binary protocol (an `emitBatch` message).
pub fn decode_agent_binary(bytes: &[u8]) -> Result<Decoded, JaegerError> {
    let batch = types::read_emit_batch(&mut BinaryIn::new(bytes))?;
    Ok(from_thrift(batch))
}

/// Decodes a collector HTTP body: a `Batch` struct in the binary protocol.
pub fn decode_collector_thrift(bytes: &[u8]) -> Result<Decoded, JaegerError> {
    let batch = types::read_batch(&mut BinaryIn::new(bytes))?;
    Ok(from_thrift(batch))
}

/// Decodes a protobuf `PostSpansRequest`. A request without a batch is an empty batch.
pub fn decode_post_spans(bytes: &[u8]) -> Result<Decoded, JaegerError> {
    let request = proto::PostSpansRequest::decode(bytes)?;
    Ok(from_proto(request.batch.unwrap_or_default()))
}

/// An agent `emitBatch` datagram in the compact protocol.
pub fn encode_agent_compact(batch: &types::Batch, seq_id: i32) -> Vec<u8> {
    let mut out = CompactOut::new();
    types::write_emit_batch(&mut out, batch, seq_id);
    thrift::Output::into_bytes(out)
}

/// An agent `emitBatch` datagram in the binary protocol.
pub fn encode_agent_binary(batch: &types::Batch, seq_id: i32) -> Vec<u8> {
    let mut out = BinaryOut::new();
    types::write_emit_batch(&mut out, batch, seq_id);
    thrift::Output::into_bytes(out)
}

/// A collector HTTP body: the `Batch` struct in the binary protocol.
pub fn encode_collector_thrift(batch: &types::Batch) -> Vec<u8> {
    let mut out = BinaryOut::new();
    types::write_batch(&mut out, batch);
    thrift::Output::into_bytes(out)
}

/// A protobuf `PostSpansRequest` for one batch.
pub fn encode_post_spans(batch: proto::Batch) -> Vec<u8> {
    proto::PostSpansRequest { batch: Some(batch) }.encode_to_vec()
}
