//! The store's clock: where the WAL writer thread reads the time for the tail sampler
//! (decision waits, adaptive windows, decision caches), recovery and the sampling status.
//!
//! Servers use [`SystemClock`]. Tests inject a [`ManualClock`], move it, and call
//! [`Store::tick`](crate::Store::tick), which runs the sampler's timers at once and returns
//! when their decisions are applied and published, so no test waits for time to pass.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of Unix time in nanoseconds.
pub trait Clock: Debug + Send + Sync {
    fn unix_nanos(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64
    }
}

/// A clock that stands still until it is moved.
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock that reads `unix_nanos` until moved.
    pub fn new(unix_nanos: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            nanos: AtomicU64::new(unix_nanos),
        })
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(5);
        assert_eq!(c.unix_nanos(), 5);
        c.advance(Duration::from_millis(2));
        assert_eq!(c.unix_nanos(), 2_000_005);
        assert!(SystemClock.unix_nanos() > 1_600_000_000_000_000_000);
    }
}
