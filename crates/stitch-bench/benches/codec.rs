//! OTLP decode and encode throughput, in spans per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stitch_bench::{Rng, Shop, now_unix_nanos};

fn codec(c: &mut Criterion) {
    let shop = Shop::new();
    let batch = shop.batch(&mut Rng::new(1), 50, now_unix_nanos());
    let spans = batch.span_count() as u64;
    let proto = stitch_wire::otlp::encode_batch(&batch);
    let json = stitch_wire::otlp_json::encode_json(&batch);

    let mut g = c.benchmark_group("otlp");
    g.throughput(Throughput::Elements(spans));
    g.bench_function("decode_protobuf_to_model", |b| {
        b.iter(|| stitch_wire::otlp::decode_export_request(&proto).unwrap())
    });
    g.bench_function("decode_json_to_model", |b| {
        b.iter(|| stitch_wire::otlp_json::decode_export_request(&json).unwrap())
    });
    g.bench_function("encode_model_to_protobuf", |b| {
        b.iter(|| stitch_wire::otlp::encode_batch(&batch))
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
