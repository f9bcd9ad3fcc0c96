mod across;

use across::{MS, S, SEC, T0, assemble};
use stitch_analysis::{OVERFLOW_OPERATION, RedAggregator, RedOptions, RedRow, TimeWindow};
use stitch_model::{SpanKind, Trace, TraceId};

/// Ten requests to `api` in the first ten seconds, one per second, taking 10, 20, ... 100 ms;
/// the 3rd and the 7th fail. Each makes a 5 ms database call and a call to `auth` (whose
/// server span is a child of api's server span: no client span).
fn known_set() -> Vec<Trace> {
    let mut spans = Vec::new();
    for i in 0..10u64 {
        let t = TraceId::from_halves(7, i + 1);
        let b = T0 + i * SEC;
        let mut root = S::new(
            "api",
            t,
            1,
            None,
            "GET /users",
            SpanKind::Server,
            b,
            b + (i + 1) * 10 * MS,
        );
        if i == 2 || i == 6 {
            root = root.error();
        }
        spans.push(root);
        spans.push(
            S::new(
                "api",
                t,
                2,
                Some(1),
                "SELECT",
                SpanKind::Client,
                b + MS,
                b + 6 * MS,
            )
            .attr("db.system", "postgresql"),
        );
        spans.push(S::new(
            "auth",
            t,
            3,
            Some(1),
            "check",
            SpanKind::Internal,
            b + MS,
            b + 3 * MS,
        ));
    }
    assemble(spans)
}

fn row<'a>(rows: &'a [RedRow], service: &str, operation: Option<&str>) -> &'a RedRow {
    rows.iter()
        .find(|r| r.service == service && r.operation.as_deref() == operation)
        .unwrap_or_else(|| panic!("no row {service} {operation:?} in {rows:#?}"))
}

fn within_one_percent(actual: u64, expected: u64) -> bool {
    (actual as f64 - expected as f64).abs() <= expected as f64 * 0.01 + 0.5
}

#[test]
fn red_numbers_per_service_and_operation_match_a_known_set_of_spans() {
    let mut red = RedAggregator::default();
    for t in &known_set() {
        red.add_trace(t);
    }
    let window = TimeWindow::new(T0, T0 + 10 * SEC);
    let rows = red.snapshot(window);

    let api = row(&rows, "api", None);
    assert_eq!(api.requests, 10.0);
    assert_eq!(api.sampled_spans, 10);
    assert_eq!(api.rate_per_second, 1.0);
    assert_eq!(api.errors, 2.0);
    assert_eq!(api.error_rate, 0.2);
    assert!(
        within_one_percent(api.p50_nanos, 50 * MS),
        "{}",
        api.p50_nanos
    );
    assert!(
        within_one_percent(api.p95_nanos, 100 * MS),
        "{}",
        api.p95_nanos
    );
    assert_eq!(api.p99_nanos, 100 * MS);
    assert_eq!(api.max_nanos, 100 * MS);
    assert_eq!(api.mean_nanos, 55 * MS);
    assert_eq!(api.span_kind, None);

    let server = row(&rows, "api", Some("GET /users"));
    assert_eq!(server.span_kind.as_deref(), Some("server"));
    assert_eq!((server.requests, server.errors), (10.0, 2.0));
    let db = row(&rows, "api", Some("SELECT"));
    assert_eq!(db.span_kind.as_deref(), Some("client"));
    assert_eq!(db.error_rate, 0.0);
    assert!(within_one_percent(db.p99_nanos, 5 * MS));

    // auth's span is an entry (its parent belongs to api), so auth gets a service row.
    let auth = row(&rows, "auth", None);
    assert_eq!(auth.requests, 10.0);
    assert!(within_one_percent(auth.p50_nanos, 2 * MS));

    // Service rows come first within a service; services are in name order.
    let order: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.service.as_str(), r.operation.as_deref()))
        .collect();
    assert_eq!(
        order,
        vec![
            ("api", None),
            ("api", Some("GET /users")),
            ("api", Some("SELECT")),
            ("auth", None),
            ("auth", Some("check")),
        ]
    );
}

#[test]
fn a_window_counts_only_the_buckets_inside_it() {
    let mut red = RedAggregator::default();
    for t in &known_set() {
        red.add_trace(t);
    }
    assert!(
        red.snapshot(TimeWindow::new(T0 + 20 * SEC, T0 + 30 * SEC))
            .is_empty()
    );
    // The first five seconds fall in the first 10 s bucket: the window widens to it.
    let w = TimeWindow::new(T0 + SEC, T0 + 5 * SEC);
    assert_eq!(red.aligned_window(w), TimeWindow::new(T0, T0 + 10 * SEC));
    // Late spans older than every kept bucket are counted, not added.
    let mut small = RedAggregator::new(RedOptions {
        max_buckets: 1,
        ..Default::default()
    });
    let traces = known_set();
    small.add_trace(&traces[0]);
    let later = {
        let t = TraceId::from_halves(9, 9);
        assemble(vec![S::new(
            "api",
            t,
            1,
            None,
            "GET /users",
            SpanKind::Server,
            T0 + 60 * SEC,
            T0 + 61 * SEC,
        )])
    };
    small.add_trace(&later[0]);
    small.add_trace(&traces[1]);
    assert_eq!(small.dropped_spans(), 3);
    assert_eq!(
        small.covered_window(),
        Some(TimeWindow::new(T0 + 60 * SEC, T0 + 70 * SEC))
    );
}

