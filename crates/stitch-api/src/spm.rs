//! Jaeger's service performance monitoring API, which the Jaeger UI's Monitor tab draws:
//! latency quantiles, call rates and error rates per service (and operation) over time,
//! answered from the live RED aggregates (or, for a window they do not cover, from the stored
//! traces) instead of a Prometheus fed by span metrics.
//!
//! | route | answer: a metric family (`name`, `type` `GAUGE`, `help`, `metrics`) named |
//! |---|---|
//! | `GET /api/metrics/latencies?quantile=` | `service_latencies`: the `quantile` of the spans' durations, in milliseconds |
//! | `GET /api/metrics/calls` | `service_call_rate`: spans per second |
//! | `GET /api/metrics/errors` | `service_error_rate`: failed spans over all spans, 0 to 1 |
//! | `GET /api/metrics/minstep` | `{"data": 10000, ...}` in Jaeger's envelope: the smallest step, in milliseconds (the live aggregates' resolution); Jaeger v2.18 dropped this route, older UIs ask it |
//!
//! With `groupByOperation=true` the names are `service_operation_latencies` and so on, as
//! Jaeger names them.
//!
//! Parameters: `service` (required, repeatable), `spanKind` (repeatable, several kinds make one
//! series with their spans together; `server` by default;
//! `client`, `SPAN_KIND_CLIENT`, ... too), `groupByOperation` (`true`: one series per
//! operation, labelled `operation`), `endTs` (Unix milliseconds, now by default), `lookback`
//! (milliseconds, one hour by default), `step` (milliseconds, 60 s by default) and `ratePer`
//! (milliseconds, 10 minutes by default); `step` and `ratePer` are rounded up to a multiple of
//! `minstep`.
//! `lookback`, `step` and `ratePer` are at most 366 days. Points are at `endTs` (rounded down
//! to `minstep`) and every `step` before it within `lookback`; each point at time `t`
//! summarises the spans of the kinds asked that started in `[t - ratePer, t)`, as Jaeger's
//! PromQL over span metrics does; a point without spans is left out of latencies and error
//! rates (Jaeger's backends answer NaN there) and is 0 in call rates. Each series carries the
//! labels `service_name` (and `operation`); points are `{"gaugeValue": {"doubleValue": v},
//! "timestamp": "2024-06-10T06:13:20Z"}`. Errors are written in Jaeger's envelope.
//!
//! The points come from the live aggregates when they cover the window; otherwise from a scan
//! of the stored traces, at most [`DEFAULT_SCAN_LIMIT`] per service. A scan that reached that
//! bound counted only the newest traces: the answer then carries the header [`PARTIAL_HEADER`]
//! saying so (Jaeger's JSON has no field for it) and the server logs it.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};
use stitch_analysis::{KindRow, RedAggregator, RedOptions, TimeWindow};
use stitch_model::SpanKind;

use crate::error::ApiError;
use crate::params::Params;
use crate::services::{
    DEFAULT_SCAN_LIMIT, MAX_POINTS, ViewParams, Views, add_spans, blocking, live_view,
    now_unix_nanos, scan,
};

const MILLI: u64 = 1_000_000;
/// The live aggregates' resolution: the smallest step.
const MIN_STEP_MILLIS: u64 = 10_000;
const DEFAULT_LOOKBACK_MILLIS: u64 = 3_600_000;
const DEFAULT_STEP_MILLIS: u64 = 60_000;
const DEFAULT_RATE_PER_MILLIS: u64 = 600_000;
/// The longest `lookback`, `step` or `ratePer`: 366 days.
const MAX_SPAN_MILLIS: u64 = 366 * 86_400_000;

pub(crate) fn router(views: Views) -> Router {
    Router::new()
        .route("/api/metrics/latencies", get(latencies))
        .route("/api/metrics/calls", get(calls))
        .route("/api/metrics/errors", get(errors))
        .route("/api/metrics/minstep", get(minstep))
        .with_state(views)
}

/// What one request asks for.
#[derive(Clone)]
struct Ask {
    services: Vec<String>,
    kinds: Vec<SpanKind>,
    by_operation: bool,
    /// Unix nanoseconds of the first and last point.
    first: u64,
    last: u64,
    step: u64,
    rate_per: u64,
}

fn millis(params: &Params, name: &str, default: u64) -> Result<u64, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(t) => t.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "unable to parse param '{name}': {t:?} is not a number of milliseconds"
            ))
        }),
    }
}

