//! Turning frozen heads into blocks, giving WAL space back, and retention.
//!
//! The flusher writes a frozen head as a block (`data.parquet`, `bloom.bin`, then `meta.json`,
//! the commit point), syncs the files and their directories, registers the block, and only
//! then drops the head and deletes the WAL segments nothing needs any more. A write that fails
//! (a full disk) is retried with backoff, so blocks are written as soon as there is room; the
//! WAL segments stay until then, so nothing acknowledged depends on the retry succeeding.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::StoreError;
use crate::block::{self, BlockHandle};
use crate::disk::IoStep;
use crate::store::Inner;
use crate::wal;
use crate::writer::FlushJob;

/// Deletes the WAL segments nothing needs any more: those below the active segment, below the
/// oldest segment holding a span the tail sampler has not decided, and below the oldest source
/// segment of every head not yet written as a block. Returns how many it deleted.
pub(crate) fn delete_obsolete_segments(inner: &Inner) -> Result<usize, StoreError> {
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
        inner
            .disk
            .remove_file(IoStep::WalRemove, &path)
            .map_err(|e| StoreError::io(&path, e))?;
        deleted += 1;
    }
    if deleted > 0 {
        inner
            .disk
            .sync_dir(&inner.wal_dir)
            .map_err(|e| StoreError::io(&inner.wal_dir, e))?;
        inner
            .stats
            .wal_segments_deleted
            .fetch_add(deleted as u64, Ordering::Relaxed);
    }
    Ok(deleted)
}

pub(crate) async fn flusher(
    inner: Arc<Inner>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<FlushJob>,
) {
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
            let _ = done.send(Ok(()));
        }
    }
}

async fn flush_one(inner: &Arc<Inner>, job: &FlushJob) -> Result<(), StoreError> {
    let block_id = format!("{:020}", job.wal_through);
    let head = job.head.clone();
    let id = block_id.clone();
    let wal_through = job.wal_through;
    let built = tokio::task::spawn_blocking(move || block::build_block(&head, &id, wal_through))
        .await
        .map_err(|e| StoreError::CorruptBlock {
            block: block_id.clone(),
            reason: if e.is_cancelled() {
                "block builder was cancelled by shutdown".into()
            } else {
                format!("block builder panicked: {e}")
            },
        })??;
    let dir = inner.config.data_dir.join("blocks").join(&block_id);
    let (bloom, index) = (built.bloom.clone(), built.index.clone());
    let meta = block::put_block(&inner.objects, built, |name, len| {
        inner
            .disk
            .check_write(IoStep::BlockWrite, &dir.join(name), len)
            .map_err(|e| StoreError::io(dir.join(name), e))
    })
    .await?;
    // The local backend does not sync what it writes; do so before the WAL goes away.
    let dir2 = dir.clone();
    let disk = inner.disk.clone();
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        for name in ["data.parquet", "bloom.bin", "index.bin", "meta.json"] {
            let path = dir2.join(name);
            std::fs::File::open(&path)
                .and_then(|f| disk.sync(IoStep::BlockSync, &f, &path, true))
                .map_err(|e| StoreError::io(&path, e))?;
        }
        let parent = dir2.parent().expect("block dir has a parent");
        for d in [dir2.as_path(), parent] {
            disk.sync_dir(d).map_err(|e| StoreError::io(d, e))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| StoreError::io(&dir, std::io::Error::other(e)))??;

    let spans = meta.span_count;
    let handle = Arc::new(BlockHandle::new(
        meta,
        bloom,
        Some(index),
        inner.objects.clone(),
        inner.footers.clone(),
    )?);
    inner.blocks.write().push(handle.clone());
    inner.frozen.write().retain(|h| !Arc::ptr_eq(h, &job.head));
    inner.stats.blocks_written.fetch_add(1, Ordering::Relaxed);
    // The block is registered: failing to delete segments now must not write it again.
    if let Err(e) = delete_obsolete_segments(inner) {
        tracing::error!(error = %e, "deleting WAL segments covered by a block failed");
    }
    tracing::debug!(block = %block_id, spans, "flushed head to a block");
    // The newest blocks are read the most: their footers are kept from the start (the file
    // was just written, so this reads from the page cache). Last, so that the frozen head and
    // the WAL segments go as soon as they can.
    if let Err(e) = handle.warm().await {
        tracing::warn!(block = %block_id, error = %e, "cannot read the footer of a new block");
    }
    Ok(())
}

pub(crate) async fn retention(inner: std::sync::Weak<Inner>) {
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

pub(crate) async fn enforce_retention(inner: &Arc<Inner>) -> Result<usize, StoreError> {
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
        inner.footers.remove(&b.meta.block_id);
        let dir = inner.config.data_dir.join("blocks").join(&b.meta.block_id);
        let _ = std::fs::remove_dir(&dir);
        inner.stats.blocks_deleted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(block = %b.meta.block_id, "deleted a block past retention");
    }
    Ok(expired.len())
}
