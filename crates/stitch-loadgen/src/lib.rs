//! `stitch loadgen`: realistic trace load for benchmarks and soak tests, and a correctness canary.
//!
//! [`run`] sends generated traces ([`Generator`], from a [`Profile`]) over one [`Protocol`]
//! from N concurrent connections, at a target rate in spans per second or as fast as the
//! receiver acknowledges, for a duration or a number of spans. Every batch is generated fresh
//! (unique trace ids, timestamps of now) from `Rng::for_batch(seed, n)`, so a run is
//! reproducible from its seed. Requests the receiver throttles are retried as an OpenTelemetry
//! exporter would ([`retry`]). The [`LoadReport`] gives the acknowledged spans per second,
//! export latency percentiles (first attempt to final answer, retries included, as an SDK sees
//! it), retried and failed requests, and the generator's own CPU time (it shares the machine
//! with the server in benchmarks).
//!
//! With [`VerifyOptions`], a uniform sample of the acknowledged traces is read back through the
//! query API afterwards and compared span by span ([`verify`]).
//!
//! One connection is one worker: it generates a batch, encodes it, waits for its slot in the
//! rate, sends it (with retries), and records the answer. With the Jaeger agent (UDP) there is
//! no answer: a datagram counts as acknowledged when the kernel takes it, so use a rate and
//! `--verify` to learn what arrived.

mod generate;
mod histogram;
mod protocol;
pub mod retry;
pub mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

pub use generate::{
    Generator, Preset, Profile, ProfileError, Rng, Shape, Shop, Synthetic, Topology, now_unix_nanos,
};
pub use histogram::Histogram;
pub use protocol::{MAX_DATAGRAM, Protocol};
pub use retry::{Outcome, RetryPolicy};
pub use verify::{Expected, Reservoir, VerifyReport};

use protocol::Sender;
use retry::{TokioSleep, send_with_retry};

/// When a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Stop starting new batches after this long.
    After(Duration),
    /// Send this many spans (rounded up to whole traces).
    Spans(u64),
}

/// Reading traces back after the run.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The query API, e.g. `http://127.0.0.1:16686`.
    pub query_url: String,
    /// Traces to check.
    pub sample: usize,
    /// How long to keep re-reading traces that are not complete yet.
    pub timeout: Duration,
}

/// What to send, where, and how fast.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub protocol: Protocol,
    /// `host:port` or a URL (see [`Protocol::target`]).
    pub endpoint: String,
    pub profile: Profile,
    /// Whole traces per request (OTLP and Zipkin send one request per batch; the Jaeger
    /// collector one per service of the batch; the Jaeger agent as many datagrams as needed).
    pub traces_per_batch: usize,
    /// Concurrent connections, each with at most one request in flight.
    pub connections: usize,
    /// Target spans per second over all connections; `None` is as fast as possible.
    pub rate: Option<f64>,
    pub stop: Stop,
    pub seed: u64,
    /// Timeout of one attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub verify: Option<VerifyOptions>,
    /// A progress line on stderr every five seconds.
    pub progress: bool,
}

