//! The collector's HTTP endpoint, `POST /api/traces` (14268): a Thrift binary `Batch`.

use super::*;

struct HttpReceiver {
    ingest: Arc<Ingest>,
    reject_log: RateLimitedLog,
}

/// The router of the collector's HTTP endpoint, `POST /api/traces`.
pub fn http_router(ingest: Arc<Ingest>) -> Router {
    let receiver = Arc::new(HttpReceiver {
        ingest,
        reject_log: RateLimitedLog::new(Duration::from_secs(1)),
    });
    Router::new()
        .route("/api/traces", post(post_traces))
        // Size is enforced by the shared body reader, which answers 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

fn thrift_content_type(headers: &HeaderMap, query: Option<&str>) -> Result<(), String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"))
        .unwrap_or("");
    let mime = crate::body::media_type(content_type);
    let format_param = query
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "format=jaeger.thrift");
    match mime.as_str() {
        "application/x-thrift" | "application/vnd.apache.thrift.binary" => Ok(()),
        "" if format_param => Ok(()),
        _ => Err(format!(
            "unsupported content type {content_type:?}: send application/x-thrift \
             (a Jaeger Batch in the Thrift binary protocol)"
        )),
    }
}

async fn post_traces(
    State(r): State<Arc<HttpReceiver>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ingest = &r.ingest;
    if let Err(message) = thrift_content_type(&headers, query.as_deref()) {
        ingest
            .stats
            .malformed_requests
            .fetch_add(1, Ordering::Relaxed);
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
    }
    let body = match read_body(ingest, &headers, body).await {
        Ok(b) => b,
        Err(e) => return text(e.status(), e.message()),
    };
    let decoded = match ingest.screened(jaeger::decode_collector_thrift(&body.bytes)) {
        Ok(d) => d,
        Err(e) => {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::BAD_REQUEST,
                format!("unable to process request body: {e}"),
            );
        }
    };
    let rejected = decoded.rejected_spans;
    if rejected > 0 && decoded.batch.span_count() == 0 {
        ingest
            .stats
            .rejected_spans
            .fetch_add(rejected, Ordering::Relaxed);
        ingest
            .stats
            .malformed_requests
            .fetch_add(1, Ordering::Relaxed);
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "no valid span: rejected {rejected}: {}",
                decoded.error_message
            ),
        );
    }
    let result = ingest.accept(None, decoded).await;
    drop(body.permit);
    match result {
        Ok(acc) if acc.rejected_spans == 0 => text(StatusCode::ACCEPTED, ""),
        Ok(acc) => {
            r.reject_log.log(|suppressed| {
                tracing::warn!(
                    suppressed,
                    "rejected {} invalid spans of a Jaeger HTTP batch: {}",
                    acc.rejected_spans,
                    acc.error_message
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
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thrift_content_types_are_recognised() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_str(ct).unwrap(),
            );
            h
        };
        assert!(thrift_content_type(&with("application/x-thrift"), None).is_ok());
        assert!(thrift_content_type(&with("application/vnd.apache.thrift.binary"), None).is_ok());
        assert!(thrift_content_type(&with("Application/X-Thrift; charset=x"), None).is_ok());
        assert!(thrift_content_type(&HeaderMap::new(), Some("format=jaeger.thrift")).is_ok());
        assert!(thrift_content_type(&HeaderMap::new(), None).is_err());
        assert!(thrift_content_type(&with("application/json"), None).is_err());
    }
}
