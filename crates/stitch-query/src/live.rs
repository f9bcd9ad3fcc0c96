//! RED metrics and the service dependency graph, maintained as spans arrive.
//!
//! [`Live`] is a [`TraceObserver`]: the store tells it the id of every trace it makes visible
//! (all of them without tail sampling, the kept ones with it). A task ([`Live::spawn_feeder`])
//! wakes every second and adds each trace that has been quiet for [`LiveOptions::settle`] to a
//! [`RedAggregator`] and a [`DependencyGraph`] (`stitch-analysis`), reading it back through
//! the store's [`TraceReader`]. Both need the whole trace: whether a span is a request of its
//! service, and which spans form a call, depend on its parent.
//!
//! The traces due in a round are read together, in chunks of ids in order
//! ([`TraceReader::traces_from`]), from the earliest start among the spans the store reported
//! for them: a block is read once per chunk, and only blocks holding spans that started since
//! then are read at all, so the cost of a round follows the traffic, not the number of blocks
//! stored. Spans of a trace that started before all those reported, or before the hour the
//! buckets keep, may be left out of its context (and other traces of the same chunk may see
//! more): after a restart, a span whose parent was stored before it can count as an entry
//! span. A chunk that cannot be read stays pending and is read again after another settle
//! time.
//!
//! Spans that arrive after their trace was added (a slow root that ends long after its
//! children were exported) make the trace settle again; then only the spans not counted
//! before are added, and only the calls whose callee span is new. To tell them apart the task
//! remembers the span ids of each trace it added for [`LiveOptions::remember`] (at most
//! [`LiveOptions::max_remembered_spans`] ids; the oldest traces are forgotten first, and their
//! later spans would be counted as a new trace's).
//!
//! The numbers lag the arrival of spans by `settle` to `settle + 1 s`. They cover spans that
//! started after the newest span of the blocks that existed when the store opened
//! ([`LiveAggregates::since_unix_nanos`], from [`TraceObserver::opened`]; traces recovered from
//! the WAL are added), within the
//! buckets kept ([`LiveOptions::resolution`] × [`LiveOptions::buckets`], one hour by
//! default). The query API answers from them when they cover the window asked for and scans
//! stored traces otherwise.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use stitch_analysis::{DependencyGraph, GraphOptions, RedAggregator, RedOptions, TimeWindow};
use stitch_model::{Span, SpanId, Trace, TraceId};
use stitch_pipeline::SpanWeights;

use crate::{AppliedSpan, TraceObserver, TraceReader};

/// How the live aggregates are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveOptions {
    /// A trace is added once no span of it arrived for this long (default 5 s).
    pub settle: Duration,
    /// Width of a time bucket (default 10 s).
    pub resolution: Duration,
    /// Buckets kept (default 360: one hour at 10 s).
    pub buckets: usize,
    /// How long the span ids of an added trace are remembered to count late spans once
    /// (default 2 min).
    pub remember: Duration,
    /// The most span ids remembered (default 4 million, 32 MB).
    pub max_remembered_spans: usize,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            settle: Duration::from_secs(5),
            resolution: Duration::from_secs(10),
            buckets: 360,
            remember: Duration::from_secs(120),
            max_remembered_spans: 4_000_000,
        }
    }
}

/// RED and the dependency graph over recent traffic. See the module docs.
#[derive(Debug)]
pub struct LiveAggregates {
    /// RED per service (entry spans) and per operation, at [`LiveOptions::resolution`].
    pub red: RedAggregator,
    /// Calls between services, at [`LiveOptions::resolution`].
    pub graph: DependencyGraph,
    /// Spans that started at or after this (Unix nanoseconds) are all counted: just after the
    /// newest span in the blocks that existed when the store opened (0 for a new store).
    pub since_unix_nanos: u64,
    /// Buckets before this were pruned (kept: [`LiveOptions::buckets`] up to now).
    pub pruned_before_unix_nanos: u64,
    /// Traces added, and added again because late spans arrived.
    pub traces_added: u64,
    pub late_updates: u64,
    resolution_nanos: u64,
}

