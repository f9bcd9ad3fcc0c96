//! Zipkin spans → the model. The mapping is documented in the module docs of
//! [`crate::zipkin`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, SERVICE_NAME, Scope,
    ScopeSpans, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};

use super::span::{RawSpan, ZipkinSpan};
use super::{attr, shared_span_id, tag};
use crate::{Decoded, Rejections, SpanError};

/// Tag key prefixes of OpenTelemetry resource attributes. Tags with these keys (except
/// `service.name`) go to the resource, which is how the OpenTelemetry Collector's Zipkin
/// receiver takes back the resource attributes its exporter wrote as tags.
pub const RESOURCE_TAG_PREFIXES: &[&str] = &[
    "service.",
    "telemetry.",
    "host.",
    "os.",
    "process.",
    "container.",
    "k8s.",
    "cloud.",
    "deployment.",
    "device.",
    "webengine.",
];

/// Whether a tag with this key belongs to the resource.
pub fn is_resource_tag(key: &str) -> bool {
    key != SERVICE_NAME && RESOURCE_TAG_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Validates and converts parsed spans (each with the index it is reported under) and groups
/// them by resource and scope in the order they first appear.
pub(crate) fn assemble(spans: impl IntoIterator<Item = (usize, RawSpan)>) -> Decoded {
    let mut rejections = Rejections::default();
    let mut resources: Vec<ResourceSpans> = Vec::new();
    let mut resource_index: HashMap<Vec<(String, String)>, usize> = HashMap::new();
    let mut scope_index: HashMap<(usize, String, String), usize> = HashMap::new();
    for (i, raw) in spans {
        let converted = raw.validate().and_then(span_from_zipkin);
        let (resource_attrs, scope, span) = match converted {
            Ok(c) => c,
            Err(e) => {
                rejections.add(format_args!("span {i}"), &e);
                continue;
            }
        };
        let ri = *resource_index
            .entry(resource_attrs.clone())
            .or_insert_with(|| {
                resources.push(ResourceSpans {
                    resource: Arc::new(Resource {
                        attributes: resource_attrs
                            .into_iter()
                            .map(|(k, v)| KeyValue::new(k, v))
                            .collect(),
                        ..Default::default()
                    }),
                    scope_spans: Vec::new(),
                });
                resources.len() - 1
            });
        let rs = &mut resources[ri];
        let si = *scope_index
            .entry((ri, scope.0.clone(), scope.1.clone()))
            .or_insert_with(|| {
                rs.scope_spans.push(ScopeSpans {
                    scope: Arc::new(Scope {
                        name: scope.0,
                        version: scope.1,
                        ..Default::default()
                    }),
                    spans: Vec::new(),
                });
                rs.scope_spans.len() - 1
            });
        rs.scope_spans[si].spans.push(span);
    }
    rejections.finish(Batch {
        resource_spans: resources,
    })
}

/// Resource attributes (as strings, `service.name` first), scope name and version, and the
/// span.
type Converted = (Vec<(String, String)>, (String, String), Span);

/// Converts one valid Zipkin span.
pub fn span_from_zipkin(z: ZipkinSpan) -> Result<Converted, SpanError> {
    let mut tags = z.tags;

    // Times: microseconds to nanoseconds. A span without a timestamp takes the earliest
    // annotation's; one without either cannot be placed in time.
    let first_annotation = z.annotations.iter().map(|a| a.timestamp).min();
    let start_micros = match (z.timestamp, first_annotation) {
        (Some(t), _) => t,
        (None, Some(t)) if t != 0 => t,
        _ => return Err(SpanError::MissingField("timestamp")),
    };
    let start = micros_to_nanos("timestamp", start_micros)?;
    let end =
        match z.duration {
            Some(d) => start.checked_add(micros_to_nanos("duration", d)?).ok_or(
                SpanError::TimeOutOfRange {
                    field: "duration",
                    value: i64::try_from(d).unwrap_or(i64::MAX),
                },
            )?,
            None => start,
        };

    // Ids: the server half of a shared span gets its own id, under the client half.
    let (span_id, parent_span_id) = if z.shared {
        (shared_span_id(z.id), Some(z.id))
    } else {
        (z.id, z.parent_id)
    };

    let kind = match z.kind {
        Some(kind) => kind,
        None => match tags.get(tag::SPAN_KIND).and_then(|v| SpanKind::parse(v)) {
            Some(kind) if kind != SpanKind::Unspecified => {
                tags.remove(tag::SPAN_KIND);
                kind
            }
            _ => SpanKind::Unspecified,
        },
    };

    let status = take_status(&mut tags);
    let trace_state = tags.remove(tag::TRACE_STATE).unwrap_or_default();
    let scope_name = tags.remove(tag::SCOPE_NAME);
    let scope_version = tags.remove(tag::SCOPE_VERSION);
    let library_name = tags.remove(tag::LIBRARY_NAME);
    let library_version = tags.remove(tag::LIBRARY_VERSION);
    let scope = (
        scope_name.or(library_name).unwrap_or_default(),
        scope_version.or(library_version).unwrap_or_default(),
    );
    let links = take_links(&mut tags);
    let dropped = |tags: &mut BTreeMap<String, String>, key: &str| -> u32 {
        match tags.get(key).and_then(|v| v.parse::<u32>().ok()) {
            Some(n) => {
                tags.remove(key);
                n
            }
            None => 0,
        }
    };
    let dropped_attributes_count = dropped(&mut tags, tag::DROPPED_ATTRIBUTES);
    let dropped_events_count = dropped(&mut tags, tag::DROPPED_EVENTS);
    let dropped_links_count = dropped(&mut tags, tag::DROPPED_LINKS);

    let mut resource = Vec::new();
    let local_service = z
        .local_endpoint
        .as_ref()
        .map(|e| e.service_name.as_str())
        .filter(|s| !s.is_empty());
    // Exporters that copy resource attributes into tags repeat the service name there.
    if local_service.is_some() && tags.get(SERVICE_NAME).map(String::as_str) == local_service {
        tags.remove(SERVICE_NAME);
    }
    if let Some(service) = z
        .local_endpoint
        .as_ref()
        .map(|e| e.service_name.as_str())
        .filter(|s| !s.is_empty())
    {
        resource.push((SERVICE_NAME.to_owned(), service.to_owned()));
    }
    let resource_keys: Vec<String> = tags
        .keys()
        .filter(|k| is_resource_tag(k))
        .cloned()
        .collect();
    for key in resource_keys {
        if let Some(v) = tags.remove(&key) {
            resource.push((key, v));
        }
    }

    let mut attributes: Vec<KeyValue> =
        tags.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
    let mut add = |key: &str, value: AnyValue| {
        if !attributes.iter().any(|kv| kv.key == key) {
            attributes.push(KeyValue::new(key, value));
        }
    };
    if let Some(e) = &z.local_endpoint {
        if let Some(ip) = e
            .ipv4
            .map(|a| a.to_string())
            .or(e.ipv6.map(|a| a.to_string()))
        {
            add(attr::NET_HOST_IP, AnyValue::String(ip));
        }
        if let Some(port) = e.port {
            add(attr::NET_HOST_PORT, AnyValue::Int(i64::from(port)));
        }
    }
    if let Some(e) = &z.remote_endpoint {
        if !e.service_name.is_empty() {
            add(attr::PEER_SERVICE, AnyValue::String(e.service_name.clone()));
        }
        if let Some(ip) = e
            .ipv4
            .map(|a| a.to_string())
            .or(e.ipv6.map(|a| a.to_string()))
        {
            add(attr::NET_PEER_IP, AnyValue::String(ip));
        }
        if let Some(port) = e.port {
            add(attr::NET_PEER_PORT, AnyValue::Int(i64::from(port)));
        }
    }
    if z.debug {
        add(attr::ZIPKIN_DEBUG, AnyValue::Bool(true));
    }

    let events = z
        .annotations
        .into_iter()
        .map(|a| {
            let mut event = annotation_to_event(&a.value);
            event.time_unix_nano = a.timestamp.saturating_mul(1_000);
            event
        })
        .collect();

    let span = Span {
        trace_id: z.trace_id,
        span_id,
        parent_span_id,
        trace_state,
        // A reported Zipkin span was sampled.
        flags: 0x01,
        name: z.name,
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        dropped_attributes_count,
        events,
        dropped_events_count,
        links,
        dropped_links_count,
        status,
    };
    Ok((resource, scope, span))
}

fn micros_to_nanos(field: &'static str, micros: u64) -> Result<u64, SpanError> {
    micros.checked_mul(1_000).ok_or(SpanError::TimeOutOfRange {
        field,
        value: i64::try_from(micros).unwrap_or(i64::MAX),
    })
}

/// The status from `otel.status_code`, `otel.status_description` and `error`, which are
/// removed from the tags. An `error` tag (other than `"false"`) always means ERROR; its value
/// is the message unless it is `"true"` or empty, or `otel.status_description` gives one.
fn take_status(tags: &mut BTreeMap<String, String>) -> Status {
    let mut status = Status::default();
    let code = tags.get(tag::STATUS_CODE).and_then(|v| {
        match v
            .trim()
            .trim_start_matches("STATUS_CODE_")
            .to_ascii_uppercase()
            .as_str()
        {
            "OK" => Some(StatusCode::Ok),
            "ERROR" => Some(StatusCode::Error),
            "UNSET" => Some(StatusCode::Unset),
            _ => None,
        }
    });
    if let Some(code) = code {
        status.code = code;
        tags.remove(tag::STATUS_CODE);
    }
    if let Some(message) = tags.remove(tag::STATUS_DESCRIPTION) {
        status.message = message;
    }
    // With `otel.status_code=ERROR` the `error` tag carries the message whatever it says.
    if tags
        .get(tag::ERROR)
        .is_some_and(|v| v != "false" || status.code == StatusCode::Error)
        && let Some(value) = tags.remove(tag::ERROR)
    {
        status.code = StatusCode::Error;
        if status.message.is_empty() && value != "true" {
            status.message = value;
        }
    }
    status
}

/// Links written by the OpenTelemetry Collector's Zipkin exporter as tags
/// `otlp.link.0`, `otlp.link.1`, ...: `traceid|spanid|tracestate|{attributes}|dropped`. A tag
/// that does not parse stays an attribute.
fn take_links(tags: &mut BTreeMap<String, String>) -> Vec<Link> {
    let mut links = Vec::new();
    for i in 0.. {
        let key = format!("{}{i}", tag::LINK_PREFIX);
        let Some(value) = tags.get(&key) else { break };
        if let Some(link) = parse_link(value) {
            links.push(link);
            tags.remove(&key);
        }
    }
    links
}

fn parse_link(value: &str) -> Option<Link> {
    let mut head = value.splitn(4, '|');
    let trace_id = TraceId::from_hex(head.next()?).ok()?;
    let span_id = SpanId::from_hex(head.next()?).ok()?;
    let trace_state = head.next()?.to_owned();
    let rest = head.next()?;
    let (json, dropped) = rest.rsplit_once('|')?;
    let attributes = json_attributes(json)?;
    Some(Link {
        trace_id,
        span_id,
        trace_state,
        attributes,
        dropped_attributes_count: dropped.parse().ok()?,
        flags: 0,
    })
}

/// An annotation as an event: `name|{attributes as JSON}|dropped count` (the format the
/// OpenTelemetry Collector's Zipkin exporter writes) gives a name, typed attributes and a
/// dropped count; `{"name": {attributes as JSON}}` (the format of OpenTelemetry's exporter
/// specification) a name and typed attributes; any other value is the event name.
pub(crate) fn annotation_to_event(value: &str) -> Event {
    let plain = || Event {
        name: value.to_owned(),
        ..Default::default()
    };
    // OpenTelemetry's specification (and its Python exporter): `{"name": {attributes}}`.
    if value.starts_with('{')
        && let Ok(Value::Object(o)) = serde_json::from_str::<Value>(value)
        && o.len() == 1
        && let Some((name, Value::Object(attrs))) = o.into_iter().next()
    {
        return Event {
            time_unix_nano: 0,
            name,
            attributes: attrs
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, json_value(v)))
                .collect(),
            dropped_attributes_count: 0,
        };
    }
    let Some(at) = value.find("|{") else {
        return plain();
    };
    let (name, rest) = (&value[..at], &value[at + 1..]);
    let Some((json, dropped)) = rest.rsplit_once('|') else {
        return plain();
    };
    match (json_attributes(json), dropped.parse::<u32>()) {
        (Some(attributes), Ok(dropped)) => Event {
            time_unix_nano: 0,
            name: name.to_owned(),
            attributes,
            dropped_attributes_count: dropped,
        },
        _ => plain(),
    }
}

fn json_attributes(text: &str) -> Option<Vec<KeyValue>> {
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Object(o) => Some(
            o.into_iter()
                .map(|(k, v)| KeyValue::new(k, json_value(v)))
                .collect(),
        ),
        _ => None,
    }
}

fn json_value(v: Value) -> AnyValue {
    match v {
        Value::Null => AnyValue::Empty,
        Value::Bool(b) => AnyValue::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => AnyValue::String(s),
        Value::Array(items) => AnyValue::Array(items.into_iter().map(json_value).collect()),
        Value::Object(o) => AnyValue::KvList(
            o.into_iter()
                .map(|(k, v)| KeyValue::new(k, json_value(v)))
                .collect(),
        ),
    }
}
