//! Tail-sampling policies compiled from the config, evaluated on a whole buffered trace.
//!
//! The combination follows the OpenTelemetry Collector's `tail_sampling` processor: every
//! top-level policy is evaluated in order (stateful ones such as `rate_limiting` consume
//! their budget even when another policy also samples); the trace is kept when any policy
//! samples it, unless a `drop` policy matched. `invert_match` yields a plain "sampled" /
//! "not sampled" (the Collector's non-deprecated behaviour): sampled when no resource and no
//! span has a matching value.

use std::collections::HashSet;
use std::sync::Arc;

use regex::Regex;
use stitch_model::{AnyValue, StatusCode, TraceId, find_attribute};

use crate::bucket::TokenBucket;
use crate::condition::{Condition, TraceFacts};
use crate::config::{
    CompositeConfig, ConfigError, FieldError, PolicyConfig, PolicyType, StatusCodeName,
};
use crate::lru::Lru;
use crate::span::{SpanNeeds, SpanView};

pub(crate) const STATUS_UNSET: u8 = 1;
pub(crate) const STATUS_OK: u8 = 2;
pub(crate) const STATUS_ERROR: u8 = 4;

pub(crate) fn status_bit(code: StatusCode) -> u8 {
    match code {
        StatusCode::Unset => STATUS_UNSET,
        StatusCode::Ok => STATUS_OK,
        StatusCode::Error => STATUS_ERROR,
    }
}

/// Iterates the spans of a buffered trace.
pub trait SpanSource {
    /// Calls `f` on spans until it returns true; returns whether it did.
    fn any_span(&self, f: &mut dyn FnMut(&SpanView<'_>) -> bool) -> bool;
}

/// A buffered trace as policies see it: a summary kept while spans arrive, plus the spans.
pub struct TraceData<'a> {
    pub trace_id: TraceId,
    pub span_count: u64,
    /// The trace's size as received: the sum of the spans' [`SpanRecord::wire_bytes`]
    /// (what `bytes_limiting` counts).
    ///
    /// [`SpanRecord::wire_bytes`]: crate::span::SpanRecord::wire_bytes
    pub bytes: u64,
    /// Earliest span start (`u64::MAX` when there are no spans).
    pub start_min: u64,
    pub end_max: u64,
    /// Bit set of the span status codes seen (`STATUS_*`).
    pub status_mask: u8,
    /// Whether any span had the W3C sampled flag.
    pub sampled_flag: bool,
    pub spans: &'a dyn SpanSource,
}

impl TraceData<'_> {
    pub fn duration_nanos(&self) -> u64 {
        if self.start_min == u64::MAX {
            0
        } else {
            self.end_max.saturating_sub(self.start_min)
        }
    }
}

impl TraceFacts for TraceData<'_> {
    fn duration_nanos(&self) -> u64 {
        TraceData::duration_nanos(self)
    }
    fn span_count(&self) -> u64 {
        self.span_count
    }
    fn any_span(&self, f: &mut dyn FnMut(&SpanView<'_>) -> bool) -> bool {
        self.spans.any_span(f)
    }
}

/// What a kept trace's inclusion probability is, for adjusted counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Class {
    /// Any trace matching the policy is kept: probability 1.
    Deterministic,
    /// Kept with this probability among traces the rest of the policy matches.
    Probabilistic(f64),
    /// Depends on load (rate limits): unknown.
    Unknown,
}

struct StringAttr {
    key: String,
    exact: HashSet<String>,
    regexes: Vec<Regex>,
    cache: Option<Lru<String, bool>>,
    invert: bool,
}

fn string_matches(
    exact: &HashSet<String>,
    regexes: &[Regex],
    cache: &mut Option<Lru<String, bool>>,
    v: &AnyValue,
) -> bool {
    let AnyValue::String(s) = v else { return false };
    if regexes.is_empty() {
        return exact.contains(s.as_str());
    }
    if let Some(cache) = cache
        && let Some(&hit) = cache.get(s.as_str())
    {
        return hit;
    }
    let result = regexes.iter().any(|re| re.is_match(s));
    if let Some(cache) = cache {
        cache.insert(s.clone(), result);
    }
    result
}

