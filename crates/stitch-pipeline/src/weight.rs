//! How many spans a stored span stands for, from the sampling probabilities recorded on it.
//!
//! A span that survived sampling with probability `p` stands for `1 / p` spans of the traffic
//! (its *adjusted count*), so request rates, error counts and latency quantiles computed with
//! these weights estimate the unsampled traffic. Two probabilities are recorded:
//!
//! * **Head** (per span): the `th` sub-key of the `ot` member of the span's W3C `tracestate`,
//!   which OpenTelemetry's consistent probability samplers (and Stitch's head sampler) write:
//!   `p = (2^56 - th) / 2^56`. When a rate limiter made the probability an estimate, Stitch's
//!   head sampler records it in [`HEAD_PROBABILITY_ATTRIBUTE`], which then wins.
//! * **Tail** (per trace): [`TAIL_PROBABILITY_ATTRIBUTE`], written on the spans of a trace the
//!   tail sampler kept: 1 when a deterministic policy (errors, latency, attributes) kept it,
//!   the percentage of a probabilistic one otherwise. A trace decides as a whole, so the value
//!   of any span of it holds for all (late spans stored after the decision may lack it).
//!
//! A span's weight is `1 / (p_head × p_tail)`; an absent or invalid value counts as 1. The
//! product is taken as at least [`MIN_PROBABILITY`], so that one span whose sender claims a
//! vanishing probability (`ot=th:ffffffffffffff` is 2⁻⁵⁶) cannot stand for more than a million
//! requests.

use stitch_model::{AnyValue, KeyValue, Span, Trace};

use crate::head::{parse_tracestate, probability_for_threshold};

/// Attribute on spans of a trace kept by the tail sampler: the policy that kept it.
pub const POLICY_ATTRIBUTE: &str = "stitch.sampling.policy";
/// Attribute on spans of a trace kept by the tail sampler: the probability that a trace like
/// it is kept.
pub const TAIL_PROBABILITY_ATTRIBUTE: &str = "stitch.sampling.probability";
/// Attribute on spans kept by a rate-limited head sampler: the estimated probability.
pub const HEAD_PROBABILITY_ATTRIBUTE: &str = "stitch.sampling.head_probability";

/// The smallest sampling probability a weight is computed from (one in a million).
pub const MIN_PROBABILITY: f64 = 1e-6;

/// The sampling weights of the spans of one trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpanWeights {
    tail_probability: f64,
}

impl SpanWeights {
    /// Reads the tail probability recorded on `trace`.
    pub fn of(trace: &Trace) -> SpanWeights {
        let tail_probability = trace
            .spans()
            .find_map(|s| probability_attribute(&s.span.attributes, TAIL_PROBABILITY_ATTRIBUTE))
            .unwrap_or(1.0);
        SpanWeights { tail_probability }
    }

    /// The probability the tail sampler kept the trace with (1 when not recorded).
    pub fn tail_probability(&self) -> f64 {
        self.tail_probability
    }

    /// How many spans `span` stands for.
    pub fn weight(&self, span: &Span) -> f64 {
        1.0 / (self.tail_probability * head_probability(span)).max(MIN_PROBABILITY)
    }
}

/// The head sampling probability of `span` (1 when not recorded).
pub fn head_probability(span: &Span) -> f64 {
    if let Some(p) = probability_attribute(&span.attributes, HEAD_PROBABILITY_ATTRIBUTE) {
        return p;
    }
    if span.trace_state.is_empty() {
        return 1.0;
    }
    parse_tracestate(&span.trace_state)
        .threshold
        .map_or(1.0, probability_for_threshold)
}

/// A probability in (0, 1] stored under `key`.
fn probability_attribute(attributes: &[KeyValue], key: &str) -> Option<f64> {
    let value = attributes.iter().find(|kv| kv.key == key)?;
    let p = match &value.value {
        AnyValue::Double(d) => *d,
        AnyValue::Int(i) => *i as f64,
        AnyValue::String(s) => s.parse().ok()?,
        _ => return None,
    };
    (p > 0.0 && p <= 1.0).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stitch_model::TraceId;

    fn span(attrs: Vec<KeyValue>, trace_state: &str) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            attributes: attrs,
            trace_state: trace_state.into(),
            ..Default::default()
        }
    }

    fn trace(spans: Vec<Span>) -> Trace {
        let mut t = Trace::new(TraceId([1; 16]));
        t.extend(vec![stitch_model::ResourceSpans {
            resource: Default::default(),
            scope_spans: vec![stitch_model::ScopeSpans {
                scope: Default::default(),
                spans,
            }],
        }]);
        t
    }

    #[test]
    fn a_span_without_sampling_records_stands_for_one() {
        let s = span(vec![], "");
        assert_eq!(SpanWeights::of(&trace(vec![s.clone()])).weight(&s), 1.0);
    }

    #[test]
    fn the_head_threshold_in_tracestate_gives_the_adjusted_count() {
        // th:8 rejects half of the randomness space (OpenTelemetry's 50% example); th:e 7/8.
        assert_eq!(head_probability(&span(vec![], "ot=th:8")), 0.5);
        assert_eq!(
            head_probability(&span(vec![], "vendor=x,ot=rv:00000000000001;th:e")),
            0.125
        );
        assert_eq!(head_probability(&span(vec![], "ot=th:0")), 1.0);
        // Malformed values are ignored.
        assert_eq!(head_probability(&span(vec![], "ot=th:zz")), 1.0);
        // The rate limiter's estimate wins over the threshold.
        let limited = span(
            vec![KeyValue::new(HEAD_PROBABILITY_ATTRIBUTE, 0.2)],
            "ot=th:8",
        );
        assert_eq!(head_probability(&limited), 0.2);
    }

    #[test]
    fn tail_and_head_probabilities_multiply() {
        let kept = span(
            vec![KeyValue::new(TAIL_PROBABILITY_ATTRIBUTE, 0.05)],
            "ot=th:8",
        );
        // A late span of the same trace without the attribute: the trace's value holds.
        let late = span(vec![], "ot=th:8");
        let w = SpanWeights::of(&trace(vec![late.clone(), kept.clone()]));
        assert_eq!(w.tail_probability(), 0.05);
        assert!((w.weight(&kept) - 40.0).abs() < 1e-9);
        assert!((w.weight(&late) - 40.0).abs() < 1e-9);
    }

    #[test]
    fn a_vanishing_claimed_probability_is_bounded() {
        let s = span(vec![], "ot=th:ffffffffffffff");
        assert_eq!(SpanWeights::of(&trace(vec![s.clone()])).weight(&s), 1e6);
    }

    #[test]
    fn out_of_range_probabilities_count_as_one() {
        for bad in [0.0, -1.0, 1.5, f64::NAN] {
            let s = span(vec![KeyValue::new(TAIL_PROBABILITY_ATTRIBUTE, bad)], "");
            assert_eq!(
                SpanWeights::of(&trace(vec![s.clone()])).weight(&s),
                1.0,
                "{bad}"
            );
        }
    }
}
