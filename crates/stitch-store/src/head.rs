//! The in-memory head: every acknowledged span that is not yet in a block, indexed by trace id.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use stitch_model::{Batch, ResourceSpans, SpanRef, Trace, TraceId};

use stitch_query::{Operation, SearchQuery};

/// The spans of one trace that are in the head.
#[derive(Debug, Default)]
pub struct HeadTrace {
    pub fragments: Vec<ResourceSpans>,
    pub min_start: u64,
    pub max_end: u64,
}

/// An index from trace id to the spans received for it since the last flush.
#[derive(Debug)]
pub struct Head {
    pub traces: HashMap<TraceId, HeadTrace>,
    pub span_count: usize,
    /// A rough count of the bytes the head holds, to bound memory.
    pub approx_bytes: usize,
    /// The WAL segment that was active when this head was created; together with the segment
    /// that is active when it is frozen, the head holds exactly the records of those segments.
    pub first_segment: u64,
    /// The oldest WAL segment holding a span of this head (`u64::MAX` when empty). With tail
    /// sampling a head receives kept traces whose spans sit in segments older than
    /// `first_segment`; those segments must outlive the head (see [`crate::wal`]).
    pub min_source: u64,
    /// The store clock's time when this head became the active one.
    pub created_unix_nanos: u64,
    pub services: BTreeMap<String, BTreeSet<Operation>>,
}

impl Head {
    pub fn new(first_segment: u64, created_unix_nanos: u64) -> Head {
        Head {
            traces: HashMap::new(),
            span_count: 0,
            approx_bytes: 0,
            first_segment,
            min_source: u64::MAX,
            created_unix_nanos,
            services: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.span_count == 0
    }

    /// Adds a batch read from WAL segment `source`. `encoded_len` is the size of its wire
    /// encoding, used for memory accounting.
    pub fn insert(&mut self, batch: &Batch, encoded_len: usize, source: u64) {
        self.min_source = self.min_source.min(source);
        self.note_services(&batch.resource_spans);
        for (trace_id, fragment) in batch.split_by_trace() {
            self.add_fragments(trace_id, fragment);
        }
        // Decoded spans take a few times their protobuf size in memory.
        self.approx_bytes += encoded_len * 3;
    }

    /// Adds spans of one trace (a kept trace from the tail sampler) whose oldest span was
    /// read from WAL segment `source`. `approx_bytes` is their size in memory.
    pub fn insert_trace(
        &mut self,
        trace_id: TraceId,
        fragments: Vec<ResourceSpans>,
        approx_bytes: usize,
        source: u64,
    ) {
        self.min_source = self.min_source.min(source);
        self.note_services(&fragments);
        self.add_fragments(trace_id, fragments);
        self.approx_bytes += approx_bytes;
    }

    fn note_services(&mut self, resource_spans: &[ResourceSpans]) {
        let spans = resource_spans.iter().flat_map(|rs| {
            rs.scope_spans.iter().flat_map(move |ss| {
                ss.spans.iter().map(move |span| SpanRef {
                    resource: &rs.resource,
                    scope: &ss.scope,
                    span,
                })
            })
        });
        for s in spans {
            let service = s.service_name();
            let op = Operation {
                name: s.span.name.clone(),
                kind: s.span.kind,
            };
            match self.services.get_mut(service) {
                Some(ops) => {
                    if !ops.contains(&op) {
                        ops.insert(op);
                    }
                }
                None => {
                    self.services
                        .insert(service.to_owned(), BTreeSet::from([op]));
                }
            }
        }
    }

    fn add_fragments(&mut self, trace_id: TraceId, fragment: Vec<ResourceSpans>) {
        let entry = self.traces.entry(trace_id).or_insert_with(|| HeadTrace {
            fragments: Vec::new(),
            min_start: u64::MAX,
            max_end: 0,
        });
        for rs in &fragment {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    entry.min_start = entry.min_start.min(span.start_time_unix_nano);
                    entry.max_end = entry.max_end.max(span.end_time_unix_nano);
                    self.span_count += 1;
                }
            }
        }
        entry.fragments.extend(fragment);
    }

    /// The head's spans of one trace, appended to `into`.
    pub fn collect_trace(&self, id: TraceId, into: &mut Trace) -> bool {
        match self.traces.get(&id) {
            Some(t) => {
                into.extend(t.fragments.clone());
                true
            }
            None => false,
        }
    }

    /// Adds to `hits` the traces with a span matching `query`, keyed to the start of their
    /// latest matching span.
    pub fn search(&self, query: &SearchQuery, hits: &mut HashMap<TraceId, u64>) {
        for (id, t) in &self.traces {
            if !query.overlaps_time(t.min_start, t.max_end) {
                continue;
            }
            let mut best: Option<u64> = None;
            let spans = t.fragments.iter().flat_map(|rs| {
                rs.scope_spans.iter().flat_map(move |ss| {
                    ss.spans.iter().map(move |span| SpanRef {
                        resource: &rs.resource,
                        scope: &ss.scope,
                        span,
                    })
                })
            });
            for s in spans {
                if query.matches(&s) {
                    best = Some(best.map_or(s.span.start_time_unix_nano, |b| {
                        b.max(s.span.start_time_unix_nano)
                    }));
                }
            }
            if let Some(start) = best {
                let slot = hits.entry(*id).or_insert(start);
                *slot = (*slot).max(start);
            }
        }
    }
}
