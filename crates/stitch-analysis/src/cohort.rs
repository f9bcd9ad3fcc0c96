//! Cohort diff: for one endpoint, where the extra time of slow traces went.
//!
//! The traces of an endpoint are ranked by the duration of their root span. The *slow* cohort
//! is every trace at or above the `slow_quantile` (p99 by default); the *typical* cohort is every
//! trace between the `typical_low` and `typical_high` quantiles (p40–p60). Quantiles are exact
//! nearest-rank quantiles of the durations given.
//!
//! For each cohort the critical path of every trace (see [`crate::breakdown`] for how a
//! critical path is plugged in) is attributed to services and to operations, and averaged per
//! trace. The difference of the averages says where a slow trace spends its extra time:
//! "payment: +1.20s per slow trace, 80% of the difference". Services and operations partition
//! the critical path, so their deltas sum to the whole difference.
//!
//! More dimensions plug in through [`CohortDimension`]: any function that attributes
//! nanoseconds of a trace to labels (for example the time each kind of finding costs). Such a
//! dimension need not partition the critical path, so its shares need not sum to 100%.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use stitch_model::{SpanId, Trace};

use crate::breakdown::{Endpoint, attribute_path, endpoint_root};
use crate::render::format_duration;
use crate::tree::SpanTree;

/// How the cohorts are chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortOptions {
    /// Traces at or above this duration quantile are slow (default 0.99).
    pub slow_quantile: f64,
    /// Lower bound of the typical cohort (default 0.40).
    pub typical_low: f64,
    /// Upper bound of the typical cohort (default 0.60).
    pub typical_high: f64,
    /// Fewer traces of the endpoint than this is an error (default 20).
    pub min_traces: usize,
}

impl Default for CohortOptions {
    fn default() -> Self {
        CohortOptions {
            slow_quantile: 0.99,
            typical_low: 0.40,
            typical_high: 0.60,
            min_traces: 20,
        }
    }
}

/// Why no cohort diff could be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CohortError {
    /// Too few traces of the endpoint for quantiles to mean anything.
    NotEnoughTraces { found: usize, needed: usize },
}

impl fmt::Display for CohortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CohortError::NotEnoughTraces { found, needed } => write!(
                f,
                "found {found} traces of the endpoint; a cohort diff needs at least {needed}"
            ),
        }
    }
}

impl std::error::Error for CohortError {}

/// An extra dimension to compare cohorts on: `attribute` splits a trace's time among labels.
pub struct CohortDimension<'a> {
    /// Name of the dimension in the output (for example `findingKind`).
    pub name: &'a str,
    pub attribute: &'a dyn Fn(&Trace) -> Vec<(String, u64)>,
}

/// How much more (or less) time slow traces spend in one service, operation or label.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CohortDelta {
    /// The service, `service operation`, or the label of an extra dimension.
    pub key: String,
    pub service: Option<String>,
    pub operation: Option<String>,
    /// Mean critical-path nanoseconds per slow trace.
    pub slow_mean_nanos: u64,
    /// Mean critical-path nanoseconds per typical trace.
    pub typical_mean_nanos: u64,
    /// `slow_mean - typical_mean`; negative when slow traces spend less time here.
    pub delta_nanos: i64,
    /// `delta / difference`, where the difference is that of the mean critical-path lengths.
    pub share_of_difference: f64,
    /// "payment: +1.20s per slow trace, 80% of the difference".
    pub line: String,
}

/// The deltas of one extra dimension.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CohortDimensionDiff {
    pub name: String,
    pub deltas: Vec<CohortDelta>,
}

