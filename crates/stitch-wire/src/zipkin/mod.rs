//! Zipkin: v2 JSON, v2 protobuf (`zipkin.proto3.ListOfSpans`) and v1 JSON → the model, and
//! the model → Zipkin v2 spans for Zipkin's query API.
//!
//! The mapping is the established Zipkin ↔ OTLP one: the OpenTelemetry Collector's Zipkin
//! receiver and exporter, and OpenTelemetry's Zipkin exporter specification. Where those leave
//! a choice, the choice made here is stated.
//!
//! # Decoding (Zipkin → model)
//!
//! [`decode_v2_json`], [`decode_v2_proto`] and [`decode_v1_json`] take a request body. A body
//! that is not a span list at all (not JSON or protobuf, not a list, a field of the wrong JSON
//! type, an annotation without a value) is a [`ZipkinError`] naming the path of the problem.
//! Spans that are well-formed but invalid are left out, counted and described in
//! [`Decoded::error_message`] as `span N: <reason>` (N is the index in the list), with the
//! same [`SpanError`]s as OTLP:
//!
//! - `traceId` absent, not 1 to 32 hex digits (protobuf: not 8 or 16 bytes) or all zeros;
//!   `id` absent, not 1 to 16 hex digits (protobuf: not 8 bytes) or all zeros; a `parentId`
//!   that is not a valid id. Short hex ids are left-padded with zeros, as Zipkin pads them, so a
//!   64-bit trace id is the 128-bit id with a zero high half. Either case of hex is accepted.
//!   A zero `parentId`, or one equal to `id`, means no parent.
//! - a `kind` other than `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER` (any case);
//! - no `timestamp` and no annotation to take one from, or a time beyond `u64` nanoseconds.
//!
//! Each valid span becomes one model span:
//!
//! | Zipkin | model |
//! | --- | --- |
//! | `traceId`, `id`, `parentId` | the same ids (64-bit trace ids with a zero high half) |
//! | `shared: true` | span id [`shared_span_id`]`(id)`, parent `id` (see below) |
//! | `kind` | `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER`; absent → the `span.kind` tag when it names a kind (the exporter writes `span.kind=internal`), else unspecified |
//! | `name` | name, as sent (Zipkin lower-cases names and service names; Stitch keeps them) |
//! | `timestamp`, `duration` (µs) | start = timestamp × 1000; end = start + duration × 1000 (no duration: end = start). No timestamp: the earliest annotation's |
//! | `localEndpoint.serviceName` | resource `service.name` (absent: no `service.name`, shown as `unknown_service`) |
//! | `localEndpoint.ipv4`/`ipv6`, `port` | span attributes `net.host.ip` (string; IPv4 preferred), `net.host.port` (int), as the Collector does |
//! | `remoteEndpoint.serviceName` | `peer.service` |
//! | `remoteEndpoint.ipv4`/`ipv6`, `port` | `net.peer.ip` (string; IPv4 preferred), `net.peer.port` (int) |
//! | `tags` | string attributes, except the tags below; a tag wins over an endpoint attribute of the same key |
//! | tags `otel.status_code`, `otel.status_description`, `error` | status: `otel.status_code` (`OK`, `ERROR`, `UNSET`) sets the code, `otel.status_description` the message; an `error` tag (any value but `"false"`) makes it ERROR, its value being the message unless it is `true` or empty |
//! | tags `otel.scope.name`/`otel.scope.version` (or `otel.library.*`) | the instrumentation scope |
//! | tag `w3c.tracestate` | trace state |
//! | tags `otlp.link.N` = `traceid\|spanid\|tracestate\|{json}\|dropped` | links (the Collector exporter's format) |
//! | tags `otel.dropped_{attributes,events,links}_count` | the dropped counts |
//! | tags of OpenTelemetry resource namespaces (`host.*`, `service.*` but `service.name`, `telemetry.*`, `os.*`, `process.*`, `container.*`, `k8s.*`, `cloud.*`, `deployment.*`, `device.*`, `webengine.*`) | resource attributes (string), as the Collector moves them |
//! | `annotations` | events at timestamp × 1000; a value `name\|{json}\|dropped` (the Collector exporter's format) gives the name, typed attributes and the dropped count, `{"name": {json}}` (the specification's format, which OpenTelemetry Python writes) the name and typed attributes; any other value is the name |
//! | tag `service.name` equal to the local service | dropped (exporters copy resource attributes, this one included, into tags) |
//! | `debug: true` | bool attribute `zipkin.debug` = true |
//! | (reported spans are sampled) | flags = `0x01` (W3C sampled) |
//!
//! **Tags stay strings.** Zipkin tags are strings; the Collector can parse `"42"` into an int
//! (`ParseStringTags`), but that guesses (`"007"`, an id that happens to be numeric), so Stitch
//! keeps what was sent. Search compares attributes as text, so `http.status_code=500` finds a
//! string `"500"` and an int 500 alike.
//!
//! **Resources.** Spans are grouped into one resource per distinct set of resource attributes
//! (the local service plus resource tags), in the order they first appear, and within it into
//! one scope per scope name and version.
//!
//! **Shared spans.** In Zipkin's B3 model a server may *join* its client's span: both report
//! the same `id`, the server's with `shared: true`. Two spans with one id cannot coexist in a
//! trace, so the server half is given a new span id, [`shared_span_id`]`(id)` — a fixed
//! bijective mix of the 64 bits of `id` (SplitMix64's finaliser of `id ^ 0x9e3779b97f4a7c15`),
//! the same on every ingest of the span so duplicates still collapse — and its parent becomes
//! the client half (`id`). Its original `parentId` (the client's parent) is not kept: it is the
//! client half's parent. Spans whose `parentId` is the shared id keep it, so the server's
//! children hang under the client half in the stored tree (Zipkin itself tells them apart only
//! by their local service at query time); the Zipkin API gives them back exactly as sent.
//!
//! # v1
//!
//! A v1 span is first split into v2 spans by Zipkin's own rules (see `v1` module); then the
//! v2 mapping applies. Rejections name the index of the v1 span.
//!
//! # Encoding (model → Zipkin), for the query API
//!
//! [`trace_to_zipkin`] and [`batch_to_zipkin`] map each span as the Collector's Zipkin exporter
//! does, then [`encode_spans_json`] / [`span_to_json`] / [`encode_spans_proto`] write them:
//!
//! - ids: trace id as 16 hex digits when its high half is zero, else 32; a span whose id is
//!   [`shared_span_id`] of its parent is written back as the shared server half: `id` = the
//!   parent's id, `parentId` = the parent's own parent when the trace holds it, `shared: true`;
//! - kind: CLIENT/SERVER/PRODUCER/CONSUMER; INTERNAL is no kind plus tag `span.kind=internal`;
//! - `timestamp` = start / 1000 (absent for 0); `duration` = (end − start) / 1000, at least 1
//!   when the span has any length, absent for zero length;
//! - `localEndpoint`: `serviceName` = the resource's service name (`unknown_service` when
//!   absent), `ipv4`/`ipv6`/`port` from `net.host.ip`/`net.host.port`;
//! - `remoteEndpoint`: `serviceName` from `peer.service`, or for CLIENT and PRODUCER spans the
//!   first of [`REMOTE_SERVICE_FALLBACKS`] (`server.address`, `net.peer.name`, ...); address
//!   and port from `net.peer.ip`/`net.peer.port`, else `network.peer.address`/`port` and their
//!   legacy names;
//! - tags: every resource attribute but `service.name`, `otel.scope.name` and
//!   `otel.scope.version`, every span attribute (as text: [`AnyValue::to_text`], so arrays are
//!   JSON-like lists) except those the endpoints and `debug` express, then `otel.status_code`
//!   (`OK`/`ERROR`, absent when unset), `error` = the message (only for ERROR; an `error`
//!   attribute is dropped otherwise, as the specification asks), `otel.status_description`
//!   when the message cannot travel in `error`, `w3c.tracestate`, `otlp.link.N`, and the
//!   non-zero dropped counts. A span attribute wins over a resource attribute of the same key;
//! - events: annotations at time / 1000; an event with attributes (or dropped attributes) is
//!   written `name|{attributes as JSON}|dropped`;
//! - `debug` from `zipkin.debug` = true.
//!
//! # What Zipkin cannot express
//!
//! The same trace sent over OTLP and over Zipkin is stored alike except for what Zipkin has no
//! place for (`crates/stitch/tests/zipkin.rs` checks this):
//!
//! - attribute types: span and resource attributes arrive as strings (int 8 → `"8"`, arrays as
//!   JSON-like text); typed event attributes survive only in the Collector's annotation format;
//! - attribute order (Zipkin tags are a map, read back in key order) and duplicate keys;
//! - resource attributes outside the resource namespaces above (they become span attributes),
//!   resource and scope schema URLs, scope attributes, dropped counts of resources and scopes;
//! - span flags (Zipkin spans are stored with `0x01`), timestamps finer than a microsecond;
//! - the `error` attribute of a span whose status is not ERROR, and a status message on an
//!   unset status arrives as `otel.status_description` only through Stitch's own encoder;
//! - shared spans: the server half's span id is derived (see above) and the server's children
//!   hang under the client half;
//! - links and typed event attributes only through the Collector's tag and annotation formats.

