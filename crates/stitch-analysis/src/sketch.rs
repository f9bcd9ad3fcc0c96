//! A mergeable quantile sketch with a guaranteed relative error and bounded memory.
//!
//! [`QuantileSketch`] is a log-bucketed histogram in the style of DDSketch: a value `x ≥ 1` goes
//! to the bucket `k = ⌈log_γ x⌉`, which holds the values in `(γ^(k-1), γ^k]`, with
//! `γ = (1 + α) / (1 - α)`. A bucket is reported as `2γ^k / (γ + 1)`, which is within a relative
//! distance `α` of every value the bucket can hold. Zero has a bucket of its own.
//!
//! # Error bound
//!
//! For every `q`, [`QuantileSketch::quantile`] returns a value `v` with `|v - x| ≤ α·x`, where
//! `x` is the exact weighted nearest-rank quantile of the values added (the smallest added value
//! whose cumulative weight reaches `q` times the total weight), plus at most 0.5 from rounding
//! to whole nanoseconds. The default `α` is 1% ([`DEFAULT_RELATIVE_ACCURACY`]). The bound holds
//! as long as the sketch has not collapsed (see below); the minimum and the maximum are exact.
//!
//! # Memory
//!
//! Few distinct buckets are kept as a sorted list, many as a dense array covering the range of
//! buckets in use. Either way a sketch never holds more than `max_bins` buckets
//! ([`DEFAULT_MAX_BINS`] = 2,048, about 16 KiB). At α = 1% a bucket spans 2% of its value, so
//! the whole range of `u64` nanoseconds needs about 2,220 buckets and durations from 1 µs to one
//! hour about 1,100; in practice a sketch of request durations uses a few hundred. When a value
//! would stretch the range beyond `max_bins`, the lowest buckets are folded into the lowest one
//! kept ([`QuantileSketch::is_collapsed`]): low quantiles lose accuracy, high quantiles — the
//! ones latency questions ask about — keep it.
//!
//! # Merging
//!
//! Bucket counts add up, so merging two sketches of the same accuracy gives exactly the sketch of
//! the union of their values (up to floating-point rounding of non-integer weights, and as long
//! as neither collapsed).

use std::fmt;

/// Relative accuracy used by [`QuantileSketch::default`]: 1%.
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;

/// Upper bound on the buckets of a sketch made by [`QuantileSketch::default`].
pub const DEFAULT_MAX_BINS: usize = 2048;

/// Above this many distinct buckets the sparse list becomes a dense array.
const SPARSE_LIMIT: usize = 48;

/// Merging sketches of different relative accuracy is not meaningful.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SketchMismatch {
    pub left: f64,
    pub right: f64,
}

impl fmt::Display for SketchMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot merge sketches of relative accuracy {} and {}",
            self.left, self.right
        )
    }
}

impl std::error::Error for SketchMismatch {}

#[derive(Clone, Debug)]
enum Store {
    /// Sorted by key, no duplicate keys.
    Sparse(Vec<(i32, f64)>),
    /// `bins[i]` is the weight of key `offset + i`.
    Dense { offset: i32, bins: Vec<f64> },
}

/// A quantile sketch over non-negative integer values (nanoseconds, typically), with weights.
/// See the module documentation for the error bound.
#[derive(Clone, Debug)]
pub struct QuantileSketch {
    alpha: f64,
    ln_gamma: f64,
    max_bins: usize,
    zero: f64,
    store: Store,
    weight: f64,
    samples: u64,
    sum: f64,
    min: u64,
    max: u64,
    collapsed: bool,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        QuantileSketch::new(DEFAULT_RELATIVE_ACCURACY)
    }
}

impl PartialEq for QuantileSketch {
    /// Same accuracy, same bucket weights, totals, minimum and maximum, whatever the internal
    /// representation.
    fn eq(&self, other: &Self) -> bool {
        self.alpha == other.alpha
            && self.zero == other.zero
            && self.weight == other.weight
            && self.samples == other.samples
            && self.sum == other.sum
            && self.min == other.min
            && self.max == other.max
            && self.bins().eq(other.bins())
    }
}

impl QuantileSketch {
    /// A sketch with relative accuracy `alpha` (clamped to `[0.0001, 0.5]`) and
    /// [`DEFAULT_MAX_BINS`].
    pub fn new(alpha: f64) -> QuantileSketch {
        QuantileSketch::with_max_bins(alpha, DEFAULT_MAX_BINS)
    }

    /// A sketch with relative accuracy `alpha` (clamped to `[0.0001, 0.5]`) that never holds
    /// more than `max_bins` buckets (at least 16).
    pub fn with_max_bins(alpha: f64, max_bins: usize) -> QuantileSketch {
        let alpha = if alpha.is_finite() {
            alpha.clamp(0.0001, 0.5)
        } else {
            DEFAULT_RELATIVE_ACCURACY
        };
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        QuantileSketch {
            alpha,
            ln_gamma: gamma.ln(),
            max_bins: max_bins.max(16),
            zero: 0.0,
            store: Store::Sparse(Vec::new()),
            weight: 0.0,
            samples: 0,
            sum: 0.0,
            min: u64::MAX,
            max: 0,
            collapsed: false,
        }
    }

