//! Zipkin's B3 propagation: the single `b3` header and the multiple `X-B3-*` headers.
//!
//! * Single: `b3: {TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}`, the last two optional,
//!   or a sampling state alone (`b3: 0`). Sampling states: `0` deny, `1` accept, `d` debug;
//!   absent means *defer*.
//! * Multiple: `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId`, `X-B3-Sampled` (`1`/`0`;
//!   `true`/`false` accepted leniently, as the spec allows) and `X-B3-Flags: 1` (debug). When a
//!   header repeats, the first value wins.
//! * Trace ids are 16 or 32 lowercase hex digits; span ids 16. A 64-bit trace id is stored
//!   left-padded to 128 bits, and written back as 16 digits when its high half is zero (the
//!   convention of Zipkin's own libraries), so 64-bit systems keep working.
//! * When both encodings are present, the single header wins (the spec: "the single-header
//!   variant takes precedence over the multiple header one").
//! * The single header also accepts `{TraceId}-{SpanId}-{ParentSpanId}` (deferred sampling with
//!   a parent), which Zipkin's libraries write; the field lengths make it unambiguous.

use std::fmt;
use std::str::FromStr;

use crate::carrier::Carrier;
use crate::error::{ParseError, Reason};
use crate::ids::{Sampling, SpanId, TraceId, decode_fixed_lower_hex, trim_ows};

/// The single header's name.
pub const B3: &str = "b3";
/// `X-B3-TraceId`, lowercased.
pub const X_B3_TRACE_ID: &str = "x-b3-traceid";
/// `X-B3-SpanId`, lowercased.
pub const X_B3_SPAN_ID: &str = "x-b3-spanid";
/// `X-B3-ParentSpanId`, lowercased.
pub const X_B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
/// `X-B3-Sampled`, lowercased.
pub const X_B3_SAMPLED: &str = "x-b3-sampled";
/// `X-B3-Flags`, lowercased.
pub const X_B3_FLAGS: &str = "x-b3-flags";
/// Every multi-header name.
pub const MULTI_HEADERS: [&str; 5] = [
    X_B3_TRACE_ID,
    X_B3_SPAN_ID,
    X_B3_PARENT_SPAN_ID,
    X_B3_SAMPLED,
    X_B3_FLAGS,
];

/// The identifiers of a B3 context, with its sampling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct B3Context {
    /// The trace id (64-bit ids left-padded).
    pub trace_id: TraceId,
    /// The span id.
    pub span_id: SpanId,
    /// The parent span id; absent on a root span.
    pub parent_span_id: Option<SpanId>,
    /// The sampling state; `None` defers the decision to the receiver.
    pub sampling: Option<Sampling>,
}

/// What a B3 encoding carries: identifiers (with an optional sampling state) or a sampling
/// state alone.
///
/// ```
/// use stitch_propagation::{B3, Sampling};
///
/// let b3: B3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90".parse()?;
/// let B3::Context(ctx) = b3 else { unreachable!() };
/// assert_eq!(ctx.sampling, Some(Sampling::Accept));
/// assert_eq!(ctx.parent_span_id.unwrap().to_string(), "05e3ac9a4f6e3b90");
///
/// // The same context as multiple headers:
/// let mut headers: Vec<(String, String)> = Vec::new();
/// b3.inject_multi(&mut headers);
/// assert_eq!(headers[0], ("x-b3-traceid".into(), "80f198ee56343ba864fe8b2a57d3eff7".into()));
/// assert_eq!(B3::extract_multi(&headers)?, Some(b3));
///
/// // A deny decision alone:
/// assert_eq!("0".parse::<B3>()?, B3::SamplingOnly(Sampling::Deny));
/// # Ok::<(), stitch_propagation::ParseError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum B3 {
    /// Trace and span identifiers.
    Context(B3Context),
    /// Only a sampling decision (`b3: 0`, `X-B3-Sampled: 0` alone, ...).
    SamplingOnly(Sampling),
}

