//! Crash recovery: a `Store` dropped without flushing is a crash (its WAL writer stops once the
//! last clone is dropped, and nothing is written on the way out); reopening the directory must
//! bring back every acknowledged span, exactly once.

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;

use common::*;
use stitch_model::Batch;
use stitch_store::Store;

fn three_batches(t0: u64) -> Vec<Batch> {
    (1..=3u64)
        .map(|n| {
            batch_of(
                &resource(&format!("svc-{n}")),
                vec![
                    span(trace_id(n), span_id(10 * n), "a", t0 + n, 5),
                    span(trace_id(n), span_id(10 * n + 1), "b", t0 + n + 1, 5),
                ],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_acknowledged_before_a_crash_is_readable_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.fsync = true;
    let t0 = now_nanos() - 60 * SECOND;
    let id = trace_id(1);
    let svc = resource("svc");
    let flushed = batch_of(&svc, vec![span(id, span_id(1), "root", t0, SECOND)]);
    let in_head = batch_of(&svc, vec![span(id, span_id(2), "child", t0 + 1, 10)]);
    let rich = rich_batch(trace_id(2), t0);

    let store = Store::open(cfg.clone()).await.unwrap();
    append(&store, &flushed).await;
    store.flush().await.unwrap();
    append(&store, &in_head).await;
    append(&store, &rich).await;
    let before_1 = get(&store, id).await.unwrap();
    let before_2 = get(&store, trace_id(2)).await.unwrap();
    let clone = store.clone();
    drop(store);
    drop(clone);

    let store = Store::open(cfg.clone()).await.unwrap();
    assert_eq!(store.block_count(), 1);
    assert_eq!(store.head_spans(), 1 + rich.span_count());
    assert_eq!(
        store.stats().recovered_spans.load(Ordering::Relaxed),
        1 + rich.span_count() as u64
    );
    assert_eq!(get(&store, id).await.unwrap(), before_1);
    assert_eq!(before_1, expected(id, &[&flushed, &in_head]));
    assert_eq!(get(&store, trace_id(2)).await.unwrap(), before_2);
    assert_eq!(before_2, expected(trace_id(2), &[&rich]));

    // A second crash right after recovery loses nothing either, nor does appending to the
    // recovered store before a third one.
    drop(store);
    let store = Store::open(cfg.clone()).await.unwrap();
    assert_eq!(get(&store, id).await.unwrap(), before_1);
    let late = batch_of(&svc, vec![span(id, span_id(3), "late", t0 + 2, 10)]);
    append(&store, &late).await;
    drop(store);
    let store = Store::open(cfg.clone()).await.unwrap();
    let want = expected(id, &[&flushed, &in_head, &late]);
    assert_eq!(get(&store, id).await.unwrap(), want);

    // Flushing the recovered head makes it a block and empties the WAL.
    store.flush().await.unwrap();
    assert_eq!(store.head_spans(), 0);
    assert_eq!(store.block_count(), 2);
    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(store.head_spans(), 0);
    assert_eq!(store.stats().recovered_spans.load(Ordering::Relaxed), 0);
    assert_eq!(get(&store, id).await.unwrap(), want);
    assert_eq!(get(&store, trace_id(2)).await.unwrap(), before_2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_segment_cut_inside_its_last_record_recovers_every_complete_record() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let t0 = now_nanos();
    let batches = three_batches(t0);
    let store = Store::open(cfg.clone()).await.unwrap();
    for b in &batches {
        append(&store, b).await;
    }
    drop(store);

    let newest = wal_segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&newest).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);

    let store = Store::open(cfg.clone()).await.unwrap();
    for (n, b) in batches.iter().enumerate().take(2) {
        let id = trace_id(n as u64 + 1);
        assert_eq!(get(&store, id).await.unwrap(), expected(id, &[b]));
    }
    assert!(get(&store, trace_id(3)).await.is_none());

    // The cut segment is no longer the newest; what follows it is still recovered.
    let fourth = batch_of(
        &resource("svc-4"),
        vec![span(trace_id(4), span_id(40), "d", t0, 5)],
    );
    append(&store, &fourth).await;
    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(store.head_spans(), 5);
    for (n, b) in [(1, &batches[0]), (2, &batches[1]), (4, &fourth)] {
        assert_eq!(
            get(&store, trace_id(n)).await.unwrap(),
            expected(trace_id(n), &[b])
        );
    }
    assert!(get(&store, trace_id(3)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_last_record_of_a_wal_segment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let t0 = now_nanos();
    let batches = three_batches(t0);
    let check = |store: Store| {
        let batches = batches.clone();
        async move {
            for (n, b) in batches.iter().enumerate() {
                let id = trace_id(n as u64 + 1);
                assert_eq!(get(&store, id).await.unwrap(), expected(id, &[b]));
            }
            store
        }
    };

    let store = Store::open(cfg.clone()).await.unwrap();
    for b in &batches {
        append(&store, b).await;
    }
    drop(store);
    let newest = wal_segments(dir.path()).pop().unwrap();
    // A header that promises more bytes than follow, with a wrong checksum.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    f.write_all(&200u32.to_le_bytes()).unwrap();
    f.write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]).unwrap();
    drop(f);
    let store = check(Store::open(cfg.clone()).await.unwrap()).await;
    assert_eq!(store.head_spans(), 6);
    drop(store);

    // A complete record with a bad checksum, then zeros, in the segment written since.
    let newest = wal_segments(dir.path()).pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    f.write_all(&3u32.to_le_bytes()).unwrap();
    f.write_all(&[0; 4]).unwrap();
    f.write_all(&[1, 0x0a, 0x00]).unwrap();
    f.write_all(&[0; 64]).unwrap();
    drop(f);
    // And a segment whose magic was cut short (a crash while creating it).
    let id: u64 = newest
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    std::fs::write(
        wal_dir(dir.path()).join(format!("{:020}.wal", id + 1)),
        b"STW",
    )
    .unwrap();

    let store = check(Store::open(cfg.clone()).await.unwrap()).await;
    assert_eq!(store.head_spans(), 6);
    let fourth = batch_of(
        &resource("svc-4"),
        vec![span(trace_id(4), span_id(40), "d", t0, 5)],
    );
    append(&store, &fourth).await;
    drop(store);
    let store = check(Store::open(cfg.clone()).await.unwrap()).await;
    assert_eq!(store.head_spans(), 7);
    assert_eq!(
        get(&store, trace_id(4)).await.unwrap(),
        expected(trace_id(4), &[&fourth])
    );
    store.flush().await.unwrap();
    drop(store);
    let store = check(Store::open(cfg).await.unwrap()).await;
    assert_eq!(store.head_spans(), 0);
    assert_eq!(
        get(&store, trace_id(4)).await.unwrap(),
        expected(trace_id(4), &[&fourth])
    );
}

/// The WAL segment files and their contents.
fn save_wal(data: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    wal_segments(data)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_segments_already_covered_by_a_block_are_not_replayed_after_a_crash() {
    // A crash after the block's meta.json was written but before the WAL it covers was deleted.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let t0 = now_nanos();
    let batches = three_batches(t0);
    let store = Store::open(cfg.clone()).await.unwrap();
    for b in &batches {
        append(&store, b).await;
    }
    let saved = save_wal(dir.path());
    store.flush().await.unwrap();
    for (path, _) in &saved {
        assert!(!path.exists(), "{} outlived its block", path.display());
    }
    drop(store);
    for (path, bytes) in &saved {
        std::fs::write(path, bytes).unwrap();
    }

    let store = Store::open(cfg.clone()).await.unwrap();
    assert_eq!(store.block_count(), 1);
    assert_eq!(
        store.head_spans(),
        0,
        "spans of the block were replayed again"
    );
    assert_eq!(store.stats().recovered_spans.load(Ordering::Relaxed), 0);
    for (path, _) in &saved {
        assert!(
            !path.exists(),
            "{} was not removed on recovery",
            path.display()
        );
    }
    for (n, b) in batches.iter().enumerate() {
        let id = trace_id(n as u64 + 1);
        assert_eq!(get(&store, id).await.unwrap(), expected(id, &[b]));
    }
    // Later flushes do not write those spans into another block either.
    let fourth = batch_of(
        &resource("svc-4"),
        vec![span(trace_id(4), span_id(40), "d", t0, 5)],
    );
    append(&store, &fourth).await;
    store.flush().await.unwrap();
    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(store.block_count(), 2);
    let meta: Vec<serde_json::Value> = block_dirs(dir.path())
        .iter()
        .map(|d| serde_json::from_slice(&std::fs::read(d.join("meta.json")).unwrap()).unwrap())
        .collect();
    let spans: Vec<u64> = meta
        .iter()
        .map(|m| m["span_count"].as_u64().unwrap())
        .collect();
    assert_eq!(spans, vec![6, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_without_meta_json_is_ignored_and_its_spans_come_back_from_the_wal() {
    // A crash while the block was being written: meta.json, written last, is missing.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let t0 = now_nanos();
    let batches = three_batches(t0);
    let store = Store::open(cfg.clone()).await.unwrap();
    for b in &batches {
        append(&store, b).await;
    }
    let saved = save_wal(dir.path());
    store.flush().await.unwrap();
    drop(store);
    for (path, bytes) in &saved {
        std::fs::write(path, bytes).unwrap();
    }
    let block = block_dirs(dir.path()).pop().unwrap();
    std::fs::remove_file(block.join("meta.json")).unwrap();

    let store = Store::open(cfg.clone()).await.unwrap();
    assert_eq!(store.block_count(), 0);
    assert_eq!(store.head_spans(), 6);
    for (n, b) in batches.iter().enumerate() {
        let id = trace_id(n as u64 + 1);
        assert_eq!(get(&store, id).await.unwrap(), expected(id, &[b]));
    }
    store.flush().await.unwrap();
    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(store.block_count(), 1);
    assert_eq!(store.head_spans(), 0);
    for (n, b) in batches.iter().enumerate() {
        let id = trace_id(n as u64 + 1);
        assert_eq!(get(&store, id).await.unwrap(), expected(id, &[b]));
    }
}