    /// The relative accuracy `α` the sketch guarantees.
    pub fn relative_accuracy(&self) -> f64 {
        self.alpha
    }

    /// Adds one value with weight 1.
    pub fn add(&mut self, value: u64) {
        self.add_weighted(value, 1.0);
    }

    /// Adds one value standing for `weight` values (a sampling weight, `1 / probability`).
    /// Weights that are not finite and positive are ignored.
    pub fn add_weighted(&mut self, value: u64, weight: f64) {
        if !(weight.is_finite() && weight > 0.0) {
            return;
        }
        self.samples += 1;
        self.weight += weight;
        self.sum += value as f64 * weight;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if value == 0 {
            self.zero += weight;
        } else {
            let key = self.key(value);
            self.add_to_key(key, weight);
        }
    }

    /// Adds every value of `other` to this sketch.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<(), SketchMismatch> {
        if self.alpha != other.alpha {
            return Err(SketchMismatch {
                left: self.alpha,
                right: other.alpha,
            });
        }
        if other.samples == 0 {
            return Ok(());
        }
        self.samples += other.samples;
        self.weight += other.weight;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero += other.zero;
        self.collapsed |= other.collapsed;
        let bins: Vec<(i32, f64)> = other.bins().collect();
        for (key, w) in bins {
            self.add_to_key(key, w);
        }
        Ok(())
    }

    /// Number of values added (ignoring weights).
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Total weight of the values added (equal to [`QuantileSketch::samples`] with unit
    /// weights).
    pub fn weight(&self) -> f64 {
        self.weight
    }

    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// Weighted sum of the values added.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Weighted mean; `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.sum / self.weight)
    }

    /// Smallest value added (exact).
    pub fn min(&self) -> Option<u64> {
        (self.samples > 0).then_some(self.min)
    }

    /// Largest value added (exact).
    pub fn max(&self) -> Option<u64> {
        (self.samples > 0).then_some(self.max)
    }

    /// Number of non-empty buckets held (the zero bucket excluded).
    pub fn bin_count(&self) -> usize {
        self.bins().count()
    }

    /// True when values were folded into a higher bucket to respect `max_bins`; quantiles
    /// below the lowest bucket kept are then overestimated.
    pub fn is_collapsed(&self) -> bool {
        self.collapsed
    }

    /// The weighted nearest-rank `q`-quantile (`q` clamped to `[0, 1]`), within the relative
    /// accuracy of the exact one; `None` when empty. `quantile(0.0)` is the minimum and
    /// `quantile(1.0)` the maximum.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.samples == 0 || self.weight <= 0.0 {
            return None;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        // The tolerance keeps `q * n` that should be an integer from rounding up past it.
        let rank = (q * self.weight * (1.0 - 1e-12)).max(f64::MIN_POSITIVE);
        let mut cumulative = self.zero;
        if cumulative >= rank {
            return Some(self.min);
        }
        for (key, w) in self.bins() {
            cumulative += w;
            if cumulative >= rank {
                return Some(self.clamp(self.value(key)));
            }
        }
        Some(self.max)
    }

    fn clamp(&self, v: f64) -> u64 {
        let rounded = v.round();
        let as_int = if rounded >= u64::MAX as f64 {
            u64::MAX
        } else {
            rounded as u64
        };
        as_int.clamp(self.min, self.max)
    }

    /// Non-empty buckets in increasing key order.
    fn bins(&self) -> impl Iterator<Item = (i32, f64)> + '_ {
        let (sparse, offset, dense): (&[(i32, f64)], i32, &[f64]) = match &self.store {
            Store::Sparse(v) => (v, 0, &[]),
            Store::Dense { offset, bins } => (&[], *offset, bins),
        };
        sparse.iter().copied().chain(
            dense
                .iter()
                .enumerate()
                .filter(|(_, w)| **w > 0.0)
                .map(move |(i, w)| (offset + i as i32, *w)),
        )
    }

    /// The bucket of `value ≥ 1`: `⌈log_γ value⌉`.
    fn key(&self, value: u64) -> i32 {
        ((value as f64).ln() / self.ln_gamma).ceil() as i32
    }

    /// The representative of bucket `key`: `2γ^key / (γ + 1)`.
    fn value(&self, key: i32) -> f64 {
        let gamma = self.ln_gamma.exp();
        2.0 * (key as f64 * self.ln_gamma).exp() / (gamma + 1.0)
    }

    fn add_to_key(&mut self, key: i32, w: f64) {
        let max_bins = self.max_bins as i64;
        match &mut self.store {
            Store::Sparse(entries) => {
                match entries.binary_search_by_key(&key, |e| e.0) {
                    Ok(i) => entries[i].1 += w,
                    Err(i) => entries.insert(i, (key, w)),
                }
                // Respect max_bins: fold the lowest keys into the lowest key kept.
                if let (Some(first), Some(last)) = (entries.first(), entries.last())
                    && (last.0 as i64 - first.0 as i64 + 1) > max_bins
                {
                    let lowest = (last.0 as i64 - max_bins + 1) as i32;
                    let folded: f64 = entries
                        .iter()
                        .take_while(|e| e.0 < lowest)
                        .map(|e| e.1)
                        .sum();
                    entries.retain(|e| e.0 >= lowest);
                    match entries.binary_search_by_key(&lowest, |e| e.0) {
                        Ok(i) => entries[i].1 += folded,
                        Err(i) => entries.insert(i, (lowest, folded)),
                    }
                    self.collapsed = true;
                }
                if entries.len() > SPARSE_LIMIT {
                    let offset = entries[0].0;
                    let top = entries[entries.len() - 1].0;
                    let mut bins = vec![0.0; (top - offset + 1) as usize];
                    for &(k, w) in entries.iter() {
                        bins[(k - offset) as usize] += w;
                    }
                    self.store = Store::Dense { offset, bins };
                }
            }
            Store::Dense { offset, bins } => {
                let lo = *offset as i64;
                let hi = lo + bins.len() as i64 - 1;
                let k = key as i64;
                if (lo..=hi).contains(&k) {
                    bins[(k - lo) as usize] += w;
                    return;
                }
                let new_hi = hi.max(k);
                let mut new_lo = lo.min(k);
                if new_hi - new_lo + 1 > max_bins {
                    new_lo = new_hi - max_bins + 1;
                    self.collapsed = true;
                }
                let mut new_bins = vec![0.0; (new_hi - new_lo + 1) as usize];
                for (i, &old) in bins.iter().enumerate() {
                    let old_key = (lo + i as i64).max(new_lo);
                    new_bins[(old_key - new_lo) as usize] += old;
                }
                new_bins[(k.max(new_lo) - new_lo) as usize] += w;
                *offset = new_lo as i32;
                *bins = new_bins;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_sketch_has_no_quantiles() {
        let s = QuantileSketch::default();
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.mean(), None);
        assert!(s.is_empty());
    }

    #[test]
    fn zero_and_extremes_are_exact() {
        let mut s = QuantileSketch::default();
        for v in [0, 0, 5, 1_000, 123_456_789] {
            s.add(v);
        }
        assert_eq!(s.quantile(0.0), Some(0));
        assert_eq!(s.quantile(0.4), Some(0));
        assert_eq!(s.quantile(1.0), Some(123_456_789));
        assert_eq!(s.min(), Some(0));
        assert_eq!(s.samples(), 5);
    }

    #[test]
    fn weights_count_as_that_many_values() {
        let mut weighted = QuantileSketch::default();
        weighted.add_weighted(10_000, 9.0);
        weighted.add_weighted(1_000_000, 1.0);
        assert_eq!(weighted.weight(), 10.0);
        let p50 = weighted.quantile(0.5).unwrap();
        assert!((p50 as f64 - 10_000.0).abs() <= 100.0, "{p50}");
        let p95 = weighted.quantile(0.95).unwrap();
        assert!((p95 as f64 - 1_000_000.0).abs() <= 10_000.0, "{p95}");
        weighted.add_weighted(5, f64::NAN);
        weighted.add_weighted(5, -1.0);
        assert_eq!(weighted.samples(), 2);
    }

    #[test]
    fn the_sparse_list_becomes_dense_without_changing_answers() {
        let mut s = QuantileSketch::default();
        let values: Vec<u64> = (1..=200).map(|i| i * 7_919).collect();
        let mut reference = Vec::new();
        for &v in &values {
            s.add(v);
            reference.push(v);
            if reference.len() == SPARSE_LIMIT - 1 {
                assert!(matches!(s.store, Store::Sparse(_)));
            }
        }
        assert!(matches!(s.store, Store::Dense { .. }));
        let p90 = s.quantile(0.9).unwrap() as f64;
        assert!((p90 - 180.0 * 7_919.0).abs() <= 0.01 * 180.0 * 7_919.0 + 0.5);
    }

    #[test]
    fn collapsing_bounds_the_buckets_and_keeps_high_quantiles() {
        let mut s = QuantileSketch::with_max_bins(0.01, 64);
        let mut v = 1u64;
        for _ in 0..60 {
            s.add(v);
            v = v * 3 / 2 + 1;
        }
        assert!(s.is_collapsed());
        assert!(s.bin_count() <= 64);
        let max = s.max().unwrap();
        assert_eq!(s.quantile(1.0), Some(max));
        let p99 = s.quantile(0.99).unwrap() as f64;
        assert!(p99 <= max as f64 * 1.01 + 0.5);
    }

    #[test]
    fn merging_sketches_of_different_accuracy_is_refused() {
        let mut a = QuantileSketch::new(0.01);
        let b = QuantileSketch::new(0.02);
        assert!(a.merge(&b).is_err());
    }
}