impl B3 {
    /// Parses a single `b3` header value.
    pub fn parse_single(value: &str) -> Result<Self, ParseError> {
        let s = trim_ows(value);
        if s.is_empty() {
            return Err(ParseError::new(B3, "", Reason::Empty));
        }
        if !s.contains('-') {
            return parse_single_sampling(s).map(B3::SamplingOnly);
        }
        let fields: Vec<&str> = s.split('-').collect();
        if fields.len() > 4 {
            return Err(ParseError::new(
                B3,
                "",
                Reason::FieldCount {
                    expected: "1 to 4",
                    found: fields.len(),
                },
            ));
        }
        let trace_id = parse_trace_id(fields[0], B3, "TraceId")?;
        let span_id = parse_span_id(fields[1], B3, "SpanId")?;
        let (sampling, parent) = match fields.get(2..).unwrap_or(&[]) {
            [] => (None, None),
            [third] if third.len() == 16 => (None, Some(*third)),
            [third] => (Some(parse_single_sampling(third)?), None),
            [third, parent] => (Some(parse_single_sampling(third)?), Some(*parent)),
            _ => unreachable!("at most 4 fields"),
        };
        let parent_span_id = parent
            .map(|p| parse_span_id(p, B3, "ParentSpanId"))
            .transpose()?;
        Ok(B3::Context(B3Context {
            trace_id,
            span_id,
            parent_span_id,
            sampling,
        }))
    }

    /// Reads the `X-B3-*` headers: `Ok(None)` when none of them carries anything.
    ///
    /// A present but malformed header (an empty value, `X-B3-ParentSpanId: -`, a trace id
    /// without a span id, ...) is an error, as the spec calls such data malformed.
    /// `X-B3-Flags` values other than `1` are ignored, as the spec allows.
    pub fn extract_multi<C: Carrier + ?Sized>(carrier: &C) -> Result<Option<Self>, ParseError> {
        let trace = carrier.get(X_B3_TRACE_ID);
        let span = carrier.get(X_B3_SPAN_ID);
        let parent = carrier.get(X_B3_PARENT_SPAN_ID);
        let sampled = carrier.get(X_B3_SAMPLED);
        let debug = carrier.get(X_B3_FLAGS).map(trim_ows) == Some("1");

        let mut sampling = sampled
            .map(|v| match trim_ows(v) {
                "1" => Ok(Sampling::Accept),
                "0" => Ok(Sampling::Deny),
                v if v.eq_ignore_ascii_case("true") => Ok(Sampling::Accept),
                v if v.eq_ignore_ascii_case("false") => Ok(Sampling::Deny),
                "" => Err(ParseError::new("X-B3-Sampled", "", Reason::Empty)),
                _ => Err(ParseError::new(
                    "X-B3-Sampled",
                    "",
                    Reason::Invalid("must be 1 or 0"),
                )),
            })
            .transpose()?;
        if debug {
            sampling = Some(Sampling::Debug);
        }
        match (trace, span) {
            (None, None) => {
                if parent.is_some() {
                    return Err(ParseError::new("X-B3-TraceId", "", Reason::Missing));
                }
                Ok(sampling.map(B3::SamplingOnly))
            }
            (Some(_), None) => Err(ParseError::new("X-B3-SpanId", "", Reason::Missing)),
            (None, Some(_)) => Err(ParseError::new("X-B3-TraceId", "", Reason::Missing)),
            (Some(t), Some(s)) => {
                let trace_id = parse_trace_id(trim_ows(t), "X-B3-TraceId", "")?;
                let span_id = parse_span_id(trim_ows(s), "X-B3-SpanId", "")?;
                let parent_span_id = parent
                    .map(|p| parse_span_id(trim_ows(p), "X-B3-ParentSpanId", ""))
                    .transpose()?;
                Ok(Some(B3::Context(B3Context {
                    trace_id,
                    span_id,
                    parent_span_id,
                    sampling,
                })))
            }
        }
    }

