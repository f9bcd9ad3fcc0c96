//! Bytes per span on disk after a flush, for the shop preset, compared with the same spans as
//! OTLP protobuf compressed with zstd per batch.
//!
//! `cargo run --release -p stitch-bench --bin disk_usage [-- TRACES]`

use stitch_bench::{Rng, Shop, now_unix_nanos};
use stitch_store::{Store, StoreConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let traces: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let mut config = StoreConfig::new(dir.path());
    config.fsync = false;
    config.head_max_spans = usize::MAX;
    let store = Store::open(config).await?;
    let shop = Shop::new();
    let mut rng = Rng::new(3);
    let (mut spans, mut proto_bytes, mut zstd_bytes) = (0usize, 0usize, 0usize);
    let batch_traces = 100;
    for _ in 0..traces.div_ceil(batch_traces) {
        let batch = shop.batch(&mut rng, batch_traces, now_unix_nanos());
        spans += batch.span_count();
        let payload = stitch_wire::otlp::encode_batch(&batch);
        proto_bytes += payload.len();
        zstd_bytes += zstd::encode_all(&payload[..], 3)?.len();
        store.append(payload, batch).await?;
    }
    store.flush().await?;
    let mut block_bytes = 0u64;
    for entry in walk(&dir.path().join("blocks"))? {
        block_bytes += std::fs::metadata(&entry)?.len();
    }
    println!("spans: {spans}");
    println!(
        "OTLP protobuf:            {:>8.1} B/span",
        proto_bytes as f64 / spans as f64
    );
    println!(
        "OTLP protobuf + zstd(3):  {:>8.1} B/span (per batch of {batch_traces} traces)",
        zstd_bytes as f64 / spans as f64
    );
    println!(
        "Stitch block (all files): {:>8.1} B/span",
        block_bytes as f64 / spans as f64
    );
    Ok(())
}

fn walk(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}
