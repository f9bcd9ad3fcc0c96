//! Zipkin's v2 query API, served beside the Zipkin collector on port 9411, so the Zipkin UI
//! and Grafana's Zipkin data source can read Stitch.
//!
//! Spans are written by `stitch_wire::zipkin` (the OpenTelemetry Collector exporter's mapping,
//! documented there). Errors are plain text: 400 names the bad parameter, 404 an unknown trace,
//! 500 carries the store's message.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /api/v2/services` | service names, sorted |
//! | `GET /api/v2/spans?serviceName=` | the service's span names, sorted (`serviceName` required) |
//! | `GET /api/v2/remoteServices?serviceName=` | remote service names (`remoteEndpoint.serviceName`) of the service's spans, sorted, from its most recent [`SCAN_TRACES`] traces |
//! | `GET /api/v2/traces?...` | matching traces, newest first, each a list of spans |
//! | `GET /api/v2/trace/{traceId}` | the trace's spans; 404 when unknown, written span by span as the client reads it. The id is 1 to 32 hex digits |
//! | `GET /api/v2/traceMany?traceIds=a,b` | the traces found among the ids (unknown ones left out) |
//! | `GET /api/v2/dependencies?endTs=&lookback=` | `[{"parent","child","callCount","errorCount"}]` over traces with spans starting in the window (at most [`DEPENDENCY_SCAN_TRACES`], newest first); `endTs` required |
//! | `GET /api/v2/autocompleteKeys` | the configured keys ([`ZipkinApiConfig::autocomplete_keys`]) |
//! | `GET /api/v2/autocompleteValues?key=` | the values of that attribute (span or resource) in the most recent [`SCAN_TRACES`] traces of the default lookback, sorted, at most [`MAX_VALUES`]; any key may be asked for |
//!
//! # Trace search
//!
//! `GET /api/v2/traces` takes Zipkin's parameters: `serviceName`, `spanName` (`all` counts as
//! absent), `remoteServiceName`, `annotationQuery`, `minDuration` and `maxDuration`
//! (microseconds), `endTs` (epoch milliseconds, default now), `lookback` (milliseconds, default
//! [`ZipkinApiConfig::default_lookback_millis`]) and `limit` (default 10). `annotationQuery` is
//! terms joined by ` and `: `key=value` asks for an attribute (span, resource or event) whose
//! text is `value`; a bare `error` asks for an ERROR status (the `error` tag became it); any
//! other bare term asks for an event of that name or an attribute with that key.
//!
//! The difference from Zipkin: every condition must hold on **one** span (Stitch's search
//! semantics), and the time window bounds that span's start, where Zipkin lets different spans
//! of the service satisfy different conditions and bounds the trace's first timestamp.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use serde_json::{Value, json};
use stitch_model::{SpanKind, SpanRef, Trace};
use stitch_query::{SearchQuery, TraceReader};
use stitch_wire::zipkin::{span_to_json, trace_to_zipkin};

use crate::error::{ApiError, ZipkinError};
use crate::params::{
    self, Params, check_limit, check_tags, check_trace_ids, check_window, parse_trace_id,
};

/// Traces read to answer `remoteServices` and `autocompleteValues`.
pub const SCAN_TRACES: usize = 1_000;
/// Traces read at most to compute `dependencies`.
pub const DEPENDENCY_SCAN_TRACES: usize = 10_000;
/// Values `autocompleteValues` returns at most.
pub const MAX_VALUES: usize = 1_000;
/// Traces `GET /api/v2/traces` returns when `limit` is absent (Zipkin's default).
pub const DEFAULT_LIMIT: usize = 10;

/// Attribute keys offered by `autocompleteKeys` unless configured otherwise.
pub const DEFAULT_AUTOCOMPLETE_KEYS: &[&str] = &[
    "http.method",
    "http.request.method",
    "http.route",
    "http.status_code",
    "http.response.status_code",
    "rpc.service",
    "rpc.method",
    "db.system",
    "messaging.system",
    "peer.service",
];

