//! Go-style duration strings (`1.5s`, `100ms`, `250us`, `1h30m`), as Jaeger's query API takes
//! them.
//!
//! The grammar is Go's `time.ParseDuration` without the sign: one or more decimal numbers,
//! each with an optional fraction and a unit, or a bare `0`. Units are `ns`, `us` (or `µs`,
//! `μs`), `ms`, `s`, `m` and `h`; `d` (24 h) and `w` (7 d) are accepted too, because the Jaeger
//! UI's lookback values use them (`2d`). The result is in nanoseconds.

/// Nanoseconds per unit: Go's, and the Jaeger UI's days and weeks.
fn unit_nanos(unit: &str) -> Option<u128> {
    match unit {
        "d" => Some(86_400_000_000_000),
        "w" => Some(604_800_000_000_000),
        _ => stitch_model::duration_unit_nanos(unit).map(u128::from),
    }
}

/// Parses a duration into nanoseconds; `None` when the text is not a valid, non-negative
/// duration that fits in a `u64`.
pub fn parse_duration_nanos(text: &str) -> Option<u64> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after) = rest.split_at(int_len);
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale = unit_nanos(unit)?;

        let int: u128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().ok()?
        };
        let mut value = int.checked_mul(scale)?;
        // Fraction: digits beyond nanosecond precision cannot change the result.
        let mut frac_scale = scale;
        for d in frac_digits.bytes().take(30) {
            frac_scale /= 10;
            value = value.checked_add(u128::from(d - b'0') * frac_scale)?;
        }
        total = total.checked_add(value)?;
        rest = after;
    }
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_duration_nanos as p;

    #[test]
    fn go_durations_parse_to_nanoseconds() {
        assert_eq!(p("0"), Some(0));
        assert_eq!(p("1.5s"), Some(1_500_000_000));
        assert_eq!(p("100ms"), Some(100_000_000));
        assert_eq!(p("250us"), Some(250_000));
        assert_eq!(p("250µs"), Some(250_000));
        assert_eq!(p("7ns"), Some(7));
        assert_eq!(p("1m"), Some(60_000_000_000));
        assert_eq!(p("1h30m"), Some(5_400_000_000_000));
        assert_eq!(p(".5h"), Some(1_800_000_000_000));
        assert_eq!(p("2d"), Some(172_800_000_000_000));
        assert_eq!(p("1.000000001s"), Some(1_000_000_001));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for bad in [
            "",
            "1",
            "s",
            "1x",
            "-1s",
            "1.s.",
            "1s2",
            "abc",
            ".s",
            "99999999999h",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }
}
