//! Durable ingest throughput of a running `stitch serve`: sends pre-encoded shop-preset batches
//! over OTLP/gRPC or OTLP/HTTP (protobuf) from N concurrent senders for a fixed time and reports
//! acknowledged spans per second and export latency percentiles.
//!
//! `cargo run --release -p stitch-bench --bin ingest_load -- --grpc 127.0.0.1:4317 --senders 8 --seconds 20`
//! `cargo run --release -p stitch-bench --bin ingest_load -- --http 127.0.0.1:4318 ...`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use stitch_bench::{Rng, Shop, now_unix_nanos};

enum Target {
    Grpc(String),
    Http(String),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut target = None;
    let (mut senders, mut seconds, mut traces_per_batch) = (8usize, 10u64, 25usize);
    while let Some(a) = args.next() {
        let mut val = || args.next().context("flag needs a value");
        match a.as_str() {
            "--grpc" => target = Some(Target::Grpc(format!("http://{}", val()?))),
            "--http" => target = Some(Target::Http(format!("http://{}/v1/traces", val()?))),
            "--senders" => senders = val()?.parse()?,
            "--seconds" => seconds = val()?.parse()?,
            "--traces-per-batch" => traces_per_batch = val()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let target = target.context("give --grpc ADDR or --http ADDR")?;

    let shop = Shop::new();
    let mut rng = Rng::new(now_unix_nanos());
    let pool: Vec<(Vec<u8>, usize)> = (0..256)
        .map(|_| {
            let b = shop.batch(&mut rng, traces_per_batch, now_unix_nanos());
            (stitch_wire::otlp::encode_batch(&b), b.span_count())
        })
        .collect();
    let pool = Arc::new(pool);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let pool = pool.clone();
        let target = match &target {
            Target::Grpc(u) => Target::Grpc(u.clone()),
            Target::Http(u) => Target::Http(u.clone()),
        };
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut spans, mut failed) = (0usize, 0usize);
            let mut i = s * 31;
            match target {
                Target::Grpc(url) => {
                    let mut client = TraceServiceClient::connect(url).await?;
                    while Instant::now() < deadline {
                        let (bytes, n) = &pool[i % pool.len()];
                        i += 1;
                        let req = ExportTraceServiceRequest::decode(&bytes[..])?;
                        let t = Instant::now();
                        match client.export(req).await {
                            Ok(_) => spans += n,
                            Err(_) => failed += 1,
                        }
                        latencies.push(t.elapsed());
                    }
                }
                Target::Http(url) => {
                    let client = reqwest::Client::new();
                    while Instant::now() < deadline {
                        let (bytes, n) = &pool[i % pool.len()];
                        i += 1;
                        let t = Instant::now();
                        let r = client
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .body(bytes.clone())
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status().is_success() => spans += n,
                            _ => failed += 1,
                        }
                        latencies.push(t.elapsed());
                    }
                }
            }
            Ok::<_, anyhow::Error>((spans, failed, latencies))
        }));
    }
    let (mut spans, mut failed, mut latencies) = (0usize, 0usize, Vec::new());
    for t in tasks {
        let (s, f, l) = t.await??;
        spans += s;
        failed += f;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "acknowledged {spans} spans in {elapsed:.1} s: {:.0} spans/s; {} requests, {failed} failed",
        spans as f64 / elapsed,
        latencies.len()
    );
    println!(
        "export latency p50 {:?} p90 {:?} p99 {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99)
    );
    Ok(())
}
