//! `stitch_analysis::analyze` on very large traces: 10,000 and 100,000 spans (target: 100K
//! spans in at most 50 ms).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stitch_bench::{Generator, Preset, Profile, Rng, Shape, Topology};
use stitch_model::Trace;

/// One trace of `spans` spans over 20 services, 12 levels deep, up to 16 children per span
/// (the shape of a large batch job or fan-out request), with the synthetic preset's attributes
/// and a failing span.
fn big_trace(spans: usize) -> Trace {
    let profile = Profile {
        topology: Topology::Synthetic(Shape {
            services: 20,
            spans_per_trace: spans,
            depth: 12,
            fan_out: 16,
        }),
        error_rate: 1.0,
        ..Preset::Synthetic.profile()
    };
    let batch =
        Generator::new(&profile)
            .unwrap()
            .batch(&mut Rng::new(17), 1, 1_700_000_000_000_000_000);
    let id = batch.resource_spans[0].scope_spans[0].spans[0].trace_id;
    let mut trace = Trace::new(id);
    trace.resource_spans = batch.resource_spans;
    assert_eq!(trace.span_count(), spans);
    trace
}

fn analysis(c: &mut Criterion) {
    let options = stitch_analysis::AnalysisOptions::default();
    let mut g = c.benchmark_group("analysis");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for spans in [10_000usize, 100_000] {
        let trace = big_trace(spans);
        g.throughput(Throughput::Elements(spans as u64));
        g.bench_function(format!("analyze_{}k_spans", spans / 1000), |b| {
            b.iter(|| stitch_analysis::analyze(&trace, &options))
        });
    }
    g.finish();
}

criterion_group!(benches, analysis);
criterion_main!(benches);