#[test]
fn sampling_weights_scale_rates_and_errors_but_not_durations() {
    let mut red = RedAggregator::default();
    for t in &known_set() {
        red.add_trace_weighted(t, 10.0);
    }
    let rows = red.snapshot(TimeWindow::new(T0, T0 + 10 * SEC));
    let api = row(&rows, "api", None);
    assert_eq!(api.requests, 100.0);
    assert_eq!(api.sampled_spans, 10);
    assert_eq!(api.rate_per_second, 10.0);
    assert_eq!(api.errors, 20.0);
    assert_eq!(api.error_rate, 0.2);
    assert!(within_one_percent(api.p50_nanos, 50 * MS));
}

#[test]
fn too_many_operation_names_fold_into_one_overflow_row() {
    let mut red = RedAggregator::new(RedOptions {
        max_operations_per_service: 2,
        ..Default::default()
    });
    let t = TraceId::from_halves(1, 1);
    let spans: Vec<S> = (1..=5u64)
        .map(|i| {
            S::new(
                "api",
                t,
                i,
                None,
                &format!("GET /users/{i}"),
                SpanKind::Server,
                T0,
                T0 + MS,
            )
        })
        .collect();
    red.add_trace(&assemble(spans)[0]);
    let rows = red.snapshot(TimeWindow::new(T0, T0 + SEC));
    let ops: Vec<(Option<&str>, f64)> = rows
        .iter()
        .map(|r| (r.operation.as_deref(), r.requests))
        .collect();
    assert_eq!(
        ops,
        vec![
            (None, 5.0),
            (Some(OVERFLOW_OPERATION), 3.0),
            (Some("GET /users/1"), 1.0),
            (Some("GET /users/2"), 1.0),
        ]
    );
}

#[test]
fn merged_aggregators_answer_like_one_that_saw_everything() {
    let traces = known_set();
    let (mut a, mut b, mut all) = (
        RedAggregator::default(),
        RedAggregator::default(),
        RedAggregator::default(),
    );
    for (i, t) in traces.iter().enumerate() {
        (if i % 2 == 0 { &mut a } else { &mut b }).add_trace(t);
        all.add_trace(t);
    }
    assert!(a.merge(&b));
    let w = TimeWindow::new(T0, T0 + 10 * SEC);
    assert_eq!(a.snapshot(w), all.snapshot(w));
}

#[test]
fn red_rows_serialise_with_camel_case_names() {
    let mut red = RedAggregator::default();
    red.add_trace(&known_set()[0]);
    let rows = red.snapshot(TimeWindow::new(T0, T0 + 10 * SEC));
    let json = serde_json::to_value(&rows[0]).unwrap();
    for key in [
        "service",
        "operation",
        "spanKind",
        "requests",
        "sampledSpans",
        "ratePerSecond",
        "errors",
        "errorRate",
        "p50Nanos",
        "p95Nanos",
        "p99Nanos",
        "meanNanos",
        "maxNanos",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
}

#[test]
fn spans_of_one_kind_are_summed_per_service_or_per_operation() {
    let mut red = RedAggregator::default();
    let mut traces = known_set();
    // A second server operation of api: one 1 s request, failed.
    traces.extend(assemble(vec![
        S::new(
            "api",
            TraceId::from_halves(8, 1),
            1,
            None,
            "POST /users",
            SpanKind::Server,
            T0 + 5 * SEC,
            T0 + 6 * SEC,
        )
        .error(),
    ]));
    for t in &traces {
        red.add_trace(t);
    }
    let window = TimeWindow::new(T0, T0 + 10 * SEC);

    let services = red.kind_snapshot(window, &[SpanKind::Server], false, 0.5);
    assert_eq!(services.len(), 1, "{services:#?}");
    let api = &services[0];
    assert_eq!(
        (api.service.as_str(), api.operation.as_deref()),
        ("api", None)
    );
    assert!((api.rate_per_second - 1.1).abs() < 1e-9, "{api:?}");
    assert!((api.error_rate - 3.0 / 11.0).abs() < 1e-9, "{api:?}");
    assert!(
        within_one_percent(api.quantile_nanos.unwrap(), 60 * MS),
        "{api:?}"
    );
    let p95 = red.kind_snapshot(window, &[SpanKind::Server], false, 0.99)[0].quantile_nanos;
    assert!(within_one_percent(p95.unwrap(), 1000 * MS), "{p95:?}");

    let ops = red.kind_snapshot(window, &[SpanKind::Server], true, 0.5);
    let names: Vec<Option<&str>> = ops.iter().map(|r| r.operation.as_deref()).collect();
    assert_eq!(names, [Some("GET /users"), Some("POST /users")]);
    assert_eq!(ops[1].error_rate, 1.0);
    assert!(within_one_percent(
        ops[1].quantile_nanos.unwrap(),
        1000 * MS
    ));

    // Client spans: api's database calls only; no kind, no rows.
    let clients = red.kind_snapshot(window, &[SpanKind::Client], true, 0.5);
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].operation.as_deref(), Some("SELECT"));
    assert!(
        red.kind_snapshot(window, &[SpanKind::Producer], false, 0.5)
            .is_empty()
    );

    // Several kinds at once are one series: api's 11 server and 10 client spans.
    let both = red.kind_snapshot(window, &[SpanKind::Server, SpanKind::Client], false, 0.99);
    assert_eq!(both.len(), 1, "{both:#?}");
    assert!((both[0].rate_per_second - 2.1).abs() < 1e-9, "{both:?}");
    assert!((both[0].error_rate - 3.0 / 21.0).abs() < 1e-9, "{both:?}");
    assert!(within_one_percent(
        both[0].quantile_nanos.unwrap(),
        1000 * MS
    ));
}
