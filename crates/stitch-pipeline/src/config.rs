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

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{serde_bytes, serde_duration};

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

    /// Checks every value; errors name the path from `sampling`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut v = Validator::default();
        let p = "sampling";
        if self.preset.is_some() && !self.policies.is_empty() {
            v.err(
                format!("{p}.preset"),
                "give either `preset` or `policies`, not both",
            );
        }
        if self.decision_wait.is_zero() {
            v.err(format!("{p}.decision_wait"), "must be > 0");
        }
        if self.num_traces == 0 {
            v.err(format!("{p}.num_traces"), "must be > 0");
        }
        if self.max_buffered_bytes == 0 {
            v.err(format!("{p}.max_buffered_bytes"), "must be > 0");
        }
        v.policy_list(&format!("{p}.policies"), &self.policies, 0, true);
        self.head.validate(&mut v, &format!("{p}.head"));
        self.adaptive.validate(&mut v, &format!("{p}.adaptive"));
        self.remote_sampling
            .validate(&mut v, &format!("{p}.remote_sampling"));
        if v.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { errors: v.errors })
        }
    }
}

/// serde_yaml starts some messages with the path it knows; ours is already in front.
fn strip_path(path: &str, message: String) -> String {
    match message.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') && path.starts_with(head) => rest.to_owned(),
        _ => message,
    }
}