impl LiveAggregates {
    fn new(opts: &LiveOptions, since_unix_nanos: u64) -> LiveAggregates {
        let resolution_nanos = (opts.resolution.as_nanos() as u64).max(1);
        LiveAggregates {
            // Room beyond the pruned horizon for spans stamped in the future, so that they do
            // not push out buckets still covered.
            red: RedAggregator::new(RedOptions {
                resolution_nanos,
                max_buckets: opts.buckets + SLACK_BUCKETS,
                ..RedOptions::default()
            }),
            graph: DependencyGraph::new(GraphOptions {
                resolution_nanos,
                max_buckets: opts.buckets + SLACK_BUCKETS,
                ..GraphOptions::default()
            }),
            since_unix_nanos,
            pruned_before_unix_nanos: 0,
            traces_added: 0,
            late_updates: 0,
            resolution_nanos,
        }
    }

    pub fn resolution_nanos(&self) -> u64 {
        self.resolution_nanos
    }

    /// Whether every span that started in `window` is counted (as far as the spans have
    /// settled) and the buckets still hold it.
    pub fn covers(&self, window: TimeWindow) -> bool {
        window.start_unix_nano >= self.since_unix_nanos.max(self.pruned_before_unix_nanos)
    }

    /// Drops the buckets older than the kept horizon.
    fn prune(&mut self, now: u64, horizon_nanos: u64) {
        let before = now.saturating_sub(horizon_nanos);
        let before = before - before % self.resolution_nanos;
        if before > self.pruned_before_unix_nanos {
            self.red.prune_before(before);
            self.graph.prune_before(before);
            self.pruned_before_unix_nanos = before;
        }
    }

    /// A copy holding only the buckets that overlap `window` (see [`Live::view`]).
    fn window_copy(&self, window: TimeWindow) -> LiveAggregates {
        LiveAggregates {
            red: self.red.window_copy(window),
            graph: self.graph.window_copy(window),
            since_unix_nanos: self.since_unix_nanos,
            pruned_before_unix_nanos: self.pruned_before_unix_nanos,
            traces_added: self.traces_added,
            late_updates: self.late_updates,
            resolution_nanos: self.resolution_nanos,
        }
    }

    /// Adds the spans of `trace` not in `counted` (sorted). With `within`, RED takes only the
    /// spans starting in it (its buckets are by span start, and a view needs none beyond its
    /// window); calls are bucketed by their caller, and taken all.
    fn add_uncounted(
        &mut self,
        trace: &Trace,
        counted: Option<&[SpanId]>,
        within: Option<TimeWindow>,
    ) {
        let is_new = |s: &Span| counted.is_none_or(|c| c.binary_search(&s.span_id).is_err());
        let weights = SpanWeights::of(trace);
        let weight = |s: &Span| weights.weight(s);
        self.red.add_trace_where(trace, weight, |s| {
            is_new(s.span) && within.is_none_or(|w| w.contains(s.span.start_time_unix_nano))
        });
        self.graph.add_trace_where(trace, weight, is_new);
    }