    /// Reads the single `b3` header: `Ok(None)` when absent. When it repeats, the first wins.
    pub fn extract_single<C: Carrier + ?Sized>(carrier: &C) -> Result<Option<Self>, ParseError> {
        carrier.get(B3).map(B3::parse_single).transpose()
    }

    /// Reads B3 from whichever encoding is present; the single header wins over the multiple
    /// headers, as the spec says.
    pub fn extract<C: Carrier + ?Sized>(carrier: &C) -> Result<Option<Self>, ParseError> {
        match Self::extract_single(carrier)? {
            Some(b3) => Ok(Some(b3)),
            None => Self::extract_multi(carrier),
        }
    }

    /// Writes the single `b3` header.
    pub fn inject_single<C: Carrier + ?Sized>(&self, carrier: &mut C) {
        carrier.set(B3, &self.to_string());
    }

    /// Writes the `X-B3-*` headers (removing stale ones). Debug is written as `X-B3-Flags: 1`
    /// without `X-B3-Sampled`, as the spec recommends.
    pub fn inject_multi<C: Carrier + ?Sized>(&self, carrier: &mut C) {
        for name in MULTI_HEADERS {
            carrier.remove(name);
        }
        let sampling = match self {
            B3::Context(ctx) => {
                carrier.set(X_B3_TRACE_ID, &format_trace_id(ctx.trace_id));
                carrier.set(X_B3_SPAN_ID, &ctx.span_id.to_string());
                if let Some(parent) = ctx.parent_span_id {
                    carrier.set(X_B3_PARENT_SPAN_ID, &parent.to_string());
                }
                ctx.sampling
            }
            B3::SamplingOnly(s) => Some(*s),
        };
        match sampling {
            Some(Sampling::Accept) => carrier.set(X_B3_SAMPLED, "1"),
            Some(Sampling::Deny) => carrier.set(X_B3_SAMPLED, "0"),
            Some(Sampling::Debug) => carrier.set(X_B3_FLAGS, "1"),
            None => {}
        }
    }

    /// The sampling state, whichever the variant.
    pub fn sampling(&self) -> Option<Sampling> {
        match self {
            B3::Context(ctx) => ctx.sampling,
            B3::SamplingOnly(s) => Some(*s),
        }
    }
}

fn sampling_char(s: Sampling) -> char {
    match s {
        Sampling::Deny => '0',
        Sampling::Accept => '1',
        Sampling::Debug => 'd',
    }
}

fn parse_single_sampling(s: &str) -> Result<Sampling, ParseError> {
    match s {
        "0" => Ok(Sampling::Deny),
        "1" => Ok(Sampling::Accept),
        "d" => Ok(Sampling::Debug),
        _ => Err(ParseError::new(
            B3,
            "SamplingState",
            Reason::Invalid("must be 0, 1 or d"),
        )),
    }
}

fn parse_trace_id(
    s: &str,
    header: &'static str,
    field: &'static str,
) -> Result<TraceId, ParseError> {
    let id = match s.len() {
        16 => {
            let mut b = [0u8; 8];
            decode_fixed_lower_hex(s, &mut b, "16 or 32")
                .map_err(|r| ParseError::new(header, field, r))?;
            TraceId::from_u64(u64::from_be_bytes(b))
        }
        _ => {
            let mut b = [0u8; 16];
            decode_fixed_lower_hex(s, &mut b, "16 or 32")
                .map_err(|r| ParseError::new(header, field, r))?;
            TraceId::from_bytes(b)
        }
    };
    if !id.is_valid() {
        return Err(ParseError::new(header, field, Reason::AllZero));
    }
    Ok(id)
}

