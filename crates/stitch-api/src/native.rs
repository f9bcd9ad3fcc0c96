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
use http::{StatusCode, header};
use serde_json::json;
use stitch_store::TraceReader;

use crate::params;

type Reader = Arc<dyn TraceReader>;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/v1/traces/{traceID}", get(get_trace))
        .with_state(reader)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

async fn get_trace(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let text = match path {
        Ok(Path(p)) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed path: {e}")),
    };
    let id = match params::parse_trace_id(&text) {
        Ok(id) => id,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid trace id {text:?}: {e}"),
            );
        }
    };
    match reader.trace(id).await {
        Ok(Some(trace)) if !trace.is_empty() => {
            let body = stitch_wire::otlp_json::trace_to_json(&trace).to_string();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok(_) => error(StatusCode::NOT_FOUND, format!("trace {id} not found")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
