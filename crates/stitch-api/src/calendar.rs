//! Unix time as a UTC calendar date and time of day, for answers and terminal output that
//! print times.

/// A UTC date and time of day, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    /// The date and time `unix_seconds` after 1970-01-01T00:00:00Z (proleptic Gregorian).
    pub fn from_unix_seconds(unix_seconds: u64) -> Utc {
        let days = (unix_seconds / 86_400) as i64;
        let rest = (unix_seconds % 86_400) as u32;
        // Days to a civil date by 400-year eras of 146,097 days, counted from 0000-03-01 so
        // that the leap day ends each year.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rest / 3_600,
            minute: rest % 3_600 / 60,
            second: rest % 60,
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `YYYY-MM-DD HH:MM:SS`.
    pub fn plain(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_become_their_dates() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_718_000_000, "2024-06-10T06:13:20Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
        ] {
            assert_eq!(Utc::from_unix_seconds(secs).rfc3339(), text);
            assert_eq!(
                crate::api_v3::parse_rfc3339_nanos(text).unwrap(),
                secs * 1_000_000_000
            );
        }
        assert_eq!(
            Utc::from_unix_seconds(1_718_000_000).plain(),
            "2024-06-10 06:13:20"
        );
    }
}
