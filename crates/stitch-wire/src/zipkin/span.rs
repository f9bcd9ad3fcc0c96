//! Zipkin's v2 span model, in two forms: [`RawSpan`] as a parser found it (ids not yet
//! validated) and [`ZipkinSpan`] with valid ids, which every conversion to and from the model
//! goes through.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use stitch_model::{SpanId, SpanKind, TraceId};

use crate::{IdField, SpanError, truncate};

/// A valid Zipkin v2 span.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZipkinSpan {
    /// 64-bit ids have a zero high half.
    pub trace_id: TraceId,
    pub parent_id: Option<SpanId>,
    pub id: SpanId,
    /// `None`, `Client`, `Server`, `Producer` or `Consumer`.
    pub kind: Option<SpanKind>,
    pub name: String,
    /// Epoch microseconds.
    pub timestamp: Option<u64>,
    /// Microseconds.
    pub duration: Option<u64>,
    pub local_endpoint: Option<Endpoint>,
    pub remote_endpoint: Option<Endpoint>,
    pub annotations: Vec<Annotation>,
    /// A map, as in Zipkin: one value per key, in key order.
    pub tags: BTreeMap<String, String>,
    pub debug: bool,
    pub shared: bool,
}

/// The network context of a span: a service and where it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Empty when unknown.
    pub service_name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// `None` when unknown (Zipkin's port 0).
    pub port: Option<u16>,
}

impl Endpoint {
    /// Whether the endpoint says nothing at all.
    pub fn is_empty(&self) -> bool {
        self.service_name.is_empty()
            && self.ipv4.is_none()
            && self.ipv6.is_none()
            && self.port.is_none()
    }
}

/// A timestamped event of a span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotation {
    /// Epoch microseconds.
    pub timestamp: u64,
    pub value: String,
}

/// An id as it was sent, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum RawId {
    #[default]
    Absent,
    Hex(String),
    Bytes(Vec<u8>),
}

/// A kind as it was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum RawKind {
    #[default]
    Absent,
    Known(SpanKind),
    UnknownName(String),
    UnknownNumber(i32),
}

/// A span as a parser found it; [`RawSpan::validate`] checks the ids and the kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RawSpan {
    pub trace_id: RawId,
    pub parent_id: RawId,
    pub id: RawId,
    pub kind: RawKind,
    pub name: String,
    pub timestamp: Option<u64>,
    pub duration: Option<u64>,
    pub local_endpoint: Option<Endpoint>,
    pub remote_endpoint: Option<Endpoint>,
    pub annotations: Vec<Annotation>,
    pub tags: BTreeMap<String, String>,
    pub debug: bool,
    pub shared: bool,
}

impl RawSpan {
    /// Checks the ids (trace id and id required; a zero or self-referencing parent means no
    /// parent) and the kind.
    pub fn validate(self) -> Result<ZipkinSpan, SpanError> {
        let trace_id = match &self.trace_id {
            RawId::Absent => return Err(SpanError::MissingField("traceId")),
            id => {
                let bytes = id_bytes::<16>(id, IdField::TraceId)?;
                TraceId(bytes)
            }
        };
        if !trace_id.is_valid() {
            return Err(SpanError::ZeroId {
                field: IdField::TraceId,
            });
        }
        let id = match &self.id {
            RawId::Absent => return Err(SpanError::MissingField("id")),
            id => SpanId(id_bytes::<8>(id, IdField::SpanId)?),
        };
        if !id.is_valid() {
            return Err(SpanError::ZeroId {
                field: IdField::SpanId,
            });
        }
        let parent_id = match &self.parent_id {
            RawId::Absent => None,
            RawId::Hex(text) if text.is_empty() => None,
            RawId::Bytes(bytes) if bytes.is_empty() => None,
            raw => Some(SpanId(id_bytes::<8>(raw, IdField::ParentSpanId)?)),
        }
        .filter(|p| p.is_valid() && *p != id);
        let kind = match self.kind {
            RawKind::Absent => None,
            RawKind::Known(kind) => Some(kind),
            RawKind::UnknownName(name) => {
                return Err(SpanError::UnknownKindName(truncate(&name, 40)));
            }
            RawKind::UnknownNumber(n) => return Err(SpanError::UnknownKind(n)),
        };
        Ok(ZipkinSpan {
            trace_id,
            parent_id,
            id,
            kind,
            name: self.name,
            timestamp: self.timestamp,
            duration: self.duration,
            local_endpoint: self.local_endpoint.filter(|e| !e.is_empty()),
            remote_endpoint: self.remote_endpoint.filter(|e| !e.is_empty()),
            annotations: self.annotations,
            tags: self.tags,
            debug: self.debug,
            shared: self.shared,
        })
    }
}

