//! Model → canonical OTLP/JSON.

use serde_json::{Map, Number, Value};
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span, Trace,
};

use crate::base64;

/// Builds a JSON object, leaving out fields that hold their default value.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn put(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.to_owned(), value);
        self
    }

    fn string(self, key: &str, s: &str) -> Self {
        if s.is_empty() {
            self
        } else {
            self.put(key, Value::String(s.to_owned()))
        }
    }

    /// A 64-bit integer, as a decimal string.
    fn uint64(self, key: &str, n: u64) -> Self {
        if n == 0 {
            self
        } else {
            self.put(key, Value::String(n.to_string()))
        }
    }

    fn number(self, key: &str, n: i64) -> Self {
        if n == 0 {
            self
        } else {
            self.put(key, Value::from(n))
        }
    }

    fn list(self, key: &str, items: Vec<Value>) -> Self {
        if items.is_empty() {
            self
        } else {
            self.put(key, Value::Array(items))
        }
    }

    /// A nested message, left out when all its fields are.
    fn message(self, key: &str, message: Fields) -> Self {
        if message.0.is_empty() {
            self
        } else {
            self.put(key, message.done())
        }
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

/// `{"resourceSpans": [...]}` for a batch.
pub fn batch_to_json(batch: &Batch) -> Value {
    document(&batch.resource_spans)
}

/// `{"resourceSpans": [...]}` for a whole trace: the same document shape as an export request.
pub fn trace_to_json(trace: &Trace) -> Value {
    document(&trace.resource_spans)
}

/// [`batch_to_json`], serialised.
pub fn encode_json(batch: &Batch) -> Vec<u8> {
    batch_to_json(batch).to_string().into_bytes()
}

fn document(resource_spans: &[ResourceSpans]) -> Value {
    Fields::default()
        .put(
            "resourceSpans",
            Value::Array(resource_spans.iter().map(resource_spans_to_json).collect()),
        )
        .done()
}

/// One resource group; the resource's schema URL goes to `schemaUrl` next to `resource`.
pub fn resource_spans_to_json(rs: &ResourceSpans) -> Value {
    group_head(rs)
        .list(
            "scopeSpans",
            rs.scope_spans.iter().map(scope_spans).collect(),
        )
        .done()
}

/// A resource group's fields but its scope groups.
fn group_head(rs: &ResourceSpans) -> Fields {
    Fields::default()
        .message("resource", resource(&rs.resource))
        .string("schemaUrl", &rs.resource.schema_url)
}

/// A scope group's fields but its spans.
fn scope_head(ss: &ScopeSpans) -> Fields {
    Fields::default()
        .message("scope", scope(&ss.scope))
        .string("schemaUrl", &ss.scope.schema_url)
}

/// `head` written as JSON without its closing brace, so that one more field can follow
/// (alphabetical key order puts `scopeSpans` and `spans` last). Tells whether a field was
/// written, so the caller knows whether the next needs a comma.
fn open_object(head: Fields, out: &mut Vec<u8>) -> bool {
    let any = !head.0.is_empty();
    let text = head.done().to_string();
    out.extend_from_slice(&text.as_bytes()[..text.len() - 1]);
    any
}

pub(super) fn open_group(rs: &ResourceSpans, out: &mut Vec<u8>) -> bool {
    open_object(group_head(rs), out)
}

pub(super) fn open_scope(ss: &ScopeSpans, out: &mut Vec<u8>) -> bool {
    open_object(scope_head(ss), out)
}

fn resource(resource: &Resource) -> Fields {
    Fields::default()
        .list("attributes", key_values(&resource.attributes))
        .number(
            "droppedAttributesCount",
            resource.dropped_attributes_count.into(),
        )
}

fn scope_spans(ss: &ScopeSpans) -> Value {
    scope_head(ss)
        .list("spans", ss.spans.iter().map(span_to_json).collect())
        .done()
}

fn scope(scope: &Scope) -> Fields {
    Fields::default()
        .string("name", &scope.name)
        .string("version", &scope.version)
        .list("attributes", key_values(&scope.attributes))
        .number(
            "droppedAttributesCount",
            scope.dropped_attributes_count.into(),
        )
}

pub fn span_to_json(span: &Span) -> Value {
    let status = Fields::default()
        .string("message", &span.status.message)
        .number("code", span.status.code.as_i32().into());
    Fields::default()
        .put("traceId", Value::String(span.trace_id.to_hex()))
        .put("spanId", Value::String(span.span_id.to_hex()))
        .string("traceState", &span.trace_state)
        .string(
            "parentSpanId",
            &span
                .parent_span_id
                .map(|id| id.to_hex())
                .unwrap_or_default(),
        )
        .number("flags", span.flags.into())
        .string("name", &span.name)
        .number("kind", span.kind.as_i32().into())
        .uint64("startTimeUnixNano", span.start_time_unix_nano)
        .uint64("endTimeUnixNano", span.end_time_unix_nano)
        .list("attributes", key_values(&span.attributes))
        .number(
            "droppedAttributesCount",
            span.dropped_attributes_count.into(),
        )
        .list("events", span.events.iter().map(event).collect())
        .number("droppedEventsCount", span.dropped_events_count.into())
        .list("links", span.links.iter().map(link).collect())
        .number("droppedLinksCount", span.dropped_links_count.into())
        .message("status", status)
        .done()
}

fn event(event: &Event) -> Value {
    Fields::default()
        .uint64("timeUnixNano", event.time_unix_nano)
        .string("name", &event.name)
        .list("attributes", key_values(&event.attributes))
        .number(
            "droppedAttributesCount",
            event.dropped_attributes_count.into(),
        )
        .done()
}

fn link(link: &Link) -> Value {
    Fields::default()
        .put("traceId", Value::String(link.trace_id.to_hex()))
        .put("spanId", Value::String(link.span_id.to_hex()))
        .string("traceState", &link.trace_state)
        .list("attributes", key_values(&link.attributes))
        .number(
            "droppedAttributesCount",
            link.dropped_attributes_count.into(),
        )
        .number("flags", link.flags.into())
        .done()
}

fn key_values(attributes: &[KeyValue]) -> Vec<Value> {
    attributes.iter().map(key_value_to_json).collect()
}

/// `{"key": ..., "value": {...}}`; both are always written.
pub fn key_value_to_json(kv: &KeyValue) -> Value {
    Fields::default()
        .put("key", Value::String(kv.key.clone()))
        .put("value", any_value_to_json(&kv.value))
        .done()
}

/// `{}` for [`AnyValue::Empty`], otherwise an object with the one field that holds the value.
pub fn any_value_to_json(value: &AnyValue) -> Value {
    let fields = Fields::default();
    match value {
        AnyValue::Empty => fields,
        AnyValue::String(s) => fields.put("stringValue", Value::String(s.clone())),
        AnyValue::Bool(b) => fields.put("boolValue", Value::Bool(*b)),
        AnyValue::Int(i) => fields.put("intValue", Value::String(i.to_string())),
        AnyValue::Double(d) => fields.put("doubleValue", double(*d)),
        AnyValue::Bytes(b) => fields.put("bytesValue", Value::String(base64::encode(b))),
        AnyValue::Array(items) => fields.put(
            "arrayValue",
            Fields::default()
                .list("values", items.iter().map(any_value_to_json).collect())
                .done(),
        ),
        AnyValue::KvList(kvs) => fields.put(
            "kvlistValue",
            Fields::default().list("values", key_values(kvs)).done(),
        ),
    }
    .done()
}

fn double(d: f64) -> Value {
    match Number::from_f64(d) {
        Some(n) => Value::Number(n),
        None if d.is_nan() => Value::String("NaN".to_owned()),
        None if d > 0.0 => Value::String("Infinity".to_owned()),
        None => Value::String("-Infinity".to_owned()),
    }
}

/// The body of an OTLP/HTTP JSON export response: `{}` when nothing was rejected and there is
/// no message, otherwise `{"partialSuccess":{"rejectedSpans":"3","errorMessage":"..."}}`
/// (each field left out when it is zero or empty).
pub fn encode_export_response_json(rejected: u64, message: &str) -> Vec<u8> {
    let partial = Fields::default()
        .uint64("rejectedSpans", rejected.min(i64::MAX as u64))
        .string("errorMessage", message);
    Fields::default()
        .message("partialSuccess", partial)
        .done()
        .to_string()
        .into_bytes()
}

/// A `google.rpc.Status` error body as JSON: `{"code":3,"message":"..."}` (both always
/// written).
pub fn encode_status_json(code: i32, message: &str) -> Vec<u8> {
    Fields::default()
        .put("code", Value::from(code))
        .put("message", Value::String(message.to_owned()))
        .done()
        .to_string()
        .into_bytes()
}
