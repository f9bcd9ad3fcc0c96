//! Percent-encoding (RFC 3986, section 2.1) as the baggage formats use it.

/// Encodes every byte for which `keep` is false, and `%` always, as `%XX` (uppercase hex).
pub(crate) fn encode(value: &str, keep: impl Fn(u8) -> bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b != b'%' && keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Decodes `%XX` sequences (either case). A `%` not followed by two hex digits is kept as is.
/// Decoded bytes that are not UTF-8 become U+FFFD, as the baggage spec requires.
pub(crate) fn decode(value: &str) -> String {
    if !value.contains('%') {
        return value.to_owned();
    }
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((hi << 4) | lo);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_escapes_what_is_not_kept_and_always_the_percent_sign() {
        assert_eq!(
            encode("DF 28%", |b| b.is_ascii_alphanumeric()),
            "DF%2028%25"
        );
        assert_eq!(encode("Amélie", |b| b.is_ascii_graphic()), "Am%C3%A9lie");
    }

    #[test]
    fn decoding_reverses_encoding_and_tolerates_stray_percent_signs() {
        assert_eq!(decode("Am%C3%A9lie"), "Amélie");
        assert_eq!(decode("DF%2028"), "DF 28");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%3a%3A"), "::");
    }

    #[test]
    fn decoded_bytes_that_are_not_utf8_become_the_replacement_character() {
        assert_eq!(decode("a%FFb"), "a\u{fffd}b");
    }
}
