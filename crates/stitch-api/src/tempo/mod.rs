//! Grafana Tempo's query API, on a port of its own (3200, Tempo's, by default), so that
//! Grafana's Tempo data source pointed at `http://host:3200` searches and reads Stitch as it
//! would Tempo.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/echo` | `echo` (plain text) |
//! | `GET /api/status/buildinfo` | `{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}`; `version` is Stitch's |
//! | `GET /api/traces/{id}` | `{"batches": [...]}`, or with `Accept: application/protobuf` Tempo's `Trace` message (the bytes of an OTLP `TracesData`) |
//! | `GET /api/v2/traces/{id}` | `{"trace": {"resourceSpans": [...]}}`, or with `Accept: application/protobuf` Tempo's `TraceByIDResponse` (field 1: the `Trace`) |
//! | `GET /api/search` | traces matching `q` (TraceQL) or `tags` (logfmt `key=value` pairs), as Tempo answers (the native `/api/v1/search` shape) |
//! | `GET /api/search/tags` | `{"tagNames": [...]}`: attribute names of the `scope` asked (`span`, `resource`, `intrinsic`; both attribute scopes when absent) |
//! | `GET /api/v2/search/tags` | `{"scopes": [{"name", "tags"}]}`: `resource`, `span`, `event`, `link`, `instrumentation` (those that hold names) and `intrinsic` |
//! | `GET /api/search/tag/{tag}/values` | `{"tagValues": ["..."]}` of a span or resource attribute (`status.code` and `error` answer their fixed values) |
//! | `GET /api/v2/search/tag/{identifier}/values` | `{"tagValues": [{"type", "value"}]}` of a TraceQL identifier (`resource.service.name`, `span.http.route`, `.x`, `name`, `status`, `kind`, ...) |
//!
//! In trace answers, trace and span ids are base64 and span kinds and status codes are enum
//! names, as Tempo's JSON has them ([`stitch_wire::otlp_json::trace_to_jsonpb`]). `start` and
//! `end` are Unix seconds; without them a search or a tag lookup covers the last hour. Search:
//! `limit` (20 by default, at most 1,500), `spss` (spans listed per spanset, 3 by default, at
//! most 1,000), `minDuration` and `maxDuration` (`100ms`, `1.5s`: bounds on the trace's
//! duration). Tag names and values come from the newest [`SCAN_TRACES`] traces of the window
//! (service names from every service stored), at most `limit` ([`MAX_VALUES`] by default); the
//! v2 routes take `q`, a TraceQL query whose matching spans alone are looked at.
//!
//! Errors are plain text, as Tempo writes them: 400 for a bad parameter or query (the message
//! says which and why), 404 for an unknown trace.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, header};
use serde_json::{Value as Json, json};
use stitch_model::{AnyValue, KeyValue, SpanId, SpanRef, Trace};
use stitch_query::traceql::{self, TraceQl};
use stitch_query::{SearchQuery, TraceReader};

use crate::duration::parse_duration_nanos;
use crate::error::{ApiError, TempoError};
use crate::params::{MAX_SEARCH_LIMIT, Params, parse_trace_id};
use crate::services::now_unix_nanos;

mod metrics;
mod search;
mod tags;

use search::search;
use tags::{tags_v1, tags_v2, values_v1, values_v2};

type Reader = Arc<dyn TraceReader>;
type Answer = Result<Response, TempoError>;
type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Traces sampled, newest first, for tag names and values.
pub const SCAN_TRACES: usize = 1_000;
/// Tag names or values returned at most when `limit` is absent.
pub const MAX_VALUES: usize = 1_000;
const DEFAULT_LIMIT: usize = 20;
const DEFAULT_SPSS: usize = 3;
const MAX_SPSS: usize = 1_000;
/// The window of a request without `start`.
const DEFAULT_WINDOW_NANOS: u64 = 3_600_000_000_000;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/echo", get(echo))
        .route("/api/status/buildinfo", get(buildinfo))
        .route("/api/traces/{traceID}", get(trace_v1))
        .route("/api/v2/traces/{traceID}", get(trace_v2))
        .route("/api/search", get(search))
        .route("/api/search/tags", get(tags_v1))
        .route("/api/v2/search/tags", get(tags_v2))
        .route("/api/search/tag/{tag}/values", get(values_v1))
        .route("/api/v2/search/tag/{tag}/values", get(values_v2))
        .route("/api/metrics/query_range", get(metrics::query_range))
        .route("/api/metrics/query", get(metrics::query_instant))
        .with_state(reader)
}

