//! Stitch's native API (`/api/v1/...`). Traces are returned as OTLP JSON
//! (`{"resourceSpans": [...]}`), the same document an OTLP/HTTP exporter sends, so any OTLP
//! decoder reads them back losslessly.
//!
//! Errors are `{"error": {"code": <HTTP status>, "message": <reason>}}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use stitch_query::TraceReader;

use crate::error::{ApiError, NativeError};
use crate::params;

type Reader = Arc<dyn TraceReader>;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/v1/traces/{traceID}", get(get_trace))
        .route("/api/v1/traces/{traceID}/analysis", get(get_analysis))
        .route(
            "/api/v1/traces/{traceID}/broken-propagation",
            get(get_trace_broken_propagation),
        )
        .route(
            "/api/v1/analysis/broken-propagation",
            get(broken_propagation),
        )
        .with_state(reader)
}

/// Reads the trace named in the path.
async fn load_trace(
    reader: &Reader,
    path: Result<Path<String>, PathRejection>,
) -> Result<stitch_model::Trace, NativeError> {
    let Path(text) = path.map_err(|e| NativeError::bad(format!("malformed path: {e}")))?;
    read_trace(reader, &text).await
}

/// Reads the trace whose id is `text`: a 400 for a malformed id, a 404 for an unknown one.
pub(crate) async fn read_trace(
    reader: &Reader,
    text: &str,
) -> Result<stitch_model::Trace, NativeError> {
    let id = params::parse_trace_id(text)
        .map_err(|e| NativeError::bad(format!("invalid trace id {text:?}: {e}")))?;
    match reader.trace(id).await? {
        Some(trace) if !trace.is_empty() => Ok(trace),
        _ => Err(ApiError::not_found(format!("trace {id} not found")).into()),
    }
}

/// `GET /api/v1/traces/{id}/analysis`: where the time went (critical path, statistics, clock
/// skew adjustments and ranked findings), as `stitch_analysis::TraceAnalysis` JSON.
async fn get_analysis(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, NativeError> {
    let trace = load_trace(&reader, path).await?;
    // The trace's own analysis does not depend on its neighbours: without them, it is
    // answered without broken hops.
    let hops = broken_hops_of(&reader, &trace).await.unwrap_or_else(|e| {
        tracing::warn!(trace_id = %trace.trace_id, error = %e, "analysis without broken hops: the traces around it could not be read");
        Vec::new()
    });
    let mut analysis =
        stitch_analysis::analyze(&trace, &stitch_analysis::AnalysisOptions::default());
    analysis.add_broken_propagation(&hops);
    Ok(axum::Json(analysis).into_response())
}

/// `GET /api/v1/traces/{id}/broken-propagation`: the broken hops this trace takes part in
/// (`stitch_analysis::BrokenHop` JSON, the trace's own occurrence first among each hop's
/// examples), found among the traces stored around it. `stitch trace` adds them to the
/// analysis it computes.
async fn get_trace_broken_propagation(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, NativeError> {
    let trace = load_trace(&reader, path).await?;
    let hops = broken_hops_of(&reader, &trace).await?;
    Ok(axum::Json(json!({ "hops": hops })).into_response())
}

/// Neighbours read to complete one trace's broken hops, per side.
const NEIGHBOURS_PER_SIDE: usize = 1_000;
/// How long before a callee fragment its caller's client span may have started (queueing,
/// connection set-up, retries of the request).
const CALLER_LOOKBACK_NANOS: u64 = 60_000_000_000;

/// The broken hops `trace` takes part in: as the caller (its dangling client spans, whose
/// callee roots start inside the trace's time range) and as the callee (its root, whose caller's
/// client span started shortly before it). Read: traces with a SERVER span starting in the
/// trace's range and traces with a CLIENT span starting in the minute before its start, the
/// newest [`NEIGHBOURS_PER_SIDE`] of each; so a callee root of another kind (CONSUMER), a
/// caller whose outgoing call is not a CLIENT span, or, in a busy window, an early hop of a long
/// trace, can be missed here while the window-wide analysis finds it.
async fn broken_hops_of(
    reader: &Reader,
    trace: &stitch_model::Trace,
) -> Result<Vec<stitch_analysis::BrokenHop>, stitch_query::ReadError> {
    let opts = stitch_analysis::PropagationOptions {
        as_of_unix_nano: Some(now_unix_nanos()),
        focus_trace: Some(trace.trace_id),
        ..Default::default()
    };
    let Some((start, end)) = trace.time_range() else {
        return Ok(Vec::new());
    };
    let skew = opts.max_clock_skew_nanos;
    let callees = stitch_query::SearchQuery {
        span_kind: Some(stitch_model::SpanKind::Server),
        start_unix_nanos: Some(start.saturating_sub(skew)),
        end_unix_nanos: Some(end.saturating_add(skew)),
        limit: NEIGHBOURS_PER_SIDE,
        ..Default::default()
    };
    let callers = stitch_query::SearchQuery {
        span_kind: Some(stitch_model::SpanKind::Client),
        start_unix_nanos: Some(start.saturating_sub(CALLER_LOOKBACK_NANOS)),
        end_unix_nanos: Some(start.saturating_add(skew)),
        limit: NEIGHBOURS_PER_SIDE,
        ..Default::default()
    };
    let mut traces = vec![trace.clone()];
    let mut seen = std::collections::HashSet::from([trace.trace_id]);
    for query in [callees, callers] {
        for t in reader.search(&query).await? {
            if seen.insert(t.trace_id) {
                traces.push(t);
            }
        }
    }
    match tokio::task::spawn_blocking(move || {
        stitch_analysis::find_broken_propagation(&traces, &opts)
    })
    .await
    {
        Ok(hops) => Ok(hops),
        Err(e) => {
            tracing::error!(trace_id = %trace.trace_id, error = %e, "broken-propagation analysis failed");
            Ok(Vec::new())
        }
    }
}

fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Traces scanned by one broken-propagation analysis.
const BROKEN_PROPAGATION_MAX_TRACES: usize = 20_000;

/// `GET /api/v1/analysis/broken-propagation?since=1h`: hops where trace context was lost,
/// found across the traces of the window (see `stitch_analysis::find_broken_propagation`).
async fn broken_propagation(
    State(reader): State<Reader>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, NativeError> {
    let since = q.get("since").map(String::as_str).unwrap_or("1h");
    let Some(window_nanos) = crate::duration::parse_duration_nanos(since) else {
        return Err(NativeError::bad(format!(
            "invalid since {since:?}: expected a duration such as 30m, 1h or 2d"
        )));
    };
    let now = now_unix_nanos();
    let query = stitch_query::SearchQuery {
        start_unix_nanos: Some(now.saturating_sub(window_nanos)),
        limit: BROKEN_PROPAGATION_MAX_TRACES,
        ..Default::default()
    };
    let traces = reader.search(&query).await?;
    let opts = stitch_analysis::PropagationOptions {
        as_of_unix_nano: Some(now),
        ..Default::default()
    };
    let hops = stitch_analysis::find_broken_propagation(&traces, &opts);
    Ok(axum::Json(serde_json::json!({
        "tracesScanned": traces.len(),
        "truncated": traces.len() >= BROKEN_PROPAGATION_MAX_TRACES,
        "hops": hops,
    }))
    .into_response())
}

/// `GET /api/v1/traces/{id}`: the trace as OTLP JSON, written span by span as the client reads
/// it ([`crate::streamed`]).
async fn get_trace(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, NativeError> {
    let trace = load_trace(&reader, path).await?;
    Ok(crate::streamed::otlp_trace("", trace, ""))
}