struct CompositeSub {
    name: Arc<str>,
    node: Node,
    allocated: f64,
    sampled_this_second: u64,
}

struct Composite {
    max_total: u64,
    subs: Vec<CompositeSub>,
    second: u64,
    total_this_second: u64,
    last_sub: Option<usize>,
}

enum Node {
    Always,
    Latency {
        lo_ms: i64,
        hi_ms: Option<i64>,
    },
    Status {
        mask: u8,
    },
    Probabilistic {
        threshold: u64,
        salt: Vec<u8>,
        ratio: f64,
    },
    StringAttr(Box<StringAttr>),
    NumericAttr {
        key: String,
        min: f64,
        max: f64,
        invert: bool,
    },
    BoolAttr {
        key: String,
        value: bool,
        invert: bool,
    },
    TraceState {
        key: String,
        values: Vec<String>,
    },
    TraceFlags,
    SpanCount {
        min: u64,
        max: Option<u64>,
    },
    RateLimit(TokenBucket),
    BytesLimit(TokenBucket),
    And(Vec<Node>),
    Not(Box<Node>),
    Drop(Vec<Node>),
    Composite(Box<Composite>),
    Condition(Box<Condition>),
}

/// The Collector's probabilistic hash: FNV-1a 64 over the salt then the trace id bytes.
pub(crate) fn hash_trace_id(salt: &[u8], trace_id: &TraceId) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.iter().chain(trace_id.0.iter()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The hash threshold for a ratio in [0, 1]: `ratio * u64::MAX`, saturating.
pub(crate) fn hash_threshold(ratio: f64) -> u64 {
    (ratio.clamp(0.0, 1.0) * u64::MAX as f64) as u64
}

pub(crate) const DEFAULT_HASH_SALT: &str = "default-hash-seed";

fn any_resource_or_span(
    t: &TraceData<'_>,
    key: &str,
    pred: &mut dyn FnMut(&AnyValue) -> bool,
) -> bool {
    t.spans.any_span(&mut |s| {
        find_attribute(s.attributes, key).is_some_and(&mut *pred)
            || find_attribute(s.resource_attributes, key).is_some_and(&mut *pred)
    })
}

fn number(v: &AnyValue) -> Option<f64> {
    match v {
        AnyValue::Int(i) => Some(*i as f64),
        AnyValue::Double(d) => Some(*d),
        _ => None,
    }
}

fn trace_state_has(trace_state: &str, key: &str, values: &[String]) -> bool {
    trace_state.split(',').any(|member| {
        member
            .trim()
            .split_once('=')
            .is_some_and(|(k, v)| k == key && values.iter().any(|x| x == v))
    })
}

/// The section a policy of `p`'s type needs, or the error saying it is missing.
fn section<'a, T>(p: &PolicyConfig, section: &'a Option<T>) -> Result<&'a T, FieldError> {
    section.as_ref().ok_or_else(|| FieldError {
        path: format!("policy {:?}", p.name),
        message: format!(
            "a policy of type {} needs its {} section",
            p.kind.as_str(),
            p.kind.as_str()
        ),
    })
}

