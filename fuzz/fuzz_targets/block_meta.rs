//! A block's small files (`meta.json`, `bloom.bin`, `index.bin`) of arbitrary bytes, as a
//! damaged or hostile bucket holds them: loading the block never panics, it either opens or is
//! refused as corrupt, and an opened block answers its in-memory questions.
//!
//! Input: two little-endian u16 lengths, then `meta.json`, `bloom.bin` and `index.bin`
//! (the rest).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use object_store::{ObjectStoreExt, PutPayload};
use object_store::memory::InMemory;
use stitch_model::TraceId;
use stitch_query::SearchQuery;
use stitch_store::block::{BlockHandle, FooterCache, block_dir};

fuzz_target!(|data: &[u8]| {
    let Some((meta, bloom, index)) = split(data) else {
        return;
    };
    futures::executor::block_on(async {
        let store = Arc::new(InMemory::new());
        let dir = block_dir("b1");
        for (name, bytes) in [("meta.json", meta), ("bloom.bin", bloom), ("index.bin", index)] {
            store
                .put(&dir.clone().join(name), PutPayload::from(bytes.to_vec()))
                .await
                .expect("an in-memory put");
        }
        let footers = Arc::new(FooterCache::new(1 << 20));
        if let Ok(block) = BlockHandle::load(store, footers, "b1").await {
            let _ = block.resident_bytes();
            let _ = block.operations().count();
            // With no data file in the bucket, reads end in an error once they get past the
            // in-memory filters and indexes; they must not panic on the way.
            let mut traces = std::collections::HashMap::new();
            let _ = block
                .collect_traces(&[TraceId::from_halves(1, 2)], &mut traces)
                .await;
            let query = SearchQuery {
                service: Some("checkout".into()),
                tags: vec![("http.route".into(), "/cart".into())],
                min_duration_nanos: Some(1_000),
                limit: 20,
                ..Default::default()
            };
            let _ = block.search(&query, &mut std::collections::HashMap::new()).await;
        }
    });
});

fn split(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let meta_len = u16::from_le_bytes(data.get(..2)?.try_into().ok()?) as usize;
    let bloom_len = u16::from_le_bytes(data.get(2..4)?.try_into().ok()?) as usize;
    let rest = &data[4..];
    let meta = rest.get(..meta_len)?;
    let bloom = rest.get(meta_len..meta_len + bloom_len)?;
    Some((meta, bloom, &rest[meta_len + bloom_len..]))
}
