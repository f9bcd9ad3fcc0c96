//! TraceQL metrics: `GET /api/metrics/query_range` (a time series per group) and
//! `GET /api/metrics/query` (one value per group over the whole window), as Tempo answers them
//! for Grafana's Explore and Traces Drilldown.
//!
//! Parameters: `q`, a TraceQL metrics query (`{ status = error } | rate() by (name)`);
//! `start` and `end`, Unix seconds (or nanoseconds when longer than ten digits; fractions
//! allowed), or `since` (`1h`), the last hour by default; `step` (query_range), seconds or a
//! duration (`30s`), by default a hundredth of the window, whole seconds, at most
//! [`MAX_POINTS`] steps. The answer:
//!
//! ```json
//! {"series": [{"labels": [{"key": "name", "value": {"stringValue": "GET"}}],
//!              "promLabels": "{name=\"GET\"}",
//!              "samples": [{"timestampMs": "1700000000000", "value": 0.5}],
//!              "exemplars": [{"labels": [{"key": "trace:id", "value": {"stringValue": "..."}}],
//!                             "value": 0.5, "timestampMs": "1700000001234"}]}],
//!  "metrics": {"inspectedTraces": "12"}}
//! ```
//!
//! `/api/metrics/query` answers `{"series": [{"labels": [...], "value": v}]}`. An answer that
//! left traces or series out carries `"status": "PARTIAL"` and a `message` saying what.

use stitch_query::traceql::metrics::{self, MetricsQuery, MetricsResult};

use super::*;
use crate::search::value_json;

/// The most steps a range query answers.
pub const MAX_POINTS: u64 = 11_000;
const NANOS: u64 = 1_000_000_000;

/// A time as Tempo's metrics API takes it: Unix seconds, or nanoseconds when the integer part
/// has more than ten digits.
fn instant(params: &Params, name: &str) -> Result<Option<u64>, TempoError> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    let t = text.trim();
    let whole = t.split('.').next().unwrap_or("");
    let bad = || {
        TempoError::bad(format!(
            "invalid {name}: {text:?} is not a Unix time in seconds or nanoseconds"
        ))
    };
    if whole.len() > 10 {
        return whole.parse::<u64>().map(Some).map_err(|_| bad());
    }
    let seconds: f64 = t.parse().map_err(|_| bad())?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(bad());
    }
    Ok(Some((seconds * NANOS as f64) as u64))
}

/// `[start, end)` in Unix nanoseconds.
fn metrics_window(params: &Params) -> Result<(u64, u64), TempoError> {
    let end = instant(params, "end")?.unwrap_or_else(now_unix_nanos);
    let start = match (instant(params, "start")?, duration(params, "since")?) {
        (Some(s), _) => s,
        (None, Some(since)) => end.saturating_sub(since),
        (None, None) => end.saturating_sub(DEFAULT_WINDOW_NANOS),
    };
    if end <= start {
        return Err(TempoError::bad(format!(
            "http parameter start must be before end. received start={} end={}",
            start / NANOS,
            end / NANOS
        )));
    }
    Ok((start, end))
}

/// The step in nanoseconds: `step` as seconds or a duration, else a hundredth of the window.
fn step(params: &Params, start: u64, end: u64) -> Result<u64, TempoError> {
    let step = match params.get("step").map(str::trim) {
        None | Some("") => (end - start).div_ceil(100).div_ceil(NANOS).max(1) * NANOS,
        Some(t) => match t.parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 => (s * NANOS as f64) as u64,
            _ => parse_duration_nanos(t).filter(|&n| n > 0).ok_or_else(|| {
                TempoError::bad(format!(
                    "invalid step: {t:?} is not a number of seconds or a duration such as 30s"
                ))
            })?,
        },
    };
    let points = (end - start).div_ceil(step.max(1));
    if points > MAX_POINTS {
        return Err(TempoError::bad(format!(
            "step too small: {points} steps in the window, at most {MAX_POINTS}; use a larger step"
        )));
    }
    Ok(step.max(1))
}

