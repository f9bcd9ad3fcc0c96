//! The WAL writer: the single thread that owns the active segment, the tail sampler and the
//! rotation of heads.
//!
//! It writes appends in groups and syncs once per group. Without tail sampling it then applies
//! the group to the head and only then acknowledges it. With tail sampling it acknowledges the
//! group, feeds it to the tail sampler it owns and puts the traces it keeps into the head; the
//! decisions are written as a WAL record at the start of the next group commit (or before the
//! segment rotates). Because it is also the only one to rotate segments and freeze heads, a
//! head holds exactly the spans that were put into a head while its segments were active.
//!
//! # When the disk fails or fills up
//!
//! [`Log`] is the writer's view of the segments. A write or sync that fails seals the active
//! segment (cut back to its last good record, never written again, see [`crate::wal`]), and
//! the group's appends are refused with a retryable error. Until a new segment can be made,
//! and while the file system has less free space than the reserve ([`crate::disk`]), appends
//! are refused at once. Freezing a head and flushing it never waits for a new segment: a head
//! whose segment was sealed is frozen with that segment as its last, so blocks keep being
//! written and WAL space keeps being given back while appends are refused. Each time the
//! writer wakes (at least every 250 ms) it retries what failed, so it resumes by itself once
//! space is free. Entering and leaving a refusing state is logged once per episode.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use stitch_model::Batch;
use stitch_query::AppliedSpan;
use tokio::sync::oneshot;

use crate::StoreError;
use crate::disk::Disk;
use crate::head::Head;
use crate::sampling::{KeptTrace, Sampler};
use crate::store::Inner;
use crate::wal::{self, SegmentWriter};

/// Answers a flush request: `Err` says why the head could not be frozen now.
pub(crate) type FlushAck = oneshot::Sender<Result<(), String>>;

/// Answers an append: `Ok` once it is durable.
pub(crate) type AppendAck = oneshot::Sender<Result<(), StoreError>>;

pub(crate) enum WalMsg {
    Append {
        payload: Vec<u8>,
        batch: Batch,
        ack: AppendAck,
    },
    /// Freeze the head and flush it to a block now (if it holds anything).
    Flush { done: FlushAck },
    /// Run the tail sampler's timers now and publish its status ([`crate::Store::tick`]).
    Tick { done: oneshot::Sender<()> },
}

pub(crate) struct FlushJob {
    pub head: Arc<Head>,
    pub wal_through: u64,
    pub done: Vec<FlushAck>,
}

/// Why appends are refused.
#[derive(Clone, Debug, PartialEq)]
enum Refusal {
    /// Less free space than the reserve.
    Reserve { free: u64, reserve: u64 },
    /// No segment can be written: why, in full for the log, and as senders are told it
    /// (without the server's paths).
    NoSegment { detail: String, told: String },
}

impl Refusal {
    fn no_segment(why: &str) -> Refusal {
        Refusal::NoSegment {
            detail: why.to_owned(),
            told: why.to_owned(),
        }
    }
}

impl Refusal {
    fn error(&self) -> StoreError {
        match self {
            Refusal::Reserve { free, reserve } => StoreError::DiskFull {
                free: *free,
                reserve: *reserve,
            },
            Refusal::NoSegment { told, .. } => StoreError::WalUnavailable(told.clone()),
        }
    }
}

/// How long to wait before trying again to make a segment.
const RETRY: Duration = Duration::from_millis(200);
/// How long appends may wait for the flusher to catch up before they are refused.
const FLUSH_BACKLOG_GRACE: Duration = Duration::from_secs(1);

/// The segments the writer appends to: the active one, or none after a failure until a new one
/// can be made.
pub(crate) struct Log {
    dir: PathBuf,
    disk: Disk,
    active: Option<SegmentWriter>,
    /// The id of the active segment, or of the next one to make when there is none.
    id: u64,
    retry_at: Instant,
    /// The store clock's time when the active segment was made.
    segment_since: u64,
    /// Why appends are refused now; `None` while they are accepted.
    refusing: Option<Refusal>,
    /// The highest segment a frozen head ended with: a block's id, so never reused.
    last_through: u64,
}