/// What the Zipkin API can be configured with.
#[derive(Clone, Debug, PartialEq)]
pub struct ZipkinApiConfig {
    /// The keys `autocompleteKeys` returns (Zipkin's `AUTOCOMPLETE_KEYS`).
    pub autocomplete_keys: Vec<String>,
    /// The window of a search without `lookback`, and of `autocompleteValues` (Zipkin's
    /// `QUERY_LOOKBACK`; default one day).
    pub default_lookback_millis: u64,
}

impl Default for ZipkinApiConfig {
    fn default() -> Self {
        ZipkinApiConfig {
            autocomplete_keys: DEFAULT_AUTOCOMPLETE_KEYS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            default_lookback_millis: 86_400_000,
        }
    }
}

struct Api {
    reader: Arc<dyn TraceReader>,
    config: ZipkinApiConfig,
}

type ApiState = State<Arc<Api>>;
type Q = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The Zipkin v2 query API over `reader`. See the module docs for the routes.
pub fn router(reader: Arc<dyn TraceReader>, config: ZipkinApiConfig) -> Router {
    Router::new()
        .route("/api/v2/services", get(services))
        .route("/api/v2/spans", get(span_names))
        .route("/api/v2/remoteServices", get(remote_services))
        .route("/api/v2/traces", get(traces))
        .route("/api/v2/trace/{traceId}", get(trace))
        .route("/api/v2/traceMany", get(trace_many))
        .route("/api/v2/dependencies", get(dependencies))
        .route("/api/v2/autocompleteKeys", get(autocomplete_keys))
        .route("/api/v2/autocompleteValues", get(autocomplete_values))
        .with_state(Arc::new(Api { reader, config }))
}

/// A failed request, answered as plain text.
type Error = ZipkinError;

type Answer = Result<Response, Error>;

fn ok_json(value: Value) -> Answer {
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response())
}

fn params(query: Q) -> Result<Params, Error> {
    let Query(pairs) = query.map_err(|e| Error::bad(format!("malformed query string: {e}")))?;
    Ok(Params::new(pairs))
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, Error> {
    params
        .get(name)
        .ok_or_else(|| Error::bad(format!("{name} is required")))
}

fn number(params: &Params, name: &str, what: &str) -> Result<Option<u64>, Error> {
    params
        .get(name)
        .map(|t| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| Error::bad(format!("{name} must be {what}, got {t:?}")))
        })
        .transpose()
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn trace_json(trace: &Trace) -> Value {
    Value::Array(trace_to_zipkin(trace).iter().map(span_to_json).collect())
}

async fn services(State(api): ApiState) -> Answer {
    ok_json(json!(api.reader.services().await?))
}

async fn span_names(State(api): ApiState, query: Q) -> Answer {
    let params = params(query)?;
    let service = required(&params, "serviceName")?;
    let names: BTreeSet<String> = api
        .reader
        .operations(service)
        .await?
        .into_iter()
        .map(|op| op.name)
        .collect();
    ok_json(json!(names))
}

async fn remote_services(State(api): ApiState, query: Q) -> Answer {
    let params = params(query)?;
    let service = required(&params, "serviceName")?;
    let traces = api
        .reader
        .search(&SearchQuery {
            service: Some(service.to_owned()),
            limit: SCAN_TRACES,
            ..Default::default()
        })
        .await?;
    let mut names = BTreeSet::new();
    for trace in &traces {
        for (s, z) in trace.spans().zip(trace_to_zipkin(trace)) {
            if s.service_name() == service
                && let Some(remote) = z.remote_endpoint
                && !remote.service_name.is_empty()
            {
                names.insert(remote.service_name);
            }
        }
    }
    ok_json(json!(names))
}

/// A parsed `GET /api/v2/traces`.
#[derive(Debug, Default, PartialEq)]
struct TraceSearch {
    query: SearchQuery,
    /// Bare annotation-query terms other than `error`: an event name or an attribute key.
    bare_terms: Vec<String>,
    remote_service: Option<String>,
}

