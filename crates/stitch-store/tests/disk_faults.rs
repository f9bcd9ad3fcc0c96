//! A full disk, step by step: a write torn by `ENOSPC`, appends refused while there is no
//! room, a restart on the full disk, space freed, and a restart after each step. Every
//! acknowledged span must come back, and the store must take appends again by itself.
//! Damage in the middle of a WAL segment stops start-up, unless salvage is asked for.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use stitch_model::Batch;
use stitch_store::disk::{FaultInjector, IoStep};
use stitch_store::{Store, StoreConfig, StoreError};

fn one_trace(n: u64, t0: u64) -> Batch {
    batch_of(
        &resource("svc"),
        vec![
            span(trace_id(n), span_id(10 * n), "root", t0 + n, 50),
            span(trace_id(n), span_id(10 * n + 1), "child", t0 + n + 1, 20),
        ],
    )
}

fn faulty_config(dir: &std::path::Path, disk: &Arc<SimDisk>) -> StoreConfig {
    let mut c = config(dir);
    c.fsync = true;
    c.faults = Some(disk.clone() as Arc<dyn FaultInjector>);
    c
}

async fn try_append(store: &Store, batch: &Batch) -> Result<(), StoreError> {
    store
        .append(stitch_wire::otlp::encode_batch(batch), batch.clone())
        .await
}

