//! OTLP protobuf decoding, validation and encoding.

mod common;

use prost::Message;
use stitch_model::{AnyValue, KeyValue, SpanId, SpanKind, StatusCode, TraceId};
use stitch_wire::otlp::proto::common as pc;
use stitch_wire::otlp::proto::resource as pr;
use stitch_wire::otlp::proto::trace as pt;
use stitch_wire::otlp::{
    self, ExportTraceServiceRequest, ExportTraceServiceResponse, span_from_proto,
};
use stitch_wire::{IdField, SpanError};

fn valid_span(id: u8) -> pt::Span {
    pt::Span {
        trace_id: common::trace_id_bytes(),
        span_id: vec![id; 8],
        name: format!("span {id}"),
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        ..Default::default()
    }
}

fn request_with(groups: Vec<Vec<Vec<pt::Span>>>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|scopes| pt::ResourceSpans {
                resource: Some(pr::Resource::default()),
                scope_spans: scopes
                    .into_iter()
                    .map(|spans| pt::ScopeSpans {
                        scope: Some(pc::InstrumentationScope::default()),
                        spans,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn string_value(s: &str) -> pc::AnyValue {
    pc::AnyValue {
        value: Some(pc::any_value::Value::StringValue(s.to_owned())),
    }
}

#[test]
fn invalid_spans_are_rejected_with_the_field_and_position_named() {
    type Mutation = fn(&mut pt::Span);
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "empty trace id",
            |s| s.trace_id.clear(),
            "trace id must be 16 bytes, got 0",
        ),
        (
            "short trace id",
            |s| s.trace_id.truncate(15),
            "trace id must be 16 bytes, got 15",
        ),
        (
            "long trace id",
            |s| s.trace_id.push(1),
            "trace id must be 16 bytes, got 17",
        ),
        (
            "zero trace id",
            |s| s.trace_id = vec![0; 16],
            "trace id is all zeros",
        ),
        (
            "empty span id",
            |s| s.span_id.clear(),
            "span id must be 8 bytes, got 0",
        ),
        (
            "short span id",
            |s| s.span_id = vec![1; 4],
            "span id must be 8 bytes, got 4",
        ),
        (
            "zero span id",
            |s| s.span_id = vec![0; 8],
            "span id is all zeros",
        ),
        (
            "short parent",
            |s| s.parent_span_id = vec![1; 3],
            "parent span id must be 8 bytes, got 3",
        ),
        (
            "16-byte zero parent",
            |s| s.parent_span_id = vec![0; 16],
            "parent span id must be 8 bytes, got 16",
        ),
        ("kind 6", |s| s.kind = 6, "unknown span kind 6"),
        ("negative kind", |s| s.kind = -1, "unknown span kind -1"),
        (
            "status code 3",
            |s| {
                s.status = Some(pt::Status {
                    code: 3,
                    message: String::new(),
                })
            },
            "unknown status code 3",
        ),
        (
            "end before start",
            |s| {
                s.start_time_unix_nano = 10;
                s.end_time_unix_nano = 5;
            },
            "end time 5 is before start time 10",
        ),
        (
            "link with a short trace id",
            |s| {
                s.links = vec![pt::span::Link {
                    trace_id: vec![1, 2],
                    span_id: vec![1; 8],
                    ..Default::default()
                }]
            },
            "link 0 trace id must be 16 bytes, got 2",
        ),
        (
            "second link with a zero span id",
            |s| {
                let good = pt::span::Link {
                    trace_id: vec![1; 16],
                    span_id: vec![1; 8],
                    ..Default::default()
                };
                let bad = pt::span::Link {
                    span_id: vec![0; 8],
                    ..good.clone()
                };
                s.links = vec![good, bad];
            },
            "link 1 span id is all zeros",
        ),
    ];
    for (what, mutate, expected) in cases {
        let mut bad = valid_span(2);
        mutate(&mut bad);
        let request = request_with(vec![
            vec![vec![valid_span(9)]],
            vec![vec![], vec![valid_span(1), bad, valid_span(3)]],
        ]);
        let decoded = otlp::decode_export_request(&request.encode_to_vec()).unwrap();
        assert_eq!(decoded.rejected_spans, 1, "{what}");
        assert_eq!(
            decoded.error_message,
            format!("span 1 in scope 1 of resource 1: {expected}"),
            "{what}"
        );
        let kept: Vec<_> = decoded.batch.spans().map(|s| s.span.span_id).collect();
        assert_eq!(
            kept,
            vec![SpanId([9; 8]), SpanId([1; 8]), SpanId([3; 8])],
            "{what}"
        );
    }
}

#[test]
fn span_from_proto_names_the_first_field_at_fault() {
    let mut span = valid_span(1);
    span.span_id.clear();
    span.kind = 9;
    assert_eq!(
        span_from_proto(span),
        Err(SpanError::IdLength {
            field: IdField::SpanId,
            expected: 8,
            got: 0
        })
    );
}

#[test]
fn an_all_zero_parent_span_id_means_no_parent() {
    let mut span = valid_span(1);
    span.parent_span_id = vec![0; 8];
    assert_eq!(span_from_proto(span).unwrap().parent_span_id, None);
    let mut span = valid_span(1);
    span.parent_span_id = vec![7; 8];
    assert_eq!(
        span_from_proto(span).unwrap().parent_span_id,
        Some(SpanId([7; 8]))
    );
}

#[test]
fn an_equal_start_and_end_time_is_valid() {
    let mut span = valid_span(1);
    span.end_time_unix_nano = span.start_time_unix_nano;
    assert!(span_from_proto(span).is_ok());
}

#[test]
fn the_error_message_lists_three_problems_and_counts_the_rest() {
    let mut spans: Vec<pt::Span> = (1..=6).map(valid_span).collect();
    for span in &mut spans[..5] {
        span.kind = 8;
    }
    let decoded = otlp::from_proto(request_with(vec![vec![spans]]));
    assert_eq!(decoded.rejected_spans, 5);
    assert_eq!(
        decoded.error_message,
        "span 0 in scope 0 of resource 0: unknown span kind 8; \
         span 1 in scope 0 of resource 0: unknown span kind 8; \
         span 2 in scope 0 of resource 0: unknown span kind 8; \
         and 2 more spans were rejected"
    );
    assert_eq!(decoded.batch.span_count(), 1);
}

#[test]
fn empty_groups_and_groups_left_without_valid_spans_produce_nothing() {
    let mut bad = valid_span(1);
    bad.trace_id.clear();
    let request = request_with(vec![
        vec![],
        vec![vec![], vec![bad]],
        vec![vec![valid_span(2)]],
    ]);
    let decoded = otlp::from_proto(request);
    assert_eq!(decoded.rejected_spans, 1);
    assert!(
        decoded
            .error_message
            .starts_with("span 0 in scope 1 of resource 1: ")
    );
    assert_eq!(decoded.batch.resource_spans.len(), 1);
    assert_eq!(decoded.batch.resource_spans[0].scope_spans.len(), 1);

    let empty = otlp::decode_export_request(&[]).unwrap();
    assert_eq!(empty, stitch_wire::Decoded::default());
}

#[test]
fn schema_urls_move_between_the_groups_and_the_resource_and_scope() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![pt::ResourceSpans {
            resource: None,
            scope_spans: vec![pt::ScopeSpans {
                scope: None,
                spans: vec![valid_span(1), valid_span(2)],
                schema_url: "https://opentelemetry.io/schemas/1.2.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.1.0".into(),
        }],
    };
    let decoded = otlp::from_proto(request);
    let rs = &decoded.batch.resource_spans[0];
    assert_eq!(
        rs.resource.schema_url,
        "https://opentelemetry.io/schemas/1.1.0"
    );
    assert_eq!(
        rs.scope_spans[0].scope.schema_url,
        "https://opentelemetry.io/schemas/1.2.0"
    );
    let back = otlp::to_proto(&decoded.batch);
    assert_eq!(
        back.resource_spans[0].schema_url,
        "https://opentelemetry.io/schemas/1.1.0"
    );
    assert_eq!(
        back.resource_spans[0].scope_spans[0].schema_url,
        "https://opentelemetry.io/schemas/1.2.0"
    );
}

#[test]
fn spans_of_one_group_share_the_resource_and_scope_when_split_by_trace() {
    let mut other = valid_span(2);
    other.trace_id = vec![5; 16];
    let decoded = otlp::from_proto(request_with(vec![vec![vec![valid_span(1), other]]]));
    let parts = decoded.batch.split_by_trace();
    assert_eq!(parts.len(), 2);
    assert!(std::sync::Arc::ptr_eq(
        &parts[0].1[0].resource,
        &parts[1].1[0].resource
    ));
    assert!(std::sync::Arc::ptr_eq(
        &parts[0].1[0].scope_spans[0].scope,
        &parts[1].1[0].scope_spans[0].scope
    ));
}

/// A span using every field, in canonical form, including awkward values.
fn rich_span() -> pt::Span {
    use pc::any_value::Value as V;
    let nested = pc::AnyValue {
        value: Some(V::ArrayValue(pc::ArrayValue {
            values: vec![
                pc::AnyValue::default(),
                pc::AnyValue {
                    value: Some(V::ArrayValue(pc::ArrayValue { values: vec![] })),
                },
                pc::AnyValue {
                    value: Some(V::KvlistValue(pc::KeyValueList {
                        values: vec![pc::KeyValue {
                            key: "inner".into(),
                            value: Some(pc::AnyValue {
                                value: Some(V::BytesValue(vec![0, 255, 7])),
                            }),
                            key_strindex: 0,
                        }],
                    })),
                },
                pc::AnyValue {
                    value: Some(V::DoubleValue(-0.5)),
                },
                pc::AnyValue {
                    value: Some(V::IntValue(i64::MIN)),
                },
                pc::AnyValue {
                    value: Some(V::BoolValue(false)),
                },
                string_value(""),
            ],
        })),
    };
    pt::Span {
        trace_id: common::trace_id_bytes(),
        span_id: common::span_id_bytes(),
        trace_state: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
        parent_span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        flags: 0x301,
        name: "GET /api".into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: u64::MAX,
        attributes: vec![
            pc::KeyValue {
                key: "nested".into(),
                value: Some(nested),
                key_strindex: 0,
            },
            pc::KeyValue {
                key: "empty".into(),
                value: Some(pc::AnyValue::default()),
                key_strindex: 0,
            },
            pc::KeyValue {
                key: "empty list".into(),
                value: Some(pc::AnyValue {
                    value: Some(V::KvlistValue(pc::KeyValueList { values: vec![] })),
                }),
                key_strindex: 0,
            },
        ],
        dropped_attributes_count: 3,
        events: vec![pt::span::Event {
            time_unix_nano: 5,
            name: "exception".into(),
            attributes: vec![pc::KeyValue {
                key: "exception.message".into(),
                value: Some(string_value("boom")),
                key_strindex: 0,
            }],
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 4,
        links: vec![pt::span::Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            trace_state: "k=v".into(),
            attributes: vec![],
            dropped_attributes_count: 2,
            flags: 0x100,
        }],
        dropped_links_count: 6,
        status: Some(pt::Status {
            message: "not found".into(),
            code: 2,
        }),
    }
}

#[test]
fn a_span_with_every_field_set_round_trips_through_the_model_unchanged() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![pt::ResourceSpans {
            resource: Some(pr::Resource {
                attributes: vec![pc::KeyValue {
                    key: "service.name".into(),
                    value: Some(string_value("checkout")),
                    key_strindex: 0,
                }],
                dropped_attributes_count: 1,
                entity_refs: vec![],
            }),
            scope_spans: vec![pt::ScopeSpans {
                scope: Some(pc::InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    version: "1.2.3".into(),
                    attributes: vec![pc::KeyValue {
                        key: "a".into(),
                        value: Some(string_value("b")),
                        key_strindex: 0,
                    }],
                    dropped_attributes_count: 2,
                }),
                spans: vec![rich_span()],
                schema_url: "scope-schema".into(),
            }],
            schema_url: "resource-schema".into(),
        }],
    };
    let decoded = otlp::decode_export_request(&request.encode_to_vec()).unwrap();
    assert_eq!(decoded.rejected_spans, 0, "{}", decoded.error_message);
    assert_eq!(otlp::to_proto(&decoded.batch), request);

    let span = decoded.batch.spans().next().unwrap();
    assert_eq!(span.service_name(), "checkout");
    assert_eq!(span.span.kind, SpanKind::Server);
    assert_eq!(span.span.status.code, StatusCode::Error);
    assert_eq!(span.span.flags, 0x301);
    assert_eq!(
        span.span.trace_id,
        TraceId::from_hex(common::TRACE_HEX).unwrap()
    );
}

