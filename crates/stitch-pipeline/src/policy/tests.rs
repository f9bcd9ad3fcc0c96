use super::*;
use crate::config::SamplingConfig;
use stitch_model::{KeyValue, SpanId, SpanKind};

const MS: u64 = 1_000_000;

#[derive(Clone)]
struct S {
    service: &'static str,
    start_ms: u64,
    end_ms: u64,
    status: StatusCode,
    attrs: Vec<KeyValue>,
    resource: Vec<KeyValue>,
    trace_state: &'static str,
    flags: u32,
}

fn s(service: &'static str) -> S {
    S {
        service,
        start_ms: 0,
        end_ms: 10,
        status: StatusCode::Unset,
        attrs: vec![],
        resource: vec![],
        trace_state: "",
        flags: 1,
    }
}

fn views(spans: &[S]) -> Vec<SpanView<'_>> {
    spans
        .iter()
        .map(|x| SpanView {
            span_id: SpanId([1; 8]),
            is_root: false,
            service: x.service,
            name: "op",
            kind: SpanKind::Server,
            start_unix_nano: x.start_ms * MS,
            end_unix_nano: x.end_ms * MS,
            status: x.status,
            trace_state: x.trace_state,
            flags: x.flags,
            attributes: &x.attrs,
            resource_attributes: &x.resource,
        })
        .collect()
}

fn policies(yaml: &str) -> PolicySet {
    let c = SamplingConfig::from_yaml(yaml).unwrap();
    PolicySet::compile(&c.effective_policies()).unwrap()
}

fn one(yaml_policy: &str) -> PolicySet {
    policies(&format!("policies: [{yaml_policy}]"))
}

fn kept(set: &mut PolicySet, spans: &[S]) -> bool {
    kept_at(set, spans, TraceId([7; 16]), 0)
}

fn kept_at(set: &mut PolicySet, spans: &[S], id: TraceId, now: u64) -> bool {
    let v = views(spans);
    let t = summarize(id, &v);
    matches!(set.decide(&t, now), Outcome::Sampled { .. })
}

fn with<F: FnOnce(&mut S)>(mut x: S, f: F) -> S {
    f(&mut x);
    x
}

