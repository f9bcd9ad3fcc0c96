//! Resident bytes per span buffered by the tail sampler, for shop-preset traces arriving as
//! services export them (each service's spans of a batch in one request), measured with a
//! counting allocator: everything the sampler holds, the span records themselves included.
//!
//! Two records: `compact`, what the server buffers (a `CompactSpan` made by a `Compactor` for
//! the policies' needs; the span itself stays in the WAL), and `decoded`, whole model spans.
//!
//! `cargo run --release -p stitch-bench --bin tail_memory [-- TRACES]`

use std::alloc::System;
use std::mem::size_of;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stitch_bench::{Generator, Preset, Rng};
use stitch_model::{Batch, Span};
use stitch_pipeline::span::span_heap_bytes;
use stitch_pipeline::{
    CompactSpan, Compactor, ModelSpan, SamplingConfig, SpanRecord, TailSampler, split_batch,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() -> anyhow::Result<()> {
    let traces: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5_000);
    for preset in [Preset::Shop, Preset::LargeAttributes] {
        measure::<CompactSpan>(preset, traces, "compact")?;
        measure::<ModelSpan>(preset, traces, "decoded")?;
    }
    Ok(())
}

/// How a model span becomes the record under test.
trait Record: SpanRecord + Sized {
    fn make(compactor: &mut Compactor, span: ModelSpan, wire_bytes: u32) -> Self;
}

impl Record for CompactSpan {
    fn make(compactor: &mut Compactor, span: ModelSpan, wire_bytes: u32) -> Self {
        compactor.compact(&span, wire_bytes)
    }
}

impl Record for ModelSpan {
    fn make(_: &mut Compactor, span: ModelSpan, _: u32) -> Self {
        span
    }
}

fn measure<R: Record>(preset: Preset, traces: usize, record: &str) -> anyhow::Result<()> {
    let generator = Generator::new(&preset.profile())?;
    // The seed preset (errors, slow traces, 5% of the rest), deciding nothing while we count.
    let mut config = SamplingConfig::seed_preset();
    config.max_buffered_bytes = u64::MAX / 2;
    config.num_traces = usize::MAX / 2;
    config.decision_wait = Duration::from_secs(3600);
    config.decision_wait_after_root = Duration::from_secs(3600);
    let region = Region::new(GLOBAL);
    let mut tail: TailSampler<R> = TailSampler::new(&config)?;
    let mut compactor = Compactor::new(tail.span_needs());
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
                let chunk: Vec<R> = chunk
                    .into_iter()
                    .map(|s| R::make(&mut compactor, s, 300))
                    .collect();
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
        "{} ({record} records): {spans} spans buffered: {:.0} B/span resident, everything \
         included (a decoded span alone is {:.0} B); the sampler's own estimate {:.0} B/span",
        preset.name(),
        resident as f64 / spans as f64,
        own_bytes as f64 / spans as f64,
        tail.buffered_bytes() as f64 / spans as f64
    );
    drop(tail);
    drop(compactor);
    Ok(())
}
