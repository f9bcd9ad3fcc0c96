//! Service dependencies over a time window, and Jaeger's `GET /api/dependencies`.
//!
//! [`scan`] reads the traces with a span starting in a window and [`graph`] turns them into a
//! [`GraphSnapshot`] with [`stitch_analysis::DependencyGraph`], the one place that decides
//! which spans make an edge (a span whose parent belongs to another service, a service calling
//! itself through a client span, and client spans to uninstrumented peers, which appear as
//! *inferred* children; see `stitch_analysis::graph`). `/api/v1/dependencies` uses the same
//! graph.
//!
//! `GET /api/dependencies?endTs=&lookback=&service=` answers in Jaeger's envelope:
//! `{"data": [{"parent", "child", "callCount"}], "total": 0, "limit": 0, "offset": 0,
//! "errors": null}`, links ordered by parent then child.
//!
//! - `endTs`: Unix milliseconds, default now;
//! - `lookback`: milliseconds (as the Jaeger UI sends it) or a duration such as `1h`; default
//!   one day (Jaeger's default);
//! - `service`: keep only the links with this service as parent or child.
//!
//! At most [`DEPENDENCY_SCAN_TRACES`] traces are read, the newest first. Unlike Jaeger, which
//! reads links a batch job wrote, the answer is computed from the stored traces when asked.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use stitch_analysis::{DependencyGraph, GraphOptions, GraphSnapshot, JaegerDependency, TimeWindow};
use stitch_model::Trace;
use stitch_query::SpanWeights;
use stitch_query::{ReadError, SearchQuery, TraceReader};

use crate::duration::parse_duration_nanos;
use crate::error::{ApiError, Envelope};
use crate::params::Params;

/// The most traces read to compute dependencies.
pub const DEPENDENCY_SCAN_TRACES: usize = 10_000;
/// Jaeger's default lookback for dependencies: one day.
pub const DEFAULT_LOOKBACK_NANOS: u64 = 24 * 3_600 * 1_000_000_000;
const SECOND: u64 = 1_000_000_000;
const MILLI: u64 = 1_000_000;

/// The traces with a span starting in `[start, end]` (Unix nanoseconds), newest first, at most
/// `limit` of them.
pub async fn scan(
    reader: &dyn TraceReader,
    start: u64,
    end: u64,
    limit: usize,
) -> Result<Vec<Trace>, ReadError> {
    reader
        .search(&SearchQuery {
            start_unix_nanos: Some(start),
            end_unix_nanos: Some(end),
            limit,
            ..Default::default()
        })
        .await
}

/// The dependency graph of `traces` over `[start, end]`: only calls whose caller span starts
/// in the window count.
pub fn graph(traces: &[Trace], start: u64, end: u64) -> GraphSnapshot {
    // About a thousand buckets over the window, so that the bucket-aligned window is close to
    // the asked one; room for calls after the window so they never push its buckets out.
    let resolution = end.saturating_sub(start).div_ceil(1_000).max(SECOND);
    let mut g = DependencyGraph::new(GraphOptions {
        resolution_nanos: resolution,
        max_buckets: 100_000,
        ..GraphOptions::default()
    });
    for trace in traces {
        let weights = SpanWeights::of(trace);
        g.add_trace_where(trace, |s| weights.weight(s), |_| true);
    }
    g.snapshot(TimeWindow::new(start, end))
}

/// Jaeger's links over `[start, end]`, optionally only those touching `service`.
pub fn jaeger_links(
    traces: &[Trace],
    start: u64,
    end: u64,
    service: Option<&str>,
) -> Vec<JaegerDependency> {
    let mut links = graph(traces, start, end).jaeger_dependencies();
    if let Some(service) = service {
        links.retain(|l| l.parent == service || l.child == service);
    }
    links
}

fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `GET /api/dependencies`.
pub async fn jaeger_dependencies(
    State(reader): State<Arc<dyn TraceReader>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Envelope<Vec<JaegerDependency>>>, ApiError> {
    let Query(pairs) =
        query.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let params = Params::new(pairs);
    let end = match params.get("endTs") {
        None => now_unix_nanos(),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .and_then(|ms| ms.checked_mul(MILLI))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse param 'endTs': {text:?} is not a time in Unix milliseconds"
                ))
            })?,
    };
    let lookback = match params.get("lookback") {
        None => DEFAULT_LOOKBACK_NANOS,
        Some(text) => match text.parse::<u64>() {
            Ok(ms) => ms.saturating_mul(MILLI),
            Err(_) => parse_duration_nanos(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse param 'lookback': {text:?} is not milliseconds or a duration"
                ))
            })?,
        },
    };
    let start = end.saturating_sub(lookback);
    let service = params.get("service").map(str::to_owned);
    let traces = scan(reader.as_ref(), start, end, DEPENDENCY_SCAN_TRACES).await?;
    let links =
        tokio::task::spawn_blocking(move || jaeger_links(&traces, start, end, service.as_deref()))
            .await
            // A panic in the computation is a panic of this handler, as if it had run here.
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    Ok(Json(Envelope::new(links, 0)))
}