/// Deepest nesting of compound policies accepted.
const MAX_DEPTH: usize = 8;

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn err(&mut self, path: String, message: impl Into<String>) {
        self.errors.push(FieldError {
            path,
            message: message.into(),
        });
    }

    fn percentage(&mut self, path: String, value: f64) {
        if !(0.0..=100.0).contains(&value) || !value.is_finite() {
            self.err(path, format!("must be between 0 and 100, got {value}"));
        }
    }

    fn positive(&mut self, path: String, value: f64) {
        if !(value > 0.0 && value.is_finite()) {
            self.err(path, format!("must be > 0, got {value}"));
        }
    }

    fn policy_list(&mut self, path: &str, list: &[PolicyConfig], depth: usize, top: bool) {
        let mut names = HashSet::new();
        for (i, policy) in list.iter().enumerate() {
            let at = format!("{path}[{i}]");
            if !policy.name.is_empty() && !names.insert(policy.name.as_str()) {
                self.err(
                    format!("{at}.name"),
                    format!("`{}` is used by an earlier policy", policy.name),
                );
            }
            self.policy(&at, policy, depth, top);
        }
    }

    fn policy(&mut self, at: &str, p: &PolicyConfig, depth: usize, top: bool) {
        if p.name.trim().is_empty() {
            self.err(format!("{at}.name"), "must not be empty");
        }
        if depth >= MAX_DEPTH {
            self.err(
                at.to_owned(),
                format!("compound policies nest deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        // The section named by `type` must be there, and no other.
        let sections: [(&str, bool, PolicyType); 15] = [
            ("latency", p.latency.is_some(), PolicyType::Latency),
            (
                "status_code",
                p.status_code.is_some(),
                PolicyType::StatusCode,
            ),
            (
                "probabilistic",
                p.probabilistic.is_some(),
                PolicyType::Probabilistic,
            ),
            (
                "string_attribute",
                p.string_attribute.is_some(),
                PolicyType::StringAttribute,
            ),
            (
                "numeric_attribute",
                p.numeric_attribute.is_some(),
                PolicyType::NumericAttribute,
            ),
            (
                "boolean_attribute",
                p.boolean_attribute.is_some(),
                PolicyType::BooleanAttribute,
            ),
            (
                "trace_state",
                p.trace_state.is_some(),
                PolicyType::TraceState,
            ),
            ("span_count", p.span_count.is_some(), PolicyType::SpanCount),
            (
                "rate_limiting",
                p.rate_limiting.is_some(),
                PolicyType::RateLimiting,
            ),
            (
                "bytes_limiting",
                p.bytes_limiting.is_some(),
                PolicyType::BytesLimiting,
            ),
            ("and", p.and.is_some(), PolicyType::And),
            ("not", p.not.is_some(), PolicyType::Not),
            ("drop", p.drop.is_some(), PolicyType::Drop),
            ("composite", p.composite.is_some(), PolicyType::Composite),
            ("condition", p.condition.is_some(), PolicyType::Condition),
        ];
        for (section, present, kind) in sections {
            if present && kind != p.kind {
                self.err(
                    format!("{at}.{section}"),
                    format!(
                        "given, but the policy's type is `{}`; remove it or set `type: {section}`",
                        p.kind.as_str()
                    ),
                );
            }
        }
        let missing = |v: &mut Validator, section: &str| {
            v.err(
                format!("{at}.{section}"),
                format!("missing: a `{section}` policy needs a `{section}` section"),
            )
        };
        match p.kind {
            PolicyType::AlwaysSample | PolicyType::TraceFlags => {}
            PolicyType::Latency => match &p.latency {
                None => missing(self, "latency"),
                Some(l) => match l.upper_threshold_ms {
                    None if l.threshold_ms <= 0 => {
                        self.err(format!("{at}.latency.threshold_ms"), "must be > 0")
                    }
                    Some(_) if l.threshold_ms < 0 => {
                        self.err(format!("{at}.latency.threshold_ms"), "must be >= 0")
                    }
                    Some(upper) if upper <= l.threshold_ms => self.err(
                        format!("{at}.latency.upper_threshold_ms"),
                        format!("must be > threshold_ms ({})", l.threshold_ms),
                    ),
                    _ => {}
                },
            },
            PolicyType::StatusCode => match &p.status_code {
                None => missing(self, "status_code"),
                Some(s) if s.status_codes.is_empty() => self.err(
                    format!("{at}.status_code.status_codes"),
                    "must name at least one of OK, ERROR, UNSET",
                ),
                Some(_) => {}
            },
            PolicyType::Probabilistic => match &p.probabilistic {
                None => missing(self, "probabilistic"),
                Some(pr) => self.percentage(
                    format!("{at}.probabilistic.sampling_percentage"),
                    pr.sampling_percentage,
                ),
            },
            PolicyType::StringAttribute => match &p.string_attribute {
                None => missing(self, "string_attribute"),
                Some(s) => {
                    let base = format!("{at}.string_attribute");
                    if s.key.is_empty() {
                        self.err(format!("{base}.key"), "must not be empty");
                    }
                    if s.values.is_empty() {
                        self.err(format!("{base}.values"), "must list at least one value");
                    }
                    if s.enabled_regex_matching {
                        for (i, pattern) in s.values.iter().enumerate() {
                            if let Err(e) = regex::Regex::new(pattern) {
                                self.err(
                                    format!("{base}.values[{i}]"),
                                    format!("not a valid regular expression: {e}"),
                                );
                            }
                        }
                    }
                }
            },
            PolicyType::NumericAttribute => match &p.numeric_attribute {
                None => missing(self, "numeric_attribute"),
                Some(n) => {
                    let base = format!("{at}.numeric_attribute");
                    if n.key.is_empty() {
                        self.err(format!("{base}.key"), "must not be empty");
                    }
                    match (n.min_value, n.max_value) {
                        (None, None) => {
                            self.err(base, "needs `min_value`, `max_value` or both".to_owned())
                        }
                        (Some(lo), Some(hi)) if lo > hi => self.err(
                            format!("{base}.max_value"),
                            format!("must be >= min_value ({lo})"),
                        ),
                        _ => {}
                    }
                }
            },
            PolicyType::BooleanAttribute => match &p.boolean_attribute {
                None => missing(self, "boolean_attribute"),
                Some(b) if b.key.is_empty() => {
                    self.err(format!("{at}.boolean_attribute.key"), "must not be empty")
                }
                Some(_) => {}
            },
            PolicyType::TraceState => match &p.trace_state {
                None => missing(self, "trace_state"),
                Some(t) => {
                    if t.key.is_empty() {
                        self.err(format!("{at}.trace_state.key"), "must not be empty");
                    }
                    if t.values.is_empty() {
                        self.err(
                            format!("{at}.trace_state.values"),
                            "must list at least one value",
                        );
                    }
                }
            },
            PolicyType::SpanCount => match &p.span_count {
                None => missing(self, "span_count"),
                Some(s) => {
                    if let Some(max) = s.max_spans
                        && max < s.min_spans
                    {
                        self.err(
                            format!("{at}.span_count.max_spans"),
                            format!("must be >= min_spans ({})", s.min_spans),
                        );
                    }
                }
            },
            PolicyType::RateLimiting => match &p.rate_limiting {
                None => missing(self, "rate_limiting"),
                Some(r) if r.spans_per_second == 0 => self.err(
                    format!("{at}.rate_limiting.spans_per_second"),
                    "must be > 0",
                ),
                Some(_) => {}
            },
            PolicyType::BytesLimiting => match &p.bytes_limiting {
                None => missing(self, "bytes_limiting"),
                Some(b) => {
                    if b.bytes_per_second == 0 {
                        self.err(
                            format!("{at}.bytes_limiting.bytes_per_second"),
                            "must be > 0",
                        );
                    }
                    if b.burst_capacity == Some(0) {
                        self.err(format!("{at}.bytes_limiting.burst_capacity"), "must be > 0");
                    }
                }
            },
            PolicyType::And => match &p.and {
                None => missing(self, "and"),
                Some(a) => {
                    let path = format!("{at}.and.and_sub_policy");
                    if a.and_sub_policy.is_empty() {
                        self.err(path.clone(), "must list at least one policy");
                    }
                    self.policy_list(&path, &a.and_sub_policy, depth + 1, false);
                }
            },
            PolicyType::Not => match &p.not {
                None => missing(self, "not"),
                Some(n) => self.policy(
                    &format!("{at}.not.not_sub_policy"),
                    &n.not_sub_policy,
                    depth + 1,
                    false,
                ),
            },
            PolicyType::Drop => {
                if !top {
                    self.err(
                        format!("{at}.type"),
                        "a `drop` policy can only be at the top level of `policies`",
                    );
                }
                match &p.drop {
                    None => missing(self, "drop"),
                    Some(d) => {
                        let path = format!("{at}.drop.drop_sub_policy");
                        if d.drop_sub_policy.is_empty() {
                            self.err(path.clone(), "must list at least one policy");
                        }
                        self.policy_list(&path, &d.drop_sub_policy, depth + 1, false);
                    }
                }
            }
            PolicyType::Composite => match &p.composite {
                None => missing(self, "composite"),
                Some(c) => self.composite(&format!("{at}.composite"), c, depth),
            },
            PolicyType::Condition => match &p.condition {
                None => missing(self, "condition"),
                Some(text) => {
                    if let Err(e) = crate::condition::Condition::parse(text) {
                        self.err(format!("{at}.condition"), e.to_string());
                    }
                }
            },
        }
    }

    fn composite(&mut self, base: &str, c: &CompositeConfig, depth: usize) {
        if c.max_total_spans_per_second == 0 {
            self.err(format!("{base}.max_total_spans_per_second"), "must be > 0");
        }
        let sub_path = format!("{base}.composite_sub_policy");
        if c.composite_sub_policy.is_empty() {
            self.err(sub_path.clone(), "must list at least one policy");
        }
        self.policy_list(&sub_path, &c.composite_sub_policy, depth + 1, false);
        let names: HashSet<&str> = c
            .composite_sub_policy
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let mut ordered = HashSet::new();
        for (i, name) in c.policy_order.iter().enumerate() {
            if !names.contains(name.as_str()) {
                self.err(
                    format!("{base}.policy_order[{i}]"),
                    format!("`{name}` is not the name of a composite_sub_policy"),
                );
            }
            if !ordered.insert(name.as_str()) {
                self.err(
                    format!("{base}.policy_order[{i}]"),
                    format!("`{name}` is listed twice"),
                );
            }
        }
        for (i, p) in c.composite_sub_policy.iter().enumerate() {
            if !ordered.contains(p.name.as_str()) {
                self.err(
                    format!("{sub_path}[{i}].name"),
                    format!("`{}` is missing from policy_order", p.name),
                );
            }
        }
        let mut total = 0.0;
        for (i, a) in c.rate_allocation.iter().enumerate() {
            if !names.contains(a.policy.as_str()) {
                self.err(
                    format!("{base}.rate_allocation[{i}].policy"),
                    format!("`{}` is not the name of a composite_sub_policy", a.policy),
                );
            }
            self.percentage(format!("{base}.rate_allocation[{i}].percent"), a.percent);
            total += a.percent;
        }
        if total > 100.0 + 1e-9 {
            self.err(
                format!("{base}.rate_allocation"),
                format!("percentages add up to {total}, more than 100"),
            );
        }
    }
}

impl HeadConfig {
    fn validate(&self, v: &mut Validator, at: &str) {
        v.percentage(format!("{at}.percentage"), self.percentage);
        if !(self.rate_limit_traces_per_second >= 0.0
            && self.rate_limit_traces_per_second.is_finite())
        {
            v.err(
                format!("{at}.rate_limit_traces_per_second"),
                "must be >= 0 (0: no limit)",
            );
        }
        if let Some(b) = self.rate_limit_burst {
            v.positive(format!("{at}.rate_limit_burst"), b);
        }
    }
}

impl AdaptiveConfig {
    fn validate(&self, v: &mut Validator, at: &str) {
        if self.bucket.is_zero() {
            v.err(format!("{at}.bucket"), "must be > 0");
            return;
        }
        if self.window < self.bucket {
            v.err(format!("{at}.window"), "must be at least one bucket long");
        }
        if self.baseline_window < self.bucket {
            v.err(
                format!("{at}.baseline_window"),
                "must be at least one bucket long",
            );
        }
        v.positive(format!("{at}.raise_factor"), self.raise_factor);
        if self.critical_factor < self.raise_factor {
            v.err(
                format!("{at}.critical_factor"),
                format!("must be >= raise_factor ({})", self.raise_factor),
            );
        }
        if !(self.release_factor > 0.0 && self.release_factor < self.raise_factor) {
            v.err(
                format!("{at}.release_factor"),
                format!(
                    "must be > 0 and < raise_factor ({}) so that raising and lowering do not flap",
                    self.raise_factor
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.min_error_rate) {
            v.err(
                format!("{at}.min_error_rate"),
                "must be a fraction between 0 and 1",
            );
        }
        v.percentage(
            format!("{at}.elevated_percentage"),
            self.elevated_percentage,
        );
        v.percentage(
            format!("{at}.critical_percentage"),
            self.critical_percentage,
        );
        if self.critical_percentage < self.elevated_percentage {
            v.err(
                format!("{at}.critical_percentage"),
                "must be >= elevated_percentage",
            );
        }
        if self.max_services == 0 {
            v.err(format!("{at}.max_services"), "must be > 0");
        }
    }
}

impl RemoteSamplingConfig {
    fn validate(&self, v: &mut Validator, at: &str) {
        v.positive(
            format!("{at}.target_samples_per_second"),
            self.target_samples_per_second,
        );
        if !(0.0..1.0).contains(&self.delta_tolerance) {
            v.err(format!("{at}.delta_tolerance"), "must be a ratio in [0, 1)");
        }
        if self.calculation_interval.is_zero() {
            v.err(format!("{at}.calculation_interval"), "must be > 0");
        }
        if self.buckets_for_calculation == 0 {
            v.err(format!("{at}.buckets_for_calculation"), "must be >= 1");
        }
        if self.aggregation_buckets < self.buckets_for_calculation {
            v.err(
                format!("{at}.aggregation_buckets"),
                "must be >= buckets_for_calculation",
            );
        }
        for (name, p) in [
            (
                "initial_sampling_probability",
                self.initial_sampling_probability,
            ),
            ("min_sampling_probability", self.min_sampling_probability),
        ] {
            if !(p > 0.0 && p <= 1.0) {
                v.err(
                    format!("{at}.{name}"),
                    format!("must be in (0, 1], got {p}"),
                );
            }
        }
        if self.min_samples_per_second < 0.0 {
            v.err(format!("{at}.min_samples_per_second"), "must be >= 0");
        }
        v.positive(format!("{at}.increase_cap"), self.increase_cap);
        if self.max_operations_per_service == 0 {
            v.err(format!("{at}.max_operations_per_service"), "must be > 0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(yaml: &str) -> String {
        SamplingConfig::from_yaml(yaml).unwrap_err().errors[0].to_string()
    }

    #[test]
    fn an_empty_section_keeps_everything() {
        let c = SamplingConfig::from_yaml("").unwrap();
        assert!(!c.tail_sampling_enabled());
        assert_eq!(c.decision_wait, Duration::from_secs(10));
        assert_eq!(c.head.percentage, 100.0);
    }

    #[test]
    fn the_seed_preset_is_errors_slow_and_five_percent() {
        let c = SamplingConfig::from_yaml("preset: seed").unwrap();
        let p = c.effective_policies();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].kind, PolicyType::StatusCode);
        assert_eq!(p[1].latency.as_ref().unwrap().threshold_ms, 1000);
        assert_eq!(
            p[2].probabilistic.as_ref().unwrap().sampling_percentage,
            5.0
        );
    }

    #[test]
    fn collector_style_policies_parse() {
        let yaml = r#"
decision_wait: 10s
num_traces: 100
decision_cache: {sampled_cache_size: 1000, non_sampled_cache_size: 1000}
policies:
  [
    {name: p1, type: always_sample},
    {name: p2, type: latency, latency: {threshold_ms: 5000, upper_threshold_ms: 10000}},
    {name: p3, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}},
    {name: p4, type: probabilistic, probabilistic: {sampling_percentage: 10}},
    {name: p5, type: status_code, status_code: {status_codes: [ERROR, UNSET]}},
    {name: p6, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}},
    {name: p7, type: string_attribute, string_attribute: {key: key2, values: [value1, val*], enabled_regex_matching: true, cache_max_size: 10}},
    {name: p8, type: rate_limiting, rate_limiting: {spans_per_second: 35}},
    {name: p9, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1024000, burst_capacity: 2048000}},
    {name: p10, type: span_count, span_count: {min_spans: 2, max_spans: 20}},
    {name: p11, type: trace_state, trace_state: {key: key3, values: [value1, value2]}},
    {name: p12, type: boolean_attribute, boolean_attribute: {key: key4, value: true}},
    {name: p13, type: trace_flags},
    {name: and-1, type: and, and: {and_sub_policy: [
        {name: a1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}},
        {name: a2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}}]}},
    {name: not-1, type: not, not: {not_sub_policy: {name: n1, type: status_code, status_code: {status_codes: [OK]}}}},
    {name: drop-1, type: drop, drop: {drop_sub_policy: [
        {name: d1, type: string_attribute, string_attribute: {key: url.path, values: [\/health, \/metrics], enabled_regex_matching: true}}]}},
    {name: composite-1, type: composite, composite: {
        max_total_spans_per_second: 1000,
        policy_order: [c1, c2, c3],
        composite_sub_policy: [
          {name: c1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50}},
          {name: c2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}},
          {name: c3, type: always_sample}],
        rate_allocation: [{policy: c1, percent: 50}, {policy: c2, percent: 25}]}},
    {name: cond, type: condition, condition: 'duration > 1s or status = error'},
  ]