mod from_model;
mod json;
mod proto;
mod span;
mod to_model;
mod v1;

use stitch_model::SpanId;

pub use from_model::{REMOTE_SERVICE_FALLBACKS, batch_to_zipkin, span_to_zipkin, trace_to_zipkin};
pub use json::{encode_spans_json, endpoint_to_json, span_to_json};
pub use proto::{
    ListOfSpans, ProtoAnnotation, ProtoEndpoint, Span as ProtoSpan, encode_spans_proto,
    span_to_proto,
};
pub use span::{Annotation, Endpoint, ZipkinSpan, trace_id_to_zipkin};
pub use to_model::{RESOURCE_TAG_PREFIXES, is_resource_tag, span_from_zipkin};

#[cfg(doc)]
use crate::{Decoded, SpanError};
#[cfg(doc)]
use stitch_model::AnyValue;

/// Tag keys with a meaning in the mapping.
pub mod tag {
    pub const STATUS_CODE: &str = "otel.status_code";
    pub const STATUS_DESCRIPTION: &str = "otel.status_description";
    pub const ERROR: &str = "error";
    pub const SPAN_KIND: &str = "span.kind";
    pub const TRACE_STATE: &str = "w3c.tracestate";
    pub const SCOPE_NAME: &str = "otel.scope.name";
    pub const SCOPE_VERSION: &str = "otel.scope.version";
    pub const LIBRARY_NAME: &str = "otel.library.name";
    pub const LIBRARY_VERSION: &str = "otel.library.version";
    pub const LINK_PREFIX: &str = "otlp.link.";
    pub const DROPPED_ATTRIBUTES: &str = "otel.dropped_attributes_count";
    pub const DROPPED_EVENTS: &str = "otel.dropped_events_count";
    pub const DROPPED_LINKS: &str = "otel.dropped_links_count";
}