#[test]
fn each_simple_policy_type_matches_as_the_collector_documents() {
    use StatusCode::*;
    // (policy, trace, expected)
    let table: Vec<(&str, Vec<S>, bool)> = vec![
        ("{name: p, type: always_sample}", vec![s("a")], true),
        (
            "{name: p, type: latency, latency: {threshold_ms: 100}}",
            vec![with(s("a"), |x| x.end_ms = 100)],
            true,
        ),
        (
            "{name: p, type: latency, latency: {threshold_ms: 100}}",
            vec![with(s("a"), |x| x.end_ms = 99)],
            false,
        ),
        // Trace duration spans spans: earliest start to latest end.
        (
            "{name: p, type: latency, latency: {threshold_ms: 100}}",
            vec![
                with(s("a"), |x| x.end_ms = 60),
                with(s("b"), |x| {
                    x.start_ms = 50;
                    x.end_ms = 120
                }),
            ],
            true,
        ),
        (
            "{name: p, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 200}}",
            vec![with(s("a"), |x| x.end_ms = 100)],
            false,
        ),
        (
            "{name: p, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 200}}",
            vec![with(s("a"), |x| x.end_ms = 200)],
            true,
        ),
        (
            "{name: p, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 200}}",
            vec![with(s("a"), |x| x.end_ms = 201)],
            false,
        ),
        (
            "{name: p, type: status_code, status_code: {status_codes: [ERROR]}}",
            vec![s("a"), with(s("b"), |x| x.status = Error)],
            true,
        ),
        (
            "{name: p, type: status_code, status_code: {status_codes: [ERROR]}}",
            vec![with(s("a"), |x| x.status = Ok)],
            false,
        ),
        (
            "{name: p, type: status_code, status_code: {status_codes: [OK, UNSET]}}",
            vec![s("a")],
            true,
        ),
        (
            "{name: p, type: string_attribute, string_attribute: {key: k, values: [v1, v2]}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("k", "v2")])],
            true,
        ),
        (
            "{name: p, type: string_attribute, string_attribute: {key: k, values: [v1, v2]}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("k", "v3")])],
            false,
        ),
        // Resource attributes count too.
        (
            "{name: p, type: string_attribute, string_attribute: {key: k, values: [v1]}}",
            vec![with(s("a"), |x| {
                x.resource = vec![KeyValue::new("k", "v1")]
            })],
            true,
        ),
        (
            "{name: p, type: string_attribute, string_attribute: {key: k, values: ['^/api/.+'], enabled_regex_matching: true, cache_max_size: 4}}",
            vec![with(s("a"), |x| {
                x.attrs = vec![KeyValue::new("k", "/api/orders")]
            })],
            true,
        ),
        (
            "{name: p, type: string_attribute, string_attribute: {key: k, values: ['^/api/.+'], enabled_regex_matching: true}}",
            vec![with(s("a"), |x| {
                x.attrs = vec![KeyValue::new("k", "/health")]
            })],
            false,
        ),
        // invert_match: sampled when no span or resource has a matching value.
        (
            "{name: p, type: string_attribute, string_attribute: {key: k, values: [v1], invert_match: true}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("k", "v2")])],
            true,
        ),
        (
            "{name: p, type: string_attribute, string_attribute: {key: k, values: [v1], invert_match: true}}",
            vec![
                s("a"),
                with(s("b"), |x| x.attrs = vec![KeyValue::new("k", "v1")]),
            ],
            false,
        ),
        (
            "{name: p, type: numeric_attribute, numeric_attribute: {key: n, min_value: 50, max_value: 100}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("n", 100i64)])],
            true,
        ),
        (
            "{name: p, type: numeric_attribute, numeric_attribute: {key: n, min_value: 50, max_value: 100}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("n", 101i64)])],
            false,
        ),
        (
            "{name: p, type: numeric_attribute, numeric_attribute: {key: n, min_value: 50}}",
            vec![with(s("a"), |x| {
                x.attrs = vec![KeyValue::new("n", 5000i64)]
            })],
            true,
        ),
        (
            "{name: p, type: numeric_attribute, numeric_attribute: {key: n, min_value: 50, invert_match: true}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("n", 10i64)])],
            true,
        ),
        (
            "{name: p, type: numeric_attribute, numeric_attribute: {key: n, max_value: 0.5}}",
            vec![with(s("a"), |x| {
                x.attrs = vec![KeyValue::new("n", 0.25f64)]
            })],
            true,
        ),
        (
            "{name: p, type: boolean_attribute, boolean_attribute: {key: b, value: true}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("b", true)])],
            true,
        ),
        (
            "{name: p, type: boolean_attribute, boolean_attribute: {key: b, value: true}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("b", false)])],
            false,
        ),
        (
            "{name: p, type: boolean_attribute, boolean_attribute: {key: b, value: true, invert_match: true}}",
            vec![with(s("a"), |x| x.attrs = vec![KeyValue::new("b", false)])],
            true,
        ),
        (
            "{name: p, type: trace_state, trace_state: {key: team, values: [a, b]}}",
            vec![with(s("a"), |x| x.trace_state = "ot=th:0,team=b")],
            true,
        ),
        (
            "{name: p, type: trace_state, trace_state: {key: team, values: [a, b]}}",
            vec![with(s("a"), |x| x.trace_state = "team=c")],
            false,
        ),
        (
            "{name: p, type: trace_flags}",
            vec![with(s("a"), |x| x.flags = 0), s("b")],
            true,
        ),
        (
            "{name: p, type: trace_flags}",
            vec![with(s("a"), |x| x.flags = 0)],
            false,
        ),
        (
            "{name: p, type: span_count, span_count: {min_spans: 2, max_spans: 3}}",
            vec![s("a"), s("b")],
            true,
        ),
        (
            "{name: p, type: span_count, span_count: {min_spans: 2, max_spans: 3}}",
            vec![s("a")],
            false,
        ),
        (
            "{name: p, type: span_count, span_count: {min_spans: 2, max_spans: 3}}",
            vec![s("a"), s("b"), s("c"), s("d")],
            false,
        ),
        (
            "{name: p, type: span_count, span_count: {min_spans: 2}}",
            vec![s("a"), s("b"), s("c"), s("d")],
            true,
        ),
        (
            "{name: p, type: condition, condition: 'service = \"b\" and span.duration >= 10ms'}",
            vec![s("a"), s("b")],
            true,
        ),
        (
            "{name: p, type: condition, condition: 'service = \"c\"'}",
            vec![s("a"), s("b")],
            false,
        ),
    ];
    for (i, (policy, trace, expected)) in table.into_iter().enumerate() {
        let mut set = one(policy);
        assert_eq!(kept(&mut set, &trace), expected, "case {i}: {policy}");
    }
}

