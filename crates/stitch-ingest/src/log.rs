//! The receivers' one rate-limited logger: bad input can arrive thousands of times a second,
//! and each kind of complaint is logged at most once per interval with a count of what was
//! left out.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Logs at most one line per interval and counts what it left out.
pub(crate) struct RateLimitedLog {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
    interval: Duration,
}

impl RateLimitedLog {
    pub(crate) fn new(interval: Duration) -> RateLimitedLog {
        RateLimitedLog {
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
            interval,
        }
    }

    /// Calls `log` with the number of suppressed events since the last line, or counts this
    /// event as suppressed.
    pub(crate) fn log(&self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        let due = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| now.duration_since(t) >= self.interval);
            if due {
                *last = Some(now);
            }
            due
        };
        if due {
            log(self.suppressed.swap(0, Ordering::Relaxed));
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_rate_limited_and_counts_what_it_left_out() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        let mut lines = Vec::new();
        for _ in 0..5 {
            log.log(|suppressed| lines.push(suppressed));
        }
        assert_eq!(lines, vec![0]);
        assert_eq!(log.suppressed.load(Ordering::Relaxed), 4);
        let log = RateLimitedLog::new(Duration::ZERO);
        let mut lines = Vec::new();
        for _ in 0..3 {
            log.log(|suppressed| lines.push(suppressed));
        }
        assert_eq!(lines, vec![0, 0, 0]);
    }
}
