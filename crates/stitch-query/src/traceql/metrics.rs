//! TraceQL metrics: time series computed from the spans a query matches, as Grafana asks
//! Tempo for them (`{ status = error } | rate() by (resource.service.name)`).
//!
//! A metrics query is a spanset pipeline followed by one function, an optional `by(...)` and
//! an optional `| topk(n)` or `| bottomk(n)`:
//!
//! | function | value of a series in each step |
//! |---|---|
//! | `rate()` | matching spans per second |
//! | `count_over_time()` | matching spans |
//! | `min_over_time(f)`, `max_over_time(f)`, `sum_over_time(f)`, `avg_over_time(f)` | of the field's values (durations in seconds) |
//! | `quantile_over_time(f, q, ...)` | the `q` quantile of the values (linear between the nearest ranks), one series per `q`, labelled `p` |
//! | `histogram_over_time(f)` | matching spans per power-of-two bucket of the value, labelled `__bucket` with the bucket's upper bound |
//!
//! A span counts in the step its start falls in; steps are aligned to multiples of the step
//! (Unix time), as Tempo aligns them. `topk(n)` and `bottomk(n)` keep, at each step, the `n`
//! series with the largest (smallest) values. Spans whose `by` field has no value form the
//! series without that label; spans whose function field has no number are left out.
//!
//! The spans are those of the traces with a span in the window that meets the query's plan,
//! read a slice of the window at a time (at most [`TRACES_PER_SLICE`] traces per slice and
//! [`MAX_METRICS_TRACES`] in all); an answer that hit either bound, or [`MAX_SERIES`], says it
//! is partial.

use std::collections::{BTreeMap, HashSet};

use stitch_model::{SpanId, TraceId};

use super::ast::{Metrics, MetricsFn};
use super::eval::{self, TraceIndex};
use super::value::Value;
use super::{QueryError, TraceQl, display, owned, parse};
use crate::{ReadError, SearchQuery, TraceReader};

/// The most traces one metrics query reads.
pub const MAX_METRICS_TRACES: usize = 50_000;
/// The most traces read from one slice of the window.
pub const TRACES_PER_SLICE: usize = 5_000;
/// The most slices the window is read in.
const MAX_SLICES: u64 = 48;
/// The most series an answer holds.
pub const MAX_SERIES: usize = 1_000;
/// The most exemplars kept per series.
pub const EXEMPLARS_PER_SERIES: usize = 10;

/// A parsed metrics query.
#[derive(Clone, Debug)]
pub struct MetricsQuery {
    spans: TraceQl,
    metrics: Metrics,
}

impl MetricsQuery {
    /// Parses and checks `text`, which must end in a metrics function.
    pub fn parse(text: &str) -> Result<MetricsQuery, QueryError> {
        let (pipeline, metrics) = parse::parse(text)?;
        let Some((_, metrics)) = metrics else {
            return Err(QueryError::new(
                text.trim_end().len(),
                "a metrics query ends in a metrics function such as `| rate()` or \
                 `| quantile_over_time(duration, 0.9)`",
            ));
        };
        Ok(MetricsQuery {
            spans: TraceQl::of(pipeline),
            metrics,
        })
    }
}

/// A series' label value, or an exemplar's.
pub type Label = (String, Value<'static>);

/// One span that stands for a series at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub start_unix_nanos: u64,
    /// The span's value of the function's field, or for counting functions the series' value
    /// in the exemplar's step.
    pub value: f64,
}

/// One time series of an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The `by` values, then `p` (quantiles) or `__bucket` (histograms).
    pub labels: Vec<Label>,
    /// (start of the step in Unix nanoseconds, value), for the steps that have a value.
    pub samples: Vec<(u64, f64)>,
    pub exemplars: Vec<Exemplar>,
}

/// What a metrics query computed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsResult {
    pub series: Vec<Series>,
    /// Traces the query was evaluated on.
    pub inspected_traces: usize,
    /// Some traces or series were left out (see the module docs); the message says which.
    pub partial: Option<String>,
}

