//! The `sampling` section of Stitch's config file.
//!
//! The tail-sampling part mirrors the shape of the OpenTelemetry Collector's `tail_sampling`
//! processor (`decision_wait`, `num_traces`, `decision_cache`, `policies: [{name, type,
//! <type>: {...}}]`), so a Collector policy list can be pasted in. Stitch adds a byte budget
//! (`max_buffered_bytes`), `decision_wait_after_root`, the `condition` policy, presets, head
//! sampling, adaptive rates and Jaeger remote sampling.
//!
//! Every struct rejects unknown fields. [`SamplingConfig::from_yaml`] reports both parse
//! errors and semantic errors with the path of the field, e.g.
//! `sampling.policies[2].latency.threshold_ms: must be > 0`.
//!
//! # Defaults
//!
//! An empty section keeps everything: no policies means every trace is kept, and the tail
//! sampler then passes spans through without buffering them.
//!
//! # Example
//!
//! ```yaml
//! sampling:
//!   decision_wait: 10s
//!   decision_wait_after_root: 5s
//!   max_buffered_bytes: 256MiB
//!   decision_cache: {sampled_cache_size: 100000, non_sampled_cache_size: 100000}
//!   policies:
//!     - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
//!     - {name: slow, type: latency, latency: {threshold_ms: 1000}}
//!     - {name: rest, type: probabilistic, probabilistic: {sampling_percentage: 5}}
//!   adaptive: {enabled: true}
//! ```
//!
//! or simply `preset: seed` for the three policies above.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{serde_bytes, serde_duration};

#[cfg(test)]
mod tests;
mod validate;

/// One problem in the configuration, named by its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// E.g. `sampling.policies[2].latency.threshold_ms`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a sampling configuration was rejected: every problem found, each with its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub errors: Vec<FieldError>,
}

