mod across;

use across::Rng;
use stitch_analysis::QuantileSketch;

/// Durations in nanoseconds over eight decades: a lognormal body around 50 ms, a fast mode
/// around 2 ms and a log-uniform tail from 1 µs to 30 s.
fn sample(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let pick = rng.unit();
            let normal = {
                let (u1, u2) = (rng.unit().max(1e-300), rng.unit());
                (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            };
            let v = if pick < 0.70 {
                (50e6f64.ln() + 0.8 * normal).exp()
            } else if pick < 0.95 {
                (2e6f64.ln() + 0.3 * normal).exp()
            } else {
                (1e3f64.ln() + rng.unit() * (3e10f64.ln() - 1e3f64.ln())).exp()
            };
            v.round().max(1.0) as u64
        })
        .collect()
}

/// The exact weighted nearest-rank quantile the sketch promises to approximate.
fn exact(sorted: &[u64], q: f64) -> u64 {
    let n = sorted.len();
    let rank = (q * n as f64 * (1.0 - 1e-12)).max(f64::MIN_POSITIVE).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

fn quantiles() -> Vec<f64> {
    let mut qs: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    qs.extend([0.001, 0.005, 0.995, 0.999, 0.9999]);
    qs
}

#[test]
fn the_sketch_relative_error_stays_within_its_bound_on_a_large_random_sample() {
    let values = sample(200_000, 42);
    let mut sketch = QuantileSketch::default();
    for &v in &values {
        sketch.add(v);
    }
    let mut sorted = values.clone();
    sorted.sort_unstable();
    let alpha = sketch.relative_accuracy();
    assert_eq!(alpha, 0.01);
    let mut worst = 0.0f64;
    for q in quantiles() {
        let truth = exact(&sorted, q) as f64;
        let estimate = sketch.quantile(q).unwrap() as f64;
        let error = (estimate - truth).abs();
        assert!(
            error <= alpha * truth + 0.5,
            "q={q}: estimate {estimate} vs exact {truth} (relative error {})",
            error / truth
        );
        worst = worst.max(error / truth);
    }
    assert!(
        worst > 0.0,
        "a sketch this small cannot be exact everywhere"
    );
    assert_eq!(sketch.min(), Some(sorted[0]));
    assert_eq!(sketch.max(), Some(*sorted.last().unwrap()));
    assert_eq!(sketch.samples(), 200_000);
    // Eight decades at 1% need fewer than 1,000 buckets.
    assert!(sketch.bin_count() < 1000, "{}", sketch.bin_count());
    assert!(!sketch.is_collapsed());
}

#[test]
fn a_coarser_sketch_keeps_its_own_coarser_bound() {
    let values = sample(50_000, 9);
    let mut sketch = QuantileSketch::new(0.05);
    for &v in &values {
        sketch.add(v);
    }
    let mut sorted = values;
    sorted.sort_unstable();
    for q in quantiles() {
        let truth = exact(&sorted, q) as f64;
        let estimate = sketch.quantile(q).unwrap() as f64;
        assert!((estimate - truth).abs() <= 0.05 * truth + 0.5, "q={q}");
    }
}

#[test]
fn merging_two_sketches_equals_one_sketch_of_the_union() {
    let values = sample(100_000, 7);
    let (left, right) = values.split_at(37_000);
    let mut a = QuantileSketch::default();
    let mut b = QuantileSketch::default();
    let mut union = QuantileSketch::default();
    left.iter().for_each(|&v| a.add(v));
    right.iter().for_each(|&v| b.add(v));
    values.iter().for_each(|&v| union.add(v));
    a.merge(&b).unwrap();
    assert_eq!(a, union);
    for q in quantiles() {
        assert_eq!(a.quantile(q), union.quantile(q), "q={q}");
    }
    assert_eq!(a.samples(), 100_000);

    // Merging into an empty sketch, and merging an empty one, change nothing.
    let mut empty = QuantileSketch::default();
    empty.merge(&union).unwrap();
    assert_eq!(empty, union);
    union.merge(&QuantileSketch::default()).unwrap();
    assert_eq!(empty, union);
}

#[test]
fn a_weighted_value_counts_like_that_many_copies() {
    let values = sample(5_000, 1);
    let mut weighted = QuantileSketch::default();
    let mut copies = QuantileSketch::default();
    for &v in &values {
        weighted.add_weighted(v, 4.0);
        for _ in 0..4 {
            copies.add(v);
        }
    }
    assert_eq!(weighted.weight(), copies.weight());
    for q in quantiles() {
        assert_eq!(weighted.quantile(q), copies.quantile(q), "q={q}");
    }
    assert_eq!(weighted.samples(), 5_000);
}