fn parse_trace_search(
    params: &Params,
    now_millis: u64,
    config: &ZipkinApiConfig,
) -> Result<TraceSearch, Error> {
    let end_ms = number(params, "endTs", "epoch milliseconds")?.unwrap_or(now_millis);
    let lookback_ms =
        number(params, "lookback", "milliseconds")?.unwrap_or(config.default_lookback_millis);
    let min = number(params, "minDuration", "microseconds")?;
    let max = number(params, "maxDuration", "microseconds")?;
    if let (Some(min), Some(max)) = (min, max)
        && max < min
    {
        return Err(Error::bad("maxDuration must not be less than minDuration"));
    }
    check_window("'lookback'", lookback_ms.saturating_mul(1_000_000))?;
    let limit = match number(params, "limit", "a positive integer")? {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) => check_limit("limit", usize::try_from(n).unwrap_or(usize::MAX))?,
    };
    let mut tags = Vec::new();
    let mut bare_terms = Vec::new();
    if let Some(q) = params.get("annotationQuery") {
        for term in split_and(q) {
            match term.split_once('=') {
                Some((k, v)) => tags.push((k.trim().to_owned(), v.trim().to_owned())),
                None if term == "error" => tags.push(("error".to_owned(), "true".to_owned())),
                None => bare_terms.push(term.to_owned()),
            }
        }
    }
    check_tags("annotationQuery", tags.len() + bare_terms.len())?;
    let to_nanos = |ms: u64| ms.saturating_mul(1_000_000);
    Ok(TraceSearch {
        query: SearchQuery {
            service: params.get("serviceName").map(str::to_owned),
            operation: params
                .get("spanName")
                .filter(|n| *n != "all")
                .map(str::to_owned),
            span_kind: None,
            tags,
            min_duration_nanos: min.map(|m| m.saturating_mul(1_000)),
            max_duration_nanos: max.map(|m| m.saturating_mul(1_000)),
            start_unix_nanos: Some(to_nanos(end_ms.saturating_sub(lookback_ms))),
            end_unix_nanos: Some(to_nanos(end_ms)),
            limit,
        },
        bare_terms,
        remote_service: params.get("remoteServiceName").map(str::to_owned),
    })
}