fn parse(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<(Ask, Params), ApiError> {
    let Query(pairs) =
        query.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let params = Params::new(pairs);
    let services: Vec<String> = params.all("service").map(str::to_owned).collect();
    if services.is_empty() {
        return Err(ApiError::bad_request(
            "unable to parse param 'service': please provide at least one service name",
        ));
    }
    let mut kinds = Vec::new();
    for text in params.all("spanKind") {
        let name = text
            .strip_prefix("SPAN_KIND_")
            .unwrap_or(text)
            .to_ascii_lowercase();
        let kind = SpanKind::parse(&name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to parse param 'spanKind': {text:?} is not a span kind (server, client, producer, consumer, internal, unspecified)"
            ))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        kinds.push(SpanKind::Server);
    }
    let by_operation = match params.get("groupByOperation") {
        None | Some("false") => false,
        Some("true") => true,
        Some(t) => {
            return Err(ApiError::bad_request(format!(
                "unable to parse param 'groupByOperation': {t:?} is not true or false"
            )));
        }
    };
    let end = match params.get("endTs") {
        None => now_unix_nanos(),
        Some(_) => millis(&params, "endTs", 0)?.saturating_mul(MILLI),
    };
    let lookback = millis(&params, "lookback", DEFAULT_LOOKBACK_MILLIS)?;
    if lookback > MAX_SPAN_MILLIS {
        return Err(ApiError::bad_request(format!(
            "unable to parse param 'lookback': {lookback} ms is over the cap of {MAX_SPAN_MILLIS} ms (366 days)"
        )));
    }
    let lookback = lookback * MILLI;
    // Both are rounded up to whole buckets of the aggregates.
    let whole = |name: &str, ms: u64| {
        if ms > MAX_SPAN_MILLIS {
            return Err(ApiError::bad_request(format!(
                "unable to parse param '{name}': {ms} ms is over the cap of {MAX_SPAN_MILLIS} ms (366 days)"
            )));
        }
        Ok(ms.max(1).div_ceil(MIN_STEP_MILLIS) * MIN_STEP_MILLIS * MILLI)
    };
    let step = whole("step", millis(&params, "step", DEFAULT_STEP_MILLIS)?)?;
    let rate_per = whole(
        "ratePer",
        millis(&params, "ratePer", DEFAULT_RATE_PER_MILLIS)?,
    )?;
    // A point at `end` and every `step` before it within `lookback`, as a range query does.
    let steps_back = lookback / step;
    if steps_back >= MAX_POINTS {
        return Err(ApiError::bad_request(format!(
            "'lookback' over 'step' asks for more than {MAX_POINTS} points"
        )));
    }
    // Rounded down to the aggregates' resolution, so that every window is whole buckets.
    let last = end - end % (MIN_STEP_MILLIS * MILLI);
    let first = last.saturating_sub(steps_back * step);
    Ok((
        Ask {
            services,
            kinds,
            by_operation,
            first,
            last,
            step,
            rate_per,
        },
        params,
    ))
}

/// The header an answer computed from part of the window's traces carries.
pub const PARTIAL_HEADER: &str = "stitch-partial";

/// The points of an answer and, when a scan left traces out, what it left out.
struct Points {
    rows: Vec<(u64, Vec<KindRow>)>,
    partial: Option<String>,
}

/// For each point, the rows of the services asked: (point time, rows).
async fn points(views: &Views, ask: &Ask, quantile: f64) -> Result<Points, ApiError> {
    let covered = TimeWindow::new(ask.first.saturating_sub(ask.rate_per), ask.last);
    let ask = ask.clone();
    if let Some((live, _pending)) = live_view(views, covered, MIN_STEP_MILLIS * MILLI)
        .await
        .map_err(|e| e.0)?
    {
        let rows = blocking(move || rows_of(&live.red, &ask, quantile))
            .await
            .map_err(|e| e.0)?;
        return Ok(Points {
            rows,
            partial: None,
        });
    }
    let view = ViewParams {
        start: covered.start_unix_nano,
        end: covered.end_unix_nano,
        limit: DEFAULT_SCAN_LIMIT,
        step: MIN_STEP_MILLIS * MILLI,
    };
    let mut red = RedAggregator::new(RedOptions {
        resolution_nanos: view.step,
        max_buckets: usize::try_from((view.end - view.start) / view.step + 2).unwrap_or(usize::MAX),
        ..RedOptions::default()
    });
    let mut traces = Vec::new();
    let mut cut: Vec<&str> = Vec::new();
    for service in &ask.services {
        let (found, truncated) = scan(&views.reader, Some(service), &view)
            .await
            .map_err(|e| e.0)?;
        if truncated {
            cut.push(service);
        }
        traces.extend(found);
    }
    let partial = (!cut.is_empty()).then(|| {
        format!(
            "computed from the newest {} traces of {} in the window; older spans were not counted",
            view.limit,
            cut.join(", ")
        )
    });
    if let Some(why) = &partial {
        tracing::info!(reason = %why, "service performance metrics from part of the traces");
    }
    // A trace with spans of two of the services was found by both scans: count it once.
    traces.sort_unstable_by_key(|t| t.trace_id);
    traces.dedup_by_key(|t| t.trace_id);
    let window = TimeWindow::new(view.start, view.end);
    let rows = blocking(move || {
        for t in &traces {
            add_spans(&mut red, t, window, None);
        }
        rows_of(&red, &ask, quantile)
    })
    .await
    .map_err(|e| e.0)?;
    Ok(Points { rows, partial })
}