impl LoadOptions {
    /// Defaults: the shop preset over OTLP/gRPC to 127.0.0.1:4317, 25 traces per request,
    /// 4 connections, as fast as possible, for 10 s.
    pub fn new(protocol: Protocol) -> LoadOptions {
        LoadOptions {
            protocol,
            endpoint: protocol.default_endpoint().to_owned(),
            profile: Preset::Shop.profile(),
            traces_per_batch: 25,
            connections: 4,
            rate: None,
            stop: Stop::After(Duration::from_secs(10)),
            seed: now_unix_nanos(),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            verify: None,
            progress: false,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The outcome of a run.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    pub protocol: &'static str,
    pub target: String,
    pub preset: &'static str,
    pub spans_per_trace: usize,
    pub services: usize,
    pub connections: usize,
    pub traces_per_batch: usize,
    /// The target rate, `None` for as fast as possible.
    pub target_spans_per_second: Option<f64>,
    pub seed: u64,
    pub elapsed_seconds: f64,
    /// Spans in acknowledged batches (for UDP: sent).
    pub spans: u64,
    pub traces: u64,
    pub spans_per_second: f64,
    /// Bytes of acknowledged request bodies.
    pub bytes: u64,
    /// Requests that got a final answer, and their latency (first attempt to final answer).
    pub requests: u64,
    pub latency: Latency,
    /// Requests retried at least once, and the retries in all.
    pub retried_requests: u64,
    pub retries: u64,
    /// Retryable answers (429/502/503/504, gRPC UNAVAILABLE and friends, transport errors).
    pub retryable_answers: u64,
    /// Requests that failed for good (a permanent error, or retries exhausted), the spans they
    /// carried, and the first reason.
    pub failed_requests: u64,
    pub failed_spans: u64,
    pub first_failure: Option<String>,
    /// Spans the receiver accepted the request of but left out (partial success).
    pub rejected_spans: u64,
    /// CPU time of the load generator itself (user + system), from `/proc/self/stat`.
    pub loadgen_cpu_seconds: Option<f64>,
    pub verify: Option<VerifyReport>,
}

impl LoadReport {
    /// Whether verification (if asked for) found every sampled trace complete.
    pub fn verified(&self) -> bool {
        self.verify.as_ref().is_none_or(VerifyReport::passed)
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = match self.target_spans_per_second {
            Some(r) => format!("target {} spans/s", thousands(r as u64)),
            None => "as fast as possible".into(),
        };
        writeln!(
            f,
            "loadgen: {} to {}; preset {} ({} spans/trace, {} services); {} connections, {} \
             traces/request, {rate}; seed {}",
            self.protocol,
            self.target,
            self.preset,
            self.spans_per_trace,
            self.services,
            self.connections,
            self.traces_per_batch,
            self.seed
        )?;
        let verb = if self.protocol == Protocol::JaegerThriftUdp.name() {
            "sent (UDP: not acknowledged)"
        } else {
            "acknowledged"
        };
        writeln!(
            f,
            "{verb}: {} spans ({} traces, {:.1} MB) in {:.2} s = {} spans/s",
            thousands(self.spans),
            thousands(self.traces),
            self.bytes as f64 / 1e6,
            self.elapsed_seconds,
            thousands(self.spans_per_second.round() as u64)
        )?;
        writeln!(
            f,
            "export latency over {} requests: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
            thousands(self.requests),
            self.latency.p50_ms,
            self.latency.p90_ms,
            self.latency.p99_ms,
            self.latency.max_ms
        )?;
        writeln!(
            f,
            "retried requests: {} ({} retries after {} retryable answers); failed requests: {} \
             ({} spans); spans rejected by the receiver: {}",
            self.retried_requests,
            self.retries,
            self.retryable_answers,
            self.failed_requests,
            self.failed_spans,
            self.rejected_spans
        )?;
        if let Some(reason) = &self.first_failure {
            writeln!(f, "first failure: {reason}")?;
        }
        if let Some(cpu) = self.loadgen_cpu_seconds {
            writeln!(
                f,
                "loadgen CPU: {cpu:.2} s ({:.2} cores)",
                cpu / self.elapsed_seconds.max(1e-9)
            )?;
        }
        if let Some(v) = &self.verify {
            writeln!(
                f,
                "verify: {} of {} sampled traces complete; {} missing, {} incomplete, {} wrong; \
                 {} duplicated spans",
                v.complete, v.checked, v.missing, v.incomplete, v.wrong, v.duplicated_spans
            )?;
            for p in &v.problems {
                writeln!(
                    f,
                    "  {} {}: {} of {} spans found; {}",
                    p.problem, p.trace_id, p.found_spans, p.expected_spans, p.detail
                )?;
            }
        }
        Ok(())
    }
}

/// What each worker counts.
struct WorkerStats {
    latency: Histogram,
    requests: u64,
    spans: u64,
    traces: u64,
    bytes: u64,
    retried_requests: u64,
    retries: u64,
    retryable_answers: u64,
    failed_requests: u64,
    failed_spans: u64,
    first_failure: Option<String>,
    rejected_spans: u64,
    sample: Reservoir,
}

/// Paces sends to a rate: each batch reserves its spans' share of time.
struct Pacer {
    start: Instant,
    spans_per_second: f64,
    reserved: Mutex<f64>,
}

impl Pacer {
    /// When a batch of `spans` may go. A sender that fell behind may catch up by at most one
    /// second's worth of spans, not burst to make up for a long stall.
    fn slot(&self, spans: usize) -> Instant {
        let mut reserved = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        let due = self.start.elapsed().as_secs_f64() * self.spans_per_second;
        *reserved = reserved.max(due - self.spans_per_second);
        let at = self.start + Duration::from_secs_f64(*reserved / self.spans_per_second);
        *reserved += spans as f64;
        at
    }
}

/// Hands out batches: a batch number and how many traces it holds; `None` when the run is over.
struct Work {
    next_batch: AtomicU64,
    traces_per_batch: u64,
    /// Traces in all (span-count runs).
    total_traces: Option<u64>,
    deadline: Option<Instant>,
}

impl Work {
    fn claim(&self) -> Option<(u64, usize)> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let n = self.next_batch.fetch_add(1, Ordering::Relaxed);
        let first = n * self.traces_per_batch;
        let traces = match self.total_traces {
            Some(total) if first >= total => return None,
            Some(total) => (total - first).min(self.traces_per_batch),
            None => self.traces_per_batch,
        };
        Some((n, traces as usize))
    }
}

struct Shared {
    options: LoadOptions,
    generator: Generator,
    target: String,
    work: Work,
    pacer: Option<Pacer>,
    acknowledged_spans: AtomicU64,
}

/// Runs the load and, if asked, the verification. Errors are for setup problems (bad profile,
/// nothing listening); a verification that fails is a report with `verified() == false`.
pub async fn run(options: LoadOptions) -> anyhow::Result<LoadReport> {
    let generator = Generator::new(&options.profile)?;
    if options.connections == 0 {
        anyhow::bail!("--connections must be at least 1");
    }
    if options.traces_per_batch == 0 {
        anyhow::bail!("--traces-per-request must be at least 1");
    }
    if let Some(rate) = options.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        anyhow::bail!("--rate must be a positive number of spans per second");
    }
    let target = options.protocol.target(&options.endpoint);
    let spans_per_trace = generator.spans_per_trace() as u64;
    let (total_traces, duration) = match options.stop {
        Stop::Spans(n) => (Some(n.div_ceil(spans_per_trace)), None),
        Stop::After(d) => (None, Some(d)),
    };

