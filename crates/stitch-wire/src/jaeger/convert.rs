//! Jaeger spans (Thrift and api_v2 protobuf) → the model, and the model → Jaeger Thrift.
//!
//! Both wire forms are first brought to one shape, [`JSpan`] (ids as model ids, times in
//! nanoseconds, values as model values), so the mapping rules live in one place. See the module
//! docs of [`crate::jaeger`] for the rules.

use std::sync::Arc;

use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, SERVICE_NAME, Scope,
    ScopeSpans, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};

use super::proto;
use super::types::{self, RefType, Tag, TagValue};
use super::{
    LINK_REF_TYPE, REF_CHILD_OF, REF_FOLLOWS_FROM, TAG_DROPPED_ATTRIBUTES, TAG_DROPPED_EVENTS,
    TAG_DROPPED_LINKS, TAG_ERROR, TAG_ERROR_MESSAGE, TAG_LIBRARY_NAME, TAG_LIBRARY_VERSION,
    TAG_SCOPE_NAME, TAG_SCOPE_VERSION, TAG_SPAN_KIND, TAG_STATUS_CODE, TAG_STATUS_DESCRIPTION,
    TAG_TRACE_STATE,
};
use crate::{Decoded, IdField, Rejections, SpanError};

/// A reference in model terms.
struct JRef {
    child_of: Option<bool>,
    trace_id: TraceId,
    span_id: SpanId,
}

/// A Jaeger span in model terms, before the mapping rules apply.
struct JSpan {
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<SpanId>,
    name: String,
    references: Vec<JRef>,
    flags: u32,
    start: u64,
    end: u64,
    tags: Vec<KeyValue>,
    /// (time in Unix nanoseconds, fields)
    logs: Vec<(u64, Vec<KeyValue>)>,
}

/// Where a Jaeger span sits in its request.
struct Pos(usize);

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "span {}", self.0)
    }
}

const NANOS_PER_MICRO: u64 = 1_000;

fn micros_to_nanos(field: &'static str, micros: i64) -> Result<u64, SpanError> {
    u64::try_from(micros)
        .ok()
        .and_then(|m| m.checked_mul(NANOS_PER_MICRO))
        .ok_or(SpanError::TimeOutOfRange {
            field,
            value: micros,
        })
}

fn check_ids(trace_id: TraceId, span_id: SpanId) -> Result<(), SpanError> {
    if !trace_id.is_valid() {
        return Err(SpanError::ZeroId {
            field: IdField::TraceId,
        });
    }
    if !span_id.is_valid() {
        return Err(SpanError::ZeroId {
            field: IdField::SpanId,
        });
    }
    Ok(())
}

/// A Jaeger tag as an attribute, typed.
pub fn tag_to_key_value(tag: Tag) -> KeyValue {
    KeyValue {
        key: tag.key,
        value: match tag.value {
            TagValue::String(s) => AnyValue::String(s),
            TagValue::Double(d) => AnyValue::Double(d),
            TagValue::Bool(b) => AnyValue::Bool(b),
            TagValue::Long(l) => AnyValue::Int(l),
            TagValue::Binary(b) => AnyValue::Bytes(b),
            TagValue::Unknown(_) => AnyValue::Empty,
        },
    }
}

fn thrift_trace_id(high: i64, low: i64) -> TraceId {
    TraceId::from_halves(high as u64, low as u64)
}

