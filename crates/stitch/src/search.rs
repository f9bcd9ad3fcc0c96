//! `stitch search`: find traces from the terminal, with a TraceQL query
//! (`GET /api/v1/search`) or with the Jaeger UI's filters (`GET /api/traces`).

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use stitch_analysis::render::format_duration;
use stitch_api::jaeger::{JaegerSpan, JaegerTrace, RefType, TagValue};

use crate::cli::{ServerArg, encode_query_value, get};

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// A TraceQL query, e.g. '{ status = error } >> { resource.service.name = "db" }'. Without
    /// one, the --service filters search the way the Jaeger UI does.
    #[arg(value_name = "TRACEQL")]
    query: Option<String>,
    /// Service whose spans to match (the filter form, without a TraceQL query).
    #[arg(long, required_unless_present = "query", conflicts_with = "query")]
    service: Option<String>,
    /// Span name to match.
    #[arg(long, conflicts_with = "query")]
    operation: Option<String>,
    /// Attribute that must match, as key=value (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", conflicts_with = "query")]
    tags: Vec<String>,
    /// Only spans at least this long, e.g. 1s, 250ms.
    #[arg(long, conflicts_with = "query")]
    min_duration: Option<String>,
    /// Only spans at most this long.
    #[arg(long, conflicts_with = "query")]
    max_duration: Option<String>,
    /// How far back to look, e.g. 1h, 2d.
    #[arg(long, default_value = "1h")]
    since: String,
    /// Most traces to list.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// With a TraceQL query: the matching spans listed per trace (they are all counted).
    #[arg(long, default_value_t = 3)]
    spans: usize,
    /// With a TraceQL query: print the API's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArg,
}

pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    if let Some(q) = &args.query {
        return traceql(&args, q).await;
    }
    let service = args.service.clone().unwrap_or_default();
    let mut params = vec![
        ("service".to_owned(), service),
        ("limit".to_owned(), args.limit.to_string()),
        ("lookback".to_owned(), args.since.clone()),
    ];
    let since = crate::config::parse_duration("--since", &args.since)?;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64;
    params.push(("end".into(), now_us.to_string()));
    params.push((
        "start".into(),
        now_us.saturating_sub(since.as_micros() as u64).to_string(),
    ));
    if let Some(op) = &args.operation {
        params.push(("operation".into(), op.clone()));
    }
    if let Some(d) = &args.min_duration {
        crate::config::parse_duration("--min-duration", d)?;
        params.push(("minDuration".into(), d.clone()));
    }
    if let Some(d) = &args.max_duration {
        crate::config::parse_duration("--max-duration", d)?;
        params.push(("maxDuration".into(), d.clone()));
    }
    if !args.tags.is_empty() {
        let mut tags = serde_json::Map::new();
        for t in &args.tags {
            let Some((k, v)) = t.split_once('=') else {
                bail!("--tag {t:?} must be KEY=VALUE");
            };
            tags.insert(k.to_owned(), Value::String(v.to_owned()));
        }
        params.push(("tags".into(), Value::Object(tags).to_string()));
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
        .collect();
    let server = args.server.server.trim_end_matches('/');
    let url = format!("{server}/api/traces?{}", query.join("&"));
    let (status, body) = get(&url).await?;
    if !status.is_success() {
        let json: Value = serde_json::from_slice(&body)
            .with_context(|| format!("{url} did not return JSON ({status})"))?;
        bail!("{url} answered {status}: {}", json["errors"]);
    }
    /// The Jaeger query API's answer to a search.
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        data: Vec<JaegerTrace>,
    }
    let traces = serde_json::from_slice::<Answer>(&body)
        .with_context(|| format!("{url} did not return Jaeger's trace JSON"))?
        .data;
    if traces.is_empty() {
        println!("no traces matched");
        return Ok(());
    }
    let rows: Vec<SearchRow> = traces.iter().map(SearchRow::from_jaeger).collect();
    println!(
        "{:<32}  {:<19}  {:>9}  {:>5}  {:>6}  ROOT",
        "TRACE ID", "START (UTC)", "DURATION", "SPANS", "ERRORS"
    );
    for r in rows {
        println!(
            "{:<32}  {:<19}  {:>9}  {:>5}  {:>6}  {}",
            r.trace_id,
            r.start,
            format_duration(r.duration_us * 1000),
            r.spans,
            r.errors,
            r.root
        );
    }
    Ok(())
}

