//! `stitch demo`: the seed articles' case studies, live, found by Stitch.
//!
//! [`run`] starts a fleet of real HTTP services on loopback (each with its own listener, its own
//! `service.name` and its own OpenTelemetry SDK exporting OTLP/gRPC to Stitch), sends them
//! traffic, waits until Stitch can answer for every trace, and then asks Stitch: for each
//! [`Scenario`] it picks a trace of the scenario's entry operation (a failed one if any failed,
//! and of median duration — nothing about the expected answer) and runs
//! [`stitch_analysis::analyze`] on it; for broken propagation it runs
//! [`stitch_analysis::find_broken_propagation`] over every trace of the demo's window. The
//! [`DemoReport`] lists, per scenario, the planted problem in words, Stitch's findings, and the
//! trace link; the "found" part comes from Stitch's analysis only.
//!
//! The scenarios (their numbers are the seeds'; see [`Scenario::planted`] and
//! [`Scenario::scaling`]):
//!
//! | scenario | seed | entry | planted |
//! |---|---|---|---|
//! | `checkout` | 000 | api-gateway `POST /api/checkout` | sequential calls, 3 DB round trips, 400 ms sync log write, 800 ms provider, sync notification and analytics |
//! | `fraud` | 001 | storefront `POST /checkout` | fraud check retrying a timing-out third-party API |
//! | `login` | 003 | login-api `POST /login` | bcrypt.compare for 1.95 s |
//! | `orders` | 004 | orders-api `GET /api/orders/123` | 60 ms of business logic in user-service |
//! | `cascade` | 001 | product-page `GET /products/42` | user-preferences overloaded, errors passed up two services |
//! | `broken-propagation` | 000 | invoice-api `POST /invoices` | legacy-billing's client strips `traceparent` |
//! | `rare-timeout` | 000 | catalog-api `GET /search` | 1 request in 10,000 times out after 30 s; kept by tail sampling |
//! | `chaos` | 003 | edge-gateway `GET /profile` | 500 ms injected into auth-service, retries upstream |
//!
//! # Tail sampling
//!
//! The store the demo reports on should run with [`sampling_config`] (`stitch demo` does): the
//! seed preset's policies (slower than 1 s, errors, 5% of the rest) plus one that keeps every
//! trace of the scenarios other than rare-timeout. Rare-timeout sends its own 500 requests per
//! second (at least 10,000, one of which waits out the 30 s timeout), so the report can show
//! the slow trace kept by the `slow` policy and ~5% of the normal ones kept by `rest`; those
//! counts come from the traces Stitch returns, whose entry spans carry
//! `stitch.sampling.policy`. With [`DemoTargets::sampling`] set, the demo waits until Stitch
//! has decided every trace before it asks.
//!
//! Context propagation uses real headers through `stitch-propagation`: W3C by default, B3 single,
//! B3 multi and Jaeger on some hops (`stitch.demo.propagation` on a span names the format).

mod fleet;
mod report;
mod sampling;
mod scenario;
mod services;
mod traffic;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use stitch_analysis::{
    AnalysisOptions, BrokenHop, Finding, PropagationOptions, analyze, find_broken_propagation,
};
use stitch_model::{SpanKind, Trace};
use stitch_query::{SearchQuery, TraceReader};

pub use report::{
    DemoReport, HopExampleLinks, KeptTrace, ReportedFinding, ReportedHop, ScenarioReport,
    ScenarioSampling, SpanInfo, TailSamplingTotals, TraceSummary, kind_name,
};
pub use sampling::{REST_POLICY, SAMPLING_YAML, SLOW_POLICY, SamplingStatusFn, sampling_config};
pub use scenario::Scenario;
pub use services::{RARE_ONE_IN, RARE_REQUEST, RARE_TIMEOUT_MS};
pub use traffic::RARE_RATE;

use crate::fleet::Fleet;
use crate::scenario::Planted;
use crate::traffic::Traffic;

