//! Service-level views computed from the traces stored in a time window: RED time series of one
//! service (rate, errors, duration quantiles) and the service dependency graph with call counts,
//! error counts and latency per edge. The web UI's Services pages draw them.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /api/v1/services/{service}/red?start=&end=&lookback=&step=&limit=` | RED of the service and of each of its operations: a summary over the window and one point per step. |
//! | `GET /api/v1/dependencies?start=&end=&lookback=&limit=` | The dependency graph over the window: services, edges with call and error counts and latency quantiles, and per-service RED summaries. |
//! | `GET /api/v1/services/{service}/dependencies?start=&end=&lookback=&limit=` | The service's deep dependencies over the window: every service it calls directly or through others (`dependsOn`), every service that calls it so (`dependents`: who is affected when it fails), each with its depth and the service before it on a shortest path, and the edges among them. |
//!
//! Parameters (an empty value counts as absent):
//!
//! - `start`, `end`: Unix microseconds, as in `GET /api/traces`. `end` defaults to now and
//!   `start` to `end - lookback`;
//! - `lookback`: a duration such as `15m` or `2d` (default `1h`);
//! - `step` (RED only): the width of a point, a duration (`10s`, `1m`). By default the window
//!   is cut into about 60 points, rounded up to a whole "nice" step (1 s, 2 s, 5 s, 10 s, 15 s,
//!   30 s, 1 m, ...). At most [`MAX_POINTS`] points;
//! - `limit`: the most traces scanned (default [`DEFAULT_SCAN_LIMIT`], at most
//!   [`MAX_SCAN_LIMIT`]). The answer says how many traces it read (`tracesScanned`) and whether
//!   the limit cut the scan short (`truncated`); the newest traces are read first.
//!
//! # How the numbers are made
//!
//! When the server keeps live aggregates (the [`Live`] given to [`router`]: RED and the
//! dependency graph maintained as spans arrive, see `stitch_query::live`) and they cover the
//! window (and, for
//! RED, the step is a multiple of their 10 s resolution), the answer comes from them
//! (`"source": "live"`, `tracesScanned` 0). The aggregates hold traces once they have been quiet
//! for a few seconds; the traces still arriving are read from the store and added to a copy of
//! the window's buckets for the answer (at most [`MAX_PENDING_TRACES`]; more are reported in
//! `pendingTracesLeftOut`), so a trace counts as soon as it is stored (acknowledged; with tail
//! sampling, kept). Otherwise (a window older than the live buckets or than the store's start,
//! another reader) it is computed from the stored traces
//! (`"source": "scan"`), as follows.
//!
//! The traces come from [`TraceReader::search`] (for RED with the service as filter) over the
//! window. RED uses [`stitch_analysis::RedAggregator`] with a bucket per step; only the spans of
//! the service that start inside the (step-aligned) window are added, so the same span never
//! counts twice and nothing outside the window does. The service row counts the service's
//! entry spans (SERVER or CONSUMER spans, and spans whose parent is absent or of another
//! service): the requests it served. Operation rows count every span, keyed by name and kind.
//! The graph is [`crate::dependencies::graph`] (the one Jaeger's `/api/dependencies` answers
//! from), with error counts and latency quantiles per edge; see `stitch_analysis::graph` for
//! which spans make an edge and how latency and errors are attributed.
//!
//! Timestamps in answers are decimal strings of Unix nanoseconds (they exceed the integers a
//! JavaScript number holds exactly); durations are numbers of nanoseconds. Errors are
//! `{"error": {"code": <HTTP status>, "message": <reason>}}`, as in the rest of `/api/v1`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::Serialize;
use stitch_analysis::{
    DependencyEdge, GraphSnapshot, RedAggregator, RedOptions, RedRow, ServiceNode, TimeWindow,
    TransitiveDependency,
};
use stitch_model::Trace;
use stitch_query::SpanWeights;
use stitch_query::{Live, LiveAggregates, Pending, SearchQuery, TraceReader};

use crate::duration::parse_duration_nanos;
use crate::error::ApiError;
use crate::params::Params;

type Reader = Arc<dyn TraceReader>;

