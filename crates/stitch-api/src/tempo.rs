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

/// The intrinsics Tempo offers for autocompletion; Stitch's TraceQL reads each of them.
const INTRINSICS: &[&str] = &[
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "link:spanID",
    "link:traceID",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:id",
    "span:kind",
    "span:name",
    "span:parentID",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:id",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

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
    let mut doc = stitch_wire::otlp_json::trace_to_jsonpb(&trace);
    let batches = doc
        .get_mut("resourceSpans")
        .map(Json::take)
        .unwrap_or_default();
    Ok(axum::Json(json!({ "batches": batches })).into_response())
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
    Ok(
        axum::Json(json!({ "trace": stitch_wire::otlp_json::trace_to_jsonpb(&trace) }))
            .into_response(),
    )
}

async fn search(State(reader): State<Reader>, query: Q) -> Answer {
    let params = params(query)?;
    let (start, end) = window(&params)?;
    let limit = count(&params, "limit", DEFAULT_LIMIT, MAX_SEARCH_LIMIT)?;
    let spss = count(&params, "spss", DEFAULT_SPSS, MAX_SPSS)?;
    let (min, max) = (
        duration(&params, "minDuration")?,
        duration(&params, "maxDuration")?,
    );
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(TempoError::bad(
            "invalid maxDuration: it must be at least minDuration",
        ));
    }
    let text = match (params.get("q"), params.get("tags")) {
        (Some(_), Some(_)) => {
            return Err(TempoError::bad(
                "invalid request: give either q (TraceQL) or tags (logfmt), not both",
            ));
        }
        (Some(q), None) => q.to_owned(),
        (None, Some(tags)) => tags_to_traceql(tags)?,
        (None, None) => "{ }".to_owned(),
    };
    let text = with_trace_duration(&text, min, max);
    let q = TraceQl::parse(&text)?;
    let found = traceql::search(&*reader, &q, start, end, limit, spss).await?;
    Ok(axum::Json(json!({
        "traces": found.traces.iter().map(crate::search::trace_json).collect::<Vec<_>>(),
        "metrics": { "inspectedTraces": found.inspected_traces },
    }))
    .into_response())
}

/// `query` followed by a stage keeping traces whose duration is within the bounds.
fn with_trace_duration(query: &str, min: Option<u64>, max: Option<u64>) -> String {
    let bounds: Vec<String> = [(min, ">="), (max, "<=")]
        .into_iter()
        .filter_map(|(d, op)| d.map(|d| format!("trace:duration {op} {d}ns")))
        .collect();
    if bounds.is_empty() {
        return query.to_owned();
    }
    // The stage goes on a line of its own (a `//` comment in the query ends at the line's
    // end) and before a trailing `with(...)` hint, which must stay last.
    let trimmed = query.trim_end();
    let (body, hint) = match trimmed.rfind("with") {
        Some(i)
            if trimmed.ends_with(')')
                && trimmed[i + 4..].trim_start().starts_with('(')
                && !trimmed[i..].contains(['{', '}', '|']) =>
        {
            (&trimmed[..i], &trimmed[i..])
        }
        _ => (trimmed, ""),
    };
    format!("{body}\n| {{ {} }}\n{hint}", bounds.join(" && "))
}

