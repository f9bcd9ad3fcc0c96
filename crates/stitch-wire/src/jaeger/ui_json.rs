//! Conversion of a [`Trace`] into the JSON trace model of the Jaeger UI.
//!
//! This is the model `GET /api/traces/{id}` and `GET /api/traces` of Jaeger's query service
//! return, and that the Jaeger UI and Grafana's Jaeger data source read. The mapping follows
//! the one Jaeger itself applies to OTLP spans:
//!
//! - **Processes.** Each distinct resource becomes one process, keyed `p1`, `p2`, ... in the
//!   order the resources first appear. `service.name` becomes `serviceName` (or
//!   `unknown_service` when absent, as everywhere else in Stitch) and is not repeated among the
//!   process tags; every other resource attribute is a process tag. Resources whose processes
//!   are equal (same service name and tags) share one key.
//! - **Span tags**, in this order: `otel.scope.name` and `otel.scope.version` (when not
//!   empty), the span attributes, `span.kind` (`client`, `server`, `producer`, `consumer`,
//!   `internal`; absent for an unspecified kind), `otel.status_code` (`OK` or `ERROR`; absent
//!   when unset), `error` = `true` (a bool, only for the error status),
//!   `otel.status_description` (when the status message is not empty) and `w3c.tracestate`
//!   (when the trace state is not empty).
//! - **References.** The parent comes first as `CHILD_OF`; each link follows as
//!   `FOLLOWS_FROM`, or `CHILD_OF` when the link carries `opentracing.ref_type` =
//!   `child_of`. A link that points at the parent itself is not repeated: it only sets the
//!   type of the parent reference.
//! - **Logs.** Each event becomes a log whose fields are an `event` field holding the event
//!   name (unless the name is empty or an attribute is already called `event`) followed by the
//!   event attributes.
//! - **Values.** Strings, bools, 64-bit integers and doubles keep their type (`string`,
//!   `bool`, `int64`, `float64`); an integer outside JavaScript's safe range (±(2^53 − 1)) is
//!   written as a JSON string so that no digit is lost; a double that is not finite is written
//!   as the string `NaN`, `Infinity` or `-Infinity`; bytes are `binary` with a standard base64
//!   value; arrays and key-value lists are `string`s holding their compact JSON text (map keys
//!   sorted, bytes as base64); an empty value is the empty string.
//! - **Ids and times.** Trace ids are 32 lower-case hex digits, or 16 when the high 64 bits
//!   are zero (as Jaeger prints them); span ids are 16 hex digits. `startTime`, `duration` and
//!   log `timestamp`s are integer microseconds (truncated). `flags` holds the W3C trace flags.
//!
//! The conversion is pure and keeps the span order of the trace.

use std::fmt::Write as _;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stitch_model::{
    AnyValue, Event, KeyValue, Resource, SERVICE_NAME, Scope, Span, SpanId, SpanKind, StatusCode,
    Trace, TraceId,
};

/// Tag key of the span kind.
pub const TAG_SPAN_KIND: &str = "span.kind";
/// Tag key of the span status code (`OK` or `ERROR`).
pub const TAG_STATUS_CODE: &str = "otel.status_code";
/// Tag key of the span status message.
pub const TAG_STATUS_DESCRIPTION: &str = "otel.status_description";
/// Tag key of the boolean error flag.
pub const TAG_ERROR: &str = "error";
/// Tag key of the instrumentation scope name.
pub const TAG_SCOPE_NAME: &str = "otel.scope.name";
/// Tag key of the instrumentation scope version.
pub const TAG_SCOPE_VERSION: &str = "otel.scope.version";
/// Tag key of the W3C trace state.
pub const TAG_TRACE_STATE: &str = "w3c.tracestate";
/// Log field holding an event's name.
pub const FIELD_EVENT: &str = "event";
/// Link attribute that states the OpenTracing reference type of a link.
pub const LINK_REF_TYPE: &str = "opentracing.ref_type";

/// Largest integer a JavaScript number holds exactly.
const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A trace as the Jaeger UI reads it. It also reads back from Jaeger's JSON (Stitch's own
/// answers or Jaeger's), for clients such as `stitch search`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JaegerTrace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<JaegerSpan>,
    /// Process key (`p1`, `p2`, ...) to process, in key order.
    #[serde(
        serialize_with = "serialize_processes",
        deserialize_with = "deserialize_processes",
        default
    )]
    pub processes: Vec<(String, JaegerProcess)>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

impl JaegerTrace {
    /// The process with this key.
    pub fn process(&self, key: &str) -> Option<&JaegerProcess> {
        self.processes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, p)| p)
    }
}