#[test]
fn probabilistic_is_deterministic_per_trace_id_and_close_to_its_percentage() {
    let mut set = one("{name: p, type: probabilistic, probabilistic: {sampling_percentage: 20}}");
    let mut count = 0;
    for i in 0..20_000u64 {
        let id = TraceId::from_halves(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i);
        let a = kept_at(&mut set, &[s("a")], id, 0);
        assert_eq!(a, kept_at(&mut set, &[s("b")], id, 0));
        count += a as u32;
    }
    assert!((3_700..=4_300).contains(&count), "{count}");
    // A different salt picks a different subset.
    let mut salted = one(
        "{name: p, type: probabilistic, probabilistic: {sampling_percentage: 20, hash_salt: other}}",
    );
    let differs = (0..1000u64)
        .filter(|i| {
            let id = TraceId::from_halves(*i, *i);
            kept_at(&mut set, &[s("a")], id, 0) != kept_at(&mut salted, &[s("a")], id, 0)
        })
        .count();
    assert!(differs > 100, "{differs}");
    assert!(kept(
        &mut one("{name: p, type: probabilistic, probabilistic: {sampling_percentage: 100}}"),
        &[s("a")]
    ));
}

#[test]
fn drop_wins_over_any_sampling_policy_and_and_not_combine() {
    let yaml = r#"
policies:
  - {name: all, type: always_sample}
  - name: no-health
    type: drop
    drop: {drop_sub_policy: [
      {name: h, type: string_attribute, string_attribute: {key: url.path, values: [/health]}},
      {name: ok, type: status_code, status_code: {status_codes: [OK, UNSET]}}]}
"#;
    let mut set = policies(yaml);
    let health = with(s("a"), |x| {
        x.attrs = vec![KeyValue::new("url.path", "/health")]
    });
    let v = views(std::slice::from_ref(&health));
    assert_eq!(
        set.decide(&summarize(TraceId([1; 16]), &v), 0),
        Outcome::Dropped { policy: 1 }
    );
    // A failing health check is not dropped: only one of the drop sub-policies matches.
    let failing = with(health.clone(), |x| x.status = StatusCode::Error);
    let mut only_failing = policies(yaml);
    // ... status mask contains ERROR only, so `ok` does not match.
    assert!(kept(&mut only_failing, &[failing]));

    let mut and = one(
        "{name: p, type: and, and: {and_sub_policy: [{name: a, type: status_code, status_code: {status_codes: [ERROR]}}, {name: b, type: string_attribute, string_attribute: {key: service.name, values: [pay]}}]}}",
    );
    let err = with(s("x"), |x| x.status = StatusCode::Error);
    assert!(!kept(&mut and, std::slice::from_ref(&err)));
    let err_pay = with(err, |x| {
        x.resource = vec![KeyValue::new("service.name", "pay")]
    });
    assert!(kept(&mut and, &[err_pay]));

    let mut not = one(
        "{name: p, type: not, not: {not_sub_policy: {name: q, type: status_code, status_code: {status_codes: [ERROR]}}}}",
    );
    assert!(kept(&mut not, &[s("a")]));
    assert!(!kept(
        &mut not,
        &[with(s("a"), |x| x.status = StatusCode::Error)]
    ));
}

#[test]
fn rate_limiting_is_a_token_bucket_of_spans() {
    let mut set = one("{name: p, type: rate_limiting, rate_limiting: {spans_per_second: 10}}");
    let three = [s("a"), s("b"), s("c")];
    // Capacity is twice the rate: 20 spans, so six 3-span traces pass at t=0.
    let passed = (0..10)
        .filter(|_| kept_at(&mut set, &three, TraceId([1; 16]), 0))
        .count();
    assert_eq!(passed, 6);
    // 2 spans were left; half a second refills 5: two more traces.
    let passed = (0..10)
        .filter(|_| kept_at(&mut set, &three, TraceId([1; 16]), 500 * MS))
        .count();
    assert_eq!(passed, 2);
}

