//! RED (rate, errors, duration) per service and per operation, maintained incrementally.
//!
//! [`RedAggregator`] takes traces (or single spans) as they arrive and keeps, per time bucket
//! of [`RedOptions::resolution_nanos`], a weighted count, an error count and a
//! [`QuantileSketch`] of durations for every key. [`RedAggregator::snapshot`] merges the buckets
//! of a window into [`RedRow`]s. Nothing is recomputed from stored spans; nothing reads a clock.
//!
//! # What is counted
//!
//! * **Per service** (`operation: None`): the service's *entry spans* — spans whose parent is
//!   not in the trace or belongs to another service, and every SERVER or CONSUMER span. These
//!   are the requests the service served; their duration is what its callers waited for.
//! * **Per operation**: every span, keyed by service, span name and span kind (a CLIENT span
//!   `GET /users` and a SERVER span `GET /users` are different rows).
//!
//! A span is placed in the bucket of its start time. A window is widened to whole buckets
//! ([`RedAggregator::aligned_window`]) and rates are per second of that widened window.
//!
//! # Sampling weights
//!
//! Every span counts as `weight` requests (`1 / sampling probability`, default 1), so a trace
//! kept by a 10% sampler can be added with weight 10 and the rates and quantiles estimate the
//! unsampled traffic. `sampledSpans` keeps the raw number of spans seen.
//!
//! # Bounded memory
//!
//! At most [`RedOptions::max_buckets`] buckets are kept; when a new bucket is needed the oldest
//! is dropped, and spans older than every kept bucket are counted in
//! [`RedAggregator::dropped_spans`] instead of being added. Per bucket, a service gets at most
//! [`RedOptions::max_operations_per_service`] operation rows; spans of further operations are
//! counted under [`OVERFLOW_OPERATION`] (span names with ids in them would otherwise grow the
//! table without bound).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use serde::Serialize;
use stitch_model::{Span, SpanKind, SpanRef, Trace};

use crate::sketch::{DEFAULT_RELATIVE_ACCURACY, QuantileSketch};
use crate::tree::SpanTree;

/// One second in nanoseconds.
pub(crate) const SECOND: u64 = 1_000_000_000;

/// The operation name that collects spans past [`RedOptions::max_operations_per_service`].
pub const OVERFLOW_OPERATION: &str = "(other operations)";

/// A half-open time interval `[start, end)` in Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeWindow {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

impl TimeWindow {
    /// `[start, end)`; an `end` before `start` gives an empty window.
    pub fn new(start_unix_nano: u64, end_unix_nano: u64) -> TimeWindow {
        TimeWindow {
            start_unix_nano,
            end_unix_nano: end_unix_nano.max(start_unix_nano),
        }
    }

    /// Every representable time.
    pub fn all() -> TimeWindow {
        TimeWindow::new(0, u64::MAX)
    }

    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano - self.start_unix_nano
    }

    pub fn contains(&self, t: u64) -> bool {
        (self.start_unix_nano..self.end_unix_nano).contains(&t)
    }
}

/// Time-bucketed state shared by [`RedAggregator`] and the dependency graph.
#[derive(Clone, Debug)]
pub(crate) struct TimeBuckets<B> {
    resolution: u64,
    max_buckets: usize,
    buckets: BTreeMap<u64, B>,
    dropped: u64,
}

