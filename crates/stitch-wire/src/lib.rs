//! I/O-free codecs between wire formats (OTLP protobuf and OTLP/JSON; Zipkin v2 JSON, v2
//! protobuf and v1 JSON in [`zipkin`]) and Stitch's model.
//!
//! # Contract
//!
//! - This crate never performs I/O, spawns no tasks and knows nothing about HTTP or gRPC: every
//!   function takes bytes or values and returns bytes or values.
//! - No input can make it panic. Bytes that are not an export request at all are an error
//!   ([`otlp::DecodeError`], [`otlp_json::JsonError`]); a request that parses but carries invalid
//!   spans is decoded into a [`Decoded`] that leaves those spans out, counts them and says why
//!   in [`Decoded::error_message`], ready for an OTLP partial-success response.
//! - Both wire formats apply the same validation ([`SpanError`]): a span is rejected when its
//!   trace id is not 16 bytes or all zero, its span id is not 8 bytes or all zero, its parent
//!   span id is neither empty nor 8 valid bytes (8 zero bytes count as "no parent"), its kind or
//!   status code is not one OTLP defines, one of its links has an invalid id, or it ends before
//!   it starts.
//! - Conversions are lossless for valid data: model → wire → model is the identity, and
//!   protobuf → model → protobuf is the identity for valid input in canonical form (see
//!   [`otlp`] for the few protobuf details the model normalises).
//! - Resource and scope groups that end up without spans are dropped: an empty group carries
//!   nothing worth storing.

use std::fmt;

pub mod jaeger;
pub mod otlp;
pub mod otlp_json;
pub mod zipkin;

mod base64;
mod hex;

use stitch_model::Batch;

/// The result of decoding one export request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    /// The valid spans, grouped by resource and scope as they arrived.
    pub batch: Batch,
    /// How many spans were left out because they were invalid.
    pub rejected_spans: u64,
    /// Empty when nothing was rejected; otherwise the first problems, each with the position of
    /// the span, and how many more spans were rejected.
    pub error_message: String,
}

/// Which identifier of a span is at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdField {
    TraceId,
    SpanId,
    ParentSpanId,
    /// The trace id of the link with this index.
    LinkTraceId(usize),
    /// The span id of the link with this index.
    LinkSpanId(usize),
}

impl fmt::Display for IdField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdField::TraceId => f.write_str("trace id"),
            IdField::SpanId => f.write_str("span id"),
            IdField::ParentSpanId => f.write_str("parent span id"),
            IdField::LinkTraceId(i) => write!(f, "link {i} trace id"),
            IdField::LinkSpanId(i) => write!(f, "link {i} span id"),
        }
    }
}

/// Why one span is invalid and was left out of a batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("{field} must be {expected} bytes, got {got}")]
    IdLength {
        field: IdField,
        expected: usize,
        got: usize,
    },
    #[error("{field} is all zeros")]
    ZeroId { field: IdField },
    /// OTLP/JSON only: the id is not an even number of hex digits. `text` is cut to a few dozen
    /// characters.
    #[error("{field} is not an even number of hex digits: {text:?}")]
    NotHex { field: IdField, text: String },
    #[error("unknown span kind {0}")]
    UnknownKind(i32),
    /// OTLP/JSON only: the kind was given by a name OTLP does not define.
    #[error("unknown span kind name {0:?}")]
    UnknownKindName(String),
    #[error("unknown status code {0}")]
    UnknownStatusCode(i32),
    /// OTLP/JSON only: the status code was given by a name OTLP does not define.
    #[error("unknown status code name {0:?}")]
    UnknownStatusCodeName(String),
    #[error("end time {end} is before start time {start}")]
    EndBeforeStart { start: u64, end: u64 },
    /// Jaeger and Zipkin: a time or duration is negative or beyond the year 2554 in
    /// nanoseconds.
    #[error("{field} {value} is out of range")]
    TimeOutOfRange { field: &'static str, value: i64 },
    /// Jaeger and Zipkin: a required field is absent (or was sent with the wrong type).
    #[error("required field {0} is missing or has the wrong type")]
    MissingField(&'static str),
    /// Zipkin only: an id is not 1 to N hex digits (JSON) or not 8 or 16 bytes (protobuf).
    /// `expected` says what fits; `text` is the id as sent (bytes as hex), cut to a few dozen
    /// characters.
    #[error("{field} must be {expected}, got {text:?}")]
    InvalidId {
        field: IdField,
        expected: &'static str,
        text: String,
    },
}

/// Where a span sits in an export request (indices as sent, counting rejected spans too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpanPos {
    pub resource: usize,
    pub scope: usize,
    pub span: usize,
}

impl fmt::Display for SpanPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "span {} in scope {} of resource {}",
            self.span, self.scope, self.resource
        )
    }
}

/// Counts rejected spans and remembers the first few reasons.
#[derive(Default)]
pub(crate) struct Rejections {
    count: u64,
    listed: Vec<String>,
}

impl Rejections {
    /// How many problems `error_message` spells out.
    const LISTED: usize = 3;

    /// `pos` says where the span is, e.g. a [`SpanPos`].
    pub fn add(&mut self, pos: impl fmt::Display, error: &SpanError) {
        self.count += 1;
        if self.listed.len() < Self::LISTED {
            self.listed.push(format!("{pos}: {error}"));
        }
    }

    pub fn finish(self, batch: Batch) -> Decoded {
        let mut message = self.listed.join("; ");
        let unlisted = self.count - self.listed.len() as u64;
        if unlisted == 1 {
            message.push_str("; and 1 more span was rejected");
        } else if unlisted > 1 {
            message.push_str(&format!("; and {unlisted} more spans were rejected"));
        }
        Decoded {
            batch,
            rejected_spans: self.count,
            error_message: message,
        }
    }
}

/// `text` cut to at most `max` characters, with `...` appended when something was cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}...", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_list_three_problems_and_count_the_rest() {
        let mut r = Rejections::default();
        for span in 0..5 {
            r.add(
                SpanPos {
                    resource: 1,
                    scope: 0,
                    span,
                },
                &SpanError::UnknownKind(9),
            );
        }
        let d = r.finish(Batch::default());
        assert_eq!(d.rejected_spans, 5);
        assert_eq!(
            d.error_message,
            "span 0 in scope 0 of resource 1: unknown span kind 9; \
             span 1 in scope 0 of resource 1: unknown span kind 9; \
             span 2 in scope 0 of resource 1: unknown span kind 9; \
             and 2 more spans were rejected"
        );
    }

    #[test]
    fn truncate_cuts_on_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé...");
        assert_eq!(truncate("hé", 2), "hé");
    }
}