/// Where the demo sends its spans and reads them back.
#[derive(Clone)]
pub struct DemoTargets {
    /// Stitch's OTLP/gRPC receiver, e.g. `http://127.0.0.1:4317`.
    pub otlp_grpc_endpoint: String,
    /// Stitch's store (or anything that reads it).
    pub reader: Arc<dyn TraceReader>,
    /// Base of the trace links, e.g. `http://127.0.0.1:16686` (links are `{base}/trace/{id}`).
    pub ui_base_url: String,
    /// The store's tail-sampling status (`Store::sampling_status`). When given, the demo waits
    /// until every trace is decided before it asks, and reports Stitch's sampling counters.
    pub sampling: Option<SamplingStatusFn>,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The scenarios (all by default).
    pub scenarios: Vec<Scenario>,
    /// Requests per second, spread round-robin over the scenarios other than rare-timeout
    /// (which sends its own [`RARE_RATE`]).
    pub rate: f64,
    /// How long to send traffic. Every scenario gets at least two requests whatever this is,
    /// and rare-timeout at least [`RARE_ONE_IN`] (20 s of its traffic).
    pub duration: Duration,
    /// Print a progress line on stderr.
    pub progress: bool,
    /// When this turns `true` (Ctrl-C), the traffic stops early; the exporters are still
    /// flushed and the report covers the requests sent so far.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            scenarios: Scenario::ALL.to_vec(),
            rate: 8.0,
            duration: Duration::from_secs(20),
            progress: true,
            stop: None,
        }
    }
}

/// How long to wait for traces to become queryable after the exporters were flushed.
const QUERYABLE_WAIT: Duration = Duration::from_secs(20);
/// How long server handlers may run on after the last answer (auth-service in the chaos
/// scenario answers 500 ms after its caller gave up).
const IDLE_WAIT: Duration = Duration::from_secs(10);
/// How long to wait for the tail sampler to decide every trace after the flush: longer than
/// the demo's `decision_wait`, so that even a trace whose root never came is decided.
const DECIDED_WAIT: Duration = Duration::from_secs(45);

/// Runs the demo: fleet, traffic, flush, analysis. Must be called inside a multi-threaded Tokio
/// runtime (the OTLP exporters use it). Servers and tracer providers are stopped before it
/// returns, whatever the outcome. To end early with a report, use [`DemoOptions::stop`];
/// dropping the future also stops the servers, but reports nothing.
pub async fn run(targets: DemoTargets, opts: DemoOptions) -> anyhow::Result<DemoReport> {
    if !(opts.rate.is_finite() && opts.rate > 0.0) {
        bail!("the rate must be a positive number of requests per second");
    }
    let mut scenarios: Vec<Scenario> = Vec::new();
    for s in &opts.scenarios {
        if !scenarios.contains(s) {
            scenarios.push(*s);
        }
    }
    if scenarios.is_empty() {
        bail!("no scenario selected");
    }
    let fleet = Fleet::start(services::fleet_for(&scenarios), &targets.otlp_grpc_endpoint).await?;
    let result = drive_and_analyse(&fleet, &targets, &opts, &scenarios).await;
    fleet.shutdown().await;
    result
}

async fn drive_and_analyse(
    fleet: &Fleet,
    targets: &DemoTargets,
    opts: &DemoOptions,
    scenarios: &[Scenario],
) -> anyhow::Result<DemoReport> {
    let window_start = unix_nanos(SystemTime::now()).saturating_sub(1_000_000_000);
    let traffic = traffic::drive(
        fleet,
        scenarios,
        opts.rate,
        opts.duration,
        opts.progress,
        opts.stop.clone(),
    )
    .await?;
    let say = |msg: &str| {
        if opts.progress {
            eprintln!("stitch demo: {msg}");
        }
    };
    say("waiting for the services to finish, then flushing their exporters");
    fleet.wait_idle(IDLE_WAIT).await;
    let export_failures: Vec<String> = fleet
        .flush()
        .await
        .into_iter()
        .map(|(service, e)| format!("{service}: {e}"))
        .collect();
    let flushed = SystemTime::now();
    let window_end = unix_nanos(flushed) + 1_000_000_000;
    if let Some(status) = &targets.sampling {
        say("waiting for Stitch's tail sampler to decide every trace");
        sampling::wait_decided(status, flushed, DECIDED_WAIT).await;
    }
    say("asking Stitch");

    let mut reports = Vec::new();
    for &scenario in scenarios {
        let (sent, failed) = traffic
            .per_scenario
            .iter()
            .find(|(s, _, _)| *s == scenario)
            .map_or((0, 0), |&(_, s, f)| (s, f));
        reports.push(
            analyse_scenario(targets, scenario, sent, failed, (window_start, window_end)).await?,
        );
    }
    let tail_sampling = targets.sampling.as_ref().map(|s| sampling::totals(&s()));
    Ok(DemoReport {
        ui_base_url: targets.ui_base_url.clone(),
        requests: traffic.sent,
        failed_requests: traffic.failed,
        rate: opts.rate,
        traffic_seconds: traffic_seconds(&traffic),
        window_start_unix_nano: window_start,
        window_end_unix_nano: window_end,
        export_failures,
        tail_sampling,
        scenarios: reports,
    })
}

