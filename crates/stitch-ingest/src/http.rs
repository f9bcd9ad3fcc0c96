//! OTLP/HTTP: `POST /v1/traces` with `application/x-protobuf` or `application/json` bodies,
//! optionally gzip-compressed.
//!
//! Responses follow the OTLP/HTTP specification: the body is encoded like the request; success
//! is 200 with an `ExportTraceServiceResponse` (with `partialSuccess` when spans were
//! rejected); errors carry a `google.rpc.Status` whose message names the problem. Retryable
//! conditions (overload) are 503 with `Retry-After`. A body that has not arrived whole within
//! the body timeout (`IngestConfig::body_timeout`, 30 s by default) is 408 and the connection
//! is closed, so a sender that trickles or never ends a body cannot hold a slot; the Zipkin and
//! Jaeger HTTP receivers read bodies the same way (`body.rs`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::body::BodyError;
use crate::{Ingest, IngestError};

/// The gRPC status codes used in error bodies.
const GRPC_INVALID_ARGUMENT: i32 = 3;
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_RESOURCE_EXHAUSTED: i32 = 8;
const GRPC_UNAVAILABLE: i32 = 14;
const GRPC_UNIMPLEMENTED: i32 = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// The router for the OTLP/HTTP receiver.
pub fn router(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        // Size is enforced by the handler, which knows the configured limit and answers 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(ingest)
}

fn error(status: StatusCode, encoding: Encoding, code: i32, message: &str) -> Response {
    let body = match encoding {
        Encoding::Protobuf => stitch_wire::otlp::encode_status_proto(code, message),
        Encoding::Json => stitch_wire::otlp_json::encode_status_json(code, message),
    };
    crate::respond::answer(status, encoding.content_type(), body)
}

fn body_error(e: BodyError, encoding: Encoding) -> Response {
    let code = match &e {
        BodyError::UnsupportedEncoding(_) => GRPC_UNIMPLEMENTED,
        BodyError::TooLarge(_) => GRPC_RESOURCE_EXHAUSTED,
        BodyError::Malformed(_) => GRPC_INVALID_ARGUMENT,
        BodyError::Overloaded(_) => GRPC_UNAVAILABLE,
        BodyError::TimedOut(_) => GRPC_DEADLINE_EXCEEDED,
    };
    error(e.status(), encoding, code, &e.message())
}

fn ingest_error(e: IngestError, encoding: Encoding) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        encoding,
        GRPC_UNAVAILABLE,
        &e.to_string(),
    )
}

async fn export(State(ingest): State<Arc<Ingest>>, headers: HeaderMap, body: Body) -> Response {
    use std::sync::atomic::Ordering;

    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = crate::body::media_type(content_type);
    let encoding = match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Encoding::Json,
                GRPC_UNIMPLEMENTED,
                &format!(
                    "unsupported content type {content_type:?}: send application/x-protobuf or application/json"
                ),
            );
        }
    };
    let body = match crate::body::read_body(&ingest, &headers, body).await {
        Ok(b) => b,
        Err(e) => return body_error(e, encoding),
    };
    let (bytes, permit) = (body.bytes, body.permit);
    let decoded: Result<_, String> = match encoding {
        Encoding::Protobuf => stitch_wire::otlp::decode_export_request(&bytes)
            .map_err(|e| format!("failed to decode OTLP protobuf request: {e}")),
        Encoding::Json => stitch_wire::otlp_json::decode_export_request(&bytes)
            .map_err(|e| format!("failed to decode OTLP JSON request: {e}")),
    };
    let decoded = match ingest.screened(decoded) {
        Ok(d) => d,
        Err(message) => {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::BAD_REQUEST,
                encoding,
                GRPC_INVALID_ARGUMENT,
                &message,
            );
        }
    };
    let raw = (encoding == Encoding::Protobuf).then_some(bytes);
    let result = ingest.accept(raw, decoded).await;
    drop(permit);
    match result {
        Ok(acc) => {
            let body = match encoding {
                Encoding::Protobuf => stitch_wire::otlp::encode_export_response(
                    acc.rejected_spans,
                    &acc.error_message,
                ),
                Encoding::Json => stitch_wire::otlp_json::encode_export_response_json(
                    acc.rejected_spans,
                    &acc.error_message,
                ),
            };
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(encoding.content_type()),
            );
            resp
        }
        Err(e) => ingest_error(e, encoding),
    }
}