/// Per step of a series: what the functions need.
#[derive(Clone, Debug, Default)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    values: Vec<f64>,
}

impl Acc {
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Default)]
struct SeriesAcc {
    steps: BTreeMap<u64, Acc>,
    exemplars: Vec<Exemplar>,
}

/// The number a field's value stands for: durations in seconds.
fn number(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Duration(d) => Some(*d as f64 / 1e9),
        _ => None,
    }
}

/// The upper bound of the power-of-two bucket holding `v` (for durations, of the nanoseconds,
/// given back in seconds).
fn bucket_of(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Duration(d) => Some((*d).max(1).unsigned_abs().next_power_of_two() as f64 / 1e9),
        _ => {
            let x = number(v)?;
            if x <= 0.0 {
                return Some(0.0);
            }
            Some(2f64.powi(x.log2().ceil() as i32))
        }
    }
}

/// The `q` quantile of sorted values, linear between the nearest ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    let rank = q * last as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// Computes the query over `[start, end)` (Unix nanoseconds) in steps of `step` nanoseconds,
/// aligned to multiples of the step.
pub async fn query_range(
    reader: &dyn TraceReader,
    query: &MetricsQuery,
    start_unix_nanos: u64,
    end_unix_nanos: u64,
    step_nanos: u64,
) -> Result<MetricsResult, ReadError> {
    let step = step_nanos.max(1);
    let first_step = start_unix_nanos - start_unix_nanos % step;
    compute(
        reader,
        query,
        start_unix_nanos,
        end_unix_nanos,
        step,
        first_step,
    )
    .await
}

/// Computes the query over `[start, end)` as one step: one value per series (a rate is per
/// second of the whole window).
pub async fn query_instant(
    reader: &dyn TraceReader,
    query: &MetricsQuery,
    start_unix_nanos: u64,
    end_unix_nanos: u64,
) -> Result<MetricsResult, ReadError> {
    let end = end_unix_nanos.max(start_unix_nanos + 1);
    compute(
        reader,
        query,
        start_unix_nanos,
        end,
        end - start_unix_nanos,
        start_unix_nanos,
    )
    .await
}

