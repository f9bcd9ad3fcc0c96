//! Strategies and fixtures shared by the integration tests.

#![allow(dead_code)]

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanId, SpanKind, Status, StatusCode, TraceId,
};

pub fn trace_id() -> impl Strategy<Value = TraceId> {
    any::<[u8; 16]>()
        .prop_filter("the zero id is invalid", |b| *b != [0; 16])
        .prop_map(TraceId)
}

pub fn span_id() -> impl Strategy<Value = SpanId> {
    any::<[u8; 8]>()
        .prop_filter("the zero id is invalid", |b| *b != [0; 8])
        .prop_map(SpanId)
}

/// Mostly short text, sometimes empty, sometimes any Unicode.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z.]{1,12}", any::<String>(),]
}

/// Finite doubles only: NaN is not equal to itself, and non-finite values are tested by hand.
pub fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

pub fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(AnyValue::Empty),
        text().prop_map(AnyValue::String),
        any::<bool>().prop_map(AnyValue::Bool),
        any::<i64>().prop_map(AnyValue::Int),
        finite_f64().prop_map(AnyValue::Double),
        vec(any::<u8>(), 0..12).prop_map(AnyValue::Bytes),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(AnyValue::Array),
            vec(
                (text(), inner).prop_map(|(key, value)| KeyValue { key, value }),
                0..4
            )
            .prop_map(AnyValue::KvList),
        ]
    })
}

pub fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (text(), any_value()).prop_map(|(key, value)| KeyValue { key, value }),
        0..4,
    )
}

pub fn event() -> impl Strategy<Value = Event> {
    (any::<u64>(), text(), attributes(), any::<u32>()).prop_map(
        |(time_unix_nano, name, attributes, dropped_attributes_count)| Event {
            time_unix_nano,
            name,
            attributes,
            dropped_attributes_count,
        },
    )
}

pub fn link() -> impl Strategy<Value = Link> {
    (
        trace_id(),
        span_id(),
        text(),
        attributes(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags)| Link {
                trace_id,
                span_id,
                trace_state,
                attributes,
                dropped_attributes_count,
                flags,
            },
        )
}

pub fn status() -> impl Strategy<Value = Status> {
    (0..=2i32, text()).prop_map(|(code, message)| Status {
        code: StatusCode::from_i32(code).unwrap(),
        message,
    })
}

pub fn span() -> impl Strategy<Value = Span> {
    let ids = (
        trace_id(),
        span_id(),
        proptest::option::of(span_id()),
        text(),
        any::<u32>(),
    );
    let what = (text(), 0..=5i32, any::<u64>(), any::<u64>(), status());
    let details = (
        attributes(),
        any::<u32>(),
        vec(event(), 0..3),
        any::<u32>(),
        vec(link(), 0..3),
        any::<u32>(),
    );
    (ids, what, details).prop_map(assemble_span)
}

/// The generated parts of a span: ids and context, what and when, details.
pub type SpanParts = (
    (TraceId, SpanId, Option<SpanId>, String, u32),
    (String, i32, u64, u64, Status),
    (Vec<KeyValue>, u32, Vec<Event>, u32, Vec<Link>, u32),
);

/// Builds a span from generated parts; the start is the earlier of the two times.
pub fn assemble_span(
    (
        (trace_id, span_id, parent_span_id, trace_state, flags),
        (name, kind, a, b, status),
        (
            attributes,
            dropped_attributes_count,
            events,
            dropped_events_count,
            links,
            dropped_links_count,
        ),
    ): SpanParts,
) -> Span {
    Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state,
        flags,
        name,
        kind: SpanKind::from_i32(kind).unwrap(),
        start_time_unix_nano: a.min(b),
        end_time_unix_nano: a.max(b),
        attributes,
        dropped_attributes_count,
        events,
        dropped_events_count,
        links,
        dropped_links_count,
        status,
    }
}

pub fn resource() -> impl Strategy<Value = Resource> {
    (attributes(), any::<u32>(), text()).prop_map(
        |(attributes, dropped_attributes_count, schema_url)| Resource {
            attributes,
            dropped_attributes_count,
            schema_url,
        },
    )
}

pub fn scope() -> impl Strategy<Value = Scope> {
    (text(), text(), attributes(), any::<u32>(), text()).prop_map(
        |(name, version, attributes, dropped_attributes_count, schema_url)| Scope {
            name,
            version,
            attributes,
            dropped_attributes_count,
            schema_url,
        },
    )
}

/// A valid batch: every group holds at least one span (decoders drop empty groups).
pub fn batch() -> impl Strategy<Value = Batch> {
    let scope_spans = (scope(), vec(span(), 1..4)).prop_map(|(scope, spans)| ScopeSpans {
        scope: Arc::new(scope),
        spans,
    });
    let resource_spans =
        (resource(), vec(scope_spans, 1..3)).prop_map(|(resource, scope_spans)| ResourceSpans {
            resource: Arc::new(resource),
            scope_spans,
        });
    vec(resource_spans, 0..3).prop_map(|resource_spans| Batch { resource_spans })
}

pub const TRACE_HEX: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const SPAN_HEX: &str = "00f067aa0ba902b7";
pub const PARENT_HEX: &str = "53995c3f42cd8ad8";

pub fn trace_id_bytes() -> Vec<u8> {
    TraceId::from_hex(TRACE_HEX).unwrap().0.to_vec()
}

pub fn span_id_bytes() -> Vec<u8> {
    SpanId::from_hex(SPAN_HEX).unwrap().0.to_vec()
}

/// A minimal valid span with the given span id byte repeated.
pub fn simple_span(id: u8) -> Span {
    Span {
        trace_id: TraceId::from_hex(TRACE_HEX).unwrap(),
        span_id: SpanId([id; 8]),
        name: format!("span {id}"),
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        ..Default::default()
    }
}