/// The most traces still arriving (not yet in the live aggregates) an answer from them reads
/// and adds.
pub const MAX_PENDING_TRACES: usize = 5_000;
/// Traces scanned when `limit` is absent.
pub const DEFAULT_SCAN_LIMIT: usize = 10_000;
/// The largest `limit` accepted.
pub const MAX_SCAN_LIMIT: usize = 100_000;
/// The most points a RED series may have.
pub const MAX_POINTS: u64 = 1_000;
/// The window when neither `start` nor `lookback` is given: one hour.
const DEFAULT_LOOKBACK_NANOS: u64 = 3_600 * SECOND;
const SECOND: u64 = 1_000_000_000;
/// Points a default step aims at.
const DEFAULT_POINTS: u64 = 60;
/// Steps a default step is rounded up to, in seconds.
const NICE_STEPS: &[u64] = &[
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400, 172_800, 604_800,
];

/// What the service views read: the stored traces, and the live aggregates when the server
/// keeps them.
#[derive(Clone)]
pub(crate) struct Views {
    pub(crate) reader: Reader,
    pub(crate) live: Option<Arc<Live>>,
}

pub fn router(reader: Reader, live: Option<Arc<Live>>) -> Router {
    Router::new()
        .route("/api/v1/services/{service}/red", get(red))
        .route("/api/v1/dependencies", get(dependencies))
        .route(
            "/api/v1/services/{service}/dependencies",
            get(service_dependencies),
        )
        .with_state(Views { reader, live })
}

// ---------------------------------------------------------------------------------------------
// Errors and parameters.

/// A failed request of the service views, written in the native dialect.
pub(crate) type Failure = crate::error::NativeError;

/// The window, scan limit and (for RED) step of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ViewParams {
    /// `[start, end]` in Unix nanoseconds.
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) limit: usize,
    pub(crate) step: u64,
}

/// An optional parameter in Unix microseconds, as nanoseconds.
fn micros_param(params: &Params, name: &str) -> Result<Option<u64>, Failure> {
    params
        .get(name)
        .map(|text| {
            text.parse::<u64>()
                .ok()
                .and_then(|m| m.checked_mul(1_000))
                .ok_or_else(|| {
                    Failure::bad(format!(
                        "unable to parse param '{name}': {text:?} is not a time in Unix microseconds"
                    ))
                })
        })
        .transpose()
}

/// An optional duration parameter (`10s`, `5m`, `1h`), in nanoseconds.
fn duration_param(params: &Params, name: &str) -> Result<Option<u64>, Failure> {
    params
        .get(name)
        .map(|text| {
            parse_duration_nanos(text).ok_or_else(|| {
                Failure::bad(format!(
                    "unable to parse param '{name}': {text:?} is not a duration such as 10s, 5m or 1h"
                ))
            })
        })
        .transpose()
}

/// The window `[start, end]` in Unix nanoseconds from `start`, `end` and `lookback`: `end`
/// defaults to now, `start` to `end - lookback`, `lookback` to one hour.
pub(crate) fn parse_window(params: &Params, now_unix_nanos: u64) -> Result<(u64, u64), Failure> {
    let end = micros_param(params, "end")?.unwrap_or(now_unix_nanos);
    let lookback = match duration_param(params, "lookback")? {
        Some(l) => {
            crate::params::check_window("'lookback'", l)?;
            l
        }
        None => DEFAULT_LOOKBACK_NANOS,
    };
    let start = match micros_param(params, "start")? {
        Some(s) => s,
        None => end.saturating_sub(lookback),
    };
    if end <= start {
        return Err(Failure::bad("'end' must be after 'start'"));
    }
    Ok((start, end))
}

/// The `limit` parameter: `default` when absent or 0, at most `max`.
pub(crate) fn parse_limit(params: &Params, default: usize, max: usize) -> Result<usize, Failure> {
    match params.get("limit") {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(0) => Ok(default),
            Ok(n) if n <= max => Ok(n),
            _ => Err(Failure::bad(format!(
                "unable to parse param 'limit': {text:?} is not an integer from 0 to {max}"
            ))),
        },
    }
}

fn parse_view(params: &Params, now_unix_nanos: u64) -> Result<ViewParams, Failure> {
    let (start, end) = parse_window(params, now_unix_nanos)?;
    let limit = parse_limit(params, DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT)?;
    let span = end - start;
    let step = match duration_param(params, "step")? {
        Some(0) => return Err(Failure::bad("'step' must be longer than zero")),
        Some(step) => step,
        None => default_step(span),
    };
    if span.div_ceil(step) > MAX_POINTS {
        return Err(Failure::bad(format!(
            "'step' is too small for the window: at most {MAX_POINTS} points"
        )));
    }
    Ok(ViewParams {
        start,
        end,
        limit,
        step,
    })
}

