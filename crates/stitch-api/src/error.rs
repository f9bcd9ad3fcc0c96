//! The one error type of the query APIs, the one mapping from errors to HTTP status codes, and
//! the way each API family writes an error (its dialect).
//!
//! | dialect | body |
//! |---|---|
//! | Jaeger query API (`/api/...`) | Jaeger's envelope: `{"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": <status>, "msg": <reason>}]}` |
//! | native (`/api/v1/...`) | `{"error": {"code": <status>, "message": <reason>}}`, plus `"position"` for a refused TraceQL query |
//! | Jaeger api_v3 (`/api/v3/...`) | grpc-gateway's `{"error": {"httpCode": <status>, "message": <reason>}}` |
//! | Zipkin (`/api/v2/...`) | the reason as plain text |
//! | Tempo (the Tempo port's `/api/...`) | the reason as plain text, as Tempo answers |
//!
//! Handlers return `Result<_, ApiError>` (Jaeger) or one of the wrappers [`NativeError`],
//! [`GatewayError`], [`ZipkinError`], [`TempoError`]; every one is rendered by
//! [`ApiError::respond`].

use std::fmt;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Serialize;
use serde_json::json;
use stitch_query::ReadError;
use stitch_query::traceql::QueryError;

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
    /// A TraceQL query that does not parse or cannot hold.
    Query(QueryError),
    /// The requested object does not exist.
    NotFound(String),
    /// The store failed.
    Store(ReadError),
    /// The server failed on its own (a task that did not finish).
    Internal(String),
}

/// How an API family writes its errors (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Jaeger,
    Native,
    Gateway,
    Zipkin,
    Tempo,
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError::NotFound(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::Internal(msg.into())
    }

    /// The HTTP status of the error. This is the only place that decides it.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Query(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response in `dialect`. Server errors are logged; refusals at debug level.
    pub fn respond(self, dialect: Dialect) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, ?dialect, "query API request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "query API request refused");
        }
        let code = status.as_u16();
        let message = self.to_string();
        match dialect {
            Dialect::Jaeger => {
                let body = Envelope {
                    data: (),
                    total: 0,
                    limit: 0,
                    offset: 0,
                    errors: Some(vec![EnvelopeError {
                        code: Some(code),
                        msg: message,
                        trace_id: None,
                    }]),
                };
                (status, Json(body)).into_response()
            }
            Dialect::Native => {
                let body = match &self {
                    ApiError::Query(q) => {
                        json!({"error": {"code": code, "message": message, "position": q.position}})
                    }
                    _ => json!({"error": {"code": code, "message": message}}),
                };
                (status, Json(body)).into_response()
            }
            Dialect::Gateway => {
                let body = json!({"error": {"httpCode": code, "message": message}});
                (status, Json(body)).into_response()
            }
            Dialect::Zipkin | Dialect::Tempo => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message,
            )
                .into_response(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::BadRequest(msg) | ApiError::NotFound(msg) | ApiError::Internal(msg) => {
                f.write_str(msg)
            }
            ApiError::Query(e) => write!(f, "invalid TraceQL query: {e}"),
            ApiError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Store(err) => Some(err),
            ApiError::Query(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(err: ReadError) -> ApiError {
        ApiError::Store(err)
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> ApiError {
        ApiError::Query(err)
    }
}

/// The Jaeger query API writes errors in its envelope.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(Dialect::Jaeger)
    }
}

/// Wrappers that write an [`ApiError`] in another dialect, for handlers to return.
macro_rules! dialect_error {
    ($(#[$doc:meta])* $name:ident, $dialect:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(pub ApiError);

        impl $name {
            /// A refused parameter.
            pub fn bad(msg: impl Into<String>) -> $name {
                $name(ApiError::bad_request(msg))
            }
        }

        impl<E: Into<ApiError>> From<E> for $name {
            fn from(e: E) -> $name {
                $name(e.into())
            }
        }

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                self.0.respond($dialect)
            }
        }
    };
}

dialect_error!(
    /// An error of the native API (`/api/v1/...`).
    NativeError,
    Dialect::Native
);
dialect_error!(
    /// An error of Jaeger's api_v3 (`/api/v3/...`).
    GatewayError,
    Dialect::Gateway
);
dialect_error!(
    /// An error of the Zipkin API (`/api/v2/...`).
    ZipkinError,
    Dialect::Zipkin
);
dialect_error!(
    /// An error of the Tempo API (the Tempo port).
    TempoError,
    Dialect::Tempo
);
