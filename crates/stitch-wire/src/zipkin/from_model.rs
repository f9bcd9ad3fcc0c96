//! The model → Zipkin spans, as the OpenTelemetry Collector's Zipkin exporter maps OTLP spans.
//! The mapping is documented in the module docs of [`crate::zipkin`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde_json::Value;
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Resource, SERVICE_NAME, Scope, Span, SpanId, SpanKind,
    StatusCode, Trace,
};

use super::span::{Annotation, Endpoint, ZipkinSpan};
use super::{attr, shared_span_id, tag};

/// Attributes that name the remote service of a CLIENT or PRODUCER span when `peer.service`
/// is absent, in the order of preference of OpenTelemetry's Zipkin exporter specification.
pub const REMOTE_SERVICE_FALLBACKS: &[&str] = &[
    "server.address",
    "net.peer.name",
    "server.socket.domain",
    "net.sock.peer.name",
    "peer.hostname",
    "peer.address",
    "db.name",
];

/// Attributes that give the remote address when `net.peer.ip` is absent.
const REMOTE_IP_FALLBACKS: &[&str] = &[
    "network.peer.address",
    "server.socket.address",
    "net.sock.peer.addr",
];

/// Attributes that give the remote port when `net.peer.port` is absent.
const REMOTE_PORT_FALLBACKS: &[&str] = &[
    "network.peer.port",
    "server.socket.port",
    "net.sock.peer.port",
];

/// Every span of a trace as Zipkin spans, in the trace's order.
pub fn trace_to_zipkin(trace: &Trace) -> Vec<ZipkinSpan> {
    let parents: HashMap<SpanId, Option<SpanId>> = trace
        .spans()
        .map(|s| (s.span.span_id, s.span.parent_span_id))
        .collect();
    trace
        .spans()
        .map(|s| span_to_zipkin(s.resource, s.scope, s.span, &parents))
        .collect()
}

/// Every span of a batch as Zipkin spans, in the batch's order.
pub fn batch_to_zipkin(batch: &Batch) -> Vec<ZipkinSpan> {
    let parents: HashMap<SpanId, Option<SpanId>> = batch
        .spans()
        .map(|s| (s.span.span_id, s.span.parent_span_id))
        .collect();
    batch
        .spans()
        .map(|s| span_to_zipkin(s.resource, s.scope, s.span, &parents))
        .collect()
}

