//! The load generator: requests at a steady rate, round-robin over the scenarios, from an
//! uninstrumented client (so every trace starts at the scenario's entry service).
//!
//! The rare-timeout scenario has a stream of its own: it needs on the order of 10,000 cheap
//! requests for "one in 10,000" to mean something, so it sends [`RARE_RATE`] requests per
//! second (at least [`RARE_ONE_IN`] of them) beside the other scenarios, which share `rate`.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::fleet::Fleet;
use crate::scenario::Scenario;
use crate::services::{RARE_ONE_IN, RARE_TIMEOUT_MS};

/// Every scenario gets at least this many requests, whatever the rate and duration.
pub(crate) const MIN_REQUESTS_PER_SCENARIO: u64 = 2;

/// Requests per second of the rare-timeout scenario (its own stream, beside `--rate`).
pub const RARE_RATE: f64 = 500.0;

/// How long one request may take before the generator gives up on it: longer than the rare
/// request's 30 s timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(RARE_TIMEOUT_MS + 15_000);

/// What the generator sent.
pub(crate) struct Traffic {
    pub sent: u64,
    pub failed: u64,
    /// Per scenario, in the order given: `(scenario, sent, failed)`.
    pub per_scenario: Vec<(Scenario, u64, u64)>,
    pub elapsed: Duration,
}

struct Counters {
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    per_scenario: Vec<(AtomicU64, AtomicU64)>,
}

type Target = (Scenario, reqwest::Method, String);

/// One steady stream of requests: `total` of them, `interval` apart, round-robin over
/// `slots` (indices into the targets).
struct Stream {
    slots: Vec<usize>,
    interval: Duration,
    total: u64,
}

/// Sends `rate` requests per second for `duration`, round-robin over the scenarios other than
/// rare-timeout (at least [`MIN_REQUESTS_PER_SCENARIO`] each), and rare-timeout's own stream
/// when it is selected, then waits for every answer.
pub(crate) async fn drive(
    fleet: &Fleet,
    scenarios: &[Scenario],
    rate: f64,
    duration: Duration,
    progress: bool,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> anyhow::Result<Traffic> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("failed to build the load generator's HTTP client")?;
    let targets: Vec<Target> = scenarios
        .iter()
        .map(|&s| {
            let entry = s.entry();
            let base = fleet
                .base_url(entry.service)
                .with_context(|| format!("{} is not running", entry.service))?;
            let method = reqwest::Method::from_bytes(entry.method.as_bytes())?;
            Ok((s, method, format!("{base}{}", entry.path)))
        })
        .collect::<anyhow::Result<_>>()?;
    let streams = streams(&targets, rate, duration);
    let total: u64 = streams.iter().map(|s| s.total).sum();
    let counters = Arc::new(Counters {
        sent: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        per_scenario: targets.iter().map(|_| Default::default()).collect(),
    });

    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    // Stops the progress line even if this future is dropped half-way.
    let _done_on_drop = DoneOnDrop(done.clone());
    let printer = progress.then(|| {
        let counters = counters.clone();
        let done = done.clone();
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                print_progress(&counters, total, started.elapsed(), duration);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    });

    let sent = futures::future::join_all(
        streams
            .into_iter()
            .map(|stream| send(stream, &targets, &client, &counters, started, stop.clone())),
    )
    .await;
    for r in sent.into_iter().flatten() {
        let _ = r.await;
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    if let Some(p) = printer {
        let _ = p.await;
        print_progress(&counters, total, elapsed, duration);
        eprintln!();
    }
    Ok(Traffic {
        sent: counters.sent.load(Ordering::SeqCst),
        failed: counters.failed.load(Ordering::SeqCst),
        per_scenario: targets
            .iter()
            .zip(&counters.per_scenario)
            .map(|((s, _, _), (sent, failed))| {
                (
                    *s,
                    sent.load(Ordering::SeqCst),
                    failed.load(Ordering::SeqCst),
                )
            })
            .collect(),
        elapsed,
    })
}

/// The streams for these targets: the shared one at `rate` for `duration`, and rare-timeout's.
fn streams(targets: &[Target], rate: f64, duration: Duration) -> Vec<Stream> {
    let (rare, shared): (Vec<usize>, Vec<usize>) =
        (0..targets.len()).partition(|&i| targets[i].0 == Scenario::RareTimeout);
    let mut out = Vec::new();
    if !shared.is_empty() {
        let n = shared.len() as u64;
        out.push(Stream {
            total: ((rate * duration.as_secs_f64()).ceil() as u64)
                .max(MIN_REQUESTS_PER_SCENARIO * n),
            interval: Duration::from_secs_f64(1.0 / rate),
            slots: shared,
        });
    }
    if !rare.is_empty() {
        out.push(Stream {
            total: ((RARE_RATE * duration.as_secs_f64()).ceil() as u64).max(RARE_ONE_IN),
            interval: Duration::from_secs_f64(1.0 / RARE_RATE),
            slots: rare,
        });
    }
    out
}

/// Sends one stream's requests on schedule (until `stop`), returning their tasks.
async fn send(
    stream: Stream,
    targets: &[Target],
    client: &reqwest::Client,
    counters: &Arc<Counters>,
    started: Instant,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> Vec<JoinHandle<()>> {
    let stopped = async move {
        match stop {
            Some(mut rx) => {
                // A dropped sender never stops the traffic.
                if rx.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(stopped);
    let n = stream.slots.len() as u64;
    let mut requests = Vec::with_capacity(stream.total as usize);
    for i in 0..stream.total {
        let at = started + stream.interval.mul_f64(i as f64);
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = &mut stopped => break,
        }
        let slot = stream.slots[(i % n) as usize];
        let (_, method, url) = targets[slot].clone();
        let client = client.clone();
        let counters = counters.clone();
        counters.sent.fetch_add(1, Ordering::SeqCst);
        counters.per_scenario[slot].0.fetch_add(1, Ordering::SeqCst);
        requests.push(tokio::spawn(async move {
            let ok = match client.request(method, &url).send().await {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    let _ = resp.bytes().await;
                    ok
                }
                Err(_) => false,
            };
            counters.answered.fetch_add(1, Ordering::SeqCst);
            if !ok {
                counters.failed.fetch_add(1, Ordering::SeqCst);
                counters.per_scenario[slot].1.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    requests
}

struct DoneOnDrop(Arc<AtomicBool>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn print_progress(c: &Counters, total: u64, elapsed: Duration, duration: Duration) {
    let sent = c.sent.load(Ordering::SeqCst);
    let answered = c.answered.load(Ordering::SeqCst);
    let clock = if elapsed <= duration {
        format!(
            "{:.1}s of {:.1}s",
            elapsed.as_secs_f64(),
            duration.as_secs_f64()
        )
    } else if answered < sent {
        format!(
            "{:.1}s, waiting for the last answers",
            elapsed.as_secs_f64()
        )
    } else {
        format!("{:.1}s", elapsed.as_secs_f64())
    };
    let line = format!(
        "\rstitch demo: {sent}/{total} requests sent, {answered} answered, {} failed · {clock}",
        c.failed.load(Ordering::SeqCst),
    );
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{line}   ");
    let _ = err.flush();
}
