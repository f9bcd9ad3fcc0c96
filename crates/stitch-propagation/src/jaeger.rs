//! Jaeger's native propagation: `uber-trace-id` and `uberctx-*` baggage headers.
//!
//! * `uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}`.
//! * Ids are hex, and leading zeros may be omitted: the trace id has 1 to 32 digits (64 or
//!   128 bits), span ids 1 to 16. Jaeger clients parse hex in either case, and so does this
//!   crate. A trace id or span id of zero is invalid; a parent span id of `0` means "none" (the
//!   field is deprecated, and written as `0`).
//! * Flags are one byte in hex (one or two digits): bit 0 sampled, bit 1 debug, bit 3
//!   firehose.
//! * Some HTTP clients URL-encode the value (`%3A` for `:`); it is decoded before parsing.
//! * Baggage travels as one header per item, `uberctx-{key}: {value}`, the value
//!   URL-encoded.

use std::fmt;
use std::str::FromStr;

use crate::baggage::{Baggage, BaggageMember};
use crate::carrier::Carrier;
use crate::error::{ParseError, Reason};
use crate::ids::{SpanId, TraceId, decode_var_hex, trim_ows};
use crate::percent;

/// The trace header's name.
pub const UBER_TRACE_ID: &str = "uber-trace-id";
/// The prefix of the baggage headers.
pub const UBERCTX_PREFIX: &str = "uberctx-";

const HEADER: &str = UBER_TRACE_ID;

/// The flags byte of `uber-trace-id`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct JaegerFlags(u8);

impl JaegerFlags {
    /// Bit 0: the trace is sampled.
    pub const SAMPLED: JaegerFlags = JaegerFlags(0x01);
    /// Bit 1: debug (force sampling).
    pub const DEBUG: JaegerFlags = JaegerFlags(0x02);
    /// Bit 3: firehose mode.
    pub const FIREHOSE: JaegerFlags = JaegerFlags(0x08);

    /// Flags from their byte.
    pub const fn new(bits: u8) -> Self {
        JaegerFlags(bits)
    }
    /// The byte.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether the sampled bit is set.
    pub const fn is_sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }
    /// Whether the debug bit is set.
    pub const fn is_debug(self) -> bool {
        self.0 & Self::DEBUG.0 != 0
    }
}

impl fmt::Debug for JaegerFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JaegerFlags({:02x})", self.0)
    }
}

/// A parsed `uber-trace-id`.
///
/// ```
/// use stitch_propagation::JaegerContext;
///
/// let ctx: JaegerContext = "abc:1f:0:1".parse()?;
/// assert_eq!(ctx.trace_id.to_string(), "00000000000000000000000000000abc");
/// assert_eq!(ctx.parent_span_id, None);
/// assert!(ctx.flags.is_sampled());
/// assert_eq!(ctx.to_string(), "0000000000000abc:000000000000001f:0:01");
///
/// // The URL-encoded form some clients send:
/// assert_eq!("abc%3A1f%3A0%3A1".parse::<JaegerContext>()?, ctx);
/// # Ok::<(), stitch_propagation::ParseError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JaegerContext {
    /// The trace id (64-bit ids left-padded).
    pub trace_id: TraceId,
    /// The span id.
    pub span_id: SpanId,
    /// The deprecated parent span id; `None` when sent as `0`.
    pub parent_span_id: Option<SpanId>,
    /// The flags.
    pub flags: JaegerFlags,
}

impl JaegerContext {
    /// Parses an `uber-trace-id` value (plain or URL-encoded).
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let decoded;
        let mut s = trim_ows(value);
        if s.contains('%') {
            decoded = percent::decode(s);
            s = trim_ows(&decoded);
        }
        if s.is_empty() {
            return Err(ParseError::new(HEADER, "", Reason::Empty));
        }
        let fields: Vec<&str> = s.split(':').collect();
        if fields.len() != 4 {
            return Err(ParseError::new(
                HEADER,
                "",
                Reason::FieldCount {
                    expected: "4",
                    found: fields.len(),
                },
            ));
        }
        let trace = decode_var_hex(fields[0], 32, "1 to 32")
            .map_err(|r| ParseError::new(HEADER, "trace-id", r))?;
        if trace == 0 {
            return Err(ParseError::new(HEADER, "trace-id", Reason::AllZero));
        }
        let span = decode_var_hex(fields[1], 16, "1 to 16")
            .map_err(|r| ParseError::new(HEADER, "span-id", r))?;
        if span == 0 {
            return Err(ParseError::new(HEADER, "span-id", Reason::AllZero));
        }
        let parent = decode_var_hex(fields[2], 16, "1 to 16")
            .map_err(|r| ParseError::new(HEADER, "parent-span-id", r))?;
        let flags = decode_var_hex(fields[3], 2, "1 or 2")
            .map_err(|r| ParseError::new(HEADER, "flags", r))?;
        // The digit limits above bound every value to its width.
        Ok(JaegerContext {
            trace_id: TraceId::from_u128(trace),
            span_id: SpanId::from_u64(span as u64),
            parent_span_id: (parent != 0).then_some(SpanId::from_u64(parent as u64)),
            flags: JaegerFlags::new(flags as u8),
        })
    }

    /// Reads `uber-trace-id`: `Ok(None)` when absent.
    pub fn extract<C: Carrier + ?Sized>(carrier: &C) -> Result<Option<Self>, ParseError> {
        carrier.get(UBER_TRACE_ID).map(Self::parse).transpose()
    }

    /// Writes `uber-trace-id`.
    pub fn inject<C: Carrier + ?Sized>(&self, carrier: &mut C) {
        carrier.set(UBER_TRACE_ID, &self.to_string());
    }
}

