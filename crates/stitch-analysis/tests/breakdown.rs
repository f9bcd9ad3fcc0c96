mod across;
mod common;

use across::{MS, Rng, S, T0, assemble};
use stitch_analysis::{Endpoint, SpanTree, critical_path, latency_breakdown, simple_critical_path};
use stitch_model::{SpanId, SpanKind, Trace, TraceId};

#[test]
fn the_fallback_critical_path_walks_the_last_finishing_child_of_the_seed_checkout() {
    let trace = common::checkout();
    let path = simple_critical_path(&trace);
    let total: u64 = path.iter().map(|s| s.1).sum();
    assert_eq!(total, 2400 * MS);
    let per_span = |id: u64| -> u64 {
        path.iter()
            .filter(|s| s.0 == SpanId::from_u64(id))
            .map(|s| s.1)
            .sum()
    };
    assert_eq!(per_span(6), 1200 * MS, "fraud check");
    assert_eq!(per_span(7), 580 * MS, "payment gateway API");
    assert_eq!(per_span(8), 320 * MS, "inventory");
    assert_eq!(per_span(4), 150 * MS, "cart's database query");
    assert_eq!(per_span(2), 45 * MS, "auth");
    assert_eq!(
        per_span(5),
        20 * MS,
        "payment's own time around its two calls"
    );
    assert_eq!(per_span(1), 55 * MS, "the gateway's own time between calls");
}

#[test]
fn a_producer_does_not_wait_for_its_consumer() {
    let t = TraceId::from_halves(1, 1);
    let traces = assemble(vec![
        S::new(
            "api",
            t,
            1,
            None,
            "POST",
            SpanKind::Server,
            T0,
            T0 + 10 * MS,
        ),
        S::new(
            "api",
            t,
            2,
            Some(1),
            "send",
            SpanKind::Producer,
            T0 + MS,
            T0 + 9 * MS,
        ),
        S::new(
            "worker",
            t,
            3,
            Some(2),
            "recv",
            SpanKind::Consumer,
            T0 + 2 * MS,
            T0 + 8 * MS,
        ),
    ]);
    let path = simple_critical_path(&traces[0]);
    assert!(path.iter().all(|s| s.0 != SpanId::from_u64(3)));
    assert_eq!(path.iter().map(|s| s.1).sum::<u64>(), 10 * MS);
}

/// Seed 003's playback start: CDN redirect 40%, DRM license fetch 30%, manifest parsing 20%,
/// video buffering 10% of every trace, back to back.
fn playback(n: u64) -> Vec<Trace> {
    let mut rng = Rng::new(3);
    let mut spans = Vec::new();
    for i in 0..n {
        let t = TraceId::from_halves(3, i + 1);
        let b = T0 + i * 2_000 * MS;
        let d = rng.range(800, 1200) * MS;
        let mut at = b;
        spans.push(S::new(
            "player",
            t,
            1,
            None,
            "playback-start",
            SpanKind::Server,
            b,
            b + d,
        ));
        for (id, (service, op, pct)) in [
            ("cdn", "CDN redirect", 40),
            ("drm", "DRM license fetch", 30),
            ("manifest", "Manifest parsing", 20),
            ("buffer", "Video buffering", 10),
        ]
        .into_iter()
        .enumerate()
        {
            let len = d * pct / 100;
            spans.push(S::new(
                service,
                t,
                id as u64 + 2,
                Some(1),
                op,
                SpanKind::Server,
                at,
                at + len,
            ));
            at += len;
        }
    }
    // A trace of another endpoint, which the breakdown leaves out.
    let other = TraceId::from_halves(4, 1);
    spans.push(S::new(
        "player",
        other,
        1,
        None,
        "seek",
        SpanKind::Server,
        T0,
        T0 + 5_000 * MS,
    ));
    assemble(spans)
}

#[test]
fn the_playback_start_breakdown_gives_each_service_its_share_and_the_shares_sum_to_100_percent() {
    let traces = playback(50);
    let endpoint = Endpoint::new("player", "playback-start");
    let b = latency_breakdown(&traces, &endpoint, simple_critical_path);
    assert_eq!(b.traces, 50);
    let shares: Vec<(&str, f64)> = b
        .by_service
        .iter()
        .map(|s| (s.service.as_str(), (s.share * 1000.0).round() / 1000.0))
        .collect();
    assert_eq!(
        shares,
        vec![
            ("cdn", 0.4),
            ("drm", 0.3),
            ("manifest", 0.2),
            ("buffer", 0.1)
        ]
    );
    let sum: f64 = b.by_service.iter().map(|s| s.share).sum();
    assert!((sum - 1.0).abs() < 1e-9, "{sum}");
    let sum: f64 = b.by_operation.iter().map(|s| s.share).sum();
    assert!((sum - 1.0).abs() < 1e-9, "{sum}");
    assert_eq!(
        b.by_service.iter().map(|s| s.total_nanos).sum::<u64>(),
        b.total_critical_path_nanos
    );
    assert_eq!(
        b.by_operation[1].operation.as_deref(),
        Some("DRM license fetch")
    );
    assert!(
        b.by_service[0]
            .line
            .starts_with("cdn: 40.0% of the critical path (mean "),
        "{}",
        b.by_service[0].line
    );
    let json = serde_json::to_value(&b).unwrap();
    assert!(json["byService"][0]["meanNanosPerTrace"].is_u64());
}

#[test]
fn any_critical_path_function_plugs_into_the_breakdown() {
    let traces = playback(5);
    let endpoint = Endpoint::new("player", "playback-start");
    // A "critical path" that blames the root for everything.
    let b = latency_breakdown(&traces, &endpoint, |t: &Trace| {
        let (s, e) = t.time_range().unwrap();
        vec![(SpanId::from_u64(1), e - s)]
    });
    assert_eq!(b.by_service.len(), 1);
    assert_eq!(b.by_service[0].service, "player");
    assert_eq!(b.by_service[0].share, 1.0);

    // Spans the path names but the trace lacks are attributed to "(unknown)".
    let b = latency_breakdown(&traces, &endpoint, |_: &Trace| {
        vec![(SpanId::from_u64(99), 10)]
    });
    assert_eq!(b.by_service[0].service, "(unknown)");
}

#[test]
fn the_crate_critical_path_plugs_into_the_breakdown_and_agrees_with_the_fallback() {
    let traces = playback(20);
    let endpoint = Endpoint::new("player", "playback-start");
    let full = |t: &Trace| -> Vec<(SpanId, u64)> {
        critical_path(&SpanTree::build(t))
            .sections
            .iter()
            .map(|s| (s.span_id, s.duration_nanos()))
            .collect()
    };
    let with_full = latency_breakdown(&traces, &endpoint, full);
    let with_fallback = latency_breakdown(&traces, &endpoint, simple_critical_path);
    assert_eq!(with_full.by_service, with_fallback.by_service);
    assert_eq!(with_full.by_operation, with_fallback.by_operation);
}
