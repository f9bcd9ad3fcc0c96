//! Terminal commands that talk to a running Stitch over its HTTP API: `trace` and `search`.

use std::io::IsTerminal;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;
use stitch_analysis::render::{WaterfallOptions, findings_text, format_duration, waterfall};
use stitch_model::{Trace, TraceId};

#[derive(Args, Debug)]
pub struct ServerArg {
    /// Base URL of the Stitch query API.
    #[arg(long, env = "STITCH_SERVER", default_value = "http://127.0.0.1:16686")]
    pub server: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

fn terminal_width(explicit: Option<usize>) -> usize {
    explicit
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .unwrap_or(120)
        .max(40)
}

async fn get(url: &str) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
    let resp = reqwest::get(url)
        .await
        .with_context(|| format!("failed to reach {url}"))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("failed to read the response from {url}"))?;
    Ok((status, body.to_vec()))
}

/// Fetches a trace through the native API (OTLP JSON) and decodes it into the model.
pub async fn fetch_trace(server: &str, id: TraceId) -> anyhow::Result<Option<Trace>> {
    let url = format!("{}/api/v1/traces/{id}", server.trim_end_matches('/'));
    let (status, body) = get(&url).await?;
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let decoded = stitch_wire::otlp_json::decode_export_request(&body)
        .with_context(|| format!("{url} did not return an OTLP JSON trace"))?;
    let mut trace = Trace::new(id);
    trace.resource_spans = decoded.batch.resource_spans;
    Ok(Some(trace))
}

pub async fn trace(
    server: &str,
    id: &str,
    width: Option<usize>,
    color: ColorChoice,
) -> anyhow::Result<()> {
    let id: TraceId = id
        .trim()
        .parse()
        .with_context(|| format!("{id:?} is not a trace id"))?;
    let Some(trace) = fetch_trace(server, id).await? else {
        bail!("trace {id} not found on {server}");
    };
    let width = terminal_width(width);
    let opts = WaterfallOptions {
        width,
        color: color.enabled(),
        critical_path: true,
        ..WaterfallOptions::default()
    };
    // The analysis is pure and cheap, so it runs here on the fetched trace; the server offers
    // the same result at /api/v1/traces/{id}/analysis.
    let analysis = stitch_analysis::analyze(&trace, &stitch_analysis::AnalysisOptions::default());
    print!("{}", waterfall(&trace, &opts));
    println!();
    print!("{}", findings_text(&analysis, &trace, width));
    Ok(())
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Find hops where trace context was lost, splitting traces in two.
    #[arg(long)]
    broken_propagation: bool,
    /// How far back to look, e.g. 1h, 2d.
    #[arg(long, default_value = "1h")]
    since: String,
    #[command(flatten)]
    server: ServerArg,
}

/// `stitch analyze --broken-propagation`: asks the server to look across the traces of a window.
pub async fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    if !args.broken_propagation {
        bail!(
            "say what to analyze: --broken-propagation (per-trace analysis is in `stitch trace`)"
        );
    }
    crate::config::parse_duration("--since", &args.since)?;
    let server = args.server.server.trim_end_matches('/');
    let url = format!(
        "{server}/api/v1/analysis/broken-propagation?since={}",
        encode_query_value(&args.since)
    );
    let (status, body) = get(&url).await?;
    let json: Value = serde_json::from_slice(&body)
        .with_context(|| format!("{url} did not return JSON ({status})"))?;
    if !status.is_success() {
        bail!("{url} answered {status}: {}", json["error"]["message"]);
    }
    let hops = json["hops"].as_array().cloned().unwrap_or_default();
    let scanned = json["tracesScanned"].as_u64().unwrap_or(0);
    if hops.is_empty() {
        println!(
            "no broken propagation found in {scanned} traces of the last {}",
            args.since
        );
        return Ok(());
    }
    println!(
        "{} broken hop(s) in {scanned} traces of the last {}:",
        hops.len(),
        args.since
    );
    for hop in hops {
        let s = |k: &str| hop[k].as_str().unwrap_or("?").to_owned();
        println!();
        println!(
            "  {} ({}) → {} ({}): {} occurrence(s)",
            s("callerService"),
            s("callerOperation"),
            s("calleeService"),
            s("calleeOperation"),
            hop["occurrences"]
        );
        println!("    {}", s("message"));
        if let Some(blamed) = hop["blamedService"].as_str() {
            println!("    broken by: {blamed}");
        }
        for ex in hop["examples"].as_array().into_iter().flatten().take(2) {
            println!(
                "    e.g. stitch trace {}  and  stitch trace {}",
                ex["callerTraceId"].as_str().unwrap_or("?"),
                ex["calleeTraceId"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Service whose spans to match.
    #[arg(long)]
    service: String,
    /// Span name to match.
    #[arg(long)]
    operation: Option<String>,
    /// Attribute that must match, as key=value (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// Only spans at least this long, e.g. 1s, 250ms.
    #[arg(long)]
    min_duration: Option<String>,
    /// Only spans at most this long.
    #[arg(long)]
    max_duration: Option<String>,
    /// How far back to look, e.g. 1h, 2d.
    #[arg(long, default_value = "1h")]
    since: String,
    /// Most traces to list.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(flatten)]
    server: ServerArg,
}

fn encode_query_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let mut params = vec![
        ("service".to_owned(), args.service.clone()),
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
    let json: Value = serde_json::from_slice(&body)
        .with_context(|| format!("{url} did not return JSON ({status})"))?;
    if !status.is_success() {
        bail!("{url} answered {status}: {}", json["errors"]);
    }
    let traces = json["data"].as_array().cloned().unwrap_or_default();
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
    fn from_jaeger(t: &Value) -> SearchRow {
        let spans = t["spans"].as_array().cloned().unwrap_or_default();
        let start = spans
            .iter()
            .filter_map(|s| s["startTime"].as_u64())
            .min()
            .unwrap_or(0);
        let end = spans
            .iter()
            .filter_map(|s| Some(s["startTime"].as_u64()? + s["duration"].as_u64()?))
            .max()
            .unwrap_or(start);
        let is_error = |s: &Value| {
            s["tags"].as_array().is_some_and(|tags| {
                tags.iter()
                    .any(|t| t["key"] == "error" && t["value"] == Value::Bool(true))
            })
        };
        let span_ids: std::collections::HashSet<&str> =
            spans.iter().filter_map(|s| s["spanID"].as_str()).collect();
        let root = spans
            .iter()
            .filter(|s| {
                !s["references"].as_array().is_some_and(|refs| {
                    refs.iter().any(|r| {
                        r["refType"] == "CHILD_OF"
                            && r["spanID"].as_str().is_some_and(|p| span_ids.contains(p))
                    })
                })
            })
            .min_by_key(|s| s["startTime"].as_u64().unwrap_or(u64::MAX));
        let root = root
            .map(|s| {
                let pid = s["processID"].as_str().unwrap_or("");
                let service = t["processes"][pid]["serviceName"].as_str().unwrap_or("?");
                format!("{service}: {}", s["operationName"].as_str().unwrap_or("?"))
            })
            .unwrap_or_default();
        SearchRow {
            trace_id: t["traceID"].as_str().unwrap_or("").to_owned(),
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
    let secs = micros / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant's published algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
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
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("a b/{\"x\"}"), "a%20b%2F%7B%22x%22%7D");
    }
}