impl fmt::Display for JaegerContext {
    /// `{trace-id}:{span-id}:{parent-span-id}:{flags}`, ids zero-padded (16 or 32 digits for
    /// the trace id), the parent as `0` when absent, flags as two digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:",
            crate::b3::format_trace_id(self.trace_id),
            self.span_id
        )?;
        match self.parent_span_id {
            Some(p) => write!(f, "{p}")?,
            None => f.write_str("0")?,
        }
        write!(f, ":{:02x}", self.flags.0)
    }
}

impl FromStr for JaegerContext {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JaegerContext::parse(s)
    }
}

/// Reads every `uberctx-{key}` header into a baggage list (values URL-decoded). Headers whose
/// key is not a token are skipped. The order is the carrier's.
///
/// ```
/// use stitch_propagation::jaeger;
///
/// let headers = vec![("uberctx-user".to_string(), "Am%C3%A9lie".to_string())];
/// assert_eq!(jaeger::extract_baggage(&headers).get("user"), Some("Amélie"));
/// ```
pub fn extract_baggage<C: Carrier + ?Sized>(carrier: &C) -> Baggage {
    let mut bag = Baggage::new();
    let mut seen: Vec<String> = Vec::new();
    for name in carrier.names() {
        let Some(prefix) = name.get(..UBERCTX_PREFIX.len()) else {
            continue;
        };
        if !prefix.eq_ignore_ascii_case(UBERCTX_PREFIX) {
            continue;
        }
        let key = &name[UBERCTX_PREFIX.len()..];
        if key.is_empty() || seen.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            continue;
        }
        seen.push(name.to_owned());
        let Some(value) = carrier.get(name) else {
            continue;
        };
        if let Ok(member) = BaggageMember::new(key, &percent::decode(trim_ows(value))) {
            bag.push(member);
        }
    }
    bag
}

/// Writes each baggage member as an `uberctx-{key}` header (value URL-encoded, properties
/// dropped: the format has none). Keys are lowercased, as HTTP/2 requires of header names.
pub fn inject_baggage<C: Carrier + ?Sized>(baggage: &Baggage, carrier: &mut C) {
    for member in baggage {
        let name = format!("{UBERCTX_PREFIX}{}", member.key().to_ascii_lowercase());
        carrier.set(&name, &percent::encode(member.value(), is_url_unreserved));
    }
}

fn is_url_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_128_bit_context_parses() {
        let ctx = JaegerContext::parse(
            "80f198ee56343ba864fe8b2a57d3eff7:e457b5a2e4d86bd1:05e3ac9a4f6e3b90:1",
        )
        .unwrap();
        assert_eq!(ctx.trace_id.to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(ctx.parent_span_id.unwrap().to_string(), "05e3ac9a4f6e3b90");
        assert!(ctx.flags.is_sampled());
    }

    #[test]
    fn hex_without_leading_zeros_is_accepted() {
        let ctx = JaegerContext::parse("1:2:0:0").unwrap();
        assert_eq!(ctx.trace_id, TraceId::from_u64(1));
        assert_eq!(ctx.span_id, SpanId::from_u64(2));
        assert!(!ctx.flags.is_sampled());
    }

    #[test]
    fn the_url_encoded_form_is_decoded() {
        let ctx = JaegerContext::parse("463ac35c9f6413ad%3Aa2fb4a1d1a96d312%3a0%3A3").unwrap();
        assert!(ctx.flags.is_debug() && ctx.flags.is_sampled());
    }

    #[test]
    fn zero_trace_or_span_ids_and_malformed_values_are_rejected() {
        for v in [
            "",
            "0:1:0:1",
            "1:0:0:1",
            "1:1:0",
            "1:1:0:1:1",
            "1:1:0:100",
            "123456789012345678901234567890123:1:0:1",
            "1:12345678901234567:0:1",
            "x:1:0:1",
            "1::0:1",
        ] {
            assert!(JaegerContext::parse(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for v in [
            "463ac35c9f6413ad:a2fb4a1d1a96d312:0:01",
            "80f198ee56343ba864fe8b2a57d3eff7:e457b5a2e4d86bd1:05e3ac9a4f6e3b90:03",
        ] {
            assert_eq!(JaegerContext::parse(v).unwrap().to_string(), v);
        }
    }

    #[test]
    fn uberctx_headers_become_baggage_and_back() {
        let headers: Vec<(String, String)> = vec![
            ("Uberctx-User".into(), "alice%20smith".into()),
            ("uberctx-region".into(), "eu".into()),
            ("other".into(), "x".into()),
        ];
        let bag = extract_baggage(&headers);
        assert_eq!(bag.get("User"), Some("alice smith"));
        assert_eq!(bag.get("region"), Some("eu"));
        assert_eq!(bag.len(), 2);
        let mut out: Vec<(String, String)> = Vec::new();
        inject_baggage(&bag, &mut out);
        assert_eq!(out.get("uberctx-user"), Some("alice%20smith"));
        assert_eq!(out.get("uberctx-region"), Some("eu"));
    }
}