impl Node {
    /// The policy `p` describes. Validation ([`crate::config::SamplingConfig::validate`])
    /// reports every problem of a config with its path; what compiling finds missing is
    /// refused here too, so that no config reaches the sampler half-built.
    fn compile(p: &PolicyConfig) -> Result<Node, FieldError> {
        Ok(match p.kind {
            PolicyType::AlwaysSample => Node::Always,
            PolicyType::TraceFlags => Node::TraceFlags,
            PolicyType::Latency => {
                let l = section(p, &p.latency)?;
                Node::Latency {
                    lo_ms: l.threshold_ms,
                    hi_ms: l.upper_threshold_ms.filter(|h| *h > 0),
                }
            }
            PolicyType::StatusCode => {
                let mask = section(p, &p.status_code)?
                    .status_codes
                    .iter()
                    .map(|c| match c {
                        StatusCodeName::Ok => STATUS_OK,
                        StatusCodeName::Error => STATUS_ERROR,
                        StatusCodeName::Unset => STATUS_UNSET,
                    })
                    .fold(0, |a, b| a | b);
                Node::Status { mask }
            }
            PolicyType::Probabilistic => {
                let pr = section(p, &p.probabilistic)?;
                let ratio = pr.sampling_percentage / 100.0;
                let salt = pr
                    .hash_salt
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| DEFAULT_HASH_SALT.to_owned());
                Node::Probabilistic {
                    threshold: hash_threshold(ratio),
                    salt: salt.into_bytes(),
                    ratio,
                }
            }
            PolicyType::StringAttribute => {
                let s = section(p, &p.string_attribute)?;
                let (exact, regexes) = if s.enabled_regex_matching {
                    (
                        HashSet::new(),
                        s.values
                            .iter()
                            .map(|v| {
                                Regex::new(v).map_err(|e| FieldError {
                                    path: format!("policy {:?}", p.name),
                                    message: format!("invalid regular expression {v:?}: {e}"),
                                })
                            })
                            .collect::<Result<_, _>>()?,
                    )
                } else {
                    (s.values.iter().cloned().collect(), Vec::new())
                };
                Node::StringAttr(Box::new(StringAttr {
                    key: s.key.clone(),
                    exact,
                    regexes,
                    cache: (s.enabled_regex_matching && s.cache_max_size > 0)
                        .then(|| Lru::new(s.cache_max_size)),
                    invert: s.invert_match,
                }))
            }
            PolicyType::NumericAttribute => {
                let n = section(p, &p.numeric_attribute)?;
                Node::NumericAttr {
                    key: n.key.clone(),
                    min: n.min_value.unwrap_or(f64::NEG_INFINITY),
                    max: n.max_value.unwrap_or(f64::INFINITY),
                    invert: n.invert_match,
                }
            }
            PolicyType::BooleanAttribute => {
                let b = section(p, &p.boolean_attribute)?;
                Node::BoolAttr {
                    key: b.key.clone(),
                    value: b.value,
                    invert: b.invert_match,
                }
            }
            PolicyType::TraceState => {
                let t = section(p, &p.trace_state)?;
                Node::TraceState {
                    key: t.key.clone(),
                    values: t.values.clone(),
                }
            }
            PolicyType::SpanCount => {
                let s = section(p, &p.span_count)?;
                Node::SpanCount {
                    min: s.min_spans as u64,
                    max: s.max_spans.filter(|m| *m > 0).map(u64::from),
                }
            }
            PolicyType::RateLimiting => {
                let r = section(p, &p.rate_limiting)?;
                let rate = r.spans_per_second as f64;
                Node::RateLimit(TokenBucket::new(rate, 2.0 * rate))
            }
            PolicyType::BytesLimiting => {
                let b = section(p, &p.bytes_limiting)?;
                let rate = b.bytes_per_second as f64;
                Node::BytesLimit(TokenBucket::new(
                    rate,
                    b.burst_capacity.map(|c| c as f64).unwrap_or(2.0 * rate),
                ))
            }
            PolicyType::And => Node::And(
                section(p, &p.and)?
                    .and_sub_policy
                    .iter()
                    .map(Node::compile)
                    .collect::<Result<_, _>>()?,
            ),
            PolicyType::Not => Node::Not(Box::new(Node::compile(
                &section(p, &p.not)?.not_sub_policy,
            )?)),
            PolicyType::Drop => Node::Drop(
                section(p, &p.drop)?
                    .drop_sub_policy
                    .iter()
                    .map(Node::compile)
                    .collect::<Result<_, _>>()?,
            ),
            PolicyType::Composite => {
                Node::Composite(Box::new(Composite::compile(section(p, &p.composite)?)?))
            }
            PolicyType::Condition => {
                let text = section(p, &p.condition)?;
                Node::Condition(Box::new(Condition::parse(text).map_err(|e| {
                    FieldError {
                        path: format!("policy {:?}", p.name),
                        message: format!("invalid condition: {e}"),
                    }
                })?))
            }
        })
    }

    fn class(&self) -> Class {
        match self {
            Node::Probabilistic { ratio, .. } => Class::Probabilistic(*ratio),
            Node::RateLimit(_) | Node::BytesLimit(_) | Node::Composite(_) => Class::Unknown,
            Node::And(subs) => {
                let mut p = 1.0;
                for s in subs {
                    match s.class() {
                        Class::Deterministic => {}
                        Class::Probabilistic(x) => p *= x,
                        Class::Unknown => return Class::Unknown,
                    }
                }
                if p < 1.0 {
                    Class::Probabilistic(p)
                } else {
                    Class::Deterministic
                }
            }
            Node::Not(sub) => match sub.class() {
                Class::Deterministic => Class::Deterministic,
                Class::Probabilistic(p) => Class::Probabilistic(1.0 - p),
                Class::Unknown => Class::Unknown,
            },
            _ => Class::Deterministic,
        }
    }

    /// Adds the span fields this policy reads to `needs`.
    fn span_needs(&self, needs: &mut SpanNeeds) {
        match self {
            Node::StringAttr(sa) => {
                needs.attributes.insert(sa.key.clone());
            }
            Node::NumericAttr { key, .. } | Node::BoolAttr { key, .. } => {
                needs.attributes.insert(key.clone());
            }
            Node::TraceState { .. } => needs.trace_state = true,
            Node::And(subs) | Node::Drop(subs) => subs.iter().for_each(|s| s.span_needs(needs)),
            Node::Not(sub) => sub.span_needs(needs),
            Node::Composite(c) => c.subs.iter().for_each(|s| s.node.span_needs(needs)),
            Node::Condition(c) => c.span_needs(needs),
            Node::Always
            | Node::Latency { .. }
            | Node::Status { .. }
            | Node::Probabilistic { .. }
            | Node::TraceFlags
            | Node::SpanCount { .. }
            | Node::RateLimit(_)
            | Node::BytesLimit(_) => {}
        }
    }

    /// Whether this (non-drop) policy samples the trace.
    fn sampled(&mut self, t: &TraceData<'_>, now: u64) -> bool {
        match self {
            Node::Always => true,
            Node::Latency { lo_ms, hi_ms } => {
                // Whole milliseconds, truncated, as the Collector computes them.
                let ms = (t.duration_nanos() / 1_000_000) as i64;
                match hi_ms {
                    None => ms >= *lo_ms,
                    Some(hi) => *lo_ms < ms && ms <= *hi,
                }
            }
            Node::Status { mask } => t.status_mask & *mask != 0,
            Node::Probabilistic {
                threshold, salt, ..
            } => hash_trace_id(salt, &t.trace_id) <= *threshold,
            Node::StringAttr(sa) => {
                let StringAttr {
                    key,
                    exact,
                    regexes,
                    cache,
                    invert,
                } = &mut **sa;
                let found =
                    any_resource_or_span(t, key, &mut |v| string_matches(exact, regexes, cache, v));
                found != *invert
            }
            Node::NumericAttr {
                key,
                min,
                max,
                invert,
            } => {
                let (lo, hi) = (*min, *max);
                let found = any_resource_or_span(t, key, &mut |v| {
                    number(v).is_some_and(|n| n >= lo && n <= hi)
                });
                found != *invert
            }
            Node::BoolAttr { key, value, invert } => {
                let want = *value;
                let found = any_resource_or_span(
                    t,
                    key,
                    &mut |v| matches!(v, AnyValue::Bool(b) if *b == want),
                );
                found != *invert
            }
            Node::TraceState { key, values } => t
                .spans
                .any_span(&mut |s| trace_state_has(s.trace_state, key, values)),
            Node::TraceFlags => t.sampled_flag,
            Node::SpanCount { min, max } => {
                t.span_count >= *min && max.is_none_or(|m| t.span_count <= m)
            }
            Node::RateLimit(bucket) => bucket.try_take(t.span_count as f64, now),
            Node::BytesLimit(bucket) => bucket.try_take(t.bytes as f64, now),
            Node::And(subs) => subs.iter_mut().all(|s| s.sampled(t, now)),
            Node::Not(sub) => !sub.sampled(t, now),
            // A drop nested where validation forbids it never samples.
            Node::Drop(_) => false,
            Node::Composite(c) => c.sampled(t, now),
            Node::Condition(c) => c.matches(t),
        }
    }
}