/// Slow versus typical traces of one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CohortDiff {
    pub endpoint: Endpoint,
    /// Traces of the endpoint considered.
    pub traces: usize,
    pub slow_traces: usize,
    pub typical_traces: usize,
    /// Root duration at the slow quantile: every slow trace took at least this long.
    pub slow_threshold_nanos: u64,
    /// Root durations bounding the typical cohort.
    pub typical_low_nanos: u64,
    pub typical_high_nanos: u64,
    /// Mean critical-path length of a slow and of a typical trace.
    pub slow_mean_nanos: u64,
    pub typical_mean_nanos: u64,
    /// `slow_mean - typical_mean`.
    pub difference_nanos: i64,
    /// Largest delta first.
    pub by_service: Vec<CohortDelta>,
    /// Largest delta first.
    pub by_operation: Vec<CohortDelta>,
    /// Deltas of the extra dimensions, in the order given.
    pub extra: Vec<CohortDimensionDiff>,
    /// Plain-language summary: one headline, then the main contributors.
    pub summary: Vec<String>,
}

/// Nearest-rank quantile of sorted values.
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let n = sorted.len();
    let rank = (q.clamp(0.0, 1.0) * n as f64 * (1.0 - 1e-12)).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Compares slow and typical traces of `endpoint` by service and by operation.
pub fn cohort_diff<F>(
    traces: &[Trace],
    endpoint: &Endpoint,
    opts: &CohortOptions,
    critical_path: F,
) -> Result<CohortDiff, CohortError>
where
    F: Fn(&Trace) -> Vec<(SpanId, u64)>,
{
    cohort_diff_with(traces, endpoint, opts, critical_path, &[])
}