impl Log {
    /// `active` is the segment made at start-up, or `None` when none could be made (a full
    /// disk): then `id` is the one to make. `last_through` is the highest `wal_through` of the
    /// blocks.
    pub fn new(
        dir: PathBuf,
        disk: Disk,
        active: Option<SegmentWriter>,
        id: u64,
        last_through: u64,
        now: u64,
    ) -> Log {
        let refusing = active
            .is_none()
            .then(|| Refusal::no_segment("no segment could be made at start-up"));
        Log {
            dir,
            disk,
            active,
            id,
            retry_at: Instant::now(),
            segment_since: now,
            refusing,
            last_through,
        }
    }

    /// The active segment, making one when there is none (at most every [`RETRY`]).
    fn writable(&mut self, inner: &Inner) -> Option<&mut SegmentWriter> {
        if self.active.is_none() && Instant::now() >= self.retry_at {
            match SegmentWriter::create(&self.dir, self.id, &self.disk) {
                Ok(s) => {
                    self.active = Some(s);
                    self.segment_since = inner.config.clock.unix_nanos();
                    inner.current_segment.store(self.id, Ordering::Release);
                    if matches!(self.refusing, Some(Refusal::NoSegment { .. })) {
                        self.set_refusing(inner, None);
                    }
                }
                Err(e) => {
                    self.retry_at = Instant::now() + RETRY;
                    let refusal = Refusal::NoSegment {
                        detail: e.to_string(),
                        told: e.for_senders(),
                    };
                    self.set_refusing(inner, Some(refusal));
                }
            }
        }
        self.active.as_mut()
    }

    /// Checks that the file system has room for `bytes` more above the reserve.
    fn check_room(&mut self, inner: &Inner, bytes: u64) -> Result<(), Refusal> {
        if self.disk.reserve == 0 {
            return Ok(());
        }
        let free = match self.disk.free_bytes(&self.dir) {
            Ok(f) => f,
            // Cannot tell: let the write itself find out.
            Err(_) => return Ok(()),
        };
        inner.stats.disk_free_bytes.store(free, Ordering::Relaxed);
        let reserve = self.disk.reserve;
        if free < reserve.saturating_add(bytes) {
            let refusal = Refusal::Reserve { free, reserve };
            self.set_refusing(inner, Some(refusal.clone()));
            return Err(refusal);
        }
        if matches!(self.refusing, Some(Refusal::Reserve { .. })) {
            self.set_refusing(inner, None);
        }
        Ok(())
    }