impl ConfigError {
    fn one(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            errors: vec![FieldError {
                path: path.into(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The `sampling` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// A named policy set used when `policies` is empty: `seed` or `keep_all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// How long after a trace's first span the trace is decided (default 10s).
    #[serde(with = "serde_duration")]
    pub decision_wait: Duration,
    /// How long after the root span arrives the trace is decided, if that is earlier than
    /// `decision_wait` (default 5s, the OpenTelemetry SDKs' batch export delay; `0s` turns it
    /// off).
    #[serde(with = "serde_duration")]
    pub decision_wait_after_root: Duration,
    /// Most traces buffered at once; past it the oldest are decided early (default 500000).
    pub num_traces: usize,
    /// Byte budget of the buffer (`256MiB` by default); past it the oldest traces are
    /// decided early.
    #[serde(with = "serde_bytes")]
    pub max_buffered_bytes: u64,
    pub decision_cache: DecisionCacheConfig,
    pub policies: Vec<PolicyConfig>,
    pub head: HeadConfig,
    pub adaptive: AdaptiveConfig,
    pub remote_sampling: RemoteSamplingConfig,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            preset: None,
            decision_wait: Duration::from_secs(10),
            decision_wait_after_root: Duration::from_secs(5),
            num_traces: 500_000,
            max_buffered_bytes: 256 << 20,
            decision_cache: DecisionCacheConfig::default(),
            policies: Vec::new(),
            head: HeadConfig::default(),
            adaptive: AdaptiveConfig::default(),
            remote_sampling: RemoteSamplingConfig::default(),
        }
    }
}

/// Named policy sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// What the seed articles recommend after their incident: every error trace, every trace
    /// slower than 1 s, and 5% of the rest.
    Seed,
    /// Keep every trace (the default).
    KeepAll,
}

impl Preset {
    pub fn policies(self) -> Vec<PolicyConfig> {
        match self {
            Preset::KeepAll => Vec::new(),
            Preset::Seed => vec![
                PolicyConfig {
                    name: "errors".into(),
                    kind: PolicyType::StatusCode,
                    status_code: Some(StatusCodeConfig {
                        status_codes: vec![StatusCodeName::Error],
                    }),
                    ..PolicyConfig::default()
                },
                PolicyConfig {
                    name: "slow".into(),
                    kind: PolicyType::Latency,
                    latency: Some(LatencyConfig {
                        threshold_ms: 1000,
                        upper_threshold_ms: None,
                    }),
                    ..PolicyConfig::default()
                },
                PolicyConfig {
                    name: "rest".into(),
                    kind: PolicyType::Probabilistic,
                    probabilistic: Some(ProbabilisticConfig {
                        sampling_percentage: 5.0,
                        hash_salt: None,
                    }),
                    ..PolicyConfig::default()
                },
            ],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionCacheConfig {
    /// Trace ids remembered as kept, so that late spans are kept too (default 100000).
    pub sampled_cache_size: usize,
    /// Trace ids remembered as not kept (default 100000).
    pub non_sampled_cache_size: usize,
}

impl Default for DecisionCacheConfig {
    fn default() -> Self {
        DecisionCacheConfig {
            sampled_cache_size: 100_000,
            non_sampled_cache_size: 100_000,
        }
    }
}

/// The policy types, spelled as in the Collector plus Stitch's `condition`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    #[default]
    AlwaysSample,
    Latency,
    StatusCode,
    Probabilistic,
    StringAttribute,
    NumericAttribute,
    BooleanAttribute,
    TraceState,
    TraceFlags,
    SpanCount,
    RateLimiting,
    BytesLimiting,
    And,
    Not,
    Drop,
    Composite,
    Condition,
}

impl PolicyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::AlwaysSample => "always_sample",
            PolicyType::Latency => "latency",
            PolicyType::StatusCode => "status_code",
            PolicyType::Probabilistic => "probabilistic",
            PolicyType::StringAttribute => "string_attribute",
            PolicyType::NumericAttribute => "numeric_attribute",
            PolicyType::BooleanAttribute => "boolean_attribute",
            PolicyType::TraceState => "trace_state",
            PolicyType::TraceFlags => "trace_flags",
            PolicyType::SpanCount => "span_count",
            PolicyType::RateLimiting => "rate_limiting",
            PolicyType::BytesLimiting => "bytes_limiting",
            PolicyType::And => "and",
            PolicyType::Not => "not",
            PolicyType::Drop => "drop",
            PolicyType::Composite => "composite",
            PolicyType::Condition => "condition",
        }
    }
}

/// One policy: a name, a type, and the section for that type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PolicyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<StatusCodeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilistic: Option<ProbabilisticConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_attribute: Option<StringAttributeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_attribute: Option<NumericAttributeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boolean_attribute: Option<BooleanAttributeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_state: Option<TraceStateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_count: Option<SpanCountConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiting: Option<RateLimitingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_limiting: Option<BytesLimitingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<AndConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<NotConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<DropConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite: Option<CompositeConfig>,
    /// The expression of a `condition` policy, in the language of [`crate::condition`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// Trace duration (earliest start to latest end) in milliseconds: `>= threshold_ms`, or with