/// About [`DEFAULT_POINTS`] points over `span`, rounded up to a nice step.
fn default_step(span: u64) -> u64 {
    let wanted = span.div_ceil(DEFAULT_POINTS);
    NICE_STEPS
        .iter()
        .map(|s| s * SECOND)
        .find(|&s| s >= wanted)
        .unwrap_or_else(|| wanted.div_ceil(86_400 * SECOND) * 86_400 * SECOND)
}

pub(crate) fn query_params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Params, Failure> {
    let Query(pairs) = query.map_err(|e| Failure::bad(format!("malformed query string: {e}")))?;
    Ok(Params::new(pairs))
}

pub(crate) fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The traces with a span (of `service`, when given) starting in the window, newest first.
pub(crate) async fn scan(
    reader: &Reader,
    service: Option<&str>,
    view: &ViewParams,
) -> Result<(Vec<Trace>, bool), Failure> {
    let query = SearchQuery {
        service: service.map(str::to_owned),
        start_unix_nanos: Some(view.start),
        end_unix_nanos: Some(view.end),
        limit: view.limit,
        ..Default::default()
    };
    let traces = reader.search(&query).await?;
    let truncated = traces.len() >= view.limit;
    Ok((traces, truncated))
}

/// Runs CPU-heavy aggregation off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::from(ApiError::internal(format!("aggregation failed: {e}"))))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WindowJson {
    start_unix_nano: String,
    end_unix_nano: String,
}

impl From<TimeWindow> for WindowJson {
    fn from(w: TimeWindow) -> WindowJson {
        WindowJson {
            start_unix_nano: w.start_unix_nano.to_string(),
            end_unix_nano: w.end_unix_nano.to_string(),
        }
    }
}

/// Adds to `agg` every span of `trace` (of `service`, when given) that starts inside `window`.
/// A span counts for its service when it is an entry span: a SERVER or CONSUMER span, or one
/// whose parent is absent or belongs to another service (as `RedAggregator::add_trace` does).
pub(crate) fn add_spans(
    agg: &mut RedAggregator,
    trace: &Trace,
    window: TimeWindow,
    service: Option<&str>,
) {
    let weights = SpanWeights::of(trace);
    agg.add_trace_where(
        trace,
        |s| weights.weight(s),
        |s| {
            service.is_none_or(|name| name == s.service_name())
                && window.contains(s.span.start_time_unix_nano)
        },
    );
}

// ---------------------------------------------------------------------------------------------
// RED.

/// RED series, column by column: element `i` of each list belongs to `timestamps[i]`. Quantiles
/// are `null` for a step without requests.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Series {
    requests: Vec<f64>,
    rate_per_second: Vec<f64>,
    errors: Vec<f64>,
    error_rate: Vec<f64>,
    p50_nanos: Vec<Option<u64>>,
    p95_nanos: Vec<Option<u64>>,
    p99_nanos: Vec<Option<u64>>,
}