fn serialize_processes<S: Serializer>(
    processes: &[(String, JaegerProcess)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(processes.len()))?;
    for (key, process) in processes {
        map.serialize_entry(key, process)?;
    }
    map.end()
}

/// One span of a [`JaegerTrace`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerSpan {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    pub operation_name: String,
    #[serde(default)]
    pub references: Vec<JaegerReference>,
    /// Unix microseconds.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    #[serde(default)]
    pub tags: Vec<JaegerTag>,
    #[serde(default)]
    pub logs: Vec<JaegerLog>,
    #[serde(rename = "processID", default)]
    pub process_id: String,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    #[serde(default)]
    pub flags: u32,
}

/// A reference from a span to another span.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerReference {
    pub ref_type: RefType,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// The two reference types Jaeger knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefType {
    #[serde(rename = "CHILD_OF")]
    ChildOf,
    #[serde(rename = "FOLLOWS_FROM")]
    FollowsFrom,
}

/// The process (service) that emitted spans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerProcess {
    pub service_name: String,
    #[serde(default)]
    pub tags: Vec<JaegerTag>,
}

/// A timestamped log of a span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JaegerLog {
    /// Unix microseconds.
    pub timestamp: u64,
    #[serde(default)]
    pub fields: Vec<JaegerTag>,
}

/// A typed key-value pair, serialized as `{"key", "type", "value"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct JaegerTag {
    pub key: String,
    pub value: TagValue,
}

impl JaegerTag {
    pub fn new(key: impl Into<String>, value: TagValue) -> JaegerTag {
        JaegerTag {
            key: key.into(),
            value,
        }
    }

    fn string(key: &str, value: &str) -> JaegerTag {
        JaegerTag::new(key, TagValue::String(value.to_owned()))
    }
}

/// The value of a [`JaegerTag`], one variant per Jaeger value type.
#[derive(Clone, Debug, PartialEq)]
pub enum TagValue {
    String(String),
    Bool(bool),
    Int64(i64),
    Float64(f64),
    Binary(Vec<u8>),
}

impl TagValue {
    /// Jaeger's name of the type: `string`, `bool`, `int64`, `float64` or `binary`.
    pub fn type_name(&self) -> &'static str {
        match self {
            TagValue::String(_) => "string",
            TagValue::Bool(_) => "bool",
            TagValue::Int64(_) => "int64",
            TagValue::Float64(_) => "float64",
            TagValue::Binary(_) => "binary",
        }
    }

    /// The value Jaeger would write for this tag.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            TagValue::String(s) => Value::String(s.clone()),
            TagValue::Bool(b) => Value::Bool(*b),
            TagValue::Int64(i) if (-JS_MAX_SAFE_INTEGER..=JS_MAX_SAFE_INTEGER).contains(i) => {
                Value::from(*i)
            }
            TagValue::Int64(i) => Value::String(i.to_string()),
            TagValue::Float64(f) => float_to_json(*f),
            TagValue::Binary(b) => Value::String(crate::base64::encode(b)),
        }
    }
}

impl Serialize for JaegerTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("KeyValue", 3)?;
        s.serialize_field("key", &self.key)?;
        s.serialize_field("type", self.value.type_name())?;
        s.serialize_field("value", &self.value.to_json())?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for JaegerTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JaegerTag, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            key: String,
            #[serde(rename = "type", default)]
            kind: Option<String>,
            value: serde_json::Value,
        }
        let raw = Raw::deserialize(deserializer)?;
        let value = TagValue::from_json(raw.kind.as_deref(), raw.value)
            .map_err(|why| de::Error::custom(format_args!("tag {:?}: {why}", raw.key)))?;
        Ok(JaegerTag {
            key: raw.key,
            value,
        })
    }
}