/// One line of `stitch search` output, summarised from a Jaeger-format trace.
struct SearchRow {
    trace_id: String,
    start: String,
    duration_us: u64,
    spans: usize,
    errors: usize,
    root: String,
}

impl SearchRow {
    fn from_jaeger(t: &JaegerTrace) -> SearchRow {
        let spans = &t.spans;
        let start = spans.iter().map(|s| s.start_time).min().unwrap_or(0);
        let end = spans
            .iter()
            .map(|s| s.start_time.saturating_add(s.duration))
            .max()
            .unwrap_or(start);
        let is_error = |s: &JaegerSpan| {
            s.tags
                .iter()
                .any(|t| t.key == "error" && t.value == TagValue::Bool(true))
        };
        let span_ids: std::collections::HashSet<&str> =
            spans.iter().map(|s| s.span_id.as_str()).collect();
        let root = spans
            .iter()
            .filter(|s| {
                !s.references.iter().any(|r| {
                    r.ref_type == RefType::ChildOf && span_ids.contains(r.span_id.as_str())
                })
            })
            .min_by_key(|s| s.start_time);
        let root = root
            .map(|s| {
                let service = t
                    .process(&s.process_id)
                    .map_or("?", |p| p.service_name.as_str());
                format!("{service}: {}", s.operation_name)
            })
            .unwrap_or_default();
        SearchRow {
            trace_id: t.trace_id.clone(),
            start: format_utc(start),
            duration_us: end - start,
            spans: spans.len(),
            errors: spans.iter().filter(|s| is_error(s)).count(),
            root,
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC for a Unix time in microseconds.
fn format_utc(micros: u64) -> String {
    stitch_api::calendar::Utc::from_unix_seconds(micros / 1_000_000).plain()
}

/// The window `--since` covers, as (start, end) in Unix microseconds.
fn window(since: &str) -> anyhow::Result<(u64, u64)> {
    let since = crate::config::parse_duration("--since", since)?;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64;
    Ok((now_us.saturating_sub(since.as_micros() as u64), now_us))
}

/// `stitch search '<TraceQL>'`: a table of the matching traces and, under each, its matching
/// spans.
async fn traceql(args: &SearchArgs, query: &str) -> anyhow::Result<()> {
    let (start, end) = window(&args.since)?;
    let server = args.server.server.trim_end_matches('/');
    let url = format!(
        "{server}/api/v1/search?q={}&start={start}&end={end}&limit={}&spss={}",
        encode_query_value(query),
        args.limit,
        args.spans.max(1)
    );
    let (status, body) = get(&url).await?;
    let json: Value = serde_json::from_slice(&body)
        .with_context(|| format!("{url} did not return JSON ({status})"))?;
    if !status.is_success() {
        let message = json["error"]["message"].as_str().unwrap_or("no message");
        // Point at the character the server named.
        if let Some(pos) = json["error"]["position"].as_u64() {
            bail!(
                "{message}\n  {query}\n  {}^",
                " ".repeat(query.chars().take(pos as usize).count())
            );
        }
        bail!("{url} answered {status}: {message}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    print!("{}", traceql_table(&json));
    Ok(())
}

/// The text `stitch search '<TraceQL>'` prints for an answer of `/api/v1/search`.
fn traceql_table(json: &Value) -> String {
    use std::fmt::Write;
    let traces = json["traces"].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    if traces.is_empty() {
        out.push_str("no traces matched\n");
    } else {
        let _ = writeln!(
            out,
            "{:<32}  {:<19}  {:>9}  {:>7}  ROOT",
            "TRACE ID", "START (UTC)", "DURATION", "MATCHED"
        );
    }
    for t in &traces {
        let start_ns: u64 = t["startTimeUnixNano"]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        let sets = t["spanSets"].as_array().cloned().unwrap_or_default();
        let matched: u64 = sets.iter().filter_map(|s| s["matched"].as_u64()).sum();
        let _ = writeln!(
            out,
            "{:<32}  {:<19}  {:>9}  {:>7}  {}: {}",
            t["traceID"].as_str().unwrap_or(""),
            format_utc(start_ns / 1000),
            format_duration(t["durationMs"].as_u64().unwrap_or(0) * 1_000_000),
            matched,
            t["rootServiceName"].as_str().unwrap_or("?"),
            t["rootTraceName"].as_str().unwrap_or("?"),
        );
        for set in &sets {
            let by: Vec<String> = set["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    format!(
                        "{}={}",
                        a["key"].as_str().unwrap_or(""),
                        a["value"]["stringValue"].as_str().unwrap_or("")
                    )
                })
                .collect();
            if !by.is_empty() {
                let _ = writeln!(out, "    by {}", by.join(", "));
            }
            for sp in set["spans"].as_array().into_iter().flatten() {
                let dur: u64 = sp["durationNanos"]
                    .as_str()
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0);
                let attrs: Vec<String> = sp["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        let v = &a["value"];
                        let text = ["stringValue", "intValue", "doubleValue", "boolValue"]
                            .iter()
                            .find_map(|k| v.get(*k))
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                            .unwrap_or_default();
                        format!("{}={text}", a["key"].as_str().unwrap_or(""))
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "    {}  {:>9}  {}: {}{}",
                    sp["spanID"].as_str().unwrap_or(""),
                    format_duration(dur),
                    sp["serviceName"].as_str().unwrap_or("?"),
                    sp["name"].as_str().unwrap_or("?"),
                    if attrs.is_empty() {
                        String::new()
                    } else {
                        format!("  {}", attrs.join(" "))
                    }
                );
            }
            let listed = set["spans"].as_array().map_or(0, Vec::len) as u64;
            let matched = set["matched"].as_u64().unwrap_or(0);
            if matched > listed {
                let _ = writeln!(out, "    … {} more matching spans", matched - listed);
            }
        }
    }
    if json["metrics"]["truncated"] == Value::Bool(true) {
        let _ = writeln!(
            out,
            "(only the newest {} traces of the window were searched; narrow --since for older ones)",
            json["metrics"]["inspectedTraces"]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_matches_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_700_000_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(format_utc(951_782_400_000_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn a_search_row_summarises_a_typed_trace() {
        use std::sync::Arc;
        use stitch_model::{KeyValue, Resource, ResourceSpans, ScopeSpans, Span, SpanId, Trace};
        let id = stitch_model::TraceId::from_halves(0, 0xab);
        let t0 = 1_700_000_000_000_000_000;
        let span = |n: u64, parent: Option<u64>, start_ms: u64, end_ms: u64| Span {
            trace_id: id,
            span_id: SpanId::from_u64(n),
            parent_span_id: parent.map(SpanId::from_u64),
            name: format!("op{n}"),
            start_time_unix_nano: t0 + start_ms * 1_000_000,
            end_time_unix_nano: t0 + end_ms * 1_000_000,
            ..Default::default()
        };
        let mut failed = span(2, Some(1), 5, 90);
        failed.status.code = stitch_model::StatusCode::Error;
        let mut trace = Trace::new(id);
        trace.resource_spans = vec![ResourceSpans {
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::new("service.name", "web")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![failed, span(1, None, 0, 120)],
                ..Default::default()
            }],
        }];
        let json = serde_json::to_vec(&stitch_api::jaeger::trace_to_jaeger(&trace)).unwrap();
        let typed: JaegerTrace = serde_json::from_slice(&json).unwrap();
        let row = SearchRow::from_jaeger(&typed);
        assert_eq!(row.trace_id, "00000000000000ab");
        assert_eq!(row.start, "2023-11-14 22:13:20");
        assert_eq!(row.duration_us, 120_000);
        assert_eq!((row.spans, row.errors), (2, 1));
        assert_eq!(row.root, "web: op1");
    }
}
