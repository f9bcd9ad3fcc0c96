//! The correctness canary: after a run, read a sample of the traces that were sent back through
//! the query API and check that each is complete, in the spirit of Tempo's vulture.
//!
//! The sample is a uniform reservoir over the traces the receiver acknowledged (over every trace
//! sent, for UDP). Each is fetched with `GET {query}/api/v1/traces/{id}` (OTLP JSON, decoded with
//! `stitch_wire::otlp_json`) and compared with what was sent: the same span ids, each under the
//! same parent. A trace that is not found or has spans missing is fetched again until the
//! deadline (the UDP receiver and pipelines store asynchronously); one that then still differs
//! is reported. Spans returned twice are counted but are not a failure: a request retried after
//! a timeout may be stored twice, which at-least-once delivery allows.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use stitch_model::{Batch, SpanId, TraceId};

use super::generate::Rng;

/// What was sent of one trace: every span id with its parent, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub trace_id: TraceId,
    pub spans: Vec<(SpanId, Option<SpanId>)>,
}

/// A uniform sample of `capacity` traces from a stream (Vitter's algorithm R).
#[derive(Debug)]
pub struct Reservoir {
    capacity: usize,
    seen: u64,
    items: Vec<Expected>,
    rng: Rng,
}

impl Reservoir {
    pub fn new(capacity: usize, seed: u64) -> Reservoir {
        Reservoir {
            capacity,
            seen: 0,
            items: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    /// Offers every trace of an acknowledged batch.
    pub fn offer_batch(&mut self, batch: &Batch) {
        if self.capacity == 0 {
            return;
        }
        // Algorithm R over the batch's traces, deciding slots first and building only the
        // traces that end up in one. Slot `items.len() + k` is the k-th appended trace.
        let mut distinct: HashSet<TraceId> = HashSet::new();
        let mut slots: HashMap<usize, TraceId> = HashMap::new();
        let mut appended = 0;
        for s in batch.spans() {
            let id = s.span.trace_id;
            if !distinct.insert(id) {
                continue;
            }
            self.seen += 1;
            if self.items.len() + appended < self.capacity {
                slots.insert(self.items.len() + appended, id);
                appended += 1;
            } else {
                let j = self.rng.below(self.seen) as usize;
                if j < self.capacity {
                    slots.insert(j, id);
                }
            }
        }
        if slots.is_empty() {
            return;
        }
        let wanted: HashSet<TraceId> = slots.values().copied().collect();
        let mut spans: HashMap<TraceId, Vec<(SpanId, Option<SpanId>)>> = HashMap::new();
        for s in batch.spans() {
            if wanted.contains(&s.span.trace_id) {
                spans
                    .entry(s.span.trace_id)
                    .or_default()
                    .push((s.span.span_id, s.span.parent_span_id));
            }
        }
        let mut slots: Vec<(usize, TraceId)> = slots.into_iter().collect();
        slots.sort();
        for (slot, trace_id) in slots {
            let mut s = spans.get(&trace_id).cloned().unwrap_or_default();
            s.sort();
            let e = Expected { trace_id, spans: s };
            if slot < self.items.len() {
                self.items[slot] = e;
            } else {
                self.items.push(e);
            }
        }
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Merges reservoirs of disjoint streams into a sample of `capacity`, each stream
    /// represented in proportion to its size.
    pub fn merge(parts: Vec<Reservoir>, capacity: usize, seed: u64) -> Vec<Expected> {
        let mut rng = Rng::new(seed);
        let mut pool: Vec<(f64, Expected)> = Vec::new();
        for part in parts {
            let weight = part.seen as f64 / part.items.len().max(1) as f64;
            for e in part.items {
                // Efraimidis–Spirakis keys: a higher weight makes a larger key likelier.
                let key = rng
                    .unit()
                    .max(f64::MIN_POSITIVE)
                    .powf(1.0 / weight.max(1e-9));
                pool.push((key, e));
            }
        }
        pool.sort_by(|a, b| b.0.total_cmp(&a.0));
        pool.truncate(capacity);
        let mut out: Vec<Expected> = pool.into_iter().map(|(_, e)| e).collect();
        out.sort_by_key(|e| e.trace_id);
        out
    }
}

/// How one trace compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceProblem {
    pub trace_id: String,
    /// `missing` (not found), `incomplete` (spans missing), `wrong` (spans that were not sent,
    /// or under another parent).
    pub problem: &'static str,
    pub expected_spans: usize,
    pub found_spans: usize,
    pub detail: String,
}

/// The result of a verification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub checked: usize,
    pub complete: usize,
    pub missing: usize,
    pub incomplete: usize,
    pub wrong: usize,
    /// Spans returned more than once, over all checked traces (not a failure).
    pub duplicated_spans: usize,
    /// The first problems, for the report.
    pub problems: Vec<TraceProblem>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.checked > 0 && self.complete == self.checked
    }
}