fn traffic_seconds(t: &Traffic) -> f64 {
    (t.elapsed.as_secs_f64() * 10.0).round() / 10.0
}

pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The traces of a scenario's entry operation in the window, waiting (bounded) until Stitch
/// returns `expected` of them (at most `sent` are wanted).
async fn entry_traces(
    reader: &dyn TraceReader,
    scenario: Scenario,
    expected: u64,
    sent: u64,
    window: (u64, u64),
) -> anyhow::Result<Vec<Trace>> {
    let entry = scenario.entry();
    let query = SearchQuery {
        service: Some(entry.service.to_owned()),
        operation: Some(entry.root_span_name()),
        span_kind: Some(SpanKind::Server),
        start_unix_nanos: Some(window.0),
        end_unix_nanos: Some(window.1),
        limit: sent as usize + 1_000,
        ..Default::default()
    };
    let deadline = Instant::now() + QUERYABLE_WAIT;
    loop {
        let traces = reader
            .search(&query)
            .await
            .with_context(|| format!("searching the traces of {scenario}"))?;
        if traces.len() as u64 >= expected || Instant::now() >= deadline {
            return Ok(traces);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The entry span of a trace: the scenario's root SERVER span.
pub(crate) fn entry_span<'a>(
    trace: &'a Trace,
    scenario: Scenario,
) -> Option<stitch_model::SpanRef<'a>> {
    let entry = scenario.entry();
    let name = entry.root_span_name();
    trace
        .spans()
        .filter(|s| {
            s.service_name() == entry.service
                && s.span.name == name
                && s.span.kind == SpanKind::Server
        })
        .min_by_key(|s| (s.span.parent_span_id.is_some(), s.span.start_time_unix_nano))
}

/// The trace to analyse: among the failed requests if any failed (what a person on call opens
/// first), else among all, the one of median duration — a typical request, which an occasional
/// scheduling hiccup of the machine does not distort. Ties go to the smaller trace id, so the
/// choice is deterministic.
fn pick(traces: &[Trace], scenario: Scenario) -> Option<&Trace> {
    let mut candidates: Vec<(bool, u64, &Trace)> = traces
        .iter()
        .filter_map(|t| {
            entry_span(t, scenario).map(|s| (s.span.is_error(), s.span.duration_nanos(), t))
        })
        .collect();
    if candidates.iter().any(|c| c.0) {
        candidates.retain(|c| c.0);
    }
    candidates.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.trace_id.cmp(&b.2.trace_id)));
    let middle = candidates.len().checked_sub(1)? / 2;
    Some(candidates[middle].2)
}

