//! Reading OpenTelemetry semantic-convention attributes of a span: who it calls, with which
//! method and path. Old and new attribute names are both accepted (`http.method` and
//! `http.request.method`, `net.peer.name` and `server.address`, ...).

use stitch_model::{AnyValue, Span, SpanKind, find_attribute};

/// The string value of attribute `key`, if it is a non-empty string.
pub(crate) fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match find_attribute(&span.attributes, key) {
        Some(AnyValue::String(s)) if !s.trim().is_empty() => Some(s.trim()),
        _ => None,
    }
}

/// The first of `keys` that the span carries as a non-empty string.
pub(crate) fn first_str<'a>(span: &'a Span, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| str_attr(span, k))
}

pub(crate) fn http_method(span: &Span) -> Option<&str> {
    first_str(span, &["http.request.method", "http.method"])
}

pub(crate) fn full_url(span: &Span) -> Option<&str> {
    first_str(span, &["url.full", "http.url"])
}

/// True for a span that calls out: kind CLIENT, or a span of unspecified or internal kind with
/// the attributes of an outgoing HTTP or RPC call.
pub(crate) fn is_client_like(span: &Span) -> bool {
    match span.kind {
        SpanKind::Client => true,
        SpanKind::Unspecified | SpanKind::Internal => {
            let http = http_method(span).is_some()
                && (full_url(span).is_some()
                    || first_str(span, &["server.address", "net.peer.name", "peer.service"])
                        .is_some());
            let rpc = str_attr(span, "rpc.system").is_some()
                && first_str(span, &["server.address", "net.peer.name", "peer.service"]).is_some();
            http || rpc
        }
        _ => false,
    }
}

/// True for a span that receives a call: kind SERVER or CONSUMER.
pub(crate) fn is_server_like(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Server | SpanKind::Consumer)
}

/// The host of a URL (`https://user@Host:8443/x?y` → `Host`), without port.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = strip_port(authority);
    (!host.is_empty()).then_some(host)
}

/// The path of a URL (`https://h/a/b?q` → `/a/b`); `None` for a URL without a path.
pub(crate) fn url_path(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let start = rest.find('/')?;
    let path = &rest[start..];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Some(path)
}

/// `host:port` → `host`, `[::1]:80` → `::1`; other text unchanged.
pub(crate) fn strip_port(host: &str) -> &str {
    let host = host.trim();
    if let Some(inner) = host.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    match host.rsplit_once(':') {
        // Only one colon: host:port. More than one: a bare IPv6 address.
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The path of the request a span describes: `url.path`/`http.target` or the path of its URL,
/// without the query.
pub(crate) fn request_path(span: &Span) -> Option<&str> {
    if let Some(p) = first_str(span, &["url.path", "http.target"]) {
        return Some(p.split(['?', '#']).next().unwrap_or(p));
    }
    full_url(span).and_then(url_path)
}

/// The remote peer a CLIENT or PRODUCER span names: `peer.service`, the database system, the
/// messaging system, `server.address`/`net.peer.name`, the host of the URL, or `rpc.service`,
/// in that order. Ports are stripped.
pub(crate) fn peer_name(span: &Span) -> Option<String> {
    if let Some(p) = str_attr(span, "peer.service") {
        return Some(p.to_owned());
    }
    if let Some(db) = first_str(span, &["db.system.name", "db.system"]) {
        return Some(db.to_owned());
    }
    if span.kind == SpanKind::Producer
        && let Some(m) = str_attr(span, "messaging.system")
    {
        return Some(m.to_owned());
    }
    if let Some(h) = first_str(span, &["server.address", "net.peer.name"]) {
        let h = strip_port(h);
        if !h.is_empty() {
            return Some(h.to_owned());
        }
    }
    if let Some(h) = full_url(span).and_then(url_host) {
        return Some(h.to_owned());
    }
    str_attr(span, "rpc.service").map(str::to_owned)
}

/// Lower-case names under which a host can be matched to a service: the host itself and, for
/// cluster-internal names (`payment.prod.svc.cluster.local`, `payment.internal`), its first
/// label.
pub(crate) fn host_keys(host: &str, out: &mut Vec<String>) {
    let host = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return;
    }
    if let Some((first, rest)) = host.split_once('.') {
        let internal = rest.ends_with("local")
            || rest.ends_with("internal")
            || rest == "svc"
            || rest.ends_with(".svc")
            || rest.contains(".svc.")
            || rest.ends_with("consul")
            || rest.ends_with("lan");
        if internal && !first.is_empty() && !first.bytes().all(|b| b.is_ascii_digit()) {
            out.push(first.to_owned());
        }
    }
    out.push(host);
}

/// Does `route` (an `http.route` template such as `/users/{id}` or `/users/:id`) match the
/// concrete `path`?
pub(crate) fn route_matches(route: &str, path: &str) -> bool {
    let r: Vec<&str> = route.trim_end_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if r.last()
        .is_some_and(|s| *s == "*" || s.starts_with("{*") || s.starts_with('*'))
    {
        return r.len() <= p.len() + 1
            && r[..r.len() - 1]
                .iter()
                .zip(&p)
                .all(|(a, b)| segment_matches(a, b));
    }
    r.len() == p.len() && r.iter().zip(&p).all(|(a, b)| segment_matches(a, b))
}

fn segment_matches(template: &str, actual: &str) -> bool {
    template == actual
        || (template.starts_with('{') && template.ends_with('}'))
        || template.starts_with(':')
        || (template.starts_with('<') && template.ends_with('>'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_their_host_and_path() {
        assert_eq!(
            url_host("https://user@Pay.Svc:8443/a/b?x=1"),
            Some("Pay.Svc")
        );
        assert_eq!(url_host("http://[::1]:80/"), Some("::1"));
        assert_eq!(url_path("https://h:1/a/b?x=1#f"), Some("/a/b"));
        assert_eq!(url_path("https://h"), None);
        assert_eq!(strip_port("10.0.0.1:5432"), "10.0.0.1");
        assert_eq!(strip_port("fe80::1"), "fe80::1");
    }

    #[test]
    fn internal_host_names_also_match_by_their_first_label() {
        let mut keys = Vec::new();
        host_keys("payment.prod.svc.cluster.local:8080", &mut keys);
        assert_eq!(keys, vec!["payment", "payment.prod.svc.cluster.local"]);
        keys.clear();
        host_keys("api.stripe.com", &mut keys);
        assert_eq!(keys, vec!["api.stripe.com"]);
    }

    #[test]
    fn routes_match_concrete_paths() {
        assert!(route_matches("/users/{id}", "/users/42"));
        assert!(route_matches("/users/:id/orders", "/users/42/orders"));
        assert!(!route_matches("/users/{id}", "/users/42/orders"));
        assert!(route_matches("/static/*", "/static/a/b.css"));
        assert!(!route_matches("/cart", "/checkout"));
    }
}