fn span_from_thrift(span: types::Span) -> Result<JSpan, SpanError> {
    if let Some(field) = span.missing {
        return Err(SpanError::MissingField(field));
    }
    let trace_id = thrift_trace_id(span.trace_id_high, span.trace_id_low);
    let span_id = SpanId::from_u64(span.span_id as u64);
    check_ids(trace_id, span_id)?;
    let start = micros_to_nanos("startTime", span.start_time)?;
    let duration = micros_to_nanos("duration", span.duration)?;
    let end = start
        .checked_add(duration)
        .ok_or(SpanError::TimeOutOfRange {
            field: "duration",
            value: span.duration,
        })?;
    let references = span
        .references
        .into_iter()
        .map(|r| JRef {
            child_of: match r.ref_type {
                RefType::ChildOf => Some(true),
                RefType::FollowsFrom => Some(false),
                RefType::Unknown(_) => None,
            },
            trace_id: thrift_trace_id(r.trace_id_high, r.trace_id_low),
            span_id: SpanId::from_u64(r.span_id as u64),
        })
        .collect();
    let logs = span
        .logs
        .into_iter()
        .map(|log| {
            Ok((
                micros_to_nanos("log timestamp", log.timestamp)?,
                log.fields.into_iter().map(tag_to_key_value).collect(),
            ))
        })
        .collect::<Result<Vec<_>, SpanError>>()?;
    Ok(JSpan {
        trace_id,
        span_id,
        parent: Some(SpanId::from_u64(span.parent_span_id as u64)).filter(SpanId::is_valid),
        name: span.operation_name,
        references,
        flags: (span.flags as u32) & 0xff,
        start,
        end,
        tags: span.tags.into_iter().map(tag_to_key_value).collect(),
        logs,
    })
}

fn proto_key_value(kv: proto::KeyValue) -> KeyValue {
    let value = match kv.v_type {
        proto::VALUE_STRING => AnyValue::String(kv.v_str),
        proto::VALUE_BOOL => AnyValue::Bool(kv.v_bool),
        proto::VALUE_INT64 => AnyValue::Int(kv.v_int64),
        proto::VALUE_FLOAT64 => AnyValue::Double(kv.v_float64),
        proto::VALUE_BINARY => AnyValue::Bytes(kv.v_binary),
        _ => AnyValue::Empty,
    };
    KeyValue { key: kv.key, value }
}

fn proto_time(field: &'static str, seconds: i64, nanos: i32) -> Result<u64, SpanError> {
    let out_of_range = SpanError::TimeOutOfRange {
        field,
        value: seconds,
    };
    let secs = u64::try_from(seconds).map_err(|_| out_of_range.clone())?;
    let nanos = u64::try_from(nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or(SpanError::TimeOutOfRange {
            field,
            value: i64::from(nanos),
        })?;
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or(out_of_range)
}

fn proto_trace_id(bytes: &[u8], field: IdField) -> Result<TraceId, SpanError> {
    TraceId::from_slice(bytes).map_err(|_| SpanError::IdLength {
        field,
        expected: 16,
        got: bytes.len(),
    })
}

fn proto_span_id(bytes: &[u8], field: IdField) -> Result<SpanId, SpanError> {
    SpanId::from_slice(bytes).map_err(|_| SpanError::IdLength {
        field,
        expected: 8,
        got: bytes.len(),
    })
}

fn span_from_proto(span: proto::Span) -> Result<JSpan, SpanError> {
    let trace_id = proto_trace_id(&span.trace_id, IdField::TraceId)?;
    let span_id = proto_span_id(&span.span_id, IdField::SpanId)?;
    check_ids(trace_id, span_id)?;
    let start_ts = span.start_time.unwrap_or_default();
    let start = proto_time("startTime", start_ts.seconds, start_ts.nanos)?;
    let d = span.duration.unwrap_or_default();
    let duration = proto_time("duration", d.seconds, d.nanos)?;
    let end = start
        .checked_add(duration)
        .ok_or(SpanError::TimeOutOfRange {
            field: "duration",
            value: d.seconds,
        })?;
    let references = span
        .references
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(JRef {
                child_of: match r.ref_type {
                    REF_CHILD_OF => Some(true),
                    REF_FOLLOWS_FROM => Some(false),
                    _ => None,
                },
                trace_id: proto_trace_id(&r.trace_id, IdField::LinkTraceId(i))?,
                span_id: proto_span_id(&r.span_id, IdField::LinkSpanId(i))?,
            })
        })
        .collect::<Result<Vec<_>, SpanError>>()?;
    let logs = span
        .logs
        .into_iter()
        .map(|log| {
            let ts = log.timestamp.unwrap_or_default();
            Ok((
                proto_time("log timestamp", ts.seconds, ts.nanos)?,
                log.fields.into_iter().map(proto_key_value).collect(),
            ))
        })
        .collect::<Result<Vec<_>, SpanError>>()?;
    Ok(JSpan {
        trace_id,
        span_id,
        parent: None,
        name: span.operation_name,
        references,
        flags: span.flags & 0xff,
        start,
        end,
        tags: span.tags.into_iter().map(proto_key_value).collect(),
        logs,
    })
}

