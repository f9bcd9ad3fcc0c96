//! Stitch's web UI, served from the binary: every asset is embedded at compile time
//! (`include_bytes!`), so the UI works without any network and the binary builds with `cargo`
//! alone. The UI is plain HTML, CSS and JavaScript modules in `crates/stitch-api/ui/`, with no
//! build step and no third-party code.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /`, `/search`, `/trace/{id}`, `/services`, `/services/{name}` | The single-page app's shell (`index.html`); the app reads the URL and renders the page. |
//! | `GET /ui/{version}/{file}` | An asset of this build, cacheable for a year (`immutable`): `version` is a hash of all assets, so a new build has new URLs. |
//! | `GET /ui/{file}` | The same asset, revalidated on every use (`no-cache` with an `ETag`). |
//!
//! The shell refers to assets through the versioned path, and modules import each other by
//! relative paths, so a whole build's modules are cached together and replaced together. The
//! shell itself is `no-cache`. Responses carry a Content-Security-Policy that allows only the
//! server's own origin: the UI can load nothing from anywhere else.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the UI.
static ASSETS: &[Asset] = &[
    asset!("app.js", JS),
    asset!("lib.js", JS),
    asset!("model.js", JS),
    asset!("charts.js", JS),
    asset!("search.js", JS),
    asset!("trace.js", JS),
    asset!("waterfall.js", JS),
    asset!("services.js", JS),
    asset!("graph.js", JS),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const SHELL: &str = include_str!("../ui/index.html");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The routes of the UI. They never overlap `/api/*` or `/metrics`.
pub fn router() -> Router {
    Router::new()
        .route("/", get(shell))
        .route("/search", get(shell))
        .route("/trace/{id}", get(shell))
        .route("/services", get(shell))
        .route("/services/{name}", get(shell))
        .route("/ui/{*path}", get(asset))
}

/// FNV-1a, 64 bits: a stable content hash for versions and ETags.
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The version of this build's assets: a hash of all of them (and of the shell).
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = fnv1a(SHELL.as_bytes(), FNV_OFFSET);
        for a in ASSETS {
            h = fnv1a(a.name.as_bytes(), h);
            h = fnv1a(a.body, h);
        }
        format!("{:012x}", h & 0xffff_ffff_ffff)
    })
}

fn shell_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| SHELL.replace("{{VERSION}}", version()))
}

fn common_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

async fn shell() -> Response {
    let mut response = shell_html().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    common_headers(headers);
    response
}

async fn asset(Path(path): Path<String>, request_headers: HeaderMap) -> Response {
    let (versioned, name) = match path.split_once('/') {
        Some((v, rest)) if v == version() => (true, rest),
        _ => (false, path.as_str()),
    };
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let etag = format!("\"{:016x}\"", fnv1a(asset.body, FNV_OFFSET));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    if !fresh {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    common_headers(headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_type_and_the_shell_links_the_versioned_entry_points() {
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
        assert!(
            ASSETS
                .iter()
                .filter(|a| a.name.ends_with(".js"))
                .all(|a| a.content_type == JS)
        );
        let html = shell_html();
        assert!(!html.contains("{{VERSION}}"));
        assert!(html.contains(&format!("/ui/{}/app.js", version())));
        assert!(html.contains(&format!("/ui/{}/style.css", version())));
    }

    #[test]
    fn no_asset_refers_to_another_origin() {
        for a in ASSETS {
            let text = String::from_utf8_lossy(a.body);
            for needle in ["http://", "https://", "//cdn", "@import url("] {
                let allowed = needle == "http://" && text.contains("http://www.w3.org/2000/svg");
                let count = text.matches(needle).count()
                    - if allowed {
                        text.matches("http://www.w3.org/2000/svg").count()
                    } else {
                        0
                    };
                assert_eq!(count, 0, "{} mentions {needle}", a.name);
            }
        }
    }
}
