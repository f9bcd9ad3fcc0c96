//! Jaeger's api_v3 over HTTP (the `QueryService` HTTP gateway of the Jaeger query service):
//! traces as OTLP JSON, as Jaeger v2 and its UI read them.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /api/v3/traces/{trace_id}` | `{"result": <TracesData>}`: the trace as OTLP JSON. The id is 1 to 32 hex digits. Optional `start_time`, `end_time` (RFC 3339, checked but not needed) and `raw_traces` (a bool; Stitch never adjusts traces, so both are raw). 404 when unknown. Written span by span as the client reads it. |
//! | `GET /api/v3/traces?query.*` | `{"result": <TracesData>}` holding the `resourceSpans` of every matching trace, newest trace first; 404 `No traces found` when none matches, as Jaeger answers. |
//! | `GET /api/v3/trace-summaries?query.*` | `{"summaries": [...]}`: per matching trace, newest first, `traceId` (hex), `rootServiceName`, `rootOperationName` (the earliest span without a parent), `minStartTimeUnixNano`, `maxEndTimeUnixNano` (decimal strings), `spanCount`, `errorSpanCount`, `orphanSpanCount` (spans whose parent is not in the trace) and `services` (`name`, `spanCount`, `errorSpanCount`, by name); counts of 0 are left out. No match is an empty list. The current Jaeger UI searches with it. |
//! | `GET /api/v3/services` | `{"services": [...]}`, sorted |
//! | `GET /api/v3/operations?service=&span_kind=` | `{"operations": [{"name", "spanKind"}]}`; an unspecified kind is reported as `internal`, as Jaeger does. `service` is required. |
//!
//! Search parameters, all of one span at once (an empty value counts as absent), by their
//! camelCase names as the current Jaeger UI sends them, or by the snake_case names Grafana
//! and older clients use (below; `query.serviceName` or `query.service_name`, and so on;
//! `spanKind`/`span_kind`, `startTime`/`start_time`, `rawTraces`/`raw_traces` likewise):
//!
//! - `query.service_name`, `query.operation_name`;
//! - `query.attributes`: a JSON object of strings (`{"http.status_code":"200"}`), matched as
//!   text against the span's, its resource's and its events' attributes (`error`/`true` and
//!   `span.kind` work as in `/api/traces`);
//! - `query.start_time_min` (inclusive) and `query.start_time_max` (exclusive): RFC 3339 times,
//!   both required, the maximum later than the minimum, bounding the span's start;
//! - `query.duration_min`, `query.duration_max`: Go durations (`10ms`, `1.5s`);
//! - `query.search_depth` (or the older `query.num_traces`): the most traces, default 100 as in
//!   Jaeger;
//! - `query.raw_traces`: a bool, accepted and without effect.
//!
//! Errors are Jaeger's gateway errors: `{"error": {"httpCode": <status>, "message": <reason>}}`,
//! with `malformed parameter <name>: ...` for a bad parameter.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use serde_json::{Value, json};
use stitch_model::SpanKind;
use stitch_query::{SearchQuery, TraceReader};

use crate::duration::parse_duration_nanos;
use crate::error::{ApiError, GatewayError};
use crate::params::{self, Params, check_limit, check_tags, parse_trace_id};

type Reader = Arc<dyn TraceReader>;

/// Traces a search returns without `query.searchDepth` (Jaeger's default).
const DEFAULT_SEARCH_DEPTH: usize = 100;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/traces/{trace_id}", get(get_trace))
        .route("/api/v3/trace-summaries", get(trace_summaries))
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
        .with_state(reader)
}

/// A refused parameter, named as Jaeger names it.
fn param(name: &str, why: impl std::fmt::Display) -> GatewayError {
    GatewayError::bad(format!("malformed parameter {name}: {why}"))
}

type Answer = Result<Response, GatewayError>;