/// The terms of an annotation query: split on ` and ` (any case), trimmed, empty ones dropped.
fn split_and(query: &str) -> Vec<&str> {
    let lower = query.to_ascii_lowercase();
    let mut terms = Vec::new();
    let mut start = 0;
    while let Some(at) = lower[start..].find(" and ") {
        terms.push(&query[start..start + at]);
        start += at + 5;
    }
    terms.push(&query[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

impl TraceSearch {
    fn needs_post_filter(&self) -> bool {
        !self.bare_terms.is_empty() || self.remote_service.is_some()
    }

    /// Whether one span of the trace satisfies every condition, including those the store
    /// cannot check.
    fn matches(&self, trace: &Trace) -> bool {
        let zipkin = self.remote_service.as_ref().map(|_| trace_to_zipkin(trace));
        trace.spans().enumerate().any(|(i, s)| {
            self.query.matches(&s)
                && self.bare_terms.iter().all(|t| has_term(&s, t))
                && self.remote_service.as_ref().is_none_or(|want| {
                    zipkin
                        .as_ref()
                        .and_then(|z| z.get(i))
                        .and_then(|z| z.remote_endpoint.as_ref())
                        .is_some_and(|e| &e.service_name == want)
                })
        })
    }
}

fn has_term(s: &SpanRef<'_>, term: &str) -> bool {
    s.span.events.iter().any(|e| e.name == term)
        || s.span.attributes.iter().any(|kv| kv.key == term)
        || s.resource.attributes.iter().any(|kv| kv.key == term)
}

async fn traces(State(api): ApiState, query: Q) -> Answer {
    let params = params(query)?;
    let search = parse_trace_search(&params, now_millis(), &api.config)?;
    let mut found = if search.needs_post_filter() {
        let mut wide = search.query.clone();
        wide.limit = search
            .query
            .limit
            .saturating_mul(10)
            .min(SCAN_TRACES)
            .max(search.query.limit);
        let mut found = api.reader.search(&wide).await?;
        found.retain(|t| search.matches(t));
        found.truncate(search.query.limit);
        found
    } else {
        api.reader.search(&search.query).await?
    };
    // Zipkin's answer is a bare list: a cut answer says so in a header.
    let cut = params::fit_answer(&mut found);
    let mut answer = ok_json(Value::Array(found.iter().map(trace_json).collect()))?;
    if let Some(note) = cut
        && let Ok(value) = http::HeaderValue::from_str(&note)
    {
        answer.headers_mut().insert("x-stitch-truncated", value);
    }
    Ok(answer)
}

async fn trace(State(api): ApiState, path: Result<Path<String>, PathRejection>) -> Answer {
    let Path(text) = path.map_err(|e| Error::bad(format!("malformed path: {e}")))?;
    let id = parse_trace_id(&text).map_err(Error::bad)?;
    match api.reader.trace(id).await? {
        Some(t) if !t.is_empty() => Ok(crate::streamed::zipkin_trace(t)),
        _ => Err(ZipkinError(ApiError::not_found(format!(
            "trace {text} not found"
        )))),
    }
}

async fn trace_many(State(api): ApiState, query: Q) -> Answer {
    let params = params(query)?;
    let list = required(&params, "traceIds")?;
    let mut ids = Vec::new();
    for text in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let id = parse_trace_id(text).map_err(Error::bad)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(Error::bad("traceIds is required"));
    }
    check_trace_ids("traceIds", ids.len())?;
    // Read together (each block once), answered in the order asked.
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    let mut found: std::collections::HashMap<_, _> = api
        .reader
        .traces_from(&sorted, 0)
        .await?
        .into_iter()
        .map(|t| (t.trace_id, t))
        .collect();
    ok_json(Value::Array(
        ids.iter()
            .filter_map(|id| found.remove(id))
            .filter(|t| !t.is_empty())
            .map(|t| trace_json(&t))
            .collect(),
    ))
}

async fn dependencies(State(api): ApiState, query: Q) -> Answer {
    let params = params(query)?;
    let end_ms = number(&params, "endTs", "epoch milliseconds")?
        .ok_or_else(|| Error::bad("endTs is required"))?;
    let lookback_ms =
        number(&params, "lookback", "milliseconds")?.unwrap_or(api.config.default_lookback_millis);
    check_window("'lookback'", lookback_ms.saturating_mul(1_000_000))?;
    let traces = api
        .reader
        .search(&SearchQuery {
            start_unix_nanos: Some(end_ms.saturating_sub(lookback_ms).saturating_mul(1_000_000)),
            end_unix_nanos: Some(end_ms.saturating_mul(1_000_000)),
            limit: DEPENDENCY_SCAN_TRACES,
            ..Default::default()
        })
        .await?;
    let mut links: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for trace in &traces {
        for (parent, child, error) in trace_links(trace) {
            let cell = links.entry((parent, child)).or_default();
            cell.0 += 1;
            cell.1 += u64::from(error);
        }
    }
    let list: Vec<Value> = links
        .into_iter()
        .map(|((parent, child), (calls, errors))| {
            let mut link = json!({"parent": parent, "child": child, "callCount": calls});
            if errors > 0 {
                link["errorCount"] = json!(errors);
            }
            link
        })
        .collect();
    ok_json(Value::Array(list))
}

/// The calls between services in one trace, as Zipkin's dependency linker finds them:
///
/// - a SERVER or CONSUMER span whose parent is in another service: parent's service → its
///   service (without a parent in the trace, its remote service → its service);
/// - a CLIENT or PRODUCER span with a remote service and no SERVER or CONSUMER child (the
///   callee is not instrumented): its service → the remote service.
///
/// A call is an error when either span has an ERROR status.
pub fn trace_links(trace: &Trace) -> Vec<(String, String, bool)> {
    let spans: Vec<SpanRef<'_>> = trace.spans().collect();
    let zipkin = trace_to_zipkin(trace);
    let remote = |i: usize| {
        zipkin
            .get(i)
            .and_then(|z| z.remote_endpoint.as_ref())
            .map(|e| e.service_name.as_str())
            .filter(|n| !n.is_empty())
    };
    let by_id: HashMap<_, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span.span_id, i))
        .collect();
    let mut callee_children = vec![false; spans.len()];
    for s in &spans {
        if matches!(s.span.kind, SpanKind::Server | SpanKind::Consumer)
            && let Some(p) = s.span.parent_span_id.and_then(|p| by_id.get(&p))
        {
            callee_children[*p] = true;
        }
    }
    let mut links = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        let service = s.service_name();
        match s.span.kind {
            SpanKind::Server | SpanKind::Consumer => {
                match s.span.parent_span_id.and_then(|p| by_id.get(&p)) {
                    Some(&p) => {
                        let parent = &spans[p];
                        if parent.service_name() != service {
                            links.push((
                                parent.service_name().to_owned(),
                                service.to_owned(),
                                s.span.is_error() || parent.span.is_error(),
                            ));
                        }
                    }
                    None => {
                        if let Some(caller) = remote(i).filter(|r| *r != service) {
                            links.push((caller.to_owned(), service.to_owned(), s.span.is_error()));
                        }
                    }
                }
            }
            SpanKind::Client | SpanKind::Producer if !callee_children[i] => {
                if let Some(callee) = remote(i).filter(|r| *r != service) {
                    links.push((service.to_owned(), callee.to_owned(), s.span.is_error()));
                }
            }
            _ => {}
        }
    }
    links
}

