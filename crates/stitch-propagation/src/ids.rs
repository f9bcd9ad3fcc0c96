//! Trace and span identifiers, the sampling decision, and the hex helpers the parsers share.

use std::fmt;
use std::str::FromStr;

use crate::error::{ParseError, Reason};

/// A 128-bit trace identifier, shared by every span of a trace.
///
/// 64-bit identifiers (B3, Jaeger) are stored left-padded with zeros, which is how every
/// format converts them to 128 bits. An identifier of all zeros is invalid in every format;
/// [`TraceId::is_valid`] tells.
///
/// ```
/// use stitch_propagation::TraceId;
///
/// let id: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(TraceId::from_u64(0xabc).to_string(), "00000000000000000000000000000abc");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId([u8; 16]);

/// A 64-bit span identifier (the W3C `parent-id`, the B3 and Jaeger span ids).
///
/// ```
/// use stitch_propagation::SpanId;
///
/// let id: SpanId = "00f067aa0ba902b7".parse().unwrap();
/// assert_eq!(id.to_u64(), 0x00f0_67aa_0ba9_02b7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId([u8; 8]);

impl TraceId {
    /// The invalid identifier, all zeros.
    pub const INVALID: TraceId = TraceId([0; 16]);

    /// An identifier from its 16 bytes, most significant first.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        TraceId(bytes)
    }

    /// The 16 bytes, most significant first.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// An identifier from a 128-bit number.
    pub const fn from_u128(value: u128) -> Self {
        TraceId(value.to_be_bytes())
    }

    /// The identifier as a 128-bit number.
    pub const fn to_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// A 64-bit identifier, left-padded with zeros to 128 bits.
    pub const fn from_u64(value: u64) -> Self {
        TraceId::from_u128(value as u128)
    }

    /// The high (left) 64 bits; zero for an identifier that came from a 64-bit format.
    pub const fn high(self) -> u64 {
        (self.to_u128() >> 64) as u64
    }

    /// The low (right) 64 bits: what a 64-bit-only system would keep.
    pub const fn low(self) -> u64 {
        self.to_u128() as u64
    }

    /// True unless the identifier is all zeros.
    pub const fn is_valid(self) -> bool {
        self.to_u128() != 0
    }

    /// A new random identifier (never all zeros).
    ///
    /// Every bit is drawn from a generator seeded by the operating system, so the W3C
    /// `random-trace-id` flag may be set for it. It is not meant for cryptographic use.
    pub fn generate() -> Self {
        loop {
            let id = TraceId::from_u128(
                (u128::from(crate::random::next_u64()) << 64)
                    | u128::from(crate::random::next_u64()),
            );
            if id.is_valid() {
                return id;
            }
        }
    }

    /// Parses exactly 32 lowercase hex digits that are not all zeros.
    pub fn from_hex(s: &str) -> Result<Self, ParseError> {
        let mut bytes = [0u8; 16];
        decode_fixed_lower_hex(s, &mut bytes, "32")
            .map_err(|r| ParseError::new("trace id", "", r))?;
        let id = TraceId(bytes);
        if !id.is_valid() {
            return Err(ParseError::new("trace id", "", Reason::AllZero));
        }
        Ok(id)
    }
}

impl SpanId {
    /// The invalid identifier, all zeros.
    pub const INVALID: SpanId = SpanId([0; 8]);

    /// An identifier from its 8 bytes, most significant first.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        SpanId(bytes)
    }

    /// The 8 bytes, most significant first.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// An identifier from a 64-bit number.
    pub const fn from_u64(value: u64) -> Self {
        SpanId(value.to_be_bytes())
    }

    /// The identifier as a 64-bit number.
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// True unless the identifier is all zeros.
    pub const fn is_valid(self) -> bool {
        self.to_u64() != 0
    }

    /// A new random identifier (never all zeros). Not meant for cryptographic use.
    pub fn generate() -> Self {
        loop {
            let id = SpanId::from_u64(crate::random::next_u64());
            if id.is_valid() {
                return id;
            }
        }
    }

    /// Parses exactly 16 lowercase hex digits that are not all zeros.
    pub fn from_hex(s: &str) -> Result<Self, ParseError> {
        let mut bytes = [0u8; 8];
        decode_fixed_lower_hex(s, &mut bytes, "16")
            .map_err(|r| ParseError::new("span id", "", r))?;
        let id = SpanId(bytes);
        if !id.is_valid() {
            return Err(ParseError::new("span id", "", Reason::AllZero));
        }
        Ok(id)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.to_u128())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.to_u64())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl FromStr for TraceId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceId::from_hex(s)
    }
}

