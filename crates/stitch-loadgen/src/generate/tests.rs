use std::collections::{HashMap, HashSet};

use super::*;

fn spans_by_trace(batch: &Batch) -> HashMap<TraceId, Vec<(Span, String)>> {
    let mut out: HashMap<TraceId, Vec<(Span, String)>> = HashMap::new();
    for s in batch.spans() {
        out.entry(s.span.trace_id)
            .or_default()
            .push((s.span.clone(), s.service_name().to_owned()));
    }
    out
}

/// Depth of every span (root = 1) and the largest number of children, checking on the way
/// that the spans form one tree.
fn tree_shape(spans: &[(Span, String)]) -> (usize, usize) {
    let ids: HashMap<SpanId, Option<SpanId>> = spans
        .iter()
        .map(|(s, _)| (s.span_id, s.parent_span_id))
        .collect();
    assert_eq!(ids.len(), spans.len(), "span ids are unique within a trace");
    let roots = spans
        .iter()
        .filter(|(s, _)| s.parent_span_id.is_none())
        .count();
    assert_eq!(roots, 1, "one root");
    let mut children: HashMap<SpanId, usize> = HashMap::new();
    let mut max_depth = 0;
    for (s, _) in spans {
        if let Some(p) = s.parent_span_id {
            assert!(ids.contains_key(&p), "every parent is in the trace");
            *children.entry(p).or_default() += 1;
        }
        let mut depth = 1;
        let mut at = s.parent_span_id;
        while let Some(p) = at {
            depth += 1;
            assert!(depth <= spans.len(), "no cycles");
            at = ids[&p];
        }
        max_depth = max_depth.max(depth);
    }
    (max_depth, children.values().copied().max().unwrap_or(0))
}

fn generator(preset: Preset) -> Generator {
    Generator::new(&preset.profile()).unwrap()
}

#[test]
fn shop_traces_have_22_spans_over_ten_services_in_one_tree() {
    let g = generator(Preset::Shop);
    let batch = g.batch(&mut Rng::new(5), 40, 1_700_000_000_000_000_000);
    assert_eq!(batch.span_count(), 40 * 22);
    assert_eq!(batch.resource_spans.len(), 10);
    let traces = spans_by_trace(&batch);
    assert_eq!(traces.len(), 40);
    for spans in traces.values() {
        assert_eq!(spans.len(), Shop::SPANS_PER_TRACE);
        let services: HashSet<&str> = spans.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            services.len(),
            10,
            "every shop trace touches all ten services"
        );
        let (depth, fan_out) = tree_shape(spans);
        assert_eq!(
            depth, 5,
            "frontend → checkout client → server → payment client → server"
        );
        assert_eq!(fan_out, 7, "the frontend root calls seven services");
        for (s, _) in spans {
            assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
            assert!(s.attributes.len() >= 4);
        }
    }
}

#[test]
fn generators_are_deterministic_for_a_seed_and_differ_between_seeds() {
    for preset in Preset::ALL {
        let g = generator(preset);
        let a = g.batch(&mut Rng::for_batch(9, 3), 7, 1_000);
        let b = g.batch(&mut Rng::for_batch(9, 3), 7, 1_000);
        assert_eq!(a, b, "{preset:?}");
        let c = g.batch(&mut Rng::for_batch(9, 4), 7, 1_000);
        assert_ne!(a, c, "{preset:?}");
    }
}

#[test]
fn the_shop_is_what_stitch_bench_measured_before_the_move() {
    // Length and FNV-1a hash of a seed-1 batch encoded as OTLP protobuf, as produced by the
    // shop generator that lived in stitch-bench: figures in BENCHMARKS.md stay comparable.
    let batch = Shop::new().batch(&mut Rng::new(1), 50, 1_700_000_000_000_000_000);
    assert_eq!(batch.span_count(), 1_100);
    let bytes = stitch_wire::otlp::encode_batch(&batch);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    assert_eq!((bytes.len(), h), (323_295, 0x77f9_2280_39ee_daf3));
}

#[test]
fn large_attributes_add_eight_realistic_values_of_the_configured_size() {
    let g = generator(Preset::LargeAttributes);
    let batch = g.batch(&mut Rng::new(2), 10, 0);
    for s in batch.spans() {
        let added: Vec<&KeyValue> = s
            .span
            .attributes
            .iter()
            .filter(|kv| EXTRA_KINDS.iter().any(|(k, _)| *k == kv.key))
            .collect();
        assert_eq!(added.len(), 8);
        for kv in added {
            assert_eq!(kv.value.as_str().unwrap().len(), 256, "{}", kv.key);
        }
    }
    let bytes = stitch_wire::otlp::encode_batch(&batch).len() / batch.span_count();
    assert!((2_200..3_000).contains(&bytes), "{bytes} bytes per span");
    // Realistic, not random: zstd shrinks it several times, but it is not a constant.
    let packed = zstd_free_estimate(&stitch_wire::otlp::encode_batch(&batch));
    assert!(packed > 20, "values vary: {packed} distinct 8-byte chunks");
}