/// The family as the answer, with [`PARTIAL_HEADER`] when the points are partial.
fn answer(family: Json, partial: Option<String>) -> Response {
    let mut response = axum::Json(family).into_response();
    if let Some(why) = partial
        && let Ok(value) = http::HeaderValue::from_str(&why)
    {
        response.headers_mut().insert(PARTIAL_HEADER, value);
    }
    response
}

/// For each point of `ask`, the rows of the services asked over `[t - ratePer, t)`.
fn rows_of(red: &RedAggregator, ask: &Ask, quantile: f64) -> Vec<(u64, Vec<KindRow>)> {
    let mut out = Vec::new();
    let mut t = ask.first;
    while t <= ask.last {
        let window = TimeWindow::new(t.saturating_sub(ask.rate_per), t);
        let rows = red
            .kind_snapshot(window, &ask.kinds, ask.by_operation, quantile)
            .into_iter()
            .filter(|r| ask.services.contains(&r.service))
            .collect();
        out.push((t, rows));
        t += ask.step;
    }
    out
}

/// A point's time: `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(unix_nanos: u64) -> String {
    crate::calendar::Utc::from_unix_seconds(unix_nanos / 1_000_000_000).rfc3339()
}

/// The metric family: one series per service (and operation) seen at any point, with a point
/// per time its value is known (`missing` at times without its spans, when given).
fn family(
    name: &str,
    help: String,
    ask: &Ask,
    points: &[(u64, Vec<KindRow>)],
    value: impl Fn(&KindRow) -> Option<f64>,
    missing: Option<f64>,
) -> Json {
    let mut series: BTreeMap<(String, Option<String>), Vec<Json>> = points
        .iter()
        .flat_map(|(_, rows)| rows)
        .map(|r| ((r.service.clone(), r.operation.clone()), Vec::new()))
        .collect();
    for (t, rows) in points {
        for (key, out) in &mut series {
            let row = rows
                .iter()
                .find(|r| r.service == key.0 && r.operation == key.1);
            if let Some(v) = row.map_or(missing, &value) {
                out.push(json!({"gaugeValue": {"doubleValue": v}, "timestamp": rfc3339(*t)}));
            }
        }
    }
    let metrics: Vec<Json> = series
        .into_iter()
        .map(|((service, operation), points)| {
            let mut labels = vec![json!({"name": "service_name", "value": service})];
            if let Some(op) = operation {
                labels.push(json!({"name": "operation", "value": op}));
            }
            json!({"labels": labels, "metricPoints": points})
        })
        .collect();
    let (name, grouped) = if ask.by_operation {
        (
            format!("service_operation_{name}"),
            "grouped by service & operation",
        )
    } else {
        (format!("service_{name}"), "grouped by service")
    };
    json!({
        "name": name,
        "type": "GAUGE",
        "help": format!("{help}, {grouped}"),
        "metrics": metrics,
    })
}

async fn latencies(
    State(views): State<Views>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (ask, params) = parse(query)?;
    let quantile = match params.get("quantile").map(|t| (t, t.trim().parse::<f64>())) {
        Some((_, Ok(q))) if q > 0.0 && q <= 1.0 => q,
        Some((t, _)) => {
            return Err(ApiError::bad_request(format!(
                "unable to parse param 'quantile': {t:?} is not a number above 0 and at most 1"
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "unable to parse param 'quantile': please provide a quantile between (0, 1]",
            ));
        }
    };
    let points = points(&views, &ask, quantile).await?;
    let help = format!("{quantile:.2}th quantile latency");
    Ok(answer(
        family(
            "latencies",
            help,
            &ask,
            &points.rows,
            |r| r.quantile_nanos.map(|n| n as f64 / MILLI as f64),
            None,
        ),
        points.partial,
    ))
}

async fn calls(
    State(views): State<Views>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    rates(
        views,
        query,
        "call_rate",
        "calls/sec",
        |r| Some(r.rate_per_second),
        Some(0.0),
    )
    .await
}

async fn errors(
    State(views): State<Views>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    rates(
        views,
        query,
        "error_rate",
        "error rate, computed as a fraction of errors/sec over calls/sec",
        |r| (r.rate_per_second > 0.0).then_some(r.error_rate),
        None,
    )
    .await
}

/// A family of the rates of each point's rows (`calls` and `errors`).
async fn rates(
    views: Views,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    name: &str,
    help: &str,
    value: impl Fn(&KindRow) -> Option<f64>,
    missing: Option<f64>,
) -> Result<Response, ApiError> {
    let (ask, _) = parse(query)?;
    let points = points(&views, &ask, 0.5).await?;
    Ok(answer(
        family(name, help.into(), &ask, &points.rows, value, missing),
        points.partial,
    ))
}

async fn minstep() -> Response {
    axum::Json(crate::error::Envelope::new(MIN_STEP_MILLIS, 0)).into_response()
}
