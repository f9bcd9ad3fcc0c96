//! Jaeger remote sampling with adaptive per-operation probabilities.
//!
//! Like Jaeger's `adaptive` strategy: Stitch counts the **sampled** root spans it receives per
//! service and operation in intervals of `calculation_interval`, and once per interval moves
//! each operation's probability toward `target_samples_per_second`:
//!
//! ```text
//! qps  = weighted mean of the last `buckets_for_calculation` intervals (newest weighs most)
//! if |qps - target| / target < delta_tolerance: keep the probability
//! elif qps == 0:  p' = p · (1 + increase_cap)
//! else:           p' = p · target / qps, an increase capped at p · (1 + increase_cap)
//! p' is clamped to [min_sampling_probability, 1]
//! ```
//!
//! Decreases apply at once (over-sampling costs money), increases gradually.
//!
//! `p` must be the probability the service actually used. Jaeger SDKs report it in span
//! tags; stock OpenTelemetry SDKs do not, so Stitch derives it, in this order:
//!
//! 1. the `th` of the root span's `tracestate` (exact);
//! 2. the probability Stitch served, if the service polled `GET /sampling` recently;
//! 3. an estimate from the sampled trace ids ([`TraceIdRatioEstimator`]);
//! 4. otherwise the last probability Stitch computed.
//!
//! [`RemoteSampler::strategy`] returns the body of Jaeger's `GET /sampling?service=` answer.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use stitch_model::TraceId;

use crate::config::RemoteSamplingConfig;
use crate::head::{parse_tracestate, probability_for_threshold};

