//! The store: composes the WAL writer, the in-memory heads, the flusher and the block list.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use parking_lot::RwLock;
use stitch_model::{Batch, Trace, TraceId};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::block::{self, BlockHandle};
use crate::head::Head;
use crate::live::{self, Live, LiveOptions};
use crate::query::{Operation, SearchQuery, TraceReader};
use crate::sampling::{KeptTrace, Sampler, SamplingStatus, unix_nanos};
use crate::wal::{self, SegmentWriter};

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
    /// RED and the dependency graph maintained as spans arrive ([`crate::live`]); `None`
    /// turns them off (readers then scan stored traces).
    pub live: Option<LiveOptions>,
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
            live: Some(LiveOptions::default()),
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
}

enum WalMsg {
    Append {
        payload: Vec<u8>,
        batch: Batch,
        ack: oneshot::Sender<Result<(), String>>,
    },
    /// Freeze the head and flush it to a block now (if it holds anything).
    Flush { done: oneshot::Sender<()> },
}

struct FlushJob {
    head: Arc<Head>,
    wal_through: u64,
    done: Vec<oneshot::Sender<()>>,
}

struct Inner {
    config: StoreConfig,
    wal_dir: PathBuf,
    objects: Arc<dyn ObjectStore>,
    active: RwLock<Head>,
    frozen: RwLock<Vec<Arc<Head>>>,
    blocks: RwLock<Vec<Arc<BlockHandle>>>,
    stats: StoreStats,
    /// The oldest WAL segment holding a span the tail sampler has not decided (`u64::MAX`:
    /// none), published by the WAL writer.
    tail_watermark: AtomicU64,
    /// The segment the WAL writer appends to.
    current_segment: AtomicU64,
    sampling: parking_lot::Mutex<SamplingStatus>,
    live: Option<Arc<Live>>,
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

        let mut blocks = Vec::new();
        let mut wal_through = 0;
        for id in block::list_blocks(&objects).await? {
            match BlockHandle::load(objects.clone(), &id).await {
                Ok(b) => {
                    wal_through = wal_through.max(b.meta.wal_through);
                    blocks.push(Arc::new(b));
                }
                Err(e) => tracing::error!(block = %id, error = %e, "skipping unreadable block"),
            }
        }

        let stats = StoreStats::default();
        let segments = wal::list_segments(&wal_dir)?;
        let next_segment = segments.last().copied().unwrap_or(0).max(wal_through) + 1;
        let recovered = crate::sampling::replay(
            &wal_dir,
            &segments,
            wal_through,
            next_segment,
            &config.sampling,
        )?;
        let head = recovered.head;
        let mut sampler = recovered.sampler;
        stats
            .recovered_spans
            .store(recovered.recovered_spans, Ordering::Relaxed);
        // Segments below every head's oldest source and below the oldest undecided span hold
        // nothing that is not in a block already (or was dropped).
        let keep_from = head
            .min_source
            .min(sampler.low_watermark_segment().unwrap_or(u64::MAX))
            .min(next_segment);
        for &seg in &segments {
            if seg < keep_from {
                let path = wal::segment_path(&wal_dir, seg);
                std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            }
        }
        wal::sync_dir(&wal_dir)?;
        if !head.is_empty() || recovered.undecided_traces > 0 {
            tracing::info!(
                spans = head.span_count,
                traces = head.traces.len(),
                undecided_traces = recovered.undecided_traces,
                undecided_spans = recovered.undecided_spans,
                "recovered spans from the write-ahead log"
            );
        }
        let segment = SegmentWriter::create(&wal_dir, next_segment)?;
        let live = config.live.clone().map(|opts| {
            // Spans in blocks are not counted: the aggregates cover what started after them.
            let since = blocks.iter().map(|b| b.meta.max_end + 1).max().unwrap_or(0);
            let live = Arc::new(Live::new(opts, since));
            // Recovered traces count too; older ones are in blocks, which the live
            // aggregates do not cover (`since_unix_nanos`).
            live.touch(head.traces.keys().copied());
            live
        });