#[test]
fn a_key_value_without_a_value_and_a_string_table_index_decode_as_empty() {
    let kv = pc::KeyValue {
        key: "k".into(),
        value: None,
        key_strindex: 0,
    };
    assert_eq!(
        otlp::key_value_from_proto(kv),
        KeyValue {
            key: "k".into(),
            value: AnyValue::Empty
        }
    );
    let strindex = pc::AnyValue {
        value: Some(pc::any_value::Value::StringValueStrindex(3)),
    };
    assert_eq!(otlp::any_value_from_proto(strindex), AnyValue::Empty);
    assert_eq!(
        otlp::any_value_to_proto(&AnyValue::Empty),
        pc::AnyValue { value: None }
    );
}

#[test]
fn bytes_that_are_not_protobuf_are_a_decode_error() {
    // Field 1 (resource_spans) as a length-delimited value running past the end.
    let error = otlp::decode_export_request(&[0x0a, 0x05, 0x01]).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("export trace request is not valid protobuf: "),
        "{text}"
    );
    // A string that is not UTF-8: span name (field 5) inside a span inside the groups.
    let mut span = valid_span(1);
    span.name = "x".into();
    let mut bytes = request_with(vec![vec![vec![span]]]).encode_to_vec();
    let at = bytes.iter().rposition(|b| *b == b'x').unwrap();
    bytes[at] = 0xff;
    assert!(otlp::decode_export_request(&bytes).is_err());
}

#[test]
fn the_export_response_carries_partial_success_only_when_needed() {
    assert!(otlp::encode_export_response(0, "").is_empty());
    let response =
        ExportTraceServiceResponse::decode(otlp::encode_export_response(3, "bad ids").as_slice())
            .unwrap();
    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 3);
    assert_eq!(partial.error_message, "bad ids");
    let warning =
        ExportTraceServiceResponse::decode(otlp::encode_export_response(0, "slow down").as_slice())
            .unwrap();
    assert_eq!(warning.partial_success.unwrap().rejected_spans, 0);
    let huge =
        ExportTraceServiceResponse::decode(otlp::encode_export_response(u64::MAX, "").as_slice())
            .unwrap();
    assert_eq!(huge.partial_success.unwrap().rejected_spans, i64::MAX);
}

#[test]
fn the_rpc_status_is_encoded_as_code_and_message_fields() {
    assert_eq!(
        otlp::encode_status_proto(3, "bad"),
        vec![0x08, 0x03, 0x12, 0x03, b'b', b'a', b'd']
    );
    assert!(otlp::encode_status_proto(0, "").is_empty());
}