/// TraceQL for Tempo's `tags` parameter: logfmt `key=value` pairs, every one required of one
/// span. `service.name` is the resource's service, `name` the span name, `status.code` the
/// status, `error=true` an error status; other keys are span or resource attributes, whose
/// value may be written as text or as the number or boolean it is.
fn tags_to_traceql(tags: &str) -> Result<String, TempoError> {
    let pairs = logfmt(tags).map_err(TempoError::bad)?;
    if pairs.is_empty() {
        return Ok("{ }".to_owned());
    }
    crate::params::check_tags("tags", pairs.len())?;
    let conditions: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            Ok(match (k.as_str(), v.as_deref()) {
                (key, None) => format!(".{} != nil", quoted(key)),
                ("service.name", Some(v)) => format!("resource.service.name = {}", quoted(v)),
                ("name", Some(v)) => format!("name = {}", quoted(v)),
                ("status.code", Some(v)) => {
                    let v = v.to_ascii_lowercase();
                    match v.strip_prefix("status_code_").unwrap_or(&v) {
                        "unset" | "0" => "status = unset".to_owned(),
                        "ok" | "1" => "status = ok".to_owned(),
                        "error" | "2" => "status = error".to_owned(),
                        _ => {
                            return Err(TempoError::bad(format!(
                                "invalid tags: status.code is {v:?}; it must be ok, error or unset"
                            )));
                        }
                    }
                }
                ("error", Some("true")) => "status = error".to_owned(),
                (key, Some(v)) => {
                    let attr = format!(".{}", quoted(key));
                    let mut forms = vec![format!("{attr} = {}", quoted(v))];
                    if v.parse::<i64>().is_ok()
                        || v.parse::<f64>().is_ok_and(f64::is_finite)
                        || v == "true"
                        || v == "false"
                    {
                        forms.push(format!("{attr} = {v}"));
                    }
                    format!("({})", forms.join(" || "))
                }
            })
        })
        .collect::<Result<_, TempoError>>()?;
    Ok(format!("{{ {} }}", conditions.join(" && ")))
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Parses logfmt: space-separated `key=value`, `key="quoted value"` (with `\"` and `\\`
/// escapes) or a bare `key`.
fn logfmt(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            return Err("invalid tags: a pair has no key".into());
        }
        if chars.next_if_eq(&'=').is_none() {
            out.push((key, None));
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("invalid tags: the value of {key} is cut off")),
                    },
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "invalid tags: the value of {key} has no closing quote"
                        ));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(format!("invalid tags: {key} is given twice"));
        }
        out.push((key, Some(value)));
    }
}

/// The traces tag names and values are read from, and with `q`, the spans of each that match
/// it (all spans without `q`).
struct Sample {
    traces: Vec<Trace>,
    matched: Vec<Option<BTreeSet<SpanId>>>,
}

impl Sample {
    async fn read(reader: &Reader, params: &Params) -> Result<Sample, TempoError> {
        let q = params
            .get("q")
            .filter(|q| !q.trim().is_empty() && q.trim() != "{}")
            .map(TraceQl::parse)
            .transpose()?;
        let (start, end) = window(params)?;
        let traces = reader
            .search(&SearchQuery {
                start_unix_nanos: Some(start),
                end_unix_nanos: Some(end),
                limit: SCAN_TRACES,
                ..q.as_ref().and_then(TraceQl::prefilter).unwrap_or_default()
            })
            .await?;
        let matched = traces
            .iter()
            .map(|t| {
                q.as_ref().map(|q| {
                    q.evaluate(t, usize::MAX)
                        .map(|m| {
                            m.spansets
                                .iter()
                                .flat_map(|s| s.spans.iter().map(|s| s.span_id))
                                .collect()
                        })
                        .unwrap_or_default()
                })
            })
            .collect();
        Ok(Sample { traces, matched })
    }

    fn spans(&self) -> impl Iterator<Item = SpanRef<'_>> {
        self.traces.iter().zip(&self.matched).flat_map(|(t, m)| {
            t.spans()
                .filter(move |s| m.as_ref().is_none_or(|m| m.contains(&s.span.span_id)))
        })
    }
}

fn limit_of(params: &Params) -> Result<usize, TempoError> {
    count(params, "limit", MAX_VALUES, usize::MAX)
}

/// Attribute names per scope in the sample.
fn names_by_scope(sample: &Sample) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut by: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut add = |scope: &'static str, kvs: &[KeyValue]| {
        by.entry(scope)
            .or_default()
            .extend(kvs.iter().map(|kv| kv.key.clone()));
    };
    for s in sample.spans() {
        add("resource", &s.resource.attributes);
        add("span", &s.span.attributes);
        add("instrumentation", &s.scope.attributes);
        for e in &s.span.events {
            add("event", &e.attributes);
        }
        for l in &s.span.links {
            add("link", &l.attributes);
        }
    }
    by.retain(|_, names| !names.is_empty());
    by
}

