mod across;

use across::{MS, Rng, S, T0, assemble};
use stitch_analysis::{
    CohortDimension, CohortError, CohortOptions, Endpoint, cohort_diff, cohort_diff_with,
    simple_critical_path,
};
use stitch_model::{SpanKind, Trace, TraceId};

/// `n` checkouts: auth, cart, payment and inventory back to back. The traces whose index is
/// in `slow` spend 1.2 s more in payment.
fn checkouts(n: u64, slow: &[u64]) -> Vec<Trace> {
    let mut rng = Rng::new(99);
    let mut spans = Vec::new();
    for i in 0..n {
        let t = TraceId::from_halves(5, i + 1);
        let b = T0 + i * 3_000 * MS;
        let mut at = b + MS;
        let mut children = Vec::new();
        for (id, (service, lo, hi)) in [
            ("auth", 20, 40),
            ("cart", 50, 80),
            ("payment", 100, 140),
            ("inventory", 30, 50),
        ]
        .into_iter()
        .enumerate()
        {
            let mut len = rng.range(lo, hi) * MS;
            if service == "payment" && slow.contains(&i) {
                len += 1_200 * MS;
            }
            children.push(S::new(
                service,
                t,
                id as u64 + 2,
                Some(1),
                &format!("{service} call"),
                SpanKind::Server,
                at,
                at + len,
            ));
            at += len + MS;
        }
        spans.push(S::new(
            "gateway",
            t,
            1,
            None,
            "POST /checkout",
            SpanKind::Server,
            b,
            at + MS,
        ));
        spans.extend(children);
    }
    assemble(spans)
}

#[test]
fn the_cohort_diff_attributes_the_extra_time_of_slow_traces_to_the_planted_slow_service() {
    let traces = checkouts(300, &[17, 101, 202, 250]);
    let endpoint = Endpoint::new("gateway", "POST /checkout");
    let diff = cohort_diff(
        &traces,
        &endpoint,
        &CohortOptions::default(),
        simple_critical_path,
    )
    .unwrap();
    assert_eq!(diff.traces, 300);
    assert_eq!(diff.slow_traces, 4);
    assert!(diff.typical_traces >= 60, "{}", diff.typical_traces);
    assert!(diff.difference_nanos > 1_100 * MS as i64);

    let top = &diff.by_service[0];
    assert_eq!(top.service.as_deref(), Some("payment"));
    assert!(top.share_of_difference > 0.9, "{}", top.share_of_difference);
    assert!(
        top.line.starts_with("payment: +1.2") && top.line.ends_with("% of the difference"),
        "{}",
        top.line
    );
    assert_eq!(diff.by_operation[0].key, "payment payment call");
    // Services partition the critical path, so their deltas add up to the difference.
    let sum: f64 = diff.by_service.iter().map(|d| d.share_of_difference).sum();
    assert!((sum - 1.0).abs() < 1e-6, "{sum}");
    assert_eq!(diff.summary.len(), 2, "{:?}", diff.summary);
    assert!(diff.summary[0].starts_with("gateway POST /checkout: slow traces (≥ p99, 4 traces"));
    assert_eq!(diff.summary[1], top.line);
}

#[test]
fn extra_dimensions_such_as_finding_kinds_plug_in_through_a_hook() {
    let traces = checkouts(100, &[5, 60]);
    let endpoint = Endpoint::new("gateway", "POST /checkout");
    let slowest_leaf = |t: &Trace| -> Vec<(String, u64)> {
        let longest = t
            .spans()
            .filter(|s| s.span.parent_span_id.is_some())
            .map(|s| s.span.duration_nanos())
            .max()
            .unwrap_or(0);
        vec![("dominantLeaf".to_owned(), longest)]
    };
    let dims = [CohortDimension {
        name: "findingKind",
        attribute: &slowest_leaf,
    }];
    let diff = cohort_diff_with(
        &traces,
        &endpoint,
        &CohortOptions::default(),
        simple_critical_path,
        &dims,
    )
    .unwrap();
    assert_eq!(diff.extra.len(), 1);
    assert_eq!(diff.extra[0].name, "findingKind");
    assert_eq!(diff.extra[0].deltas[0].key, "dominantLeaf");
    assert!(diff.extra[0].deltas[0].delta_nanos > 1_100 * MS as i64);
    let json = serde_json::to_value(&diff).unwrap();
    assert!(json["byService"][0]["shareOfDifference"].is_f64());
    assert_eq!(json["extra"][0]["name"], "findingKind");
}

#[test]
fn too_few_traces_for_a_cohort_diff_is_an_explained_error() {
    let traces = checkouts(5, &[]);
    let endpoint = Endpoint::new("gateway", "POST /checkout");
    let err = cohort_diff(
        &traces,
        &endpoint,
        &CohortOptions::default(),
        simple_critical_path,
    )
    .unwrap_err();
    assert_eq!(
        err,
        CohortError::NotEnoughTraces {
            found: 5,
            needed: 20
        }
    );
    assert!(err.to_string().contains("at least 20"));
}