/// Removes and returns the first attribute named `key` when `accept` takes its value.
fn take<T>(
    attrs: &mut Vec<KeyValue>,
    key: &str,
    accept: impl Fn(&AnyValue) -> Option<T>,
) -> Option<T> {
    let i = attrs
        .iter()
        .position(|kv| kv.key == key && accept(&kv.value).is_some())?;
    let kv = attrs.remove(i);
    accept(&kv.value)
}

fn string(v: &AnyValue) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn count(v: &AnyValue) -> Option<u32> {
    match v {
        AnyValue::Int(i) => u32::try_from(*i).ok(),
        _ => None,
    }
}

/// A boolean `error` tag, or the strings `true`/`false` some clients send.
fn error_flag(v: &AnyValue) -> Option<bool> {
    match v {
        AnyValue::Bool(b) => Some(*b),
        AnyValue::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        AnyValue::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Applies the mapping rules to one span; returns it with its scope.
fn to_model(j: JSpan) -> Result<(Span, Scope), SpanError> {
    let mut tags = j.tags;
    let kind = take(&mut tags, TAG_SPAN_KIND, |v| {
        v.as_str().and_then(SpanKind::parse)
    })
    .unwrap_or_default();
    let status_code = take(&mut tags, TAG_STATUS_CODE, |v| {
        match v.as_str()?.to_ascii_uppercase().as_str() {
            "OK" => Some(StatusCode::Ok),
            "ERROR" => Some(StatusCode::Error),
            "UNSET" => Some(StatusCode::Unset),
            _ => None,
        }
    });
    let description = take(&mut tags, TAG_STATUS_DESCRIPTION, string);
    // `error=false` says nothing the status does not, but is kept so that it is not lost.
    let error = take(&mut tags, TAG_ERROR, |v| error_flag(v).filter(|e| *e)).unwrap_or(false);
    let code = match status_code {
        Some(code) => code,
        None if error => StatusCode::Error,
        None => StatusCode::Unset,
    };
    let message = match description {
        Some(d) => d,
        None if code == StatusCode::Error => stitch_model::find_attribute(&tags, TAG_ERROR_MESSAGE)
            .and_then(AnyValue::as_str)
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    };
    let trace_state = take(&mut tags, TAG_TRACE_STATE, string).unwrap_or_default();
    let scope_name = take(&mut tags, TAG_SCOPE_NAME, string);
    let scope_version = take(&mut tags, TAG_SCOPE_VERSION, string);
    // The older spelling, which some exporters send beside the new one.
    let library_name = take(&mut tags, TAG_LIBRARY_NAME, string);
    let library_version = take(&mut tags, TAG_LIBRARY_VERSION, string);
    let scope = Scope {
        name: scope_name.or(library_name).unwrap_or_default(),
        version: scope_version.or(library_version).unwrap_or_default(),
        ..Default::default()
    };
    let dropped_attributes_count = take(&mut tags, TAG_DROPPED_ATTRIBUTES, count).unwrap_or(0);
    let dropped_events_count = take(&mut tags, TAG_DROPPED_EVENTS, count).unwrap_or(0);
    let dropped_links_count = take(&mut tags, TAG_DROPPED_LINKS, count).unwrap_or(0);

    // References: the first CHILD_OF within the trace is the parent unless parentSpanId named
    // one; a reference to the parent itself is not repeated as a link.
    let mut parent = j.parent;
    let mut links = Vec::with_capacity(j.references.len());
    for (i, r) in j.references.into_iter().enumerate() {
        if !r.trace_id.is_valid() {
            return Err(SpanError::ZeroId {
                field: IdField::LinkTraceId(i),
            });
        }
        if !r.span_id.is_valid() {
            return Err(SpanError::ZeroId {
                field: IdField::LinkSpanId(i),
            });
        }
        let same_trace = r.trace_id == j.trace_id;
        if r.child_of == Some(true) && same_trace {
            match parent {
                None => {
                    parent = Some(r.span_id);
                    continue;
                }
                Some(p) if p == r.span_id => continue,
                Some(_) => {}
            }
        }
        let attributes = match r.child_of {
            Some(true) => vec![KeyValue::new(LINK_REF_TYPE, "child_of")],
            Some(false) => vec![KeyValue::new(LINK_REF_TYPE, "follows_from")],
            None => Vec::new(),
        };
        links.push(Link {
            trace_id: r.trace_id,
            span_id: r.span_id,
            attributes,
            ..Default::default()
        });
    }

    let events = j
        .logs
        .into_iter()
        .map(|(time, mut fields)| {
            let name = take(&mut fields, super::FIELD_EVENT, string)
                .or_else(|| take(&mut fields, super::FIELD_MESSAGE, string))
                .unwrap_or_default();
            let dropped_attributes_count =
                take(&mut fields, TAG_DROPPED_ATTRIBUTES, count).unwrap_or(0);
            Event {
                time_unix_nano: time,
                name,
                attributes: fields,
                dropped_attributes_count,
            }
        })
        .collect();

    let span = Span {
        trace_id: j.trace_id,
        span_id: j.span_id,
        parent_span_id: parent,
        trace_state,
        flags: j.flags,
        name: j.name,
        kind,
        start_time_unix_nano: j.start,
        end_time_unix_nano: j.end,
        attributes: tags,
        dropped_attributes_count,
        events,
        dropped_events_count,
        links,
        dropped_links_count,
        status: Status { code, message },
    };
    Ok((span, scope))
}

/// The resource of a process: `service.name` first (when not empty), then the tags, less a
/// `service.name` tag that repeats the service name (OpenTelemetry's exporters send one).
fn resource(service_name: String, tags: Vec<KeyValue>) -> Resource {
    let mut attributes = Vec::with_capacity(tags.len() + 1);
    let repeats =
        |kv: &KeyValue| kv.key == SERVICE_NAME && kv.value.as_str() == Some(service_name.as_str());
    let tags: Vec<KeyValue> = tags.into_iter().filter(|kv| !repeats(kv)).collect();
    if !service_name.is_empty() {
        attributes.push(KeyValue::new(SERVICE_NAME, service_name));
    }
    attributes.extend(tags);
    Resource {
        attributes,
        ..Default::default()
    }
}

/// Collects converted spans into resource and scope groups, in order of first appearance.
#[derive(Default)]
struct Grouper {
    rejections: Rejections,
    groups: Vec<ResourceSpans>,
}

impl Grouper {
    fn push(&mut self, resource: &Arc<Resource>, index: usize, span: Result<JSpan, SpanError>) {
        let (span, scope) = match span.and_then(to_model) {
            Ok(s) => s,
            Err(e) => {
                self.rejections.add(Pos(index), &e);
                return;
            }
        };
        let rs = match self
            .groups
            .iter_mut()
            .position(|g| Arc::ptr_eq(&g.resource, resource) || g.resource == *resource)
        {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(ResourceSpans {
                    resource: resource.clone(),
                    scope_spans: Vec::new(),
                });
                self.groups.last_mut().expect("just pushed")
            }
        };
        match rs.scope_spans.iter_mut().find(|ss| *ss.scope == scope) {
            Some(ss) => ss.spans.push(span),
            None => rs.scope_spans.push(ScopeSpans {
                scope: Arc::new(scope),
                spans: vec![span],
            }),
        }
    }

    fn finish(self) -> Decoded {
        self.rejections.finish(Batch {
            resource_spans: self.groups,
        })
    }
}

/// Converts a Thrift batch into the model, leaving invalid spans out.
pub fn from_thrift(batch: types::Batch) -> Decoded {
    let resource = Arc::new(resource(
        batch.process.service_name,
        batch
            .process
            .tags
            .into_iter()
            .map(tag_to_key_value)
            .collect(),
    ));
    let mut grouper = Grouper::default();
    for (i, span) in batch.spans.into_iter().enumerate() {
        grouper.push(&resource, i, span_from_thrift(span));
    }
    grouper.finish()
}

/// Converts an api_v2 batch into the model. A span's own process, when it has one, replaces
/// the batch's.
pub fn from_proto(batch: proto::Batch) -> Decoded {
    let to_resource = |p: proto::Process| {
        Arc::new(resource(
            p.service_name,
            p.tags.into_iter().map(proto_key_value).collect(),
        ))
    };
    let batch_resource = to_resource(batch.process.unwrap_or_default());
    let mut grouper = Grouper::default();
    for (i, mut span) in batch.spans.into_iter().enumerate() {
        let resource = match span.process.take() {
            Some(p) => to_resource(p),
            None => batch_resource.clone(),
        };
        grouper.push(&resource, i, span_from_proto(span));
    }
    grouper.finish()
}

// ---- model → Jaeger Thrift ----

/// A model value as a Jaeger tag value. Arrays and maps, which Jaeger cannot type, become
/// strings of their text form ([`AnyValue::to_text`]); an empty value the empty string.
pub fn value_to_tag(value: &AnyValue) -> TagValue {
    match value {
        AnyValue::String(s) => TagValue::String(s.clone()),
        AnyValue::Bool(b) => TagValue::Bool(*b),
        AnyValue::Int(i) => TagValue::Long(*i),
        AnyValue::Double(d) => TagValue::Double(*d),
        AnyValue::Bytes(b) => TagValue::Binary(b.clone()),
        AnyValue::Empty | AnyValue::Array(_) | AnyValue::KvList(_) => {
            TagValue::String(value.to_text())
        }
    }
}

fn tags(attributes: &[KeyValue]) -> impl Iterator<Item = Tag> + '_ {
    attributes
        .iter()
        .map(|kv| Tag::new(kv.key.clone(), value_to_tag(&kv.value)))
}