    let mut senders = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        senders.push(Sender::connect(options.protocol, &target, options.timeout).await?);
    }
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let shared = Arc::new(Shared {
        pacer: options.rate.map(|r| Pacer {
            start: started,
            spans_per_second: r,
            reserved: Mutex::new(0.0),
        }),
        work: Work {
            next_batch: AtomicU64::new(0),
            traces_per_batch: options.traces_per_batch as u64,
            total_traces,
            deadline: duration.map(|d| started + d),
        },
        generator,
        target: target.clone(),
        acknowledged_spans: AtomicU64::new(0),
        options,
    });

    let progress = shared.options.progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let now = Instant::now();
                let spans = shared.acknowledged_spans.load(Ordering::Relaxed);
                eprintln!(
                    "loadgen: {:.0} s: {} spans, {} spans/s over the last {:.0} s",
                    started.elapsed().as_secs_f64(),
                    thousands(spans),
                    thousands(((spans - last.1) as f64 / (now - last.0).as_secs_f64()) as u64),
                    (now - last.0).as_secs_f64()
                );
                last = (now, spans);
            }
        })
    });

    let mut workers = Vec::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let shared = shared.clone();
        workers.push(tokio::spawn(worker(shared, sender, i as u64)));
    }
    let mut stats = Vec::new();
    for w in workers {
        stats.push(w.await.context("a load generator worker panicked")?);
    }
    let elapsed = started.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    let cpu = match (cpu_before, process_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };

    let options = &shared.options;
    let mut latency = Histogram::new();
    let mut report = LoadReport {
        protocol: options.protocol.name(),
        target: shared.target.clone(),
        preset: options.profile.preset.name(),
        spans_per_trace: shared.generator.spans_per_trace(),
        services: shared.generator.services(),
        connections: options.connections,
        traces_per_batch: options.traces_per_batch,
        target_spans_per_second: options.rate,
        seed: options.seed,
        elapsed_seconds: elapsed.as_secs_f64(),
        spans: 0,
        traces: 0,
        spans_per_second: 0.0,
        bytes: 0,
        requests: 0,
        latency: Latency::default(),
        retried_requests: 0,
        retries: 0,
        retryable_answers: 0,
        failed_requests: 0,
        failed_spans: 0,
        first_failure: None,
        rejected_spans: 0,
        loadgen_cpu_seconds: cpu,
        verify: None,
    };
    let mut samples = Vec::new();
    for s in stats {
        latency.merge(&s.latency);
        report.spans += s.spans;
        report.traces += s.traces;
        report.bytes += s.bytes;
        report.requests += s.requests;
        report.retried_requests += s.retried_requests;
        report.retries += s.retries;
        report.retryable_answers += s.retryable_answers;
        report.failed_requests += s.failed_requests;
        report.failed_spans += s.failed_spans;
        report.rejected_spans += s.rejected_spans;
        if report.first_failure.is_none() {
            report.first_failure = s.first_failure;
        }
        samples.push(s.sample);
    }
    report.spans_per_second = report.spans as f64 / elapsed.as_secs_f64().max(1e-9);
    report.latency = Latency {
        p50_ms: ms(latency.quantile(0.50)),
        p90_ms: ms(latency.quantile(0.90)),
        p99_ms: ms(latency.quantile(0.99)),
        max_ms: ms(latency.max()),
    };
    if let Some(v) = &options.verify {
        let sample = Reservoir::merge(samples, v.sample, options.seed);
        if sample.is_empty() {
            report.verify = Some(VerifyReport::default());
        } else {
            report.verify = Some(verify::verify(&v.query_url, &sample, v.timeout).await?);
        }
    }
    Ok(report)
}

