//! The HTTP handlers of the Jaeger-compatible query API.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use stitch_query::TraceReader;

use crate::error::{ApiError, Envelope, EnvelopeError};
use crate::jaeger::{JaegerTrace, trace_id_to_jaeger, trace_to_jaeger};
use crate::params::{self, Params, SearchRequest};

type Reader = Arc<dyn TraceReader>;
type ApiResult<T> = Result<Json<Envelope<T>>, ApiError>;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/traces", get(search))
        .route("/api/traces/{traceID}", get(get_trace))
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .with_state(reader)
}

fn query_params(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Params, ApiError> {
    let Query(pairs) =
        query.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    Ok(Params::new(pairs))
}

fn path_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(format!("malformed path: {e}")))
}

/// One trace, written span by span as the client reads it ([`crate::streamed`]): a trace can
/// hold a million spans.
async fn get_trace(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let text = path_param(path)?;
    let id = params::parse_trace_id(&text)
        .map_err(|e| ApiError::bad_request(format!("unable to parse param 'traceID': {e}")))?;
    match reader.trace(id).await? {
        Some(trace) if !trace.is_empty() => crate::streamed::jaeger_trace(trace),
        _ => Err(ApiError::NotFound("trace not found".into())),
    }
}

async fn search(
    State(reader): State<Reader>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Vec<JaegerTrace>> {
    let params = query_params(query)?;
    match params::parse_search(&params, now_unix_nanos())? {
        SearchRequest::Query(query) => {
            let mut traces = reader.search(&query).await?;
            let cut = params::fit_answer(&mut traces);
            let data = traces.iter().map(trace_to_jaeger).collect();
            let mut envelope = Envelope::new(data, 0);
            envelope.errors = cut.map(|msg| {
                vec![EnvelopeError {
                    code: None,
                    msg,
                    trace_id: None,
                }]
            });
            Ok(Json(envelope))
        }
        SearchRequest::ByIds(ids) => {
            // Read together (each block once), answered in the order asked.
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let found: std::collections::HashMap<_, _> = reader
                .traces_from(&sorted, 0)
                .await?
                .into_iter()
                .map(|t| (t.trace_id, t))
                .collect();
            let mut data = Vec::with_capacity(ids.len());
            let mut missing = Vec::new();
            for id in ids {
                match found.get(&id) {
                    Some(trace) if !trace.is_empty() => data.push(trace_to_jaeger(trace)),
                    _ => missing.push(EnvelopeError {
                        code: None,
                        msg: "trace not found".into(),
                        trace_id: Some(trace_id_to_jaeger(id)),
                    }),
                }
            }
            let mut envelope = Envelope::new(data, 0);
            if !missing.is_empty() {
                envelope.errors = Some(missing);
            }
            Ok(Json(envelope))
        }
    }
}

async fn services(State(reader): State<Reader>) -> ApiResult<Vec<String>> {
    let services = reader.services().await?;
    let total = services.len();
    Ok(Json(Envelope::new(services, total)))
}

/// The legacy `GET /api/services/{service}/operations`: unique operation names of every kind.
async fn service_operations(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Vec<String>> {
    let service = path_param(path)?;
    let mut names: Vec<String> = Vec::new();
    for op in reader.operations(&service).await? {
        if !names.contains(&op.name) {
            names.push(op.name);
        }
    }
    let total = names.len();
    Ok(Json(Envelope::new(names, total)))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OperationJson {
    name: String,
    span_kind: &'static str,
}

async fn operations(
    State(reader): State<Reader>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Vec<OperationJson>> {
    let params = query_params(query)?;
    let service = params::required_service(&params)?;
    let kind = params::span_kind(&params)?;
    let data: Vec<OperationJson> = reader
        .operations(service)
        .await?
        .into_iter()
        .filter(|op| kind.is_none_or(|k| op.kind == k))
        .map(|op| OperationJson {
            name: op.name,
            span_kind: op.kind.as_str(),
        })
        .collect();
    let total = data.len();
    Ok(Json(Envelope::new(data, total)))
}

fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