/// What came back for one trace, compared with what was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    Complete { duplicated: usize },
    Missing,
    Incomplete { found: usize, missing: usize },
    Wrong { found: usize, detail: String },
}

/// Compares the spans read back (`found`, as span id and parent) with what was sent.
pub fn compare(expected: &Expected, found: &[(SpanId, Option<SpanId>)]) -> Comparison {
    if found.is_empty() {
        return Comparison::Missing;
    }
    let want: HashMap<SpanId, Option<SpanId>> = expected.spans.iter().copied().collect();
    let mut seen: HashSet<SpanId> = HashSet::new();
    let mut duplicated = 0;
    for (id, parent) in found {
        match want.get(id) {
            None => {
                return Comparison::Wrong {
                    found: found.len(),
                    detail: format!("span {id} was not sent"),
                };
            }
            Some(p) if p != parent => {
                return Comparison::Wrong {
                    found: found.len(),
                    detail: format!(
                        "span {id} has parent {}, sent with {}",
                        parent.map_or("none".into(), |p| p.to_hex()),
                        p.map_or("none".into(), |p| p.to_hex())
                    ),
                };
            }
            Some(_) => {
                if !seen.insert(*id) {
                    duplicated += 1;
                }
            }
        }
    }
    if seen.len() < want.len() {
        return Comparison::Incomplete {
            found: seen.len(),
            missing: want.len() - seen.len(),
        };
    }
    Comparison::Complete { duplicated }
}

/// Fetches one trace: its spans, or an empty list when it is not found.
async fn fetch(
    client: &reqwest::Client,
    query: &str,
    id: TraceId,
) -> anyhow::Result<Vec<(SpanId, Option<SpanId>)>> {
    use anyhow::Context as _;
    let url = format!(
        "{}/api/v1/traces/{}",
        query.trim_end_matches('/'),
        id.to_hex()
    );
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("failed to GET {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(Vec::new());
    }
    if !response.status().is_success() {
        anyhow::bail!("GET {url} answered {}", response.status());
    }
    let body = response
        .bytes()
        .await
        .with_context(|| format!("failed to read {url}"))?;
    let decoded = stitch_wire::otlp_json::decode_export_request(&body)
        .with_context(|| format!("{url} did not return OTLP JSON"))?;
    Ok(decoded
        .batch
        .spans()
        .filter(|s| s.span.trace_id == id)
        .map(|s| (s.span.span_id, s.span.parent_span_id))
        .collect())
}

