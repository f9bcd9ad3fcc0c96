//! Trace and span identifiers.

use std::fmt;
use std::str::FromStr;

/// Why bytes or text are not a valid identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be {expected} bytes, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{what} must be {expected} hex characters, got {got}")]
    HexLength {
        what: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{what} contains a character that is not hex: {found:?}")]
    NotHex { what: &'static str, found: char },
    #[error("{what} is all zeros, which is invalid")]
    AllZero { what: &'static str },
}

/// A 128-bit trace id. All zeros is the invalid id.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// A 64-bit span id. All zeros is the invalid id.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `text` (exactly `2 * N` hex digits, or fewer when `pad_short`) right-aligned into
/// `N` bytes.
fn decode_hex<const N: usize>(
    text: &str,
    what: &'static str,
    expected: &'static str,
    allow_short: bool,
) -> Result<[u8; N], IdError> {
    let bytes = text.as_bytes();
    let ok_len = bytes.len() == 2 * N || (allow_short && bytes.len() == N);
    if !ok_len {
        return Err(IdError::HexLength {
            what,
            expected,
            got: bytes.len(),
        });
    }
    let mut out = [0u8; N];
    let offset = N - bytes.len() / 2;
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0]).ok_or(IdError::NotHex {
            what,
            found: pair[0] as char,
        })?;
        let lo = hex_val(pair[1]).ok_or(IdError::NotHex {
            what,
            found: pair[1] as char,
        })?;
        out[offset + i] = (hi << 4) | lo;
    }
    Ok(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut buf = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        buf[2 * i] = HEX[(b >> 4) as usize];
        buf[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    // Only ASCII hex digits were written.
    f.write_str(std::str::from_utf8(&buf[..bytes.len() * 2]).map_err(|_| fmt::Error)?)
}

impl TraceId {
    pub const INVALID: TraceId = TraceId([0; 16]);

    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }

    /// From exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<TraceId, IdError> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| IdError::Length {
            what: "trace id",
            expected: 16,
            got: bytes.len(),
        })?;
        Ok(TraceId(arr))
    }

    /// Parses 32 hex digits, or 16 hex digits as a 64-bit id (high half zero, as Zipkin and
    /// Jaeger send them). Either case is accepted. All zeros is an error.
    pub fn from_hex(text: &str) -> Result<TraceId, IdError> {
        let id = TraceId(decode_hex::<16>(text, "trace id", "16 or 32", true)?);
        if !id.is_valid() {
            return Err(IdError::AllZero { what: "trace id" });
        }
        Ok(id)
    }

    /// The high and low 64-bit halves (Jaeger's representation).
    pub fn halves(&self) -> (u64, u64) {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        hi.copy_from_slice(&self.0[..8]);
        lo.copy_from_slice(&self.0[8..]);
        (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
    }

    pub fn from_halves(high: u64, low: u64) -> TraceId {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&high.to_be_bytes());
        out[8..].copy_from_slice(&low.to_be_bytes());
        TraceId(out)
    }

    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl SpanId {
    pub const INVALID: SpanId = SpanId([0; 8]);

    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }

    /// From exactly 8 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<SpanId, IdError> {
        let arr: [u8; 8] = bytes.try_into().map_err(|_| IdError::Length {
            what: "span id",
            expected: 8,
            got: bytes.len(),
        })?;
        Ok(SpanId(arr))
    }

    /// Parses 16 hex digits (either case). All zeros is an error.
    pub fn from_hex(text: &str) -> Result<SpanId, IdError> {
        let id = SpanId(decode_hex::<8>(text, "span id", "16", false)?);
        if !id.is_valid() {
            return Err(IdError::AllZero { what: "span id" });
        }
        Ok(id)
    }

    pub fn from_u64(v: u64) -> SpanId {
        SpanId(v.to_be_bytes())
    }

    pub fn as_u64(&self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl FromStr for TraceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceId::from_hex(s)
    }
}

impl FromStr for SpanId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpanId::from_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trips_through_hex() {
        let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            TraceId::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap(),
            id
        );
    }

    #[test]
    fn sixty_four_bit_trace_id_is_right_aligned() {
        let id = TraceId::from_hex("a3ce929d0e0e4736").unwrap();
        assert_eq!(id.to_string(), "0000000000000000a3ce929d0e0e4736");
        assert_eq!(id.halves(), (0, 0xa3ce929d0e0e4736));
    }

    #[test]
    fn invalid_ids_are_rejected_with_the_reason() {
        assert_eq!(
            TraceId::from_hex("00000000000000000000000000000000"),
            Err(IdError::AllZero { what: "trace id" })
        );
        assert!(matches!(
            TraceId::from_hex("abc"),
            Err(IdError::HexLength { got: 3, .. })
        ));
        assert!(matches!(
            SpanId::from_hex("00f067aa0ba902bz"),
            Err(IdError::NotHex { found: 'z', .. })
        ));
        assert!(matches!(
            SpanId::from_slice(&[1, 2, 3]),
            Err(IdError::Length { got: 3, .. })
        ));
    }

    #[test]
    fn halves_round_trip() {
        let id = TraceId::from_halves(0x0102030405060708, 0x1112131415161718);
        assert_eq!(id.to_string(), "01020304050607081112131415161718");
        assert_eq!(id.halves(), (0x0102030405060708, 0x1112131415161718));
    }
}
