//! Head sampling at the receiver, consistent across services.
//!
//! # Consistent probability sampling
//!
//! OpenTelemetry's consistent probability sampling compares a 56-bit **randomness** `R` with
//! a 56-bit **rejection threshold** `T`: keep when `R >= T`. The sampling probability is
//! `(2^56 - T) / 2^56`; the adjusted count (how many requests a kept one stands for) is its
//! inverse.
//!
//! * `R` is the `rv` sub-key of the `ot` member of `tracestate` (exactly 14 hex digits) when
//!   present, else the least significant 56 bits of the trace id (random for W3C Trace
//!   Context Level 2 ids, whose `random` flag is trace-flags bit 1).
//! * `T` travels as the `th` sub-key (1 to 14 hex digits, trailing zeros removed: `ot=th:c`
//!   is 25%, `ot=th:0` is 100%).
//!
//! Because the decision depends only on the trace id (or `rv`), every service's spans of one
//! trace get the same answer at every receiver. An upstream `th` is honoured as an
//! *equalizing* downstream sampler does: our own threshold `T_d` applies, and the effective
//! threshold of a kept trace is `max(th, T_d)`, which gives its true probability for RED
//! metrics.
//!
//! The optional rate limiter (a token bucket of traces per second) breaks the pure function,
//! so its verdicts are remembered per trace id (an LRU) to keep traces whole.

use stitch_model::TraceId;

use crate::bucket::TokenBucket;
use crate::config::HeadConfig;
use crate::lru::Lru;

/// 2^56: the number of distinct thresholds and randomness values.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
const MASK_56: u64 = MAX_ADJUSTED_COUNT - 1;

/// The sampling sub-keys of the `ot` member of a W3C `tracestate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtelTraceState {
    /// Rejection threshold `th`, 56 bits.
    pub threshold: Option<u64>,
    /// Explicit randomness `rv`, 56 bits.
    pub randomness: Option<u64>,
}

/// Reads `th` and `rv` from a `tracestate` header value. Malformed values are ignored (as if
/// absent), as the specification asks of samplers facing inconsistent input.
pub fn parse_tracestate(tracestate: &str) -> OtelTraceState {
    let mut out = OtelTraceState::default();
    let Some(ot) = tracestate.split(',').find_map(|member| {
        let (key, value) = member.trim().split_once('=')?;
        (key.trim() == "ot").then_some(value.trim())
    }) else {
        return out;
    };
    for field in ot.split(';') {
        let Some((k, v)) = field.split_once(':') else {
            continue;
        };
        match k {
            "th" => out.threshold = parse_threshold(v),
            "rv" => out.randomness = parse_randomness(v),
            _ => {}
        }
    }
    out
}

/// Decodes a `th` value: 1 to 14 hex digits, extended with trailing zeros to 14.
pub fn parse_threshold(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 14 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let n = u64::from_str_radix(v, 16).ok()?;
    Some(n << (4 * (14 - v.len())))
}

/// Decodes an `rv` value: exactly 14 hex digits.
pub fn parse_randomness(v: &str) -> Option<u64> {
    if v.len() != 14 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(v, 16).ok()
}

/// Encodes a threshold as a `th` value, trailing zeros removed (`0` for 100%).
pub fn encode_threshold(threshold: u64) -> String {
    let threshold = threshold.min(MASK_56);
    if threshold == 0 {
        return "0".to_owned();
    }
    let s = format!("{threshold:014x}");
    s.trim_end_matches('0').to_owned()
}

/// The rejection threshold for a probability in (0, 1]: `round((1 - p) * 2^56)`.
pub fn threshold_for_probability(p: f64) -> u64 {
    if p >= 1.0 || p.is_nan() {
        return 0;
    }
    if p <= 0.0 {
        // Never sampling is not a probability; the largest threshold keeps 1 in 2^56.
        return MASK_56;
    }
    let t = ((1.0 - p) * MAX_ADJUSTED_COUNT as f64).round();
    (t as u64).min(MASK_56)
}

/// The sampling probability of a threshold: `(2^56 - T) / 2^56`.
pub fn probability_for_threshold(threshold: u64) -> f64 {
    (MAX_ADJUSTED_COUNT - threshold.min(MASK_56)) as f64 / MAX_ADJUSTED_COUNT as f64
}

/// The 56 bits of randomness of a trace: `rv` when given, else the trace id's low 56 bits.
pub fn randomness(trace_id: TraceId, explicit: Option<u64>) -> u64 {
    explicit.unwrap_or_else(|| trace_id.halves().1 & MASK_56)
}