fn string_tag(key: &str, value: &str) -> Tag {
    Tag::new(key, TagValue::String(value.to_owned()))
}

fn to_micros(nanos: u64) -> i64 {
    i64::try_from(nanos / NANOS_PER_MICRO).unwrap_or(i64::MAX)
}

/// The model as Jaeger Thrift batches, one per resource, as a Jaeger client that knows the
/// OpenTelemetry conventions would send them. The inverse of the decoding rules for everything
/// Jaeger can express; see the module docs of [`crate::jaeger`] for what it cannot.
pub fn to_thrift(batch: &Batch) -> Vec<types::Batch> {
    batch
        .resource_spans
        .iter()
        .map(|rs| {
            let mut service_name = String::new();
            let mut process_tags = Vec::new();
            for kv in &rs.resource.attributes {
                match (&kv.value, service_name.is_empty()) {
                    (AnyValue::String(s), true) if kv.key == SERVICE_NAME => {
                        service_name = s.clone();
                    }
                    _ => process_tags.push(Tag::new(kv.key.clone(), value_to_tag(&kv.value))),
                }
            }
            let spans = rs
                .scope_spans
                .iter()
                .flat_map(|ss| ss.spans.iter().map(|s| span_to_thrift(s, &ss.scope)))
                .collect();
            types::Batch {
                process: types::Process {
                    service_name,
                    tags: process_tags,
                },
                spans,
                seq_no: None,
                stats: None,
            }
        })
        .collect()
}

