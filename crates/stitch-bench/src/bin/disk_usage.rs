//! Bytes per span on disk after a flush, compared with the same spans as OTLP protobuf
//! compressed with zstd per batch.
//!
//! `cargo run --release -p stitch-bench --bin disk_usage -- [--preset shop|large-attributes|synthetic] [TRACES]`

use anyhow::Context as _;
use stitch_bench::{Generator, Preset, Rng, now_unix_nanos, walk};
use stitch_store::{Store, StoreConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut preset = Preset::Shop;
    let mut traces: usize = 20_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--preset" => {
                preset = args
                    .next()
                    .context("--preset needs a value")?
                    .parse()
                    .map_err(anyhow::Error::msg)?
            }
            n => {
                traces = n
                    .parse()
                    .with_context(|| format!("not a trace count: {n}"))?
            }
        }
    }
    let dir = tempfile::tempdir()?;
    let mut config = StoreConfig::new(dir.path());
    config.fsync = false;
    config.head_max_spans = usize::MAX;
    config.head_max_bytes = usize::MAX;
    let store = Store::open(config).await?;
    let generator = Generator::new(&preset.profile())?;
    let mut rng = Rng::new(3);
    let (mut spans, mut proto_bytes, mut zstd_bytes) = (0usize, 0usize, 0usize);
    let batch_traces = 100;
    for _ in 0..traces.div_ceil(batch_traces) {
        let batch = generator.batch(&mut rng, batch_traces, now_unix_nanos());
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
    println!("preset: {}", preset.name());
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
    // The flush loads each new block's Parquet footer into the cache; reads keep it there.
    let memory = store.block_memory();
    println!(
        "Parquet footer in memory: {:>8.1} KiB per block ({} blocks, {:.2} B/span)",
        memory.footer_bytes as f64 / 1024.0 / memory.footer_blocks.max(1) as f64,
        memory.footer_blocks,
        memory.footer_bytes as f64 / spans as f64
    );
    Ok(())
}
