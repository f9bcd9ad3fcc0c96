//! The W3C Trace Context `traceparent` header (Level 2).
//!
//! `traceparent: {version}-{trace-id}-{parent-id}-{trace-flags}`, all lowercase hex:
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
//!
//! The rules [`TraceParent::parse`] enforces:
//!
//! * The value may be surrounded by optional whitespace (spaces, tabs), as any HTTP field
//!   value; whitespace anywhere else is invalid.
//! * `version` is two lowercase hex digits followed by `-`; `ff` is forbidden.
//! * Version `00` is exactly 55 characters: nothing may follow the flags.
//! * A higher version is parsed as the spec says for unknown versions: the value must be at
//!   least 55 characters, the first four fields are read as for `00`, and the flags must be
//!   followed by the end of the value or by `-` (what follows is ignored). Only the flags that
//!   version `00` defines are kept, and the result is a version `00` header: that is the
//!   "downgrade the version" mutation the spec requires of a `00` implementation.
//! * `trace-id` (32 digits) and `parent-id` (16 digits) must not be all zeros.
//! * Uppercase hex is invalid everywhere.

use std::fmt;
use std::str::FromStr;

use crate::error::{ParseError, Reason};
use crate::ids::{
    SpanId, TraceId, decode_fixed_lower_hex, lower_hex_digit, not_lower_hex, trim_ows,
};

/// The header name.
pub const TRACEPARENT: &str = "traceparent";

const HEADER: &str = TRACEPARENT;

/// The 8-bit `trace-flags` field.
///
/// ```
/// use stitch_propagation::TraceFlags;
///
/// let flags = TraceFlags::new(0x03);
/// assert!(flags.is_sampled() && flags.is_random());
/// assert_eq!(TraceFlags::new(0x07).known_only(), TraceFlags::new(0x03));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// No flag set.
    pub const NONE: TraceFlags = TraceFlags(0);
    /// The `sampled` flag (bit 0): the caller may have recorded trace data.
    pub const SAMPLED: TraceFlags = TraceFlags(0x01);
    /// The Level 2 `random-trace-id` flag (bit 1): at least the right-most 7 bytes of the
    /// trace id are random.
    pub const RANDOM: TraceFlags = TraceFlags(0x02);
    /// Every flag this version of the specification defines.
    pub const KNOWN: TraceFlags = TraceFlags(0x03);

    /// Flags from their byte, reserved bits included.
    pub const fn new(bits: u8) -> Self {
        TraceFlags(bits)
    }

    /// The byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the sampled flag is set.
    pub const fn is_sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }

    /// Whether the random-trace-id flag is set.
    pub const fn is_random(self) -> bool {
        self.0 & Self::RANDOM.0 != 0
    }

    /// These flags with the sampled flag set or cleared.
    pub const fn with_sampled(self, sampled: bool) -> Self {
        if sampled {
            TraceFlags(self.0 | Self::SAMPLED.0)
        } else {
            TraceFlags(self.0 & !Self::SAMPLED.0)
        }
    }

    /// These flags with the random-trace-id flag set or cleared.
    pub const fn with_random(self, random: bool) -> Self {
        if random {
            TraceFlags(self.0 | Self::RANDOM.0)
        } else {
            TraceFlags(self.0 & !Self::RANDOM.0)
        }
    }

    /// These flags with the reserved bits cleared, as the spec requires of anything a vendor
    /// sends ("vendors MUST set those to zero").
    pub const fn known_only(self) -> Self {
        TraceFlags(self.0 & Self::KNOWN.0)
    }
}

impl fmt::Debug for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceFlags({:02x})", self.0)
    }
}

impl fmt::Display for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