"#;
        let c = SamplingConfig::from_yaml(yaml).unwrap();
        assert_eq!(c.policies.len(), 18);
        assert_eq!(c.decision_cache.sampled_cache_size, 1000);
    }

    #[test]
    fn validation_errors_name_the_field_path() {
        let yaml = r#"
policies:
  - {name: a, type: always_sample}
  - {name: b, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: c, type: latency, latency: {threshold_ms: 0}}
"#;
        assert_eq!(
            first_error(yaml),
            "sampling.policies[2].latency.threshold_ms: must be > 0"
        );
        assert_eq!(
            first_error(
                "policies: [{name: p, type: probabilistic, probabilistic: {sampling_percentage: 150}}]"
            ),
            "sampling.policies[0].probabilistic.sampling_percentage: must be between 0 and 100, got 150"
        );
        assert_eq!(
            first_error("policies: [{name: p, type: latency}]"),
            "sampling.policies[0].latency: missing: a `latency` policy needs a `latency` section"
        );
        let e = first_error(
            "policies: [{name: p, type: status_code, status_code: {status_codes: [ERROR]}, latency: {threshold_ms: 5}}]",
        );
        assert!(
            e.starts_with(
                "sampling.policies[0].latency: given, but the policy's type is `status_code`"
            ),
            "{e}"
        );
        let e = first_error(
            "policies: [{name: x, type: and, and: {and_sub_policy: [{name: y, type: string_attribute, string_attribute: {key: k, values: ['(unclosed'], enabled_regex_matching: true}}]}}]",
        );
        assert!(
            e.starts_with("sampling.policies[0].and.and_sub_policy[0].string_attribute.values[0]: not a valid regular expression"),
            "{e}"
        );
        let e = first_error("policies: [{name: c, type: condition, condition: 'duration > '}]");
        assert!(
            e.starts_with("sampling.policies[0].condition: column 12:"),
            "{e}"
        );
    }

    #[test]
    fn parse_errors_name_the_field_path_too() {
        let e = first_error("policies: [{name: p, type: latency, latency: {threshold_ms: soon}}]");
        assert!(
            e.starts_with("sampling.policies[0].latency.threshold_ms: "),
            "{e}"
        );
        let e = first_error("decision_wait: 10");
        assert!(
            e.starts_with("sampling.decision_wait: `10` needs a unit"),
            "{e}"
        );
        let e = first_error("policies: [{name: p, type: sometimes}]");
        assert!(
            e.starts_with("sampling.policies[0].type: unknown variant `sometimes`"),
            "{e}"
        );
        let e = first_error("decision_wiat: 10s");
        assert!(
            e.starts_with("sampling.decision_wiat: unknown field `decision_wiat`, expected one of"),
            "{e}"
        );
        let e = first_error("head: {percentage: 5, burst: 3}");
        assert!(
            e.starts_with("sampling.head.burst: unknown field `burst`"),
            "{e}"
        );
    }

    #[test]
    fn composite_names_must_match_their_sub_policies() {
        let yaml = r#"
policies:
  - name: comp
    type: composite
    composite:
      max_total_spans_per_second: 100
      policy_order: [a, zz]
      composite_sub_policy: [{name: a, type: always_sample}, {name: b, type: always_sample}]
      rate_allocation: [{policy: a, percent: 80}, {policy: b, percent: 30}]
"#;
        let err = SamplingConfig::from_yaml(yaml).unwrap_err().to_string();
        assert!(
            err.contains("sampling.policies[0].composite.policy_order[1]: `zz` is not the name"),
            "{err}"
        );
        assert!(err.contains("sampling.policies[0].composite.composite_sub_policy[1].name: `b` is missing from policy_order"), "{err}");
        assert!(
            err.contains(
                "sampling.policies[0].composite.rate_allocation: percentages add up to 110"
            ),
            "{err}"
        );
    }

    #[test]
    fn drop_is_only_allowed_at_the_top() {
        let yaml = "policies: [{name: a, type: and, and: {and_sub_policy: [{name: d, type: drop, drop: {drop_sub_policy: [{name: x, type: always_sample}]}}]}}]";
        assert_eq!(
            first_error(yaml),
            "sampling.policies[0].and.and_sub_policy[0].type: a `drop` policy can only be at the top level of `policies`"
        );
    }

    #[test]
    fn preset_and_policies_together_are_rejected() {
        assert_eq!(
            first_error("preset: seed\npolicies: [{name: a, type: always_sample}]"),
            "sampling.preset: give either `preset` or `policies`, not both"
        );
    }

    #[test]
    fn the_shipped_example_file_is_valid() {
        let text = include_str!("../../../stitch.sampling.example.yaml");
        let c = SamplingConfig::from_document_yaml(text).unwrap();
        assert!(c.tail_sampling_enabled());
    }

    #[test]
    fn config_round_trips_through_yaml() {
        let c = SamplingConfig::from_yaml("preset: seed\nadaptive: {enabled: true}").unwrap();
        let text = serde_yaml::to_string(&c).unwrap();
        assert_eq!(SamplingConfig::from_yaml(&text).unwrap(), c);
    }
}