impl Composite {
    fn compile(c: &CompositeConfig) -> Result<Composite, FieldError> {
        let max_total = c.max_total_spans_per_second;
        let mut allocated_percent = 0.0;
        let mut unallocated = 0usize;
        let percent_of = |name: &str| {
            c.rate_allocation
                .iter()
                .find(|a| a.policy == name && a.percent > 0.0)
                .map(|a| a.percent)
        };
        for p in &c.composite_sub_policy {
            match percent_of(&p.name) {
                Some(x) => allocated_percent += x,
                None => unallocated += 1,
            }
        }
        // Sub-policies without an allocation share what is left equally.
        let share = if unallocated > 0 {
            ((100.0 - allocated_percent).max(0.0)) / unallocated as f64
        } else {
            0.0
        };
        let subs = c
            .policy_order
            .iter()
            .filter_map(|name| c.composite_sub_policy.iter().find(|p| &p.name == name))
            .map(|p| {
                Ok(CompositeSub {
                    name: Arc::from(p.name.as_str()),
                    node: Node::compile(p)?,
                    allocated: percent_of(&p.name).unwrap_or(share) / 100.0 * max_total as f64,
                    sampled_this_second: 0,
                })
            })
            .collect::<Result<_, FieldError>>()?;
        Ok(Composite {
            max_total,
            subs,
            second: u64::MAX,
            total_this_second: 0,
            last_sub: None,
        })
    }