async fn worker(shared: Arc<Shared>, mut sender: Sender, index: u64) -> WorkerStats {
    let options = &shared.options;
    let sample_size = options.verify.as_ref().map_or(0, |v| v.sample);
    let mut stats = WorkerStats {
        latency: Histogram::new(),
        requests: 0,
        spans: 0,
        traces: 0,
        bytes: 0,
        retried_requests: 0,
        retries: 0,
        retryable_answers: 0,
        failed_requests: 0,
        failed_spans: 0,
        first_failure: None,
        rejected_spans: 0,
        sample: Reservoir::new(sample_size, options.seed ^ index),
    };
    let mut jitter = Rng::new(options.seed.wrapping_add(index));
    while let Some((n, traces)) = shared.work.claim() {
        let batch = shared.generator.batch(
            &mut Rng::for_batch(options.seed, n),
            traces,
            now_unix_nanos(),
        );
        let spans = batch.span_count();
        let payloads = options.protocol.encode(&batch);
        if let Some(pacer) = &shared.pacer {
            tokio::time::sleep_until(pacer.slot(spans).into()).await;
        }
        let mut all_accepted = true;
        let mut bytes = 0;
        for payload in payloads {
            let len = payload.len() as u64;
            let t = Instant::now();
            let a = send_with_retry(
                &mut sender,
                payload,
                &options.retry,
                &mut jitter,
                &TokioSleep,
            )
            .await;
            stats.latency.record(t.elapsed());
            stats.requests += 1;
            stats.retries += u64::from(a.attempts - 1);
            stats.retried_requests += u64::from(a.attempts > 1);
            stats.retryable_answers += u64::from(a.retryable_answers);
            match a.outcome {
                Outcome::Accepted { rejected_spans } => {
                    stats.rejected_spans += rejected_spans;
                    bytes += len;
                }
                Outcome::Retryable { reason, .. } | Outcome::Failed { reason } => {
                    all_accepted = false;
                    stats.failed_requests += 1;
                    stats.first_failure.get_or_insert(reason);
                }
            }
        }
        stats.bytes += bytes;
        if all_accepted {
            stats.spans += spans as u64;
            stats.traces += traces as u64;
            shared
                .acknowledged_spans
                .fetch_add(spans as u64, Ordering::Relaxed);
            stats.sample.offer_batch(&batch);
        } else {
            stats.failed_spans += spans as u64;
        }
    }
    stats
}

