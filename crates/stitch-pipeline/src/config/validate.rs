//! Semantic checks of the `sampling` section: every error names the path of its field.

use std::collections::HashSet;

use super::*;

impl SamplingConfig {
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