impl Series {
    fn push(&mut self, row: Option<&RedRow>) {
        match row {
            Some(r) => {
                self.requests.push(r.requests);
                self.rate_per_second.push(r.rate_per_second);
                self.errors.push(r.errors);
                self.error_rate.push(r.error_rate);
                self.p50_nanos.push(Some(r.p50_nanos));
                self.p95_nanos.push(Some(r.p95_nanos));
                self.p99_nanos.push(Some(r.p99_nanos));
            }
            None => {
                self.requests.push(0.0);
                self.rate_per_second.push(0.0);
                self.errors.push(0.0);
                self.error_rate.push(0.0);
                self.p50_nanos.push(None);
                self.p95_nanos.push(None);
                self.p99_nanos.push(None);
            }
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RedSeriesJson {
    /// `None` for the service as a whole (its entry spans).
    operation: Option<String>,
    span_kind: Option<String>,
    summary: RedRow,
    series: Series,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RedJson {
    service: String,
    /// The window after widening to whole steps.
    window: WindowJson,
    step_nanos: u64,
    /// Start of each step.
    timestamps: Vec<String>,
    /// `live`: from the aggregates the store maintains as spans arrive; `scan`: computed from
    /// the stored traces of the window (when the live ones do not cover it).
    source: &'static str,
    traces_scanned: usize,
    truncated: bool,
    /// With `live`: traces still arriving that the answer leaves out (it adds at most
    /// [`MAX_PENDING_TRACES`] of them).
    pending_traces_left_out: usize,
    /// The service's own row; `None` when it served no request in the window.
    overall: Option<RedSeriesJson>,
    /// One entry per operation (span name and kind), most requests first.
    operations: Vec<RedSeriesJson>,
}

type RowKey = (Option<String>, Option<String>);

fn row_key(r: &RedRow) -> RowKey {
    (r.operation.clone(), r.span_kind.clone())
}

fn red_json(service: &str, traces: &[Trace], view: &ViewParams, truncated: bool) -> RedJson {
    let mut agg = RedAggregator::new(RedOptions {
        resolution_nanos: view.step,
        max_buckets: usize::try_from(MAX_POINTS + 2).unwrap_or(usize::MAX),
        ..RedOptions::default()
    });
    let window = agg.aligned_window(TimeWindow::new(view.start, view.end));
    for trace in traces {
        add_spans(&mut agg, trace, window, Some(service));
    }
    let mut body = red_json_from(&agg, window, service, view);
    body.traces_scanned = traces.len();
    body.truncated = truncated;
    body
}

/// The window widened to whole steps (one at least).
fn step_window(view: &ViewParams) -> TimeWindow {
    let w = aligned(view.start, view.end, view.step);
    TimeWindow::new(
        w.start_unix_nano,
        w.end_unix_nano.max(w.start_unix_nano + view.step),
    )
}

/// `[start, end]` widened to whole multiples of `step`.
fn aligned(start: u64, end: u64, step: u64) -> TimeWindow {
    TimeWindow::new(
        start - start % step,
        end.div_ceil(step).saturating_mul(step),
    )
}

/// The live aggregates over `window` with the traces still arriving added ([`Live::view`]),
/// when the store keeps them and they cover `window` at a resolution `step` is a multiple of.
pub(crate) async fn live_view(
    views: &Views,
    window: TimeWindow,
    step: u64,
) -> Result<Option<(LiveAggregates, Pending)>, Failure> {
    let Some(live) = views.live.clone() else {
        return Ok(None);
    };
    let reader = &views.reader;
    let usable = live.with(|l| step.is_multiple_of(l.resolution_nanos()) && l.covers(window));
    if !usable {
        return Ok(None);
    }
    let pending = live.pending(MAX_PENDING_TRACES);
    let mut ids = pending.traces.clone();
    ids.sort_unstable();
    let traces = reader.traces_from(&ids, 0).await?;
    let view = blocking(move || live.view(window, &traces)).await?;
    Ok(Some((view, pending)))
}

/// RED of `service` over `window` (aligned to `view.step`) from `agg`.
fn red_json_from(
    agg: &RedAggregator,
    window: TimeWindow,
    service: &str,
    view: &ViewParams,
) -> RedJson {
    let summary: Vec<RedRow> = agg
        .snapshot(window)
        .into_iter()
        .filter(|r| r.service == service)
        .collect();
    let mut series: HashMap<RowKey, Series> = summary
        .iter()
        .map(|r| (row_key(r), Series::default()))
        .collect();
    let mut timestamps = Vec::new();
    let mut t = window.start_unix_nano;
    while t < window.end_unix_nano {
        let rows: HashMap<RowKey, RedRow> = agg
            .snapshot(TimeWindow::new(t, t.saturating_add(view.step)))
            .into_iter()
            .filter(|r| r.service == service)
            .map(|r| (row_key(&r), r))
            .collect();
        for (key, s) in &mut series {
            s.push(rows.get(key));
        }
        timestamps.push(t.to_string());
        t = t.saturating_add(view.step);
    }
    let mut overall = None;
    let mut operations = Vec::new();
    for row in summary {
        let key = row_key(&row);
        let entry = RedSeriesJson {
            operation: row.operation.clone(),
            span_kind: row.span_kind.clone(),
            series: series.remove(&key).unwrap_or_default(),
            summary: row,
        };
        if entry.operation.is_none() {
            overall = Some(entry);
        } else {
            operations.push(entry);
        }
    }
    operations.sort_by(|a, b| {
        b.summary
            .requests
            .total_cmp(&a.summary.requests)
            .then_with(|| a.operation.cmp(&b.operation))
            .then_with(|| a.span_kind.cmp(&b.span_kind))
    });
    RedJson {
        service: service.to_owned(),
        window: window.into(),
        step_nanos: view.step,
        timestamps,
        source: "scan",
        traces_scanned: 0,
        truncated: false,
        pending_traces_left_out: 0,
        overall,
        operations,
    }
}

async fn red(
    State(views): State<Views>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<axum::Json<RedJson>, Failure> {
    let Path(service) = path.map_err(|e| Failure::bad(format!("malformed path: {e}")))?;
    let view = parse_view(&query_params(query)?, now_unix_nanos())?;
    let window = step_window(&view);
    if let Some((live, pending)) = live_view(&views, window, view.step).await? {
        let mut body = blocking(move || red_json_from(&live.red, window, &service, &view)).await?;
        body.source = "live";
        body.pending_traces_left_out = pending.left_out;
        return Ok(axum::Json(body));
    }
    let (traces, truncated) = scan(&views.reader, Some(&service), &view).await?;
    let body = blocking(move || red_json(&service, &traces, &view, truncated)).await?;
    Ok(axum::Json(body))
}

// ---------------------------------------------------------------------------------------------
// Dependencies.

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DependenciesJson {
    window: WindowJson,
    /// Every service on an edge or with requests in the window, by name.
    services: Vec<ServiceNode>,
    /// Ordered by parent, then child.
    edges: Vec<DependencyEdge>,
    /// RED over the window of each service that served requests (its entry spans).
    service_stats: Vec<RedRow>,
    /// `live` or `scan`, as for RED.
    source: &'static str,
    traces_scanned: usize,
    truncated: bool,
    /// As for RED.
    pending_traces_left_out: usize,
}

fn dependencies_json(traces: &[Trace], view: &ViewParams, truncated: bool) -> DependenciesJson {
    let snapshot = crate::dependencies::graph(traces, view.start, view.end);
    // RED per service at the graph's resolution (about a thousand buckets over the window).
    let resolution = (view.end - view.start).div_ceil(1_000).max(SECOND);
    let mut red = RedAggregator::new(RedOptions {
        resolution_nanos: resolution,
        max_buckets: 1_100,
        max_operations_per_service: 1,
        ..RedOptions::default()
    });
    let requested = TimeWindow::new(view.start, view.end);
    let window = red.aligned_window(requested);
    for trace in traces {
        add_spans(&mut red, trace, window, None);
    }
    let mut body = dependencies_json_from(snapshot, &red, window);
    body.traces_scanned = traces.len();
    body.truncated = truncated;
    body
}

fn dependencies_json_from(
    snapshot: GraphSnapshot,
    red: &RedAggregator,
    window: TimeWindow,
) -> DependenciesJson {
    let service_stats: Vec<RedRow> = red
        .snapshot(window)
        .into_iter()
        .filter(|r| r.operation.is_none())
        .collect();
    let mut services = snapshot.services;
    for row in &service_stats {
        if !services.iter().any(|s| s.name == row.service) {
            services.push(ServiceNode {
                name: row.service.clone(),
                inferred: false,
            });
        }
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    DependenciesJson {
        window: snapshot.window.into(),
        services,
        edges: snapshot.edges,
        service_stats,
        source: "scan",
        traces_scanned: 0,
        truncated: false,
        pending_traces_left_out: 0,
    }
}

async fn dependencies(
    State(views): State<Views>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<axum::Json<DependenciesJson>, Failure> {
    let view = parse_view(&query_params(query)?, now_unix_nanos())?;
    dependency_graph(&views, view).await.map(axum::Json)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceDependenciesJson {
    service: String,
    window: WindowJson,
    /// Services `service` calls, directly (depth 1) or through others, nearest first.
    depends_on: Vec<TransitiveDependency>,
    /// Services that call `service`, directly or through others, nearest first.
    dependents: Vec<TransitiveDependency>,
    /// The edges between `service` and the services above, and among those.
    edges: Vec<DependencyEdge>,
    source: &'static str,
    traces_scanned: usize,
    truncated: bool,
}

async fn service_dependencies(
    State(views): State<Views>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<axum::Json<ServiceDependenciesJson>, Failure> {
    let Path(service) = path.map_err(|e| Failure::bad(format!("malformed path: {e}")))?;
    let view = parse_view(&query_params(query)?, now_unix_nanos())?;
    let graph = dependency_graph(&views, view).await?;
    let snapshot = GraphSnapshot {
        window: TimeWindow::new(0, 0),
        services: graph.services,
        edges: graph.edges,
    };
    let depends_on = snapshot.transitive_dependencies(&service);
    let dependents = snapshot.transitive_dependents(&service);
    let involved: std::collections::HashSet<&str> = depends_on
        .iter()
        .chain(&dependents)
        .map(|d| d.service.as_str())
        .chain([service.as_str()])
        .collect();
    let edges = snapshot
        .edges
        .iter()
        .filter(|e| involved.contains(e.parent.as_str()) && involved.contains(e.child.as_str()))
        .cloned()
        .collect();
    Ok(axum::Json(ServiceDependenciesJson {
        window: graph.window,
        depends_on,
        dependents,
        edges,
        source: graph.source,
        traces_scanned: graph.traces_scanned,
        truncated: graph.truncated,
        service,
    }))
}

/// The dependency graph over `view`: from the live aggregates when they cover it, else from a
/// scan of the stored traces.
async fn dependency_graph(views: &Views, view: ViewParams) -> Result<DependenciesJson, Failure> {
    if let Some(resolution) = views
        .live
        .as_ref()
        .map(|l| l.with(|l| l.resolution_nanos()))
    {
        let window = aligned(view.start, view.end, resolution);
        if let Some((live, pending)) = live_view(views, window, resolution).await? {
            let mut body = blocking(move || {
                dependencies_json_from(live.graph.snapshot(window), &live.red, window)
            })
            .await?;
            body.source = "live";
            body.pending_traces_left_out = pending.left_out;
            return Ok(body);
        }
    }
    let (traces, truncated) = scan(&views.reader, None, &view).await?;
    blocking(move || dependencies_json(&traces, &view, truncated)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    const NOW: u64 = 1_700_000_000 * SECOND;

    #[test]
    fn the_window_defaults_to_the_last_hour_in_one_minute_steps() {
        let v = parse_view(&params(&[]), NOW).unwrap();
        assert_eq!(v.end, NOW);
        assert_eq!(v.start, NOW - 3_600 * SECOND);
        assert_eq!(v.step, 60 * SECOND);
        assert_eq!(v.limit, DEFAULT_SCAN_LIMIT);
    }

    #[test]
    fn explicit_parameters_are_read_in_their_units() {
        let v = parse_view(
            &params(&[
                ("start", "1699999000000000"),
                ("end", "1700000000000000"),
                ("step", "10s"),
                ("limit", "50"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!((v.start, v.end), (NOW - 1_000 * SECOND, NOW));
        assert_eq!(v.step, 10 * SECOND);
        assert_eq!(v.limit, 50);
        let v = parse_view(&params(&[("lookback", "15m")]), NOW).unwrap();
        assert_eq!(v.start, NOW - 900 * SECOND);
        assert_eq!(v.step, 15 * SECOND);
    }

    #[test]
    fn bad_parameters_are_rejected_with_their_name() {
        for (pairs, needle) in [
            (vec![("start", "yesterday")], "'start'"),
            (vec![("step", "fast")], "'step'"),
            (vec![("step", "1ms")], "at most 1000 points"),
            (vec![("step", "0")], "longer than zero"),
            (vec![("limit", "1000001")], "'limit'"),
            (
                vec![("start", "1700000000000000"), ("end", "1600000000000000")],
                "after",
            ),
        ] {
            let err = parse_view(&params(&pairs), NOW).unwrap_err();
            assert_eq!(err.0.status(), http::StatusCode::BAD_REQUEST);
            let message = err.0.to_string();
            assert!(message.contains(needle), "{pairs:?}: {message}");
        }
    }

    #[test]
    fn default_steps_are_nice() {
        assert_eq!(default_step(60 * SECOND), SECOND);
        assert_eq!(default_step(61 * SECOND), 2 * SECOND);
        assert_eq!(default_step(6 * 3_600 * SECOND), 600 * SECOND);
        assert_eq!(default_step(7 * 86_400 * SECOND), 3 * 3_600 * SECOND);
    }
}