    fn sampled(&mut self, t: &TraceData<'_>, now: u64) -> bool {
        self.last_sub = None;
        let second = now / 1_000_000_000;
        if second != self.second {
            self.second = second;
            self.total_this_second = 0;
            for s in &mut self.subs {
                s.sampled_this_second = 0;
            }
        }
        for (i, sub) in self.subs.iter_mut().enumerate() {
            if sub.node.sampled(t, now) {
                let after = sub.sampled_this_second + t.span_count;
                let total_after = self.total_this_second + t.span_count;
                if after as f64 <= sub.allocated && total_after <= self.max_total {
                    sub.sampled_this_second = after;
                    self.total_this_second = total_after;
                    self.last_sub = Some(i);
                    return true;
                }
                // Over its allocation: not sampled, and the budget is left for smaller
                // traces later in the second.
                return false;
            }
        }
        false
    }
}

struct TopPolicy {
    name: Arc<str>,
    node: Node,
    class: Class,
    is_drop: bool,
}

/// The verdict of all policies on one trace.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Sampled {
        policy: usize,
        /// `composite/sub` when a composite policy kept it.
        name: Arc<str>,
        probability: Option<f64>,
    },
    NotSampled,
    Dropped {
        policy: usize,
    },
}

/// The compiled top-level policies.
pub(crate) struct PolicySet {
    policies: Vec<TopPolicy>,
    /// How often each policy voted to sample (or, for drop policies, matched).
    pub votes: Vec<u64>,
}