/// Span attributes the endpoints and flags of a Zipkin span become.
pub mod attr {
    pub const NET_HOST_IP: &str = "net.host.ip";
    pub const NET_HOST_PORT: &str = "net.host.port";
    pub const PEER_SERVICE: &str = "peer.service";
    pub const NET_PEER_IP: &str = "net.peer.ip";
    pub const NET_PEER_PORT: &str = "net.peer.port";
    pub const ZIPKIN_DEBUG: &str = "zipkin.debug";
}

/// Why a body is not a Zipkin span list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZipkinError {
    /// The bytes are not JSON at all.
    #[error("request body is not valid json: {0}")]
    Syntax(String),
    /// A value has the wrong JSON type or content; `path` is like `[3].localEndpoint.port`,
    /// empty for the document itself.
    #[error("{}: {message}", if .path.is_empty() { "request body" } else { .path.as_str() })]
    Invalid { path: String, message: String },
    /// The bytes are not a protobuf `ListOfSpans`.
    #[error("request body is not a valid zipkin.proto3.ListOfSpans: {0}")]
    Protobuf(prost::DecodeError),
}

/// Decodes a Zipkin v2 JSON span list (`POST /api/v2/spans`, `application/json`).
pub fn decode_v2_json(bytes: &[u8]) -> Result<crate::Decoded, ZipkinError> {
    let spans = json::parse_v2(bytes)?;
    Ok(to_model::assemble(spans.into_iter().enumerate()))
}

/// Decodes a Zipkin v2 protobuf `ListOfSpans` (`POST /api/v2/spans`,
/// `application/x-protobuf`).
pub fn decode_v2_proto(bytes: &[u8]) -> Result<crate::Decoded, ZipkinError> {
    let spans = proto::parse(bytes)?;
    Ok(to_model::assemble(spans.into_iter().enumerate()))
}

/// Decodes a Zipkin v1 JSON span list (`POST /api/v1/spans`).
pub fn decode_v1_json(bytes: &[u8]) -> Result<crate::Decoded, ZipkinError> {
    let spans = v1::parse_v1(bytes)?;
    Ok(to_model::assemble(spans))
}

/// The span id given to the server half of a shared Zipkin span whose id is `id`: SplitMix64's
/// finaliser applied to `id ^ 0x9e3779b97f4a7c15`. It is a bijection on 64-bit values, so two
/// shared spans never collide; in the one-in-2^64 case that it yields zero or `id` itself, the
/// next value is used.
pub fn shared_span_id(id: SpanId) -> SpanId {
    let x = id.as_u64();
    let mut z = x ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    if z == 0 || z == x {
        z = z.wrapping_add(1).max(1);
    }
    SpanId::from_u64(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_span_ids_are_fixed_and_distinct() {
        let id = SpanId::from_hex("53995c3f42cd8ad8").unwrap();
        let derived = shared_span_id(id);
        assert_eq!(derived, shared_span_id(id));
        assert_ne!(derived, id);
        assert!(derived.is_valid());
        assert_ne!(
            shared_span_id(SpanId::from_u64(1)),
            shared_span_id(SpanId::from_u64(2))
        );
    }
}
