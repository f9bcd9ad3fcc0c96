//! OTLP/JSON: the JSON encoding of `ExportTraceServiceRequest` ⇄ [`Batch`](stitch_model::Batch),
//! and the JSON response bodies.
//!
//! This is Stitch's own implementation of the OTLP/JSON mapping (it does not use the serde
//! support of `opentelemetry-proto`).
//!
//! # Decoding
//!
//! [`decode_export_request`] accepts what the OTLP specification asks receivers to accept, and
//! what the proto3 JSON mapping allows beyond that:
//!
//! - trace and span ids as hex strings, either case (an empty string is an absent id);
//! - enums as integers or as their OTLP names (`"SPAN_KIND_SERVER"`, `"STATUS_CODE_ERROR"`);
//! - 64-bit integers as decimal strings or JSON numbers, 32-bit integers as numbers or strings;
//! - lowerCamelCase keys, and the proto field names (`trace_id`) too; unknown keys are ignored,
//!   except in a document that holds no `resourceSpans`: there they are what the sender meant
//!   to send, and the document is refused naming them;
//! - `doubleValue` as a number or `"NaN"`, `"Infinity"`, `"-Infinity"`; `bytesValue` as
//!   standard or URL-safe base64, padded or not;
//! - `null` for any field as the field's default; `{}` or `null` as an empty `AnyValue`;
//!   `{"arrayValue":{}}` and `{"kvlistValue":{}}` as an empty array and an empty list.
//!
//! A document that is not an export request (not JSON, an object holding a key twice, not an
//! object, a field of the wrong JSON type, an `AnyValue` with two values) is a [`JsonError`]
//! naming the path of the problem.
//! Spans that are well-formed JSON but invalid — bad ids (including ids that are not hex),
//! unknown enum values, end before start — are rejected and counted exactly as the protobuf
//! decoder does, and the rest of the request is kept.
//!
//! # Encoding
//!
//! [`encode_json`] writes canonical OTLP/JSON: lowerCamelCase keys, lowercase hex ids, enums
//! as integers, 64-bit integers as strings, doubles that are not finite as `"NaN"`,
//! `"Infinity"` or `"-Infinity"`, and no field that holds its default value (empty strings and
//! lists, zeros, default status). Attribute keys and values are always written, and the top
//! level always has `resourceSpans`. Object keys come out in alphabetical order.

mod chunks;
mod decode;
mod encode;
mod jsonpb;
mod strict;

pub use chunks::TraceJsonPieces;
pub use decode::{decode_export_request, from_value};
pub use encode::{
    any_value_to_json, batch_to_json, encode_export_response_json, encode_json, encode_status_json,
    key_value_to_json, resource_spans_to_json, span_to_json, trace_to_json,
};
pub use jsonpb::trace_to_jsonpb;

/// Why a document is not an OTLP/JSON export request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The bytes are not JSON at all.
    #[error("request body is not valid json: {0}")]
    Syntax(String),
    /// A value has the wrong JSON type or content. `path` is the dotted path of the value as it
    /// was spelled in the document (`resourceSpans[0].scopeSpans[1].spans[3].kind`), empty for
    /// the document itself.
    #[error("{}: {message}", display_path(.path))]
    Invalid { path: String, message: String },
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "request body"
    } else {
        path
    }
}
