//! Zipkin's HTTP collector API (port 9411): `POST /api/v2/spans` with a JSON span list
//! (`application/json`) or a protobuf `zipkin.proto3.ListOfSpans` (`application/x-protobuf`),
//! and `POST /api/v1/spans` with a v1 JSON span list; gzip accepted (`Content-Encoding`).
//!
//! Bodies are read, bounded and decompressed by the same code as OTLP/HTTP, decoded with
//! `stitch_wire::zipkin` and stored through [`Ingest::accept`], so a 202 means the spans are
//! durable. Answers are plain text, as Zipkin's own server gives them:
//!
//! | status | when |
//! | --- | --- |
//! | 202 Accepted | stored (empty body), or stored with some spans rejected (see below) |
//! | 400 Bad Request | the body is not gzip, JSON or protobuf, not a span list, has a field of the wrong type, or no span in it is valid; the body names the problem (`[2].timestamp: expected ...`, `span 0: trace id must be 1 to 32 hex digits, got "xyz"`) |
//! | 413 Payload Too Large | the body, before or after decompression, is over the request limit |
//! | 415 Unsupported Media Type | a content type other than JSON (or protobuf on v2), or a content encoding other than gzip |
//! | 503 Service Unavailable + `Retry-After` | overloaded (memory of requests in flight, WAL queue) or the store failed |
//!
//! A missing `Content-Type` is a 415, unlike Zipkin's own server, which takes it as JSON: a
//! browser sends none with a `no-cors` request, so taking it would let any web page write spans
//! through the user's browser. Reporters that send none are served with
//! [`ZipkinReceiverConfig::json_without_content_type`] (`zipkin.accept_missing_content_type`).
//!
//! **Partial rejection.** Zipkin has no partial-success answer and its reporters do not read
//! response bodies. When some spans are invalid and others valid, the valid ones are stored and
//! the answer is 202 with a plain-text body `accepted N spans; rejected M: <reasons>`; the
//! rejection is counted in the rejected-spans metric and logged at warn level (at most once a
//! second per listener). When every span is invalid nothing is stored and the answer is 400
//! with the same reasons, so a client that sends only garbage hears about it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};
use stitch_wire::zipkin::ZipkinError;

use crate::body::{BodyError, read_body};
use crate::log::RateLimitedLog;
use crate::respond::text;
use crate::{Ingest, IngestError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    V2Json,
    V2Proto,
    V1Json,
}

/// How the Zipkin receiver reads requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZipkinReceiverConfig {
    /// Take a body without `Content-Type` as JSON.
    pub json_without_content_type: bool,
}

struct Receiver {
    ingest: Arc<Ingest>,
    config: ZipkinReceiverConfig,
    reject_log: RateLimitedLog,
}

/// The router for Zipkin's span-collection endpoints.
pub fn router(ingest: Arc<Ingest>, config: ZipkinReceiverConfig) -> Router {
    let receiver = Arc::new(Receiver {
        ingest,
        config,
        reject_log: RateLimitedLog::new(Duration::from_secs(1)),
    });
    Router::new()
        .route("/api/v2/spans", post(v2))
        .route("/api/v1/spans", post(v1))
        // Size is enforced by the shared body reader, which answers 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

fn body_error(e: BodyError) -> Response {
    text(e.status(), e.message())
}

fn ingest_error(e: IngestError) -> Response {
    text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

async fn v2(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    receive(&r, &headers, body, true).await
}

async fn v1(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    receive(&r, &headers, body, false).await
}

fn format(headers: &HeaderMap, v2: bool, untyped_json: bool) -> Result<Format, String> {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return if untyped_json {
            Ok(if v2 { Format::V2Json } else { Format::V1Json })
        } else {
            Err("missing Content-Type: send application/json (or application/x-protobuf on /api/v2/spans)".into())
        };
    };
    let content_type = content_type.to_str().unwrap_or("?");
    let mime = crate::body::media_type(content_type);
    match (mime.as_str(), v2) {
        ("application/json", true) => Ok(Format::V2Json),
        ("application/json", false) => Ok(Format::V1Json),
        ("application/x-protobuf" | "application/protobuf", true) => Ok(Format::V2Proto),
        _ if v2 => Err(format!(
            "unsupported content type {content_type:?}: send application/json or application/x-protobuf"
        )),
        _ => Err(format!(
            "unsupported content type {content_type:?}: /api/v1/spans takes application/json"
        )),
    }
}

async fn receive(r: &Receiver, headers: &HeaderMap, body: Body, v2: bool) -> Response {
    let ingest = &r.ingest;
    let format = match format(headers, v2, r.config.json_without_content_type) {
        Ok(f) => f,
        Err(message) => {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
        }
    };
    let body = match read_body(ingest, headers, body).await {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let decoded: Result<_, ZipkinError> = match format {
        Format::V2Json => stitch_wire::zipkin::decode_v2_json(&body.bytes),
        Format::V2Proto => stitch_wire::zipkin::decode_v2_proto(&body.bytes),
        Format::V1Json => stitch_wire::zipkin::decode_v1_json(&body.bytes),
    };
    let decoded = match ingest.screened(decoded) {
        Ok(d) => d,
        Err(e) => {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::BAD_REQUEST,
                format!("failed to decode Zipkin spans: {e}"),
            );
        }
    };
    if decoded.rejected_spans > 0 && decoded.batch.span_count() == 0 {
        ingest
            .stats
            .malformed_requests
            .fetch_add(1, Ordering::Relaxed);
        ingest
            .stats
            .rejected_spans
            .fetch_add(decoded.rejected_spans, Ordering::Relaxed);
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "no valid span in the request; rejected {}: {}",
                decoded.rejected_spans, decoded.error_message
            ),
        );
    }
    let result = ingest.accept(None, decoded).await;
    drop(body.permit);
    match result {
        Ok(acc) if acc.rejected_spans == 0 => StatusCode::ACCEPTED.into_response(),
        Ok(acc) => {
            r.reject_log.log(|suppressed| {
                tracing::warn!(
                    rejected = acc.rejected_spans,
                    suppressed,
                    reasons = %acc.error_message,
                    "Zipkin request had invalid spans; stored the valid ones"
                )
            });
            text(
                StatusCode::ACCEPTED,
                format!(
                    "accepted {} spans; rejected {}: {}",
                    acc.accepted_spans, acc.rejected_spans, acc.error_message
                ),
            )
        }
        Err(e) => ingest_error(e),
    }
}
