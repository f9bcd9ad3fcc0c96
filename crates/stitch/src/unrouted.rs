//! Requests that no route of a listener takes get a reason in plain text, not a bare status:
//! a 404 names the method and path asked, a 405 the methods the path takes. Answers a handler
//! wrote itself (a trace not found, with its own message) pass unchanged: only empty 404 and
//! 405 bodies, which come from the router, are filled in.

use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// The longest path quoted back.
const MAX_QUOTED: usize = 200;

/// `router` with its bare 404 and 405 answers explained. The router is wrapped whole (as the
/// fallback of an empty one) so that the middleware sees its answers as finished, `Allow`
/// header included.
pub fn explained(router: Router) -> Router {
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn(explain))
}

async fn explain(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let mut path: String = req.uri().path().chars().take(MAX_QUOTED).collect();
    if path.len() < req.uri().path().len() {
        path.push_str("...");
    }
    let response = next.run(req).await;
    let status = response.status();
    if !matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) || response.body().size_hint().exact() != Some(0)
    {
        return response;
    }
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = response
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("other methods");
        format!("{method} is not allowed on {path}: it takes {allowed}\n")
    } else {
        format!("nothing answers {method} {path} on this port\n")
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn ask(router: &Router, method: &str, uri: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn bare_refusals_get_a_reason_and_handlers_answers_stay() {
        let router = explained(
            Router::new()
                .route("/v1/traces", post(|| async { "ok" }))
                .route(
                    "/gone",
                    get(|| async { (StatusCode::NOT_FOUND, "trace not found") }),
                ),
        );
        assert_eq!(
            ask(&router, "PUT", "/v1/traces").await,
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "PUT is not allowed on /v1/traces: it takes POST\n".into()
            )
        );
        assert_eq!(
            ask(&router, "GET", "/nope").await,
            (
                StatusCode::NOT_FOUND,
                "nothing answers GET /nope on this port\n".into()
            )
        );
        assert_eq!(
            ask(&router, "GET", "/gone").await,
            (StatusCode::NOT_FOUND, "trace not found".into())
        );
        let long = format!("/{}", "a".repeat(5_000));
        let (_, text) = ask(&router, "GET", &long).await;
        assert!(text.len() < 300 && text.contains("..."), "{text}");
    }
}
