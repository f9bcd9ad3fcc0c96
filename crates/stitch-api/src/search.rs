//! `GET /api/v1/search?q=<TraceQL>&start=&end=&lookback=&limit=&spss=`: traces a TraceQL
//! query matches, newest first, each with its matching spansets.
//!
//! | parameter | meaning |
//! |---|---|
//! | `q` | the TraceQL query (required) |
//! | `start`, `end` | Unix microseconds; traces with a span starting in between (default: the last `lookback`) |
//! | `lookback` | `1h` by default, when `start` is absent |
//! | `limit` | most traces returned, 20 by default, at most 1,500 |
//! | `spss` | most spans listed per spanset, 3 by default, at most 1,000 (`matched` counts them all) |
//!
//! The answer has the shape of Tempo's search response (`traceID`, `rootServiceName`,
//! `rootTraceName`, `startTimeUnixNano`, `durationMs`, `spanSets` with `matched`, `spans` and
//! the `by()` values as `attributes`, `serviceStats` with each service's `spanCount` and
//! `errorCount`), plus `metrics.inspectedTraces` and `metrics.truncated`
//! (the window held more traces than one search evaluates; older matches may be missing) and
//! `query`, the query as Stitch understood it. A query that does not parse or cannot hold is a
//! 400 whose `error` says where (`position`, from 0) and what was expected.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};
use stitch_query::TraceReader;
use stitch_query::traceql::{self, SpanMatch, TraceMatch, TraceQl, Value};

use crate::services::{Failure, now_unix_nanos, parse_limit, parse_window, query_params};

type Reader = Arc<dyn TraceReader>;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = crate::params::MAX_SEARCH_LIMIT;
const DEFAULT_SPSS: usize = 3;
const MAX_SPSS: usize = 1_000;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/v1/search", get(search))
        .with_state(reader)
}

async fn search(
    State(reader): State<Reader>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Failure> {
    Ok(axum::Json(run(&reader, query).await?).into_response())
}

async fn run(
    reader: &Reader,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json, Failure> {
    let params = query_params(query)?;
    let text = params
        .get("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| {
            Failure::bad("missing parameter 'q': a TraceQL query such as { status = error }")
        })?;
    let q = TraceQl::parse(text)?;
    let (start, end) = parse_window(&params, now_unix_nanos())?;
    let limit = parse_limit(&params, DEFAULT_LIMIT, MAX_LIMIT)?;
    let spss = match params.get("spss") {
        None => DEFAULT_SPSS,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=MAX_SPSS).contains(&n) => n,
            _ => {
                return Err(Failure::bad(format!(
                    "unable to parse param 'spss': {t:?} is not an integer from 1 to {MAX_SPSS}"
                )));
            }
        },
    };
    let found = traceql::search(&**reader, &q, start, end, limit, spss).await?;
    Ok(json!({
        "traces": found.traces.iter().map(trace_json).collect::<Vec<_>>(),
        "metrics": {
            "inspectedTraces": found.inspected_traces,
            "truncated": found.truncated,
        },
        "query": q.to_text(),
    }))
}

pub(crate) fn trace_json(t: &TraceMatch) -> Json {
    let spansets: Vec<Json> = t
        .spansets
        .iter()
        .map(|s| {
            json!({
                "matched": s.matched,
                "spans": s.spans.iter().map(span_json).collect::<Vec<_>>(),
                "attributes": s.by.iter().map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "traceID": t.trace_id.to_hex(),
        "rootServiceName": t.root_service.clone().unwrap_or_else(|| "<root span not yet received>".into()),
        "rootTraceName": t.root_name.clone().unwrap_or_default(),
        "startTimeUnixNano": t.start_unix_nanos.to_string(),
        "durationMs": t.duration_nanos / 1_000_000,
        "spanSet": spansets.first().cloned().unwrap_or(Json::Null),
        "spanSets": spansets,
        "serviceStats": t
            .service_stats
            .iter()
            .map(|(name, spans, errors)| (name.clone(), json!({"spanCount": spans, "errorCount": errors})))
            .collect::<serde_json::Map<String, Json>>(),
    })
}

fn span_json(s: &SpanMatch) -> Json {
    json!({
        "spanID": s.span_id.to_hex(),
        "name": s.name,
        "serviceName": s.service,
        "startTimeUnixNano": s.start_unix_nanos.to_string(),
        "durationNanos": s.duration_nanos.to_string(),
        "attributes": s.attributes.iter().map(|(k, v)| json!({"key": k, "value": value_json(v)})).collect::<Vec<_>>(),
    })
}

/// A value in OTLP/JSON's `AnyValue` form; durations, statuses and kinds as text.
pub(crate) fn value_json(v: &Value<'_>) -> Json {
    match v {
        Value::Int(i) => json!({"intValue": i.to_string()}),
        Value::Float(f) => json!({"doubleValue": f}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Str(s) => json!({"stringValue": s}),
        Value::Duration(d) => json!({"stringValue": traceql::display::duration(*d)}),
        other => json!({"stringValue": other.to_text()}),
    }
}