impl TagValue {
    /// Reads a tag's value as Jaeger writes it for the type `kind` (the JSON type decides
    /// when `kind` is absent). Integers beyond 2^53 arrive as strings, floats that JSON cannot
    /// hold as `"NaN"` and `"Infinity"`, binary values as base64.
    pub fn from_json(kind: Option<&str>, value: serde_json::Value) -> Result<TagValue, String> {
        use serde_json::Value;
        let wrong = |value: &Value| format!("{value} is not a {} value", kind.unwrap_or("tag"));
        match (kind, value) {
            (Some("string"), Value::String(s)) => Ok(TagValue::String(s)),
            (Some("bool"), Value::Bool(b)) => Ok(TagValue::Bool(b)),
            (Some("int64"), Value::Number(n)) if n.is_i64() => {
                Ok(TagValue::Int64(n.as_i64().unwrap_or_default()))
            }
            (Some("int64"), Value::String(s)) => s
                .parse()
                .map(TagValue::Int64)
                .map_err(|_| wrong(&Value::String(s))),
            (Some("float64"), Value::Number(n)) => n
                .as_f64()
                .map(TagValue::Float64)
                .ok_or_else(|| wrong(&Value::Number(n))),
            (Some("float64"), Value::String(s)) => match s.as_str() {
                "NaN" => Ok(TagValue::Float64(f64::NAN)),
                "Infinity" => Ok(TagValue::Float64(f64::INFINITY)),
                "-Infinity" => Ok(TagValue::Float64(f64::NEG_INFINITY)),
                _ => Err(wrong(&Value::String(s))),
            },
            (Some("binary"), Value::String(s)) => crate::base64::decode(&s)
                .map(TagValue::Binary)
                .ok_or_else(|| wrong(&Value::String(s))),
            (None, Value::String(s)) => Ok(TagValue::String(s)),
            (None, Value::Bool(b)) => Ok(TagValue::Bool(b)),
            (None, Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(TagValue::Int64(i)),
                None => Ok(TagValue::Float64(n.as_f64().unwrap_or(f64::NAN))),
            },
            (Some(other), _)
                if !matches!(other, "string" | "bool" | "int64" | "float64" | "binary") =>
            {
                Err(format!("unknown tag type {other:?}"))
            }
            (_, value) => Err(wrong(&value)),
        }
    }
}

/// Reads the `processes` object in the order of its keys in the document.
fn deserialize_processes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, JaegerProcess)>, D::Error> {
    struct InOrder;
    impl<'de> Visitor<'de> for InOrder {
        type Value = Vec<(String, JaegerProcess)>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of processes by key")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(InOrder)
}

fn float_to_json(f: f64) -> serde_json::Value {
    match serde_json::Number::from_f64(f) {
        Some(n) => serde_json::Value::Number(n),
        None if f.is_nan() => serde_json::Value::String("NaN".into()),
        None if f > 0.0 => serde_json::Value::String("Infinity".into()),
        None => serde_json::Value::String("-Infinity".into()),
    }
}

/// A trace id as Jaeger prints it: 16 hex digits when the high 64 bits are zero, else 32.
pub fn trace_id_to_jaeger(id: TraceId) -> String {
    let (high, low) = id.halves();
    let mut out = String::with_capacity(32);
    if high != 0 {
        let _ = write!(out, "{high:016x}");
    }
    let _ = write!(out, "{low:016x}");
    out
}

/// A span id as Jaeger prints it: 16 hex digits.
pub fn span_id_to_jaeger(id: SpanId) -> String {
    id.to_hex()
}

/// Converts a whole trace into the Jaeger UI model. See the module docs for the mapping.
pub fn trace_to_jaeger(trace: &Trace) -> JaegerTrace {
    let (processes, keys) = processes_of(trace);
    let mut spans = Vec::with_capacity(trace.span_count());
    for (rs, key) in trace.resource_spans.iter().zip(&keys) {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                spans.push(span_to_jaeger(span, &ss.scope, &processes[*key].0));
            }
        }
    }
    JaegerTrace {
        trace_id: trace_id_to_jaeger(trace.trace_id),
        spans,
        processes,
        warnings: None,
    }
}

/// The processes of `trace` (one per distinct resource, keyed in order of appearance) and,
/// for each of its resource groups, the index of its process.
pub fn processes_of(trace: &Trace) -> (Vec<(String, JaegerProcess)>, Vec<usize>) {
    let mut processes: Vec<(String, JaegerProcess)> = Vec::new();
    let keys = trace
        .resource_spans
        .iter()
        .map(|rs| {
            let process = resource_to_process(&rs.resource);
            processes
                .iter()
                .position(|(_, p)| *p == process)
                .unwrap_or_else(|| {
                    processes.push((format!("p{}", processes.len() + 1), process));
                    processes.len() - 1
                })
        })
        .collect();
    (processes, keys)
}

/// The process of a resource: `service.name` becomes the service name, every other attribute
/// a tag.
pub fn resource_to_process(resource: &Resource) -> JaegerProcess {
    let tags = resource
        .attributes
        .iter()
        // A string service.name is the service name; any other is kept so nothing is lost.
        .filter(|kv| !(kv.key == SERVICE_NAME && matches!(kv.value, AnyValue::String(_))))
        .map(attribute_to_tag)
        .collect();
    JaegerProcess {
        service_name: resource.service_name().to_owned(),
        tags,
    }
}

