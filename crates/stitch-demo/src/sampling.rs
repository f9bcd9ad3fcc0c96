//! The demo's tail sampling: the configuration the demo's store runs with, waiting for Stitch
//! to decide every trace, and what Stitch kept of the rare-timeout scenario.
//!
//! The policies are the seed preset's (slower than 1 s, errors, 5% of the rest) plus one that
//! keeps every trace of the other scenarios, whose analyses need their traces whole:
//!
//! ```yaml
#![doc = include_str!("demo-sampling.yaml")]
//! ```
//!
//! `slow` comes before `errors` so that a trace that is both (the rare timeout fails with 504
//! after 30 s) is recorded under the rule the scenario is about; either rule alone keeps it.
//! Decisions wait 1 s after a trace's root span arrives (the fleet's exporters send every
//! 500 ms), or 40 s after its first span: longer than the rare request's 30 s, whose first
//! spans arrive half a minute before its root.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use stitch_model::{AnyValue, Trace, find_attribute};
use stitch_pipeline::SamplingConfig;
use stitch_pipeline::SamplingStatus;
use stitch_pipeline::weight::{
    POLICY_ATTRIBUTE, TAIL_PROBABILITY_ATTRIBUTE as PROBABILITY_ATTRIBUTE,
};

use crate::report::{KeptTrace, ScenarioSampling, TailSamplingTotals};
use crate::scenario::Scenario;

/// The `sampling` section the demo's store runs with (YAML, as in `stitch.yaml`).
pub const SAMPLING_YAML: &str = include_str!("demo-sampling.yaml");

/// The policy that keeps traces slower than 1 s.
pub const SLOW_POLICY: &str = "slow";
/// The policy that keeps 5% of the rest.
pub const REST_POLICY: &str = "rest";
/// Traces at least this long count as slow (the `slow` policy's threshold).
const SLOW_NANOS: u64 = 1_000_000_000;

/// The store's tail-sampling status, e.g. `Arc::new(move || store.sampling_status())`.
pub type SamplingStatusFn = Arc<dyn Fn() -> SamplingStatus + Send + Sync>;

/// The demo's sampling configuration: [`SAMPLING_YAML`], parsed and validated.
pub fn sampling_config() -> SamplingConfig {
    SamplingConfig::from_yaml(SAMPLING_YAML).expect("the demo's sampling configuration is valid")
}

/// One line describing [`SAMPLING_YAML`], for the report.
pub(crate) const DESCRIPTION: &str = "keep traces slower than 1 s (`slow`), with an error \
     (`errors`) or of the other scenarios (`demo-scenarios`), and 5% of the rest (`rest`); \
     decide 1 s after the root span arrives, at most 40 s after the first";

/// Whether the demo's sampling keeps every trace of `scenario`.
pub(crate) fn keeps_every_trace(scenario: Scenario) -> bool {
    scenario != Scenario::RareTimeout
}

/// Waits until Stitch's tail sampler, in a status published after `since`, holds no undecided
/// trace, at most `limit`. Returns whether it got there.
pub(crate) async fn wait_decided(
    status: &SamplingStatusFn,
    since: SystemTime,
    limit: Duration,
) -> bool {
    let since = crate::unix_nanos(since);
    let deadline = Instant::now() + limit;
    loop {
        let s = status();
        if !s.tail_sampling || (s.updated_unix_nanos > since && s.tail.buffered_traces == 0) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stitch's own counters, from its status.
pub(crate) fn totals(s: &SamplingStatus) -> TailSamplingTotals {
    TailSamplingTotals {
        enabled: s.tail_sampling,
        policies: DESCRIPTION.to_owned(),
        traces_received: s.tail.traces_received,
        traces_sampled: s.tail.traces_sampled,
        traces_not_sampled: s.tail.traces_not_sampled,
        sampled_by_policy: s.tail.sampled_by_policy.clone(),
        buffered_traces: s.tail.buffered_traces,
    }
}

/// What Stitch kept of a scenario, read from the traces it returned: each trace's entry span
/// carries the policy that kept it. `requests` and `failed` are what the load generator sent.
pub(crate) fn scenario_sampling(
    traces: &[Trace],
    scenario: Scenario,
    requests: u64,
    failed: u64,
    ui: &str,
) -> ScenarioSampling {
    let mut kept_by_policy: BTreeMap<String, u64> = BTreeMap::new();
    let mut slow_kept = Vec::new();
    let mut normal_kept = 0;
    for t in traces {
        let Some(entry) = crate::entry_span(t, scenario) else {
            continue;
        };
        let policy = match find_attribute(&entry.span.attributes, POLICY_ATTRIBUTE) {
            Some(AnyValue::String(p)) => Some(p.clone()),
            _ => None,
        };
        let probability = match find_attribute(&entry.span.attributes, PROBABILITY_ATTRIBUTE) {
            Some(AnyValue::Double(p)) => Some(*p),
            _ => None,
        };
        *kept_by_policy
            .entry(policy.clone().unwrap_or_else(|| "(none)".to_owned()))
            .or_default() += 1;
        let failed = entry.span.is_error();
        let duration_nanos = entry.span.duration_nanos();
        if failed || duration_nanos >= SLOW_NANOS {
            let id = t.trace_id.to_hex();
            slow_kept.push(KeptTrace {
                url: crate::trace_url(ui, &id),
                trace_id: id,
                duration_nanos,
                failed,
                policy,
                probability,
            });
        } else {
            normal_kept += 1;
        }
    }
    slow_kept.sort_by(|a, b| a.trace_id.cmp(&b.trace_id));
    let normal_requests = requests.saturating_sub(failed);
    ScenarioSampling {
        kept_traces: traces.len() as u64,
        kept_by_policy,
        slow_requests: failed,
        slow_kept,
        normal_requests,
        normal_kept,
        normal_kept_percent: if normal_requests == 0 {
            0.0
        } else {
            (normal_kept as f64 * 1000.0 / normal_requests as f64).round() / 10.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_the_seed_preset_plus_the_other_scenarios() {
        let config = sampling_config();
        assert!(config.tail_sampling_enabled());
        assert!(!config.adaptive.enabled);
        assert_eq!(config.decision_wait_after_root, Duration::from_secs(1));
        assert!(
            config.decision_wait > Duration::from_millis(crate::services::RARE_TIMEOUT_MS + 5_000),
            "the rare trace's root arrives 30 s after its first spans"
        );
        let policies = config.effective_policies();
        let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [SLOW_POLICY, "errors", "demo-scenarios", REST_POLICY]
        );
        let seed = stitch_pipeline::Preset::Seed.policies();
        let by_name = |n: &str| policies.iter().find(|p| p.name == n).unwrap();
        for p in &seed {
            assert_eq!(by_name(&p.name), p, "the seed preset's {}", p.name);
        }
        let kept = by_name("demo-scenarios").string_attribute.clone().unwrap();
        assert_eq!(kept.key, "stitch.demo.scenario");
        let expected: Vec<String> = Scenario::ALL
            .iter()
            .filter(|s| keeps_every_trace(**s))
            .map(|s| s.name().to_owned())
            .collect();
        assert_eq!(kept.values, expected);
        assert!(!kept.invert_match && !kept.enabled_regex_matching);
    }
}
