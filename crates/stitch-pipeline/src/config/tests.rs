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
        err.contains("sampling.policies[0].composite.rate_allocation: percentages add up to 110"),
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
    let text = include_str!("../../../../stitch.sampling.example.yaml");
    let c = SamplingConfig::from_document_yaml(text).unwrap();
    assert!(c.tail_sampling_enabled());
}

#[test]
fn config_round_trips_through_yaml() {
    let c = SamplingConfig::from_yaml("preset: seed\nadaptive: {enabled: true}").unwrap();
    let text = serde_yaml::to_string(&c).unwrap();
    assert_eq!(SamplingConfig::from_yaml(&text).unwrap(), c);
}