/// Distinct 8-byte chunks (in hundreds): a crude check that values are not all the same.
fn zstd_free_estimate(bytes: &[u8]) -> usize {
    bytes.chunks(8).collect::<HashSet<_>>().len() / 100
}

#[test]
fn synthetic_traces_have_the_configured_shape() {
    for (services, spans, depth, fan_out) in [
        (3, 20, 4, 4),
        (1, 1, 1, 0),
        (8, 100, 10, 3),
        (5, 10, 10, 1),
        (2, 7, 3, 2),
    ] {
        let profile = Profile {
            topology: Topology::Synthetic(Shape {
                services,
                spans_per_trace: spans,
                depth,
                fan_out,
            }),
            ..Preset::Synthetic.profile()
        };
        let g = Generator::new(&profile).unwrap();
        assert_eq!(g.spans_per_trace(), spans);
        let batch = g.batch(&mut Rng::new(3), 30, 0);
        let traces = spans_by_trace(&batch);
        assert_eq!(traces.len(), 30);
        let mut seen_services = HashSet::new();
        for t in traces.values() {
            assert_eq!(t.len(), spans);
            let (d, f) = tree_shape(t);
            assert_eq!(d, depth.min(spans), "{services}/{spans}/{depth}/{fan_out}");
            assert!(f <= fan_out);
            for (s, svc) in t {
                seen_services.insert(svc.clone());
                // Four added attributes of 32 bytes, on top of three HTTP ones.
                assert_eq!(s.attributes.len(), 7);
                if let Some(p) = s.parent_span_id {
                    let parent = &t.iter().find(|(x, _)| x.span_id == p).unwrap().0;
                    assert!(s.start_time_unix_nano >= parent.start_time_unix_nano);
                    assert!(s.end_time_unix_nano <= parent.end_time_unix_nano);
                }
            }
        }
        assert!(seen_services.len() <= services);
        assert!(seen_services.len() >= services.min(2));
    }
}

#[test]
fn a_shape_that_cannot_hold_the_spans_is_an_error() {
    let profile = |spans, depth, fan_out| Profile {
        topology: Topology::Synthetic(Shape {
            services: 2,
            spans_per_trace: spans,
            depth,
            fan_out,
        }),
        ..Preset::Synthetic.profile()
    };
    assert!(matches!(
        Generator::new(&profile(16, 3, 3)),
        Err(ProfileError::TooManySpans { capacity: 13, .. })
    ));
    assert!(Generator::new(&profile(13, 3, 3)).is_ok());
    assert!(matches!(
        Generator::new(&profile(2, 2, 0)),
        Err(ProfileError::TooManySpans { .. })
    ));
    assert_eq!(
        Generator::new(&profile(0, 2, 2)).err(),
        Some(ProfileError::Zero("--spans-per-trace"))
    );
    let bad_rate = Profile {
        error_rate: 1.5,
        ..Preset::Shop.profile()
    };
    assert_eq!(
        Generator::new(&bad_rate).err(),
        Some(ProfileError::Rate("the error rate"))
    );
}

#[test]
fn error_and_slow_rates_are_honoured() {
    for preset in [Preset::Shop, Preset::Synthetic] {
        let profile = Profile {
            error_rate: 0.2,
            slow_rate: 0.1,
            ..preset.profile()
        };
        let g = Generator::new(&profile).unwrap();
        let batch = g.batch(&mut Rng::new(4), 2_000, 0);
        let traces = spans_by_trace(&batch);
        let failed = traces
            .values()
            .filter(|t| t.iter().any(|(s, _)| s.is_error()))
            .count();
        let slow = traces
            .values()
            .filter(|t| t.iter().any(|(s, _)| s.duration_nanos() >= 30_000_000_000))
            .count();
        assert!(
            (300..500).contains(&failed),
            "{preset:?}: {failed} failed of 2000"
        );
        assert!(
            (130..270).contains(&slow),
            "{preset:?}: {slow} slow of 2000"
        );
    }
    let none = Profile {
        error_rate: 0.0,
        slow_rate: 0.0,
        ..Preset::Shop.profile()
    };
    let batch = Generator::new(&none)
        .unwrap()
        .batch(&mut Rng::new(4), 500, 0);
    assert!(batch.spans().all(|s| !s.span.is_error()));
}