impl<B: Default> TimeBuckets<B> {
    pub(crate) fn new(resolution: u64, max_buckets: usize) -> Self {
        TimeBuckets {
            resolution: resolution.max(1),
            max_buckets: max_buckets.max(1),
            buckets: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// The bucket holding time `t`, created if needed; `None` (and counted as dropped) when `t`
    /// is older than every kept bucket and no more buckets may be kept.
    pub(crate) fn slot(&mut self, t: u64) -> Option<&mut B> {
        let start = t - t % self.resolution;
        if !self.buckets.contains_key(&start) && self.buckets.len() >= self.max_buckets {
            let oldest = self.buckets.keys().next().copied().unwrap_or(start);
            if start < oldest {
                self.dropped += 1;
                return None;
            }
            self.buckets.pop_first();
        }
        Some(self.buckets.entry(start).or_default())
    }

    /// `window` widened to whole buckets.
    pub(crate) fn aligned(&self, window: TimeWindow) -> TimeWindow {
        let r = self.resolution;
        let start = window.start_unix_nano - window.start_unix_nano % r;
        let end = match window.end_unix_nano % r {
            0 => window.end_unix_nano,
            rem => window.end_unix_nano.saturating_add(r - rem),
        };
        TimeWindow::new(start, end)
    }

    /// The buckets that start inside `window` widened to whole buckets.
    pub(crate) fn in_window(&self, window: TimeWindow) -> impl Iterator<Item = &B> {
        let w = self.aligned(window);
        self.buckets
            .range(w.start_unix_nano..w.end_unix_nano)
            .map(|(_, b)| b)
    }

    /// The time range the kept buckets cover; `None` when empty.
    pub(crate) fn covered(&self) -> Option<TimeWindow> {
        let first = *self.buckets.keys().next()?;
        let last = *self.buckets.keys().next_back()?;
        Some(TimeWindow::new(first, last.saturating_add(self.resolution)))
    }

    /// A copy holding the buckets that overlap `window`, with no limit on the buckets it may
    /// add (a short-lived view: see [`RedAggregator::window_copy`]).
    pub(crate) fn window_copy(&self, window: TimeWindow) -> Self
    where
        B: Clone,
    {
        let w = self.aligned(window);
        TimeBuckets {
            resolution: self.resolution,
            max_buckets: usize::MAX,
            buckets: self
                .buckets
                .range(w.start_unix_nano..w.end_unix_nano)
                .map(|(&t, b)| (t, b.clone()))
                .collect(),
            dropped: self.dropped,
        }
    }

    pub(crate) fn prune_before(&mut self, t: u64) {
        let r = self.resolution;
        self.buckets.retain(|&start, _| start.saturating_add(r) > t);
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn resolution(&self) -> u64 {
        self.resolution
    }

    pub(crate) fn buckets(&self) -> impl Iterator<Item = (u64, &B)> {
        self.buckets.iter().map(|(&t, b)| (t, b))
    }
}

/// Merges `src` into `dst` key by key.
pub(crate) fn merge_maps<K: Eq + Hash + Clone, V: Clone>(
    dst: &mut HashMap<K, V>,
    src: &HashMap<K, V>,
    merge: impl Fn(&mut V, &V),
) {
    for (k, v) in src {
        match dst.get_mut(k) {
            Some(d) => merge(d, v),
            None => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

/// How a [`RedAggregator`] buckets and bounds its state.
#[derive(Clone, Debug, PartialEq)]
pub struct RedOptions {
    /// Width of a time bucket (default 10 s). Windows are answered in whole buckets.
    pub resolution_nanos: u64,
    /// Buckets kept (default 360: one hour at 10 s).
    pub max_buckets: usize,
    /// Distinct operation rows per service and bucket (default 1,000).
    pub max_operations_per_service: usize,
    /// Relative accuracy of the duration quantiles (default 1%).
    pub relative_accuracy: f64,
}

impl Default for RedOptions {
    fn default() -> Self {
        RedOptions {
            resolution_nanos: 10 * SECOND,
            max_buckets: 360,
            max_operations_per_service: 1000,
            relative_accuracy: DEFAULT_RELATIVE_ACCURACY,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RedKey {
    service: String,
    /// `None` for the service row.
    operation: Option<(String, SpanKind)>,
}

#[derive(Clone, Debug)]
struct RedCell {
    requests: f64,
    errors: f64,
    spans: u64,
    durations: QuantileSketch,
}

impl RedCell {
    fn new(alpha: f64) -> RedCell {
        RedCell {
            requests: 0.0,
            errors: 0.0,
            spans: 0,
            durations: QuantileSketch::new(alpha),
        }
    }

    fn add(&mut self, duration: u64, error: bool, weight: f64) {
        self.requests += weight;
        if error {
            self.errors += weight;
        }
        self.spans += 1;
        self.durations.add_weighted(duration, weight);
    }

    fn merge(&mut self, other: &RedCell) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.spans += other.spans;
        // Every cell of one aggregator has the same accuracy; `merge` checks across
        // aggregators before calling this.
        let _ = self.durations.merge(&other.durations);
    }
}

#[derive(Clone, Debug, Default)]
struct RedBucket {
    cells: HashMap<RedKey, RedCell>,
    operations_per_service: HashMap<String, usize>,
}

/// One row of RED numbers over a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedRow {
    pub service: String,
    /// The span name; `None` for the row of the whole service (its entry spans).
    pub operation: Option<String>,
    /// `server`, `client`, ... for operation rows (empty for unspecified); `None` for the
    /// service row.
    pub span_kind: Option<String>,
    /// Estimated requests: the sum of the spans' sampling weights.
    pub requests: f64,
    /// Spans actually seen.
    pub sampled_spans: u64,
    /// `requests` per second of the (bucket-aligned) window.
    pub rate_per_second: f64,
    /// Estimated failed requests (weighted).
    pub errors: f64,
    /// `errors / requests`.
    pub error_rate: f64,
    pub p50_nanos: u64,
    pub p95_nanos: u64,
    pub p99_nanos: u64,
    pub mean_nanos: u64,
    pub max_nanos: u64,
}

/// One row of [`RedAggregator::kind_snapshot`].
#[derive(Clone, Debug, PartialEq)]
pub struct KindRow {
    pub service: String,
    /// The span name; `None` for the service's spans of the kind together.
    pub operation: Option<String>,
    /// Estimated spans (the sum of their sampling weights) per second of the window.
    pub rate_per_second: f64,
    /// Estimated failed spans over estimated spans; 0 without spans.
    pub error_rate: f64,
    /// The asked quantile of the durations; `None` without spans.
    pub quantile_nanos: Option<u64>,
}

/// Incremental RED per service and per operation. See the module documentation.
#[derive(Clone, Debug)]
pub struct RedAggregator {
    opts: RedOptions,
    buckets: TimeBuckets<RedBucket>,
}

impl Default for RedAggregator {
    fn default() -> Self {
        RedAggregator::new(RedOptions::default())
    }
}

impl RedAggregator {
    pub fn new(opts: RedOptions) -> RedAggregator {
        let buckets = TimeBuckets::new(opts.resolution_nanos, opts.max_buckets);
        RedAggregator { opts, buckets }
    }

    pub fn options(&self) -> &RedOptions {
        &self.opts
    }

    /// Adds every span of `trace` with weight 1.
    pub fn add_trace(&mut self, trace: &Trace) {
        self.add_trace_weighted(trace, 1.0);
    }

    /// Adds every span of `trace`, each standing for `weight` spans (`1 / sampling
    /// probability`). Entry spans (see the module docs) also count for their service.
    pub fn add_trace_weighted(&mut self, trace: &Trace, weight: f64) {
        self.add_trace_where(trace, |_| weight, |_| true);
    }

    /// Adds the spans of `trace` for which `include` holds, each standing for `weight(span)`
    /// spans (its adjusted count: spans sampled at different probabilities weigh differently).
    /// Whether a span is an entry span is decided from the whole trace, so adding a trace's
    /// spans in parts (say, late spans once more of the trace has arrived) counts each span as
    /// it would be counted with the trace whole.
    pub fn add_trace_where(
        &mut self,
        trace: &Trace,
        weight: impl Fn(&Span) -> f64,
        include: impl Fn(&SpanRef<'_>) -> bool,
    ) {
        let tree = SpanTree::build(trace);
        for (id, node) in tree.nodes() {
            if !include(&node.span_ref()) {
                continue;
            }
            let service = node.service_name();
            let entry = crate::semconv::is_server_like(node.span().kind)
                || tree
                    .parent(id)
                    .is_none_or(|p| tree.node(p).service_name() != service);
            self.add_span(node.span_ref(), entry, weight(node.span()));
        }
    }

    /// Adds one span standing for `weight` spans. `entry` says whether it also counts as a
    /// request of its service (see the module docs); [`RedAggregator::add_trace`] decides this
    /// from the trace.
    pub fn add_span(&mut self, span: SpanRef<'_>, entry: bool, weight: f64) {
        if !(weight.is_finite() && weight > 0.0) {
            return;
        }
        let s = span.span;
        let alpha = self.opts.relative_accuracy;
        let max_ops = self.opts.max_operations_per_service.max(1);
        let Some(bucket) = self.buckets.slot(s.start_time_unix_nano) else {
            return;
        };
        let service = span.service_name();
        let (duration, error) = (s.duration_nanos(), s.is_error());
        if entry {
            let key = RedKey {
                service: service.to_owned(),
                operation: None,
            };
            bucket
                .cells
                .entry(key)
                .or_insert_with(|| RedCell::new(alpha))
                .add(duration, error, weight);
        }
        let mut key = RedKey {
            service: service.to_owned(),
            operation: Some((s.name.clone(), s.kind)),
        };
        if !bucket.cells.contains_key(&key) {
            let ops = bucket
                .operations_per_service
                .entry(service.to_owned())
                .or_insert(0);
            if *ops >= max_ops {
                key.operation = Some((OVERFLOW_OPERATION.to_owned(), s.kind));
            } else {
                *ops += 1;
            }
        }
        bucket
            .cells
            .entry(key)
            .or_insert_with(|| RedCell::new(alpha))
            .add(duration, error, weight);
    }

    /// `window` widened to whole buckets: the interval [`RedAggregator::snapshot`] reports on.
    pub fn aligned_window(&self, window: TimeWindow) -> TimeWindow {
        self.buckets.aligned(window)
    }

    /// The time range of the buckets kept; `None` before the first span.
    pub fn covered_window(&self) -> Option<TimeWindow> {
        self.buckets.covered()
    }

    /// RED rows over `window` (widened to whole buckets), ordered by service, the service row
    /// first, then by operation and kind.
    pub fn snapshot(&self, window: TimeWindow) -> Vec<RedRow> {
        let aligned = self.aligned_window(window);
        let seconds = aligned.duration_nanos() as f64 / SECOND as f64;
        let mut merged: HashMap<RedKey, RedCell> = HashMap::new();
        for bucket in self.buckets.in_window(window) {
            merge_maps(&mut merged, &bucket.cells, RedCell::merge);
        }
        let mut rows: Vec<(RedKey, RedCell)> = merged.into_iter().collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter()
            .map(|(key, cell)| {
                let q = |p| cell.durations.quantile(p).unwrap_or(0);
                RedRow {
                    service: key.service,
                    span_kind: key.operation.as_ref().map(|(_, k)| k.as_str().to_owned()),
                    operation: key.operation.map(|(op, _)| op),
                    requests: cell.requests,
                    sampled_spans: cell.spans,
                    rate_per_second: if seconds > 0.0 {
                        cell.requests / seconds
                    } else {
                        0.0
                    },
                    errors: cell.errors,
                    error_rate: if cell.requests > 0.0 {
                        cell.errors / cell.requests
                    } else {
                        0.0
                    },
                    p50_nanos: q(0.50),
                    p95_nanos: q(0.95),
                    p99_nanos: q(0.99),
                    mean_nanos: cell.durations.mean().unwrap_or(0.0).round() as u64,
                    max_nanos: cell.durations.max().unwrap_or(0),
                }
            })
            .collect()
    }

    /// Spans of the given `kinds` over `window` (widened to whole buckets), per service, or per
    /// service and operation when `by_operation`: estimated requests per second, error rate, and
    /// the `quantile` of their durations (ordered by service, then operation). What Jaeger's
    /// service performance monitoring reads.
    pub fn kind_snapshot(
        &self,
        window: TimeWindow,
        kinds: &[SpanKind],
        by_operation: bool,
        quantile: f64,
    ) -> Vec<KindRow> {
        let aligned = self.aligned_window(window);
        let seconds = aligned.duration_nanos() as f64 / SECOND as f64;
        let mut merged: BTreeMap<(String, Option<String>), RedCell> = BTreeMap::new();
        for bucket in self.buckets.in_window(window) {
            for (key, cell) in &bucket.cells {
                let Some((name, k)) = &key.operation else {
                    continue;
                };
                if !kinds.contains(k) {
                    continue;
                }
                let row = (key.service.clone(), by_operation.then(|| name.clone()));
                match merged.get_mut(&row) {
                    Some(m) => m.merge(cell),
                    None => {
                        merged.insert(row, cell.clone());
                    }
                }
            }
        }
        merged
            .into_iter()
            .map(|((service, operation), cell)| KindRow {
                service,
                operation,
                rate_per_second: if seconds > 0.0 {
                    cell.requests / seconds
                } else {
                    0.0
                },
                error_rate: if cell.requests > 0.0 {
                    cell.errors / cell.requests
                } else {
                    0.0
                },
                quantile_nanos: cell.durations.quantile(quantile),
            })
            .collect()
    }

    /// Adds everything `other` holds (for example the aggregator of another node). Both must
    /// use the same resolution and accuracy; otherwise nothing is merged and `false` is
    /// returned. The operation cap is not re-applied to merged rows.
    pub fn merge(&mut self, other: &RedAggregator) -> bool {
        if self.buckets.resolution() != other.buckets.resolution()
            || self.opts.relative_accuracy != other.opts.relative_accuracy
        {
            return false;
        }
        for (start, theirs) in other.buckets.buckets() {
            if let Some(mine) = self.buckets.slot(start) {
                merge_maps(&mut mine.cells, &theirs.cells, RedCell::merge);
                for (service, n) in &theirs.operations_per_service {
                    let ops = mine
                        .operations_per_service
                        .entry(service.clone())
                        .or_insert(0);
                    *ops = (*ops).max(*n);
                }
            }
        }
        true
    }

    /// A copy of the buckets that overlap `window`: it answers [`RedAggregator::snapshot`]
    /// for `window` as `self` does, and spans added to it (say, of traces still arriving)
    /// change the copy only. Its buckets are not bounded.
    pub fn window_copy(&self, window: TimeWindow) -> RedAggregator {
        RedAggregator {
            opts: self.opts.clone(),
            buckets: self.buckets.window_copy(window),
        }
    }

    /// Drops every bucket that ends at or before `t` (Unix nanoseconds).
    pub fn prune_before(&mut self, t: u64) {
        self.buckets.prune_before(t);
    }

    /// Spans not added because they were older than every bucket kept.
    pub fn dropped_spans(&self) -> u64 {
        self.buckets.dropped()
    }
}
