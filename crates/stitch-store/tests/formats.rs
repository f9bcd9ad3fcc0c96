//! Blocks stay readable across the layouts of format version 2: `tests/fixtures/block-v2-list/`
//! was written, from the batches below, by the code before dedicated attribute columns (every
//! attribute in the `attributes` list) and is kept as it was. The same batches written by
//! today's code go to dedicated columns; both read back and search alike.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use stitch_model::{AnyValue, Batch, KeyValue, SpanKind, TraceId};
use stitch_query::{SearchQuery, TraceReader};
use stitch_store::Store;

const T0: u64 = 1_700_000_000_000_000_000;

/// Spans whose attributes use the dedicated keys in every way a block must keep apart: in the
/// middle of other attributes, with the column's type, with another type, twice on one span.
fn batches() -> (Batch, Batch) {
    let svc = resource("checkout");
    let mut get = span(
        trace_id(2),
        span_id(21),
        "GET /cart",
        T0 + 5 * SECOND,
        40 * MILLI,
    );
    get.attributes = vec![
        KeyValue::new("app.user.id", "user-7"),
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/cart"),
        KeyValue::new("http.response.status_code", 500i64),
        KeyValue::new("server.port", "8080"),
        KeyValue::new("url.full", "https://shop.example/cart?id=3"),
    ];
    let mut select = span(
        trace_id(2),
        span_id(22),
        "SELECT cart",
        T0 + 5 * SECOND + MILLI,
        20 * MILLI,
    );
    select.kind = SpanKind::Client;
    select.parent_span_id = Some(span_id(21));
    select.attributes = vec![
        KeyValue::new("db.system", "postgresql"),
        KeyValue::new("db.statement", "SELECT * FROM cart WHERE id = $1"),
        KeyValue::new("db.statement", "SELECT 1"),
        KeyValue::new("http.response.status_code", AnyValue::Double(200.0)),
        KeyValue::new("rpc.grpc.status_code", 0i64),
    ];
    (
        rich_batch(trace_id(1), T0),
        batch_of(&svc, vec![get, select]),
    )
}

async fn open_with_block(fixture: Option<&Path>) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.retention = Duration::from_secs(100 * 365 * 86_400);
    if let Some(fixture) = fixture {
        let block = dir.path().join("blocks/00000000000000000001");
        std::fs::create_dir_all(&block).unwrap();
        for f in ["meta.json", "bloom.bin", "index.bin", "data.parquet"] {
            std::fs::copy(fixture.join(f), block.join(f)).unwrap();
        }
        return (Store::open(cfg).await.unwrap(), dir);
    }
    let store = Store::open(cfg).await.unwrap();
    let (rich, cart) = batches();
    append(&store, &rich).await;
    append(&store, &cart).await;
    store.flush().await.unwrap();
    (store, dir)
}

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/block-v2-list")
}

/// Every span reads back as written, attribute order included, and every search on a dedicated
/// key finds exactly the traces whose spans hold it, in the column or in the list.
async fn check(store: &Store) {
    assert_eq!(store.block_count(), 1);
    assert_eq!(store.head_spans(), 0);
    let (rich, cart) = batches();
    for (id, b) in [(trace_id(1), &rich), (trace_id(2), &cart)] {
        assert_eq!(get(store, id).await, Some(expected(id, &[b])), "trace {id}");
    }
    let found = |tags: &[(&str, &str)]| {
        let store = store.clone();
        let tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        async move {
            store
                .search(&SearchQuery {
                    tags,
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
                .iter()
                .map(|t| t.trace_id)
                .collect::<Vec<TraceId>>()
        }
    };
    let cart_trace = vec![trace_id(2)];
    // In their columns.
    assert_eq!(found(&[("http.route", "/cart")]).await, cart_trace);
    assert_eq!(
        found(&[("http.response.status_code", "500")]).await,
        cart_trace
    );
    assert_eq!(found(&[("db.system", "postgresql")]).await, cart_trace);
    assert_eq!(found(&[("rpc.grpc.status_code", "0")]).await, cart_trace);
    // In the list: another type, the second of a key.
    assert_eq!(found(&[("server.port", "8080")]).await, cart_trace);
    assert_eq!(found(&[("db.statement", "SELECT 1")]).await, cart_trace);
    assert_eq!(
        found(&[("http.response.status_code", "200")]).await,
        cart_trace
    );
    // Both conditions on one span; never across spans.
    assert_eq!(
        found(&[("http.route", "/cart"), ("app.user.id", "user-7")]).await,
        cart_trace
    );
    assert!(
        found(&[("http.route", "/cart"), ("db.system", "postgresql")])
            .await
            .is_empty()
    );
    // Values that are nowhere, or spelled otherwise.
    assert!(found(&[("http.route", "/carts")]).await.is_empty());
    assert!(
        found(&[("http.response.status_code", "0500")])
            .await
            .is_empty()
    );
    assert!(found(&[("server.port", "80")]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_with_every_attribute_in_the_list_reads_and_searches_as_written() {
    let (store, _dir) = open_with_block(Some(&fixture())).await;
    check(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_with_dedicated_columns_reads_and_searches_as_written() {
    let (store, dir) = open_with_block(None).await;
    check(&store).await;
    // The columns are there, and the list holds the values that did not fit them.
    let blocks = block_dirs(dir.path());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blocks[0].join("meta.json")).unwrap()).unwrap();
    let keys: Vec<&str> = meta["dedicated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    // Only the keys the spans use with the column's type (`server.port` is text here).
    assert_eq!(
        keys,
        [
            "http.request.method",
            "http.route",
            "http.response.status_code",
            "url.full",
            "db.system",
            "db.statement",
            "rpc.grpc.status_code"
        ]
    );
    let bit = |key: &str| 1u64 << keys.iter().position(|k| *k == key).unwrap();
    let in_list = meta["row_groups"][0]["list_dedicated"].as_u64().unwrap();
    assert_eq!(
        in_list,
        bit("db.statement") | bit("http.response.status_code")
    );
    // Reopened, the block reads the same.
    drop(store);
    let store = Store::open({
        let mut c = config(dir.path());
        c.retention = Duration::from_secs(100 * 365 * 86_400);
        c
    })
    .await
    .unwrap();
    check(&store).await;
}
