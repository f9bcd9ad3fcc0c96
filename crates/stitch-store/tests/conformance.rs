//! The store keeps the contract of `stitch-query` with its spans in memory, and with every
//! append flushed into a block before it is read.

mod common;

use async_trait::async_trait;
use common::config;
use stitch_model::{Batch, Trace, TraceId};
use stitch_query::{
    Operation, ReadError, SearchQuery, SpanSink, TraceReader, WriteError, conformance,
};
use stitch_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_passes_the_conformance_suite_from_its_head() {
    conformance::run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).await.unwrap();
        (store, dir)
    })
    .await;
}

/// The store, flushing its head into a block after every append.
struct Flushing(Store);

#[async_trait]
impl SpanSink for Flushing {
    async fn append(&self, batch: Batch, received: Option<Vec<u8>>) -> Result<(), WriteError> {
        SpanSink::append(&self.0, batch, received).await?;
        self.0.flush().await.expect("flush");
        Ok(())
    }
}

#[async_trait]
impl TraceReader for Flushing {
    async fn trace(&self, id: TraceId) -> Result<Option<Trace>, ReadError> {
        self.0.trace(id).await
    }
    async fn traces_from(&self, ids: &[TraceId], from: u64) -> Result<Vec<Trace>, ReadError> {
        self.0.traces_from(ids, from).await
    }
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Trace>, ReadError> {
        self.0.search(query).await
    }
    async fn services(&self) -> Result<Vec<String>, ReadError> {
        self.0.services().await
    }
    async fn operations(&self, service: &str) -> Result<Vec<Operation>, ReadError> {
        self.0.operations(service).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_passes_the_conformance_suite_from_its_blocks() {
    conformance::run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).await.unwrap();
        (Flushing(store), dir)
    })
    .await;
}
