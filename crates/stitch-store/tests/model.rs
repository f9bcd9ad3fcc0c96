//! A model-based test: random sequences of appends, redeliveries, flushes, crashes and queries
//! run against the store and against a plain map of what was acknowledged; every query must
//! return exactly the map's spans for that trace.
//!
//! The second property adds storage faults: a simulated disk (installed through the store's
//! fault hook) that fills up, frees space, and fails any write step (creating, writing,
//! syncing, cutting back, renaming or removing a WAL segment, syncing a directory, writing or
//! syncing a block) with `ENOSPC` or `EIO`, or tears a write, during appends, rotation,
//! flushes and recovery. Appends may then be refused; the check becomes: every acknowledged
//! span is returned, and nothing is returned that was not at least sent.
//!
//! Each incarnation of the store runs in its own Tokio runtime. A crash drops the store and then
//! shuts its runtime down, which cancels a block flush that is still under way wherever it
//! happens to be, as a `kill -9` would.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, SpanId, SpanKind,
    TraceId,
};
use stitch_query::conformance::spans_of;
use stitch_query::{SearchQuery, TraceReader};
use stitch_store::disk::{FaultInjector, IoStep};
use stitch_store::{Store, StoreConfig, StoreError};
use tokio::runtime::Runtime;

const SERVICES: [&str; 3] = ["alpha", "beta", "gamma"];

#[derive(Clone, Debug)]
struct SpanSpec {
    service: usize,
    name: u8,
    kind: i32,
    duration: u64,
    attribute: Option<AnyValue>,
    with_event: bool,
    child: bool,
}

#[derive(Clone, Debug)]
struct TraceSpec {
    /// Add to a trace that already has spans, when there is one.
    existing: Option<Index>,
    spans: Vec<SpanSpec>,
}

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<TraceSpec>),
    /// Append again a batch that was appended before.
    Redeliver(Index),
    Flush,
    /// Crash and reopen; with `garbage`, bytes of a write that never completed follow the
    /// last record of the newest WAL segment.
    Crash {
        garbage: bool,
    },
    Query(Index),
    QueryUnknown,
    /// Fail the `skip`-th next occurrence of a write step (see [`SimDisk`]).
    Arm(Fault),
    /// The disk has only this many bytes left.
    Fill(u16),
    /// The disk has room again.
    Free,
}

const STEPS: [IoStep; 9] = [
    IoStep::WalCreate,
    IoStep::WalRename,
    IoStep::WalWrite,
    IoStep::WalSync,
    IoStep::WalTruncate,
    IoStep::WalRemove,
    IoStep::DirSync,
    IoStep::BlockWrite,
    IoStep::BlockSync,
];

/// Free bytes the store keeps in reserve in the fault property.
const RESERVE: u64 = 600;

fn fault() -> impl Strategy<Value = Fault> {
    (
        proptest::sample::select(STEPS.to_vec()),
        0..3u8,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(step, skip, no_space, torn)| Fault {
            step,
            skip,
            no_space,
            torn,
        })
}

fn op_with_faults() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => op(),
        3 => fault().prop_map(Op::Arm),
        1 => (0..3000u16).prop_map(Op::Fill),
        1 => Just(Op::Free),
    ]
}

fn span_spec() -> impl Strategy<Value = SpanSpec> {
    let attribute = proptest::option::of(prop_oneof![
        any::<i64>().prop_map(AnyValue::Int),
        "[a-z]{0,6}".prop_map(AnyValue::String),
        any::<bool>().prop_map(AnyValue::Bool),
        (-1e6f64..1e6).prop_map(AnyValue::Double),
        vec(any::<u8>(), 0..4).prop_map(AnyValue::Bytes),
    ]);
    (
        0..SERVICES.len(),
        0..3u8,
        0..=5i32,
        0..10 * MILLI,
        attribute,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(service, name, kind, duration, attribute, with_event, child)| SpanSpec {
                service,
                name,
                kind,
                duration,
                attribute,
                with_event,
                child,
            },
        )
}

fn trace_spec() -> impl Strategy<Value = TraceSpec> {
    (
        proptest::option::weighted(0.4, any::<Index>()),
        vec(span_spec(), 1..4),
    )
        .prop_map(|(existing, spans)| TraceSpec { existing, spans })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => vec(trace_spec(), 1..4).prop_map(Op::Append),
        1 => any::<Index>().prop_map(Op::Redeliver),
        2 => Just(Op::Flush),
        2 => any::<bool>().prop_map(|garbage| Op::Crash { garbage }),
        4 => any::<Index>().prop_map(Op::Query),
        1 => Just(Op::QueryUnknown),
    ]
}

