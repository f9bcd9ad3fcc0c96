//! Compact trace views for the web UI's waterfall, so that a trace of 100,000 spans opens in
//! well under a second: the structure and timing of every span in a columnar document a few
//! megabytes long, and each span's details (attributes, events, links, scope) only when asked.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /api/v1/traces/{traceID}/waterfall` | The compact view below. |
//! | `GET /api/v1/traces/{traceID}/spans/{spanID}` | One span as OTLP JSON: `{"resource", "scope", "span"}` (the first span with that id). |
//!
//! The compact view:
//!
//! ```json
//! {
//!   "traceId": "4bf9…4736",
//!   "baseUnixSecond": 1700000000,
//!   "spanCount": 3,
//!   "names": ["GET /users", "SELECT users"],
//!   "resources": [{"service": "frontend", "attributes": [{"key": "service.name", "value": {"stringValue": "frontend"}}]}],
//!   "spans": {
//!     "id": ["00f067aa0ba902b7", …], "parent": [-1, 0, …], "resource": [0, 0, …],
//!     "name": [0, 1, …], "kind": [2, 3, …], "status": [0, 2, …],
//!     "start": [5000, 7000, …], "end": [90000, 40000, …]
//!   },
//!   "events": {"span": [1], "time": [12000], "name": [2]},
//!   "missingParents": [[2, "0000000000000bad"]]
//! }
//! ```
//!
//! - `spans` holds one column per field; element `i` of each column is span `i`, in the order
//!   the trace stores them. `parent` is the index of the parent span (the first span with the
//!   parent's id), or -1 for a root or an orphan; an orphan's missing parent id is listed in
//!   `missingParents` as `[index, id]`.
//! - `name` indexes `names`; `resource` indexes `resources` (one per resource group, with its
//!   service name and all its attributes as OTLP JSON key-values).
//! - `kind` and `status` are the OTLP enum numbers (kind: 0 unspecified … 5 consumer; status:
//!   0 unset, 1 ok, 2 error).
//! - Times are nanoseconds after `baseUnixSecond` (the whole second of the earliest start), so
//!   they are exact in a JavaScript number for traces up to about 100 days long.
//! - `events` lists every span event by span index, time and name (its attributes are in the
//!   span's details).
//!
//! Errors are `{"error": {"code": <HTTP status>, "message": <reason>}}`, as in the rest of
//! `/api/v1`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use serde::Serialize;
use serde_json::{Value, json};
use stitch_model::{SpanId, StatusCode as SpanStatus, Trace};
use stitch_query::TraceReader;
use stitch_wire::otlp_json::{key_value_to_json, span_to_json};

use crate::error::{ApiError, NativeError};
use crate::native::read_trace;

type Reader = Arc<dyn TraceReader>;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/v1/traces/{traceID}/waterfall", get(waterfall))
        .route("/api/v1/traces/{traceID}/spans/{spanID}", get(span_detail))
        .with_state(reader)
}

/// The compact view of a trace. See the module documentation.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaterfallView<'a> {
    pub trace_id: String,
    pub base_unix_second: u64,
    pub span_count: usize,
    pub names: Vec<&'a str>,
    pub resources: Vec<ResourceView>,
    pub spans: SpanColumns,
    pub events: EventColumns,
    pub missing_parents: Vec<(usize, String)>,
}