    /// Adds the spans of `trace` not in `counted` (sorted); returns the span ids now counted.
    fn add(&mut self, trace: &Trace, counted: Option<&[SpanId]>) -> Vec<SpanId> {
        self.add_uncounted(trace, counted, None);
        if counted.is_some() {
            self.late_updates += 1;
        } else {
            self.traces_added += 1;
        }
        let mut ids: Vec<SpanId> = trace.spans().map(|s| s.span.span_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Buckets kept beyond [`LiveOptions::buckets`] for spans stamped ahead of the clock.
const SLACK_BUCKETS: usize = 64;

/// The live aggregates of a store, shared by the task that feeds them and the readers.
#[derive(Debug)]
pub struct Live {
    aggregates: Mutex<LiveAggregates>,
    /// Which traces wait to settle and which spans of each added trace are counted. Lock
    /// order: `feeder`, then `touched`, then `aggregates`.
    feeder: Mutex<Feeder>,
    /// Spans put into the head since the task last looked, a trace's consecutive spans as one
    /// mark (its own lock, held briefly: the WAL writer never waits for the feeder or a
    /// reader).
    touched: Mutex<Vec<AppliedSpan>>,
    opts: LiveOptions,
}

/// Traces whose spans are not all in the aggregates yet, as [`Live::pending`] lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Trace ids, at most the number asked for, the most recently touched first.
    pub traces: Vec<TraceId>,
    /// Pending traces beyond those listed.
    pub left_out: usize,
}

impl TraceObserver for Live {
    fn opened(&self, since_unix_nanos: u64) {
        self.aggregates.lock().since_unix_nanos = since_unix_nanos;
    }

    fn applied(&self, spans: &mut dyn Iterator<Item = AppliedSpan>) {
        self.touch(spans);
    }
}

/// How far the feeding task is behind, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Traces touched since the task last looked.
    pub touched: usize,
    /// Traces waiting to settle or to be read and added.
    pub waiting: usize,
    /// Entries of the settle queue (a trace touched again is in it more than once).
    pub queued: usize,
    /// Span ids remembered to count late spans once.
    pub remembered_spans: usize,
}

impl Live {
    /// How far the feeding task is behind.
    pub fn backlog(&self) -> Backlog {
        let feeder = self.feeder.lock();
        Backlog {
            touched: self.touched.lock().len(),
            waiting: feeder.waiting.len(),
            queued: feeder.queue.len(),
            remembered_spans: feeder.remembered_spans,
        }
    }

    /// Empty aggregates that count everything from the start of time until the store says
    /// otherwise ([`TraceObserver::opened`]).
    pub fn new(opts: LiveOptions) -> Live {
        Live {
            aggregates: Mutex::new(LiveAggregates::new(&opts, 0)),
            feeder: Mutex::new(Feeder::default()),
            touched: Mutex::new(Vec::new()),
            opts,
        }
    }

    /// Starts the task that adds settled traces, read through `reader`, on the current Tokio
    /// runtime. It holds neither strongly (the store holds `self` as its observer, so a strong
    /// reader would keep the store alive forever): it stops once `self` or the last clone of
    /// `reader` is dropped, so keep `reader` for as long as the aggregates are used.
    pub fn spawn_feeder(self: &Arc<Self>, reader: &Arc<dyn TraceReader>) {
        tokio::spawn(feed(Arc::downgrade(self), Arc::downgrade(reader)));
    }

    /// Runs `f` on the aggregates (under a lock: keep it short). They hold the settled traces;
    /// [`Live::view`] adds the rest.
    pub fn with<R>(&self, f: impl FnOnce(&LiveAggregates) -> R) -> R {
        f(&self.aggregates.lock())
    }

    /// Notes spans that arrived.
    pub fn touch(&self, spans: impl IntoIterator<Item = AppliedSpan>) {
        let mut t = self.touched.lock();
        for span in spans {
            match t.last_mut() {
                Some(last) if last.trace_id == span.trace_id => {
                    last.start_unix_nanos = last.start_unix_nanos.min(span.start_unix_nanos);
                }
                _ => t.push(span),
            }
        }
    }

    /// Traces that received spans the aggregates do not count yet (they wait to settle), at
    /// most `max` of them.
    pub fn pending(&self, max: usize) -> Pending {
        let feeder = self.feeder.lock();
        // The WAL writer takes this lock for every group it applies: hold it for a copy only.
        let touched: Vec<TraceId> = self.touched.lock().iter().map(|s| s.trace_id).collect();
        // Queue entries of traces touched again later are stale; the traces the feeder is
        // reading right now have left the queue but not `waiting`.
        let waiting = feeder
            .queue
            .iter()
            .rev()
            .filter(|(t, id)| feeder.waiting.get(id).is_some_and(|w| w.at == *t))
            .map(|&(_, id)| id)
            .chain(
                feeder
                    .in_flight
                    .iter()
                    .copied()
                    .filter(|id| feeder.waiting.contains_key(id)),
            );
        let mut seen = HashSet::new();
        let mut traces = Vec::new();
        for id in touched.iter().rev().copied().chain(waiting) {
            if seen.insert(id) && traces.len() < max {
                traces.push(id);
            }
        }
        Pending {
            left_out: seen.len() - traces.len(),
            traces,
        }
    }

