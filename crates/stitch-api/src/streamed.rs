//! Answers written while the client reads them.
//!
//! A trace of a million spans is about a gigabyte of Jaeger JSON. Built whole, the answer
//! holds the trace, all its converted spans and the whole text at once; written here, only
//! one chunk of converted spans exists at a time beside the trace itself.

use std::collections::HashMap;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header;
use stitch_model::{Resource, Scope, Span, SpanId, Trace};
use stitch_wire::otlp_json::TraceJsonPieces;
use stitch_wire::zipkin::{span_to_json, span_to_zipkin};

use crate::error::{ApiError, Envelope};
use crate::jaeger::{JaegerTrace, processes_of, span_to_jaeger, trace_id_to_jaeger};

/// Spans converted and written per chunk of the body.
const SPANS_PER_CHUNK: usize = 1024;

/// A JSON answer made of `head`, the pieces, and `tail`. A piece that fails ends the body
/// there with an error, so the client sees the answer broken off, never a shorter one that
/// parses.
fn json_body(
    head: Bytes,
    pieces: impl Iterator<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static,
    tail: Bytes,
) -> Response {
    let mut failed = false;
    let chunks = std::iter::once(Ok(head))
        .chain(pieces.map(|p| p.map(Bytes::from)))
        .chain(std::iter::once(Ok(tail)))
        .take_while(move |chunk| {
            let go = !failed;
            failed |= chunk.is_err();
            go
        })
        .filter(|chunk| !matches!(chunk, Ok(b) if b.is_empty()));
    let body = Body::from_stream(futures::stream::iter(chunks));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

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
    let pieces = SpanPieces::new(trace, move |r, _, scope, span, out| {
        serde_json::to_writer(out, &span_to_jaeger(span, scope, &process_keys[r]))
    });
    Ok(json_body(
        Bytes::copy_from_slice(&text.as_bytes()[..at]),
        pieces,
        Bytes::copy_from_slice(&text.as_bytes()[at..]),
    ))
}

/// Zipkin's answer for one trace, byte for byte the array of
/// [`stitch_wire::zipkin::trace_to_zipkin`]'s spans, written a chunk of spans at a time.
pub fn zipkin_trace(trace: Trace) -> Response {
    let parents: HashMap<SpanId, Option<SpanId>> = trace
        .spans()
        .map(|s| (s.span.span_id, s.span.parent_span_id))
        .collect();
    let pieces = SpanPieces::new(trace, move |_, resource, scope, span, out| {
        serde_json::to_writer(
            out,
            &span_to_json(&span_to_zipkin(resource, scope, span, &parents)),
        )
    });
    json_body(Bytes::from_static(b"["), pieces, Bytes::from_static(b"]"))
}

/// The trace as an OTLP/JSON document (`{"resourceSpans":[...]}`, as
/// [`stitch_wire::otlp_json::trace_to_json`] writes it) between `head` and `tail`, written a
/// chunk of spans at a time.
pub fn otlp_trace(head: &'static str, trace: Trace, tail: &'static str) -> Response {
    json_body(
        Bytes::from_static(head.as_bytes()),
        TraceJsonPieces::new(trace, SPANS_PER_CHUNK).map(Ok),
        Bytes::from_static(tail.as_bytes()),
    )
}

/// The trace in Tempo's JSON form with its resource groups under `list_key`, between `head`
/// and `tail`, written a chunk of spans at a time.
pub fn tempo_trace(
    head: &'static str,
    trace: Trace,
    list_key: &'static str,
    tail: &'static str,
) -> Response {
    json_body(
        Bytes::from_static(head.as_bytes()),
        TraceJsonPieces::new(trace, SPANS_PER_CHUNK)
            .tempo_form(list_key)
            .map(Ok),
        Bytes::from_static(tail.as_bytes()),
    )
}

/// Writes one span into a chunk: given its resource group's index, its resource and scope.
type WriteSpan =
    dyn FnMut(usize, &Resource, &Scope, &Span, &mut Vec<u8>) -> serde_json::Result<()> + Send;

/// A trace's spans in its order, each written by `write`, separated by commas, at most
/// [`SPANS_PER_CHUNK`] per piece.
struct SpanPieces {
    trace: Trace,
    write: Box<WriteSpan>,
    /// The next span: (resource group, scope group, span) indexes.
    at: (usize, usize, usize),
    any_written: bool,
}

impl SpanPieces {
    fn new(
        trace: Trace,
        write: impl FnMut(usize, &Resource, &Scope, &Span, &mut Vec<u8>) -> serde_json::Result<()>
        + Send
        + 'static,
    ) -> Self {
        SpanPieces {
            trace,
            write: Box::new(write),
            at: (0, 0, 0),
            any_written: false,
        }
    }
}

impl Iterator for SpanPieces {
    type Item = Result<Vec<u8>, std::io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
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
            // Writing plain data into a vector does not fail; if it did, the body ends here
            // with an error (see `json_body`).
            if let Err(e) = (self.write)(r, &rs.resource, &ss.scope, span, &mut out) {
                self.at = (usize::MAX, 0, 0);
                return Some(Err(std::io::Error::other(e)));
            }
            self.any_written = true;
            self.at = (r, s, i + 1);
            written += 1;
        }
        (written > 0).then_some(Ok(out))
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
                            parent_span_id: (i > 0)
                                .then(|| SpanId::from_u64((g as u64) << 40 | sc << 32 | i)),
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

    #[tokio::test]
    async fn a_span_that_cannot_be_written_breaks_the_answer_off() {
        let mut n = 0;
        let pieces = SpanPieces::new(trace(6), move |_, _, _, _, out| {
            n += 1;
            if n == 2 {
                return Err(serde_json::Error::io(std::io::Error::other("no")));
            }
            out.extend_from_slice(b"{}");
            Ok(())
        });
        let resp = json_body(Bytes::from_static(b"["), pieces, Bytes::from_static(b"]"));
        assert!(
            axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn streamed_zipkin_and_otlp_answers_are_the_answers_built_whole() {
        for n in [0, 6, 3 * SPANS_PER_CHUNK as u64 + 6] {
            let t = trace(n);
            let zipkin = serde_json::Value::Array(
                stitch_wire::zipkin::trace_to_zipkin(&t)
                    .iter()
                    .map(span_to_json)
                    .collect(),
            )
            .to_string();
            let otlp = serde_json::json!({"result": stitch_wire::otlp_json::trace_to_json(&t)})
                .to_string();
            let streamed_zipkin = body_of(zipkin_trace(t.clone())).await;
            assert_eq!(
                String::from_utf8(streamed_zipkin).unwrap(),
                zipkin,
                "{n} spans"
            );
            let streamed_otlp = body_of(otlp_trace("{\"result\":", t, "}")).await;
            assert_eq!(String::from_utf8(streamed_otlp).unwrap(), otlp, "{n} spans");
        }
    }
}
