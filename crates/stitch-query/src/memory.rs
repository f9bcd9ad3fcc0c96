//! An in-memory [`SpanSink`] and [`TraceReader`]: every span in a map, every question answered
//! by looking at all of them. For tests, and as the reference that faster readers must agree
//! with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;
use stitch_model::{Batch, Trace, TraceId};

use crate::{
    AppliedSpan, Operation, ReadError, SearchQuery, SpanSink, TraceObserver, TraceReader,
    WriteError,
};

/// Spans kept in memory. Cheap to clone; clones share the spans.
///
/// Two hooks serve tests of the crates above it: [`MemoryStore::searches`] lists the queries
/// it was asked, and [`MemoryStore::fail_reads`] makes every read fail.
#[derive(Clone, Default)]
pub struct MemoryStore {
    traces: Arc<RwLock<HashMap<TraceId, Trace>>>,
    observer: Option<Arc<dyn TraceObserver>>,
    searches: Arc<parking_lot::Mutex<Vec<SearchQuery>>>,
    failure: Arc<RwLock<Option<String>>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that reports the traces it stores to `observer`.
    pub fn with_observer(observer: Arc<dyn TraceObserver>) -> MemoryStore {
        observer.opened(0);
        MemoryStore {
            observer: Some(observer),
            ..MemoryStore::default()
        }
    }

    /// A store holding `traces`, each returned exactly as given (appends merge and
    /// deduplicate; these are taken as already whole).
    pub fn from_traces(traces: impl IntoIterator<Item = Trace>) -> MemoryStore {
        let store = MemoryStore::new();
        store
            .traces
            .write()
            .extend(traces.into_iter().map(|t| (t.trace_id, t)));
        store
    }

    /// The queries [`TraceReader::search`] was called with, oldest first.
    pub fn searches(&self) -> Vec<SearchQuery> {
        self.searches.lock().clone()
    }

    /// From now on every read fails with a storage error carrying `message` (`None`: reads
    /// work again).
    pub fn fail_reads(&self, message: Option<&str>) {
        *self.failure.write() = message.map(str::to_owned);
    }

    fn check(&self) -> Result<(), ReadError> {
        match &*self.failure.read() {
            Some(m) => Err(ReadError::storage(m.clone())),
            None => Ok(()),
        }
    }

    fn insert(&self, id: TraceId, fragments: Vec<stitch_model::ResourceSpans>) {
        let mut traces = self.traces.write();
        let trace = traces.entry(id).or_insert_with(|| Trace::new(id));
        trace.extend(fragments);
        trace.normalize();
    }
}

#[async_trait]
impl SpanSink for MemoryStore {
    async fn append(&self, batch: Batch, _received: Option<Vec<u8>>) -> Result<(), WriteError> {
        let applied: Vec<AppliedSpan> = batch.spans().map(|s| AppliedSpan::of(s.span)).collect();
        for (id, fragment) in batch.split_by_trace() {
            self.insert(id, fragment);
        }
        if let Some(o) = &self.observer {
            o.applied(&mut applied.into_iter());
        }
        Ok(())
    }
}

#[async_trait]
impl TraceReader for MemoryStore {
    async fn trace(&self, id: TraceId) -> Result<Option<Trace>, ReadError> {
        self.check()?;
        Ok(self.traces.read().get(&id).cloned())
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Trace>, ReadError> {
        self.check()?;
        self.searches.lock().push(query.clone());
        let traces = self.traces.read();
        let mut ranked: Vec<(u64, TraceId)> = traces
            .values()
            .filter_map(|t| {
                t.spans()
                    .filter(|s| query.matches(s))
                    .map(|s| s.span.start_time_unix_nano)
                    .max()
                    .map(|latest| (latest, t.trace_id))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.truncate(query.limit);
        Ok(ranked.iter().map(|(_, id)| traces[id].clone()).collect())
    }

    async fn services(&self) -> Result<Vec<String>, ReadError> {
        self.check()?;
        Ok(self.operations_by_service().into_keys().collect())
    }

    async fn operations(&self, service: &str) -> Result<Vec<Operation>, ReadError> {
        self.check()?;
        Ok(self
            .operations_by_service()
            .remove(service)
            .map(|ops| ops.into_iter().collect())
            .unwrap_or_default())
    }
}

impl MemoryStore {
    fn operations_by_service(&self) -> BTreeMap<String, BTreeSet<Operation>> {
        let mut all: BTreeMap<String, BTreeSet<Operation>> = BTreeMap::new();
        for t in self.traces.read().values() {
            for s in t.spans() {
                all.entry(s.service_name().to_owned())
                    .or_default()
                    .insert(Operation {
                        name: s.span.name.clone(),
                        kind: s.span.kind,
                    });
            }
        }
        all
    }
}