/// A parsed `traceparent` (always represented as version `00`).
///
/// ```
/// use stitch_propagation::{SpanId, TraceParent};
///
/// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
/// assert!(tp.flags.is_sampled());
/// assert_eq!(tp.parent_id.to_string(), "00f067aa0ba902b7");
///
/// // A service continues the trace with its own span id as the new parent-id.
/// let next = tp.child(SpanId::from_u64(0x53995c3f42cd8ad8));
/// assert_eq!(next.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01");
///
/// // Invalid values are rejected with the rule they broke.
/// let err = "00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>();
/// assert_eq!(err.unwrap_err().to_string(), "traceparent: trace-id is all zeros, which is an invalid identifier");
/// # Ok::<(), stitch_propagation::ParseError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id.
    pub trace_id: TraceId,
    /// The id of the caller's span (`parent-id`).
    pub parent_id: SpanId,
    /// The trace flags.
    pub flags: TraceFlags,
}

impl TraceParent {
    /// A traceparent from its fields.
    pub const fn new(trace_id: TraceId, parent_id: SpanId, flags: TraceFlags) -> Self {
        TraceParent {
            trace_id,
            parent_id,
            flags,
        }
    }

    /// Parses a `traceparent` value by every rule of the specification (see the module docs).
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        Self::parse_with_version(value).map(|(_, tp)| tp)
    }

    /// Like [`TraceParent::parse`], also returning the version the value declared.
    pub fn parse_with_version(value: &str) -> Result<(u8, Self), ParseError> {
        let s = trim_ows(value);
        if s.is_empty() {
            return Err(ParseError::new(HEADER, "", Reason::Empty));
        }
        let version = parse_version(s)?;
        let mut fields = s.split('-');
        fields.next(); // the version, already checked
        let trace = fields.next().unwrap_or("");
        let parent = fields.next();
        let flags = fields.next();
        let rest = fields.next();

        let count = s.split('-').count();
        if count < 4 {
            return Err(ParseError::new(
                HEADER,
                "",
                Reason::FieldCount {
                    expected: "4",
                    found: count,
                },
            ));
        }
        let mut trace_bytes = [0u8; 16];
        decode_fixed_lower_hex(trace, &mut trace_bytes, "32")
            .map_err(|r| ParseError::new(HEADER, "trace-id", r))?;
        let mut parent_bytes = [0u8; 8];
        decode_fixed_lower_hex(parent.unwrap_or(""), &mut parent_bytes, "16")
            .map_err(|r| ParseError::new(HEADER, "parent-id", r))?;
        let mut flag_byte = [0u8; 1];
        decode_fixed_lower_hex(flags.unwrap_or(""), &mut flag_byte, "2")
            .map_err(|r| ParseError::new(HEADER, "trace-flags", r))?;
        if version == 0 && rest.is_some() {
            // Version 00 is exactly 55 characters.
            return Err(ParseError::new(HEADER, "", Reason::TrailingData));
        }
        let trace_id = TraceId::from_bytes(trace_bytes);
        if !trace_id.is_valid() {
            return Err(ParseError::new(HEADER, "trace-id", Reason::AllZero));
        }
        let parent_id = SpanId::from_bytes(parent_bytes);
        if !parent_id.is_valid() {
            return Err(ParseError::new(HEADER, "parent-id", Reason::AllZero));
        }
        let mut flags = TraceFlags::new(flag_byte[0]);
        if version != 0 {
            // Nothing may be assumed about a future version beyond the fields 00 defines.
            flags = flags.known_only();
        }
        Ok((version, TraceParent::new(trace_id, parent_id, flags)))
    }

    /// Whether both ids are valid (not all zeros).
    pub const fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.parent_id.is_valid()
    }

    /// The traceparent a service sends downstream when it continues this trace with the span
    /// `span_id`: same trace id, new parent-id, the sampled and random flags kept and the
    /// reserved flags cleared.
    pub const fn child(&self, span_id: SpanId) -> Self {
        TraceParent::new(self.trace_id, span_id, self.flags.known_only())
    }
}

