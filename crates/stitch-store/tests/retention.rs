//! Retention deletes whole blocks whose newest span ended longer ago than the retention period.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use stitch_query::{SearchQuery, TraceReader};
use stitch_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_past_retention_is_deleted_and_a_recent_block_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.retention = Duration::from_secs(3600);
    let now = now_nanos();
    let hour = 3600 * SECOND;
    let old_svc = resource("old");
    let new_svc = resource("new");
    let old = batch_of(
        &old_svc,
        vec![
            span(trace_id(1), span_id(1), "a", now - 3 * hour, SECOND),
            span(
                trace_id(1),
                span_id(2),
                "b",
                now - 2 * hour - SECOND,
                SECOND,
            ),
        ],
    );
    // Started long ago, but ended within the retention period: its block must stay.
    let recent = batch_of(
        &new_svc,
        vec![span(
            trace_id(2),
            span_id(3),
            "c",
            now - 3 * hour,
            3 * hour - 60 * SECOND,
        )],
    );

    let store = Store::open(cfg.clone()).await.unwrap();
    append(&store, &old).await;
    store.flush().await.unwrap();
    append(&store, &recent).await;
    store.flush().await.unwrap();
    let blocks = block_dirs(dir.path());
    assert_eq!(blocks.len(), 2);
    assert_eq!(store.block_count(), 2);
    assert!(get(&store, trace_id(1)).await.is_some());

    assert_eq!(store.enforce_retention().await.unwrap(), 1);
    assert_eq!(store.stats().blocks_deleted.load(Ordering::Relaxed), 1);
    assert_eq!(store.block_count(), 1);
    assert!(
        !blocks[0].exists(),
        "{} was not deleted",
        blocks[0].display()
    );
    for name in ["data.parquet", "bloom.bin", "meta.json"] {
        assert!(blocks[1].join(name).exists(), "{name} of the recent block");
    }
    assert!(get(&store, trace_id(1)).await.is_none());
    assert_eq!(
        get(&store, trace_id(2)).await.unwrap(),
        expected(trace_id(2), &[&recent])
    );
    let all = SearchQuery {
        limit: 10,
        ..Default::default()
    };
    let found = store.search(&all).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].trace_id, trace_id(2));
    assert_eq!(store.services().await.unwrap(), vec!["new"]);

    // Running it again deletes nothing more, and the deletion survives a restart.
    assert_eq!(store.enforce_retention().await.unwrap(), 0);
    drop(store);
    let store = Store::open(cfg.clone()).await.unwrap();
    assert_eq!(store.block_count(), 1);
    assert!(get(&store, trace_id(1)).await.is_none());
    assert!(get(&store, trace_id(2)).await.is_some());
    assert_eq!(store.services().await.unwrap(), vec!["new"]);

    // New data after a restart gets a block of its own, which retention leaves alone.
    let newer = batch_of(&new_svc, vec![span(trace_id(3), span_id(4), "d", now, 1)]);
    append(&store, &newer).await;
    store.flush().await.unwrap();
    assert_eq!(store.enforce_retention().await.unwrap(), 0);
    drop(store);
    let store = Store::open(cfg).await.unwrap();
    assert_eq!(store.block_count(), 2);
    assert!(get(&store, trace_id(3)).await.is_some());
    assert!(get(&store, trace_id(2)).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_past_retention_still_in_the_head_are_kept_until_they_are_in_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.retention = Duration::from_secs(3600);
    let old = batch_of(
        &resource("old"),
        vec![span(
            trace_id(1),
            span_id(1),
            "a",
            now_nanos() - 7200 * SECOND,
            1,
        )],
    );
    let store = Store::open(cfg).await.unwrap();
    append(&store, &old).await;
    assert_eq!(store.enforce_retention().await.unwrap(), 0);
    assert!(get(&store, trace_id(1)).await.is_some());
    store.flush().await.unwrap();
    assert_eq!(store.enforce_retention().await.unwrap(), 1);
    assert!(get(&store, trace_id(1)).await.is_none());
    assert_eq!(store.block_count(), 0);
}
