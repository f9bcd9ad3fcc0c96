//! Resident bytes per span buffered by the tail sampler, for shop-preset traces arriving as
//! services export them (each service's spans of a batch in one request), measured with a
//! counting allocator: everything the sampler holds, the spans themselves included.
//!
//! `cargo run --release -p stitch-bench --bin tail_memory [-- TRACES]`

use std::alloc::System;
use std::mem::size_of;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stitch_bench::{Generator, Preset, Rng};
use stitch_model::{Batch, Span};
use stitch_pipeline::span::span_heap_bytes;
use stitch_pipeline::{ModelSpan, SamplingConfig, TailSampler, split_batch};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() -> anyhow::Result<()> {
    let traces: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5_000);
    for preset in [Preset::Shop, Preset::LargeAttributes] {
        measure(preset, traces)?;
    }
    Ok(())
}

fn measure(preset: Preset, traces: usize) -> anyhow::Result<()> {
    let generator = Generator::new(&preset.profile())?;
    // The seed preset (errors, slow traces, 5% of the rest), deciding nothing while we count.
    let mut config = SamplingConfig::seed_preset();
    config.max_buffered_bytes = u64::MAX / 2;
    config.num_traces = usize::MAX / 2;
    config.decision_wait = Duration::from_secs(3600);
    config.decision_wait_after_root = Duration::from_secs(3600);
    let region = Region::new(GLOBAL);
    let mut tail: TailSampler<ModelSpan> = TailSampler::new(&config)?;
    let mut own_bytes = 0usize;
    let mut spans = 0usize;
    let mut n = 0;
    while spans < traces * generator.spans_per_trace() {
        let batch = generator.batch(&mut Rng::for_batch(7, n), 25, 1_000_000_000);
        n += 1;
        for rs in batch.resource_spans {
            for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                own_bytes += size_of::<Span>() + span_heap_bytes(s);
                spans += 1;
            }
            let per_service = Batch {
                resource_spans: vec![rs],
            };
            for (id, chunk) in split_batch(per_service) {
                let decided = tail.add(id, chunk, 0, 1);
                assert!(decided.is_empty(), "nothing is decided while counting");
            }
        }
    }
    let change = region.change();
    let resident = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated);
    println!(
        "{}: {spans} spans buffered: {:.0} B/span resident ({:.0} B/span the spans themselves, \
         {:.0} B/span of buffer overhead); the sampler's own estimate {:.0} B/span",
        preset.name(),
        resident as f64 / spans as f64,
        own_bytes as f64 / spans as f64,
        (resident as f64 - own_bytes as f64) / spans as f64,
        tail.buffered_bytes() as f64 / spans as f64
    );
    drop(tail);
    Ok(())
}