        let inner = Arc::new(Inner {
            config: config.clone(),
            wal_dir,
            objects,
            active: RwLock::new(head),
            frozen: RwLock::new(Vec::new()),
            blocks: RwLock::new(blocks),
            stats,
            tail_watermark: AtomicU64::new(u64::MAX),
            current_segment: AtomicU64::new(next_segment),
            sampling: parking_lot::Mutex::new(SamplingStatus::default()),
            live,
        });
        sampler.publish(&inner.tail_watermark, &inner.sampling);
        let (tx, rx) = sync_channel(config.max_pending_appends);
        let (flush_tx, flush_rx) = tokio::sync::mpsc::unbounded_channel();
        {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("stitch-wal".into())
                .spawn(move || wal_writer(inner, rx, segment, flush_tx, sampler))
                .map_err(|e| StoreError::io("stitch-wal thread", e))?;
        }
        tokio::spawn(flusher(inner.clone(), flush_rx));
        if let Some(l) = &inner.live {
            let weak = Arc::downgrade(&inner);
            tokio::spawn(live::feed(Arc::downgrade(l), move |id| {
                let weak = weak.clone();
                async move {
                    let inner = weak.upgrade()?;
                    match read_trace(&inner, id).await {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::warn!(trace_id = %id, error = %e, "live aggregates: cannot read a trace");
                            None
                        }
                    }
                }
            }));
        }
        tokio::spawn(retention(Arc::downgrade(&inner)));
        Ok(Store { inner, tx })
    }

    /// Makes a batch durable and visible. `payload` is the batch encoded as an OTLP
    /// `ExportTraceServiceRequest` protobuf; it is what the WAL stores.
    ///
    /// Returns once the batch is on disk (and `fdatasync`ed), or at once with
    /// [`StoreError::Overloaded`] when too many appends are waiting.
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
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::WalWrite(message)),
            Err(_) => Err(StoreError::WalClosed),
        }
    }

    /// Freezes the current head and waits until it is written as a block.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done_tx, done) = oneshot::channel();
        self.tx
            .send(WalMsg::Flush { done: done_tx })
            .map_err(|_| StoreError::WalClosed)?;
        done.await.map_err(|_| StoreError::WalClosed)
    }

    /// Runs retention once, now.
    pub async fn enforce_retention(&self) -> Result<usize, StoreError> {
        enforce_retention(&self.inner).await
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

    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    fn snapshot(&self) -> (Vec<Arc<Head>>, Vec<Arc<BlockHandle>>) {
        (
            self.inner.frozen.read().clone(),
            self.inner.blocks.read().clone(),
        )
    }
}

