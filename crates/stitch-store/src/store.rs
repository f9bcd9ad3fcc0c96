//! The store: composes the WAL writer, the in-memory heads, the flusher and the block list.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use async_trait::async_trait;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use parking_lot::RwLock;
use stitch_model::{Batch, Trace, TraceId};
use stitch_query::{
    AppliedSpan, Operation, ReadError, SearchQuery, SpanSink, TraceObserver, TraceReader,
    WriteError,
};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::block::{self, BlockHandle};
use crate::clock::{Clock, SystemClock};
use crate::disk::{self, Disk, FaultInjector, IoStep};
use crate::head::Head;
use crate::sampling::SamplingStatus;
use crate::wal::{self, SegmentWriter};
use crate::writer::{Log, WalMsg};

/// How the store is laid out and bounded.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Root directory: `wal/` and `blocks/` live under it.
    pub data_dir: PathBuf,
    /// Flush the head to a block once it holds this many spans.
    pub head_max_spans: usize,
    /// Flush the head once its estimated memory exceeds this many bytes.
    pub head_max_bytes: usize,
    /// Flush the head once its oldest data is this old.
    pub head_max_age: Duration,
    /// Delete blocks whose newest span ended longer ago than this.
    pub retention: Duration,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Appends waiting for the WAL writer beyond this are refused with
    /// [`StoreError::Overloaded`].
    pub max_pending_appends: usize,
    /// `fdatasync` after every group of appends. Only tests and benchmarks turn this off.
    pub fsync: bool,
    /// Tail sampling (the `sampling` section of the config file). The default keeps every
    /// trace without buffering it.
    pub sampling: stitch_pipeline::SamplingConfig,
    /// Told which traces become visible (the live RED and dependency aggregates of
    /// `stitch-query` follow the data this way); `None`: nobody is told.
    pub observer: Option<Arc<dyn TraceObserver>>,
    /// Appends are refused while the file system holding `data_dir` has fewer bytes free;
    /// `None`: 5% of the file system, at most 128 MiB; `Some(0)` turns the check off
    /// ([`crate::disk`]).
    pub min_free_bytes: Option<u64>,
    /// At start-up, rewrite WAL segments damaged in the middle with every record that passes
    /// its checksum instead of refusing to start ([`wal::salvage_segment`]).
    pub wal_salvage: bool,
    /// Test hook that fails chosen writes ([`crate::disk`]); `None` in production.
    pub faults: Option<Arc<dyn FaultInjector>>,
    /// Memory for the Parquet footers of recently read blocks (default 64 MiB, about 180
    /// blocks of 250K spans); beyond it the least recently read are dropped and loaded
    /// again when needed ([`block::FooterCache`]). A store of 100M spans has some 400 blocks:
    /// about 144 MB keeps every footer in memory.
    pub footer_cache_bytes: usize,
    /// Where the writer thread reads the time ([`crate::clock`]): the system clock, or a
    /// [`crate::ManualClock`] in tests.
    pub clock: Arc<dyn Clock>,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            head_max_spans: 250_000,
            head_max_bytes: 256 * 1024 * 1024,
            head_max_age: Duration::from_secs(120),
            retention: Duration::from_secs(7 * 24 * 3600),
            retention_interval: Duration::from_secs(60),
            max_pending_appends: 4096,
            fsync: true,
            sampling: stitch_pipeline::SamplingConfig::default(),
            observer: None,
            min_free_bytes: None,
            wal_salvage: false,
            faults: None,
            footer_cache_bytes: 64 * 1024 * 1024,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Counters describing what the store has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub appends: AtomicU64,
    pub appended_spans: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_syncs: AtomicU64,
    pub overloaded: AtomicU64,
    pub blocks_written: AtomicU64,
    pub blocks_deleted: AtomicU64,
    pub flush_failures: AtomicU64,
    pub recovered_spans: AtomicU64,
    /// Spans of traces the tail sampler kept, put into the head.
    pub sampled_spans_stored: AtomicU64,
    /// WAL segments deleted because nothing in them is needed any more.
    pub wal_segments_deleted: AtomicU64,
    /// WAL writes or syncs that failed (each sealed its segment).
    pub wal_write_failures: AtomicU64,
    /// Appends refused at once because no segment could be written or the disk was below its
    /// reserve.
    pub refused_appends: AtomicU64,
    /// Times the free space fell below the reserve.
    pub disk_full_episodes: AtomicU64,
    /// Free bytes on the data directory's file system at the last check.
    pub disk_free_bytes: AtomicU64,
    /// The free-space reserve in bytes.
    pub disk_reserve_bytes: AtomicU64,
    /// 1 while appends are accepted, 0 while they are refused (full disk, no segment).
    pub wal_writable: AtomicU64,
}