const SCOPES: &[&str] = &[
    "resource",
    "span",
    "event",
    "link",
    "instrumentation",
    "trace",
    "intrinsic",
    "none",
];

fn scope_param(params: &Params) -> Result<Option<&str>, TempoError> {
    match params.get("scope") {
        Some(s) if !SCOPES.contains(&s) => Err(TempoError::bad(format!(
            "invalid scope: {s} (one of {})",
            SCOPES.join(", ")
        ))),
        s => Ok(s.filter(|s| *s != "none")),
    }
}

async fn tags_v1(State(reader): State<Reader>, query: Q) -> Answer {
    let params = params(query)?;
    let scope = scope_param(&params)?;
    let limit = limit_of(&params)?;
    let names: BTreeSet<String> = if scope == Some("intrinsic") {
        INTRINSICS.iter().map(|s| s.to_string()).collect()
    } else {
        let sample = Sample::read(&reader, &params).await?;
        names_by_scope(&sample)
            .into_iter()
            .filter(|(s, _)| match scope {
                None => matches!(*s, "resource" | "span"),
                Some(want) => *s == want,
            })
            .flat_map(|(_, names)| names)
            .collect()
    };
    Ok(
        axum::Json(json!({ "tagNames": names.into_iter().take(limit).collect::<Vec<_>>() }))
            .into_response(),
    )
}

async fn tags_v2(State(reader): State<Reader>, query: Q) -> Answer {
    let params = params(query)?;
    let scope = scope_param(&params)?;
    let limit = limit_of(&params)?;
    let mut scopes = Vec::new();
    if scope != Some("intrinsic") {
        let sample = Sample::read(&reader, &params).await?;
        for (name, tags) in names_by_scope(&sample) {
            if scope.is_none_or(|s| s == name) {
                scopes.push(
                    json!({"name": name, "tags": tags.into_iter().take(limit).collect::<Vec<_>>()}),
                );
            }
        }
    }
    if scope.is_none_or(|s| s == "intrinsic") {
        scopes.push(
            json!({"name": "intrinsic", "tags": INTRINSICS.iter().take(limit).collect::<Vec<_>>()}),
        );
    }
    Ok(axum::Json(json!({ "scopes": scopes })).into_response())
}

fn path_text(path: Result<Path<String>, PathRejection>) -> Result<String, TempoError> {
    let Path(text) = path.map_err(|e| TempoError::bad(format!("malformed path: {e}")))?;
    Ok(text)
}

/// A tag value and its TraceQL type name.
fn typed(v: &AnyValue) -> Option<(&'static str, String)> {
    Some(match v {
        AnyValue::String(s) => ("string", s.clone()),
        AnyValue::Int(i) => ("int", i.to_string()),
        AnyValue::Double(d) => ("float", d.to_string()),
        AnyValue::Bool(b) => ("bool", b.to_string()),
        _ => return None,
    })
}

async fn values_v1(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
    query: Q,
) -> Answer {
    let tag = path_text(path)?;
    let params = params(query)?;
    let limit = limit_of(&params)?;
    let values: BTreeSet<String> = match tag.as_str() {
        "status.code" => ["error", "ok", "unset"].map(String::from).into(),
        "error" => ["true".to_owned()].into(),
        "service.name" => reader.services().await?.into_iter().collect(),
        key => {
            let sample = Sample::read(&reader, &params).await?;
            sample
                .spans()
                .flat_map(|s| {
                    stitch_model::find_attribute(&s.span.attributes, key)
                        .or_else(|| stitch_model::find_attribute(&s.resource.attributes, key))
                        .and_then(typed)
                        .map(|(_, v)| v)
                })
                .collect()
        }
    };
    Ok(
        axum::Json(json!({ "tagValues": values.into_iter().take(limit).collect::<Vec<_>>() }))
            .into_response(),
    )
}