type SpanMap = BTreeMap<TraceId, BTreeMap<SpanId, (String, Span)>>;

struct Harness {
    dir: tempfile::TempDir,
    config: StoreConfig,
    runtime: Option<Runtime>,
    store: Option<Store>,
    /// Every acknowledged span, by trace and span id, with its service.
    reference: SpanMap,
    /// Every span sent, acknowledged or not (with faults, a refused append may still have
    /// reached the WAL).
    sent: SpanMap,
    /// The simulated disk, when faults are on.
    disk: Option<Arc<SimDisk>>,
    batches: Vec<Batch>,
    resources: Vec<Arc<Resource>>,
    next_trace: u64,
    next_span: u64,
    t0: u64,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl Harness {
    fn new() -> Harness {
        Harness::open(None)
    }

    /// A harness whose store writes through a [`SimDisk`], with `fdatasync` on so that sync
    /// failures are exercised too.
    fn with_faults() -> Harness {
        Harness::open(Some(Arc::new(SimDisk::default())))
    }

    fn open(disk: Option<Arc<SimDisk>>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        // Small heads, so that appends also freeze heads and flush them in the background.
        config.head_max_spans = 8;
        if let Some(d) = &disk {
            config.fsync = true;
            config.min_free_bytes = Some(RESERVE);
            config.faults = Some(d.clone() as Arc<dyn FaultInjector>);
        }
        let runtime = runtime();
        let store = runtime.block_on(Store::open(config.clone())).unwrap();
        Harness {
            dir,
            config,
            runtime: Some(runtime),
            store: Some(store),
            reference: BTreeMap::new(),
            sent: BTreeMap::new(),
            disk,
            batches: Vec::new(),
            resources: SERVICES.iter().map(|s| resource(s)).collect(),
            next_trace: 0,
            next_span: 0,
            t0: now_nanos() - 3600 * SECOND,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.as_ref().unwrap().block_on(f)
    }

    fn build_batch(&mut self, traces: &[TraceSpec]) -> Batch {
        let known: Vec<TraceId> = self.reference.keys().copied().collect();
        let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
        for t in traces {
            let id = match (&t.existing, known.is_empty()) {
                (Some(i), false) => *i.get(&known),
                _ => {
                    self.next_trace += 1;
                    trace_id(self.next_trace)
                }
            };
            let mut parent = None;
            for s in &t.spans {
                self.next_span += 1;
                let start = self.t0 + self.next_span * MILLI;
                let mut sp = span(
                    id,
                    span_id(self.next_span),
                    &format!("op-{}", s.name),
                    start,
                    s.duration,
                );
                sp.kind = SpanKind::from_i32(s.kind).unwrap();
                if s.child {
                    sp.parent_span_id = parent;
                }
                if let Some(v) = &s.attribute {
                    sp.attributes.push(KeyValue {
                        key: "attr".into(),
                        value: v.clone(),
                    });
                }
                if s.with_event {
                    sp.events.push(Event {
                        time_unix_nano: start + 1,
                        name: "event".into(),
                        attributes: vec![KeyValue::new("n", self.next_span as i64)],
                        dropped_attributes_count: 0,
                    });
                }
                parent = Some(sp.span_id);
                by_service[s.service].push(sp);
            }
        }
        Batch {
            resource_spans: by_service
                .into_iter()
                .enumerate()
                .filter(|(_, spans)| !spans.is_empty())
                .map(|(i, spans)| ResourceSpans {
                    resource: self.resources[i].clone(),
                    scope_spans: vec![ScopeSpans {
                        scope: scope("model"),
                        spans,
                    }],
                })
                .collect(),
        }
    }

    fn append(&mut self, batch: Batch) {
        let acked = if self.disk.is_none() {
            self.block_on(append(self.store(), &batch));
            true
        } else {
            let payload = stitch_wire::otlp::encode_batch(&batch);
            match self.block_on(self.store().append(payload, batch.clone())) {
                Ok(()) => true,
                Err(
                    StoreError::DiskFull { .. }
                    | StoreError::WalUnavailable(_)
                    | StoreError::WalWrite(_)
                    | StoreError::FlushBacklog,
                ) => false,
                Err(e) => panic!("an append failed with a non-retryable error: {e}"),
            }
        };
        for s in batch.spans() {
            let entry = (s.service_name().to_owned(), s.span.clone());
            if acked {
                self.reference
                    .entry(s.span.trace_id)
                    .or_default()
                    .insert(s.span.span_id, entry.clone());
            }
            self.sent
                .entry(s.span.trace_id)
                .or_default()
                .insert(s.span.span_id, entry);
        }
        self.batches.push(batch);
    }

    /// Takes every armed fault away and gives the disk room again.
    fn heal(&self) {
        if let Some(d) = &self.disk {
            let mut st = d.state.lock().unwrap();
            st.armed.clear();
            st.room = None;
        }
    }

    /// Opens the store again; with faults a recovery step may fail, and then the store must
    /// open once the disk is healed.
    fn reopen(&mut self) {
        let runtime = runtime();
        let store = match runtime.block_on(Store::open(self.config.clone())) {
            Ok(s) => s,
            Err(e) => {
                assert!(self.disk.is_some(), "the store did not open: {e}");
                assert!(
                    e.to_string()
                        .contains(&self.dir.path().display().to_string()),
                    "a failed open names the file: {e}"
                );
                self.heal();
                runtime.block_on(Store::open(self.config.clone())).unwrap()
            }
        };
        self.store = Some(store);
        self.runtime = Some(runtime);
    }

    fn crash(&mut self, garbage: bool) {
        let store = self.store.take().unwrap();
        // An empty append passes through the WAL writer after the work that followed the last
        // acknowledgement (a head rotation), so that the writer has nothing left to do when
        // the store goes away and cannot race with the next incarnation.
        let empty = Batch::default();
        let synced = self.block_on(store.append(stitch_wire::otlp::encode_batch(&empty), empty));
        if self.disk.is_none() {
            synced.unwrap();
        }
        let gone = store.watch_gone();
        drop(store);
        self.runtime
            .take()
            .unwrap()
            .shutdown_timeout(Duration::from_secs(10));
        // The WAL writer may still be deleting segments a finished flush made obsolete.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !gone.is_gone() {
            assert!(
                std::time::Instant::now() < deadline,
                "the store's WAL writer did not stop"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // (With faults, a store that could not make a segment may have none.)
        if garbage && let Some(newest) = wal_segments(self.dir.path()).pop() {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(newest)
                .unwrap();
            f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 0x0a]).unwrap();
        }
        self.reopen();
    }

    fn check_trace(&self, id: TraceId) {
        let got = self.block_on(self.store().trace(id)).unwrap();
        if self.disk.is_some() {
            return self.check_trace_between(id, got);
        }
        match self.reference.get(&id) {
            None => assert!(got.is_none(), "unknown trace {id:?} was found: {got:?}"),
            Some(spans) => {
                let got = got.unwrap_or_else(|| panic!("trace {id:?} is missing"));
                let want: Vec<(String, Span)> = spans.values().cloned().collect();
                assert_eq!(spans_of(&got), want, "trace {id:?}");
            }
        }
    }

    /// With faults: every acknowledged span of the trace is there, once, and every span there
    /// was sent.
    fn check_trace_between(&self, id: TraceId, got: Option<stitch_model::Trace>) {
        let got: Vec<(String, Span)> = got.map(|t| spans_of(&t)).unwrap_or_default();
        let got_ids: BTreeSet<SpanId> = got.iter().map(|(_, s)| s.span_id).collect();
        assert_eq!(got_ids.len(), got.len(), "trace {id:?} has a span twice");
        if let Some(acked) = self.reference.get(&id) {
            for (span_id, want) in acked {
                let found = got.iter().find(|(_, s)| s.span_id == *span_id);
                assert_eq!(
                    found,
                    Some(want),
                    "acknowledged span {span_id:?} of trace {id:?} was lost"
                );
            }
        }
        let sent = self.sent.get(&id);
        for g in &got {
            assert_eq!(
                sent.and_then(|m| m.get(&g.1.span_id)),
                Some(g),
                "trace {id:?} holds a span that was never sent"
            );
        }
    }

    fn check_everything(&self) {
        for id in self.reference.keys() {
            self.check_trace(*id);
        }
        let store = self.store();
        let services_of = |map: &SpanMap| -> BTreeSet<String> {
            map.values()
                .flat_map(|spans| spans.values().map(|(svc, _)| svc.clone()))
                .collect()
        };
        let services = services_of(&self.reference);
        let got = self.block_on(store.services()).unwrap();
        if self.disk.is_none() {
            assert_eq!(got, services.iter().cloned().collect::<Vec<_>>());
        } else {
            let got: BTreeSet<String> = got.into_iter().collect();
            assert!(services.is_subset(&got) && got.is_subset(&services_of(&self.sent)));
        }
        for svc in &services {
            let query = SearchQuery {
                service: Some(svc.clone()),
                limit: 10_000,
                ..Default::default()
            };
            let found = self.block_on(store.search(&query)).unwrap();
            let got: BTreeSet<TraceId> = found.iter().map(|t| t.trace_id).collect();
            assert_eq!(got.len(), found.len(), "a trace was returned twice");
            let with_service = |map: &SpanMap| -> BTreeSet<TraceId> {
                map.iter()
                    .filter(|(_, spans)| spans.values().any(|(s, _)| s == svc))
                    .map(|(id, _)| *id)
                    .collect()
            };
            let want = with_service(&self.reference);
            if self.disk.is_none() {
                assert_eq!(got, want, "search for service {svc}");
            } else {
                assert!(want.is_subset(&got), "search for service {svc} lost traces");
                assert!(
                    got.is_subset(&with_service(&self.sent)),
                    "search for service {svc} found traces never sent"
                );
            }
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Append(traces) => {
                let batch = self.build_batch(traces);
                self.append(batch);
            }
            Op::Redeliver(i) => {
                if !self.batches.is_empty() {
                    let batch = i.get(&self.batches).clone();
                    self.append(batch);
                }
            }
            Op::Flush if self.disk.is_none() => self.block_on(self.store().flush()).unwrap(),
            Op::Flush => {
                // A full or failing disk may hold the block back (the flusher retries), or
                // the head cannot be frozen yet; neither may lose anything.
                let flushed = self.block_on(async {
                    tokio::time::timeout(Duration::from_secs(1), self.store().flush()).await
                });
                if let Ok(Err(e)) = flushed {
                    assert!(
                        matches!(e, StoreError::FlushPostponed(_)),
                        "flush failed with {e}"
                    );
                }
            }
            Op::Crash { garbage } => self.crash(*garbage),
            Op::Query(i) => {
                let known: Vec<TraceId> = self.reference.keys().copied().collect();
                if !known.is_empty() {
                    self.check_trace(*i.get(&known));
                }
            }
            Op::QueryUnknown => self.check_trace(trace_id(u64::MAX - self.next_trace)),
            Op::Arm(f) => {
                let d = self.disk.as_ref().expect("faults need the simulated disk");
                d.state.lock().unwrap().armed.push(f.clone());
            }
            Op::Fill(room) => {
                let d = self.disk.as_ref().expect("faults need the simulated disk");
                d.state.lock().unwrap().room = Some(u64::from(*room));
            }
            Op::Free => {
                let d = self.disk.as_ref().expect("faults need the simulated disk");
                d.state.lock().unwrap().room = None;
            }
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        drop(self.store.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(10));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_returns_exactly_the_acknowledged_spans_across_flushes_and_crashes(
        ops in vec(op(), 1..=12)
    ) {
        let mut h = Harness::new();
        for op in &ops {
            h.run(op);
        }
        h.check_everything();
        h.crash(false);
        h.check_everything();
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_acknowledged_span_is_lost_to_a_full_or_failing_disk(
        ops in vec(op_with_faults(), 1..=24)
    ) {
        let mut h = Harness::with_faults();
        for op in &ops {
            h.run(op);
        }
        // Every acknowledged span is there while the faults last, after a crash with them
        // still in place (recovery itself may meet them), and after healing and a crash.
        h.check_everything();
        h.crash(false);
        h.check_everything();
        h.heal();
        h.crash(false);
        h.check_everything();
        // Healed, the store takes appends again by itself.
        let batch = h.build_batch(&[TraceSpec { existing: None, spans: vec![SpanSpec {
            service: 0, name: 0, kind: 1, duration: MILLI, attribute: None, with_event: false, child: false,
        }] }]);
        let store = h.store().clone();
        let accepted = h.block_on(async {
            for _ in 0..50 {
                let payload = stitch_wire::otlp::encode_batch(&batch);
                if store.append(payload, batch.clone()).await.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        });
        prop_assert!(accepted, "the store did not take appends again after the disk healed");
    }
}