fn span_to_thrift(span: &Span, scope: &Scope) -> types::Span {
    let (high, low) = span.trace_id.halves();
    let mut tags: Vec<Tag> = Vec::with_capacity(span.attributes.len() + 8);
    if !scope.name.is_empty() {
        tags.push(string_tag(TAG_SCOPE_NAME, &scope.name));
    }
    if !scope.version.is_empty() {
        tags.push(string_tag(TAG_SCOPE_VERSION, &scope.version));
    }
    tags.extend(self::tags(&span.attributes));
    if span.kind != SpanKind::Unspecified {
        tags.push(string_tag(TAG_SPAN_KIND, span.kind.as_str()));
    }
    match span.status.code {
        StatusCode::Unset => {}
        StatusCode::Ok => tags.push(string_tag(TAG_STATUS_CODE, "OK")),
        StatusCode::Error => {
            tags.push(string_tag(TAG_STATUS_CODE, "ERROR"));
            tags.push(Tag::new(TAG_ERROR, TagValue::Bool(true)));
        }
    }
    if !span.status.message.is_empty() {
        tags.push(string_tag(TAG_STATUS_DESCRIPTION, &span.status.message));
    }
    if !span.trace_state.is_empty() {
        tags.push(string_tag(TAG_TRACE_STATE, &span.trace_state));
    }
    for (key, n) in [
        (TAG_DROPPED_ATTRIBUTES, span.dropped_attributes_count),
        (TAG_DROPPED_EVENTS, span.dropped_events_count),
        (TAG_DROPPED_LINKS, span.dropped_links_count),
    ] {
        if n > 0 {
            tags.push(Tag::new(key, TagValue::Long(i64::from(n))));
        }
    }
    let references = span
        .links
        .iter()
        .map(|link| {
            let (high, low) = link.trace_id.halves();
            let child_of = matches!(
                stitch_model::find_attribute(&link.attributes, LINK_REF_TYPE),
                Some(AnyValue::String(t)) if t == "child_of"
            );
            types::SpanRef {
                ref_type: if child_of {
                    RefType::ChildOf
                } else {
                    RefType::FollowsFrom
                },
                trace_id_low: low as i64,
                trace_id_high: high as i64,
                span_id: link.span_id.as_u64() as i64,
            }
        })
        .collect();
    let logs = span
        .events
        .iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(e.attributes.len() + 2);
            if !e.name.is_empty() {
                fields.push(string_tag(super::FIELD_EVENT, &e.name));
            }
            fields.extend(self::tags(&e.attributes));
            if e.dropped_attributes_count > 0 {
                fields.push(Tag::new(
                    TAG_DROPPED_ATTRIBUTES,
                    TagValue::Long(i64::from(e.dropped_attributes_count)),
                ));
            }
            types::Log {
                timestamp: to_micros(e.time_unix_nano),
                fields,
            }
        })
        .collect();
    types::Span {
        trace_id_low: low as i64,
        trace_id_high: high as i64,
        span_id: span.span_id.as_u64() as i64,
        parent_span_id: span.parent_span_id.map_or(0, |p| p.as_u64() as i64),
        operation_name: span.name.clone(),
        references,
        flags: (span.flags & 0xff) as i32,
        start_time: to_micros(span.start_time_unix_nano),
        duration: to_micros(span.end_time_unix_nano) - to_micros(span.start_time_unix_nano),
        tags,
        logs,
        missing: None,
    }
}