/// Where a v2 tag identifier reads its values.
enum Source {
    Fixed(&'static str, &'static [&'static str]),
    /// Durations and ids: no values are offered, as Tempo does.
    Nothing,
    Services,
    Attribute(traceql::Scope, String),
    SpanName,
    StatusMessage,
    RootService,
    RootName,
    EventName,
    ScopeName,
    ScopeVersion,
}

fn source(identifier: &str) -> Result<Source, TempoError> {
    const STATUSES: &[&str] = &["error", "ok", "unset"];
    const KINDS: &[&str] = &[
        "client",
        "consumer",
        "internal",
        "producer",
        "server",
        "unspecified",
    ];
    Ok(match identifier {
        "status" | "span:status" => Source::Fixed("keyword", STATUSES),
        "kind" | "span:kind" => Source::Fixed("keyword", KINDS),
        "duration"
        | "span:duration"
        | "traceDuration"
        | "trace:duration"
        | "trace:id"
        | "span:id"
        | "span:parentID"
        | "link:traceID"
        | "link:spanID"
        | "event:timeSinceStart" => Source::Nothing,
        "name" | "span:name" => Source::SpanName,
        "statusMessage" | "span:statusMessage" => Source::StatusMessage,
        "rootServiceName" | "trace:rootService" => Source::RootService,
        "rootName" | "trace:rootName" => Source::RootName,
        "event:name" => Source::EventName,
        "instrumentation:name" => Source::ScopeName,
        "instrumentation:version" => Source::ScopeVersion,
        "resource.service.name" => Source::Services,
        other => {
            let (scope, name) = if let Some(n) = other.strip_prefix("resource.") {
                (traceql::Scope::Resource, n)
            } else if let Some(n) = other.strip_prefix("span.") {
                (traceql::Scope::Span, n)
            } else if let Some(n) = other.strip_prefix("event.") {
                (traceql::Scope::Event, n)
            } else if let Some(n) = other.strip_prefix("link.") {
                (traceql::Scope::Link, n)
            } else if let Some(n) = other.strip_prefix("instrumentation.") {
                (traceql::Scope::Instrumentation, n)
            } else if let Some(n) = other.strip_prefix('.') {
                (traceql::Scope::Any, n)
            } else {
                return Err(TempoError::bad(format!(
                    "please provide a valid tag name: {other:?} is not a TraceQL attribute (span.x, resource.x, .x) or intrinsic (name, status, kind, ...)"
                )));
            };
            if name.is_empty() {
                return Err(TempoError::bad(format!(
                    "please provide a valid tag name: {other:?} names no attribute"
                )));
            }
            Source::Attribute(scope, name.trim_matches('"').to_owned())
        }
    })
}

async fn values_v2(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
    query: Q,
) -> Answer {
    let identifier = path_text(path)?;
    let params = params(query)?;
    let limit = limit_of(&params)?;
    let source = source(&identifier)?;
    let mut values: BTreeSet<(&'static str, String)> = BTreeSet::new();
    match source {
        Source::Fixed(kind, list) => values.extend(list.iter().map(|v| (kind, v.to_string()))),
        Source::Nothing => {}
        Source::Services if params.get("q").is_none() => {
            values.extend(reader.services().await?.into_iter().map(|s| ("string", s)));
        }
        source => {
            let sample = Sample::read(&reader, &params).await?;
            let mut add = |v: Option<(&'static str, String)>| {
                if let Some(v) = v {
                    values.insert(v);
                }
            };
            let text = |s: &str| (!s.is_empty()).then(|| ("string", s.to_owned()));
            for s in sample.spans() {
                let find = |kvs: &[KeyValue], key: &str| {
                    stitch_model::find_attribute(kvs, key).and_then(typed)
                };
                match &source {
                    Source::Services => add(text(s.resource.service_name())),
                    Source::SpanName => add(text(&s.span.name)),
                    Source::StatusMessage => add(text(&s.span.status.message)),
                    Source::RootService if s.span.parent_span_id.is_none() => {
                        add(text(s.resource.service_name()))
                    }
                    Source::RootName if s.span.parent_span_id.is_none() => add(text(&s.span.name)),
                    Source::EventName => s.span.events.iter().for_each(|e| add(text(&e.name))),
                    Source::ScopeName => add(text(&s.scope.name)),
                    Source::ScopeVersion => add(text(&s.scope.version)),
                    Source::Attribute(scope, key) => match scope {
                        traceql::Scope::Resource => add(find(&s.resource.attributes, key)),
                        traceql::Scope::Span => add(find(&s.span.attributes, key)),
                        traceql::Scope::Any => add(find(&s.span.attributes, key)
                            .or_else(|| find(&s.resource.attributes, key))),
                        traceql::Scope::Event => s
                            .span
                            .events
                            .iter()
                            .for_each(|e| add(find(&e.attributes, key))),
                        traceql::Scope::Link => s
                            .span
                            .links
                            .iter()
                            .for_each(|l| add(find(&l.attributes, key))),
                        traceql::Scope::Instrumentation => add(find(&s.scope.attributes, key)),
                    },
                    _ => {}
                }
            }
        }
    }
    let values: Vec<Json> = values
        .into_iter()
        .take(limit)
        .map(|(kind, value)| json!({"type": kind, "value": value}))
        .collect();
    Ok(axum::Json(json!({ "tagValues": values })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_pairs_become_one_spanset_filter() {
        assert_eq!(
            tags_to_traceql(
                r#"service.name=checkout http.status_code=500 note="a \"b\"" error=true"#
            )
            .unwrap(),
            r#"{ resource.service.name = "checkout" && (."http.status_code" = "500" || ."http.status_code" = 500) && (."note" = "a \"b\"") && status = error }"#
        );
        assert_eq!(tags_to_traceql("  ").unwrap(), "{ }");
        assert!(tags_to_traceql("a=1 a=2").is_err());
        assert!(tags_to_traceql(r#"a="open"#).is_err());
        for text in [
            tags_to_traceql("service.name=x name=GET status.code=error retry").unwrap(),
            with_trace_duration("{ }", Some(1_000), Some(2_000)),
        ] {
            assert!(TraceQl::parse(&text).is_ok(), "{text}");
        }
    }

    #[test]
    fn duration_bounds_survive_comments_and_hints() {
        for query in [
            "{ } // the slow ones",
            "{ status = error } with(most_recent=true)",
            "{ name = \"with(x)\" }",
        ] {
            let text = with_trace_duration(query, Some(1_000), None);
            let q = TraceQl::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(
                q.to_text().contains("trace:duration"),
                "{text} -> {}",
                q.to_text()
            );
        }
        assert!(
            tags_to_traceql("status.code=STATUS_CODE_ERROR")
                .unwrap()
                .contains("status = error")
        );
        assert!(
            tags_to_traceql("status.code=2")
                .unwrap()
                .contains("status = error")
        );
        assert!(tags_to_traceql("status.code=bad").is_err());
        assert!(tags_to_traceql("ratio=1.5").unwrap().contains(" = 1.5"));
    }

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

    #[test]
    fn identifiers_name_where_values_come_from() {
        assert!(matches!(
            source("status").unwrap(),
            Source::Fixed("keyword", _)
        ));
        assert!(matches!(
            source("resource.service.name").unwrap(),
            Source::Services
        ));
        assert!(matches!(
            source("span.http.route").unwrap(),
            Source::Attribute(traceql::Scope::Span, ref k) if k == "http.route"
        ));
        assert!(matches!(
            source(".x").unwrap(),
            Source::Attribute(traceql::Scope::Any, _)
        ));
        assert!(source("http.route").is_err());
        assert!(source("span.").is_err());
    }
}
