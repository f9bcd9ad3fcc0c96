//! Answers written while the client reads them.
//!
//! A trace of a million spans is about a gigabyte of Jaeger JSON. Built whole, the answer
//! holds the trace, all its converted spans and the whole text at once; written here, only
//! one chunk of converted spans exists at a time beside the trace itself.

use std::convert::Infallible;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header;
use stitch_model::Trace;

use crate::error::{ApiError, Envelope};
use crate::jaeger::{JaegerTrace, processes_of, span_to_jaeger, trace_id_to_jaeger};

/// Spans converted and written per chunk of the body.
const SPANS_PER_CHUNK: usize = 1024;

/// The Jaeger answer holding one trace, byte for byte what
/// `Json(Envelope::new(vec![trace_to_jaeger(&trace)], 0))` writes, written a chunk of spans
/// at a time.
pub fn jaeger_trace(trace: Trace) -> Result<Response, ApiError> {
    let (processes, keys) = processes_of(&trace);
    let process_keys: Vec<String> = keys.iter().map(|&k| processes[k].0.clone()).collect();
    let shell = Envelope::new(
        vec![JaegerTrace {
            trace_id: trace_id_to_jaeger(trace.trace_id),
            spans: Vec::new(),
            processes,
            warnings: None,
        }],
        0,
    );
    let text = serde_json::to_string(&shell)
        .map_err(|e| ApiError::Internal(format!("writing the answer: {e}")))?;
    // The shell holds `"spans":[]` once: the trace's own field (a tag value with that text
    // has its quotes escaped). The spans go between its brackets.
    const NO_SPANS: &str = "\"spans\":[]";
    let at = text
        .find(NO_SPANS)
        .ok_or_else(|| ApiError::Internal("writing the answer: no span list".into()))?
        + NO_SPANS.len()
        - 1;
    let chunks = JaegerChunks {
        head: Some(Bytes::copy_from_slice(&text.as_bytes()[..at])),
        tail: Some(Bytes::copy_from_slice(&text.as_bytes()[at..])),
        trace,
        process_keys,
        at: (0, 0, 0),
        any_written: false,
    };
    let body = Body::from_stream(futures::stream::iter(chunks.map(Ok::<_, Infallible>)));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The body of [`jaeger_trace`]: the envelope up to the span list, the spans a chunk at a
/// time (in the trace's order, as [`crate::jaeger::trace_to_jaeger`] lists them), the rest.
struct JaegerChunks {
    head: Option<Bytes>,
    tail: Option<Bytes>,
    trace: Trace,
    /// The process key of each resource group.
    process_keys: Vec<String>,
    /// The next span: (resource group, scope group, span) indexes.
    at: (usize, usize, usize),
    any_written: bool,
}

impl Iterator for JaegerChunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        let mut out = Vec::new();
        let mut written = 0;
        while written < SPANS_PER_CHUNK {
            let (r, s, i) = self.at;
            let Some(rs) = self.trace.resource_spans.get(r) else {
                break;
            };
            let Some(ss) = rs.scope_spans.get(s) else {
                self.at = (r + 1, 0, 0);
                continue;
            };
            let Some(span) = ss.spans.get(i) else {
                self.at = (r, s + 1, 0);
                continue;
            };
            if self.any_written {
                out.push(b',');
            }
            // Writing plain data into a vector cannot fail; if it did, the body would end here
            // and the client would see JSON cut short rather than a wrong answer.
            serde_json::to_writer(
                &mut out,
                &span_to_jaeger(span, &ss.scope, &self.process_keys[r]),
            )
            .ok()?;
            self.any_written = true;
            self.at = (r, s, i + 1);
            written += 1;
        }
        if written > 0 {
            return Some(Bytes::from(out));
        }
        self.tail.take()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Json;
    use stitch_model::{
        KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, TraceId,
    };

    use super::*;
    use crate::jaeger::trace_to_jaeger;

    async fn body_of(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    /// A trace of `n` spans over three resources (two of them the same process) and two
    /// scopes each, with a tag whose value reads like the span list.
    fn trace(n: u64) -> Trace {
        let id = TraceId::from_halves(7, 9);
        let resource = |svc: &str| {
            Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", svc)],
                ..Default::default()
            })
        };
        let mut t = Trace::new(id);
        for (g, svc) in ["front", "back", "front"].into_iter().enumerate() {
            let scope_spans = (0..2)
                .map(|sc| ScopeSpans {
                    scope: Arc::new(Scope {
                        name: format!("scope-{sc}"),
                        ..Default::default()
                    }),
                    spans: (0..n / 6)
                        .map(|i| Span {
                            trace_id: id,
                            span_id: SpanId::from_u64((g as u64) << 40 | sc << 32 | (i + 1)),
                            name: format!("op {i}"),
                            start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000,
                            end_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000 + 500,
                            attributes: vec![KeyValue::new("note", "\"spans\":[]")],
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect();
            t.resource_spans.push(ResourceSpans {
                resource: resource(svc),
                scope_spans,
            });
        }
        t
    }

    #[tokio::test]
    async fn a_streamed_trace_is_byte_for_byte_the_answer_built_whole() {
        // Chunk boundaries inside a scope group, between groups, and a trace with no spans.
        for n in [0, 6, 3 * SPANS_PER_CHUNK as u64 + 6] {
            let t = trace(n);
            let whole =
                body_of(Json(Envelope::new(vec![trace_to_jaeger(&t)], 0)).into_response()).await;
            let streamed = body_of(jaeger_trace(t).unwrap()).await;
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(whole).unwrap(),
                "{n} spans"
            );
        }
    }
}