fn parse_version(s: &str) -> Result<u8, ParseError> {
    let b = s.as_bytes();
    let field = "version";
    let digits = b.iter().take_while(|c| **c != b'-').count();
    if digits != 2 {
        if let Some(&c) = b[..digits].iter().find(|c| lower_hex_digit(**c).is_none()) {
            return Err(ParseError::new(HEADER, field, not_lower_hex(c)));
        }
        return Err(ParseError::new(
            HEADER,
            field,
            Reason::Length {
                expected: "2",
                found: s[..digits].chars().count(),
            },
        ));
    }
    let hi =
        lower_hex_digit(b[0]).ok_or_else(|| ParseError::new(HEADER, field, not_lower_hex(b[0])))?;
    let lo =
        lower_hex_digit(b[1]).ok_or_else(|| ParseError::new(HEADER, field, not_lower_hex(b[1])))?;
    let version = (hi << 4) | lo;
    if version == 0xff {
        return Err(ParseError::new(HEADER, field, Reason::ForbiddenVersion));
    }
    if b.len() == 2 {
        return Err(ParseError::new(
            HEADER,
            field,
            Reason::Delimiter { expected: '-' },
        ));
    }
    Ok(version)
}

impl fmt::Display for TraceParent {
    /// Formats as version `00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.parent_id, self.flags)
    }
}

impl FromStr for TraceParent {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceParent::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn reason(value: &str) -> Reason {
        TraceParent::parse(value).unwrap_err().reason().clone()
    }