/// Appends until the store takes the batch (the writer retries every 200 ms).
async fn append_eventually(store: &Store, batch: &Batch) {
    for _ in 0..100 {
        if try_append(store, batch).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the store did not take appends again");
}

async fn assert_traces(store: &Store, acked: &[(u64, &Batch)], absent: &[u64]) {
    for (n, b) in acked {
        let id = trace_id(*n);
        assert_eq!(
            get(store, id).await,
            Some(expected(id, &[b])),
            "acknowledged trace {n}"
        );
    }
    for n in absent {
        assert!(get(store, trace_id(*n)).await.is_none(), "trace {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_costs_no_acknowledged_span_and_the_store_resumes_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(SimDisk::default());
    let mut cfg = faulty_config(dir.path(), &disk);
    cfg.min_free_bytes = Some(0);
    let t0 = now_nanos() - 60 * SECOND;
    let batches: Vec<Batch> = (1..=6).map(|n| one_trace(n, t0)).collect();

    let store = Store::open(cfg.clone()).await.unwrap();
    try_append(&store, &batches[0]).await.unwrap();
    let segment = wal_segments(dir.path()).pop().unwrap();
    let good_len = std::fs::metadata(&segment).unwrap().len();

    // The next write finds 40 bytes of room: it is torn, refused, and cut away.
    disk.set_room(Some(40));
    let err = try_append(&store, &batches[1]).await.unwrap_err();
    assert!(matches!(err, StoreError::WalWrite(_)), "{err}");
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        good_len,
        "the torn record stays in the sealed segment"
    );
    // No room for a new segment: appends are refused at once, with a reason.
    let err = try_append(&store, &batches[2]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::WalUnavailable(_)),
        "refused for a missing segment: {err}"
    );
    assert!(err.to_string().contains("retry later"), "{err}");
    assert_eq!(store.stats().wal_writable.load(Ordering::Relaxed), 0);

    // Space comes back: the store takes appends again, in a new segment.
    disk.set_room(None);
    append_eventually(&store, &batches[3]).await;
    assert_eq!(store.stats().wal_writable.load(Ordering::Relaxed), 1);
    assert_eq!(store.stats().wal_write_failures.load(Ordering::Relaxed), 1);
    assert!(store.stats().refused_appends.load(Ordering::Relaxed) >= 1);
    assert!(wal_segments(dir.path()).len() >= 2);
    assert_traces(&store, &[(1, &batches[0]), (4, &batches[3])], &[2, 3]).await;

    // Crash, then start on a full disk: recovery reads everything, the store serves it and
    // refuses appends until there is room.
    drop(store);
    disk.set_room(Some(0));
    let store = Store::open(cfg.clone()).await.unwrap();
    assert_traces(&store, &[(1, &batches[0]), (4, &batches[3])], &[2, 3]).await;
    let err = try_append(&store, &batches[4]).await.unwrap_err();
    assert!(matches!(err, StoreError::WalUnavailable(_)), "{err}");
    // A flush cannot write its block yet; it is retried and lands once there is room.
    let flushing = tokio::spawn({
        let store = store.clone();
        async move { store.flush().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !flushing.is_finished(),
        "a block was written on a full disk"
    );
    disk.set_room(None);
    tokio::time::timeout(Duration::from_secs(10), flushing)
        .await
        .expect("the flush finishes once there is room")
        .unwrap()
        .unwrap();
    assert_eq!(store.block_count(), 1);
    append_eventually(&store, &batches[4]).await;

    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_traces(
        &store,
        &[(1, &batches[0]), (4, &batches[3]), (5, &batches[4])],
        &[2, 3, 6],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_reserve_appends_are_refused_and_blocks_still_flush() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(SimDisk::default());
    let mut cfg = faulty_config(dir.path(), &disk);
    cfg.min_free_bytes = Some(1_000_000);
    let t0 = now_nanos() - 60 * SECOND;
    let first = one_trace(1, t0);
    let second = one_trace(2, t0);

    let store = Store::open(cfg.clone()).await.unwrap();
    try_append(&store, &first).await.unwrap();
    disk.set_room(Some(900_000));
    let err = try_append(&store, &second).await.unwrap_err();
    match &err {
        StoreError::DiskFull { free, reserve } => {
            assert_eq!((*free, *reserve), (900_000, 1_000_000))
        }
        other => panic!("expected a refusal for the reserve, got {other}"),
    }
    assert!(err.to_string().contains("900000 bytes free"), "{err}");
    let stats = store.stats();
    assert_eq!(stats.disk_full_episodes.load(Ordering::Relaxed), 1);
    assert_eq!(stats.disk_free_bytes.load(Ordering::Relaxed), 900_000);
    assert_eq!(stats.disk_reserve_bytes.load(Ordering::Relaxed), 1_000_000);
    // The reserve is there for blocks: a flush writes one and frees the WAL it covers.
    store.flush().await.unwrap();
    assert_eq!(store.block_count(), 1);
    assert_eq!(
        get(&store, trace_id(1)).await,
        Some(expected(trace_id(1), &[&first]))
    );
    // A second refusal in the same episode is not a new episode.
    assert!(try_append(&store, &second).await.is_err());
    assert_eq!(stats.disk_full_episodes.load(Ordering::Relaxed), 1);
    disk.set_room(None);
    append_eventually(&store, &second).await;
    assert_eq!(stats.wal_writable.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_seals_the_segment_and_later_appends_go_to_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(SimDisk::default());
    let cfg = faulty_config(dir.path(), &disk);
    let t0 = now_nanos() - 60 * SECOND;
    let batches: Vec<Batch> = (1..=3).map(|n| one_trace(n, t0)).collect();
    let store = Store::open(cfg.clone()).await.unwrap();
    try_append(&store, &batches[0]).await.unwrap();
    let sealed = wal_segments(dir.path()).pop().unwrap();
    let good_len = std::fs::metadata(&sealed).unwrap().len();
    disk.arm(IoStep::WalSync, false);
    let err = try_append(&store, &batches[1]).await.unwrap_err();
    assert!(err.to_string().contains("injected I/O error"), "{err}");
    // The bytes of the failed group are cut away: after a failed fdatasync nobody knows which
    // of them reached the disk.
    assert_eq!(std::fs::metadata(&sealed).unwrap().len(), good_len);
    append_eventually(&store, &batches[2]).await;
    let segments = wal_segments(dir.path());
    assert_eq!(segments.len(), 2);
    assert_eq!(std::fs::metadata(&sealed).unwrap().len(), good_len);
    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_traces(&store, &[(1, &batches[0]), (3, &batches[2])], &[2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_inside_a_segment_stops_start_up_and_salvage_keeps_every_valid_record() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let t0 = now_nanos() - 60 * SECOND;
    let batches: Vec<Batch> = (1..=3).map(|n| one_trace(n, t0)).collect();
    let store = Store::open(cfg.clone()).await.unwrap();
    for b in &batches {
        append(&store, b).await;
    }
    drop(store);
    // Flip a byte in the second record's body.
    let segment = wal_segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let first_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let second = 8 + 8 + first_len;
    bytes[second + 8 + 20] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    let err = Store::open(cfg.clone())
        .await
        .err()
        .expect("start-up stops");
    let message = err.to_string();
    assert!(
        message.contains(&segment.display().to_string())
            && message.contains(&format!("offset {second}"))
            && message.contains("--wal-salvage"),
        "{message}"
    );
    // Nothing was deleted or rewritten by the failed start.
    assert_eq!(std::fs::read(&segment).unwrap(), bytes);

    let mut salvage = cfg.clone();
    salvage.wal_salvage = true;
    let store = Store::open(salvage).await.unwrap();
    assert_traces(&store, &[(1, &batches[0]), (3, &batches[2])], &[2]).await;
    drop(store);
    // The segment was rewritten: a plain start works from now on.
    let store = Store::open(cfg).await.unwrap();
    assert_traces(&store, &[(1, &batches[0]), (3, &batches[2])], &[2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_io_error_making_the_segment_at_start_up_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(SimDisk::default());
    let cfg = faulty_config(dir.path(), &disk);
    disk.arm(IoStep::WalCreate, false);
    let err = Store::open(cfg.clone())
        .await
        .err()
        .expect("an I/O error is not a full disk");
    assert!(
        err.to_string().contains("00000000000000000001.wal")
            && err.to_string().contains("injected"),
        "{err}"
    );
    // Nothing of the attempt is left in the way.
    let store = Store::open(cfg).await.unwrap();
    append(&store, &one_trace(1, now_nanos())).await;
}