/// The single thread that owns the active segment. It writes appends in groups and syncs once
/// per group. Without tail sampling it then applies the group to the head and only then
/// acknowledges it. With tail sampling it acknowledges the group, feeds it to the tail sampler
/// it owns and puts the traces it keeps into the head; the decisions are written as a WAL
/// record at the start of the next group commit (or before the segment rotates). Because it is
/// also the only one to rotate segments and freeze heads, a head holds exactly the spans that
/// were put into a head while its segments were active.
fn wal_writer(
    inner: Arc<Inner>,
    rx: Receiver<WalMsg>,
    mut segment: SegmentWriter,
    flush_tx: tokio::sync::mpsc::UnboundedSender<FlushJob>,
    mut sampler: Sampler,
) {
    const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;
    let idle = Duration::from_millis(250);
    let mut framed = Vec::with_capacity(1 << 20);
    let mut group = Vec::new();
    let mut batches = Vec::new();
    let mut kept: Vec<KeptTrace> = Vec::new();
    loop {
        let first = match rx.recv_timeout(sampler.timeout(unix_nanos(), idle)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let received = first.is_some();
        let mut group_bytes = 0;
        let mut flush_requests = Vec::new();
        let kind = sampler.record_kind();
        // Decisions made since the last commit go first: they precede these spans.
        sampler.frame_pending(&mut framed);
        let mut msg = first;
        while let Some(m) = msg.take() {
            match m {
                WalMsg::Append {
                    payload,
                    batch,
                    ack,
                } => {
                    // Where this record will start in the segment: the tail sampler finds
                    // kept spans there again.
                    let position = wal::position(segment.id, segment.bytes + framed.len() as u64);
                    wal::frame(&mut framed, kind, &payload);
                    group_bytes += payload.len();
                    group.push((payload.len(), position, batch, ack));
                }
                WalMsg::Flush { done } => flush_requests.push(done),
            }
            if group_bytes < MAX_GROUP_BYTES {
                msg = rx.try_recv().ok();
            }
        }
        if group.is_empty() {
            framed.clear();
        } else {
            let result = segment.write_durable(&framed, inner.config.fsync);
            framed.clear();
            match result {
                Ok(()) => {
                    sampler.written();
                    let stats = &inner.stats;
                    stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
                    stats
                        .wal_bytes
                        .fetch_add(group_bytes as u64, Ordering::Relaxed);
                    let spans: usize = group.iter().map(|(_, _, b, _)| b.span_count()).sum();
                    stats
                        .appended_spans
                        .fetch_add(spans as u64, Ordering::Relaxed);
                    stats
                        .appends
                        .fetch_add(group.len() as u64, Ordering::Relaxed);
                    if sampler.pass_through {
                        {
                            let mut head = inner.active.write();
                            for (len, _, batch, _) in &group {
                                head.insert(batch, *len, segment.id);
                            }
                        }
                        if let Some(live) = &inner.live {
                            live.touch(group.iter().flat_map(|(_, _, batch, _)| {
                                batch
                                    .resource_spans
                                    .iter()
                                    .flat_map(|rs| &rs.scope_spans)
                                    .flat_map(|ss| &ss.spans)
                                    .map(|s| s.trace_id)
                            }));
                        }
                        for (_, _, _, ack) in group.drain(..) {
                            let _ = ack.send(Ok(()));
                        }
                    } else {
                        // Durable: acknowledge now; the spans become visible once decided.
                        for (len, position, batch, ack) in group.drain(..) {
                            let _ = ack.send(Ok(()));
                            batches.push((len + 1, position, batch));
                        }
                        let now = unix_nanos();
                        for (record_len, position, batch) in batches.drain(..) {
                            sampler.add(batch, position, record_len, now, &mut kept);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "write-ahead log write failed; refusing the batch");
                    let message = e.to_string();
                    for (_, _, _, ack) in group.drain(..) {
                        let _ = ack.send(Err(message.clone()));
                    }
                    // A partial write may have left a torn record; continue in a new segment so
                    // later records are readable. Pending decisions stay pending.
                    match SegmentWriter::create(&inner.wal_dir, segment.id + 1) {
                        Ok(s) => {
                            segment = s;
                            inner.current_segment.store(segment.id, Ordering::Release);
                        }
                        Err(e) => tracing::error!(error = %e, "cannot open a new WAL segment"),
                    }
                }
            }
        }
        if !sampler.pass_through {
            sampler.tick(unix_nanos(), &mut kept);
            if !kept.is_empty() {
                let mut stored = 0;
                {
                    let mut head = inner.active.write();
                    if let Some(live) = &inner.live {
                        live.touch(kept.iter().map(|k| k.trace_id));
                    }
                    for k in kept.drain(..) {
                        stored += k.spans;
                        k.insert_into(&mut head);
                    }
                }
                inner
                    .stats
                    .sampled_spans_stored
                    .fetch_add(stored, Ordering::Relaxed);
            }
            if !received && sampler.has_pending() {
                // Idle: write the decisions now rather than with the next append.
                write_pending(&inner, &mut segment, &mut sampler);
            }
        }
        // Publish the watermark before any rotation: the flusher reads the active segment
        // first and the watermark after, so it never sees a newer segment with an older
        // watermark (see `delete_obsolete_segments`).
        sampler.publish(&inner.tail_watermark, &inner.sampling);
        maybe_rotate(
            &inner,
            &mut segment,
            &flush_tx,
            flush_requests,
            &mut sampler,
        );
    }
}

/// Writes the pending decisions as one record and syncs. False when the write failed (the
/// decisions stay pending).
fn write_pending(inner: &Inner, segment: &mut SegmentWriter, sampler: &mut Sampler) -> bool {
    if !sampler.has_pending() {
        return true;
    }
    let mut framed = Vec::new();
    sampler.frame_pending(&mut framed);
    match segment.write_durable(&framed, inner.config.fsync) {
        Ok(()) => {
            sampler.written();
            inner.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "writing sampling decisions to the WAL failed; retrying later");
            if let Ok(s) = SegmentWriter::create(&inner.wal_dir, segment.id + 1) {
                *segment = s;
                inner.current_segment.store(segment.id, Ordering::Release);
            }
            false
        }
    }
}

fn maybe_rotate(
    inner: &Inner,
    segment: &mut SegmentWriter,
    flush_tx: &tokio::sync::mpsc::UnboundedSender<FlushJob>,
    forced: Vec<oneshot::Sender<()>>,
    sampler: &mut Sampler,
) {
    let c = &inner.config;
    if !forced.is_empty() {
        // A flush (e.g. at shutdown) also makes the decisions made so far durable, so that a
        // restart does not decide those traces again.
        write_pending(inner, segment, sampler);
    }
    let (due, segment_only) = {
        let head = inner.active.read();
        let due = !head.is_empty()
            && (!forced.is_empty()
                || head.span_count >= c.head_max_spans
                || head.approx_bytes >= c.head_max_bytes
                || head.created.elapsed() >= c.head_max_age);
        // With tail sampling the head may stay empty (every trace dropped) while the segment
        // grows: rotate the segment alone so that old ones can be deleted.
        let segment_only = head.is_empty()
            && segment.bytes > wal::MAGIC.len() as u64
            && segment.created.elapsed() >= c.head_max_age;
        (due, segment_only)
    };
    if !due {
        if segment_only && write_pending(inner, segment, sampler) {
            match SegmentWriter::create(&inner.wal_dir, segment.id + 1) {
                Ok(s) => {
                    *segment = s;
                    inner.current_segment.store(segment.id, Ordering::Release);
                    if let Err(e) = delete_obsolete_segments(inner) {
                        tracing::error!(error = %e, "deleting old WAL segments failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot rotate the write-ahead log"),
            }
        }
        if !forced.is_empty() {
            // Nothing in the active head, but earlier heads may still be flushing: queue an
            // empty job so the caller is answered after them.
            let _ = flush_tx.send(FlushJob {
                head: Arc::new(Head::new(segment.id)),
                wal_through: 0,
                done: forced,
            });
        }
        return;
    }
    // Bound memory: wait while two heads are already waiting to be written.
    while inner.frozen.read().len() >= 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The decisions that put traces into this head must be in its segments (and durable)
    // before it can become a block: recovery finds kept spans through them.
    if !write_pending(inner, segment, sampler) {
        return;
    }
    let next = match SegmentWriter::create(&inner.wal_dir, segment.id + 1) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot rotate the write-ahead log; flush postponed");
            return;
        }
    };
    let through = segment.id;
    *segment = next;
    inner.current_segment.store(segment.id, Ordering::Release);
    // Publish the old head in `frozen` before releasing the lock on `active`: readers look at
    // `active` first and `frozen` after, so a head that is in neither for a moment would hide
    // acknowledged spans from them.
    let old = {
        let mut active = inner.active.write();
        let old = Arc::new(std::mem::replace(&mut *active, Head::new(segment.id)));
        inner.frozen.write().push(old.clone());
        old
    };
    let _ = flush_tx.send(FlushJob {
        head: old,
        wal_through: through,
        done: forced,
    });
}

/// Deletes the WAL segments nothing needs any more: those below the active segment, below the
/// oldest segment holding a span the tail sampler has not decided, and below the oldest source
/// segment of every head not yet written as a block. Returns how many it deleted.
fn delete_obsolete_segments(inner: &Inner) -> Result<usize, StoreError> {
    // Order matters: the writer publishes the watermark before it moves to a new segment, and
    // puts kept spans into a head before it publishes the watermark that no longer covers
    // them. Reading in the opposite order never sees a bound that is too high.
    let current = inner.current_segment.load(Ordering::Acquire);
    let watermark = inner.tail_watermark.load(Ordering::Acquire);
    let heads = {
        let active = inner.active.read();
        let frozen = inner.frozen.read();
        frozen
            .iter()
            .map(|h| h.min_source)
            .fold(active.min_source, u64::min)
    };
    let bound = current.min(watermark).min(heads);
    let mut deleted = 0;
    for seg in wal::list_segments(&inner.wal_dir)? {
        if seg >= bound {
            break;
        }
        let path = wal::segment_path(&inner.wal_dir, seg);
        match std::fs::remove_file(&path) {
            Ok(()) => deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }
    if deleted > 0 {
        wal::sync_dir(&inner.wal_dir)?;
        inner
            .stats
            .wal_segments_deleted
            .fetch_add(deleted as u64, Ordering::Relaxed);
    }
    Ok(deleted)
}

async fn flusher(inner: Arc<Inner>, mut rx: tokio::sync::mpsc::UnboundedReceiver<FlushJob>) {
    while let Some(job) = rx.recv().await {
        if !job.head.is_empty() {
            let mut delay = Duration::from_millis(200);
            while let Err(e) = flush_one(&inner, &job).await {
                inner.stats.flush_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, wal_through = job.wal_through, "writing a block failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
        for done in job.done {
            let _ = done.send(());
        }
    }
}

async fn flush_one(inner: &Arc<Inner>, job: &FlushJob) -> Result<(), StoreError> {
    let block_id = format!("{:020}", job.wal_through);
    let head = job.head.clone();
    let id = block_id.clone();
    let wal_through = job.wal_through;
    let (meta, bloom, data) =
        tokio::task::spawn_blocking(move || block::build_block(&head, &id, wal_through))
            .await
            .map_err(|e| StoreError::CorruptBlock {
                block: block_id.clone(),
                reason: if e.is_cancelled() {
                    "block builder was cancelled by shutdown".into()
                } else {
                    format!("block builder panicked: {e}")
                },
            })??;
    block::put_block(&inner.objects, &meta, &bloom, data).await?;
    // The local backend does not sync what it writes; do so before the WAL goes away.
    let dir = inner.config.data_dir.join("blocks").join(&block_id);
    let dir2 = dir.clone();
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        for name in ["data.parquet", "bloom.bin", "meta.json"] {
            let path = dir2.join(name);
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::io(&path, e))?;
        }
        wal::sync_dir(&dir2)?;
        wal::sync_dir(dir2.parent().expect("block dir has a parent"))
    })
    .await
    .map_err(|e| StoreError::io(&dir, std::io::Error::other(e)))??;

    let spans = meta.span_count;
    let handle = Arc::new(BlockHandle::new(meta, bloom, inner.objects.clone())?);
    inner.blocks.write().push(handle);
    inner.frozen.write().retain(|h| !Arc::ptr_eq(h, &job.head));
    inner.stats.blocks_written.fetch_add(1, Ordering::Relaxed);
    // The block is registered: failing to delete segments now must not write it again.
    if let Err(e) = delete_obsolete_segments(inner) {
        tracing::error!(error = %e, "deleting WAL segments covered by a block failed");
    }
    tracing::debug!(block = %block_id, spans, "flushed head to a block");
    Ok(())
}

async fn retention(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(interval) = inner.upgrade().map(|i| i.config.retention_interval) else {
            return;
        };
        tokio::time::sleep(interval).await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if let Err(e) = enforce_retention(&strong).await {
            tracing::error!(error = %e, "retention failed");
        }
    }
}

