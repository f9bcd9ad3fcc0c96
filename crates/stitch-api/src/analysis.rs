//! Analyses of one endpoint across the traces of a time window: where the critical-path time
//! of its requests goes, and where the extra time of its slow requests goes.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /api/v1/analysis/breakdown?service=&operation=&start=&end=&lookback=&limit=` | The latency breakdown of the endpoint: the share of critical-path time (and the mean time per trace) each service and each operation accounts for (`stitch_analysis::latency_breakdown`). |
//! | `GET /api/v1/analysis/cohort?service=&operation=&start=&end=&lookback=&limit=` | The cohort diff of the endpoint: slow traces (≥ p99 of the root's duration) against typical ones (p40–p60), by service, by operation and by finding kind (`stitch_analysis::cohort_diff_with`). |
//!
//! Parameters (an empty value counts as absent):
//!
//! - `service`, `operation` (both required): the endpoint, i.e. the service and span name of
//!   the traces' root span;
//! - `start`, `end`, `lookback`: the window, as for the service views (see [`crate::services`]):
//!   Unix microseconds, `end` defaulting to now and `start` to `end - lookback`, `lookback`
//!   to `1h`;
//! - `limit`: the most traces read (default [`DEFAULT_ANALYSIS_LIMIT`], at most
//!   [`MAX_ANALYSIS_LIMIT`]); the newest are read first.
//!
//! The traces are those [`TraceReader::search`] finds with a span of the endpoint starting in
//! the window. Every answer says how many it read (`tracesScanned`), whether the limit cut the
//! read short (`truncated`), and how many of them had the endpoint as root and were used
//! (`tracesUsed`); traces where the endpoint's span is not a root are read but not used.
//!
//! The critical path of each trace is the one `GET /api/v1/traces/{id}/analysis` shows (clock
//! skew adjusted, from the trace's widest root), so the numbers agree with the trace view. The
//! cohort diff's third dimension, `findingKind`, adds up the critical-path cost of each kind of
//! finding (`dominantLeaf`, `sequentialCalls`, ...) per trace; findings can overlap, so its
//! shares need not sum to 100%.
//!
//! A cohort diff needs at least `CohortOptions::default().min_traces` (20) traces of the
//! endpoint. With fewer, the answer is still a 200, with `"cohort": null` and a `reason`.
//!
//! Errors are `{"error": {"code": <HTTP status>, "message": <reason>}}`; a missing or
//! malformed parameter is a 400 whose message names it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Serialize;
use stitch_analysis::{
    AnalysisOptions, CohortDiff, CohortDimension, CohortError, CohortOptions, Endpoint,
    LatencyBreakdown, TimeWindow, analyze, cohort_diff_with, latency_breakdown,
};
use stitch_model::{SpanId, Trace, TraceId};
use stitch_query::{SearchQuery, TraceReader};

use crate::params::Params;
use crate::services::{
    Failure, WindowJson, blocking, now_unix_nanos, parse_limit, parse_window, query_params,
};

type Reader = Arc<dyn TraceReader>;

/// Traces read when `limit` is absent.
pub const DEFAULT_ANALYSIS_LIMIT: usize = 5_000;
/// The largest `limit` accepted. Every trace read is held in memory and analysed.
pub const MAX_ANALYSIS_LIMIT: usize = 20_000;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/v1/analysis/breakdown", get(breakdown))
        .route("/api/v1/analysis/cohort", get(cohort))
        .with_state(reader)
}

/// The endpoint, window and read limit of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EndpointRequest {
    endpoint: Endpoint,
    start: u64,
    end: u64,
    limit: usize,
}

fn parse_request(params: &Params, now_unix_nanos: u64) -> Result<EndpointRequest, Failure> {
    let required = |name: &str| {
        params
            .get(name)
            .map(str::to_owned)
            .ok_or_else(|| Failure::bad(format!("parameter '{name}' is required")))
    };
    let service = required("service")?;
    let operation = required("operation")?;
    let (start, end) = parse_window(params, now_unix_nanos)?;
    let limit = parse_limit(params, DEFAULT_ANALYSIS_LIMIT, MAX_ANALYSIS_LIMIT)?;
    Ok(EndpointRequest {
        endpoint: Endpoint::new(service, operation),
        start,
        end,
        limit,
    })
}

/// The traces with a span of the endpoint starting in the window, newest first, and whether
/// the limit cut the read short.
async fn read(reader: &Reader, req: &EndpointRequest) -> Result<(Vec<Trace>, bool), Failure> {
    let query = SearchQuery {
        service: Some(req.endpoint.service.clone()),
        operation: Some(req.endpoint.operation.clone()),
        start_unix_nanos: Some(req.start),
        end_unix_nanos: Some(req.end),
        limit: req.limit,
        ..Default::default()
    };
    let traces = reader.search(&query).await?;
    let truncated = traces.len() >= req.limit;
    Ok((traces, truncated))
}

/// What the cross-trace analyses need from one trace's analysis.
struct PerTrace {
    /// Critical-path sections: the span and the nanoseconds it is responsible for.
    path: Vec<(SpanId, u64)>,
    /// Critical-path cost of the trace's findings, by finding kind.
    findings: Vec<(String, u64)>,
}

/// Analyses each trace once, however many times the cross-trace algorithms ask for it.
#[derive(Default)]
struct Analyses {
    done: RefCell<HashMap<TraceId, Rc<PerTrace>>>,
}