// ---- model → Jaeger api_v2 protobuf ----

fn tag_to_proto(tag: Tag) -> proto::KeyValue {
    let mut kv = proto::KeyValue {
        key: tag.key,
        ..Default::default()
    };
    match tag.value {
        TagValue::String(s) => {
            kv.v_type = proto::VALUE_STRING;
            kv.v_str = s;
        }
        TagValue::Bool(b) => {
            kv.v_type = proto::VALUE_BOOL;
            kv.v_bool = b;
        }
        TagValue::Long(l) => {
            kv.v_type = proto::VALUE_INT64;
            kv.v_int64 = l;
        }
        TagValue::Double(d) => {
            kv.v_type = proto::VALUE_FLOAT64;
            kv.v_float64 = d;
        }
        TagValue::Binary(b) => {
            kv.v_type = proto::VALUE_BINARY;
            kv.v_binary = b;
        }
        TagValue::Unknown(t) => kv.v_type = t,
    }
    kv
}

fn timestamp(nanos: u64) -> proto::Timestamp {
    proto::Timestamp {
        seconds: (nanos / 1_000_000_000) as i64,
        nanos: (nanos % 1_000_000_000) as i32,
    }
}

fn id_bytes_16(high: i64, low: i64) -> Vec<u8> {
    TraceId::from_halves(high as u64, low as u64).0.to_vec()
}