    #[test]
    fn the_spec_example_of_a_sampled_request_parses() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(tp.trace_id.to_string(), TRACE);
        assert_eq!(tp.parent_id.to_string(), PARENT);
        assert!(tp.flags.is_sampled());
        assert!(!tp.flags.is_random());
    }

    #[test]
    fn the_spec_example_of_an_unsampled_request_parses() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!tp.flags.is_sampled());
    }

    #[test]
    fn formatting_gives_back_the_spec_example() {
        let v = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(TraceParent::parse(v).unwrap().to_string(), v);
    }

    #[test]
    fn the_random_flag_of_level_2_is_read_and_kept_by_child() {
        let tp = TraceParent::parse(&format!("00-{TRACE}-{PARENT}-02")).unwrap();
        assert!(tp.flags.is_random());
        assert!(!tp.flags.is_sampled());
        let child = tp.child(SpanId::from_u64(7));
        assert!(child.flags.is_random());
        assert_eq!(child.trace_id, tp.trace_id);
    }

    #[test]
    fn reserved_flags_are_kept_when_parsing_version_00_but_cleared_in_a_child() {
        let tp = TraceParent::parse(&format!("00-{TRACE}-{PARENT}-ff")).unwrap();
        assert_eq!(tp.flags.bits(), 0xff);
        assert_eq!(tp.child(SpanId::from_u64(1)).flags.bits(), 0x03);
    }

    #[test]
    fn leading_and_trailing_spaces_and_tabs_are_optional_whitespace() {
        for v in [
            format!(" 00-{TRACE}-{PARENT}-01"),
            format!("\t00-{TRACE}-{PARENT}-01"),
            format!("00-{TRACE}-{PARENT}-01 "),
            format!("00-{TRACE}-{PARENT}-01\t"),
            format!("\t 00-{TRACE}-{PARENT}-01 \t"),
        ] {
            assert_eq!(
                TraceParent::parse(&v).unwrap().trace_id.to_string(),
                TRACE,
                "{v:?}"
            );
        }
    }

    #[test]
    fn whitespace_inside_the_value_is_invalid() {
        assert!(TraceParent::parse(&format!("00- {TRACE}-{PARENT}-01")).is_err());
        assert!(TraceParent::parse(&format!("00-{TRACE}-{PARENT} -01")).is_err());
    }

    #[test]
    fn version_00_with_anything_after_the_flags_is_invalid() {
        assert_eq!(
            reason(&format!(
                "00-{TRACE}-{PARENT}-01-what-the-future-will-be-like"
            )),
            Reason::TrailingData
        );
        assert!(TraceParent::parse(&format!("00-{TRACE}-{PARENT}-01.")).is_err());
    }

    #[test]
    fn a_future_version_is_parsed_by_its_first_four_fields() {
        let (version, tp) =
            TraceParent::parse_with_version(&format!("cc-{TRACE}-{PARENT}-01")).unwrap();
        assert_eq!(version, 0xcc);
        assert_eq!(tp.trace_id.to_string(), TRACE);
        let tp = TraceParent::parse(&format!(
            "cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"
        ))
        .unwrap();
        assert_eq!(tp.to_string(), format!("00-{TRACE}-{PARENT}-01"));
    }

    #[test]
    fn a_future_version_keeps_only_the_flags_version_00_defines() {
        let tp = TraceParent::parse(&format!("01-{TRACE}-{PARENT}-07-xyz")).unwrap();
        assert_eq!(tp.flags.bits(), 0x03);
    }

    #[test]
    fn a_future_version_whose_flags_are_not_followed_by_a_dash_is_invalid() {
        assert!(
            TraceParent::parse(&format!(
                "cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like"
            ))
            .is_err()
        );
        assert!(TraceParent::parse(&format!("cc-{TRACE}-{PARENT}-012")).is_err());
    }

    #[test]
    fn a_future_version_shorter_than_55_characters_is_invalid() {
        assert!(TraceParent::parse(&format!("cc-{TRACE}-{PARENT}-1")).is_err());
        assert!(TraceParent::parse(&format!("cc-{TRACE}-{PARENT}")).is_err());
    }

    #[test]
    fn version_ff_is_forbidden() {
        assert_eq!(
            reason(&format!("ff-{TRACE}-{PARENT}-01")),
            Reason::ForbiddenVersion
        );
    }

    #[test]
    fn a_version_that_is_not_two_lowercase_hex_digits_is_invalid() {
        for v in [".0", "0.", "000", "0000", "0", "0A", "FF", "g0", ""] {
            assert!(
                TraceParent::parse(&format!("{v}-{TRACE}-{PARENT}-01")).is_err(),
                "{v}"
            );
        }
        assert!(TraceParent::parse("00").is_err());
    }

    #[test]
    fn an_all_zero_trace_id_is_invalid() {
        assert_eq!(
            reason(&format!("00-{}-{PARENT}-01", "0".repeat(32))),
            Reason::AllZero
        );
    }

    #[test]
    fn an_all_zero_parent_id_is_invalid() {
        let err = TraceParent::parse(&format!("00-{TRACE}-0000000000000000-01")).unwrap_err();
        assert_eq!(err.field(), "parent-id");
        assert_eq!(err.reason(), &Reason::AllZero);
    }

    #[test]
    fn uppercase_hex_in_any_field_is_invalid() {
        assert_eq!(
            reason(&format!("00-{}-{PARENT}-01", TRACE.to_uppercase())),
            Reason::UppercaseHex
        );
        assert_eq!(
            reason(&format!("00-{TRACE}-{}-01", PARENT.to_uppercase())),
            Reason::UppercaseHex
        );
        assert_eq!(
            reason(&format!("00-{TRACE}-{PARENT}-0A")),
            Reason::UppercaseHex
        );
    }

    #[test]
    fn ids_and_flags_of_the_wrong_length_are_invalid() {
        for v in [
            format!("00-{TRACE}3-{PARENT}-01"),
            format!("00-{}-{PARENT}-01", &TRACE[1..]),
            format!("00-{TRACE}-{PARENT}7-01"),
            format!("00-{TRACE}-{}-01", &PARENT[1..]),
            format!("00-{TRACE}-{PARENT}-001"),
            format!("00-{TRACE}-{PARENT}-1"),
        ] {
            assert!(TraceParent::parse(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn illegal_characters_in_ids_and_flags_are_invalid() {
        for v in [
            "00-.2345678901234567890123456789012-1234567890123456-01",
            "00-1234567890123456789012345678901.-1234567890123456-01",
            "00-12345678901234567890123456789012-.234567890123456-01",
            "00-12345678901234567890123456789012-123456789012345.-01",
            "00-12345678901234567890123456789012-1234567890123456-.0",
            "00-12345678901234567890123456789012-1234567890123456-0.",
        ] {
            assert!(TraceParent::parse(v).is_err(), "{v}");
        }
    }

    #[test]
    fn an_empty_or_blank_value_is_invalid() {
        assert_eq!(reason(""), Reason::Empty);
        assert_eq!(reason(" \t"), Reason::Empty);
    }
}
