//! A trace's OTLP/JSON document written a piece at a time.

use stitch_model::Trace;

use super::encode::{open_group, open_scope, span_to_json};

/// Where the writer is in the document.
#[derive(Clone, Copy)]
enum At {
    Start,
    /// Before resource group `r` (or the end of the list).
    Group(usize),
    /// Before scope group `s` of resource group `r`.
    Scope(usize, usize),
    /// Before span `i` of scope group `s` of resource group `r`.
    Span(usize, usize, usize),
    Done,
}

/// [`trace_to_json`](super::trace_to_json) of a trace, serialised, in pieces of at most
/// `spans_per_piece` spans: concatenated, the pieces are byte for byte the whole document.
/// Only one piece's text exists at a time.
pub struct TraceJsonPieces {
    trace: Trace,
    spans_per_piece: usize,
    at: At,
    /// The key of the list of resource groups.
    list_key: &'static str,
    /// Spans in Tempo's form ([`super::trace_to_jsonpb`]).
    jsonpb: bool,
}

impl TraceJsonPieces {
    pub fn new(trace: Trace, spans_per_piece: usize) -> Self {
        TraceJsonPieces {
            trace,
            spans_per_piece: spans_per_piece.max(1),
            at: At::Start,
            list_key: "resourceSpans",
            jsonpb: false,
        }
    }

    /// The document in Tempo's JSON form ([`super::trace_to_jsonpb`]), its list of resource
    /// groups under `list_key` (`resourceSpans`, or `batches` as Tempo's first trace API
    /// names it).
    pub fn tempo_form(mut self, list_key: &'static str) -> Self {
        self.list_key = list_key;
        self.jsonpb = true;
        self
    }
}

impl Iterator for TraceJsonPieces {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if matches!(self.at, At::Done) {
            return None;
        }
        let groups = &self.trace.resource_spans;
        let mut out = Vec::new();
        let mut written = 0;
        loop {
            self.at = match self.at {
                At::Start => {
                    out.extend_from_slice(b"{\"");
                    out.extend_from_slice(self.list_key.as_bytes());
                    out.extend_from_slice(b"\":[");
                    At::Group(0)
                }
                At::Group(r) => match groups.get(r) {
                    None => {
                        out.extend_from_slice(b"]}");
                        self.at = At::Done;
                        return Some(out);
                    }
                    Some(rs) => {
                        if r > 0 {
                            out.push(b',');
                        }
                        let any = open_group(rs, &mut out);
                        if rs.scope_spans.is_empty() {
                            out.push(b'}');
                            At::Group(r + 1)
                        } else {
                            if any {
                                out.push(b',');
                            }
                            out.extend_from_slice(b"\"scopeSpans\":[");
                            At::Scope(r, 0)
                        }
                    }
                },
                At::Scope(r, s) => match groups[r].scope_spans.get(s) {
                    None => {
                        out.extend_from_slice(b"]}");
                        At::Group(r + 1)
                    }
                    Some(ss) => {
                        if s > 0 {
                            out.push(b',');
                        }
                        let any = open_scope(ss, &mut out);
                        if ss.spans.is_empty() {
                            out.push(b'}');
                            At::Scope(r, s + 1)
                        } else {
                            if any {
                                out.push(b',');
                            }
                            out.extend_from_slice(b"\"spans\":[");
                            At::Span(r, s, 0)
                        }
                    }
                },
                At::Span(r, s, i) => match groups[r].scope_spans[s].spans.get(i) {
                    None => {
                        out.extend_from_slice(b"]}");
                        At::Scope(r, s + 1)
                    }
                    Some(_) if written == self.spans_per_piece => return Some(out),
                    Some(span) => {
                        if i > 0 {
                            out.push(b',');
                        }
                        let mut json = span_to_json(span);
                        if self.jsonpb {
                            super::jsonpb::span_to_jsonpb(&mut json);
                        }
                        out.extend_from_slice(json.to_string().as_bytes());
                        written += 1;
                        At::Span(r, s, i + 1)
                    }
                },
                At::Done => return Some(out),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stitch_model::{
        KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, TraceId,
    };

    use super::*;
    use crate::otlp_json::trace_to_json;

    /// A trace with resource and scope groups of every shape: with and without attributes
    /// and schema URLs, a scope group with no spans, a resource group with no scope groups.
    fn trace(spans_per_scope: u64) -> Trace {
        let id = TraceId::from_halves(1, 2);
        let span = |n: u64| Span {
            trace_id: id,
            span_id: SpanId::from_u64(n + 1),
            name: format!("op {n}"),
            start_time_unix_nano: 10 + n,
            end_time_unix_nano: 20 + n,
            attributes: vec![KeyValue::new("note", "\"spans\":[]")],
            ..Default::default()
        };
        let scope = |name: &str, schema: &str, spans: u64, base: u64| ScopeSpans {
            scope: Arc::new(Scope {
                name: name.into(),
                schema_url: schema.into(),
                ..Default::default()
            }),
            spans: (0..spans).map(|n| span(base + n)).collect(),
        };
        let mut t = Trace::new(id);
        t.resource_spans.push(ResourceSpans {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", "a")],
                schema_url: "https://example.com/1".into(),
                ..Default::default()
            }),
            scope_spans: vec![
                scope("s1", "", spans_per_scope, 0),
                scope("", "", 0, 0),
                scope("", "https://example.com/2", spans_per_scope, 1_000),
            ],
        });
        t.resource_spans.push(ResourceSpans {
            resource: Arc::new(Resource::default()),
            scope_spans: Vec::new(),
        });
        t.resource_spans.push(ResourceSpans {
            resource: Arc::new(Resource::default()),
            scope_spans: vec![scope("s3", "", spans_per_scope, 2_000)],
        });
        t
    }

