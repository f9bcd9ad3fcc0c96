//! Sampling in the server, around the engine in `stitch-pipeline`:
//!
//! * [`HeadStage`]: runs `stitch_pipeline::stage` on every received batch before the WAL
//!   ([`BatchFilter`]): root spans counted for Jaeger remote sampling, head sampling when
//!   `sampling.head` keeps less than everything.
//! * The tail sampler itself lives in the store's WAL writer (`stitch_store::sampling`).
//! * `GET /api/v1/sampling` (query port): the configuration in force, the tail sampler's
//!   counters, the adaptive state per service and recent adaptive changes.
//! * `GET /sampling?service=NAME` (sampling port, 5778 by default; also `GET /?service=`):
//!   Jaeger's remote-sampling strategy for a service, with per-operation probabilities. The
//!   same strategy is served over gRPC on the Jaeger gRPC port (14250 by default) as
//!   `jaeger.api_v2.SamplingManager/GetSamplingStrategy`: both go through
//!   [`Sampling`]'s [`SamplingStrategies`] implementation, and the gRPC service in
//!   `stitch_ingest::jaeger` only maps the answer to protobuf.
//!
//! Without a `sampling` section the head stage only counts root spans (for the remote
//! strategies above); nothing is dropped or rewritten.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde::Serialize;
use stitch_ingest::jaeger::{SamplingStrategies, StrategyError};
use stitch_ingest::{BatchFilter, Ingest};
use stitch_model::Batch;
use stitch_pipeline::adaptive::jaeger::{RemoteSampler, SamplingStrategyResponse};
use stitch_pipeline::{HeadSampler, Level, SamplingConfig, stage};
use stitch_store::Store;

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// Sampling state shared by the receivers and the APIs.
pub struct Sampling {
    config: Option<SamplingConfig>,
    head: Option<Mutex<HeadSampler>>,
    remote: Mutex<RemoteSampler>,
}

impl Sampling {
    /// `config` is the `sampling` section, if the config file has one.
    pub fn new(config: Option<SamplingConfig>) -> Arc<Sampling> {
        let c = config.clone().unwrap_or_default();
        let head = HeadSampler::new(&c.head);
        Arc::new(Sampling {
            head: (!head.keeps_everything()).then(|| Mutex::new(head)),
            remote: Mutex::new(RemoteSampler::new(&c.remote_sampling)),
            config,
        })
    }

    /// The filter for the receivers. It always counts root spans, so that Jaeger remote
    /// sampling serves per-operation probabilities from the traffic also without a `sampling`
    /// section; it drops spans only when `sampling.head` keeps less than everything.
    pub fn filter(self: &Arc<Self>) -> Arc<dyn BatchFilter> {
        Arc::new(HeadStage(self.clone()))
    }

    /// `GET /api/v1/sampling`, for the query port.
    pub fn api_router(self: &Arc<Self>, store: Store, ingest: Arc<Ingest>) -> Router {
        Router::new()
            .route("/api/v1/sampling", get(sampling_api))
            .with_state(ApiState {
                sampling: self.clone(),
                store,
                ingest,
            })
    }

    /// Jaeger remote sampling, for the sampling port.
    pub fn jaeger_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/sampling", get(strategy))
            .route("/", get(strategy))
            .with_state(self.clone())
    }
}

impl SamplingStrategies for Sampling {
    /// The one place a Jaeger remote-sampling strategy is computed, for HTTP and gRPC alike.
    /// Surrounding whitespace is not part of the name.
    fn strategy(&self, service: &str) -> Result<SamplingStrategyResponse, StrategyError> {
        let service = service.trim();
        if service.is_empty() {
            return Err(StrategyError::NoService);
        }
        Ok(self.remote.lock().strategy(service, unix_nanos()))
    }
}

/// The receivers' filter: `stitch_pipeline::stage` with the server's clock and locks.
struct HeadStage(Arc<Sampling>);

