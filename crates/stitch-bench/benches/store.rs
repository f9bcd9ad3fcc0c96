//! The store: durable append throughput (with fsync and group commit) and trace-by-id latency
//! from blocks.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stitch_bench::{Rng, Shop, now_unix_nanos};
use stitch_model::Batch;
use stitch_query::TraceReader;
use stitch_store::{Store, StoreConfig};

/// Appends from this many concurrent senders, as a busy collector would see.
const SENDERS: usize = 16;
const TRACES_PER_BATCH: usize = 20;

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(async {
        let mut config = StoreConfig::new(dir.path());
        config.head_max_spans = 2_000_000;
        Store::open(config).await.unwrap()
    });
    let shop = Shop::new();
    let mut rng = Rng::new(7);
    let batches: Vec<(Vec<u8>, Batch)> = (0..SENDERS)
        .map(|_| {
            let b = shop.batch(&mut rng, TRACES_PER_BATCH, now_unix_nanos());
            (stitch_wire::otlp::encode_batch(&b), b)
        })
        .collect();
    let spans: usize = batches.iter().map(|(_, b)| b.span_count()).sum();
    let batches = Arc::new(batches);

    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(spans as u64));
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("append_durable_16_senders", |b| {
        b.to_async(&rt).iter(|| {
            let store = store.clone();
            let batches = batches.clone();
            async move {
                let mut tasks = Vec::with_capacity(SENDERS);
                for i in 0..SENDERS {
                    let store = store.clone();
                    let batches = batches.clone();
                    tasks.push(tokio::spawn(async move {
                        let (payload, batch) = &batches[i];
                        store.append(payload.clone(), batch.clone()).await.unwrap();
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            }
        })
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shop = Shop::new();
    let mut rng = Rng::new(11);
    let (store, ids) = rt.block_on(async {
        let mut config = StoreConfig::new(dir.path());
        config.fsync = false;
        let store = Store::open(config).await.unwrap();
        let mut ids = Vec::new();
        // 20,000 traces of 22 spans in 4 blocks.
        for block in 0..4 {
            for _ in 0..50 {
                let batch = shop.batch(&mut rng, 100, now_unix_nanos());
                if block == 0 {
                    ids.extend(batch.split_by_trace().into_iter().map(|(id, _)| id));
                }
                let payload = stitch_wire::otlp::encode_batch(&batch);
                store.append(payload, batch).await.unwrap();
            }
            store.flush().await.unwrap();
        }
        (store, ids)
    });
    let mut g = c.benchmark_group("store");
    let mut i = 0;
    g.bench_function("trace_by_id_from_blocks_440k_spans", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 7919) % ids.len();
            let id = ids[i];
            let store = store.clone();
            async move {
                let t = store.trace(id).await.unwrap().unwrap();
                assert!(t.span_count() >= 20);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, append, lookup);
criterion_main!(benches);
