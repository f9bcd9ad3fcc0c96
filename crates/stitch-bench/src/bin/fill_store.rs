//! Fills a data directory with generated traces, as `stitch serve` would store them, for the
//! query benchmarks: spans are appended through the store (WAL, head, flush to Parquet blocks
//! at the default head size) with fsync off, their start times spread evenly over a window
//! ending now, so that searches over the window see many blocks.
//!
//! `fill_store --data-dir DIR --spans 10000000 [--spread 24h] [--preset shop] [--ids-out FILE] [--ids 2000] [--user-ids N]`
//!
//! Writes `--ids` trace ids, taken evenly over the whole fill, one per line to `--ids-out`.
//! With `--user-ids N`, every root span gets a high-cardinality attribute `app.user.id` =
//! `user-<k>` (k from the trace id, below N), except one trace in the middle of the fill whose
//! root has `user-rare`: the needle of the selective searches.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use stitch_bench::{Generator, Preset, Rng, now_unix_nanos, walk};
use stitch_store::{Store, StoreConfig, StoreError};

/// Gives every root span an `app.user.id`; with `needle`, the first root gets `user-rare`.
fn add_user_ids(batch: &mut stitch_model::Batch, pool: u64, mut needle: bool) {
    for rs in &mut batch.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in ss.spans.iter_mut().filter(|s| s.parent_span_id.is_none()) {
                let user = if needle {
                    needle = false;
                    "user-rare".to_owned()
                } else {
                    let (hi, lo) = span.trace_id.halves();
                    format!("user-{}", (hi ^ lo.rotate_left(29)) % pool)
                };
                span.attributes
                    .push(stitch_model::KeyValue::new("app.user.id", user));
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut data_dir: Option<PathBuf> = None;
    let mut spans_wanted: u64 = 10_000_000;
    let mut spread = Duration::from_secs(24 * 3600);
    let mut preset = Preset::Shop;
    let mut ids_out: Option<PathBuf> = None;
    let mut ids_wanted: u64 = 2_000;
    let mut user_ids: u64 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--data-dir" => data_dir = Some(value()?.into()),
            "--spans" => spans_wanted = value()?.parse()?,
            "--spread" => spread = humantime::parse_duration(&value()?)?,
            "--preset" => preset = value()?.parse().map_err(anyhow::Error::msg)?,
            "--ids-out" => ids_out = Some(value()?.into()),
            "--ids" => ids_wanted = value()?.parse()?,
            "--user-ids" => user_ids = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let data_dir = data_dir.context("give --data-dir")?;
    let mut config = StoreConfig::new(&data_dir);
    config.fsync = false;
    let store = Store::open(config).await?;
    let generator = Generator::new(&preset.profile())?;
    let per_trace = generator.spans_per_trace() as u64;
    let traces_per_batch = 100u64;
    let batches = spans_wanted.div_ceil(per_trace * traces_per_batch);
    let id_every = (batches / ids_wanted.max(1)).max(1);
    let end = now_unix_nanos();
    let start = end.saturating_sub(spread.as_nanos() as u64);
    let step = spread.as_nanos() as u64 / batches.max(1);
    let mut ids = Vec::new();
    let mut spans = 0u64;
    let t = Instant::now();
    let make = |n: u64| {
        let mut batch = generator.batch(
            &mut Rng::for_batch(42, n),
            traces_per_batch as usize,
            start + n * step,
        );
        if user_ids > 0 {
            add_user_ids(&mut batch, user_ids, n == batches / 2);
        }
        batch
    };
    for n in 0..batches {
        let batch = make(n);
        if n % id_every == 0 && (ids.len() as u64) < ids_wanted {
            ids.push(batch.resource_spans[0].scope_spans[0].spans[0].trace_id);
        }
        spans += batch.span_count() as u64;
        let payload = stitch_wire::otlp::encode_batch(&batch);
        let mut attempt = store.append(payload, batch).await;
        // The store refuses appends while the flusher is behind (bounded memory); wait for it
        // and send the same batch again (batches are deterministic, so it is regenerated).
        let mut waited = 0;
        while let Err(e) = attempt {
            if matches!(e, StoreError::WalClosed) || waited >= 600 {
                return Err(e).context("the store refused a batch");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
            let batch = make(n);
            let payload = stitch_wire::otlp::encode_batch(&batch);
            attempt = store.append(payload, batch).await;
        }
        if n % 2_000 == 0 && n > 0 {
            eprintln!(
                "fill_store: {spans} spans in {:.0} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    store.flush().await?;
    let elapsed = t.elapsed().as_secs_f64();
    let mut block_bytes = 0u64;
    let mut blocks = 0;
    for f in walk(&data_dir.join("blocks"))? {
        block_bytes += std::fs::metadata(&f)?.len();
        if f.file_name().is_some_and(|n| n == "meta.json") {
            blocks += 1;
        }
    }
    println!(
        "filled {} with {spans} spans ({} preset) over {} in {elapsed:.0} s: {blocks} blocks, \
         {:.1} B/span",
        data_dir.display(),
        preset.name(),
        humantime::format_duration(spread),
        block_bytes as f64 / spans as f64
    );
    if let Some(path) = ids_out {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for id in &ids {
            writeln!(f, "{id}")?;
        }
        f.flush()?;
    }
    Ok(())
}