impl BatchFilter for HeadStage {
    fn filter(&self, batch: &mut Batch) -> bool {
        let now = unix_nanos();
        stage::count_roots(&mut self.0.remote.lock(), batch, now);
        match &self.0.head {
            Some(head) => stage::head_sample(&mut head.lock(), batch, now),
            None => false,
        }
    }
}

#[derive(Clone)]
struct ApiState {
    sampling: Arc<Sampling>,
    store: Store,
    ingest: Arc<Ingest>,
}

#[derive(Serialize)]
struct SamplingReport {
    /// The `sampling` section in force (`null`: none, every trace is kept).
    config: Option<SamplingConfig>,
    /// The policies applied (from `policies` or the preset), by name and type.
    policies: Vec<PolicySummary>,
    head: HeadReport,
    /// `tail_sampling`, `tail` (the tail sampler's counters), `adaptive` (state per service),
    /// `recent_events`, `decision_records`, ...
    #[serde(flatten)]
    status: stitch_store::SamplingStatus,
}

#[derive(Serialize)]
struct PolicySummary {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct HeadReport {
    enabled: bool,
    percentage: f64,
    rate_limit_traces_per_second: f64,
    /// Spans acknowledged but not stored because head sampling rejected their trace.
    filtered_spans: u64,
}

async fn sampling_api(State(s): State<ApiState>) -> Json<SamplingReport> {
    let c = s.sampling.config.clone().unwrap_or_default();
    Json(SamplingReport {
        policies: c
            .effective_policies()
            .iter()
            .map(|p| PolicySummary {
                name: p.name.clone(),
                kind: p.kind.as_str(),
            })
            .collect(),
        head: HeadReport {
            enabled: s.sampling.head.is_some(),
            percentage: c.head.percentage,
            rate_limit_traces_per_second: c.head.rate_limit_traces_per_second,
            filtered_spans: s
                .ingest
                .stats
                .filtered_spans
                .load(std::sync::atomic::Ordering::Relaxed),
        },
        config: s.sampling.config.clone(),
        status: s.store.sampling_status(),
    })
}

async fn strategy(
    State(s): State<Arc<Sampling>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let service = q.get("service").map(String::as_str).unwrap_or("");
    match s.strategy(service) {
        Ok(strategy) => Json(strategy).into_response(),
        Err(StrategyError::NoService) => (
            StatusCode::BAD_REQUEST,
            "'service' parameter must be provided\n",
        )
            .into_response(),
    }
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The sampling series of `/metrics`.
pub fn render_metrics(out: &mut String, store: &Store) {
    let s = store.sampling_status();
    let t = &s.tail;
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    gauge(
        "stitch_sampling_buffered_traces",
        "Traces held by the tail sampler, undecided.",
        t.buffered_traces,
    );
    gauge(
        "stitch_sampling_buffered_spans",
        "Spans held by the tail sampler, undecided.",
        t.buffered_spans,
    );
    gauge(
        "stitch_sampling_buffered_bytes",
        "Estimated bytes held by the tail sampler.",
        t.buffered_bytes,
    );
    gauge(
        "stitch_sampling_max_buffered_bytes",
        "The tail sampler's byte budget.",
        t.max_buffered_bytes,
    );
    gauge(
        "stitch_sampling_decision_cache_entries",
        "Trace ids whose decision is remembered for late spans.",
        t.decision_cache_entries,
    );
    let counters: [(&str, &str, u64); 15] = [
        (
            "stitch_sampling_traces_received_total",
            "Traces that entered the tail sampler's buffer.",
            t.traces_received,
        ),
        (
            "stitch_sampling_spans_received_total",
            "Spans given to the tail sampler.",
            t.spans_received,
        ),
        (
            "stitch_sampling_traces_sampled_total",
            "Traces kept.",
            t.traces_sampled,
        ),
        (
            "stitch_sampling_traces_not_sampled_total",
            "Traces not kept (including those a drop policy removed).",
            t.traces_not_sampled,
        ),
        (
            "stitch_sampling_spans_sampled_total",
            "Spans kept.",
            t.spans_sampled,
        ),
        (
            "stitch_sampling_spans_not_sampled_total",
            "Spans not kept.",
            t.spans_not_sampled,
        ),
        (
            "stitch_sampling_late_spans_sampled_total",
            "Spans of decided traces that followed a cached keep decision.",
            t.late_spans_sampled,
        ),
        (
            "stitch_sampling_late_spans_not_sampled_total",
            "Spans of decided traces that followed a cached drop decision.",
            t.late_spans_not_sampled,
        ),
        (
            "stitch_sampling_decided_after_wait_total",
            "Traces decided decision_wait after their first span.",
            t.decided_after_wait,
        ),
        (
            "stitch_sampling_decided_after_root_total",
            "Traces decided decision_wait_after_root after their root span.",
            t.decided_after_root,
        ),
        (
            "stitch_sampling_early_decisions_byte_budget_total",
            "Traces decided early (evicted) to stay within max_buffered_bytes.",
            t.early_decisions_byte_budget,
        ),
        (
            "stitch_sampling_early_decisions_trace_limit_total",
            "Traces decided early to stay within num_traces.",
            t.early_decisions_trace_limit,
        ),
        (
            "stitch_sampling_decision_cache_evictions_total",
            "Decisions the caches forgot to make room.",
            t.decision_cache_evictions,
        ),
        (
            "stitch_sampling_adaptive_sampled_traces_total",
            "Traces kept by the adaptive controller's raised rate.",
            t.adaptive_sampled_traces,
        ),
        (
            "stitch_sampling_decision_records_total",
            "Decision records written to the write-ahead log.",
            s.decision_records,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let name = "stitch_sampling_traces_kept_by_policy_total";
    let _ = writeln!(
        out,
        "# HELP {name} Traces kept, by the policy that kept them.\n# TYPE {name} counter"
    );
    for (policy, n) in &t.sampled_by_policy {
        let _ = writeln!(out, "{name}{{policy=\"{}\"}} {n}", label(policy));
    }
    let name = "stitch_sampling_traces_dropped_by_policy_total";
    let _ = writeln!(
        out,
        "# HELP {name} Traces removed by a drop policy.\n# TYPE {name} counter"
    );
    for (policy, n) in &t.dropped_by_policy {
        let _ = writeln!(out, "{name}{{policy=\"{}\"}} {n}", label(policy));
    }
    let name = "stitch_sampling_adaptive_percentage";
    let _ = writeln!(
        out,
        "# HELP {name} Share of a service's normal traffic kept by adaptive sampling.\n# TYPE {name} gauge"
    );
    for a in &s.adaptive {
        let _ = writeln!(
            out,
            "{name}{{service=\"{}\"}} {}",
            label(&a.service),
            a.percentage
        );
    }
    let name = "stitch_sampling_adaptive_level";
    let _ = writeln!(
        out,
        "# HELP {name} Adaptive level of a service: 0 normal, 1 elevated, 2 critical.\n# TYPE {name} gauge"
    );
    for a in &s.adaptive {
        let level = match a.level {
            Level::Normal => 0,
            Level::Elevated => 1,
            Level::Critical => 2,
        };
        let _ = writeln!(out, "{name}{{service=\"{}\"}} {level}", label(&a.service));
    }
    let name = "stitch_sampling_adaptive_error_rate";
    let _ = writeln!(
        out,
        "# HELP {name} A service's error rate over the adaptive window.\n# TYPE {name} gauge"
    );
    for a in &s.adaptive {
        let _ = writeln!(
            out,
            "{name}{{service=\"{}\"}} {}",
            label(&a.service),
            a.error_rate
        );
    }
}