async fn compute(
    reader: &dyn TraceReader,
    query: &MetricsQuery,
    start_unix_nanos: u64,
    end_unix_nanos: u64,
    step: u64,
    first_step: u64,
) -> Result<MetricsResult, ReadError> {
    let end = end_unix_nanos.max(start_unix_nanos + 1);
    let func = &query.metrics.func;
    let plan = query.spans.prefilter().unwrap_or_default();
    let mut series: BTreeMap<SeriesKey, (Vec<Label>, SeriesAcc)> = BTreeMap::new();
    let mut seen: HashSet<TraceId> = HashSet::new();
    let mut partial: Option<String> = None;
    let mut inspected = 0usize;

    // Newest slice first, as the reader answers newest first.
    let slices = (end - start_unix_nanos).div_ceil(step).clamp(1, MAX_SLICES);
    let slice_len = (end - start_unix_nanos).div_ceil(slices);
    'slices: for k in (0..slices).rev() {
        let from = start_unix_nanos + k * slice_len;
        let to = (from + slice_len).min(end);
        if from >= to {
            continue;
        }
        let traces = reader
            .search(&SearchQuery {
                start_unix_nanos: Some(from),
                end_unix_nanos: Some(to - 1),
                limit: TRACES_PER_SLICE,
                ..plan.clone()
            })
            .await?;
        if traces.len() >= TRACES_PER_SLICE {
            partial.get_or_insert_with(|| {
                format!(
                    "more than {TRACES_PER_SLICE} traces in a slice of the window; the newest \
                     {TRACES_PER_SLICE} of it were counted"
                )
            });
        }
        for trace in &traces {
            if !seen.insert(trace.trace_id) {
                continue;
            }
            if inspected >= MAX_METRICS_TRACES {
                partial = Some(format!(
                    "stopped after {MAX_METRICS_TRACES} traces; older spans were not counted"
                ));
                break 'slices;
            }
            inspected += 1;
            let ix = TraceIndex::new(trace);
            let universe = vec![true; ix.spans.len()];
            let mut matched: Vec<usize> = eval::pipeline(&query.spans.pipeline, &ix, &universe)
                .into_iter()
                .flat_map(|s| s.spans)
                .collect();
            matched.sort_unstable();
            matched.dedup();
            for i in matched {
                let span = ix.spans[i].span;
                let t = span.start_time_unix_nano;
                if t < start_unix_nanos || t >= end {
                    continue;
                }
                let at = first_step + (t - first_step) / step * step;
                let mut labels: Vec<Label> = Vec::new();
                for f in &query.metrics.by {
                    let v = eval::span_field(f, &ix, i);
                    if v != Value::Nil {
                        labels.push((display::field(f), owned(v)));
                    }
                }
                let value = match func {
                    MetricsFn::Rate | MetricsFn::CountOverTime => 1.0,
                    MetricsFn::HistogramOverTime(f) => {
                        let Some(b) = bucket_of(&eval::span_field(f, &ix, i)) else {
                            continue;
                        };
                        labels.push(("__bucket".into(), Value::Float(b)));
                        1.0
                    }
                    MetricsFn::MinOverTime(f)
                    | MetricsFn::MaxOverTime(f)
                    | MetricsFn::SumOverTime(f)
                    | MetricsFn::AvgOverTime(f)
                    | MetricsFn::QuantileOverTime(f, _) => {
                        match number(&eval::span_field(f, &ix, i)) {
                            Some(v) => v,
                            None => continue,
                        }
                    }
                };
                let key: SeriesKey = labels
                    .iter()
                    .map(|(n, v)| (n.clone(), LabelKey::of(v)))
                    .collect();
                if !series.contains_key(&key) && series.len() >= MAX_SERIES {
                    partial.get_or_insert_with(|| {
                        format!("more than {MAX_SERIES} series; the others were left out")
                    });
                    continue;
                }
                let (_, acc) = series
                    .entry(key)
                    .or_insert_with(|| (labels, SeriesAcc::default()));
                let step_acc = acc.steps.entry(at).or_default();
                step_acc.add(value);
                if matches!(func, MetricsFn::QuantileOverTime(..)) {
                    step_acc.values.push(value);
                }
                if acc.exemplars.len() < EXEMPLARS_PER_SERIES {
                    acc.exemplars.push(Exemplar {
                        trace_id: trace.trace_id,
                        span_id: span.span_id,
                        start_unix_nanos: t,
                        value,
                    });
                }
            }
        }
    }

    let step_seconds = step as f64 / 1e9;
    let mut out: Vec<Series> = Vec::new();
    for (_, (labels, mut acc)) in series {
        let value_at = |a: &Acc| match func {
            MetricsFn::Rate => a.count as f64 / step_seconds,
            MetricsFn::CountOverTime | MetricsFn::HistogramOverTime(_) => a.count as f64,
            MetricsFn::MinOverTime(_) => a.min,
            MetricsFn::MaxOverTime(_) => a.max,
            MetricsFn::SumOverTime(_) => a.sum,
            MetricsFn::AvgOverTime(_) | MetricsFn::QuantileOverTime(..) => a.sum / a.count as f64,
        };
        match func {
            MetricsFn::QuantileOverTime(_, qs) => {
                for a in acc.steps.values_mut() {
                    a.values.sort_by(f64::total_cmp);
                }
                // Each exemplar goes to the one quantile series nearest its value in its step.
                let nearest: Vec<usize> = acc
                    .exemplars
                    .iter()
                    .map(|e| {
                        let at = first_step + (e.start_unix_nanos - first_step) / step * step;
                        let distance = |q: f64| {
                            acc.steps
                                .get(&at)
                                .map_or(f64::INFINITY, |a| (quantile(&a.values, q) - e.value).abs())
                        };
                        (0..qs.len())
                            .min_by(|&a, &b| distance(qs[a]).total_cmp(&distance(qs[b])))
                            .unwrap_or(0)
                    })
                    .collect();
                for &q in qs {
                    let mut labels = labels.clone();
                    labels.push(("p".into(), Value::Float(q)));
                    let samples: Vec<(u64, f64)> = acc
                        .steps
                        .iter()
                        .map(|(&at, a)| (at, quantile(&a.values, q)))
                        .collect();
                    let exemplars = acc
                        .exemplars
                        .iter()
                        .zip(&nearest)
                        .filter(|(_, n)| qs[**n] == q)
                        .map(|(e, _)| e.clone())
                        .collect();
                    out.push(Series {
                        labels,
                        samples,
                        exemplars,
                    });
                }
            }
            _ => {
                let samples: Vec<(u64, f64)> = match func {
                    // Counting functions have a value (zero) at every step.
                    MetricsFn::Rate | MetricsFn::CountOverTime => {
                        let mut at = first_step;
                        let mut v = Vec::new();
                        while at < end {
                            v.push((at, acc.steps.get(&at).map_or(0.0, value_at)));
                            at += step;
                        }
                        v
                    }
                    _ => acc.steps.iter().map(|(&at, a)| (at, value_at(a))).collect(),
                };
                let counting = matches!(
                    func,
                    MetricsFn::Rate | MetricsFn::CountOverTime | MetricsFn::HistogramOverTime(_)
                );
                let exemplars = acc
                    .exemplars
                    .into_iter()
                    .map(|mut e| {
                        if counting {
                            let at = first_step + (e.start_unix_nanos - first_step) / step * step;
                            e.value = acc.steps.get(&at).map_or(0.0, value_at);
                        }
                        e
                    })
                    .collect();
                out.push(Series {
                    labels,
                    samples,
                    exemplars,
                });
            }
        }
    }
    if let Some((top, n)) = query.metrics.keep {
        keep_extremes(&mut out, top, n);
    }
    Ok(MetricsResult {
        series: out,
        inspected_traces: inspected,
        partial,
    })
}