async fn echo() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "echo\n",
    )
        .into_response()
}

async fn buildinfo() -> Response {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response()
}

fn params(query: Q) -> Result<Params, TempoError> {
    let Query(pairs) =
        query.map_err(|e| TempoError::bad(format!("malformed query string: {e}")))?;
    Ok(Params::new(pairs))
}

fn seconds(params: &Params, name: &str) -> Result<Option<u64>, TempoError> {
    params
        .get(name)
        .map(|t| {
            t.trim().parse::<u64>().map_err(|_| {
                TempoError::bad(format!(
                    "invalid {name}: {t:?} is not a number of Unix seconds"
                ))
            })
        })
        .transpose()
}

/// `[start, end]` in Unix nanoseconds from `start` and `end` (Unix seconds); the last hour
/// (or the hour before `end`) without `start`.
fn window(params: &Params) -> Result<(u64, u64), TempoError> {
    let (start, end) = (seconds(params, "start")?, seconds(params, "end")?);
    let end_nanos = end.map_or_else(now_unix_nanos, |s| s.saturating_mul(1_000_000_000));
    let start_nanos = match start {
        Some(s) => s.saturating_mul(1_000_000_000),
        None => end_nanos.saturating_sub(DEFAULT_WINDOW_NANOS),
    };
    if end_nanos <= start_nanos {
        return Err(TempoError::bad(format!(
            "http parameter start must be before end. received start={} end={}",
            start_nanos / 1_000_000_000,
            end_nanos / 1_000_000_000
        )));
    }
    Ok((start_nanos, end_nanos))
}

fn count(params: &Params, name: &str, default: usize, max: usize) -> Result<usize, TempoError> {
    match params.get(name) {
        None => Ok(default),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(TempoError::bad(format!(
                "invalid {name}: must be a positive number, got {t:?}"
            ))),
            Ok(n) if n > max => Err(TempoError::bad(format!(
                "{name} {n} exceeds max {name} {max}"
            ))),
            Ok(n) => Ok(n),
        },
    }
}

fn duration(params: &Params, name: &str) -> Result<Option<u64>, TempoError> {
    params
        .get(name)
        .map(|t| {
            parse_duration_nanos(t.trim())
                .filter(|&n| i64::try_from(n).is_ok())
                .ok_or_else(|| {
                    TempoError::bad(format!(
                        "invalid {name}: {t:?} is not a duration such as 100ms or 1.5s"
                    ))
                })
        })
        .transpose()
}

/// Whether `Accept` lists `application/protobuf` (and not with `q=0`).
fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            parts
                .next()
                .is_some_and(|m| m.eq_ignore_ascii_case("application/protobuf"))
                && !parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f64>().ok())
                        .is_some_and(|q| q <= 0.0)
                })
        })
}

/// The trace named in the path, after checking the optional `start` and `end`.
async fn read_trace(
    reader: &Reader,
    path: Result<Path<String>, PathRejection>,
    query: Q,
) -> Result<Trace, TempoError> {
    let Path(text) = path.map_err(|e| TempoError::bad(format!("malformed path: {e}")))?;
    let id = parse_trace_id(&text).map_err(TempoError::bad)?;
    window(&params(query)?)?;
    match reader.trace(id).await? {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(TempoError(ApiError::not_found(format!(
            "trace {text} not found"
        )))),
    }
}

fn protobuf(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/protobuf")], bytes).into_response()
}

async fn trace_v1(
    State(reader): State<Reader>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Q,
) -> Answer {
    let trace = read_trace(&reader, path, query).await?;
    if wants_protobuf(&headers) {
        return Ok(protobuf(stitch_wire::otlp::encode_trace(&trace)));
    }
    Ok(crate::streamed::tempo_trace("", trace, "batches", ""))
}

async fn trace_v2(
    State(reader): State<Reader>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Q,
) -> Answer {
    let trace = read_trace(&reader, path, query).await?;
    if wants_protobuf(&headers) {
        return Ok(protobuf(stitch_wire::otlp::encode_trace_by_id_response(
            &trace,
        )));
    }
    Ok(crate::streamed::tempo_trace(
        "{\"trace\":",
        trace,
        "resourceSpans",
        "}",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_is_answered_when_accepted() {
        let accept = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, v.parse().unwrap());
            wants_protobuf(&h)
        };
        assert!(accept("application/protobuf"));
        assert!(accept("application/json, Application/Protobuf; q=0.5"));
        assert!(!accept("application/json, application/protobuf;q=0"));
        assert!(!accept("application/json"));
    }
}
