//! The in-memory store keeps the contract every store keeps.

use stitch_query::{MemoryStore, conformance};

#[tokio::test]
async fn the_memory_store_passes_the_conformance_suite() {
    conformance::run(|| async { (MemoryStore::new(), ()) }).await;
}