/// One span. `parents` maps the span ids of the trace to their parents; it gives a shared
/// server span back the parent of its client half.
pub fn span_to_zipkin(
    resource: &Resource,
    scope: &Scope,
    span: &Span,
    parents: &HashMap<SpanId, Option<SpanId>>,
) -> ZipkinSpan {
    // Resource attributes first, so that span attributes of the same key win.
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for kv in &resource.attributes {
        if kv.key == SERVICE_NAME && matches!(kv.value, AnyValue::String(_)) {
            continue;
        }
        tags.insert(kv.key.clone(), kv.value.to_text());
    }
    if !scope.name.is_empty() {
        tags.insert(tag::SCOPE_NAME.into(), scope.name.clone());
    }
    if !scope.version.is_empty() {
        tags.insert(tag::SCOPE_VERSION.into(), scope.version.clone());
    }

    let attrs = &span.attributes;
    let mut consumed: Vec<&str> = Vec::new();
    let local_ip = canonical_ip(attrs, attr::NET_HOST_IP);
    let local_port = port(attrs, attr::NET_HOST_PORT);
    if local_ip.is_some() {
        consumed.push(attr::NET_HOST_IP);
    }
    if local_port.is_some() {
        consumed.push(attr::NET_HOST_PORT);
    }
    let local_endpoint = Endpoint {
        service_name: resource.service_name().to_owned(),
        ipv4: local_ip.and_then(|ip| match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }),
        ipv6: local_ip.and_then(|ip| match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }),
        port: local_port,
    };

    let peer_service = match stitch_model::find_attribute(attrs, attr::PEER_SERVICE) {
        Some(AnyValue::String(s)) if !s.is_empty() => {
            consumed.push(attr::PEER_SERVICE);
            Some(s.clone())
        }
        _ => None,
    };
    let calls_out = matches!(span.kind, SpanKind::Client | SpanKind::Producer);
    let remote_service = peer_service
        .or_else(|| {
            calls_out
                .then(|| {
                    REMOTE_SERVICE_FALLBACKS.iter().find_map(
                        |k| match stitch_model::find_attribute(attrs, k) {
                            Some(AnyValue::String(s)) if !s.is_empty() => Some(s.clone()),
                            _ => None,
                        },
                    )
                })
                .flatten()
        })
        .unwrap_or_default();
    let remote_ip = match canonical_ip(attrs, attr::NET_PEER_IP) {
        Some(ip) => {
            consumed.push(attr::NET_PEER_IP);
            Some(ip)
        }
        None => REMOTE_IP_FALLBACKS.iter().find_map(|k| {
            stitch_model::find_attribute(attrs, k)
                .and_then(AnyValue::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
        }),
    };
    let remote_port = match port(attrs, attr::NET_PEER_PORT) {
        Some(p) => {
            consumed.push(attr::NET_PEER_PORT);
            Some(p)
        }
        None => REMOTE_PORT_FALLBACKS.iter().find_map(|k| port(attrs, k)),
    };
    let remote_endpoint = Endpoint {
        service_name: remote_service,
        ipv4: remote_ip.and_then(|ip| match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }),
        ipv6: remote_ip.and_then(|ip| match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }),
        port: remote_port,
    };
    let debug = matches!(
        stitch_model::find_attribute(attrs, attr::ZIPKIN_DEBUG),
        Some(AnyValue::Bool(true))
    );
    if debug {
        consumed.push(attr::ZIPKIN_DEBUG);
    }

    for kv in attrs {
        if !consumed.contains(&kv.key.as_str()) {
            tags.insert(kv.key.clone(), kv.value.to_text());
        }
    }

    if span.kind == SpanKind::Internal {
        tags.insert(tag::SPAN_KIND.into(), "internal".into());
    }
    // Status, as the OpenTelemetry specification maps it: `otel.status_code` unless unset,
    // `error` only for ERROR (holding the message), never a stale `error` attribute otherwise.
    tags.remove(tag::ERROR);
    let message = &span.status.message;
    match span.status.code {
        StatusCode::Unset => {}
        StatusCode::Ok => {
            tags.insert(tag::STATUS_CODE.into(), "OK".into());
        }
        StatusCode::Error => {
            tags.insert(tag::STATUS_CODE.into(), "ERROR".into());
            tags.insert(tag::ERROR.into(), message.clone());
        }
    }
    if !message.is_empty()
        && (span.status.code != StatusCode::Error || message == "true" || message == "false")
    {
        tags.insert(tag::STATUS_DESCRIPTION.into(), message.clone());
    }
    if !span.trace_state.is_empty() {
        tags.insert(tag::TRACE_STATE.into(), span.trace_state.clone());
    }
    for (i, link) in span.links.iter().enumerate() {
        tags.insert(
            format!("{}{i}", tag::LINK_PREFIX),
            format!(
                "{}|{}|{}|{}|{}",
                link.trace_id,
                link.span_id,
                link.trace_state,
                attributes_json(&link.attributes),
                link.dropped_attributes_count
            ),
        );
    }
    for (key, count) in [
        (tag::DROPPED_ATTRIBUTES, span.dropped_attributes_count),
        (tag::DROPPED_EVENTS, span.dropped_events_count),
        (tag::DROPPED_LINKS, span.dropped_links_count),
    ] {
        if count > 0 {
            tags.insert(key.into(), count.to_string());
        }
    }

    // A shared server half (see `shared_span_id`) goes back to its client's id.
    let (id, parent_id, shared) = match span.parent_span_id {
        Some(p) if span.span_id == shared_span_id(p) => {
            (p, parents.get(&p).copied().flatten(), true)
        }
        _ => (span.span_id, span.parent_span_id, false),
    };

    let start = span.start_time_unix_nano;
    let nanos = span.duration_nanos();
    ZipkinSpan {
        trace_id: span.trace_id,
        parent_id,
        id,
        kind: match span.kind {
            k @ (SpanKind::Client | SpanKind::Server | SpanKind::Producer | SpanKind::Consumer) => {
                Some(k)
            }
            SpanKind::Internal | SpanKind::Unspecified => None,
        },
        name: span.name.clone(),
        timestamp: Some(start / 1_000).filter(|t| *t != 0),
        // Zipkin rounds a duration under one microsecond up to one.
        duration: (nanos > 0).then(|| (nanos / 1_000).max(1)),
        local_endpoint: Some(local_endpoint).filter(|e| !e.is_empty()),
        remote_endpoint: Some(remote_endpoint).filter(|e| !e.is_empty()),
        annotations: span.events.iter().map(event_to_annotation).collect(),
        tags,
        debug,
        shared,
    }
}

/// A string attribute holding an IP address in the form the decoder writes it.
fn canonical_ip(attrs: &[KeyValue], key: &str) -> Option<IpAddr> {
    let text = stitch_model::find_attribute(attrs, key)?.as_str()?;
    let ip: IpAddr = text.parse().ok()?;
    (ip.to_string() == text).then_some(ip)
}

/// An integer attribute holding a port from 1 to 65535.
fn port(attrs: &[KeyValue], key: &str) -> Option<u16> {
    match stitch_model::find_attribute(attrs, key)? {
        AnyValue::Int(p) => u16::try_from(*p).ok().filter(|p| *p != 0),
        _ => None,
    }
}

/// An event as an annotation: its name alone, or `name|{attributes as JSON}|dropped count`
/// when it has attributes or dropped some.
pub(crate) fn event_to_annotation(event: &Event) -> Annotation {
    let value = if event.attributes.is_empty() && event.dropped_attributes_count == 0 {
        event.name.clone()
    } else {
        format!(
            "{}|{}|{}",
            event.name,
            attributes_json(&event.attributes),
            event.dropped_attributes_count
        )
    };
    Annotation {
        timestamp: event.time_unix_nano / 1_000,
        value,
    }
}

fn attributes_json(attributes: &[KeyValue]) -> String {
    Value::Object(
        attributes
            .iter()
            .map(|kv| (kv.key.clone(), value_json(&kv.value)))
            .collect(),
    )
    .to_string()
}

fn value_json(value: &AnyValue) -> Value {
    match value {
        AnyValue::Empty => Value::Null,
        AnyValue::String(s) => Value::String(s.clone()),
        AnyValue::Bool(b) => Value::Bool(*b),
        AnyValue::Int(i) => Value::from(*i),
        AnyValue::Double(d) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        AnyValue::Bytes(_) => Value::String(value.to_text()),
        AnyValue::Array(items) => Value::Array(items.iter().map(value_json).collect()),
        AnyValue::KvList(kvs) => Value::Object(
            kvs.iter()
                .map(|kv| (kv.key.clone(), value_json(&kv.value)))
                .collect(),
        ),
    }
}