/// Why the head sampler answered as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadReason {
    /// Randomness at or above the threshold.
    Probability,
    /// Randomness below the threshold.
    BelowThreshold,
    /// Kept by probability but the rate limit was exhausted.
    RateLimited,
    /// The rate-limited verdict remembered for this trace id.
    Remembered,
}

/// The head sampler's verdict on a span (or trace).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadDecision {
    pub sampled: bool,
    /// Effective rejection threshold: the larger of ours and the upstream `th`.
    pub threshold: u64,
    /// Probability that a trace like this one is kept, counting the upstream `th` when
    /// present and the rate limiter's recent acceptance ratio when it is active. Scale counts
    /// by `1 / probability`.
    pub probability: f64,
    /// False when the probability includes an estimate (the rate limiter).
    pub exact: bool,
    /// True when the span carried an upstream `th`.
    pub upstream_threshold: bool,
    pub reason: HeadReason,
}

impl HeadDecision {
    /// How many requests a kept trace stands for.
    pub fn adjusted_count(&self) -> f64 {
        if self.probability > 0.0 {
            1.0 / self.probability
        } else {
            0.0
        }
    }

    /// The `th` value to write into the kept span's `tracestate` so downstream consumers
    /// see the effective probability.
    pub fn th_value(&self) -> String {
        encode_threshold(self.threshold)
    }
}

/// Probabilistic head sampling with an optional rate limit.
pub struct HeadSampler {
    threshold: u64,
    limiter: Option<TokenBucket>,
    remembered: Lru<TraceId, bool>,
    /// Per-second counts of traces the limiter was asked about and let through, for the
    /// acceptance ratio: (second, offered, accepted) for this and the previous second.
    window: [(u64, u64, u64); 2],
}

impl HeadSampler {
    pub fn new(config: &HeadConfig) -> HeadSampler {
        let limiter = (config.rate_limit_traces_per_second > 0.0).then(|| {
            let rate = config.rate_limit_traces_per_second;
            TokenBucket::new(rate, config.rate_limit_burst.unwrap_or(rate.max(1.0)))
        });
        HeadSampler {
            threshold: threshold_for_probability(config.percentage / 100.0),
            limiter,
            remembered: Lru::new(config.decision_cache_size),
            window: [(u64::MAX, 0, 0); 2],
        }
    }

    /// True when every trace is kept (100% and no rate limit): the caller may skip calling.
    pub fn keeps_everything(&self) -> bool {
        self.threshold == 0 && self.limiter.is_none()
    }