    /// What readers answer from: a copy of the aggregates' buckets that overlap `window`, with
    /// the spans of `traces` (read after [`Live::pending`] listed them) that the aggregates do
    /// not count yet. A trace the feeder added in the meantime is taken from the aggregates
    /// alone, so no span counts twice.
    pub fn view(&self, window: TimeWindow, traces: &[Trace]) -> LiveAggregates {
        // Under the feeder's lock (the feeder cannot add anything meanwhile): a copy of the
        // aggregates, and for each trace whether it is still pending and which of its spans
        // are counted. The spans are added to the copy after the locks are released.
        let (mut view, to_add) = {
            let feeder = self.feeder.lock();
            let touched: HashSet<TraceId> =
                self.touched.lock().iter().map(|s| s.trace_id).collect();
            let view = self.aggregates.lock().window_copy(window);
            let to_add: Vec<(&Trace, Option<Vec<SpanId>>)> = traces
                .iter()
                .filter(|t| {
                    feeder.waiting.contains_key(&t.trace_id) || touched.contains(&t.trace_id)
                })
                .map(|t| (t, feeder.counted.get(&t.trace_id).map(|c| c.spans.clone())))
                .collect();
            (view, to_add)
        };
        for (trace, counted) in to_add {
            view.add_uncounted(trace, counted.as_deref(), Some(window));
        }
        view
    }
}

/// What the feeding task keeps between rounds, shared with readers through [`Live::feeder`].
#[derive(Debug, Default)]
struct Feeder {
    /// The traces not yet (wholly) in the aggregates, and the spans they received.
    waiting: HashMap<TraceId, Waiting>,
    /// (touch time, trace), oldest first; stale entries are skipped.
    queue: VecDeque<(u64, TraceId)>,
    /// Settled traces taken off the queue that the feeder is reading and adding.
    in_flight: Vec<TraceId>,
    /// What is counted of each added trace.
    counted: HashMap<TraceId, Counted>,
    counted_order: VecDeque<(u64, TraceId)>,
    remembered_spans: usize,
}

/// A trace waiting to settle.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    /// When it last received spans.
    at: u64,
    /// The earliest start among the spans it received while waiting.
    from: u64,
}

/// What the feeder remembers of a trace it added.
#[derive(Debug)]
struct Counted {
    /// When it was added.
    at: u64,
    /// The earliest start among the spans reported for it.
    from: u64,
    /// The span ids counted, sorted.
    spans: Vec<SpanId>,
}

impl Feeder {
    fn forget(&mut self, now: u64, opts: &LiveOptions) {
        let remember = opts.remember.as_nanos() as u64;
        while let Some(&(t, id)) = self.counted_order.front() {
            let expired = t.saturating_add(remember) <= now;
            if !expired && self.remembered_spans <= opts.max_remembered_spans {
                break;
            }
            self.counted_order.pop_front();
            if self.counted.get(&id).is_some_and(|c| c.at == t)
                && let Some(c) = self.counted.remove(&id)
            {
                self.remembered_spans -= c.spans.len();
            }
        }
    }
}