/// User + system CPU seconds of this process, from `/proc/self/stat` (Linux; `None` elsewhere).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses: state is field 3,
    // utime 14 and stime 15, in clock ticks of 1/100 s (USER_HZ on every Linux platform).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_count_runs_hand_out_whole_traces_up_to_the_total() {
        let work = Work {
            next_batch: AtomicU64::new(0),
            traces_per_batch: 10,
            total_traces: Some(25),
            deadline: None,
        };
        assert_eq!(work.claim(), Some((0, 10)));
        assert_eq!(work.claim(), Some((1, 10)));
        assert_eq!(work.claim(), Some((2, 5)));
        assert_eq!(work.claim(), None);
        assert_eq!(work.claim(), None);
    }

    #[test]
    fn the_pacer_spreads_batches_over_time_and_limits_catching_up() {
        let start = Instant::now() - Duration::from_secs(10);
        let pacer = Pacer {
            start,
            spans_per_second: 1000.0,
            reserved: Mutex::new(0.0),
        };
        // Ten seconds late: at most one second of backlog is sent at once.
        let first = pacer.slot(500);
        let lag = first.duration_since(start).as_secs_f64();
        assert!((8.9..9.1).contains(&lag), "{lag}");
        let second = pacer.slot(500);
        assert!((second.duration_since(first).as_secs_f64() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn proc_stat_gives_cpu_time() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_seconds().is_some());
        }
    }

    #[test]
    fn the_report_reads_well() {
        let r = LoadReport {
            protocol: "otlp-grpc",
            target: "http://127.0.0.1:4317".into(),
            preset: "shop",
            spans_per_trace: 22,
            services: 10,
            connections: 4,
            traces_per_batch: 25,
            target_spans_per_second: None,
            seed: 1,
            elapsed_seconds: 10.0,
            spans: 1_234_567,
            traces: 56_117,
            spans_per_second: 123_456.7,
            bytes: 360_000_000,
            requests: 2_245,
            latency: Latency {
                p50_ms: 12.5,
                p90_ms: 20.0,
                p99_ms: 31.25,
                max_ms: 80.0,
            },
            retried_requests: 1,
            retries: 2,
            retryable_answers: 2,
            failed_requests: 0,
            failed_spans: 0,
            first_failure: None,
            rejected_spans: 0,
            loadgen_cpu_seconds: Some(2.5),
            verify: Some(VerifyReport {
                checked: 100,
                complete: 100,
                ..Default::default()
            }),
        };
        let text = r.to_string();
        assert!(text.contains("acknowledged: 1,234,567 spans (56,117 traces, 360.0 MB) in 10.00 s = 123,457 spans/s"), "{text}");
        assert!(
            text.contains("p50 12.5 ms, p90 20 ms, p99 31.25 ms"),
            "{text}"
        );
        assert!(
            text.contains("verify: 100 of 100 sampled traces complete"),
            "{text}"
        );
        assert!(r.verified());
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }
}
