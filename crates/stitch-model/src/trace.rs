//! A whole trace: every stored span that shares one trace id.

use crate::{Batch, Resource, ResourceSpans, Scope, Span, TraceId};

/// A span together with the resource and scope that produced it.
#[derive(Clone, Copy, Debug)]
pub struct SpanRef<'a> {
    pub resource: &'a Resource,
    pub scope: &'a Scope,
    pub span: &'a Span,
}

impl SpanRef<'_> {
    pub fn service_name(&self) -> &str {
        self.resource.service_name()
    }
}

/// All known spans of one trace, grouped as they were received.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub trace_id: TraceId,
    pub resource_spans: Vec<ResourceSpans>,
}

impl Trace {
    pub fn new(trace_id: TraceId) -> Trace {
        Trace {
            trace_id,
            resource_spans: Vec::new(),
        }
    }

    /// Every span with its resource and scope.
    pub fn spans(&self) -> impl Iterator<Item = SpanRef<'_>> {
        self.resource_spans.iter().flat_map(|rs| {
            rs.scope_spans.iter().flat_map(move |ss| {
                ss.spans.iter().map(move |span| SpanRef {
                    resource: &rs.resource,
                    scope: &ss.scope,
                    span,
                })
            })
        })
    }

    pub fn span_count(&self) -> usize {
        self.spans().count()
    }

    pub fn is_empty(&self) -> bool {
        self.spans().next().is_none()
    }

    /// Earliest start and latest end over all spans, in Unix nanoseconds.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        self.spans().fold(None, |acc, s| {
            let (a, b) = (s.span.start_time_unix_nano, s.span.end_time_unix_nano);
            Some(match acc {
                None => (a, b.max(a)),
                Some((lo, hi)) => (lo.min(a), hi.max(b).max(a)),
            })
        })
    }

    /// Adds every span of `fragment` (which must all belong to this trace).
    pub fn extend(&mut self, fragment: Vec<ResourceSpans>) {
        self.resource_spans.extend(fragment);
    }

    /// Sorts spans by start time inside each group, and groups by resource so output is stable.
    pub fn normalize(&mut self) {
        // Merge groups that share the same resource and scope contents.
        let mut merged: Vec<ResourceSpans> = Vec::new();
        for rs in self.resource_spans.drain(..) {
            let target = match merged.iter_mut().find(|m| m.resource == rs.resource) {
                Some(m) => m,
                None => {
                    merged.push(ResourceSpans {
                        resource: rs.resource.clone(),
                        scope_spans: Vec::new(),
                    });
                    merged.last_mut().expect("just pushed")
                }
            };
            for ss in rs.scope_spans {
                match target.scope_spans.iter_mut().find(|t| t.scope == ss.scope) {
                    Some(t) => t.spans.extend(ss.spans),
                    None => target.scope_spans.push(ss),
                }
            }
        }
        // Order everything by time (ties by span id), so a trace reads the same whatever order
        // its spans arrived in and wherever they are stored.
        let first_key = |spans: &[Span]| spans.first().map(|s| (s.start_time_unix_nano, s.span_id));
        for rs in &mut merged {
            for ss in &mut rs.scope_spans {
                ss.spans
                    .sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
                ss.spans.dedup_by(|a, b| a == b);
            }
            rs.scope_spans.retain(|ss| !ss.spans.is_empty());
            rs.scope_spans.sort_by_key(|ss| first_key(&ss.spans));
        }
        merged.retain(|rs| !rs.scope_spans.is_empty());
        merged.sort_by_key(|rs| {
            rs.scope_spans
                .iter()
                .filter_map(|ss| first_key(&ss.spans))
                .min()
        });
        self.resource_spans = merged;
    }
}

impl Batch {
    /// Splits the batch into one fragment per trace id, sharing resources and scopes.
    pub fn split_by_trace(&self) -> Vec<(TraceId, Vec<ResourceSpans>)> {
        use std::collections::HashMap;
        let mut index: HashMap<TraceId, usize> = HashMap::new();
        let mut out: Vec<(TraceId, Vec<ResourceSpans>)> = Vec::new();
        for rs in &self.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    let slot = *index.entry(span.trace_id).or_insert_with(|| {
                        out.push((span.trace_id, Vec::new()));
                        out.len() - 1
                    });
                    let frag = &mut out[slot].1;
                    let need_rs = frag
                        .last()
                        .is_none_or(|last| !std::sync::Arc::ptr_eq(&last.resource, &rs.resource));
                    if need_rs {
                        frag.push(ResourceSpans {
                            resource: rs.resource.clone(),
                            scope_spans: Vec::new(),
                        });
                    }
                    let last_rs = frag.last_mut().expect("pushed above");
                    let need_ss = last_rs
                        .scope_spans
                        .last()
                        .is_none_or(|last| !std::sync::Arc::ptr_eq(&last.scope, &ss.scope));
                    if need_ss {
                        last_rs.scope_spans.push(crate::ScopeSpans {
                            scope: ss.scope.clone(),
                            spans: Vec::new(),
                        });
                    }
                    last_rs
                        .scope_spans
                        .last_mut()
                        .expect("pushed above")
                        .spans
                        .push(span.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyValue, ScopeSpans, SpanId};
    use std::sync::Arc;

    fn span(t: u8, s: u8, start: u64) -> Span {
        Span {
            trace_id: TraceId([t; 16]),
            span_id: SpanId([s; 8]),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 10,
            ..Default::default()
        }
    }

    #[test]
    fn batch_splits_by_trace_and_keeps_resources() {
        let resource = Arc::new(Resource {
            attributes: vec![KeyValue::new("service.name", "a")],
            ..Default::default()
        });
        let batch = Batch {
            resource_spans: vec![ResourceSpans {
                resource: resource.clone(),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::default(),
                    spans: vec![span(1, 1, 5), span(2, 2, 6), span(1, 3, 7)],
                }],
            }],
        };
        let parts = batch.split_by_trace();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, TraceId([1; 16]));
        let mut trace = Trace::new(parts[0].0);
        trace.extend(parts[0].1.clone());
        assert_eq!(trace.span_count(), 2);
        assert_eq!(trace.spans().next().unwrap().service_name(), "a");
        assert_eq!(trace.time_range(), Some((5, 17)));
    }

    #[test]
    fn normalize_merges_fragments_of_the_same_resource_and_drops_duplicates() {
        let resource = Arc::new(Resource::default());
        let frag = |spans| ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![ScopeSpans {
                scope: Arc::default(),
                spans,
            }],
        };
        let mut trace = Trace::new(TraceId([1; 16]));
        trace.extend(vec![
            frag(vec![span(1, 2, 9)]),
            frag(vec![span(1, 1, 3), span(1, 2, 9)]),
        ]);
        trace.normalize();
        assert_eq!(trace.resource_spans.len(), 1);
        let ids: Vec<_> = trace.spans().map(|s| s.span.span_id).collect();
        assert_eq!(ids, vec![SpanId([1; 8]), SpanId([2; 8])]);
    }
}
