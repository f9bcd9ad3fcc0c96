//! The one way the HTTP receivers answer: a status, a body with its content type, and
//! `Retry-After: 1` when the status asks the client to come back (503 overload, 429).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// `body` as `content_type` with `status`.
pub(crate) fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl IntoResponse,
) -> Response {
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// `message` as plain text with `status` (the Zipkin and Jaeger receivers' answers).
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    answer(status, "text/plain; charset=utf-8", message.into())
}