/// One span in the Jaeger UI model, with the process key of its resource.
pub fn span_to_jaeger(span: &Span, scope: &Scope, process_id: &str) -> JaegerSpan {
    let trace_id = trace_id_to_jaeger(span.trace_id);
    JaegerSpan {
        references: references(span, &trace_id),
        trace_id,
        span_id: span_id_to_jaeger(span.span_id),
        operation_name: span.name.clone(),
        start_time: span.start_time_unix_nano / 1_000,
        duration: span.duration_nanos() / 1_000,
        tags: span_tags(span, scope),
        logs: span.events.iter().map(event_to_log).collect(),
        process_id: process_id.to_owned(),
        warnings: None,
        flags: span.flags & 0xff,
    }
}

fn references(span: &Span, trace_id: &str) -> Vec<JaegerReference> {
    let mut refs = Vec::with_capacity(span.links.len() + 1);
    let parent = span.parent_span_id.filter(SpanId::is_valid);
    if let Some(parent) = parent {
        refs.push(JaegerReference {
            ref_type: RefType::ChildOf,
            trace_id: trace_id.to_owned(),
            span_id: span_id_to_jaeger(parent),
        });
    }
    for link in &span.links {
        let ref_type = match stitch_model::find_attribute(&link.attributes, LINK_REF_TYPE) {
            Some(AnyValue::String(t)) if t == "child_of" => RefType::ChildOf,
            _ => RefType::FollowsFrom,
        };
        if parent == Some(link.span_id) && link.trace_id == span.trace_id {
            // The parent is already referenced; the link only states its type.
            refs[0].ref_type = ref_type;
            continue;
        }
        refs.push(JaegerReference {
            ref_type,
            trace_id: trace_id_to_jaeger(link.trace_id),
            span_id: span_id_to_jaeger(link.span_id),
        });
    }
    refs
}

fn span_tags(span: &Span, scope: &Scope) -> Vec<JaegerTag> {
    let mut tags = Vec::with_capacity(span.attributes.len() + 6);
    if !scope.name.is_empty() {
        tags.push(JaegerTag::string(TAG_SCOPE_NAME, &scope.name));
    }
    if !scope.version.is_empty() {
        tags.push(JaegerTag::string(TAG_SCOPE_VERSION, &scope.version));
    }
    tags.extend(span.attributes.iter().map(attribute_to_tag));
    if span.kind != SpanKind::Unspecified {
        tags.push(JaegerTag::string(TAG_SPAN_KIND, span.kind.as_str()));
    }
    match span.status.code {
        StatusCode::Unset => {}
        StatusCode::Ok => tags.push(JaegerTag::string(TAG_STATUS_CODE, "OK")),
        StatusCode::Error => {
            tags.push(JaegerTag::string(TAG_STATUS_CODE, "ERROR"));
            tags.push(JaegerTag::new(TAG_ERROR, TagValue::Bool(true)));
        }
    }
    if !span.status.message.is_empty() {
        tags.push(JaegerTag::string(
            TAG_STATUS_DESCRIPTION,
            &span.status.message,
        ));
    }
    if !span.trace_state.is_empty() {
        tags.push(JaegerTag::string(TAG_TRACE_STATE, &span.trace_state));
    }
    tags
}

fn event_to_log(event: &Event) -> JaegerLog {
    let mut fields = Vec::with_capacity(event.attributes.len() + 1);
    let named = event.attributes.iter().any(|kv| kv.key == FIELD_EVENT);
    if !event.name.is_empty() && !named {
        fields.push(JaegerTag::string(FIELD_EVENT, &event.name));
    }
    fields.extend(event.attributes.iter().map(attribute_to_tag));
    JaegerLog {
        timestamp: event.time_unix_nano / 1_000,
        fields,
    }
}

/// One attribute as a typed Jaeger tag.
pub fn attribute_to_tag(kv: &KeyValue) -> JaegerTag {
    JaegerTag::new(kv.key.clone(), value_to_tag_value(&kv.value))
}

/// An attribute value as a Jaeger tag value; see the module docs.
pub fn value_to_tag_value(value: &AnyValue) -> TagValue {
    match value {
        AnyValue::Empty => TagValue::String(String::new()),
        AnyValue::String(s) => TagValue::String(s.clone()),
        AnyValue::Bool(b) => TagValue::Bool(*b),
        AnyValue::Int(i) => TagValue::Int64(*i),
        AnyValue::Double(d) => TagValue::Float64(*d),
        AnyValue::Bytes(b) => TagValue::Binary(b.clone()),
        AnyValue::Array(_) | AnyValue::KvList(_) => {
            TagValue::String(value_to_json(value).to_string())
        }
    }
}