/// an upper bound `threshold_ms < d <= upper_threshold_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyConfig {
    pub threshold_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_threshold_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusCodeConfig {
    pub status_codes: Vec<StatusCodeName>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusCodeName {
    #[serde(rename = "OK", alias = "ok", alias = "Ok")]
    Ok,
    #[serde(rename = "ERROR", alias = "error", alias = "Error")]
    Error,
    #[serde(rename = "UNSET", alias = "unset", alias = "Unset")]
    Unset,
}

/// Keeps `sampling_percentage` percent of traces, decided from a hash of the trace id (and
/// `hash_salt`), so the same trace id always gets the same answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbabilisticConfig {
    pub sampling_percentage: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_salt: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StringAttributeConfig {
    pub key: String,
    pub values: Vec<String>,
    #[serde(default)]
    pub enabled_regex_matching: bool,
    /// Size of the cache of regex results per attribute value (0: no cache).
    #[serde(default)]
    pub cache_max_size: usize,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericAttributeConfig {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BooleanAttributeConfig {
    pub key: String,
    pub value: bool,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceStateConfig {
    pub key: String,
    pub values: Vec<String>,
}

/// Inclusive bounds on the number of spans; no `max_spans` means no upper bound.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanCountConfig {
    #[serde(default)]
    pub min_spans: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_spans: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitingConfig {
    pub spans_per_second: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BytesLimitingConfig {
    #[serde(with = "serde_bytes")]
    pub bytes_per_second: u64,
    /// Bucket capacity; twice `bytes_per_second` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_capacity: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndConfig {
    pub and_sub_policy: Vec<PolicyConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotConfig {
    pub not_sub_policy: Box<PolicyConfig>,
}

/// Drops the trace, whatever the other policies say, when every sub-policy matches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropConfig {
    pub drop_sub_policy: Vec<PolicyConfig>,
}

/// Sub-policies evaluated in `policy_order`; the first that samples a trace keeps it if its
/// share of `max_total_spans_per_second` (a per-second span count, reset each second) has
/// room, else the trace is not kept by the composite. A sub-policy's share is its
/// `rate_allocation` percentage; sub-policies without one share the unallocated rest equally.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeConfig {
    pub max_total_spans_per_second: u64,
    pub policy_order: Vec<String>,
    pub composite_sub_policy: Vec<PolicyConfig>,
    #[serde(default)]
    pub rate_allocation: Vec<RateAllocation>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateAllocation {
    pub policy: String,
    pub percent: f64,
}

/// Head sampling at the receiver: consistent across services (decided from the trace id's
/// random bits or the `rv` in `tracestate`) and an optional rate limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadConfig {
    /// Percentage of traces kept (default 100).
    pub percentage: f64,
    /// Most new traces kept per second (0: no limit).
    pub rate_limit_traces_per_second: f64,
    /// Burst size of the rate limiter (default: one second's worth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<f64>,
    /// Trace ids whose rate-limited decision is remembered so that all spans of a trace get
    /// the same answer (default 100000).
    pub decision_cache_size: usize,
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig {
            percentage: 100.0,
            rate_limit_traces_per_second: 0.0,
            rate_limit_burst: None,
            decision_cache_size: 100_000,
        }
    }
}

/// Raises the share of normal traffic kept for a service whose error rate rises above its own
/// recent baseline, and lowers it again when things calm down.
///
/// Per service, errors and requests (traces touching the service) are counted in buckets of
/// `bucket`. The short window is the last `window`; the baseline is the `baseline_window`
/// before it. With `r` the short-window error rate and `b` the baseline rate:
///
/// * raise to `elevated_percentage` when `r >= max(raise_factor·b, min_error_rate)` and the
///   window and the baseline each saw at least `min_requests` traces; to
///   `critical_percentage` when
///   `r >= max(critical_factor·b, min_error_rate·critical_factor/raise_factor)`;
/// * a service is calm when `r` is below the raise threshold scaled by
///   `release_factor / raise_factor`, or the window saw fewer than `min_requests` traces;
///   after `cool_down` of continuous calm it steps down one level (hysteresis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    pub enabled: bool,
    #[serde(with = "serde_duration")]
    pub bucket: Duration,
    #[serde(with = "serde_duration")]
    pub window: Duration,
    #[serde(with = "serde_duration")]
    pub baseline_window: Duration,
    pub raise_factor: f64,
    pub critical_factor: f64,
    pub release_factor: f64,
    pub min_error_rate: f64,
    pub min_requests: u64,
    pub elevated_percentage: f64,
    pub critical_percentage: f64,
    #[serde(with = "serde_duration")]
    pub cool_down: Duration,
    /// Services tracked at most; further services are not tracked.
    pub max_services: usize,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            enabled: false,
            bucket: Duration::from_secs(10),
            window: Duration::from_secs(60),
            baseline_window: Duration::from_secs(30 * 60),
            raise_factor: 2.0,
            critical_factor: 5.0,
            release_factor: 1.25,
            min_error_rate: 0.01,
            min_requests: 50,
            elevated_percentage: 50.0,
            critical_percentage: 100.0,
            cool_down: Duration::from_secs(120),
            max_services: 10_000,
        }
    }
}

