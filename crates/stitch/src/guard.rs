//! What a web page in the user's own browser may do with Stitch's HTTP listeners.
//!
//! Stitch listens on loopback without authentication, so the browser of the person running it
//! is the way in for a hostile page. Two checks close it:
//!
//! - **Host** (query API, web UI, Zipkin's query API): a page whose domain is made to resolve to
//!   127.0.0.1 (DNS rebinding) reaches the API as the same origin, but its requests carry that
//!   domain in `Host`. Requests are answered only for IP addresses, `localhost` and names under
//!   `.localhost`, and the names the operator lists (`listen.allowed_hosts`, `--allowed-host`;
//!   `*` turns the check off). Anything else is a 403 that names the host.
//! - **Origin** (every route that writes: OTLP/HTTP, the Zipkin collector, the Jaeger collector):
//!   browsers send `Origin` with every cross-origin write, also a `no-cors` one, and SDKs and
//!   agents send none. A write with an `Origin` that is not listed (`listen.allowed_origins`,
//!   `--allowed-origin`; `*` for any) is a 403 that names the origin. Listed origins get the
//!   CORS answers a browser SDK needs: preflights (`OPTIONS`) are answered and responses carry
//!   `Access-Control-Allow-Origin`.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The hosts and origins browsers may use, as configured.
#[derive(Clone, Debug, Default)]
pub struct BrowserPolicy {
    /// Host names (lowercase, without port) served besides IP addresses and loopback names; a
    /// name starting with `.` allows every name under it; `*` allows any host.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) allowed to write; `*` allows any.
    pub allowed_origins: Vec<String>,
}

impl BrowserPolicy {
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> BrowserPolicy {
        BrowserPolicy {
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether requests with this `Host` header are answered.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim();
        // An IPv6 literal, `[::1]:16686`.
        if host.starts_with('[') {
            return true;
        }
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.parse::<Ipv4Addr>().is_ok() || name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        self.allowed_hosts.iter().any(|allowed| {
            allowed == "*"
                || *allowed == name
                || (allowed.starts_with('.') && name.ends_with(allowed.as_str()))
        })
    }

    /// Whether a browser page of this origin may write.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        self.allowed_origins
            .iter()
            .any(|allowed| allowed == "*" || *allowed == origin)
    }

    /// `router` answering only requests for allowed hosts.
    pub fn guard_reads(self: &Arc<Self>, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            check_host,
        ))
    }

    /// `router` refusing writes from origins that are not allowed, and answering CORS for
    /// those that are.
    pub fn guard_writes(self: &Arc<Self>, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            check_origin,
        ))
    }
}

fn refuse(message: String) -> Response {
    let mut resp = (StatusCode::FORBIDDEN, message).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn check_host(
    State(policy): State<Arc<BrowserPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    // HTTP/1.1 requires `Host`; a request without one comes from no browser.
    if let Some(host) = req.headers().get(header::HOST) {
        let host = host.to_str().unwrap_or("(not text)");
        if !policy.host_allowed(host) {
            return refuse(format!(
                "requests for host {host:?} are refused: Stitch answers for IP addresses and loopback names; \
                 add the name to listen.allowed_hosts in the config file (or --allowed-host) to serve it"
            ));
        }
    }
    next.run(req).await
}

async fn check_origin(
    State(policy): State<Arc<BrowserPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let text = origin.to_str().unwrap_or("(not text)").to_owned();
    if !policy.origin_allowed(&text) {
        return refuse(format!(
            "writes from the browser origin {text:?} are refused: list the origin in \
             listen.allowed_origins in the config file (or --allowed-origin) to accept spans from pages there"
        ));
    }
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        preflight_headers(resp.headers_mut(), req.headers());
        cors_headers(resp.headers_mut(), origin);
        return resp;
    }
    let mut resp = next.run(req).await;
    cors_headers(resp.headers_mut(), origin);
    resp
}

fn cors_headers(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn preflight_headers(out: &mut HeaderMap, request: &HeaderMap) {
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_and_loopback_names_are_always_served() {
        let p = BrowserPolicy::default();
        for host in [
            "127.0.0.1:16686",
            "127.0.0.1",
            "10.1.2.3:80",
            "[::1]:16686",
            "localhost:16686",
            "LOCALHOST",
            "app.localhost:3000",
            "localhost.",
        ] {
            assert!(p.host_allowed(host), "{host}");
        }
        for host in [
            "evil.example:16686",
            "localhost.evil.example",
            "127.0.0.1.nip.io:16686",
            "stitch",
        ] {
            assert!(!p.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn configured_names_domains_and_star_are_served() {
        let p = BrowserPolicy::new(&["Stitch".into(), ".corp.example".into()], &[]);
        assert!(p.host_allowed("stitch:16686"));
        assert!(p.host_allowed("traces.corp.example"));
        assert!(!p.host_allowed("corp.example.evil"));
        assert!(BrowserPolicy::new(&["*".into()], &[]).host_allowed("anything:1"));
    }

    #[test]
    fn only_listed_origins_may_write() {
        let p = BrowserPolicy::new(&[], &["http://localhost:3000/".into()]);
        assert!(p.origin_allowed("http://localhost:3000"));
        assert!(!p.origin_allowed("http://localhost:3001"));
        assert!(!p.origin_allowed("null"));
        assert!(!BrowserPolicy::default().origin_allowed("http://localhost:3000"));
        assert!(BrowserPolicy::new(&[], &["*".into()]).origin_allowed("https://x.example"));
    }
}