/// The model as api_v2 batches, one per resource, with the same tags as [`to_thrift`] but
/// nanosecond times. The parent is the first `CHILD_OF` reference.
pub fn to_proto(batch: &Batch) -> Vec<proto::Batch> {
    batch
        .resource_spans
        .iter()
        .zip(to_thrift(batch))
        .map(|(rs, tb)| {
            let model_spans = rs.scope_spans.iter().flat_map(|ss| ss.spans.iter());
            let spans = model_spans
                .zip(tb.spans)
                .map(|(m, t)| {
                    let mut references = Vec::with_capacity(t.references.len() + 1);
                    if let Some(p) = m.parent_span_id {
                        references.push(proto::SpanRef {
                            trace_id: m.trace_id.0.to_vec(),
                            span_id: p.0.to_vec(),
                            ref_type: proto::REF_CHILD_OF,
                        });
                    }
                    references.extend(t.references.into_iter().map(|r| proto::SpanRef {
                        trace_id: id_bytes_16(r.trace_id_high, r.trace_id_low),
                        span_id: (r.span_id as u64).to_be_bytes().to_vec(),
                        ref_type: match r.ref_type {
                            RefType::ChildOf => proto::REF_CHILD_OF,
                            RefType::FollowsFrom => proto::REF_FOLLOWS_FROM,
                            RefType::Unknown(v) => v,
                        },
                    }));
                    let d = m.duration_nanos();
                    proto::Span {
                        trace_id: m.trace_id.0.to_vec(),
                        span_id: m.span_id.0.to_vec(),
                        operation_name: t.operation_name,
                        references,
                        flags: t.flags as u32,
                        start_time: Some(timestamp(m.start_time_unix_nano)),
                        duration: Some(proto::Duration {
                            seconds: (d / 1_000_000_000) as i64,
                            nanos: (d % 1_000_000_000) as i32,
                        }),
                        tags: t.tags.into_iter().map(tag_to_proto).collect(),
                        logs: m
                            .events
                            .iter()
                            .zip(t.logs)
                            .map(|(e, l)| proto::Log {
                                timestamp: Some(timestamp(e.time_unix_nano)),
                                fields: l.fields.into_iter().map(tag_to_proto).collect(),
                            })
                            .collect(),
                        ..Default::default()
                    }
                })
                .collect();
            proto::Batch {
                spans,
                process: Some(proto::Process {
                    service_name: tb.process.service_name,
                    tags: tb.process.tags.into_iter().map(tag_to_proto).collect(),
                }),
            }
        })
        .collect()
}