    /// Our own rejection threshold.
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// Decides for a span of `trace_id` carrying `tracestate`, at `now_nanos`.
    pub fn decide(&mut self, trace_id: TraceId, tracestate: &str, now_nanos: u64) -> HeadDecision {
        let ot = if tracestate.is_empty() {
            OtelTraceState::default()
        } else {
            parse_tracestate(tracestate)
        };
        let r = randomness(trace_id, ot.randomness);
        let effective = ot.threshold.unwrap_or(0).max(self.threshold);
        let upstream_threshold = ot.threshold.is_some();
        let mut decision = HeadDecision {
            sampled: r >= self.threshold,
            threshold: effective,
            probability: probability_for_threshold(effective),
            exact: true,
            upstream_threshold,
            reason: HeadReason::Probability,
        };
        if !decision.sampled {
            decision.reason = HeadReason::BelowThreshold;
            return decision;
        }
        if self.limiter.is_none() {
            return decision;
        }
        let second = now_nanos / 1_000_000_000;
        if self.window[0].0 != second {
            self.window[1] = if self.window[0].0.wrapping_add(1) == second {
                self.window[0]
            } else {
                (second.wrapping_sub(1), 0, 0)
            };
            self.window[0] = (second, 0, 0);
        }
        let ratio = {
            let (_, offered, accepted) = self.window[1];
            if offered == 0 {
                1.0
            } else {
                accepted as f64 / offered as f64
            }
        };
        decision.exact = false;
        decision.probability *= ratio;
        if let Some(&kept) = self.remembered.get(&trace_id) {
            decision.sampled = kept;
            decision.reason = HeadReason::Remembered;
            return decision;
        }
        let limiter = self.limiter.as_mut().expect("checked above");
        let kept = limiter.try_take(1.0, now_nanos);
        self.window[0].1 += 1;
        if kept {
            self.window[0].2 += 1;
        }
        self.remembered.insert(trace_id, kept);
        if !kept {
            decision.sampled = false;
            decision.reason = HeadReason::RateLimited;
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_values_decode_as_the_specification_shows() {
        // 1% with 5 digits of precision: 0xfd70a400000000.
        assert_eq!(parse_threshold("fd70a4"), Some(0xfd70a400000000));
        assert_eq!(parse_threshold("0"), Some(0));
        assert_eq!(parse_threshold("8"), Some(0x80000000000000));
        assert_eq!(
            probability_for_threshold(parse_threshold("8").unwrap()),
            0.5
        );
        assert_eq!(
            probability_for_threshold(parse_threshold("c").unwrap()),
            0.25
        );
        let p = probability_for_threshold(parse_threshold("fd70a4").unwrap());
        assert!((p - 0.009999990463256836).abs() < 1e-15, "{p}");
        assert_eq!(parse_threshold("123456789abcdef"), None, "15 digits");
        assert_eq!(parse_threshold("xyz"), None);
        assert_eq!(encode_threshold(0x80000000000000), "8");
        assert_eq!(encode_threshold(0), "0");
        assert_eq!(encode_threshold(threshold_for_probability(0.25)), "c");
    }

    #[test]
    fn tracestate_members_other_than_ot_are_ignored() {
        let ts = parse_tracestate("vendor=abc, ot=th:c;rv:ffffffffffffff;x:1,other=th:8");
        assert_eq!(ts.threshold, Some(0xc0000000000000));
        assert_eq!(ts.randomness, Some(0xffffffffffffff));
        assert_eq!(parse_tracestate("ot=rv:123"), OtelTraceState::default());
        assert_eq!(parse_tracestate(""), OtelTraceState::default());
    }

    fn trace_with_low(low: u64) -> TraceId {
        TraceId::from_halves(0xdead_beef, low)
    }

    #[test]
    fn the_decision_is_the_same_for_every_span_of_a_trace() {
        let mut head = HeadSampler::new(&HeadConfig {
            percentage: 25.0,
            ..HeadConfig::default()
        });
        // Threshold 0xc0..: keep when the low 56 bits are >= 0xc0000000000000.
        let keep = trace_with_low(0xd0_0000_0000_0000);
        let drop = trace_with_low(0x10_0000_0000_0000);
        for _ in 0..3 {
            assert!(head.decide(keep, "", 0).sampled);
            assert!(!head.decide(drop, "", 0).sampled);
        }
        // The explicit randomness overrides the trace id.
        assert!(head.decide(drop, "ot=rv:ffffffffffffff", 0).sampled);
        let d = head.decide(keep, "", 0);
        assert_eq!(d.probability, 0.25);
        assert_eq!(d.adjusted_count(), 4.0);
    }

    #[test]
    fn an_upstream_threshold_lowers_the_reported_probability() {
        let mut head = HeadSampler::new(&HeadConfig {
            percentage: 50.0,
            ..HeadConfig::default()
        });
        // Upstream sampled at 25% (th:c); we keep at 50%: the trace's probability is 25%.
        let id = trace_with_low(0xf0_0000_0000_0000);
        let d = head.decide(id, "ot=th:c", 0);
        assert!(d.sampled);
        assert_eq!(d.probability, 0.25);
        assert_eq!(d.th_value(), "c");
        assert!(d.upstream_threshold);
        // Upstream sampled at 100% (th:0): ours applies.
        let d = head.decide(id, "ot=th:0", 0);
        assert_eq!(d.probability, 0.5);
    }

    #[test]
    fn the_rate_limiter_caps_traces_per_second_and_remembers_its_verdicts() {
        let mut head = HeadSampler::new(&HeadConfig {
            rate_limit_traces_per_second: 10.0,
            ..HeadConfig::default()
        });
        let sec = 1_000_000_000u64;
        let ids: Vec<TraceId> = (1..=30u64)
            .map(|i| TraceId::from_halves(i, i * 7919))
            .collect();
        let kept: Vec<bool> = ids
            .iter()
            .map(|id| head.decide(*id, "", sec).sampled)
            .collect();
        assert_eq!(kept.iter().filter(|k| **k).count(), 10);
        // The acceptance ratio of the last full second scales the reported probability.
        let fresh = TraceId::from_halves(99, 99);
        let d = head.decide(fresh, "", 2 * sec);
        assert!(d.sampled);
        assert!(!d.exact);
        assert!(
            (d.probability - 10.0 / 30.0).abs() < 1e-9,
            "{}",
            d.probability
        );
        // Later spans of the same traces get the same verdicts, even after refill.
        for (id, k) in ids.iter().zip(&kept) {
            let d = head.decide(*id, "", 3 * sec);
            assert_eq!(d.sampled, *k);
        }
    }
}