    /// Logs (once per episode) and counts a change in whether appends are refused.
    fn set_refusing(&mut self, inner: &Inner, now: Option<Refusal>) {
        fn kind(r: &Option<Refusal>) -> u8 {
            match r {
                None => 0,
                Some(Refusal::Reserve { .. }) => 1,
                Some(Refusal::NoSegment { .. }) => 2,
            }
        }
        let stats = &inner.stats;
        if kind(&self.refusing) != kind(&now) {
            match &now {
                None => tracing::info!("the write-ahead log accepts appends again"),
                Some(Refusal::Reserve { free, reserve }) => {
                    stats.disk_full_episodes.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        dir = %self.dir.display(),
                        free_bytes = free,
                        reserve_bytes = reserve,
                        "the disk is nearly full: appends are refused (503, retry later) until more than the reserve is free; flushing blocks goes on"
                    );
                }
                Some(Refusal::NoSegment { detail, .. }) => tracing::error!(
                    dir = %self.dir.display(),
                    error = %detail,
                    "no write-ahead log segment can be made: appends are refused (503, retry later); retrying every 200 ms"
                ),
            }
        }
        stats
            .wal_writable
            .store(u64::from(now.is_none()), Ordering::Relaxed);
        self.refusing = now;
    }

    /// Writes framed records to the active segment and syncs. On failure the segment is
    /// sealed and dropped; the next write goes to a new one.
    fn write(&mut self, inner: &Inner, framed: &[u8]) -> Result<(), StoreError> {
        let segment = self.active.as_mut().expect("write needs an active segment");
        match segment.write_durable(framed, inner.config.fsync) {
            Ok(()) => Ok(()),
            Err(e) => {
                inner
                    .stats
                    .wal_write_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    segment = segment.id,
                    sealed_at = segment.bytes,
                    error = %e,
                    "a write-ahead log write failed: the segment is sealed at its last good record and those appends are refused; later ones go to a new segment"
                );
                self.active = None;
                self.id += 1;
                self.retry_at = Instant::now();
                inner.current_segment.store(self.id, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Ends the active segment so that the head it fed can be frozen: returns the last segment
    /// the head holds records of, and moves on to the next (made now if possible). `None` when
    /// that segment already ended a frozen head (nothing was written since).
    fn end_segment(&mut self, inner: &Inner) -> Option<u64> {
        let through = match self.active.take() {
            Some(s) => {
                self.id = s.id + 1;
                self.retry_at = Instant::now();
                inner.current_segment.store(self.id, Ordering::Release);
                s.id
            }
            None => self.id - 1,
        };
        if through <= self.last_through {
            return None;
        }
        self.last_through = through;
        self.writable(inner);
        Some(through)
    }
}

/// The writer thread's loop.
pub(crate) fn run(
    inner: Arc<Inner>,
    rx: Receiver<WalMsg>,
    mut log: Log,
    flush_tx: tokio::sync::mpsc::UnboundedSender<FlushJob>,
    mut sampler: Sampler,
) {
    const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;
    let idle = Duration::from_millis(250);
    let mut kept: Vec<KeptTrace> = Vec::new();
    let mut framed: Vec<u8> = Vec::with_capacity(1 << 20);
    inner
        .stats
        .wal_writable
        .store(u64::from(log.refusing.is_none()), Ordering::Relaxed);
    loop {
        let first = match rx.recv_timeout(sampler.timeout(sampler.now(), idle)) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let received = first.is_some();
        let mut group_bytes = 0;
        let mut appends = Vec::new();
        let mut flush_requests = Vec::new();
        let mut ticks = Vec::new();
        let mut msg = first;
        while let Some(m) = msg.take() {
            match m {
                WalMsg::Append {
                    payload,
                    batch,
                    ack,
                } => {
                    group_bytes += payload.len();
                    appends.push((payload, batch, ack));
                }
                WalMsg::Flush { done } => flush_requests.push(done),
                WalMsg::Tick { done } => ticks.push(done),
            }
            if group_bytes < MAX_GROUP_BYTES {
                msg = rx.try_recv().ok();
            }
        }
        let mut refused = false;
        if !appends.is_empty() {
            refused = !commit(
                &inner,
                &mut log,
                &mut sampler,
                appends,
                &mut kept,
                &mut framed,
            );
        } else if log.writable(&inner).is_some() {
            // Retry what failed and follow the free space, also while no append arrives.
            let _ = log.check_room(&inner, 0);
        }
        if !sampler.pass_through {
            sampler.tick(sampler.now(), &mut kept);
            if !kept.is_empty() {
                let mut stored = 0;
                {
                    let mut head = inner.active.write();
                    if let Some(o) = &inner.observer {
                        o.applied(&mut kept.iter().flat_map(|k| {
                            k.fragments
                                .iter()
                                .flat_map(|rs| &rs.scope_spans)
                                .flat_map(|ss| &ss.spans)
                                .map(AppliedSpan::of)
                        }));
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
            if (!received || refused || !ticks.is_empty()) && sampler.has_pending() {
                // Idle, asked to tick, or appends refused: write the decisions now rather than
                // with the next append.
                write_pending(&inner, &mut log, &mut sampler);
            }
        }
        // Publish the watermark before any rotation: the flusher reads the active segment
        // first and the watermark after, so it never sees a newer segment with an older
        // watermark (see `delete_obsolete_segments`).
        sampler.publish(&inner.tail_watermark, &inner.sampling, !ticks.is_empty());
        let running = maybe_rotate(
            &inner,
            &rx,
            &mut log,
            &flush_tx,
            flush_requests,
            &mut sampler,
        );
        // A tick is answered once what its time made due (decisions, a segment or head old
        // enough to rotate) is done.
        for done in ticks {
            let _ = done.send(());
        }
        if !running {
            return;
        }
    }
}

/// Writes one group of appends (after the pending decisions) and answers each: refused at
/// once when no segment can be written or the disk is below its reserve. False when the
/// group was not written.
fn commit(
    inner: &Inner,
    log: &mut Log,
    sampler: &mut Sampler,
    appends: Vec<(Vec<u8>, Batch, AppendAck)>,
    kept: &mut Vec<KeptTrace>,
    framed: &mut Vec<u8>,
) -> bool {
    let group_bytes: usize = appends.iter().map(|(p, _, _)| p.len()).sum();
    let refusal = match log.writable(inner) {
        None => Some(log.refusing.clone().unwrap_or_else(|| {
            Refusal::no_segment("the last segment failed and the next is not made yet")
        })),
        Some(_) => log.check_room(inner, group_bytes as u64).err(),
    };
    if let Some(refusal) = refusal {
        inner
            .stats
            .refused_appends
            .fetch_add(appends.len() as u64, Ordering::Relaxed);
        for (_, _, ack) in appends {
            let _ = ack.send(Err(refusal.error()));
        }
        return false;
    }
    let segment = log.active.as_ref().expect("writable above");
    let kind = sampler.record_kind();
    // The buffer is the writer's, reused from group to group.
    framed.clear();
    // Decisions made since the last commit go first: they precede these spans.
    sampler.frame_pending(framed);
    let mut group = Vec::with_capacity(appends.len());
    for (payload, batch, ack) in appends {
        // Where this record will start in the segment: the tail sampler finds kept spans
        // there again.
        let position = wal::position(segment.id, segment.bytes + framed.len() as u64);
        wal::frame(framed, kind, &payload);
        group.push((payload.len(), position, batch, ack));
    }
    let source = segment.id;
    if let Err(e) = log.write(inner, framed) {
        // Pending decisions stay pending.
        let message = e.for_senders();
        for (_, _, _, ack) in group {
            let _ = ack.send(Err(StoreError::WalWrite(message.clone())));
        }
        return false;
    }
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
                head.insert(batch, *len, source);
            }
        }
        if let Some(o) = &inner.observer {
            o.applied(
                &mut group
                    .iter()
                    .flat_map(|(_, _, batch, _)| batch.spans().map(|s| AppliedSpan::of(s.span))),
            );
        }
        for (_, _, _, ack) in group {
            let _ = ack.send(Ok(()));
        }
    } else {
        // Durable: acknowledge now; the spans become visible once decided.
        let now = sampler.now();
        for (len, position, batch, ack) in group {
            let _ = ack.send(Ok(()));
            sampler.add(batch, position, len + 1, now, kept);
        }
    }
    true
}

/// Writes the pending decisions as one record and syncs. False when they could not be written
/// (they stay pending). Decisions are written also below the free-space reserve: a head can
/// only become a block (which frees WAL space) once the decisions that filled it are durable.
fn write_pending(inner: &Inner, log: &mut Log, sampler: &mut Sampler) -> bool {
    if !sampler.has_pending() {
        return true;
    }
    if log.writable(inner).is_none() {
        return false;
    }
    let mut framed = Vec::new();
    sampler.frame_pending(&mut framed);
    match log.write(inner, &framed) {
        Ok(()) => {
            sampler.written();
            inner.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(_) => false,
    }
}

/// Freezes the active head when it is due (or a flush was asked for) and hands it to the
/// flusher. False when the store is gone (the channel closed while waiting).
fn maybe_rotate(
    inner: &Inner,
    rx: &Receiver<WalMsg>,
    log: &mut Log,
    flush_tx: &tokio::sync::mpsc::UnboundedSender<FlushJob>,
    mut forced: Vec<FlushAck>,
    sampler: &mut Sampler,
) -> bool {
    let c = &inner.config;
    let now = sampler.now();
    let age = |since: u64| Duration::from_nanos(now.saturating_sub(since));
    if !forced.is_empty() {
        // A flush (e.g. at shutdown) also makes the decisions made so far durable, so that a
        // restart does not decide those traces again.
        write_pending(inner, log, sampler);
    }
    let (due, segment_only) = {
        let head = inner.active.read();
        let due = !head.is_empty()
            && (!forced.is_empty()
                || head.span_count >= c.head_max_spans
                || head.approx_bytes >= c.head_max_bytes
                || age(head.created_unix_nanos) >= c.head_max_age);
        // With tail sampling the head may stay empty (every trace dropped) while the segment
        // grows: rotate the segment alone so that old ones can be deleted.
        let segment_only = head.is_empty()
            && log
                .active
                .as_ref()
                .is_some_and(|s| !s.is_empty() && age(log.segment_since) >= c.head_max_age);
        (due, segment_only)
    };
    if !due {
        if segment_only
            && write_pending(inner, log, sampler)
            && log.end_segment(inner).is_some()
            && let Err(e) = crate::flush::delete_obsolete_segments(inner)
        {
            tracing::error!(error = %e, "deleting old WAL segments failed");
        }
        if !forced.is_empty() {
            // Nothing in the active head, but earlier heads may still be flushing: queue an
            // empty job so the caller is answered after them.
            let _ = flush_tx.send(FlushJob {
                head: Arc::new(Head::new(log.id, now)),
                wal_through: 0,
                done: forced,
            });
        }
        return true;
    }
    // Bound memory: wait while two heads are already waiting to be written. Past a second
    // (a disk too slow or too full for blocks), appends that arrive meanwhile are refused
    // rather than held.
    let waiting = Instant::now();
    while inner.frozen.read().len() >= 2 {
        if waiting.elapsed() >= FLUSH_BACKLOG_GRACE {
            loop {
                match rx.try_recv() {
                    Ok(WalMsg::Append { ack, .. }) => {
                        inner.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                        let _ = ack.send(Err(StoreError::FlushBacklog));
                    }
                    Ok(WalMsg::Flush { done }) => forced.push(done),
                    // The timers run again once the backlog clears; answer rather than hold.
                    Ok(WalMsg::Tick { done }) => {
                        let _ = done.send(());
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return false,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The decisions that put traces into this head must be in its segments (and durable)
    // before it can become a block: recovery finds kept spans through them.
    let refuse = |forced: Vec<FlushAck>, why: &str| {
        for done in forced {
            let _ = done.send(Err(why.to_owned()));
        }
    };
    if !write_pending(inner, log, sampler) {
        refuse(
            forced,
            "the tail sampler's decisions cannot be written to the write-ahead log",
        );
        return true;
    }
    let Some(through) = log.end_segment(inner) else {
        tracing::error!(
            segment = log.id,
            "a head cannot be frozen: its last segment already ended an earlier head"
        );
        refuse(
            forced,
            "the head's last segment already ended an earlier head",
        );
        return true;
    };
    // Publish the old head in `frozen` before releasing the lock on `active`: readers look at
    // `active` first and `frozen` after, so a head that is in neither for a moment would hide
    // acknowledged spans from them.
    let old = {
        let mut active = inner.active.write();
        let old = Arc::new(std::mem::replace(&mut *active, Head::new(log.id, now)));
        inner.frozen.write().push(old.clone());
        old
    };
    let _ = flush_tx.send(FlushJob {
        head: old,
        wal_through: through,
        done: forced,
    });
    true
}