async fn analyse_scenario(
    targets: &DemoTargets,
    scenario: Scenario,
    sent: u64,
    failed: u64,
    window: (u64, u64),
) -> anyhow::Result<ScenarioReport> {
    let entry = scenario.entry();
    // With tail sampling, every trace is decided by now, and only the scenarios the demo's
    // policies keep whole can be counted on to return one trace per request.
    let tail_sampled = targets.sampling.is_some() && !sampling::keeps_every_trace(scenario);
    let expected = if tail_sampled { 0 } else { sent };
    let traces = entry_traces(targets.reader.as_ref(), scenario, expected, sent, window).await?;
    let mut report = ScenarioReport {
        scenario,
        seed: scenario.seed().to_owned(),
        title: scenario.title().to_owned(),
        planted: scenario.planted().to_owned(),
        scaling: scenario.scaling().map(str::to_owned),
        entry: format!("{} {} on {}", entry.method, entry.route, entry.service),
        services: services::fleet_for(&[scenario])
            .iter()
            .map(|s| s.name.to_owned())
            .collect(),
        requests: sent,
        failed_requests: failed,
        traces_found: traces.len(),
        trace: None,
        findings: Vec::new(),
        broken_hops: Vec::new(),
        expected: match scenario.planted_top() {
            Planted::Span { service, span } => format!("{service} {span:?}"),
            Planted::Hop { caller, callee } => format!("the hop {caller} → {callee}"),
        },
        found_planted: false,
        note: None,
        sampling: tail_sampled.then(|| {
            sampling::scenario_sampling(&traces, scenario, sent, failed, &targets.ui_base_url)
        }),
    };
    // Broken propagation needs the traces around the one analysed: the hops across the
    // window, and the picked trace's own (as `GET /api/v1/traces/{id}/analysis` adds them).
    let all = if scenario == Scenario::BrokenPropagation {
        targets
            .reader
            .search(&SearchQuery {
                start_unix_nanos: Some(window.0),
                end_unix_nanos: Some(window.1),
                limit: 1_000_000,
                ..Default::default()
            })
            .await
            .context("searching every trace of the demo's window")?
    } else {
        Vec::new()
    };
    if !all.is_empty() {
        let hops = find_broken_propagation(&all, &PropagationOptions::default());
        report.broken_hops = hops
            .iter()
            .map(|h| reported_hop(h, &targets.ui_base_url))
            .collect();
    }
    match pick(&traces, scenario) {
        None => {
            report.note = Some(format!(
                "Stitch returned no trace of {} {} on {} for the demo's time window (were the \
                 spans exported?)",
                entry.method, entry.route, entry.service
            ));
        }
        Some(trace) => {
            let mut analysis = analyze(trace, &AnalysisOptions::default());
            if !all.is_empty() {
                let focus = PropagationOptions {
                    focus_trace: Some(trace.trace_id),
                    ..PropagationOptions::default()
                };
                analysis.add_broken_propagation(&find_broken_propagation(&all, &focus));
            }
            let start = analysis.start_unix_nano;
            let spans: HashMap<stitch_model::SpanId, stitch_model::SpanRef<'_>> =
                trace.spans().map(|s| (s.span.span_id, s)).collect();
            report.findings = analysis
                .findings
                .iter()
                .map(|f| reported_finding(f, &spans, start))
                .collect();
            let id = trace.trace_id.to_hex();
            report.trace = Some(TraceSummary {
                url: trace_url(&targets.ui_base_url, &id),
                command: trace_command(&targets.ui_base_url, &id),
                trace_id: id,
                duration_nanos: analysis.duration_nanos,
                span_count: analysis.span_count,
                root_failed: entry_span(trace, scenario).is_some_and(|s| s.span.is_error()),
            });
        }
    }
    report.found_planted = match scenario.planted_top() {
        Planted::Span { service, span } => report
            .findings
            .first()
            .and_then(|f| f.main_span.as_ref())
            .is_some_and(|m| m.service == service && m.name == span),
        Planted::Hop { caller, callee } => report
            .broken_hops
            .first()
            .is_some_and(|h| h.caller_service == caller && h.callee_service == callee),
    };
    Ok(report)
}

fn reported_finding(
    f: &Finding,
    spans: &HashMap<stitch_model::SpanId, stitch_model::SpanRef<'_>>,
    trace_start: u64,
) -> ReportedFinding {
    let main_span = f
        .spans
        .first()
        .and_then(|id| spans.get(id))
        .map(|s| SpanInfo {
            span_id: s.span.span_id.to_hex(),
            service: s.service_name().to_owned(),
            name: s.span.name.clone(),
            offset_nanos: s.span.start_time_unix_nano.saturating_sub(trace_start),
            duration_nanos: s.span.duration_nanos(),
        });
    ReportedFinding {
        kind: f.kind,
        title: f.title.clone(),
        service: f.service.clone(),
        operation: f.operation.clone(),
        target: f.target.clone(),
        count: f.count,
        cost_nanos: f.cost_nanos,
        saving_nanos: f.saving_nanos,
        span_ids: f.spans.iter().map(|s| s.to_hex()).collect(),
        main_span,
    }
}

fn reported_hop(h: &BrokenHop, ui: &str) -> ReportedHop {
    ReportedHop {
        caller_service: h.caller_service.clone(),
        caller_operation: h.caller_operation.clone(),
        callee_service: h.callee_service.clone(),
        callee_operation: h.callee_operation.clone(),
        cause: h.cause,
        occurrences: h.occurrences,
        blamed_service: h.blamed_service.clone(),
        message: h.message.clone(),
        evidence: h.evidence.clone(),
        example: h.examples.first().map(|e| HopExampleLinks {
            caller_url: trace_url(ui, &e.caller_trace_id),
            callee_url: trace_url(ui, &e.callee_trace_id),
            caller_trace_id: e.caller_trace_id.clone(),
            callee_trace_id: e.callee_trace_id.clone(),
        }),
    }
}

pub(crate) fn trace_url(ui: &str, id: &str) -> String {
    format!("{}/trace/{id}", ui.trim_end_matches('/'))
}

/// The default address `stitch trace` talks to.
const DEFAULT_SERVER: &str = "http://127.0.0.1:16686";

fn trace_command(ui: &str, id: &str) -> String {
    let ui = ui.trim_end_matches('/');
    if ui == DEFAULT_SERVER {
        format!("stitch trace {id}")
    } else {
        format!("stitch trace {id} --server {ui}")
    }
}