pub(crate) struct Inner {
    pub config: StoreConfig,
    pub wal_dir: PathBuf,
    pub objects: Arc<dyn ObjectStore>,
    pub disk: Disk,
    pub active: RwLock<Head>,
    pub frozen: RwLock<Vec<Arc<Head>>>,
    pub blocks: RwLock<Vec<Arc<BlockHandle>>>,
    /// The Parquet footers of recently read blocks.
    pub footers: Arc<block::FooterCache>,
    pub stats: StoreStats,
    /// The oldest WAL segment holding a span the tail sampler has not decided (`u64::MAX`:
    /// none), published by the WAL writer.
    pub tail_watermark: AtomicU64,
    /// The segment the WAL writer appends to, or will make next when it has none.
    pub current_segment: AtomicU64,
    pub sampling: parking_lot::Mutex<SamplingStatus>,
    pub observer: Option<Arc<dyn TraceObserver>>,
}

/// The embedded trace store. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    tx: SyncSender<WalMsg>,
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir`, recovering every acknowledged span
    /// from blocks and the WAL. Must be called inside a Tokio runtime, which runs the flusher
    /// and retention tasks.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let wal_dir = config.data_dir.join("wal");
        let blocks_dir = config.data_dir.join("blocks");
        for dir in [&wal_dir, &blocks_dir] {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let objects: Arc<dyn ObjectStore> = Arc::new(
            LocalFileSystem::new_with_prefix(&config.data_dir).map_err(|e| StoreError::Object {
                path: config.data_dir.display().to_string(),
                source: e,
            })?,
        );

        let footers = Arc::new(block::FooterCache::new(config.footer_cache_bytes));
        let mut blocks = Vec::new();
        let mut wal_through = 0;
        for id in block::list_blocks(&objects).await? {
            match BlockHandle::load(objects.clone(), footers.clone(), &id).await {
                Ok(b) => {
                    wal_through = wal_through.max(b.meta.wal_through);
                    blocks.push(Arc::new(b));
                }
                Err(e) => tracing::error!(block = %id, error = %e, "skipping unreadable block"),
            }
        }

        let disk = open_disk(&config)?;
        let stats = StoreStats::default();
        stats
            .disk_reserve_bytes
            .store(disk.reserve, Ordering::Relaxed);
        // What failed attempts left behind: temporary segments, blocks without `meta.json`
        // (their spans are still in the WAL). Both only take space.
        if let Err(e) = wal::remove_temporary_files(&wal_dir, &disk) {
            tracing::warn!(error = %e, "cannot remove unfinished WAL segments");
        }
        remove_incomplete_blocks(&blocks_dir, &disk);
        let segments = wal::list_segments(&wal_dir)?;
        if config.wal_salvage {
            for &seg in &segments {
                let skipped = wal::salvage_segment(&wal_dir, seg, &disk)?;
                for s in &skipped {
                    tracing::warn!(
                        segment = %wal::segment_path(&wal_dir, seg).display(),
                        offset = s.offset,
                        bytes = s.len,
                        reason = %s.reason,
                        "salvage: dropped damaged bytes from a WAL segment"
                    );
                }
            }
        }
        let next_segment = segments.last().copied().unwrap_or(0).max(wal_through) + 1;
        let recovered = crate::sampling::replay(
            &wal_dir,
            &segments,
            wal_through,
            next_segment,
            &config.sampling,
            config.clock.clone(),
        )?;
        let head = recovered.head;
        let mut sampler = recovered.sampler;
        stats
            .recovered_spans
            .store(recovered.recovered_spans, Ordering::Relaxed);
        // Segments below every head's oldest source and below the oldest undecided span hold
        // nothing that is not in a block already (or was dropped). Failing to delete them
        // only costs space: they are deleted later.
        let keep_from = head
            .min_source
            .min(sampler.low_watermark_segment().unwrap_or(u64::MAX))
            .min(next_segment);
        let obsolete = segments.iter().filter(|&&seg| seg < keep_from);
        let deleted = obsolete
            .map(|&seg| wal::segment_path(&wal_dir, seg))
            .try_for_each(|path| disk.remove_file(IoStep::WalRemove, &path))
            .and_then(|()| disk.sync_dir(&wal_dir));
        if let Err(e) = deleted {
            tracing::warn!(error = %e, "cannot delete WAL segments already in blocks; will retry after the next flush");
        }
        if !head.is_empty() || recovered.undecided_traces > 0 {
            tracing::info!(
                spans = head.span_count,
                traces = head.traces.len(),
                undecided_traces = recovered.undecided_traces,
                undecided_spans = recovered.undecided_spans,
                "recovered spans from the write-ahead log"
            );
        }
        // On a full disk the store opens all the same: it serves what it has, refuses appends
        // and makes the segment once there is room (`writer::Log`).
        let segment = match SegmentWriter::create(&wal_dir, next_segment, &disk) {
            Ok(s) => Some(s),
            Err(StoreError::Io { source, .. }) if disk::is_no_space(&source) => {
                tracing::warn!(
                    dir = %wal_dir.display(),
                    "the disk is full: serving stored traces read-only; appends are refused until there is room"
                );
                None
            }
            Err(e) => return Err(e),
        };
        let log = Log::new(
            wal_dir.clone(),
            disk.clone(),
            segment,
            next_segment,
            wal_through,
            config.clock.unix_nanos(),
        );
        if let Some(o) = &config.observer {
            // Spans in blocks are not reported: observers cover what started after them.
            // Recovered traces are reported; older ones are in blocks.
            o.opened(blocks.iter().map(|b| b.meta.max_end + 1).max().unwrap_or(0));
            o.applied(&mut head.traces.iter().map(|(&trace_id, t)| AppliedSpan {
                trace_id,
                start_unix_nanos: t.min_start,
            }));
        }

        let inner = Arc::new(Inner {
            config: config.clone(),
            wal_dir,
            objects,
            disk,
            active: RwLock::new(head),
            frozen: RwLock::new(Vec::new()),
            blocks: RwLock::new(blocks),
            footers,
            stats,
            tail_watermark: AtomicU64::new(u64::MAX),
            current_segment: AtomicU64::new(next_segment),
            sampling: parking_lot::Mutex::new(SamplingStatus::default()),
            observer: config.observer.clone(),
        });
        sampler.publish(&inner.tail_watermark, &inner.sampling, true);
        let (tx, rx) = sync_channel(config.max_pending_appends);
        let (flush_tx, flush_rx) = tokio::sync::mpsc::unbounded_channel();
        {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("stitch-wal".into())
                .spawn(move || crate::writer::run(inner, rx, log, flush_tx, sampler))
                .map_err(|e| StoreError::io("stitch-wal thread", e))?;
        }
        tokio::spawn(crate::flush::flusher(inner.clone(), flush_rx));
        tokio::spawn(crate::flush::retention(Arc::downgrade(&inner)));
        Ok(Store { inner, tx })
    }

    /// Makes a batch durable and visible. `payload` is the batch encoded as an OTLP
    /// `ExportTraceServiceRequest` protobuf; it is what the WAL stores.
    ///
    /// Returns once the batch is on disk (and `fdatasync`ed), or at once with
    /// [`StoreError::Overloaded`] when too many appends are waiting, and with
    /// [`StoreError::DiskFull`] or [`StoreError::WalUnavailable`] while the disk is full or
    /// no segment can be written. Every error is worth retrying; none was acknowledged.
    pub async fn append(&self, payload: Vec<u8>, batch: Batch) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        match self.tx.try_send(WalMsg::Append {
            payload,
            batch,
            ack,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.inner.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Overloaded {
                    pending: self.inner.config.max_pending_appends,
                });
            }
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::WalClosed),
        }
        done.await.unwrap_or(Err(StoreError::WalClosed))
    }

    /// Freezes the current head and waits until it is written as a block.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done_tx, done) = oneshot::channel();
        self.tx
            .send(WalMsg::Flush { done: done_tx })
            .map_err(|_| StoreError::WalClosed)?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(StoreError::FlushPostponed(why)),
            Err(_) => Err(StoreError::WalClosed),
        }
    }

    /// Runs the tail sampler's timers against the store's clock now and returns once their
    /// decisions are in the head and the sampling status is published. The writer thread does
    /// this by itself when a decision is due; tests with a [`crate::ManualClock`] call it after
    /// moving the clock.
    pub async fn tick(&self) -> Result<(), StoreError> {
        let (done_tx, done) = oneshot::channel();
        self.tx
            .send(WalMsg::Tick { done: done_tx })
            .map_err(|_| StoreError::WalClosed)?;
        done.await.map_err(|_| StoreError::WalClosed)
    }

    /// Runs retention once, now.
    pub async fn enforce_retention(&self) -> Result<usize, StoreError> {
        crate::flush::enforce_retention(&self.inner).await
    }

    pub fn stats(&self) -> &StoreStats {
        &self.inner.stats
    }

    /// What the tail sampler is doing (updated by the WAL writer at most every 250 ms).
    pub fn sampling_status(&self) -> SamplingStatus {
        self.inner.sampling.lock().clone()
    }

    /// Spans in memory (active and flushing heads).
    pub fn head_spans(&self) -> usize {
        self.inner.active.read().span_count
            + self
                .inner
                .frozen
                .read()
                .iter()
                .map(|h| h.span_count)
                .sum::<usize>()
    }

    pub fn block_count(&self) -> usize {
        self.inner.blocks.read().len()
    }

    /// Memory the store holds for its blocks (see [`BlockMemory`]).
    pub fn block_memory(&self) -> BlockMemory {
        let footers = self.inner.footers.usage();
        BlockMemory {
            filter_bytes: self
                .inner
                .blocks
                .read()
                .iter()
                .map(|b| b.resident_bytes() as u64)
                .sum(),
            footer_bytes: footers.bytes,
            footer_blocks: footers.blocks,
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// Tells when nothing of this store runs any more: every clone dropped, its runtime shut
    /// down (ending the flusher) and the WAL writer thread finished. A test that reopens the
    /// same directory waits for it, as a restarted process would find its predecessor gone.
    pub fn watch_gone(&self) -> StoreGone {
        StoreGone(Arc::downgrade(&self.inner))
    }

    fn snapshot(&self) -> (Vec<Arc<Head>>, Vec<Arc<BlockHandle>>) {
        (
            self.inner.frozen.read().clone(),
            self.inner.blocks.read().clone(),
        )
    }
}

/// See [`Store::watch_gone`].
pub struct StoreGone(std::sync::Weak<Inner>);

impl StoreGone {
    pub fn is_gone(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// The disk with the configured fault hook and the free-space reserve.
fn open_disk(config: &StoreConfig) -> Result<Disk, StoreError> {
    let reserve = match config.min_free_bytes {
        Some(n) => n,
        None => {
            let (_, total) =
                disk::statvfs(&config.data_dir).map_err(|e| StoreError::io(&config.data_dir, e))?;
            disk::default_reserve(total)
        }
    };
    Ok(Disk::new(config.faults.clone(), reserve))
}

/// Removes block directories without `meta.json`: a flush that did not finish. Their spans
/// are still in the WAL, which is only deleted after a block is complete.
fn remove_incomplete_blocks(blocks_dir: &Path, disk: &Disk) {
    let Ok(entries) = std::fs::read_dir(blocks_dir) else {
        return;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir.is_dir() && !dir.join("meta.json").exists() {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(block = %dir.display(), error = %e, "cannot remove an unfinished block")
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            "removed unfinished blocks; their spans are replayed from the write-ahead log"
        );
        let _ = disk.sync_dir(blocks_dir);
    }
}

/// What the store keeps in memory for its blocks, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockMemory {
    /// Trace-id bloom filters, row-group indexes and page boundaries (every block's, always).
    pub filter_bytes: u64,
    /// Parquet footers and page indexes kept for reads ([`StoreConfig::footer_cache_bytes`]).
    pub footer_bytes: u64,
    /// Blocks whose Parquet footer is kept.
    pub footer_blocks: u64,
}

/// Every stored span of trace `id`: the active head, frozen heads, then blocks.
pub(crate) async fn read_trace(inner: &Inner, id: TraceId) -> Result<Option<Trace>, StoreError> {
    Ok(read_traces(inner, &[id], 0).await?.remove(&id))
}

/// The traces `ids` (sorted, without repeats) as the store holds them, from the heads and the
/// blocks; each block is read once for all of them. Ids the store does not hold are absent.
/// Blocks whose spans all started before `min_start` are skipped (0: none is).
pub(crate) async fn read_traces(
    inner: &Inner,
    ids: &[TraceId],
    min_start: u64,
) -> Result<HashMap<TraceId, Trace>, StoreError> {
    // In the order spans move (active head, frozen heads, blocks), so that a span moving on
    // meanwhile is seen twice (normalize drops the copy) rather than not at all.
    let mut found: HashMap<TraceId, Trace> = ids.iter().map(|&id| (id, Trace::new(id))).collect();
    {
        let active = inner.active.read();
        for (&id, trace) in found.iter_mut() {
            active.collect_trace(id, trace);
        }
    }
    let frozen = inner.frozen.read().clone();
    for h in &frozen {
        for (&id, trace) in found.iter_mut() {
            h.collect_trace(id, trace);
        }
    }
    let blocks = inner.blocks.read().clone();
    for b in blocks.iter().filter(|b| b.meta.max_start >= min_start) {
        b.collect_traces(ids, &mut found).await?;
    }
    found.retain(|_, t| !t.is_empty());
    for trace in found.values_mut() {
        trace.normalize();
    }
    Ok(found)
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> ReadError {
        ReadError::Storage(Box::new(e))
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> WriteError {
        match e {
            StoreError::Overloaded { .. } | StoreError::FlushBacklog => {
                WriteError::Overloaded(e.for_senders())
            }
            other => WriteError::Unavailable(other.for_senders()),
        }
    }
}

#[async_trait]
impl SpanSink for Store {
    async fn append(&self, batch: Batch, received: Option<Vec<u8>>) -> Result<(), WriteError> {
        let payload = received.unwrap_or_else(|| stitch_wire::otlp::encode_batch(&batch));
        Ok(Store::append(self, payload, batch).await?)
    }
}

#[async_trait]
impl TraceReader for Store {
    async fn trace(&self, id: TraceId) -> Result<Option<Trace>, ReadError> {
        Ok(read_trace(&self.inner, id).await?)
    }

    async fn traces_from(
        &self,
        ids: &[TraceId],
        min_start_unix_nanos: u64,
    ) -> Result<Vec<Trace>, ReadError> {
        let mut found = read_traces(&self.inner, ids, min_start_unix_nanos).await?;
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Trace>, ReadError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut hits: HashMap<TraceId, u64> = HashMap::new();
        self.inner.active.read().search(query, &mut hits);
        let (frozen, mut blocks) = self.snapshot();
        for h in &frozen {
            h.search(query, &mut hits);
        }
        // Newest blocks first; once `limit` traces have matched later than anything an older
        // block holds starts, the older blocks cannot change the answer.
        blocks.sort_by_key(|b| std::cmp::Reverse(b.meta.max_start));
        for b in &blocks {
            if hits.len() >= query.limit {
                let mut keys: Vec<u64> = hits.values().copied().collect();
                let (_, kth, _) = keys.select_nth_unstable_by(query.limit - 1, |a, b| b.cmp(a));
                if b.meta.max_start < *kth {
                    break;
                }
            }
            b.search(query, &mut hits).await?;
        }
        let mut ranked: Vec<(TraceId, u64)> = hits.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(query.limit);
        let mut ids: Vec<TraceId> = ranked.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        let mut found = read_traces(&self.inner, &ids, 0).await?;
        Ok(ranked
            .iter()
            .filter_map(|(id, _)| found.remove(id))
            .collect())
    }

    async fn services(&self) -> Result<Vec<String>, ReadError> {
        Ok(self.all_operations().into_keys().collect())
    }

    async fn operations(&self, service: &str) -> Result<Vec<Operation>, ReadError> {
        Ok(self
            .all_operations()
            .remove(service)
            .map(|ops| ops.into_iter().collect())
            .unwrap_or_default())
    }
}

impl Store {
    fn all_operations(&self) -> BTreeMap<String, BTreeSet<Operation>> {
        let mut all: BTreeMap<String, BTreeSet<Operation>> = BTreeMap::new();
        let mut merge = |svc: &str, op: Operation| match all.get_mut(svc) {
            Some(set) => {
                set.insert(op);
            }
            None => {
                all.insert(svc.to_owned(), BTreeSet::from([op]));
            }
        };
        {
            let head = self.inner.active.read();
            for (svc, ops) in &head.services {
                for op in ops {
                    merge(svc, op.clone());
                }
            }
        }
        let (frozen, blocks) = self.snapshot();
        for h in &frozen {
            for (svc, ops) in &h.services {
                for op in ops {
                    merge(svc, op.clone());
                }
            }
        }
        for b in &blocks {
            for (svc, op) in b.operations() {
                merge(svc, op);
            }
        }
        all
    }
}
