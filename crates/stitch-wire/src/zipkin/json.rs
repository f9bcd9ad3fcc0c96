//! Zipkin v2 JSON (`POST /api/v2/spans`, the `ListOfSpans` of Zipkin's OpenAPI document):
//! parsing into [`RawSpan`]s and writing [`ZipkinSpan`]s, plus the JSON helpers the v1 parser
//! shares.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value, json};
use stitch_model::SpanKind;

use super::ZipkinError;
use super::span::{Annotation, Endpoint, RawId, RawKind, RawSpan, ZipkinSpan, trace_id_to_zipkin};
use crate::truncate;

pub(crate) type Object = Map<String, Value>;

/// Parses the document into a JSON value, or says why it is not JSON.
pub(crate) fn parse_document(bytes: &[u8]) -> Result<Value, ZipkinError> {
    serde_json::from_slice(bytes).map_err(|e| ZipkinError::Syntax(e.to_string()))
}

/// The top-level list of a span document.
pub(crate) fn span_list(value: Value) -> Result<Vec<Value>, ZipkinError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(wrong_type("", "a list of spans", &other)),
    }
}

/// Parses a v2 span list.
pub(crate) fn parse_v2(bytes: &[u8]) -> Result<Vec<RawSpan>, ZipkinError> {
    span_list(parse_document(bytes)?)?
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_span(item, &format!("[{i}]")))
        .collect()
}

pub(crate) fn invalid(path: &str, message: String) -> ZipkinError {
    ZipkinError::Invalid {
        path: path.to_owned(),
        message,
    }
}

pub(crate) fn wrong_type(path: &str, expected: &str, got: &Value) -> ZipkinError {
    invalid(path, format!("expected {expected}, got {}", describe(got)))
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Value::String(truncate(s, 40)).to_string(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

pub(crate) fn child(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

pub(crate) fn object(value: Value, path: &str) -> Result<Object, ZipkinError> {
    match value {
        Value::Object(o) => Ok(o),
        other => Err(wrong_type(path, "an object", &other)),
    }
}

/// Removes `key`; `None` when absent or null.
pub(crate) fn take(object: &mut Object, key: &str) -> Option<Value> {
    match object.remove(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

pub(crate) fn string_field(
    object: &mut Object,
    path: &str,
    key: &str,
) -> Result<Option<String>, ZipkinError> {
    match take(object, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(&child(path, key), "a string", &other)),
    }
}

pub(crate) fn id_field(object: &mut Object, path: &str, key: &str) -> Result<RawId, ZipkinError> {
    Ok(match string_field(object, path, key)? {
        None => RawId::Absent,
        Some(s) => RawId::Hex(s),
    })
}

pub(crate) fn bool_field(object: &mut Object, path: &str, key: &str) -> Result<bool, ZipkinError> {
    match take(object, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(other) => Err(wrong_type(&child(path, key), "true or false", &other)),
    }
}

/// Epoch or duration microseconds: a non-negative integer (a non-negative fraction is cut to
/// whole microseconds). Zero counts as absent, as in Zipkin.
pub(crate) fn micros_field(
    object: &mut Object,
    path: &str,
    key: &str,
) -> Result<Option<u64>, ZipkinError> {
    let Some(value) = take(object, key) else {
        return Ok(None);
    };
    let micros = match &value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    };
    match micros {
        Some(0) => Ok(None),
        Some(m) => Ok(Some(m)),
        None => Err(wrong_type(
            &child(path, key),
            "a non-negative number of microseconds",
            &value,
        )),
    }
}

fn parse_span(value: Value, path: &str) -> Result<RawSpan, ZipkinError> {
    let mut o = object(value, path)?;
    let kind = match string_field(&mut o, path, "kind")? {
        None => RawKind::Absent,
        Some(name) => match name.to_ascii_uppercase().as_str() {
            "CLIENT" => RawKind::Known(SpanKind::Client),
            "SERVER" => RawKind::Known(SpanKind::Server),
            "PRODUCER" => RawKind::Known(SpanKind::Producer),
            "CONSUMER" => RawKind::Known(SpanKind::Consumer),
            "" => RawKind::Absent,
            _ => RawKind::UnknownName(name),
        },
    };
    let annotations = match take(&mut o, "annotations") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let base = child(path, "annotations");
            items
                .into_iter()
                .enumerate()
                .map(|(i, a)| parse_annotation(a, &format!("{base}[{i}]")))
                .collect::<Result<_, _>>()?
        }
        Some(other) => {
            return Err(wrong_type(&child(path, "annotations"), "an array", &other));
        }
    };
    Ok(RawSpan {
        trace_id: id_field(&mut o, path, "traceId")?,
        parent_id: id_field(&mut o, path, "parentId")?,
        id: id_field(&mut o, path, "id")?,
        kind,
        name: string_field(&mut o, path, "name")?.unwrap_or_default(),
        timestamp: micros_field(&mut o, path, "timestamp")?,
        duration: micros_field(&mut o, path, "duration")?,
        local_endpoint: endpoint_field(&mut o, path, "localEndpoint")?,
        remote_endpoint: endpoint_field(&mut o, path, "remoteEndpoint")?,
        annotations,
        tags: tags_field(&mut o, path, "tags")?,
        debug: bool_field(&mut o, path, "debug")?,
        shared: bool_field(&mut o, path, "shared")?,
    })
}

fn parse_annotation(value: Value, path: &str) -> Result<Annotation, ZipkinError> {
    let mut o = object(value, path)?;
    let timestamp = micros_field(&mut o, path, "timestamp")?.unwrap_or(0);
    let value = string_field(&mut o, path, "value")?
        .ok_or_else(|| invalid(&child(path, "value"), "is required".into()))?;
    Ok(Annotation { timestamp, value })
}

/// An endpoint object. An IP address that does not parse is dropped, as Zipkin drops it.
pub(crate) fn endpoint_field(
    object: &mut Object,
    path: &str,
    key: &str,
) -> Result<Option<Endpoint>, ZipkinError> {
    let Some(value) = take(object, key) else {
        return Ok(None);
    };
    let path = child(path, key);
    let mut o = self::object(value, &path)?;
    let service_name = string_field(&mut o, &path, "serviceName")?.unwrap_or_default();
    let ipv4 = string_field(&mut o, &path, "ipv4")?;
    let ipv6 = string_field(&mut o, &path, "ipv6")?;
    let port = match take(&mut o, "port") {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|p| p <= u64::from(u16::MAX)) => {
            Some(n.as_u64().unwrap_or(0) as u16).filter(|p| *p != 0)
        }
        Some(other) => {
            return Err(wrong_type(
                &child(&path, "port"),
                "a port number from 0 to 65535",
                &other,
            ));
        }
    };
    let (ipv4, ipv6) = parse_ips(ipv4.as_deref(), ipv6.as_deref());
    Ok(Some(Endpoint {
        service_name,
        ipv4,
        ipv6,
        port,
    }))
}