/// Jaeger's sampling strategy response (`api_v2` JSON field names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplingStrategyResponse {
    pub strategy_type: StrategyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilistic_sampling: Option<ProbabilisticSamplingStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiting_sampling: Option<RateLimitingSamplingStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_sampling: Option<PerOperationSamplingStrategies>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StrategyType {
    Probabilistic,
    RateLimiting,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbabilisticSamplingStrategy {
    pub sampling_rate: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitingSamplingStrategy {
    pub max_traces_per_second: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerOperationSamplingStrategies {
    pub default_sampling_probability: f64,
    pub default_lower_bound_traces_per_second: f64,
    pub per_operation_strategies: Vec<OperationSamplingStrategy>,
    #[serde(default)]
    pub default_upper_bound_traces_per_second: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationSamplingStrategy {
    pub operation: String,
    pub probabilistic_sampling: ProbabilisticSamplingStrategy,
}

/// Where a probability came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbabilitySource {
    /// The `th` in `tracestate`: exact.
    TraceState,
    /// What Stitch served to a service that polls it.
    Served,
    /// Estimated from the sampled trace ids.
    Estimated,
    /// Nothing better known: Stitch's own last computation.
    Assumed,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProbabilityEstimate {
    pub probability: f64,
    pub source: ProbabilitySource,
}

/// Estimates the probability of an unknown trace-id-ratio sampler from the ids it kept.
///
/// A ratio sampler keeps the ids whose random part falls in a region of measure `p`, and
/// the SDKs differ in which region: the low 64 bits below `p·2^64` (Python, Go), the low 64
/// bits read as a signed number with magnitude below `p·2^63` (Java), or the low 56 bits at
/// or above the threshold `(1-p)·2^56` (OpenTelemetry's consistent samplers). For each
/// convention the kept ids map into `[0, p)`; with `n` kept ids the maximum `m` estimates
/// `p` as `m·(n+1)/n`. The convention actually in use gives the smallest estimate (the
/// others spread over `[0, 1)`), so that one is reported. With `p = 1` every convention
/// gives about 1.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceIdRatioEstimator {
    n: u64,
    max: [f64; 3],
}

/// Services tracked at most (polls and root spans of further services are not tracked).
pub const MAX_SERVICES: usize = 10_000;

/// Fewest ids before [`TraceIdRatioEstimator::estimate`] answers.
pub const MIN_IDS_FOR_ESTIMATE: u64 = 20;

impl TraceIdRatioEstimator {
    pub fn observe(&mut self, trace_id: TraceId) {
        let low = trace_id.halves().1;
        let u = low as f64 / 18_446_744_073_709_551_616.0; // 2^64
        let signed = 2.0 * u.min(1.0 - u);
        let r56 = (low & ((1 << 56) - 1)) as f64 / (1u64 << 56) as f64;
        let above = 1.0 - r56;
        for (m, v) in self.max.iter_mut().zip([u, signed, above]) {
            *m = m.max(v);
        }
        self.n += 1;
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn estimate(&self) -> Option<f64> {
        if self.n < MIN_IDS_FOR_ESTIMATE {
            return None;
        }
        let m = self.max.iter().copied().fold(f64::INFINITY, f64::min);
        Some((m * (self.n + 1) as f64 / self.n as f64).min(1.0))
    }
}

struct OpState {
    /// What Stitch serves (and last computed).
    probability: f64,
    /// Completed intervals, newest first.
    counts: VecDeque<u64>,
    current: u64,
    /// Probability from `th` seen in the current and previous interval.
    th_current: Option<f64>,
    th_previous: Option<f64>,
    estimator: TraceIdRatioEstimator,
    last_estimate: Option<f64>,
    qps: f64,
}

struct ServiceOps {
    ops: HashMap<String, OpState>,
    last_polled: Option<u64>,
}

/// Adaptive per-operation probabilities for Jaeger remote sampling; driven by the caller's
/// clock.
pub struct RemoteSampler {
    config: RemoteSamplingConfig,
    interval_nanos: u64,
    services: HashMap<String, ServiceOps>,
    interval: Option<u64>,
    /// Root spans not counted because `max_operations_per_service` was reached.
    pub untracked_operations: u64,
}

impl RemoteSampler {
    pub fn new(config: &RemoteSamplingConfig) -> RemoteSampler {
        RemoteSampler {
            config: config.clone(),
            interval_nanos: (config.calculation_interval.as_nanos() as u64).max(1),
            services: HashMap::new(),
            interval: None,
            untracked_operations: 0,
        }
    }

    /// Counts a sampled root span (`operation` is the span name).
    pub fn observe_root(
        &mut self,
        service: &str,
        operation: &str,
        trace_id: TraceId,
        trace_state: &str,
        now_nanos: u64,
    ) {
        self.advance(now_nanos);
        let initial = self.config.initial_sampling_probability;
        let max_ops = self.config.max_operations_per_service;
        if !self.services.contains_key(service) && self.services.len() >= MAX_SERVICES {
            self.untracked_operations += 1;
            return;
        }
        let svc = self
            .services
            .entry(service.to_owned())
            .or_insert_with(|| ServiceOps {
                ops: HashMap::new(),
                last_polled: None,
            });
        let op = match svc.ops.get_mut(operation) {
            Some(op) => op,
            None => {
                if svc.ops.len() >= max_ops {
                    self.untracked_operations += 1;
                    return;
                }
                svc.ops
                    .entry(operation.to_owned())
                    .or_insert_with(|| OpState {
                        probability: initial,
                        counts: VecDeque::new(),
                        current: 0,
                        th_current: None,
                        th_previous: None,
                        estimator: TraceIdRatioEstimator::default(),
                        last_estimate: None,
                        qps: 0.0,
                    })
            }
        };
        op.current += 1;
        if !trace_state.is_empty()
            && let Some(th) = parse_tracestate(trace_state).threshold
        {
            op.th_current = Some(probability_for_threshold(th));
        }
        op.estimator.observe(trace_id);
    }

    fn polling(&self, svc: &ServiceOps, now: u64) -> bool {
        svc.last_polled
            .is_some_and(|t| now.saturating_sub(t) <= 2 * self.interval_nanos)
    }

    fn used_probability(&self, svc: &ServiceOps, op: &OpState, now: u64) -> ProbabilityEstimate {
        if let Some(p) = op.th_current.or(op.th_previous) {
            return ProbabilityEstimate {
                probability: p,
                source: ProbabilitySource::TraceState,
            };
        }
        if self.polling(svc, now) {
            return ProbabilityEstimate {
                probability: op.probability,
                source: ProbabilitySource::Served,
            };
        }
        let estimate = op.estimator.estimate().or(op.last_estimate);
        match estimate {
            Some(p) => ProbabilityEstimate {
                probability: p,
                source: ProbabilitySource::Estimated,
            },
            None => ProbabilityEstimate {
                probability: op.probability,
                source: ProbabilitySource::Assumed,
            },
        }
    }

    /// The probability `service` used for `operation`, for scaling counts (`1/p`).
    pub fn effective_probability(
        &self,
        service: &str,
        operation: &str,
        now_nanos: u64,
    ) -> Option<ProbabilityEstimate> {
        let svc = self.services.get(service)?;
        let op = svc.ops.get(operation)?;
        Some(self.used_probability(svc, op, now_nanos))
    }

    /// Closes finished intervals and recalculates probabilities; called by the other methods,
    /// and by the caller's timer so that quiet services are recalculated too.
    pub fn advance(&mut self, now_nanos: u64) {
        let interval = now_nanos / self.interval_nanos;
        let Some(current) = self.interval else {
            self.interval = Some(interval);
            return;
        };
        if interval <= current {
            return;
        }
        let closed = (interval - current).min(self.config.aggregation_buckets as u64 + 1);
        for _ in 0..closed {
            self.close_interval(now_nanos);
        }
        self.interval = Some(interval);
    }

    fn close_interval(&mut self, now: u64) {
        let c = self.config.clone();
        let secs = self.interval_nanos as f64 / 1e9;
        let weights: Vec<f64> = {
            let n = c.buckets_for_calculation;
            let raw: Vec<f64> = (0..n).map(|i| ((n - i) as f64).powi(4)).collect();
            raw.iter().map(|w| w / raw.iter().sum::<f64>()).collect()
        };
        let mut updates = Vec::new();
        for (svc_name, svc) in &self.services {
            for (op_name, op) in &svc.ops {
                let used = self.used_probability(svc, op, now);
                let mut counts = op.counts.clone();
                counts.push_front(op.current);
                counts.truncate(c.aggregation_buckets);
                let available = counts.len().min(c.buckets_for_calculation);
                let wsum: f64 = weights[..available].iter().sum();
                let qps = counts
                    .iter()
                    .take(available)
                    .zip(&weights)
                    .map(|(count, w)| *count as f64 / secs * w)
                    .sum::<f64>()
                    / wsum;
                let p = used.probability;
                let target = c.target_samples_per_second;
                let new = if ((qps - target) / target).abs() < c.delta_tolerance {
                    p
                } else if qps == 0.0 {
                    p * (1.0 + c.increase_cap)
                } else {
                    let wanted = p * target / qps;
                    wanted.min(p * (1.0 + c.increase_cap))
                };
                let new = new.clamp(c.min_sampling_probability, 1.0);
                updates.push((svc_name.clone(), op_name.clone(), counts, qps, new));
            }
        }
        for (svc_name, op_name, counts, qps, new) in updates {
            let op = self
                .services
                .get_mut(&svc_name)
                .and_then(|s| s.ops.get_mut(&op_name))
                .expect("listed");
            op.counts = counts;
            op.current = 0;
            op.qps = qps;
            op.probability = new;
            op.th_previous = op.th_current.take();
            if let Some(e) = op.estimator.estimate() {
                op.last_estimate = Some(e);
            }
            op.estimator = TraceIdRatioEstimator::default();
        }
    }

    /// The strategy for `service` (marks it as polling, so its served probabilities are
    /// taken as the ones it uses).
    pub fn strategy(&mut self, service: &str, now_nanos: u64) -> SamplingStrategyResponse {
        self.advance(now_nanos);
        let c = &self.config;
        let default = c.initial_sampling_probability;
        let mut per_op: Vec<OperationSamplingStrategy> = Vec::new();
        if let Some(svc) = self.services.get_mut(service) {
            svc.last_polled = Some(now_nanos);
            per_op = svc
                .ops
                .iter()
                .map(|(name, op)| OperationSamplingStrategy {
                    operation: name.clone(),
                    probabilistic_sampling: ProbabilisticSamplingStrategy {
                        sampling_rate: op.probability,
                    },
                })
                .collect();
            per_op.sort_by(|a, b| a.operation.cmp(&b.operation));
        } else if self.services.len() < MAX_SERVICES {
            // Remember that it polls, so that its first operations count as served.
            self.services.insert(
                service.to_owned(),
                ServiceOps {
                    ops: HashMap::new(),
                    last_polled: Some(now_nanos),
                },
            );
        }
        SamplingStrategyResponse {
            strategy_type: StrategyType::Probabilistic,
            probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                sampling_rate: default,
            }),
            rate_limiting_sampling: None,
            operation_sampling: Some(PerOperationSamplingStrategies {
                default_sampling_probability: default,
                default_lower_bound_traces_per_second: c.min_samples_per_second,
                per_operation_strategies: per_op,
                default_upper_bound_traces_per_second: 0.0,
            }),
        }
    }

    /// Last computed sampled-traces-per-second of an operation.
    pub fn observed_qps(&self, service: &str, operation: &str) -> Option<f64> {
        Some(self.services.get(service)?.ops.get(operation)?.qps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SEC: u64 = 1_000_000_000;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn trace_id(&mut self) -> TraceId {
            TraceId::from_halves(self.next(), self.next())
        }
    }

    #[test]
    fn probabilities_converge_to_the_target_rate_per_operation() {
        let config = RemoteSamplingConfig {
            calculation_interval: Duration::from_secs(60),
            ..RemoteSamplingConfig::default()
        };
        let mut r = RemoteSampler::new(&config);
        let mut rng = Rng(1);
        // True request rates per operation; the SDK polls every minute and samples with the
        // served probability, plus Jaeger's lower bound (here: the first request of each
        // operation in a minute).
        let ops = [
            ("GET /home", 200.0),
            ("POST /pay", 10.0),
            ("GET /rare", 0.2),
        ];
        let mut served: HashMap<String, f64> = HashMap::new();
        let mut sampled_last_hour = HashMap::<&str, u64>::new();
        for minute in 0..240u64 {
            let start = minute * 60 * SEC;
            let strategy = r.strategy("shop", start);
            let ops_sampling = strategy.operation_sampling.as_ref().unwrap();
            assert_eq!(
                ops_sampling.default_lower_bound_traces_per_second,
                1.0 / 60.0
            );
            for s in &ops_sampling.per_operation_strategies {
                served.insert(s.operation.clone(), s.probabilistic_sampling.sampling_rate);
            }
            for (op, rate) in ops {
                let p = served
                    .get(op)
                    .copied()
                    .unwrap_or(config.initial_sampling_probability);
                let requests = (rate * 60.0) as u64;
                for i in 0..requests {
                    let lower_bound = i == 0;
                    if lower_bound || (rng.next() as f64 / u64::MAX as f64) < p {
                        let now = start + i * (60 * SEC / requests.max(1));
                        r.observe_root("shop", op, rng.trace_id(), "", now);
                        if minute >= 180 {
                            *sampled_last_hour.entry(op).or_default() += 1;
                        }
                    }
                }
            }
        }
        // About one sampled trace per second per busy operation (within the tolerance band),
        // and everything of the rare one.
        let per_sec = |op| sampled_last_hour.get(op).copied().unwrap_or(0) as f64 / 3600.0;
        assert!(
            (0.6..1.4).contains(&per_sec("GET /home")),
            "{}",
            per_sec("GET /home")
        );
        assert!(
            (0.6..1.4).contains(&per_sec("POST /pay")),
            "{}",
            per_sec("POST /pay")
        );
        assert!(
            (served["GET /home"] - 1.0 / 200.0).abs() < 0.003,
            "{}",
            served["GET /home"]
        );
        assert_eq!(served["GET /rare"], 1.0);
        let e = r
            .effective_probability("shop", "GET /home", 240 * 60 * SEC)
            .unwrap();
        assert_eq!(e.source, ProbabilitySource::Served);
    }

    #[test]
    fn the_strategy_serialises_as_jaegers_json() {
        let mut r = RemoteSampler::new(&RemoteSamplingConfig::default());
        r.observe_root("api", "GET /x", TraceId([1; 16]), "", 0);
        let json = serde_json::to_value(r.strategy("api", 1)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "strategyType": "PROBABILISTIC",
                "probabilisticSampling": {"samplingRate": 0.001},
                "operationSampling": {
                    "defaultSamplingProbability": 0.001,
                    "defaultLowerBoundTracesPerSecond": 1.0 / 60.0,
                    "perOperationStrategies": [
                        {"operation": "GET /x", "probabilisticSampling": {"samplingRate": 0.001}}
                    ],
                    "defaultUpperBoundTracesPerSecond": 0.0
                }
            })
        );
        let back: SamplingStrategyResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back.strategy_type, StrategyType::Probabilistic);
    }

    #[test]
    fn a_stock_sdk_probability_is_read_from_th_or_estimated_from_trace_ids() {
        let mut r = RemoteSampler::new(&RemoteSamplingConfig::default());
        let mut rng = Rng(7);
        // Python/Go-style TraceIdRatioBased(0.1): keeps ids whose low 64 bits < 0.1·2^64.
        let bound = (0.1 * u64::MAX as f64) as u64;
        let mut kept = 0;
        while kept < 500 {
            let id = rng.trace_id();
            if id.halves().1 < bound {
                r.observe_root("legacy", "op", id, "", SEC);
                kept += 1;
            }
        }
        let e = r.effective_probability("legacy", "op", SEC).unwrap();
        assert_eq!(e.source, ProbabilitySource::Estimated);
        assert!((e.probability - 0.1).abs() < 0.005, "{e:?}");

        // Java-style: |low as i64| < 0.1·2^63.
        let mut java = TraceIdRatioEstimator::default();
        let mut kept = 0;
        while kept < 500 {
            let id = rng.trace_id();
            let signed = id.halves().1 as i64;
            if signed.unsigned_abs() < (0.1 * i64::MAX as f64) as u64 {
                java.observe(id);
                kept += 1;
            }
        }
        assert!(
            (java.estimate().unwrap() - 0.1).abs() < 0.005,
            "{:?}",
            java.estimate()
        );

        // Consistent sampler at 25% (th:c): R >= 0xc0.. ; the tracestate says so exactly.
        let mut kept = 0;
        while kept < 50 {
            let id = rng.trace_id();
            if id.halves().1 & ((1 << 56) - 1) >= 0xc0_0000_0000_0000 {
                r.observe_root("modern", "op", id, "ot=th:c", SEC);
                kept += 1;
            }
        }
        let e = r.effective_probability("modern", "op", SEC).unwrap();
        assert_eq!(
            e,
            ProbabilityEstimate {
                probability: 0.25,
                source: ProbabilitySource::TraceState
            }
        );

        // Unsampled ids estimate about 1.
        let mut all = TraceIdRatioEstimator::default();
        for _ in 0..200 {
            all.observe(rng.trace_id());
        }
        assert!(all.estimate().unwrap() > 0.97);
    }
}
