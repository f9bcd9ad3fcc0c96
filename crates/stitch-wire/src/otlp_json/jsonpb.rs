//! A trace as Grafana Tempo writes it in JSON: the OTLP/JSON document of
//! [`trace_to_json`](super::trace_to_json) in the form Go's `jsonpb` gives protobuf messages,
//! which is what Tempo's trace-by-id answers hold. Two things differ from canonical OTLP/JSON:
//! trace and span ids (of spans, parents and links) are base64 rather than hex, and span kinds
//! and status codes are their enum names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`) rather than
//! numbers. Everything else (64-bit integers as strings, fields at their default left out) is
//! already the same.

use serde_json::Value;
use stitch_model::Trace;

use crate::{base64, hex};

/// The `resourceSpans` list of `trace` in Tempo's JSON form.
pub fn trace_to_jsonpb(trace: &Trace) -> Value {
    let mut doc = super::trace_to_json(trace);
    if let Some(Value::Array(groups)) = doc.get_mut("resourceSpans") {
        for group in groups {
            for scope in list(group, "scopeSpans") {
                for span in list(scope, "spans") {
                    span_to_jsonpb(span);
                }
            }
        }
    }
    doc
}

fn list<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    match v.get_mut(key) {
        Some(Value::Array(items)) => items.iter_mut(),
        _ => [].iter_mut(),
    }
}

/// One span of [`super::trace_to_json`]'s document, rewritten in place into Tempo's form.
pub(super) fn span_to_jsonpb(span: &mut Value) {
    for key in ["traceId", "spanId", "parentSpanId"] {
        hex_to_base64(span, key);
    }
    for link in list(span, "links") {
        hex_to_base64(link, "traceId");
        hex_to_base64(link, "spanId");
    }
    if let Some(kind) = span.get_mut("kind")
        && let Some(name) = kind.as_i64().and_then(kind_name)
    {
        *kind = Value::String(name.to_owned());
    }
    if let Some(code) = span.get_mut("status").and_then(|s| s.get_mut("code"))
        && let Some(name) = code.as_i64().and_then(status_name)
    {
        *code = Value::String(name.to_owned());
    }
}

fn hex_to_base64(v: &mut Value, key: &str) {
    let Some(Value::String(text)) = v.get_mut(key) else {
        return;
    };
    if let Some(bytes) = hex::decode(text) {
        *text = base64::encode(&bytes);
    }
}

fn kind_name(kind: i64) -> Option<&'static str> {
    Some(match kind {
        0 => "SPAN_KIND_UNSPECIFIED",
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => return None,
    })
}

fn status_name(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "STATUS_CODE_UNSET",
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stitch_model::{
        Link, Resource, ResourceSpans, ScopeSpans, Span, SpanId, SpanKind, Status, StatusCode,
        TraceId,
    };

    use super::*;

    #[test]
    fn ids_become_base64_and_enums_their_names() {
        let id = TraceId::from_hex("0102030405060708090a0b0c0d0e0f10").unwrap();
        let mut t = Trace::new(id);
        t.resource_spans.push(ResourceSpans {
            resource: Arc::new(Resource::default()),
            scope_spans: vec![ScopeSpans {
                scope: Default::default(),
                spans: vec![Span {
                    trace_id: id,
                    span_id: SpanId::from_hex("a1a2a3a4a5a6a7a8").unwrap(),
                    parent_span_id: Some(SpanId::from_hex("b1b2b3b4b5b6b7b8").unwrap()),
                    name: "GET /".into(),
                    kind: SpanKind::Server,
                    start_time_unix_nano: 1,
                    end_time_unix_nano: 2,
                    status: Status {
                        code: StatusCode::Error,
                        message: "boom".into(),
                    },
                    links: vec![Link {
                        trace_id: id,
                        span_id: SpanId::from_hex("c1c2c3c4c5c6c7c8").unwrap(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }],
        });
        let doc = trace_to_jsonpb(&t);
        let span = &doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "AQIDBAUGBwgJCgsMDQ4PEA==");
        assert_eq!(span["spanId"], "oaKjpKWmp6g=");
        assert_eq!(span["parentSpanId"], "sbKztLW2t7g=");
        assert_eq!(span["links"][0]["spanId"], "wcLDxMXGx8g=");
        assert_eq!(span["kind"], "SPAN_KIND_SERVER");
        assert_eq!(span["status"]["code"], "STATUS_CODE_ERROR");
        assert_eq!(span["status"]["message"], "boom");
        assert_eq!(span["startTimeUnixNano"], "1");
    }
}