/// The addresses of an endpoint; an IPv4 address sent as `ipv6` (or mapped into IPv6) counts
/// as IPv4, as Zipkin reads it.
fn parse_ips(ipv4: Option<&str>, ipv6: Option<&str>) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let mut v4 = ipv4.and_then(|s| s.trim().parse::<Ipv4Addr>().ok());
    let mut v6 = None;
    match ipv6.and_then(|s| s.trim().parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(a)) => v4 = v4.or(Some(a)),
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(mapped) => v4 = v4.or(Some(mapped)),
            None => v6 = Some(a),
        },
        None => {}
    }
    (v4, v6)
}

/// Tags: an object of strings. Numbers and booleans are taken as their JSON text, as some
/// clients send them unquoted; null values are skipped.
pub(crate) fn tags_field(
    object: &mut Object,
    path: &str,
    key: &str,
) -> Result<BTreeMap<String, String>, ZipkinError> {
    let Some(value) = take(object, key) else {
        return Ok(BTreeMap::new());
    };
    let path = child(path, key);
    let o = self::object(value, &path)?;
    let mut tags = BTreeMap::new();
    for (k, v) in o {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(wrong_type(
                    &child(&path, &k),
                    "a string, number or boolean",
                    &other,
                ));
            }
        };
        tags.insert(k, text);
    }
    Ok(tags)
}

/// One span as Zipkin v2 JSON. Absent and empty fields are left out, as Zipkin writes them.
pub fn span_to_json(span: &ZipkinSpan) -> Value {
    let mut o = Map::new();
    o.insert(
        "traceId".into(),
        Value::String(trace_id_to_zipkin(span.trace_id)),
    );
    if let Some(p) = span.parent_id {
        o.insert("parentId".into(), Value::String(p.to_hex()));
    }
    o.insert("id".into(), Value::String(span.id.to_hex()));
    if let Some(kind) = span.kind.and_then(kind_name) {
        o.insert("kind".into(), Value::String(kind.into()));
    }
    if !span.name.is_empty() {
        o.insert("name".into(), Value::String(span.name.clone()));
    }
    if let Some(ts) = span.timestamp {
        o.insert("timestamp".into(), Value::from(ts));
    }
    if let Some(d) = span.duration {
        o.insert("duration".into(), Value::from(d));
    }
    if let Some(e) = &span.local_endpoint {
        o.insert("localEndpoint".into(), endpoint_to_json(e));
    }
    if let Some(e) = &span.remote_endpoint {
        o.insert("remoteEndpoint".into(), endpoint_to_json(e));
    }
    if !span.annotations.is_empty() {
        let list = span
            .annotations
            .iter()
            .map(|a| json!({"timestamp": a.timestamp, "value": a.value}))
            .collect();
        o.insert("annotations".into(), Value::Array(list));
    }
    if !span.tags.is_empty() {
        let tags = span
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        o.insert("tags".into(), Value::Object(tags));
    }
    if span.debug {
        o.insert("debug".into(), Value::Bool(true));
    }
    if span.shared {
        o.insert("shared".into(), Value::Bool(true));
    }
    Value::Object(o)
}

/// Zipkin's name of a kind; `None` for kinds Zipkin does not have.
pub(crate) fn kind_name(kind: SpanKind) -> Option<&'static str> {
    match kind {
        SpanKind::Client => Some("CLIENT"),
        SpanKind::Server => Some("SERVER"),
        SpanKind::Producer => Some("PRODUCER"),
        SpanKind::Consumer => Some("CONSUMER"),
        SpanKind::Unspecified | SpanKind::Internal => None,
    }
}

pub fn endpoint_to_json(e: &Endpoint) -> Value {
    let mut o = Map::new();
    if !e.service_name.is_empty() {
        o.insert("serviceName".into(), Value::String(e.service_name.clone()));
    }
    if let Some(ip) = e.ipv4 {
        o.insert("ipv4".into(), Value::String(ip.to_string()));
    }
    if let Some(ip) = e.ipv6 {
        o.insert("ipv6".into(), Value::String(ip.to_string()));
    }
    if let Some(port) = e.port {
        o.insert("port".into(), Value::from(port));
    }
    Value::Object(o)
}

/// A list of spans as a Zipkin v2 JSON document.
pub fn encode_spans_json(spans: &[ZipkinSpan]) -> Vec<u8> {
    Value::Array(spans.iter().map(span_to_json).collect())
        .to_string()
        .into_bytes()
}
