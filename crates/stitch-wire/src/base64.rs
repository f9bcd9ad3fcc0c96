//! A small base64 codec for OTLP/JSON `bytesValue`.
//!
//! Encoding uses the standard alphabet with padding. Decoding accepts the standard and the
//! URL-safe alphabet (even mixed), with or without padding, as the proto3 JSON mapping asks of
//! parsers.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        // One input byte gives two output characters, two give three, three give four.
        let used = chunk.len() + 1;
        for (i, s) in sextets.iter().enumerate() {
            out.push(if i < used {
                char::from(ALPHABET[*s as usize])
            } else {
                '='
            });
        }
    }
    out
}

fn sextet(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    }))
}

/// Decodes base64 text; `None` when it is not base64.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let unpadded = bytes
        .strip_suffix(b"==")
        .or_else(|| bytes.strip_suffix(b"="));
    let (data, padded) = match unpadded {
        Some(data) => (data, true),
        None => (bytes, false),
    };
    if padded && !bytes.len().is_multiple_of(4) {
        return None;
    }
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    for chunk in data.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= sextet(c)? << (18 - 6 * i);
        }
        // A chunk of k characters carries k - 1 whole bytes (k = 2, 3 or 4).
        let whole = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..=whole]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn base64_encodes_with_padding() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn base64_decodes_standard_url_safe_and_unpadded_text() {
        assert_eq!(decode("Zg==").unwrap(), b"f");
        assert_eq!(decode("Zg").unwrap(), b"f");
        assert_eq!(decode("Zm8=").unwrap(), b"fo");
        assert_eq!(decode("Zm8").unwrap(), b"fo");
        assert_eq!(decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(decode("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn base64_rejects_text_that_is_not_base64() {
        for bad in ["Z", "Zg=", "Z===", "Zm9v!", "Zg==Zg==", "=", "Zm 9v"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_round_trips_every_length() {
        let data: Vec<u8> = (0..=255).collect();
        for len in 0..40 {
            assert_eq!(decode(&encode(&data[..len])).unwrap(), &data[..len]);
        }
    }
}
