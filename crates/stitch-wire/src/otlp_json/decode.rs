//! OTLP/JSON → protobuf message types → model.
//!
//! The JSON walk produces the prost messages of an `ExportTraceServiceRequest` and hands them to
//! the protobuf converter, so both wire formats validate spans with the same code. Problems that
//! the protobuf messages cannot express (ids that are not hex, unknown enum names) are recorded
//! on the way as early rejections.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::JsonError;
use crate::otlp::proto::common as pc;
use crate::otlp::proto::resource as pr;
use crate::otlp::proto::trace as pt;
use crate::otlp::{self, ExportTraceServiceRequest};
use crate::{Decoded, IdField, SpanError, SpanPos, base64, hex, truncate};

type Object = Map<String, Value>;

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` and converts it into the model.
pub fn decode_export_request(bytes: &[u8]) -> Result<Decoded, JsonError> {
    let value = super::strict::parse(bytes).map_err(|e| JsonError::Syntax(e.to_string()))?;
    from_value(value)
}

/// Converts an already parsed OTLP/JSON export request into the model.
pub fn from_value(value: Value) -> Result<Decoded, JsonError> {
    let mut early = Vec::new();
    let request = request(value, &Path::Root, &mut early)?;
    Ok(otlp::convert(request, &early))
}

/// The location of a value in the document, rendered only when there is an error.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, index) => {
                parent.write(out);
                let _ = write!(out, "[{index}]");
            }
        }
    }
}

fn invalid(path: &Path<'_>, message: String) -> JsonError {
    JsonError::Invalid {
        path: path.render(),
        message,
    }
}

fn wrong_type(path: &Path<'_>, expected: &str, got: &Value) -> JsonError {
    invalid(path, format!("expected {expected}, got {}", describe(got)))
}

/// A short description of a value for error messages.
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

const U64: &str = "an unsigned 64-bit integer as a string or number";
const I64: &str = "a signed 64-bit integer as a string or number";
const U32: &str = "an unsigned 32-bit integer";
const DOUBLE: &str = r#"a number or one of "NaN", "Infinity", "-Infinity""#;
const ENUM: &str = "an enum number or name";

/// Removes the first of `names` that is present and not null.
fn take(object: &mut Object, names: &[&'static str]) -> Option<(&'static str, Value)> {
    names.iter().find_map(|name| match object.remove(*name) {
        None | Some(Value::Null) => None,
        Some(value) => Some((*name, value)),
    })
}

/// Parses the field named by one of `names` with `parse`; `None` when absent or null.
fn field<T>(
    object: &mut Object,
    path: &Path<'_>,
    names: &[&'static str],
    parse: impl FnOnce(Value, &Path<'_>) -> Result<T, JsonError>,
) -> Result<Option<T>, JsonError> {
    match take(object, names) {
        None => Ok(None),
        Some((key, value)) => parse(value, &Path::Key(path, key)).map(Some),
    }
}

/// Parses every element of the array field named by one of `names`; empty when absent or null.
fn list<T>(
    object: &mut Object,
    path: &Path<'_>,
    names: &[&'static str],
    mut parse: impl FnMut(Value, &Path<'_>, usize) -> Result<T, JsonError>,
) -> Result<Vec<T>, JsonError> {
    let Some((key, value)) = take(object, names) else {
        return Ok(Vec::new());
    };
    let path = Path::Key(path, key);
    let Value::Array(items) = value else {
        return Err(wrong_type(&path, "an array", &value));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse(item, &Path::Index(&path, i), i))
        .collect()
}

fn object(value: Value, path: &Path<'_>) -> Result<Object, JsonError> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(wrong_type(path, "an object", &other)),
    }
}

fn string(value: Value, path: &Path<'_>) -> Result<String, JsonError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(path, "a string", &other)),
    }
}

fn boolean(value: Value, path: &Path<'_>) -> Result<bool, JsonError> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(wrong_type(path, "a boolean", &other)),
    }
}

/// A JSON number with an integral value (`3`, `3.0`, `3e2`) in `[min, max)`, as `f64`.
fn integral_f64(n: &Number, min: f64, max_exclusive: f64) -> Option<f64> {
    n.as_f64()
        .filter(|f| f.fract() == 0.0 && *f >= min && *f < max_exclusive)
}

fn uint64(value: Value, path: &Path<'_>) -> Result<u64, JsonError> {
    let parsed = match &value {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64().or_else(|| {
            // 2^64 is exactly representable; every integral double below it fits.
            integral_f64(n, 0.0, 18_446_744_073_709_551_616.0).map(|f| f as u64)
        }),
        _ => None,
    };
    parsed.ok_or_else(|| wrong_type(path, U64, &value))
}

fn int64(value: Value, path: &Path<'_>) -> Result<i64, JsonError> {
    let parsed = match &value {
        Value::String(s) => s.parse::<i64>().ok(),
        Value::Number(n) => n.as_i64().or_else(|| {
            integral_f64(n, -9_223_372_036_854_775_808.0, 9_223_372_036_854_775_808.0)
                .map(|f| f as i64)
        }),
        _ => None,
    };
    parsed.ok_or_else(|| wrong_type(path, I64, &value))
}

fn uint32(value: Value, path: &Path<'_>) -> Result<u32, JsonError> {
    let parsed = match &value {
        Value::String(s) => s.parse::<u32>().ok(),
        Value::Number(n) => n
            .as_u64()
            .or_else(|| integral_f64(n, 0.0, 4_294_967_296.0).map(|f| f as u64))
            .and_then(|v| u32::try_from(v).ok()),
        _ => None,
    };
    parsed.ok_or_else(|| wrong_type(path, U32, &value))
}

fn double(value: Value, path: &Path<'_>) -> Result<f64, JsonError> {
    let parsed = match &value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            // The proto3 JSON mapping also allows a number in a string.
            other => other.parse::<f64>().ok(),
        },
        _ => None,
    };
    parsed.ok_or_else(|| wrong_type(path, DOUBLE, &value))
}

fn bytes(value: Value, path: &Path<'_>) -> Result<Vec<u8>, JsonError> {
    match &value {
        Value::String(s) => base64::decode(s),
        _ => None,
    }
    .ok_or_else(|| wrong_type(path, "base64 text", &value))
}

/// An enum given as a number, or as a name that `from_name` knows (or a number in a string).
/// `Ok(Err(name))` for a name that is not known, which rejects the span rather than the
/// document.
fn enumeration(
    value: Value,
    path: &Path<'_>,
    from_name: fn(&str) -> Option<i32>,
) -> Result<Result<i32, String>, JsonError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| integral_f64(&n, i32::MIN as f64, i32::MAX as f64 + 1.0).map(|f| f as i64))
            .and_then(|v| i32::try_from(v).ok())
            .map(Ok)
            .ok_or_else(|| wrong_type(path, ENUM, &Value::Number(n))),
        Value::String(s) => Ok(from_name(&s)
            .or_else(|| s.parse::<i32>().ok())
            .ok_or_else(|| truncate(&s, 40))),
        other => Err(wrong_type(path, ENUM, &other)),
    }
}

fn span_kind_number(name: &str) -> Option<i32> {
    pt::span::SpanKind::from_str_name(name).map(|k| k as i32)
}

fn status_code_number(name: &str) -> Option<i32> {
    pt::status::StatusCode::from_str_name(name).map(|c| c as i32)
}

/// A hex id; an id that is not hex is recorded in `early` (unless an earlier problem is) and
/// becomes empty.
fn hex_id(
    value: Value,
    path: &Path<'_>,
    field: IdField,
    early: &mut Option<SpanError>,
) -> Result<Vec<u8>, JsonError> {
    let text = string(value, path)?;
    Ok(hex::decode(&text).unwrap_or_else(|| {
        early.get_or_insert_with(|| SpanError::NotHex {
            field,
            text: truncate(&text, 40),
        });
        Vec::new()
    }))
}

fn request(
    value: Value,
    path: &Path<'_>,
    early: &mut Vec<(SpanPos, SpanError)>,
) -> Result<ExportTraceServiceRequest, JsonError> {
    let mut obj = object(value, path)?;
    let resource_spans = list(
        &mut obj,
        path,
        &["resourceSpans", "resource_spans"],
        |v, p, i| resource_spans(v, p, i, early),
    )?;
    if resource_spans.is_empty() && !obj.is_empty() {
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        return Err(invalid(
            path,
            format!(
                "no resourceSpans, and keys an export request does not have: {}",
                keys.join(", ")
            ),
        ));
    }
    Ok(ExportTraceServiceRequest { resource_spans })
}

fn resource_spans(
    value: Value,
    path: &Path<'_>,
    index: usize,
    early: &mut Vec<(SpanPos, SpanError)>,
) -> Result<pt::ResourceSpans, JsonError> {
    let mut obj = object(value, path)?;
    Ok(pt::ResourceSpans {
        resource: field(&mut obj, path, &["resource"], resource)?,
        scope_spans: list(
            &mut obj,
            path,
            &["scopeSpans", "scope_spans"],
            |v, p, scope| scope_spans(v, p, index, scope, early),
        )?,
        schema_url: field(&mut obj, path, &["schemaUrl", "schema_url"], string)?
            .unwrap_or_default(),
    })
}

fn resource(value: Value, path: &Path<'_>) -> Result<pr::Resource, JsonError> {
    let mut obj = object(value, path)?;
    Ok(pr::Resource {
        attributes: attributes(&mut obj, path)?,
        dropped_attributes_count: dropped_attributes_count(&mut obj, path)?,
        entity_refs: Vec::new(),
    })
}

fn scope_spans(
    value: Value,
    path: &Path<'_>,
    resource_index: usize,
    scope_index: usize,
    early: &mut Vec<(SpanPos, SpanError)>,
) -> Result<pt::ScopeSpans, JsonError> {
    let mut obj = object(value, path)?;
    Ok(pt::ScopeSpans {
        scope: field(&mut obj, path, &["scope"], scope)?,
        spans: list(&mut obj, path, &["spans"], |v, p, i| {
            let pos = SpanPos {
                resource: resource_index,
                scope: scope_index,
                span: i,
            };
            let (span, problem) = span(v, p)?;
            if let Some(problem) = problem {
                early.push((pos, problem));
            }
            Ok(span)
        })?,
        schema_url: field(&mut obj, path, &["schemaUrl", "schema_url"], string)?
            .unwrap_or_default(),
    })
}

fn scope(value: Value, path: &Path<'_>) -> Result<pc::InstrumentationScope, JsonError> {
    let mut obj = object(value, path)?;
    Ok(pc::InstrumentationScope {
        name: field(&mut obj, path, &["name"], string)?.unwrap_or_default(),
        version: field(&mut obj, path, &["version"], string)?.unwrap_or_default(),
        attributes: attributes(&mut obj, path)?,
        dropped_attributes_count: dropped_attributes_count(&mut obj, path)?,
    })
}

/// The span, and the first problem that only the JSON form can have.
fn span(value: Value, path: &Path<'_>) -> Result<(pt::Span, Option<SpanError>), JsonError> {
    let mut obj = object(value, path)?;
    let mut early = None;
    let trace_id = field(&mut obj, path, &["traceId", "trace_id"], |v, p| {
        hex_id(v, p, IdField::TraceId, &mut early)
    })?
    .unwrap_or_default();
    let span_id = field(&mut obj, path, &["spanId", "span_id"], |v, p| {
        hex_id(v, p, IdField::SpanId, &mut early)
    })?
    .unwrap_or_default();
    let parent_span_id = field(
        &mut obj,
        path,
        &["parentSpanId", "parent_span_id"],
        |v, p| hex_id(v, p, IdField::ParentSpanId, &mut early),
    )?
    .unwrap_or_default();
    let kind = match field(&mut obj, path, &["kind"], |v, p| {
        enumeration(v, p, span_kind_number)
    })? {
        None => 0,
        Some(Ok(kind)) => kind,
        Some(Err(name)) => {
            early.get_or_insert(SpanError::UnknownKindName(name));
            0
        }
    };
    let status = field(&mut obj, path, &["status"], |v, p| status(v, p, &mut early))?;
    let links = list(&mut obj, path, &["links"], |v, p, i| {
        link(v, p, i, &mut early)
    })?;
    let span = pt::Span {
        trace_id,
        span_id,
        trace_state: field(&mut obj, path, &["traceState", "trace_state"], string)?
            .unwrap_or_default(),
        parent_span_id,
        flags: field(&mut obj, path, &["flags"], uint32)?.unwrap_or_default(),
        name: field(&mut obj, path, &["name"], string)?.unwrap_or_default(),
        kind,
        start_time_unix_nano: field(
            &mut obj,
            path,
            &["startTimeUnixNano", "start_time_unix_nano"],
            uint64,
        )?
        .unwrap_or_default(),
        end_time_unix_nano: field(
            &mut obj,
            path,
            &["endTimeUnixNano", "end_time_unix_nano"],
            uint64,
        )?
        .unwrap_or_default(),
        attributes: attributes(&mut obj, path)?,
        dropped_attributes_count: dropped_attributes_count(&mut obj, path)?,
        events: list(&mut obj, path, &["events"], |v, p, _| event(v, p))?,
        dropped_events_count: field(
            &mut obj,
            path,
            &["droppedEventsCount", "dropped_events_count"],
            uint32,
        )?
        .unwrap_or_default(),
        links,
        dropped_links_count: field(
            &mut obj,
            path,
            &["droppedLinksCount", "dropped_links_count"],
            uint32,
        )?
        .unwrap_or_default(),
        status,
    };
    Ok((span, early))
}

fn status(
    value: Value,
    path: &Path<'_>,
    early: &mut Option<SpanError>,
) -> Result<pt::Status, JsonError> {
    let mut obj = object(value, path)?;
    let code = match field(&mut obj, path, &["code"], |v, p| {
        enumeration(v, p, status_code_number)
    })? {
        None => 0,
        Some(Ok(code)) => code,
        Some(Err(name)) => {
            early.get_or_insert(SpanError::UnknownStatusCodeName(name));
            0
        }
    };
    Ok(pt::Status {
        message: field(&mut obj, path, &["message"], string)?.unwrap_or_default(),
        code,
    })
}

fn event(value: Value, path: &Path<'_>) -> Result<pt::span::Event, JsonError> {
    let mut obj = object(value, path)?;
    Ok(pt::span::Event {
        time_unix_nano: field(&mut obj, path, &["timeUnixNano", "time_unix_nano"], uint64)?
            .unwrap_or_default(),
        name: field(&mut obj, path, &["name"], string)?.unwrap_or_default(),
        attributes: attributes(&mut obj, path)?,
        dropped_attributes_count: dropped_attributes_count(&mut obj, path)?,
    })
}

fn link(
    value: Value,
    path: &Path<'_>,
    index: usize,
    early: &mut Option<SpanError>,
) -> Result<pt::span::Link, JsonError> {
    let mut obj = object(value, path)?;
    Ok(pt::span::Link {
        trace_id: field(&mut obj, path, &["traceId", "trace_id"], |v, p| {
            hex_id(v, p, IdField::LinkTraceId(index), early)
        })?
        .unwrap_or_default(),
        span_id: field(&mut obj, path, &["spanId", "span_id"], |v, p| {
            hex_id(v, p, IdField::LinkSpanId(index), early)
        })?
        .unwrap_or_default(),
        trace_state: field(&mut obj, path, &["traceState", "trace_state"], string)?
            .unwrap_or_default(),
        attributes: attributes(&mut obj, path)?,
        dropped_attributes_count: dropped_attributes_count(&mut obj, path)?,
        flags: field(&mut obj, path, &["flags"], uint32)?.unwrap_or_default(),
    })
}

fn attributes(obj: &mut Object, path: &Path<'_>) -> Result<Vec<pc::KeyValue>, JsonError> {
    list(obj, path, &["attributes"], |v, p, _| key_value(v, p))
}

fn dropped_attributes_count(obj: &mut Object, path: &Path<'_>) -> Result<u32, JsonError> {
    Ok(field(
        obj,
        path,
        &["droppedAttributesCount", "dropped_attributes_count"],
        uint32,
    )?
    .unwrap_or_default())
}

fn key_value(value: Value, path: &Path<'_>) -> Result<pc::KeyValue, JsonError> {
    let mut obj = object(value, path)?;
    Ok(pc::KeyValue {
        key: field(&mut obj, path, &["key"], string)?.unwrap_or_default(),
        value: Some(field(&mut obj, path, &["value"], any_value)?.unwrap_or_default()),
        key_strindex: 0,
    })
}

/// The `AnyValue` fields, camelCase and proto names.
const VALUE_FIELDS: [[&str; 2]; 7] = [
    ["stringValue", "string_value"],
    ["boolValue", "bool_value"],
    ["intValue", "int_value"],
    ["doubleValue", "double_value"],
    ["arrayValue", "array_value"],
    ["kvlistValue", "kvlist_value"],
    ["bytesValue", "bytes_value"],
];

fn any_value(value: Value, path: &Path<'_>) -> Result<pc::AnyValue, JsonError> {
    use pc::any_value::Value as V;
    let mut obj = match value {
        Value::Null => return Ok(pc::AnyValue::default()),
        other => object(other, path)?,
    };
    let mut found: Option<(usize, &'static str, Value)> = None;
    for (which, names) in VALUE_FIELDS.iter().enumerate() {
        if let Some((key, v)) = take(&mut obj, names) {
            if let Some((_, first, _)) = found {
                return Err(invalid(
                    path,
                    format!("expected at most one value field, got {first} and {key}"),
                ));
            }
            found = Some((which, key, v));
        }
    }
    let Some((which, key, v)) = found else {
        return Ok(pc::AnyValue::default());
    };
    let path = &Path::Key(path, key);
    let value = match which {
        0 => V::StringValue(string(v, path)?),
        1 => V::BoolValue(boolean(v, path)?),
        2 => V::IntValue(int64(v, path)?),
        3 => V::DoubleValue(double(v, path)?),
        4 => {
            let mut array = object(v, path)?;
            V::ArrayValue(pc::ArrayValue {
                values: list(&mut array, path, &["values"], |v, p, _| any_value(v, p))?,
            })
        }
        5 => {
            let mut kvlist = object(v, path)?;
            V::KvlistValue(pc::KeyValueList {
                values: list(&mut kvlist, path, &["values"], |v, p, _| key_value(v, p))?,
            })
        }
        _ => V::BytesValue(bytes(v, path)?),
    };
    Ok(pc::AnyValue { value: Some(value) })
}