impl Analyses {
    fn get(&self, trace: &Trace) -> Rc<PerTrace> {
        if let Some(done) = self.done.borrow().get(&trace.trace_id) {
            return done.clone();
        }
        let analysis = analyze(trace, &AnalysisOptions::default());
        let path = analysis
            .critical_path
            .sections
            .iter()
            .map(|s| (s.span_id, s.duration_nanos()))
            .collect();
        let mut by_kind: Vec<(String, u64)> = Vec::new();
        for f in &analysis.findings {
            let kind = finding_kind_name(f.kind);
            match by_kind.iter_mut().find(|(k, _)| *k == kind) {
                Some(slot) => slot.1 += f.cost_nanos,
                None => by_kind.push((kind, f.cost_nanos)),
            }
        }
        let per = Rc::new(PerTrace {
            path,
            findings: by_kind,
        });
        self.done.borrow_mut().insert(trace.trace_id, per.clone());
        per
    }
}

/// The JSON name of a finding kind (`dominantLeaf`, ...), as the trace analysis spells it.
fn finding_kind_name(kind: stitch_analysis::FindingKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{kind:?}"),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BreakdownJson {
    window: WindowJson,
    /// Traces read from the store.
    traces_scanned: usize,
    /// Whether `limit` cut the read short.
    truncated: bool,
    /// Traces whose root is the endpoint: the ones the breakdown is made of.
    traces_used: usize,
    breakdown: LatencyBreakdown,
}

fn breakdown_json(traces: &[Trace], req: &EndpointRequest, truncated: bool) -> BreakdownJson {
    let analyses = Analyses::default();
    let breakdown = latency_breakdown(traces, &req.endpoint, |t: &Trace| {
        analyses.get(t).path.clone()
    });
    BreakdownJson {
        window: TimeWindow::new(req.start, req.end).into(),
        traces_scanned: traces.len(),
        truncated,
        traces_used: breakdown.traces,
        breakdown,
    }
}

async fn breakdown(
    State(reader): State<Reader>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<axum::Json<BreakdownJson>, Failure> {
    let req = parse_request(&query_params(query)?, now_unix_nanos())?;
    let (traces, truncated) = read(&reader, &req).await?;
    let body = blocking(move || breakdown_json(&traces, &req, truncated)).await?;
    Ok(axum::Json(body))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CohortJson {
    window: WindowJson,
    traces_scanned: usize,
    truncated: bool,
    /// Traces whose root is the endpoint, ranked to make the cohorts.
    traces_used: usize,
    /// The fewest traces of the endpoint a cohort diff is made from.
    min_traces: usize,
    /// `null` when there are too few traces; `reason` says so.
    cohort: Option<CohortDiff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn cohort_json(traces: &[Trace], req: &EndpointRequest, truncated: bool) -> CohortJson {
    let opts = CohortOptions::default();
    let analyses = Analyses::default();
    let finding_costs = |t: &Trace| analyses.get(t).findings.clone();
    let dimensions = [CohortDimension {
        name: "findingKind",
        attribute: &finding_costs,
    }];
    let result = cohort_diff_with(
        traces,
        &req.endpoint,
        &opts,
        |t: &Trace| analyses.get(t).path.clone(),
        &dimensions,
    );
    let (traces_used, cohort, reason) = match result {
        Ok(diff) => (diff.traces, Some(diff), None),
        Err(e @ CohortError::NotEnoughTraces { found, .. }) => (found, None, Some(e.to_string())),
    };
    CohortJson {
        window: TimeWindow::new(req.start, req.end).into(),
        traces_scanned: traces.len(),
        truncated,
        traces_used,
        min_traces: opts.min_traces,
        cohort,
        reason,
    }
}

async fn cohort(
    State(reader): State<Reader>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<axum::Json<CohortJson>, Failure> {
    let req = parse_request(&query_params(query)?, now_unix_nanos())?;
    let (traces, truncated) = read(&reader, &req).await?;
    let body = blocking(move || cohort_json(&traces, &req, truncated)).await?;
    Ok(axum::Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    const SECOND: u64 = 1_000_000_000;
    const NOW: u64 = 1_700_000_000 * SECOND;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn an_endpoint_request_defaults_to_the_last_hour_and_the_default_limit() {
        let req = parse_request(
            &params(&[("service", "gateway"), ("operation", "POST /checkout")]),
            NOW,
        )
        .unwrap();
        assert_eq!(req.endpoint, Endpoint::new("gateway", "POST /checkout"));
        assert_eq!((req.start, req.end), (NOW - 3_600 * SECOND, NOW));
        assert_eq!(req.limit, DEFAULT_ANALYSIS_LIMIT);
        let req = parse_request(
            &params(&[
                ("service", "gateway"),
                ("operation", "POST /checkout"),
                ("lookback", "15m"),
                ("limit", "200"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(req.start, NOW - 900 * SECOND);
        assert_eq!(req.limit, 200);
    }

    #[test]
    fn missing_and_malformed_parameters_are_named() {
        let endpoint = [("service", "gateway"), ("operation", "POST /checkout")];
        for (extra, needle) in [
            (vec![], "'service' is required"),
            (vec![("service", "gateway")], "'operation' is required"),
            (vec![("operation", "x")], "'service' is required"),
            (
                [&endpoint[..], &[("lookback", "soon")]].concat(),
                "'lookback'",
            ),
            ([&endpoint[..], &[("limit", "20001")]].concat(), "'limit'"),
            ([&endpoint[..], &[("start", "noon")]].concat(), "'start'"),
        ] {
            let err = parse_request(&params(&extra), NOW).unwrap_err();
            assert_eq!(err.0.status(), StatusCode::BAD_REQUEST);
            let message = err.0.to_string();
            assert!(message.contains(needle), "{extra:?}: {message}");
        }
    }
}