async fn autocomplete_keys(State(api): ApiState) -> Answer {
    ok_json(json!(api.config.autocomplete_keys))
}

async fn autocomplete_values(State(api): ApiState, query: Q) -> Answer {
    let params = params(query)?;
    let key = required(&params, "key")?;
    let end = now_millis();
    let traces = api
        .reader
        .search(&SearchQuery {
            start_unix_nanos: Some(
                end.saturating_sub(api.config.default_lookback_millis)
                    .saturating_mul(1_000_000),
            ),
            limit: SCAN_TRACES,
            ..Default::default()
        })
        .await?;
    let mut values = BTreeSet::new();
    'traces: for trace in &traces {
        for s in trace.spans() {
            for kv in s.span.attributes.iter().chain(&s.resource.attributes) {
                if kv.key == key {
                    values.insert(kv.value.to_text());
                    if values.len() >= MAX_VALUES {
                        break 'traces;
                    }
                }
            }
        }
    }
    ok_json(json!(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(pairs: &[(&str, &str)]) -> Result<TraceSearch, Error> {
        let params = Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        parse_trace_search(&params, 1_000_000, &ZipkinApiConfig::default())
    }

    #[test]
    fn annotation_queries_split_on_and() {
        assert_eq!(
            split_and("error and http.method=GET AND  cache.miss"),
            vec!["error", "http.method=GET", "cache.miss"]
        );
        let s = search(&[
            ("serviceName", "frontend"),
            ("spanName", "all"),
            (
                "annotationQuery",
                "error and http.method=GET and cache.miss",
            ),
            ("minDuration", "1500"),
            ("endTs", "900000"),
            ("lookback", "3600000"),
            ("limit", "5"),
        ])
        .ok()
        .unwrap();
        assert_eq!(s.query.service.as_deref(), Some("frontend"));
        assert_eq!(s.query.operation, None);
        assert_eq!(
            s.query.tags,
            vec![
                ("error".to_owned(), "true".to_owned()),
                ("http.method".to_owned(), "GET".to_owned())
            ]
        );
        assert_eq!(s.bare_terms, vec!["cache.miss".to_owned()]);
        assert_eq!(s.query.min_duration_nanos, Some(1_500_000));
        assert_eq!(s.query.start_unix_nanos, Some(0));
        assert_eq!(s.query.end_unix_nanos, Some(900_000_000_000));
        assert_eq!(s.query.limit, 5);
    }

    #[test]
    fn bad_numbers_are_named() {
        let e = search(&[("minDuration", "1s")]).err().unwrap();
        assert_eq!(e.0.status(), http::StatusCode::BAD_REQUEST);
        assert!(e.0.to_string().contains("minDuration"), "{}", e.0);
        let e = search(&[("minDuration", "10"), ("maxDuration", "5")])
            .err()
            .unwrap();
        assert!(e.0.to_string().contains("maxDuration"), "{}", e.0);
    }
}