/// The task that feeds `live`, reading settled traces through `reader`, until either is
/// dropped.
///
/// A settled trace leaves `waiting` only once it is in the aggregates, so a reader finds
/// each acknowledged span in one of the two ([`Live::view`]).
async fn feed(live: Weak<Live>, reader: Weak<dyn TraceReader>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(live) = live.upgrade() else { return };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let settle = live.opts.settle.as_nanos() as u64;
        let horizon =
            (live.opts.resolution.as_nanos() as u64).saturating_mul(live.opts.buckets as u64);
        // Spans that started before the buckets kept are not read back for context: one span
        // stamped a day early would otherwise send a whole chunk through a day of blocks.
        let floor = now.saturating_sub(horizon);
        // (touch time, trace, read from), in trace id order.
        let due = {
            let mut feeder = live.feeder.lock();
            let touched = std::mem::take(&mut *live.touched.lock());
            for span in touched {
                // One queue entry per trace and round.
                let first_this_round = match feeder.waiting.entry(span.trace_id) {
                    Entry::Occupied(mut e) => {
                        let w = e.get_mut();
                        w.from = w.from.min(span.start_unix_nanos);
                        std::mem::replace(&mut w.at, now) != now
                    }
                    Entry::Vacant(e) => {
                        e.insert(Waiting {
                            at: now,
                            from: span.start_unix_nanos,
                        });
                        true
                    }
                };
                if first_this_round {
                    feeder.queue.push_back((now, span.trace_id));
                }
            }
            let mut due = Vec::new();
            while let Some(&(t, id)) = feeder.queue.front() {
                if t.saturating_add(settle) > now {
                    break;
                }
                feeder.queue.pop_front();
                if let Some(w) = feeder.waiting.get(&id)
                    && w.at == t
                {
                    // A trace added before is read from the earliest of its spans the
                    // feeder knows, so that its late spans are placed in the whole trace.
                    let from = feeder
                        .counted
                        .get(&id)
                        .map_or(w.from, |c| c.from.min(w.from));
                    due.push((t, id, from.max(floor)));
                }
            }
            due.sort_unstable_by_key(|&(_, id, _)| id);
            feeder.in_flight = due.iter().map(|&(_, id, _)| id).collect();
            due
        };
        for chunk in due.chunks(READ_CHUNK) {
            let Some(reader) = reader.upgrade() else {
                return;
            };
            let ids: Vec<TraceId> = chunk.iter().map(|&(_, id, _)| id).collect();
            let from = chunk.iter().map(|&(_, _, from)| from).min().unwrap_or(0);
            let read = reader.traces_from(&ids, from).await;
            drop(reader);
            let traces = match read {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(traces = ids.len(), error = %e, "live aggregates: cannot read traces; trying again");
                    // Nothing of the chunk is dropped: its traces stay pending and are read
                    // again after another settle time.
                    let mut guard = live.feeder.lock();
                    let feeder = &mut *guard;
                    for &(t, id, _) in chunk {
                        if let Some(w) = feeder.waiting.get_mut(&id)
                            && w.at == t
                        {
                            w.at = now;
                            feeder.queue.push_back((now, id));
                        }
                    }
                    continue;
                }
            };
            let mut traces = traces.into_iter().peekable();
            let mut feeder = live.feeder.lock();
            for &(t, id, from) in chunk {
                if let Some(trace) = traces.next_if(|tr| tr.trace_id == id) {
                    let counted = feeder.counted.remove(&id);
                    if let Some(c) = &counted {
                        feeder.remembered_spans -= c.spans.len();
                    }
                    let mut spans = live
                        .aggregates
                        .lock()
                        .add(&trace, counted.as_ref().map(|c| c.spans.as_slice()));
                    // A read from a later start may miss spans counted before: keep them.
                    if let Some(c) = counted {
                        spans.extend(c.spans);
                        spans.sort_unstable();
                        spans.dedup();
                    }
                    feeder.remembered_spans += spans.len();
                    feeder.counted.insert(
                        id,
                        Counted {
                            at: now,
                            from,
                            spans,
                        },
                    );
                    feeder.counted_order.push_back((now, id));
                }
                if feeder.waiting.get(&id).is_some_and(|w| w.at == t) {
                    feeder.waiting.remove(&id);
                }
            }
        }
        let mut feeder = live.feeder.lock();
        feeder.in_flight.clear();
        feeder.forget(now, &live.opts);
        live.aggregates.lock().prune(now, horizon);
        if feeder.waiting.capacity() > 4096 && feeder.waiting.len() < feeder.waiting.capacity() / 4
        {
            feeder.waiting.shrink_to_fit();
        }
    }
}

/// Traces read back in one call: a chunk of ids in order covers a slice of each block's
/// trace-id range, so the chunks of a round read each block's pages about once between them.
const READ_CHUNK: usize = 1024;