impl FromStr for SpanId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpanId::from_hex(s)
    }
}

/// A sampling decision that was made upstream.
///
/// The absence of a decision ("defer" in B3) is `Option::None` wherever this type is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sampling {
    /// Do not record (B3 `0`, W3C sampled flag unset, Jaeger flags without bit 1).
    Deny,
    /// Record (B3 `1`, W3C sampled flag set, Jaeger bit 1).
    Accept,
    /// Record, and mark the trace as forced for debugging (B3 `d` / `X-B3-Flags: 1`, Jaeger bit
    /// 2). Debug implies accept.
    Debug,
}

impl Sampling {
    /// True for [`Sampling::Accept`] and [`Sampling::Debug`].
    pub const fn is_sampled(self) -> bool {
        matches!(self, Sampling::Accept | Sampling::Debug)
    }

    /// Accept or deny from a boolean.
    pub const fn from_sampled(sampled: bool) -> Self {
        if sampled {
            Sampling::Accept
        } else {
            Sampling::Deny
        }
    }
}

/// The value of a lowercase hex digit.
pub(crate) fn lower_hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// The reason a byte is not a lowercase hex digit.
pub(crate) fn not_lower_hex(b: u8) -> Reason {
    if b.is_ascii_hexdigit() {
        Reason::UppercaseHex
    } else {
        Reason::InvalidCharacter {
            found: char::from(b),
        }
    }
}

/// Decodes exactly `2 * out.len()` lowercase hex digits into `out`.
pub(crate) fn decode_fixed_lower_hex(
    s: &str,
    out: &mut [u8],
    expected: &'static str,
) -> Result<(), Reason> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        // Report a bad character before a bad length when both apply: it is the more useful
        // message for `00-.2345…` style values.
        if let Some(&c) = b.iter().find(|c| lower_hex_digit(**c).is_none()) {
            return Err(not_lower_hex(c));
        }
        return Err(Reason::Length {
            expected,
            found: s.chars().count(),
        });
    }
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = lower_hex_digit(pair[0]).ok_or_else(|| not_lower_hex(pair[0]))?;
        let lo = lower_hex_digit(pair[1]).ok_or_else(|| not_lower_hex(pair[1]))?;
        out[i] = (hi << 4) | lo;
    }
    Ok(())
}

/// Decodes 1 to `max_digits` hex digits (either case) into a number; leading zeros may be
/// omitted. Used by the Jaeger format.
pub(crate) fn decode_var_hex(
    s: &str,
    max_digits: usize,
    expected: &'static str,
) -> Result<u128, Reason> {
    if s.is_empty() {
        return Err(Reason::Empty);
    }
    let mut value: u128 = 0;
    for c in s.bytes() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => {
                return Err(Reason::InvalidCharacter {
                    found: char::from(c),
                });
            }
        };
        value = (value << 4) | u128::from(d);
    }
    if s.len() > max_digits {
        return Err(Reason::Length {
            expected,
            found: s.len(),
        });
    }
    Ok(value)
}

/// Strips HTTP optional whitespace (spaces and horizontal tabs) from both ends.
pub(crate) fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_64_bit_trace_id_is_left_padded_to_128_bits() {
        let id = TraceId::from_u64(0x463a_c35c_9f64_13ad);
        assert_eq!(id.to_string(), "0000000000000000463ac35c9f6413ad");
        assert_eq!(id.high(), 0);
        assert_eq!(id.low(), 0x463a_c35c_9f64_13ad);
    }

    #[test]
    fn ids_parsed_from_text_are_never_all_zero() {
        assert!(TraceId::from_hex(&"0".repeat(32)).is_err());
        assert!(SpanId::from_hex(&"0".repeat(16)).is_err());
    }

    #[test]
    fn uppercase_hex_is_rejected_with_its_own_reason() {
        let err = SpanId::from_hex("00F067AA0BA902B7").unwrap_err();
        assert_eq!(err.reason(), &Reason::UppercaseHex);
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = TraceId::generate();
        let b = TraceId::generate();
        assert!(a.is_valid() && b.is_valid());
        assert_ne!(a, b);
        assert_ne!(SpanId::generate(), SpanId::generate());
    }

    #[test]
    fn variable_length_hex_accepts_missing_leading_zeros_and_either_case() {
        assert_eq!(decode_var_hex("aBc", 16, "1 to 16"), Ok(0xabc));
        assert!(decode_var_hex("", 16, "1 to 16").is_err());
        assert!(decode_var_hex("12345678901234567", 16, "1 to 16").is_err());
    }
}
