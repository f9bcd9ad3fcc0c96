//! OTLP/HTTP: `POST /v1/traces` with `application/x-protobuf` or `application/json` bodies,
//! optionally gzip-compressed.
//!
//! Responses follow the OTLP/HTTP specification: the body is encoded like the request; success
//! is 200 with an `ExportTraceServiceResponse` (with `partialSuccess` when spans were
//! rejected); errors carry a `google.rpc.Status` whose message names the problem. Retryable
//! conditions (overload) are 503 with `Retry-After`.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::{Ingest, IngestError};

/// The gRPC status codes used in error bodies.
const GRPC_INVALID_ARGUMENT: i32 = 3;
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
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
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
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
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
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                GRPC_UNIMPLEMENTED,
                &format!("unsupported content encoding {other:?}: send gzip or no encoding"),
            );
        }
    };
    let limit = ingest.config().max_request_bytes;
    let too_large = |what: &str| {
        ingest
            .stats
            .oversized_requests
            .fetch_add(1, Ordering::Relaxed);
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            GRPC_RESOURCE_EXHAUSTED,
            &format!("{what} exceeds the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large("request body");
    }
    // Reserve memory before reading when the size is known, so a flood of large requests is
    // refused instead of buffered.
    let mut permit = match declared {
        Some(n) => match ingest.reserve(n) {
            Ok(p) => Some(p),
            Err(e) => return ingest_error(e, encoding),
        },
        None => None,
    };
    let bytes = match to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            // The only errors are the limit and a broken connection; report both precisely.
            let msg = e.to_string();
            if msg.contains("length limit") {
                return too_large("request body");
            }
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::BAD_REQUEST,
                encoding,
                GRPC_INVALID_ARGUMENT,
                &format!("failed to read request body: {msg}"),
            );
        }
    };
    let bytes: Vec<u8> = if gzip {
        let mut out = Vec::with_capacity((bytes.len() * 4).min(limit));
        let decoder = flate2::read::GzDecoder::new(&bytes[..]);
        match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
            Ok(_) if out.len() > limit => return too_large("decompressed request body"),
            Ok(_) => out,
            Err(e) => {
                ingest
                    .stats
                    .malformed_requests
                    .fetch_add(1, Ordering::Relaxed);
                return error(
                    StatusCode::BAD_REQUEST,
                    encoding,
                    GRPC_INVALID_ARGUMENT,
                    &format!("failed to decompress gzip request body: {e}"),
                );
            }
        }
    } else {
        bytes.to_vec()
    };
    if permit.is_none() || gzip {
        permit = match ingest.reserve(bytes.len()) {
            Ok(p) => Some(p),
            Err(e) => return ingest_error(e, encoding),
        };
    }
    let decoded: Result<_, String> = match encoding {
        Encoding::Protobuf => stitch_wire::otlp::decode_export_request(&bytes)
            .map_err(|e| format!("failed to decode OTLP protobuf request: {e}")),
        Encoding::Json => stitch_wire::otlp_json::decode_export_request(&bytes)
            .map_err(|e| format!("failed to decode OTLP JSON request: {e}")),
    };
    let decoded = match decoded {
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
