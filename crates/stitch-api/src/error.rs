//! Jaeger's response envelope and the one mapping from errors to HTTP status codes.

use std::fmt;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use stitch_query::ReadError;

/// The envelope every Jaeger query API response is wrapped in:
/// `{"data", "total", "limit", "offset", "errors"}`.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    pub data: T,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub errors: Option<Vec<EnvelopeError>>,
}

impl<T> Envelope<T> {
    /// A successful response; `total` is what Jaeger reports (0 for traces, the count for
    /// lists of names).
    pub fn new(data: T, total: usize) -> Envelope<T> {
        Envelope {
            data,
            total,
            limit: 0,
            offset: 0,
            errors: None,
        }
    }
}

/// One entry of the `errors` list. `code` is absent for per-trace errors of a successful
/// response, which name the trace instead.
#[derive(Debug, Serialize)]
pub struct EnvelopeError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    pub msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// A parameter is missing or malformed; the message names it.
    BadRequest(String),
    /// The requested object does not exist.
    NotFound(String),
    /// The store failed.
    Store(ReadError),
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }

    /// The HTTP status of the error. This is the only place that decides it.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::BadRequest(msg) | ApiError::NotFound(msg) => f.write_str(msg),
            ApiError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(err: ReadError) -> ApiError {
        ApiError::Store(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "query API request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "query API request rejected");
        }
        let body = Envelope {
            data: (),
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![EnvelopeError {
                code: Some(status.as_u16()),
                msg: self.to_string(),
                trace_id: None,
            }]),
        };
        (status, Json(body)).into_response()
    }
}
