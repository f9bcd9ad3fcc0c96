//! A token bucket driven by an injected clock (Unix or monotonic nanoseconds, as long as the
//! caller is consistent).

/// Tokens refill continuously at `rate` per second up to `capacity`; a request for `n` tokens
/// succeeds only if `n` are available (a request larger than the capacity never succeeds).
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last_nanos: Option<u64>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_second: f64, capacity: f64) -> TokenBucket {
        TokenBucket {
            rate: rate_per_second.max(0.0),
            capacity: capacity.max(0.0),
            tokens: capacity.max(0.0),
            last_nanos: None,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    fn refill(&mut self, now_nanos: u64) {
        match self.last_nanos {
            Some(last) if now_nanos > last => {
                let elapsed = (now_nanos - last) as f64 / 1e9;
                self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
                self.last_nanos = Some(now_nanos);
            }
            Some(_) => {} // the clock did not advance (or went back): no refill
            None => self.last_nanos = Some(now_nanos),
        }
    }

    /// Tokens available at `now_nanos`.
    pub fn available(&mut self, now_nanos: u64) -> f64 {
        self.refill(now_nanos);
        self.tokens
    }

    /// Takes `n` tokens if available.
    pub fn try_take(&mut self, n: f64, now_nanos: u64) -> bool {
        self.refill(now_nanos);
        if n <= self.tokens {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let mut b = TokenBucket::new(100.0, 200.0);
        assert!(b.try_take(150.0, 0));
        assert!(b.try_take(50.0, 0));
        assert!(!b.try_take(1.0, 0));
        // Half a second refills 50 tokens.
        assert!(!b.try_take(51.0, SEC / 2));
        assert!(b.try_take(50.0, SEC / 2));
        // Ten idle seconds refill only up to the capacity.
        assert_eq!(b.available(10 * SEC), 200.0);
        assert!(!b.try_take(201.0, 10 * SEC));
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let mut b = TokenBucket::new(10.0, 10.0);
        assert!(b.try_take(10.0, 5 * SEC));
        assert!(!b.try_take(1.0, 4 * SEC));
        assert!(!b.try_take(1.0, 5 * SEC));
        assert!(b.try_take(1.0, 5 * SEC + SEC / 10));
    }
}