    #[test]
    fn the_pieces_make_the_whole_document() {
        for (spans_per_scope, per_piece) in [(0, 1), (1, 1), (5, 2), (7, 7), (7, 100), (64, 10)] {
            let t = trace(spans_per_scope);
            let whole = trace_to_json(&t).to_string();
            let pieces: Vec<Vec<u8>> = TraceJsonPieces::new(t, per_piece).collect();
            assert_eq!(
                String::from_utf8(pieces.concat()).unwrap(),
                whole,
                "{spans_per_scope} spans per scope, {per_piece} per piece"
            );
            let spans = 3 * spans_per_scope as usize;
            assert!(
                pieces.len() >= spans / per_piece,
                "{} pieces for {spans} spans",
                pieces.len()
            );
        }
        let empty = Trace::new(TraceId::from_halves(1, 2));
        let whole = trace_to_json(&empty).to_string();
        let pieces: Vec<u8> = TraceJsonPieces::new(empty, 4).flatten().collect();
        assert_eq!(String::from_utf8(pieces).unwrap(), whole);
    }

    #[test]
    fn the_tempo_form_matches_the_whole_jsonpb_document() {
        for (spans_per_scope, per_piece) in [(0, 1), (5, 2), (64, 10)] {
            let t = trace(spans_per_scope);
            let whole = crate::otlp_json::trace_to_jsonpb(&t);
            let text = |key| {
                let pieces: Vec<u8> = TraceJsonPieces::new(t.clone(), per_piece)
                    .tempo_form(key)
                    .flatten()
                    .collect();
                serde_json::from_slice::<serde_json::Value>(&pieces).unwrap()
            };
            assert_eq!(text("resourceSpans"), whole);
            assert_eq!(
                text("batches"),
                serde_json::json!({ "batches": whole["resourceSpans"] })
            );
        }
    }

    #[test]
    fn no_piece_holds_more_spans_than_asked() {
        let t = trace(50);
        for piece in TraceJsonPieces::new(t, 8) {
            let text = String::from_utf8(piece).unwrap();
            assert!(text.matches("\"spanId\"").count() <= 8, "{text}");
        }
    }
}