/// `topk(n)` (`top`) or `bottomk(n)`: at each step, only the `n` series with the largest
/// (smallest) values keep their sample; series left with none are dropped.
fn keep_extremes(series: &mut Vec<Series>, top: bool, n: usize) {
    let mut steps: BTreeMap<u64, Vec<(f64, usize)>> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        for &(at, v) in &s.samples {
            steps.entry(at).or_default().push((v, i));
        }
    }
    let mut kept: HashSet<(u64, usize)> = HashSet::new();
    for (at, mut vs) in steps {
        vs.sort_by(|a, b| {
            let o = a.0.total_cmp(&b.0);
            if top { o.reverse() } else { o }.then(a.1.cmp(&b.1))
        });
        kept.extend(vs.into_iter().take(n).map(|(_, i)| (at, i)));
    }
    for (i, s) in series.iter_mut().enumerate() {
        s.samples.retain(|(at, _)| kept.contains(&(*at, i)));
    }
    series.retain(|s| !s.samples.is_empty());
}

/// A series' labels in a form that orders and compares.
type SeriesKey = Vec<(String, LabelKey)>;

/// A label value in a form that orders and compares (floats by their bits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LabelKey {
    Text(String),
    Number(u64),
}

impl LabelKey {
    fn of(v: &Value<'_>) -> LabelKey {
        match v {
            Value::Float(f) => LabelKey::Number(f.to_bits()),
            other => LabelKey::Text(other.to_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, SpanSink};
    use std::sync::Arc;
    use stitch_model::{Batch, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, StatusCode};

    const SEC: u64 = 1_000_000_000;
    const T0: u64 = 1_700_000_000 * SEC;

    /// Spans of one service, each its own trace: (offset from T0 in seconds, duration in ms,
    /// route, failed).
    fn store(spans: &[(u64, u64, &str, bool)]) -> MemoryStore {
        let store = MemoryStore::default();
        let spans: Vec<Span> = spans
            .iter()
            .enumerate()
            .map(|(n, &(at, ms, route, failed))| {
                let mut s = Span {
                    trace_id: TraceId::from_halves(1, n as u64 + 1),
                    span_id: SpanId::from_u64(n as u64 + 1),
                    name: "GET".into(),
                    start_time_unix_nano: T0 + at * SEC,
                    end_time_unix_nano: T0 + at * SEC + ms * 1_000_000,
                    attributes: vec![KeyValue::new("http.route", route)],
                    ..Default::default()
                };
                if failed {
                    s.status.code = StatusCode::Error;
                }
                s
            })
            .collect();
        let batch = Batch {
            resource_spans: vec![ResourceSpans {
                resource: Arc::new(Resource {
                    attributes: vec![KeyValue::new("service.name", "web")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
            }],
        };
        futures_block_on(store.append(batch, None)).unwrap();
        store
    }

    fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn run(store: &MemoryStore, q: &str, step_s: u64) -> MetricsResult {
        let q = MetricsQuery::parse(q).unwrap();
        futures_block_on(query_range(store, &q, T0, T0 + 60 * SEC, step_s * SEC)).unwrap()
    }

    fn label(s: &Series) -> String {
        s.labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_text()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Each series as (its labels, its samples).
    fn labelled(r: &MetricsResult) -> Vec<(String, Vec<(u64, f64)>)> {
        r.series
            .iter()
            .map(|s| (label(s), s.samples.clone()))
            .collect()
    }

    fn data() -> MemoryStore {
        store(&[
            (1, 100, "/a", false),
            (2, 300, "/a", true),
            (5, 200, "/b", false),
            (12, 400, "/a", false),
            (25, 50, "/b", true),
        ])
    }

    #[test]
    fn rate_and_counts_per_step_by_a_field() {
        let r = run(&data(), "{ } | rate() by (span.http.route)", 10);
        assert_eq!(r.inspected_traces, 5);
        assert_eq!(r.partial, None);
        let by: Vec<(String, Vec<f64>)> = r
            .series
            .iter()
            .map(|s| (label(s), s.samples.iter().map(|x| x.1).collect()))
            .collect();
        assert_eq!(
            by,
            vec![
                (
                    "span.http.route=/a".into(),
                    vec![0.2, 0.1, 0.0, 0.0, 0.0, 0.0]
                ),
                (
                    "span.http.route=/b".into(),
                    vec![0.1, 0.0, 0.1, 0.0, 0.0, 0.0]
                ),
            ]
        );
        assert_eq!(r.series[0].samples[1].0, T0 + 10 * SEC);
        // Steps are aligned to multiples of the step: T0 is 20 s past one of 30 s.
        let errors = run(&data(), "{ status = error } | count_over_time()", 30);
        assert_eq!(errors.series.len(), 1);
        assert_eq!(
            errors.series[0].samples,
            vec![
                (T0 - 20 * SEC, 1.0),
                (T0 + 10 * SEC, 1.0),
                (T0 + 40 * SEC, 0.0)
            ]
        );
        let exemplars = &errors.series[0].exemplars;
        assert_eq!(exemplars.len(), 2);
        assert_eq!(exemplars[0].value, 1.0);
        assert_eq!(
            exemplars
                .iter()
                .map(|e| e.start_unix_nanos)
                .collect::<Vec<_>>(),
            vec![T0 + 25 * SEC, T0 + 2 * SEC],
            "the newest first, as the window is read"
        );
    }

    #[test]
    fn values_of_a_field_in_seconds() {
        let d = data();
        let one = |q: &str| run(&d, q, 60).series[0].samples[0].1;
        assert_eq!(one("{ } | max_over_time(duration)"), 0.4);
        assert_eq!(one("{ } | min_over_time(duration)"), 0.05);
        assert!((one("{ } | sum_over_time(duration)") - 1.05).abs() < 1e-9);
        assert!((one("{ } | avg_over_time(duration)") - 0.21).abs() < 1e-9);
        let q = run(&d, "{ } | quantile_over_time(duration, 0.5, 1)", 60);
        let qs: Vec<(String, f64)> = q
            .series
            .iter()
            .map(|s| (label(s), s.samples[0].1))
            .collect();
        assert_eq!(qs, vec![("p=0.5".into(), 0.2), ("p=1".into(), 0.4)]);
        // Each exemplar stands for exactly one quantile series.
        let exemplars: usize = q.series.iter().map(|s| s.exemplars.len()).sum();
        assert_eq!(exemplars, 5);
        let h = run(&d, "{ } | histogram_over_time(duration)", 60);
        let buckets: Vec<(String, f64)> = h
            .series
            .iter()
            .map(|s| (label(s), s.samples[0].1))
            .collect();
        // 50 ms is in the bucket up to 2^26 ns, 100 ms up to 2^27, 200 ms up to 2^28, 300 and
        // 400 ms up to 2^29.
        assert_eq!(
            buckets,
            vec![
                ("__bucket=0.067108864".into(), 1.0),
                ("__bucket=0.134217728".into(), 1.0),
                ("__bucket=0.268435456".into(), 1.0),
                ("__bucket=0.536870912".into(), 2.0),
            ]
        );
    }

    #[test]
    fn an_instant_query_is_one_step_over_the_window() {
        let q = MetricsQuery::parse("{ } | rate() by (span.http.route)").unwrap();
        let r = futures_block_on(query_instant(&data(), &q, T0, T0 + 50 * SEC)).unwrap();
        let got = labelled(&r);
        assert_eq!(
            got,
            vec![
                ("span.http.route=/a".into(), vec![(T0, 3.0 / 50.0)]),
                ("span.http.route=/b".into(), vec![(T0, 2.0 / 50.0)]),
            ]
        );
    }

    #[test]
    fn topk_keeps_the_largest_series_at_each_step() {
        // Two steps of 60 s from T0 - 20 s: /a counts 3 and 0, /b 2 and 0; ties go to the
        // series that sorts first.
        let r = run(
            &data(),
            "{ } | count_over_time() by (span.http.route) | topk(1)",
            60,
        );
        let got = labelled(&r);
        assert_eq!(
            got,
            vec![(
                "span.http.route=/a".into(),
                vec![(T0 - 20 * SEC, 3.0), (T0 + 40 * SEC, 0.0)]
            )]
        );
        let r = run(
            &data(),
            "{ } | count_over_time() by (span.http.route) | bottomk(1)",
            60,
        );
        let got = labelled(&r);
        assert_eq!(
            got,
            vec![
                ("span.http.route=/a".into(), vec![(T0 + 40 * SEC, 0.0)]),
                ("span.http.route=/b".into(), vec![(T0 - 20 * SEC, 2.0)]),
            ]
        );
    }

    #[test]
    fn metrics_and_searches_are_told_apart() {
        let e = MetricsQuery::parse("{ }").unwrap_err();
        assert!(e.message.contains("metrics function"), "{e}");
        let e = TraceQl::parse("{ } | rate()").unwrap_err();
        assert_eq!(e.position, 6);
        assert!(e.message.contains("/api/metrics/query_range"), "{e}");
        for bad in [
            "{ } | quantile_over_time(duration)",
            "{ } | quantile_over_time(duration, 2)",
            "{ } | max_over_time(name)",
            "{ } | rate() | topk(0)",
            "({ } | rate())",
        ] {
            assert!(MetricsQuery::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "{ } | rate() with(sample=true)",
            "{ kind = server } | histogram_over_time(duration) with(sample=true, exemplars=true)",
            "{ } | quantile_over_time(duration, 0.5, 0.9, 0.99) by (resource.service.name)",
        ] {
            assert!(MetricsQuery::parse(good).is_ok(), "{good}");
        }
    }
}