#[derive(Debug, Serialize)]
pub struct ResourceView {
    pub service: String,
    pub attributes: Vec<Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct SpanColumns {
    pub id: Vec<String>,
    pub parent: Vec<i64>,
    pub resource: Vec<u32>,
    pub name: Vec<u32>,
    pub kind: Vec<i32>,
    pub status: Vec<i32>,
    pub start: Vec<u64>,
    pub end: Vec<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct EventColumns {
    pub span: Vec<u32>,
    pub time: Vec<u64>,
    pub name: Vec<u32>,
}

/// Builds the compact view of `trace`.
pub fn waterfall_view(trace: &Trace) -> WaterfallView<'_> {
    let count: usize = trace.spans().count();
    let base = trace
        .spans()
        .map(|s| s.span.start_time_unix_nano)
        .min()
        .unwrap_or(0)
        / NANOS_PER_SECOND;
    let base_nanos = base * NANOS_PER_SECOND;
    let rel = |t: u64| t.saturating_sub(base_nanos);

    let mut names: Vec<&str> = Vec::new();
    let mut name_index: HashMap<&str, u32> = HashMap::new();
    let mut resources = Vec::with_capacity(trace.resource_spans.len());
    let mut spans = SpanColumns::default();
    let mut events = EventColumns::default();
    let mut index: HashMap<SpanId, usize> = HashMap::with_capacity(count);
    let mut parents: Vec<Option<SpanId>> = Vec::with_capacity(count);
    for (r, rs) in trace.resource_spans.iter().enumerate() {
        resources.push(ResourceView {
            service: rs.resource.service_name().to_owned(),
            attributes: rs
                .resource
                .attributes
                .iter()
                .map(key_value_to_json)
                .collect(),
        });
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let i = spans.id.len();
                index.entry(span.span_id).or_insert(i);
                parents.push(span.parent_span_id);
                spans.id.push(span.span_id.to_hex());
                spans.resource.push(u32::try_from(r).unwrap_or(u32::MAX));
                let name = span.name.as_str();
                let n = *name_index.entry(name).or_insert_with(|| {
                    names.push(name);
                    u32::try_from(names.len() - 1).unwrap_or(u32::MAX)
                });
                spans.name.push(n);
                spans.kind.push(span.kind.as_i32());
                spans.status.push(match span.status.code {
                    SpanStatus::Unset => 0,
                    SpanStatus::Ok => 1,
                    SpanStatus::Error => 2,
                });
                spans.start.push(rel(span.start_time_unix_nano));
                spans.end.push(rel(span.end_time_unix_nano));
                for e in &span.events {
                    let en = e.name.as_str();
                    let n = *name_index.entry(en).or_insert_with(|| {
                        names.push(en);
                        u32::try_from(names.len() - 1).unwrap_or(u32::MAX)
                    });
                    events.span.push(u32::try_from(i).unwrap_or(u32::MAX));
                    events.time.push(rel(e.time_unix_nano));
                    events.name.push(n);
                }
            }
        }
    }
    let mut missing_parents = Vec::new();
    spans.parent = parents
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            None => -1,
            Some(pid) => match index.get(pid) {
                Some(&j) if j != i => i64::try_from(j).unwrap_or(-1),
                _ => {
                    missing_parents.push((i, pid.to_hex()));
                    -1
                }
            },
        })
        .collect();
    WaterfallView {
        trace_id: trace.trace_id.to_hex(),
        base_unix_second: base,
        span_count: spans.id.len(),
        names,
        resources,
        spans,
        events,
        missing_parents,
    }
}

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn waterfall(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, NativeError> {
    let Path(text) = path.map_err(|e| NativeError::bad(format!("malformed path: {e}")))?;
    let trace = read_trace(&reader, &text).await?;
    let body = tokio::task::spawn_blocking(move || serde_json::to_string(&waterfall_view(&trace)))
        .await
        .map_err(|e| ApiError::internal(format!("waterfall view failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("waterfall view failed: {e}")))?;
    Ok(json_response(body))
}

async fn span_detail(
    State(reader): State<Reader>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, NativeError> {
    let Path((trace_text, span_text)) =
        path.map_err(|e| NativeError::bad(format!("malformed path: {e}")))?;
    let Ok(span_id) = SpanId::from_hex(&span_text.to_ascii_lowercase()) else {
        return Err(NativeError::bad(format!(
            "invalid span id {span_text:?}: expected 16 hex digits"
        )));
    };
    let trace = read_trace(&reader, &trace_text).await?;
    for rs in &trace.resource_spans {
        for ss in &rs.scope_spans {
            if let Some(span) = ss.spans.iter().find(|s| s.span_id == span_id) {
                let scope = &ss.scope;
                let body = json!({
                    "resource": {"attributes": rs.resource.attributes.iter().map(key_value_to_json).collect::<Vec<_>>()},
                    "scope": {
                        "name": scope.name,
                        "version": scope.version,
                        "attributes": scope.attributes.iter().map(key_value_to_json).collect::<Vec<_>>(),
                    },
                    "span": span_to_json(span),
                });
                return Ok(json_response(body.to_string()));
            }
        }
    }
    Err(ApiError::not_found(format!(
        "span {span_text} not found in trace {}",
        trace.trace_id
    ))
    .into())
}
