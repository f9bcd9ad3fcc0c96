//! Sampling in the server, around the engine in `stitch-pipeline`:
//!
//! * [`HeadStage`]: runs on every received batch before the WAL ([`BatchFilter`]). It counts
//!   root spans for Jaeger remote sampling ([`RemoteSampler::observe_root`]) and, when
//!   `sampling.head` keeps less than everything, drops the spans of traces the consistent head
//!   sampler rejects and writes the effective threshold into each kept span's `tracestate`
//!   (`ot=th:…`, as OpenTelemetry specifies), so that RED metrics can be scaled. When the rate
//!   limiter makes the probability an estimate, the span also gets the attribute
//!   `stitch.sampling.head_probability`.
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
use stitch_model::{AnyValue, Batch, KeyValue, Span};
use stitch_pipeline::adaptive::jaeger::{RemoteSampler, SamplingStrategyResponse};
use stitch_pipeline::{HeadSampler, Level, SamplingConfig};
use stitch_store::Store;

/// Attribute on spans kept by a rate-limited head sampler: the estimated probability.
pub const HEAD_PROBABILITY_ATTRIBUTE: &str = stitch_pipeline::weight::HEAD_PROBABILITY_ATTRIBUTE;

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

struct HeadStage(Arc<Sampling>);

impl BatchFilter for HeadStage {
    fn filter(&self, batch: &mut Batch) -> bool {
        let now = unix_nanos();
        {
            let mut remote = self.0.remote.lock();
            for rs in &batch.resource_spans {
                let service = rs.resource.service_name();
                for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                    if span.parent_span_id.is_none() {
                        remote.observe_root(
                            service,
                            &span.name,
                            span.trace_id,
                            &span.trace_state,
                            now,
                        );
                    }
                }
            }
        }
        let Some(head) = &self.0.head else {
            return false;
        };
        let mut head = head.lock();
        let mut changed = false;
        batch.retain_spans(|span| {
            let d = head.decide(span.trace_id, &span.trace_state, now);
            if !d.sampled {
                changed = true;
                return false;
            }
            changed |= record_head_probability(span, d.threshold, d.exact, d.probability);
            true
        });
        changed
    }
}

/// Writes the effective threshold into the span's `tracestate` and, for an estimated
/// probability, the attribute. True when the span changed.
fn record_head_probability(span: &mut Span, threshold: u64, exact: bool, probability: f64) -> bool {
    let mut changed = false;
    if threshold > 0
        && let Some(ts) = with_threshold(
            &span.trace_state,
            &stitch_pipeline::head::encode_threshold(threshold),
        )
    {
        span.trace_state = ts;
        changed = true;
    }
    if !exact {
        span.attributes
            .retain(|kv| kv.key != HEAD_PROBABILITY_ATTRIBUTE);
        span.attributes.push(KeyValue {
            key: HEAD_PROBABILITY_ATTRIBUTE.to_owned(),
            value: AnyValue::Double(probability),
        });
        changed = true;
    }
    changed
}

/// `tracestate` with the `th` sub-key of its `ot` member set to `th` (the modified member
/// first, as W3C Trace Context asks), or `None` when it already says so.
pub fn with_threshold(tracestate: &str, th: &str) -> Option<String> {
    let mut members: Vec<&str> = tracestate
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    let ot = members
        .iter()
        .position(|m| m.split_once('=').is_some_and(|(k, _)| k.trim() == "ot"));
    let member = match ot {
        Some(i) => {
            let value = members[i].split_once('=').map_or("", |(_, v)| v.trim());
            let mut fields: Vec<String> = Vec::new();
            let mut found = false;
            for f in value.split(';').filter(|f| !f.is_empty()) {
                match f.strip_prefix("th:") {
                    Some(v) if v == th => return None,
                    Some(_) if !found => {
                        found = true;
                        fields.push(format!("th:{th}"));
                    }
                    Some(_) => {}
                    None => fields.push(f.to_owned()),
                }
            }
            if !found {
                fields.insert(0, format!("th:{th}"));
            }
            members.remove(i);
            format!("ot={}", fields.join(";"))
        }
        None => format!("ot=th:{th}"),
    };
    let mut out = member;
    for m in members {
        out.push(',');
        out.push_str(m);
    }
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_goes_into_the_ot_member_which_moves_first() {
        assert_eq!(with_threshold("", "c").as_deref(), Some("ot=th:c"));
        assert_eq!(
            with_threshold("vendor=x,ot=rv:abcdefabcdefab", "c").as_deref(),
            Some("ot=th:c;rv:abcdefabcdefab,vendor=x")
        );
        assert_eq!(
            with_threshold("a=1, ot=th:8;x:1 ,b=2", "c").as_deref(),
            Some("ot=th:c;x:1,a=1,b=2")
        );
        assert_eq!(with_threshold("ot=th:c", "c"), None);
    }

    #[test]
    fn head_sampling_drops_whole_traces_and_records_the_threshold() {
        use stitch_model::{ResourceSpans, ScopeSpans, TraceId};
        let sampling = Sampling::new(Some(
            SamplingConfig::from_yaml("head: {percentage: 25}").unwrap(),
        ));
        let filter = sampling.filter();
        // Keep when the low 56 bits are >= 0xc0000000000000 (25%).
        let keep = TraceId::from_halves(1, 0xd0_0000_0000_0000);
        let drop = TraceId::from_halves(2, 0x10_0000_0000_0000);
        let span = |t: TraceId| Span {
            trace_id: t,
            span_id: stitch_model::SpanId::from_u64(1),
            ..Default::default()
        };
        let mut batch = Batch {
            resource_spans: vec![ResourceSpans {
                resource: Default::default(),
                scope_spans: vec![ScopeSpans {
                    scope: Default::default(),
                    spans: vec![span(keep), span(drop), span(keep)],
                }],
            }],
        };
        assert!(filter.filter(&mut batch));
        let spans: Vec<&Span> = batch.spans().map(|s| s.span).collect();
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|s| s.trace_id == keep));
        assert!(spans.iter().all(|s| s.trace_state == "ot=th:c"));
        // A batch of rejected traces only becomes empty.
        let mut batch = Batch {
            resource_spans: vec![ResourceSpans {
                resource: Default::default(),
                scope_spans: vec![ScopeSpans {
                    scope: Default::default(),
                    spans: vec![span(drop)],
                }],
            }],
        };
        assert!(filter.filter(&mut batch));
        assert_eq!(batch.span_count(), 0);
        assert!(batch.resource_spans.is_empty());
    }
}
