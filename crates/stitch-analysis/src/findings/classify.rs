//! How a span is classified: attributes read, calls recognised, words and hosts taken apart.

use super::*;

/// Time of the sorted, disjoint `sections` inside `[window.0, window.1)`, found by binary
/// search so that many windows over one long list stay cheap.
pub(super) fn time_within(sections: &[(u64, u64)], window: (u64, u64)) -> u64 {
    let first = sections.partition_point(|&(_, end)| end <= window.0);
    sections[first..]
        .iter()
        .take_while(|&&(start, _)| start < window.1)
        .map(|&(start, end)| end.min(window.1).saturating_sub(start.max(window.0)))
        .sum()
}

// ----- span classification ------------------------------------------------------------------

pub(super) fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match find_attribute(&span.attributes, key) {
        Some(AnyValue::String(s)) if !s.trim().is_empty() => Some(s.trim()),
        _ => None,
    }
}

pub(super) fn first_attr<'a>(span: &'a Span, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| str_attr(span, k))
}

/// True when the span failed: error status. (The Zipkin and Jaeger decoders turn the `error`
/// tag into the status, so the model's status is the one place to look.)
pub(crate) fn has_error(span: &Span) -> bool {
    span.status.code == StatusCode::Error
}

pub(super) fn is_timeout(span: &Span) -> bool {
    let mentions = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("timeout") || s.contains("timed out") || s.contains("deadline")
    };
    if mentions(&span.status.message) {
        return true;
    }
    if let Some(t) = first_attr(span, &["error.type", "exception.type", "exception.message"])
        && mentions(t)
    {
        return true;
    }
    let status = find_attribute(&span.attributes, "http.response.status_code")
        .or_else(|| find_attribute(&span.attributes, "http.status_code"));
    if matches!(status, Some(AnyValue::Int(408 | 504))) {
        return true;
    }
    if matches!(
        find_attribute(&span.attributes, "rpc.grpc.status_code"),
        Some(AnyValue::Int(4))
    ) {
        return true;
    }
    span.events.iter().any(|e| {
        e.name == "exception"
            && e.attributes
                .iter()
                .any(|kv| kv.key.starts_with("exception.") && mentions(&kv.value.to_text()))
    })
}

/// A short reason for a failure: the status message, the exception, the HTTP status.
pub(super) fn failure_reason(span: &Span) -> String {
    if is_timeout(span) && span.status.message.is_empty() {
        return "timed out".to_owned();
    }
    if !span.status.message.trim().is_empty() {
        return ellipsize_plain(span.status.message.trim(), 60);
    }
    for e in &span.events {
        if e.name == "exception"
            && let Some(AnyValue::String(m)) = find_attribute(&e.attributes, "exception.message")
        {
            return ellipsize_plain(m, 60);
        }
    }
    let status = find_attribute(&span.attributes, "http.response.status_code")
        .or_else(|| find_attribute(&span.attributes, "http.status_code"));
    match status {
        Some(v) => format!("HTTP {}", v.to_text()),
        None => "error status".to_owned(),
    }
}

pub(super) fn ellipsize_plain(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub(super) const WRITE_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];
pub(super) const READ_METHODS: [&str; 4] = ["GET", "HEAD", "OPTIONS", "QUERY"];
pub(super) const WRITE_VERBS: [&str; 24] = [
    "add", "book", "cancel", "charge", "commit", "confirm", "create", "delete", "insert", "pay",
    "place", "post", "publish", "put", "refund", "remove", "reserve", "save", "send", "set",
    "store", "submit", "update", "write",
];
pub(super) const GATE_VERBS: [&str; 10] = [
    "auth",
    "authenticate",
    "authorize",
    "authorise",
    "login",
    "signin",
    "validate",
    "verify",
    "permission",
    "permissions",
];