async fn enforce_retention(inner: &Arc<Inner>) -> Result<usize, StoreError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let cutoff = now.saturating_sub(inner.config.retention.as_nanos() as u64);
    let expired: Vec<Arc<BlockHandle>> = inner
        .blocks
        .read()
        .iter()
        .filter(|b| b.meta.max_end < cutoff)
        .cloned()
        .collect();
    for b in &expired {
        inner
            .blocks
            .write()
            .retain(|x| x.meta.block_id != b.meta.block_id);
        block::delete_block(&inner.objects, &b.meta.block_id).await?;
        let dir = inner.config.data_dir.join("blocks").join(&b.meta.block_id);
        let _ = std::fs::remove_dir(&dir);
        inner.stats.blocks_deleted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(block = %b.meta.block_id, "deleted a block past retention");
    }
    Ok(expired.len())
}

/// Every stored span of trace `id`: the active head, frozen heads, then blocks.
async fn read_trace(inner: &Inner, id: TraceId) -> Result<Option<Trace>, StoreError> {
    let mut trace = Trace::new(id);
    inner.active.read().collect_trace(id, &mut trace);
    let frozen = inner.frozen.read().clone();
    let blocks = inner.blocks.read().clone();
    for h in &frozen {
        h.collect_trace(id, &mut trace);
    }
    for b in &blocks {
        b.collect_trace(id, &mut trace).await?;
    }
    if trace.is_empty() {
        return Ok(None);
    }
    trace.normalize();
    Ok(Some(trace))
}

#[async_trait]
impl TraceReader for Store {
    async fn trace(&self, id: TraceId) -> Result<Option<Trace>, StoreError> {
        read_trace(&self.inner, id).await
    }

    fn live(&self) -> Option<Arc<Live>> {
        self.inner.live.clone()
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Trace>, StoreError> {
        let mut hits: HashMap<TraceId, u64> = HashMap::new();
        self.inner.active.read().search(query, &mut hits);
        let (frozen, blocks) = self.snapshot();
        for h in &frozen {
            h.search(query, &mut hits);
        }
        for b in blocks.iter().rev() {
            b.search(query, &mut hits).await?;
        }
        let mut ranked: Vec<(TraceId, u64)> = hits.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(query.limit);
        let mut out = Vec::with_capacity(ranked.len());
        for (id, _) in ranked {
            if let Some(t) = self.trace(id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn services(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.all_operations().into_keys().collect())
    }

    async fn operations(&self, service: &str) -> Result<Vec<Operation>, StoreError> {
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