/// An id right-aligned in `N` bytes: 1 to `2N` hex digits (shorter ids are left-padded with
/// zeros, as Zipkin pads them), or 8 or `N` bytes.
fn id_bytes<const N: usize>(raw: &RawId, field: IdField) -> Result<[u8; N], SpanError> {
    let mut out = [0u8; N];
    match raw {
        RawId::Absent => {}
        RawId::Hex(text) => {
            let expected = if N == 16 {
                "1 to 32 hex digits"
            } else {
                "1 to 16 hex digits"
            };
            let invalid = || SpanError::InvalidId {
                field,
                expected,
                text: truncate(text, 40),
            };
            let digits = text.as_bytes();
            if digits.is_empty() || digits.len() > 2 * N {
                return Err(invalid());
            }
            // Fill from the right, two digits per byte.
            for (i, &c) in digits.iter().rev().enumerate() {
                let v = nibble(c).ok_or_else(invalid)?;
                out[N - 1 - i / 2] |= if i % 2 == 0 { v } else { v << 4 };
            }
        }
        RawId::Bytes(bytes) => {
            if bytes.len() != N && bytes.len() != 8 {
                return Err(SpanError::InvalidId {
                    field,
                    expected: if N == 16 { "8 or 16 bytes" } else { "8 bytes" },
                    text: truncate(&hex_string(bytes), 40),
                });
            }
            out[N - bytes.len()..].copy_from_slice(bytes);
        }
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A trace id as Zipkin writes it: 16 hex digits when the high half is zero, else 32.
pub fn trace_id_to_zipkin(id: TraceId) -> String {
    if id.0[..8] == [0; 8] {
        hex_string(&id.0[8..])
    } else {
        id.to_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(trace: &str, id: &str) -> RawSpan {
        RawSpan {
            trace_id: RawId::Hex(trace.into()),
            id: RawId::Hex(id.into()),
            ..Default::default()
        }
    }

    #[test]
    fn short_hex_ids_are_left_padded() {
        let span = raw("abc", "1").validate().unwrap();
        assert_eq!(span.trace_id.to_hex(), "00000000000000000000000000000abc");
        assert_eq!(span.id.to_hex(), "0000000000000001");
        assert_eq!(trace_id_to_zipkin(span.trace_id), "0000000000000abc");
    }

    #[test]
    fn bad_ids_are_named() {
        let e = raw("xyz", "1").validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "trace id must be 1 to 32 hex digits, got \"xyz\""
        );
        let e = raw("1", "00000000000000001").validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "span id must be 1 to 16 hex digits, got \"00000000000000001\""
        );
        let e = raw("0000", "1").validate().unwrap_err();
        assert_eq!(e.to_string(), "trace id is all zeros");
        let mut r = raw("1", "2");
        r.trace_id = RawId::Bytes(vec![1, 2, 3]);
        assert_eq!(
            r.validate().unwrap_err().to_string(),
            "trace id must be 8 or 16 bytes, got \"010203\""
        );
    }

    #[test]
    fn a_parent_equal_to_the_id_or_zero_is_no_parent() {
        let mut r = raw("1", "2");
        r.parent_id = RawId::Hex("2".into());
        assert_eq!(r.clone().validate().unwrap().parent_id, None);
        r.parent_id = RawId::Hex("0000000000000000".into());
        assert_eq!(r.validate().unwrap().parent_id, None);
    }
}