/// The attributes a call is classified by, read in one pass over the span's attributes. Each
/// field keeps the value of the most preferred key present (current semantic-convention names
/// before older ones; the first of duplicate keys).
pub(super) struct CallAttrs<'a> {
    db_system: Option<(u8, &'a str)>,
    db_namespace: Option<(u8, &'a str)>,
    statement: Option<(u8, &'a str)>,
    method: Option<(u8, &'a str)>,
    peer: Option<(u8, &'a str)>,
    url: Option<(u8, &'a str)>,
    destination: Option<(u8, &'a str)>,
}

impl<'a> CallAttrs<'a> {
    fn read(span: &'a Span) -> CallAttrs<'a> {
        // Slots of `CallAttrs`, in field order.
        const DB_SYSTEM: usize = 0;
        const DB_NAMESPACE: usize = 1;
        const STATEMENT: usize = 2;
        const METHOD: usize = 3;
        const PEER: usize = 4;
        const URL: usize = 5;
        const DESTINATION: usize = 6;
        let mut slots: [Option<(u8, &'a str)>; 7] = [None; 7];
        for kv in &span.attributes {
            let AnyValue::String(v) = &kv.value else {
                continue;
            };
            // (slot, rank): a lower rank wins (the current semantic convention over the old).
            let places: &[(usize, u8)] = match kv.key.as_str() {
                "db.system.name" => &[(DB_SYSTEM, 0)],
                "db.system" => &[(DB_SYSTEM, 1)],
                "db.namespace" => &[(DB_NAMESPACE, 0)],
                "db.name" => &[(DB_NAMESPACE, 1)],
                "db.query.text" => &[(STATEMENT, 0)],
                "db.statement" => &[(STATEMENT, 1)],
                "http.request.method" => &[(METHOD, 0)],
                "http.method" => &[(METHOD, 1)],
                "peer.service" => &[(PEER, 0)],
                "server.address" => &[(PEER, 1)],
                "net.peer.name" => &[(PEER, 2)],
                "http.host" => &[(PEER, 3)],
                "messaging.destination.name" => &[(PEER, 4), (DESTINATION, 0)],
                "messaging.destination" => &[(PEER, 5), (DESTINATION, 1)],
                "rpc.service" => &[(PEER, 6)],
                "url.full" => &[(URL, 0)],
                "http.url" => &[(URL, 1)],
                // Other values are not even trimmed: a span may carry large ones (stack
                // traces, payloads).
                _ => continue,
            };
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            for &(slot, rank) in places {
                if slots[slot].is_none_or(|(r, _)| rank < r) {
                    slots[slot] = Some((rank, v));
                }
            }
        }
        CallAttrs {
            db_system: slots[DB_SYSTEM],
            db_namespace: slots[DB_NAMESPACE],
            statement: slots[STATEMENT],
            method: slots[METHOD],
            peer: slots[PEER],
            url: slots[URL],
            destination: slots[DESTINATION],
        }
    }
}

pub(super) fn value(slot: Option<(u8, &str)>) -> Option<&str> {
    slot.map(|(_, v)| v)
}

/// The call a span makes, when it is one: a CLIENT or PRODUCER span, or a span of another
/// service directly under its caller (the client side not instrumented).
pub(super) fn call_info<'a>(tl: &Timeline<'_, 'a>, i: usize) -> Option<Call<'a>> {
    let span = tl.span(i);
    let service = tl.service(i);
    let direct = match tl.parent(i) {
        Some(p) => {
            tl.sync[i]
                && !matches!(tl.span(p).kind, SpanKind::Client | SpanKind::Producer)
                && tl.service(p) != service
                && matches!(
                    span.kind,
                    SpanKind::Server | SpanKind::Unspecified | SpanKind::Internal
                )
        }
        None => false,
    };
    let outgoing = matches!(span.kind, SpanKind::Client | SpanKind::Producer);
    if !outgoing && !direct {
        return None;
    }
    let attrs = CallAttrs::read(span);
    let remote_kids: Vec<usize> = if outgoing {
        tl.sync_kids(i)
            .filter(|&k| tl.service(k) != service)
            .collect()
    } else {
        Vec::new()
    };
    let db = value(attrs.db_system).map(|system| -> Cow<'a, str> {
        match value(attrs.db_namespace) {
            Some(ns) => Cow::Owned(format!("{system} {ns}")),
            None => Cow::Borrowed(system),
        }
    });
    let target: Cow<'a, str> = if direct {
        Cow::Borrowed(service)
    } else if let Some(&k) = remote_kids.first() {
        Cow::Borrowed(tl.service(k))
    } else if let Some(display) = &db {
        display.clone()
    } else if let Some(peer) = value(attrs.peer) {
        Cow::Borrowed(peer)
    } else if let Some(host) = value(attrs.url).and_then(url_host) {
        Cow::Borrowed(host)
    } else {
        Cow::Borrowed(span.name.as_str())
    };
    Some(Call {
        target,
        db,
        statement: value(attrs.statement),
        shape: OnceCell::new(),
        name: span.name.as_str(),
        method: value(attrs.method).or_else(|| span.name.split_whitespace().next()),
        kind: span.kind,
        destination: value(attrs.destination),
        remote_kids,
    })
}

pub(super) fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    (!host.is_empty()).then_some(host)
}

/// The words of `s`: runs of alphanumeric characters, also split where a lower-case letter or
/// digit is followed by an upper-case one (`sendEmail` → `send`, `Email`).
pub(super) fn words(s: &str) -> impl Iterator<Item = &str> + '_ {
    let mut rest = s;
    std::iter::from_fn(move || {
        let start = rest.find(char::is_alphanumeric)?;
        rest = &rest[start..];
        let mut prev_lower = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if !c.is_alphanumeric() || (c.is_uppercase() && prev_lower) {
                end = i;
                break;
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

/// Whether a word of `s` is one of `list` (ASCII case-insensitive).
pub(super) fn has_word<S: AsRef<str>>(s: &str, list: &[S]) -> bool {
    words(s).any(|w| list.iter().any(|k| k.as_ref().eq_ignore_ascii_case(w)))
}

/// The shape of a statement: literals replaced by `?`, `IN (?, ?, ...)` collapsed, white space
/// collapsed, keywords upper-cased as written. Two statements that differ only in values have
/// the same shape.
pub(crate) fn normalize_statement(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut prev_word = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // A quoted literal ('' escapes a quote). Double quotes are identifiers in
                // standard SQL but values in MySQL; either way the value is dropped.
                while let Some(d) = chars.next() {
                    if d == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
                out.push('?');
                prev_word = false;
            }
            '$' | ':' if chars.peek().is_some_and(|d| d.is_ascii_alphanumeric()) => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
                {
                    chars.next();
                }
                out.push('?');
                prev_word = false;
            }
            c if c.is_ascii_digit() && !prev_word => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.' || *d == '_')
                {
                    chars.next();
                }
                out.push('?');
                prev_word = false;
            }
            c if c.is_whitespace() => {
                if !out.ends_with(' ') && !out.is_empty() {
                    out.push(' ');
                }
                prev_word = false;
            }
            c => {
                out.push(c);
                prev_word = c.is_alphanumeric() || c == '_';
            }
        }
    }
    let mut s = out.trim().to_owned();
    // Collapse lists of placeholders: (?, ?, ?) → (?)
    loop {
        let next = s.replace("?, ?", "?").replace("?,?", "?");
        if next == s {
            break;
        }
        s = next;
    }
    s
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    let word = if n == 1 { one } else { many };
    let number = match n {
        1 => "one".to_owned(),
        2 => "two".to_owned(),
        3 => "three".to_owned(),
        4 => "four".to_owned(),
        5 => "five".to_owned(),
        n => n.to_string(),
    };
    format!("{number} {word}")
}

/// `a`, `a and b`, `a, b and c` (with `then`: `a then b then c`).
pub(super) fn join_words(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        _ if word == "then" => items.join(" then "),
        [rest @ .., last] => format!("{} {word} {last}", rest.join(", ")),
    }
}