/// Jaeger remote sampling with adaptive per-operation probabilities. Field meanings and
/// defaults follow Jaeger's adaptive sampling options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteSamplingConfig {
    /// Sampled traces per second wanted for each operation (default 1).
    pub target_samples_per_second: f64,
    /// No change while `|observed - target| / target` is below this (default 0.3).
    pub delta_tolerance: f64,
    #[serde(with = "serde_duration")]
    pub calculation_interval: Duration,
    /// How many recent intervals the throughput is averaged over (weighted, newest most).
    pub buckets_for_calculation: usize,
    /// How many intervals of throughput are kept.
    pub aggregation_buckets: usize,
    pub initial_sampling_probability: f64,
    pub min_sampling_probability: f64,
    pub min_samples_per_second: f64,
    /// Largest relative increase of a probability in one calculation (1.0: at most double).
    pub increase_cap: f64,
    /// Operations tracked per service at most.
    pub max_operations_per_service: usize,
}

impl Default for RemoteSamplingConfig {
    fn default() -> Self {
        RemoteSamplingConfig {
            target_samples_per_second: 1.0,
            delta_tolerance: 0.3,
            calculation_interval: Duration::from_secs(60),
            buckets_for_calculation: 1,
            aggregation_buckets: 10,
            initial_sampling_probability: 0.001,
            min_sampling_probability: 1e-5,
            min_samples_per_second: 1.0 / 60.0,
            increase_cap: 1.0,
            max_operations_per_service: 2_000,
        }
    }
}

impl SamplingConfig {
    /// Parses the body of the `sampling` section (YAML) and validates it. Errors name the
    /// path from `sampling`.
    pub fn from_yaml(text: &str) -> Result<SamplingConfig, ConfigError> {
        let config = if text.trim().is_empty() {
            SamplingConfig::default()
        } else {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize::<_, SamplingConfig>(de).map_err(|e| {
                let inner = e.path().to_string();
                let path = if inner == "." || inner.is_empty() {
                    "sampling".to_owned()
                } else {
                    format!("sampling.{inner}")
                };
                ConfigError::one(path, strip_path(&inner, e.into_inner().to_string()))
            })?
        };
        config.validate()?;
        Ok(config)
    }

    /// Parses a whole config document and validates its `sampling` section (other top-level
    /// keys are ignored; a missing section is the default).
    pub fn from_document_yaml(text: &str) -> Result<SamplingConfig, ConfigError> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            sampling: SamplingConfig,
        }
        let de = serde_yaml::Deserializer::from_str(text);
        let doc: Doc = serde_path_to_error::deserialize(de).map_err(|e| {
            let inner = e.path().to_string();
            let path = if inner == "." {
                "sampling".to_owned()
            } else {
                inner.clone()
            };
            ConfigError::one(path, strip_path(&inner, e.into_inner().to_string()))
        })?;
        doc.sampling.validate()?;
        Ok(doc.sampling)
    }

    /// The seeds' recommendation: errors, slower than 1 s, and 5% of the rest.
    pub fn seed_preset() -> SamplingConfig {
        SamplingConfig {
            preset: Some(Preset::Seed),
            ..SamplingConfig::default()
        }
    }

    /// The policies in force: `policies`, or the preset's when `policies` is empty.
    pub fn effective_policies(&self) -> Vec<PolicyConfig> {
        if self.policies.is_empty() {
            self.preset.map(Preset::policies).unwrap_or_default()
        } else {
            self.policies.clone()
        }
    }

    /// True when some policy can drop a trace, i.e. the tail sampler has to buffer.
    pub fn tail_sampling_enabled(&self) -> bool {
        !self.effective_policies().is_empty()
    }
}

/// serde_yaml starts some messages with the path it knows; ours is already in front.
fn strip_path(path: &str, message: String) -> String {
    match message.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') && path.starts_with(head) => rest.to_owned(),
        _ => message,
    }
}