fn query(params: &Params) -> Result<MetricsQuery, TempoError> {
    let q = params
        .get("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| TempoError::bad("invalid query: q is required"))?;
    MetricsQuery::parse(q).map_err(|e| TempoError::bad(format!("invalid TraceQL query: {e}")))
}

fn labels_json(labels: &[metrics::Label]) -> Json {
    Json::Array(
        labels
            .iter()
            .map(|(k, v)| json!({"key": k, "value": value_json(v)}))
            .collect(),
    )
}

/// The labels as Prometheus writes a series: `{a="x", b="y"}`.
fn prom_labels(labels: &[metrics::Label]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let text = v.to_text().replace('\\', "\\\\").replace('"', "\\\"");
            format!("{k}=\"{text}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn finish(mut body: serde_json::Map<String, Json>, result: &MetricsResult) -> Response {
    body.insert(
        "metrics".into(),
        json!({"inspectedTraces": result.inspected_traces.to_string()}),
    );
    if let Some(why) = &result.partial {
        body.insert("status".into(), json!("PARTIAL"));
        body.insert("message".into(), json!(why));
    }
    axum::Json(Json::Object(body)).into_response()
}

/// A number as JSON; NaN and infinities (which JSON cannot hold) as Go's jsonpb writes them.
fn number(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or_else(
        || {
            Json::String(if v.is_nan() {
                "NaN".into()
            } else if v > 0.0 {
                "Infinity".into()
            } else {
                "-Infinity".into()
            })
        },
        Json::Number,
    )
}

pub(super) async fn query_range(State(reader): State<Reader>, query_string: Q) -> Answer {
    let params = params(query_string)?;
    let q = query(&params)?;
    let (start, end) = metrics_window(&params)?;
    let step = step(&params, start, end)?;
    let result = metrics::query_range(reader.as_ref(), &q, start, end, step).await?;
    let series: Vec<Json> = result
        .series
        .iter()
        .map(|s| {
            json!({
                "labels": labels_json(&s.labels),
                "promLabels": prom_labels(&s.labels),
                "samples": s.samples.iter().map(|(at, v)| json!({
                    "timestampMs": (at / 1_000_000).to_string(),
                    "value": number(*v),
                })).collect::<Vec<_>>(),
                "exemplars": s.exemplars.iter().map(|e| json!({
                    "labels": [
                        {"key": "trace:id", "value": {"stringValue": e.trace_id.to_string()}},
                        {"key": "span:id", "value": {"stringValue": e.span_id.to_hex()}},
                    ],
                    "value": number(e.value),
                    "timestampMs": (e.start_unix_nanos / 1_000_000).to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("series".into(), Json::Array(series));
    Ok(finish(body, &result))
}

pub(super) async fn query_instant(State(reader): State<Reader>, query_string: Q) -> Answer {
    let params = params(query_string)?;
    let q = query(&params)?;
    let (start, end) = metrics_window(&params)?;
    let result = metrics::query_instant(reader.as_ref(), &q, start, end).await?;
    let series: Vec<Json> = result
        .series
        .iter()
        .filter_map(|s| {
            let v = s.samples.iter().map(|(_, v)| v).sum::<f64>();
            (!s.samples.is_empty()).then(|| {
                json!({
                    "labels": labels_json(&s.labels),
                    "promLabels": prom_labels(&s.labels),
                    "value": number(v),
                })
            })
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("series".into(), Json::Array(series));
    Ok(finish(body, &result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn times_are_seconds_or_nanoseconds_and_steps_bounded() {
        assert_eq!(
            metrics_window(&p(&[("start", "1700000000"), ("end", "1700000060.5")])).unwrap(),
            (1_700_000_000 * NANOS, 1_700_000_060_500_000_000)
        );
        assert_eq!(
            metrics_window(&p(&[
                ("start", "1700000000000000000"),
                ("end", "1700000001000000000")
            ]))
            .unwrap(),
            (1_700_000_000 * NANOS, 1_700_000_001 * NANOS)
        );
        let (s, e) = metrics_window(&p(&[("end", "1700000000"), ("since", "10m")])).unwrap();
        assert_eq!(e - s, 600 * NANOS);
        assert!(metrics_window(&p(&[("start", "20"), ("end", "10")])).is_err());
        assert!(metrics_window(&p(&[("start", "soon")])).is_err());
        let w = (0, 3600 * NANOS);
        assert_eq!(step(&p(&[]), w.0, w.1).unwrap(), 36 * NANOS);
        assert_eq!(step(&p(&[("step", "30s")]), w.0, w.1).unwrap(), 30 * NANOS);
        assert_eq!(
            step(&p(&[("step", "2.5")]), w.0, w.1).unwrap(),
            2_500_000_000
        );
        assert!(step(&p(&[("step", "1ms")]), w.0, w.1).is_err());
        assert!(step(&p(&[("step", "-1")]), w.0, w.1).is_err());
        assert!(query(&p(&[("q", "{ }")])).is_err());
        assert!(query(&p(&[])).is_err());
        assert_eq!(number(f64::NAN), json!("NaN"));
    }
}