fn json_body(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Params, GatewayError> {
    let Query(pairs) =
        query.map_err(|e| GatewayError::bad(format!("malformed query string: {e}")))?;
    Ok(Params::new(pairs))
}

/// A parameter by its camelCase name or one of the older snake_case aliases (`names`, first
/// found wins): the name it was given by and its value.
fn named<'a>(params: &'a Params, names: &[&'static str]) -> Option<(&'static str, &'a str)> {
    names
        .iter()
        .find_map(|&n| params.get(n).map(|text| (n, text)))
}

fn bool_param(params: &Params, names: &[&'static str]) -> Result<Option<bool>, GatewayError> {
    named(params, names)
        .map(|(name, text)| match text {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(param(name, format!("{text:?} is not a bool"))),
        })
        .transpose()
}

fn time_param(params: &Params, names: &[&'static str]) -> Result<Option<u64>, GatewayError> {
    named(params, names)
        .map(|(name, text)| parse_rfc3339_nanos(text).map_err(|e| param(name, e)))
        .transpose()
}

fn duration_param(params: &Params, names: &[&'static str]) -> Result<Option<u64>, GatewayError> {
    named(params, names)
        .map(|(name, text)| {
            parse_duration_nanos(text).ok_or_else(|| {
                param(
                    name,
                    format!("{text:?} is not a duration such as 10ms or 1.5s"),
                )
            })
        })
        .transpose()
}

async fn get_trace(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    let Path(text) = path.map_err(|e| param("trace_id", e))?;
    let id = parse_trace_id(&text).map_err(|e| param("trace_id", e))?;
    let params = params(query)?;
    time_param(&params, &["startTime", "start_time"])?;
    time_param(&params, &["endTime", "end_time"])?;
    bool_param(&params, &["rawTraces", "raw_traces"])?;
    match reader.trace(id).await? {
        Some(trace) if !trace.is_empty() => {
            Ok(crate::streamed::otlp_trace("{\"result\":", trace, "}"))
        }
        _ => Err(GatewayError(ApiError::not_found("trace not found"))),
    }
}

/// The search a `GET /api/v3/traces` asks for.
fn parse_find(params: &Params) -> Result<SearchQuery, GatewayError> {
    let (Some(min), Some(max)) = (
        time_param(params, &["query.startTimeMin", "query.start_time_min"])?,
        time_param(params, &["query.startTimeMax", "query.start_time_max"])?,
    ) else {
        return Err(GatewayError::bad(
            "query.startTimeMin and query.startTimeMax are required",
        ));
    };
    if max <= min {
        return Err(param(
            "query.startTimeMax",
            "must be later than query.startTimeMin",
        ));
    }
    let limit = match named(
        params,
        &[
            "query.searchDepth",
            "query.search_depth",
            "query.num_traces",
        ],
    ) {
        None => DEFAULT_SEARCH_DEPTH,
        Some((name, text)) => match text.parse::<i64>() {
            Ok(n) if n > 0 => check_limit(name, usize::try_from(n).unwrap_or(usize::MAX))?,
            Ok(_) => DEFAULT_SEARCH_DEPTH,
            Err(e) => return Err(param(name, e)),
        },
    };
    let mut tags = Vec::new();
    if let Some(text) = params.get("query.attributes") {
        let object: serde_json::Map<String, Value> = serde_json::from_str(text).map_err(|e| {
            param(
                "query.attributes",
                format!("expected a JSON object of strings: {e}"),
            )
        })?;
        for (key, value) in object {
            let value = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(param(
                        "query.attributes",
                        format!("the value of {key:?} must be a string, not {other}"),
                    ));
                }
            };
            tags.push((key, value));
        }
    }
    bool_param(params, &["query.rawTraces", "query.raw_traces"])?;
    check_tags("query.attributes", tags.len())?;
    let text = |names: &[&'static str]| named(params, names).map(|(_, t)| t.to_owned());
    Ok(SearchQuery {
        service: text(&["query.serviceName", "query.service_name"]),
        operation: text(&["query.operationName", "query.operation_name"]),
        span_kind: None,
        tags,
        min_duration_nanos: duration_param(params, &["query.durationMin", "query.duration_min"])?,
        max_duration_nanos: duration_param(params, &["query.durationMax", "query.duration_max"])?,
        start_unix_nanos: Some(min),
        // The maximum is exclusive.
        end_unix_nanos: Some(max.saturating_sub(1)),
        limit,
    })
}

async fn find_traces(
    State(reader): State<Reader>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    let search = parse_find(&params(query)?)?;
    let mut traces = reader.search(&search).await?;
    // api_v3 has no field for a note: a cut answer holds the newest traces that fit.
    params::fit_answer(&mut traces);
    if traces.is_empty() {
        return Err(GatewayError(ApiError::not_found("No traces found")));
    }
    let resource_spans: Vec<Value> = traces
        .iter()
        .flat_map(|t| &t.resource_spans)
        .map(stitch_wire::otlp_json::resource_spans_to_json)
        .collect();
    Ok(json_body(
        json!({"result": {"resourceSpans": resource_spans}}),
    ))
}

/// `GET /api/v3/trace-summaries`: the traces a search finds, each summarised (the current
/// Jaeger UI's search list).
async fn trace_summaries(
    State(reader): State<Reader>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    let search = parse_find(&params(query)?)?;
    let traces = reader.search(&search).await?;
    let summaries: Vec<Value> = traces.iter().map(summary).collect();
    Ok(json_body(json!({ "summaries": summaries })))
}

/// One trace as a `TraceSummary`, fields at their default left out as proto3 JSON does.
fn summary(trace: &stitch_model::Trace) -> Value {
    let ids: std::collections::HashSet<_> = trace.spans().map(|s| s.span.span_id).collect();
    let mut services: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    let (mut spans, mut errors, mut orphans) = (0u64, 0u64, 0u64);
    let (mut start, mut end) = (u64::MAX, 0u64);
    let mut root = None;
    for s in trace.spans() {
        let error = u64::from(s.span.is_error());
        spans += 1;
        errors += error;
        let entry = services.entry(s.resource.service_name()).or_default();
        entry.0 += 1;
        entry.1 += error;
        start = start.min(s.span.start_time_unix_nano);
        end = end.max(s.span.end_time_unix_nano);
        match s.span.parent_span_id {
            None => {
                // The earliest of the spans without a parent.
                if root.is_none_or(|r: stitch_model::SpanRef<'_>| {
                    s.span.start_time_unix_nano < r.span.start_time_unix_nano
                }) {
                    root = Some(s);
                }
            }
            Some(p) if !ids.contains(&p) => orphans += 1,
            Some(_) => {}
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("traceId".into(), json!(trace.trace_id.to_hex()));
    if let Some(r) = root {
        let (service, name) = (r.service_name(), r.span.name.as_str());
        if !service.is_empty() {
            out.insert("rootServiceName".into(), json!(service));
        }
        if !name.is_empty() {
            out.insert("rootOperationName".into(), json!(name));
        }
    }
    if spans > 0 {
        out.insert("minStartTimeUnixNano".into(), json!(start.to_string()));
        out.insert("maxEndTimeUnixNano".into(), json!(end.to_string()));
    }
    for (key, n) in [
        ("spanCount", spans),
        ("errorSpanCount", errors),
        ("orphanSpanCount", orphans),
    ] {
        if n > 0 {
            out.insert(key.into(), json!(n));
        }
    }
    let services: Vec<Value> = services
        .into_iter()
        .map(|(name, (n, e))| {
            let mut s = serde_json::Map::new();
            s.insert("name".into(), json!(name));
            s.insert("spanCount".into(), json!(n));
            if e > 0 {
                s.insert("errorSpanCount".into(), json!(e));
            }
            Value::Object(s)
        })
        .collect();
    out.insert("services".into(), Value::Array(services));
    Value::Object(out)
}

async fn services(State(reader): State<Reader>) -> Answer {
    let services = reader.services().await?;
    Ok(json_body(json!({"services": services})))
}

async fn operations(
    State(reader): State<Reader>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    let params = params(query)?;
    let service = params
        .get("service")
        .ok_or_else(|| GatewayError::bad("service is required"))?;
    let kind = named(&params, &["spanKind", "span_kind"])
        .map(|(name, text)| {
            SpanKind::parse(text).ok_or_else(|| {
                param(
                    name,
                    format!("{text:?} is not one of internal, server, client, producer, consumer"),
                )
            })
        })
        .transpose()?;
    let operations: Vec<Value> = reader
        .operations(service)
        .await?
        .into_iter()
        .filter(|op| match kind {
            None => true,
            // Jaeger reports an unspecified kind as internal, so it is found as internal too.
            Some(SpanKind::Internal) => {
                matches!(op.kind, SpanKind::Internal | SpanKind::Unspecified)
            }
            Some(k) => op.kind == k,
        })
        .map(|op| {
            let kind = match op.kind {
                SpanKind::Unspecified => SpanKind::Internal.as_str(),
                k => k.as_str(),
            };
            json!({"name": op.name, "spanKind": kind})
        })
        .collect();
    Ok(json_body(json!({"operations": operations})))
}

/// Parses an RFC 3339 time (`2024-06-10T06:13:20.123456789Z`, `...+02:00`; `t`/`z` and a space
/// for `T` accepted) into Unix nanoseconds. Times before 1970 are errors.
pub fn parse_rfc3339_nanos(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time such as 2024-06-10T06:13:20Z");
    let b = text.as_bytes();
    if b.len() < 20 {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u64, String> {
        let s = &text.get(range).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u64>().map_err(|_| bad())
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0u64;
    if b[i] == b'.' {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        for (k, c) in b[i + 1..i + 1 + digits].iter().enumerate() {
            if k < 9 {
                nanos = nanos * 10 + u64::from(c - b'0');
            }
        }
        for _ in digits..9 {
            nanos *= 10;
        }
        i += 1 + digits;
    }
    let offset_secs: i64 = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: u8| {
                c.is_ascii_digit()
                    .then(|| i64::from(c - b'0'))
                    .ok_or_else(bad)
            };
            let h = digit(*h1)? * 10 + digit(*h2)?;
            let m = digit(*m1)? * 10 + digit(*m2)?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let s = h * 3600 + m * 60;
            if *sign == b'+' { s } else { -s }
        }
        _ => return Err(bad()),
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    let secs = u64::try_from(secs).map_err(|_| format!("{text:?} is before 1970"))?;
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(bad)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_unix_nanoseconds() {
        assert_eq!(parse_rfc3339_nanos("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_nanos("2024-06-10T06:13:20.123456789Z"),
            Ok(1_718_000_000_123_456_789)
        );
        assert_eq!(
            parse_rfc3339_nanos("2024-06-10T08:13:20.5+02:00"),
            Ok(1_718_000_000_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_nanos("2024-06-10t06:13:20.1234567891z"),
            Ok(1_718_000_000_123_456_789),
            "digits past nanoseconds are cut"
        );
        assert_eq!(
            parse_rfc3339_nanos("2000-02-29T00:00:00-00:30"),
            Ok(951_784_200_000_000_000)
        );
        for bad in [
            "",
            "2024-06-10",
            "2024-06-10T06:13:20",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-06-10T24:00:00Z",
            "2024-06-10T06:13:20.Z",
            "2024-06-10T06:13:20+2:00",
            "1969-12-31T23:59:59Z",
            "2024-06-10T06:13:2xZ",
            "２０２４-06-10T06:13:20Z",
        ] {
            assert!(parse_rfc3339_nanos(bad).is_err(), "{bad:?}");
        }
    }
}