/// A nested value as JSON: maps with sorted keys (the last of equal keys wins), bytes as
/// base64, empty values as `null`.
fn value_to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AnyValue::Empty => Value::Null,
        AnyValue::String(s) => Value::String(s.clone()),
        AnyValue::Bool(b) => Value::Bool(*b),
        AnyValue::Int(i) => Value::from(*i),
        AnyValue::Double(d) => float_to_json(*d),
        AnyValue::Bytes(b) => Value::String(crate::base64::encode(b)),
        AnyValue::Array(items) => Value::Array(items.iter().map(value_to_json).collect()),
        AnyValue::KvList(kvs) => Value::Object(
            kvs.iter()
                .map(|kv| (kv.key.clone(), value_to_json(&kv.value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_drop_a_zero_high_half() {
        assert_eq!(
            trace_id_to_jaeger(TraceId::from_halves(0, 0xab)),
            "00000000000000ab"
        );
        assert_eq!(
            trace_id_to_jaeger(TraceId::from_halves(1, 0xab)),
            "000000000000000100000000000000ab"
        );
    }

    #[test]
    fn the_json_reads_back_into_the_same_model() {
        use std::sync::Arc;
        use stitch_model::{AnyValue, Event, KeyValue, Link, Resource, ResourceSpans, ScopeSpans};
        let id = TraceId::from_halves(7, 9);
        let span = |n: u64, parent: Option<u64>| Span {
            trace_id: id,
            span_id: SpanId::from_u64(n),
            parent_span_id: parent.map(SpanId::from_u64),
            name: format!("op{n}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + n * 1_000,
            end_time_unix_nano: 1_700_000_000_000_500_000,
            ..Default::default()
        };
        let mut root = span(1, None);
        root.attributes = vec![
            KeyValue::new("s", "text"),
            KeyValue::new("b", true),
            KeyValue::new("big", i64::MAX),
            KeyValue::new("f", 1.5),
            KeyValue::new("inf", f64::NEG_INFINITY),
            KeyValue::new("raw", AnyValue::Bytes(vec![0, 1, 254, 255])),
        ];
        root.events = vec![Event {
            time_unix_nano: 1_700_000_000_000_100_000,
            name: "retry".into(),
            attributes: vec![KeyValue::new("attempt", 2i64)],
            ..Default::default()
        }];
        let mut child = span(2, Some(1));
        child.links = vec![Link {
            trace_id: TraceId::from_halves(0, 5),
            span_id: SpanId::from_u64(3),
            ..Default::default()
        }];
        let group = |service: &str, spans| ResourceSpans {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
        };
        let mut trace = Trace::new(id);
        trace.resource_spans = (1..=11)
            .map(|i| group(&format!("svc{i}"), vec![span(10 + i, Some(1))]))
            .collect();
        trace
            .resource_spans
            .insert(0, group("front", vec![root, child]));
        let jaeger = trace_to_jaeger(&trace);
        let text = serde_json::to_string(&jaeger).unwrap();
        let back: JaegerTrace = serde_json::from_str(&text).unwrap();
        assert_eq!(back, jaeger);
        // Keys beyond p9 keep the document's order, not the lexical one.
        assert!(jaeger.processes.len() >= 12);
        let keys: Vec<&str> = back.processes.iter().map(|(k, _)| k.as_str()).collect();
        let written: Vec<&str> = jaeger.processes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, written);
    }

    #[test]
    fn tag_values_are_read_by_their_type() {
        use serde_json::json;
        let read = |kind: Option<&str>, v: serde_json::Value| TagValue::from_json(kind, v);
        assert_eq!(
            read(Some("int64"), json!("9223372036854775807")),
            Ok(TagValue::Int64(i64::MAX))
        );
        assert!(matches!(
            read(Some("float64"), json!("NaN")),
            Ok(TagValue::Float64(f)) if f.is_nan()
        ));
        assert_eq!(read(None, json!(3)), Ok(TagValue::Int64(3)));
        assert_eq!(read(None, json!(0.25)), Ok(TagValue::Float64(0.25)));
        assert_eq!(
            read(Some("bool"), json!("yes")),
            Err("\"yes\" is not a bool value".to_owned())
        );
        assert_eq!(
            read(Some("decimal"), json!(1)),
            Err("unknown tag type \"decimal\"".to_owned())
        );
        let bad: Result<JaegerTag, _> =
            serde_json::from_str(r#"{"key":"n","type":"int64","value":"x"}"#);
        assert!(bad.unwrap_err().to_string().contains("tag \"n\""));
    }
}