fn parse_span_id(s: &str, header: &'static str, field: &'static str) -> Result<SpanId, ParseError> {
    let mut b = [0u8; 8];
    decode_fixed_lower_hex(s, &mut b, "16").map_err(|r| ParseError::new(header, field, r))?;
    let id = SpanId::from_bytes(b);
    if !id.is_valid() {
        return Err(ParseError::new(header, field, Reason::AllZero));
    }
    Ok(id)
}

/// 16 digits when the high half is zero, 32 otherwise.
pub(crate) fn format_trace_id(id: TraceId) -> String {
    if id.high() == 0 {
        format!("{:016x}", id.low())
    } else {
        id.to_string()
    }
}

impl fmt::Display for B3 {
    /// The single-header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            B3::SamplingOnly(s) => write!(f, "{}", sampling_char(*s)),
            B3::Context(ctx) => {
                write!(f, "{}-{}", format_trace_id(ctx.trace_id), ctx.span_id)?;
                if let Some(s) = ctx.sampling {
                    write!(f, "-{}", sampling_char(s))?;
                }
                if let Some(p) = ctx.parent_span_id {
                    write!(f, "-{p}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for B3 {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        B3::parse_single(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(b3: B3) -> B3Context {
        match b3 {
            B3::Context(c) => c,
            B3::SamplingOnly(s) => panic!("expected identifiers, got {s:?}"),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_spec_example_single_header_carries_all_four_fields() {
        let c = ctx(B3::parse_single(
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )
        .unwrap());
        assert_eq!(c.trace_id.to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(c.span_id.to_string(), "e457b5a2e4d86bd1");
        assert_eq!(c.sampling, Some(Sampling::Accept));
        assert_eq!(c.parent_span_id.unwrap().to_string(), "05e3ac9a4f6e3b90");
    }

    #[test]
    fn the_spec_example_multi_headers_equal_the_single_header() {
        let multi = headers(&[
            ("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90"),
            ("X-B3-SpanId", "e457b5a2e4d86bd1"),
            ("X-B3-Sampled", "1"),
        ]);
        let single = B3::parse_single(
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )
        .unwrap();
        assert_eq!(B3::extract_multi(&multi).unwrap(), Some(single));
    }

    #[test]
    fn the_debug_example_parses_as_debug_sampling() {
        let c =
            ctx(B3::parse_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d").unwrap());
        assert_eq!(c.sampling, Some(Sampling::Debug));
        assert!(Sampling::Debug.is_sampled());
    }

    #[test]
    fn a_sampling_state_alone_is_a_valid_single_header() {
        assert_eq!(
            B3::parse_single("0").unwrap(),
            B3::SamplingOnly(Sampling::Deny)
        );
        assert_eq!(
            B3::parse_single("1").unwrap(),
            B3::SamplingOnly(Sampling::Accept)
        );
        assert_eq!(
            B3::parse_single("d").unwrap(),
            B3::SamplingOnly(Sampling::Debug)
        );
        assert!(B3::parse_single("2").is_err());
        assert!(B3::parse_single("true").is_err());
    }

    #[test]
    fn identifiers_without_sampling_state_defer_the_decision() {
        let c = ctx(B3::parse_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1").unwrap());
        assert_eq!(c.sampling, None);
        assert_eq!(c.parent_span_id, None);
    }

    #[test]
    fn a_parent_without_sampling_state_is_recognised_by_its_length() {
        let v = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-05e3ac9a4f6e3b90";
        let b3 = B3::parse_single(v).unwrap();
        assert_eq!(ctx(b3).sampling, None);
        assert!(ctx(b3).parent_span_id.is_some());
        assert_eq!(b3.to_string(), v);
    }

    #[test]
    fn a_64_bit_trace_id_is_left_padded_and_written_back_as_64_bits() {
        let b3 = B3::parse_single("463ac35c9f6413ad-a2fb4a1d1a96d312-1").unwrap();
        assert_eq!(
            ctx(b3).trace_id.to_string(),
            "0000000000000000463ac35c9f6413ad"
        );
        assert_eq!(b3.to_string(), "463ac35c9f6413ad-a2fb4a1d1a96d312-1");
    }

    #[test]
    fn malformed_single_headers_are_rejected() {
        for v in [
            "",
            "-",
            "80f198ee56343ba864fe8b2a57d3eff7",
            "80f198ee56343ba864fe8b2a57d3eff7-",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-1",
            "80F198EE56343BA864FE8B2A57D3EFF7-e457b5a2e4d86bd1-1",
            "00000000000000000000000000000000-e457b5a2e4d86bd1-1",
            "80f198ee56343ba864fe8b2a57d3eff7-0000000000000000-1",
            "80f198ee56343ba864fe8b2a57d3ef-e457b5a2e4d86bd1-1",
            "80f198ee56343ba8-e457b5a2e4d86bd-1",
        ] {
            assert!(B3::parse_single(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn x_b3_flags_1_means_debug_and_other_values_are_ignored() {
        let h = headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-flags", "1"),
        ]);
        assert_eq!(
            B3::extract_multi(&h).unwrap().unwrap().sampling(),
            Some(Sampling::Debug)
        );
        let h = headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-flags", "0"),
        ]);
        assert_eq!(B3::extract_multi(&h).unwrap().unwrap().sampling(), None);
    }

    #[test]
    fn true_and_false_are_accepted_leniently_for_x_b3_sampled() {
        let h = headers(&[("X-B3-Sampled", "true")]);
        assert_eq!(
            B3::extract_multi(&h).unwrap(),
            Some(B3::SamplingOnly(Sampling::Accept))
        );
        let h = headers(&[("X-B3-Sampled", "False")]);
        assert_eq!(
            B3::extract_multi(&h).unwrap(),
            Some(B3::SamplingOnly(Sampling::Deny))
        );
    }

    #[test]
    fn empty_or_nonsense_multi_headers_are_malformed() {
        for h in [
            headers(&[("X-B3-Sampled", "")]),
            headers(&[("X-B3-Sampled", "yes")]),
            headers(&[
                ("X-B3-TraceId", "463ac35c9f6413ad"),
                ("X-B3-SpanId", "a2fb4a1d1a96d312"),
                ("X-B3-ParentSpanId", "-"),
            ]),
            headers(&[("X-B3-TraceId", "463ac35c9f6413ad")]),
            headers(&[("X-B3-SpanId", "a2fb4a1d1a96d312")]),
            headers(&[("X-B3-ParentSpanId", "a2fb4a1d1a96d312")]),
        ] {
            assert!(B3::extract_multi(&h).is_err(), "{h:?}");
        }
        assert_eq!(B3::extract_multi(&headers(&[])).unwrap(), None);
    }

    #[test]
    fn when_a_multi_header_repeats_the_first_value_wins() {
        let h = headers(&[
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-TraceId", "1111111111111111"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
        ]);
        assert_eq!(
            ctx(B3::extract_multi(&h).unwrap().unwrap()).trace_id.low(),
            0x463a_c35c_9f64_13ad
        );
    }

    #[test]
    fn the_single_header_wins_over_the_multi_headers() {
        let h = headers(&[
            ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0"),
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("X-B3-Sampled", "1"),
        ]);
        let c = ctx(B3::extract(&h).unwrap().unwrap());
        assert_eq!(c.trace_id.to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(c.sampling, Some(Sampling::Deny));
    }

    #[test]
    fn debug_is_injected_as_flags_without_sampled() {
        let b3 = B3::parse_single("463ac35c9f6413ad-a2fb4a1d1a96d312-d").unwrap();
        let mut h: Vec<(String, String)> = vec![("x-b3-sampled".into(), "0".into())];
        b3.inject_multi(&mut h);
        assert_eq!(h.get(X_B3_FLAGS), Some("1"));
        assert_eq!(h.get(X_B3_SAMPLED), None);
        assert_eq!(h.get(X_B3_TRACE_ID), Some("463ac35c9f6413ad"));
    }
}