impl PolicySet {
    /// The policies of a validated config; what cannot be built is refused with its policy.
    pub fn compile(policies: &[PolicyConfig]) -> Result<PolicySet, ConfigError> {
        let mut errors = Vec::new();
        let mut compiled = Vec::with_capacity(policies.len());
        for p in policies {
            match Node::compile(p) {
                Ok(node) => compiled.push(TopPolicy {
                    name: Arc::from(p.name.as_str()),
                    class: node.class(),
                    is_drop: matches!(node, Node::Drop(_)),
                    node,
                }),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError { errors });
        }
        Ok(PolicySet {
            votes: vec![0; compiled.len()],
            policies: compiled,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The span fields, beyond the ones every span record keeps, that these policies read.
    pub fn span_needs(&self) -> SpanNeeds {
        let mut needs = SpanNeeds::default();
        for p in &self.policies {
            p.node.span_needs(&mut needs);
        }
        needs
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn name(&self, i: usize) -> &Arc<str> {
        &self.policies[i].name
    }

    /// The largest `sampling_percentage` of a top-level probabilistic policy (the share of
    /// "normal" traffic kept), if any.
    pub fn base_percentage(&self) -> Option<f64> {
        self.policies
            .iter()
            .filter_map(|p| match p.node {
                Node::Probabilistic { ratio, .. } => Some(ratio * 100.0),
                _ => None,
            })
            .reduce(f64::max)
    }

    pub fn decide(&mut self, t: &TraceData<'_>, now: u64) -> Outcome {
        let mut dropped = None;
        let mut first_sampled: Option<(usize, Arc<str>)> = None;
        let mut deterministic = false;
        let mut best_p: Option<f64> = None;
        for (i, p) in self.policies.iter_mut().enumerate() {
            if p.is_drop {
                let Node::Drop(subs) = &mut p.node else {
                    unreachable!("is_drop")
                };
                if subs.iter_mut().all(|s| s.sampled(t, now)) {
                    self.votes[i] += 1;
                    dropped.get_or_insert(i);
                }
                continue;
            }
            if p.node.sampled(t, now) {
                self.votes[i] += 1;
                if first_sampled.is_none() {
                    let name = match &p.node {
                        Node::Composite(c) => match c.last_sub {
                            Some(s) => Arc::from(format!("{}/{}", p.name, c.subs[s].name)),
                            None => p.name.clone(),
                        },
                        _ => p.name.clone(),
                    };
                    first_sampled = Some((i, name));
                }
                match p.class {
                    Class::Deterministic => deterministic = true,
                    Class::Probabilistic(x) => best_p = Some(best_p.map_or(x, |b: f64| b.max(x))),
                    Class::Unknown => {}
                }
            }
        }
        if let Some(policy) = dropped {
            return Outcome::Dropped { policy };
        }
        match first_sampled {
            Some((policy, name)) => Outcome::Sampled {
                policy,
                name,
                probability: if deterministic { Some(1.0) } else { best_p },
            },
            None => Outcome::NotSampled,
        }
    }
}

/// A `SpanSource` over views collected by the caller (tests and small callers).
impl SpanSource for Vec<SpanView<'_>> {
    fn any_span(&self, f: &mut dyn FnMut(&SpanView<'_>) -> bool) -> bool {
        self.iter().any(f)
    }
}

/// Summarises spans into a [`TraceData`] for evaluation outside the tail buffer.
pub fn summarize<'a>(trace_id: TraceId, spans: &'a Vec<SpanView<'a>>) -> TraceData<'a> {
    let mut t = TraceData {
        trace_id,
        span_count: spans.len() as u64,
        bytes: 0,
        start_min: u64::MAX,
        end_max: 0,
        status_mask: 0,
        sampled_flag: false,
        spans,
    };
    for s in spans {
        t.start_min = t.start_min.min(s.start_unix_nano);
        t.end_max = t.end_max.max(s.end_unix_nano);
        t.status_mask |= status_bit(s.status);
        t.sampled_flag |= s.flags & 1 == 1;
    }
    t
}

#[cfg(test)]
mod tests;