#[test]
fn bytes_limiting_is_a_token_bucket_of_bytes_with_a_burst_capacity() {
    let mut set = one(
        "{name: p, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1000, burst_capacity: 3000}}",
    );
    let spans = [s("a")];
    let v = views(&spans);
    let mut t = summarize(TraceId([1; 16]), &v);
    t.bytes = 1000;
    let decide = |set: &mut PolicySet, now| matches!(set.decide(&t, now), Outcome::Sampled { .. });
    assert!(decide(&mut set, 0));
    assert!(decide(&mut set, 0));
    assert!(decide(&mut set, 0));
    assert!(!decide(&mut set, 0), "burst of 3000 bytes spent");
    assert!(!decide(&mut set, 500 * MS), "only 500 bytes refilled");
    assert!(decide(&mut set, 1000 * MS));
    // Default burst is twice the rate.
    let mut default_burst =
        one("{name: p, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1000}}");
    assert!(decide(&mut default_burst, 0));
    assert!(decide(&mut default_burst, 0));
    assert!(!decide(&mut default_burst, 0));
}

#[test]
fn composite_allocates_the_span_rate_across_sub_policies_in_order() {
    let yaml = r#"
policies:
  - name: comp
    type: composite
    composite:
      max_total_spans_per_second: 100
      policy_order: [errors, everything]
      composite_sub_policy:
        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
        - {name: everything, type: always_sample}
      rate_allocation: [{policy: errors, percent: 30}]
"#;
    let mut set = policies(yaml);
    let err = [with(s("a"), |x| x.status = StatusCode::Error)];
    let ok = [s("a")];
    let sec = 1_000 * MS;
    let mut names = std::collections::HashMap::<String, usize>::new();
    for now in [sec, 2 * sec] {
        let mut kept_err = 0;
        let mut kept_ok = 0;
        for _ in 0..200 {
            let v = views(&err);
            if let Outcome::Sampled {
                name, probability, ..
            } = set.decide(&summarize(TraceId([1; 16]), &v), now)
            {
                kept_err += 1;
                *names.entry(name.to_string()).or_default() += 1;
                assert_eq!(probability, None, "rate-dependent");
            }
            let v = views(&ok);
            if let Outcome::Sampled { name, .. } = set.decide(&summarize(TraceId([2; 16]), &v), now)
            {
                kept_ok += 1;
                *names.entry(name.to_string()).or_default() += 1;
            }
        }
        // Errors get their 30 spans/s; the unallocated 70% goes to the rest.
        assert_eq!((kept_err, kept_ok), (30, 70), "second {now}");
    }
    assert_eq!(names["comp/errors"], 60);
    assert_eq!(names["comp/everything"], 140);
}

#[test]
fn the_kept_trace_reports_its_policy_and_probability() {
    let mut set = policies("preset: seed");
    let slow = [with(s("a"), |x| x.end_ms = 5_000)];
    let v = views(&slow);
    match set.decide(&summarize(TraceId([3; 16]), &v), 0) {
        Outcome::Sampled {
            name, probability, ..
        } => {
            assert_eq!(&*name, "slow");
            assert_eq!(probability, Some(1.0));
        }
        other => panic!("{other:?}"),
    }
    // A normal trace kept by the 5% policy stands for 20.
    let normal = [s("a")];
    let v = views(&normal);
    let mut found = false;
    for i in 0..1000u64 {
        if let Outcome::Sampled {
            name, probability, ..
        } = set.decide(&summarize(TraceId::from_halves(i, i * 31), &v), 0)
        {
            assert_eq!(&*name, "rest");
            assert_eq!(probability, Some(0.05));
            found = true;
        }
    }
    assert!(found);
}

#[test]
fn a_policy_without_its_section_is_refused_not_compiled() {
    let yaml = "policies: [{name: slow, type: latency, latency: {threshold_ms: 5}}, \
                {name: both, type: and, and: {and_sub_policy: [{name: inner, type: status_code, \
                status_code: {status_codes: [ERROR]}}]}}]";
    let mut configs = SamplingConfig::from_yaml(yaml)
        .unwrap()
        .effective_policies();
    assert!(PolicySet::compile(&configs).is_ok());
    configs[0].latency = None;
    configs[1].and.as_mut().unwrap().and_sub_policy[0].status_code = None;
    let Err(e) = PolicySet::compile(&configs) else {
        panic!("compiled policies that lack their sections");
    };
    let text: Vec<String> = e.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(e.errors.len(), 2, "{text:?}");
    assert!(
        text[0].contains("\"slow\"") && text[0].contains("latency"),
        "{text:?}"
    );
    assert!(
        text[1].contains("\"inner\"") && text[1].contains("status_code"),
        "{text:?}"
    );
}