/// Checks every expected trace through the query API at `query` (e.g.
/// `http://127.0.0.1:16686`), retrying the ones not yet complete until `timeout` has passed.
pub async fn verify(
    query: &str,
    sample: &[Expected],
    timeout: Duration,
) -> anyhow::Result<VerifyReport> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pending: Vec<&Expected> = sample.iter().collect();
    let mut results: HashMap<TraceId, Comparison> = HashMap::new();
    loop {
        let mut still = Vec::new();
        // A few requests at a time: the canary should not become the load.
        for chunk in pending.chunks(8) {
            let fetched =
                futures::future::join_all(chunk.iter().map(|e| fetch(&client, query, e.trace_id)))
                    .await;
            for (e, found) in chunk.iter().zip(fetched) {
                let c = compare(e, &found?);
                if !matches!(c, Comparison::Complete { .. }) {
                    still.push(*e);
                }
                results.insert(e.trace_id, c);
            }
        }
        pending = still;
        if pending.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut report = VerifyReport {
        checked: sample.len(),
        ..Default::default()
    };
    for e in sample {
        let problem = |problem, found_spans, detail: String| TraceProblem {
            trace_id: e.trace_id.to_hex(),
            problem,
            expected_spans: e.spans.len(),
            found_spans,
            detail,
        };
        let p = match &results[&e.trace_id] {
            Comparison::Complete { duplicated } => {
                report.complete += 1;
                report.duplicated_spans += duplicated;
                None
            }
            Comparison::Missing => {
                report.missing += 1;
                Some(problem("missing", 0, "not found".into()))
            }
            Comparison::Incomplete { found, missing } => {
                report.incomplete += 1;
                Some(problem(
                    "incomplete",
                    *found,
                    format!("{missing} spans missing"),
                ))
            }
            Comparison::Wrong { found, detail } => {
                report.wrong += 1;
                Some(problem("wrong", *found, detail.clone()))
            }
        };
        if let Some(p) = p
            && report.problems.len() < 20
        {
            report.problems.push(p);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Generator, Preset};

    fn expected() -> Expected {
        let s = |n| SpanId::from_u64(n);
        Expected {
            trace_id: TraceId::from_halves(1, 2),
            spans: vec![(s(1), None), (s(2), Some(s(1))), (s(3), Some(s(1)))],
        }
    }

    #[test]
    fn comparison_tells_complete_missing_incomplete_and_wrong_apart() {
        let e = expected();
        let s = |n| SpanId::from_u64(n);
        assert_eq!(
            compare(&e, &e.spans),
            Comparison::Complete { duplicated: 0 }
        );
        let mut twice = e.spans.clone();
        twice.push(e.spans[1]);
        assert_eq!(compare(&e, &twice), Comparison::Complete { duplicated: 1 });
        assert_eq!(compare(&e, &[]), Comparison::Missing);
        assert_eq!(
            compare(&e, &e.spans[..2]),
            Comparison::Incomplete {
                found: 2,
                missing: 1
            }
        );
        assert!(matches!(
            compare(&e, &[(s(1), None), (s(9), Some(s(1)))]),
            Comparison::Wrong { .. }
        ));
        assert!(matches!(
            compare(&e, &[(s(1), None), (s(2), Some(s(3))), (s(3), Some(s(1)))]),
            Comparison::Wrong { .. }
        ));
    }

    #[test]
    fn the_reservoir_keeps_whole_traces_and_samples_uniformly() {
        let g = Generator::new(&Preset::Shop.profile()).unwrap();
        let mut r = Reservoir::new(50, 1);
        let mut first_half = HashSet::new();
        for i in 0..200 {
            let batch = g.batch(&mut Rng::for_batch(4, i), 10, 0);
            if i < 100 {
                first_half.extend(batch.spans().map(|s| s.span.trace_id));
            }
            r.offer_batch(&batch);
        }
        assert_eq!(r.seen(), 2_000);
        assert_eq!(r.items.len(), 50);
        let ids: HashSet<TraceId> = r.items.iter().map(|e| e.trace_id).collect();
        assert_eq!(ids.len(), 50, "no trace twice");
        for e in &r.items {
            assert_eq!(e.spans.len(), 22, "whole traces");
        }
        // Uniform over the stream: about half from the first half (binomial, sd ≈ 3.5).
        let early = ids.iter().filter(|id| first_half.contains(id)).count();
        assert!(
            (12..=38).contains(&early),
            "{early} of 50 from the first half"
        );
    }

    #[test]
    fn merged_reservoirs_keep_the_capacity() {
        let g = Generator::new(&Preset::Shop.profile()).unwrap();
        let parts: Vec<Reservoir> = (0..4)
            .map(|w| {
                let mut r = Reservoir::new(10, w);
                for i in 0..5 {
                    r.offer_batch(&g.batch(&mut Rng::for_batch(w, i), 4, 0));
                }
                r
            })
            .collect();
        let merged = Reservoir::merge(parts, 10, 3);
        assert_eq!(merged.len(), 10);
        let ids: HashSet<TraceId> = merged.iter().map(|e| e.trace_id).collect();
        assert_eq!(ids.len(), 10);
        assert!(Reservoir::merge(Vec::new(), 10, 3).is_empty());
    }
}
