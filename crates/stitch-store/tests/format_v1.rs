//! Blocks written by the first block format (version 1: attributes inside the `extra` span
//! protobuf, no `index.bin`) stay readable: `tests/fixtures/block-v1/` is such a block, written
//! by that code from the two batches below and kept as it was.

mod common;

use std::time::Duration;

use common::*;
use stitch_model::{Batch, TraceId};
use stitch_query::{SearchQuery, TraceReader};
use stitch_store::Store;

const T0: u64 = 1_700_000_000_000_000_000;

fn batches() -> (Batch, Batch) {
    let svc = resource("checkout");
    (
        rich_batch(trace_id(1), T0),
        batch_of(
            &svc,
            vec![
                span(
                    trace_id(2),
                    span_id(21),
                    "GET /cart",
                    T0 + 5 * SECOND,
                    40 * MILLI,
                ),
                span(
                    trace_id(2),
                    span_id(22),
                    "SELECT cart",
                    T0 + 5 * SECOND + MILLI,
                    20 * MILLI,
                ),
            ],
        ),
    )
}

async fn open_fixture() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("blocks/00000000000000000001");
    std::fs::create_dir_all(&block).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/block-v1");
    for f in ["meta.json", "bloom.bin", "data.parquet"] {
        std::fs::copy(fixture.join(f), block.join(f)).unwrap();
    }
    let mut cfg = config(dir.path());
    cfg.retention = Duration::from_secs(100 * 365 * 86_400);
    (Store::open(cfg).await.unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_block_reads_back_every_span_it_was_written_with() {
    let (store, _dir) = open_fixture().await;
    assert_eq!(store.block_count(), 1);
    let (rich, cart) = batches();
    for (id, b) in [(trace_id(1), &rich), (trace_id(2), &cart)] {
        assert_eq!(
            get(&store, id).await,
            Some(expected(id, &[b])),
            "trace {id}"
        );
    }
    assert!(get(&store, TraceId::from_halves(1, 2)).await.is_none());
    let found = |q: SearchQuery| {
        let store = store.clone();
        async move {
            store
                .search(&SearchQuery { limit: 10, ..q })
                .await
                .unwrap()
                .iter()
                .map(|t| t.trace_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found(SearchQuery {
            service: Some("checkout".into()),
            ..Default::default()
        })
        .await,
        vec![trace_id(2)]
    );
    assert_eq!(
        found(SearchQuery {
            tags: vec![("str".into(), "text with ünïcode".into())],
            ..Default::default()
        })
        .await,
        vec![trace_id(1)]
    );
    assert_eq!(
        found(SearchQuery {
            operation: Some("SELECT cart".into()),
            min_duration_nanos: Some(20 * MILLI),
            ..Default::default()
        })
        .await,
        vec![trace_id(2)]
    );
    let services = store.services().await.unwrap();
    assert!(services.contains(&"checkout".to_owned()) && services.contains(&"frontend".to_owned()));
}