/// [`cohort_diff`] with extra dimensions (the hook for finding kinds and other labels).
pub fn cohort_diff_with<F>(
    traces: &[Trace],
    endpoint: &Endpoint,
    opts: &CohortOptions,
    critical_path: F,
    dimensions: &[CohortDimension<'_>],
) -> Result<CohortDiff, CohortError>
where
    F: Fn(&Trace) -> Vec<(SpanId, u64)>,
{
    // (index into traces, root duration)
    let mut matching: Vec<(usize, u64)> = Vec::new();
    for (i, trace) in traces.iter().enumerate() {
        let tree = SpanTree::build(trace);
        if let Some(root) = endpoint_root(&tree, endpoint) {
            let r = tree.node(root);
            matching.push((i, r.end() - r.start()));
        }
    }
    let needed = opts.min_traces.max(2);
    if matching.len() < needed {
        return Err(CohortError::NotEnoughTraces {
            found: matching.len(),
            needed,
        });
    }
    let mut durations: Vec<u64> = matching.iter().map(|m| m.1).collect();
    durations.sort_unstable();
    let slow_threshold = nearest_rank(&durations, opts.slow_quantile);
    let typical_low = nearest_rank(&durations, opts.typical_low);
    let typical_high = nearest_rank(&durations, opts.typical_high);
    let slow: Vec<usize> = matching
        .iter()
        .filter(|m| m.1 >= slow_threshold)
        .map(|m| m.0)
        .collect();
    let typical: Vec<usize> = matching
        .iter()
        .filter(|m| m.1 >= typical_low && m.1 <= typical_high)
        .map(|m| m.0)
        .collect();

    // Attribute the critical paths of both cohorts.
    let mut service_sums = [BTreeMap::new(), BTreeMap::new()];
    let mut op_sums = [BTreeMap::new(), BTreeMap::new()];
    let mut extra_sums: Vec<[BTreeMap<String, u64>; 2]> = dimensions
        .iter()
        .map(|_| [BTreeMap::new(), BTreeMap::new()])
        .collect();
    let mut path_totals = [0u64; 2];
    for (cohort, members) in [&slow, &typical].into_iter().enumerate() {
        for &i in members {
            let trace = &traces[i];
            let tree = SpanTree::build(trace);
            for ((service, op), nanos) in attribute_path(&tree, &critical_path(trace)) {
                path_totals[cohort] += nanos;
                *service_sums[cohort].entry(service.clone()).or_insert(0u64) += nanos;
                *op_sums[cohort].entry((service, op)).or_insert(0u64) += nanos;
            }
            for (d, dim) in dimensions.iter().enumerate() {
                for (label, nanos) in (dim.attribute)(trace) {
                    *extra_sums[d][cohort].entry(label).or_insert(0) += nanos;
                }
            }
        }
    }
    let (n_slow, n_typical) = (slow.len().max(1) as f64, typical.len().max(1) as f64);
    let slow_mean = path_totals[0] as f64 / n_slow;
    let typical_mean = path_totals[1] as f64 / n_typical;
    let difference = slow_mean - typical_mean;

    let by_service = deltas(
        &service_sums,
        n_slow,
        n_typical,
        difference,
        |s: &String| (s.clone(), Some(s.clone()), None),
    );
    let by_operation = deltas(
        &op_sums,
        n_slow,
        n_typical,
        difference,
        |(s, op): &(String, String)| (format!("{s} {op}"), Some(s.clone()), Some(op.clone())),
    );
    let extra = dimensions
        .iter()
        .zip(&extra_sums)
        .map(|(dim, sums)| CohortDimensionDiff {
            name: dim.name.to_owned(),
            deltas: deltas(sums, n_slow, n_typical, difference, |l: &String| {
                (l.clone(), None, None)
            }),
        })
        .collect();

    let mut summary = vec![format!(
        "{endpoint}: slow traces (≥ p{:.0}, {} traces, ≥ {}) spend {} more on the critical path \
         than typical ones (p{:.0}–p{:.0}, {} traces, mean {}).",
        opts.slow_quantile * 100.0,
        slow.len(),
        format_duration(slow_threshold),
        signed_duration(difference),
        opts.typical_low * 100.0,
        opts.typical_high * 100.0,
        typical.len(),
        format_duration(typical_mean.round() as u64),
    )];
    summary.extend(
        by_service
            .iter()
            .filter(|d| d.delta_nanos > 0 && d.share_of_difference >= 0.05)
            .take(3)
            .map(|d| d.line.clone()),
    );

    Ok(CohortDiff {
        endpoint: endpoint.clone(),
        traces: matching.len(),
        slow_traces: slow.len(),
        typical_traces: typical.len(),
        slow_threshold_nanos: slow_threshold,
        typical_low_nanos: typical_low,
        typical_high_nanos: typical_high,
        slow_mean_nanos: slow_mean.round() as u64,
        typical_mean_nanos: typical_mean.round() as u64,
        difference_nanos: difference.round() as i64,
        by_service,
        by_operation,
        extra,
        summary,
    })
}

fn signed_duration(nanos: f64) -> String {
    let sign = if nanos < 0.0 { "−" } else { "+" };
    format!("{sign}{}", format_duration(nanos.abs().round() as u64))
}

fn deltas<K: Ord + Clone>(
    sums: &[BTreeMap<K, u64>; 2],
    n_slow: f64,
    n_typical: f64,
    difference: f64,
    describe: impl Fn(&K) -> (String, Option<String>, Option<String>),
) -> Vec<CohortDelta> {
    let mut keys: Vec<&K> = sums[0].keys().chain(sums[1].keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out: Vec<CohortDelta> = keys
        .into_iter()
        .map(|k| {
            let slow = *sums[0].get(k).unwrap_or(&0) as f64 / n_slow;
            let typical = *sums[1].get(k).unwrap_or(&0) as f64 / n_typical;
            let delta = slow - typical;
            let share = if difference.abs() > 0.0 {
                delta / difference
            } else {
                0.0
            };
            let (key, service, operation) = describe(k);
            let line = if delta >= 0.0 {
                format!(
                    "{key}: {} per slow trace, {:.0}% of the difference",
                    signed_duration(delta),
                    share * 100.0
                )
            } else {
                format!(
                    "{key}: {} per slow trace (less than in typical traces)",
                    signed_duration(delta)
                )
            };
            CohortDelta {
                key,
                service,
                operation,
                slow_mean_nanos: slow.round() as u64,
                typical_mean_nanos: typical.round() as u64,
                delta_nanos: delta.round() as i64,
                share_of_difference: share,
                line,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.delta_nanos
            .cmp(&a.delta_nanos)
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles_pick_sample_values() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 0.99), 99);
        assert_eq!(nearest_rank(&v, 0.40), 40);
        assert_eq!(nearest_rank(&v, 0.0), 1);
        assert_eq!(nearest_rank(&v, 1.0), 100);
    }
}
