//! Terminal commands that talk to a running Stitch over its HTTP API: `trace` and `analyze`
//! (`search` is in its own module), and the helpers they share.

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

pub(crate) async fn get(url: &str) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
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

/// The broken hops the server finds for trace `id` among the traces around it.
async fn fetch_broken_hops(
    server: &str,
    id: TraceId,
) -> anyhow::Result<Vec<stitch_analysis::BrokenHop>> {
    #[derive(serde::Deserialize)]
    struct Hops {
        hops: Vec<stitch_analysis::BrokenHop>,
    }
    let url = format!("{server}/api/v1/traces/{id}/broken-propagation");
    let (status, body) = get(&url).await?;
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let hops: Hops = serde_json::from_slice(&body)
        .with_context(|| format!("{url} did not return broken hops"))?;
    Ok(hops.hops)
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
    // The analysis is pure and cheap, so it runs here on the fetched trace. Broken hops need
    // the traces around it, which the server reads; with both, this is what the server offers
    // at /api/v1/traces/{id}/analysis.
    let mut analysis =
        stitch_analysis::analyze(&trace, &stitch_analysis::AnalysisOptions::default());
    match fetch_broken_hops(server, id).await {
        Ok(hops) => analysis.add_broken_propagation(&hops),
        Err(e) => eprintln!("stitch: no broken-propagation findings ({e:#})"),
    }
    // Drawn on the times the analysis uses: a server span whose host clock runs behind its
    // caller's is shifted into its client span, so bars, critical path and findings agree.
    let adjusted = stitch_analysis::adjust_clock_skew(&trace);
    print!("{}", waterfall(&adjusted.trace, &opts));
    if !adjusted.adjustments.is_empty() {
        println!(
            "{} span(s) shifted for clock skew between hosts",
            adjusted.adjustments.len()
        );
    }
    println!();
    print!("{}", findings_text(&analysis, &adjusted.trace, width));
    Ok(())
}

#[derive(Args, Debug)]
#[command(group(
    clap::ArgGroup::new("analysis")
        .required(true)
        .args(["broken_propagation", "breakdown", "cohort", "dependencies"])
))]
pub struct AnalyzeArgs {
    /// Find hops where trace context was lost, splitting traces in two.
    #[arg(long)]
    broken_propagation: bool,
    /// Where the critical-path time of one endpoint's requests goes, by service and operation
    /// (with --service and --operation).
    #[arg(long, requires_all = ["service", "operation"])]
    breakdown: bool,
    /// Where slow requests (≥ p99) of one endpoint spend their extra time compared with typical
    /// ones (p40–p60), by service, operation and finding kind (with --service and --operation).
    #[arg(long, requires_all = ["service", "operation"])]
    cohort: bool,
    /// Every service SERVICE depends on, directly or through others, and every service that
    /// depends on it (who is affected when it fails), from the calls of the window.
    #[arg(long, value_name = "SERVICE")]
    dependencies: Option<String>,
    /// The endpoint's service: the service of the traces' root span.
    #[arg(long)]
    service: Option<String>,
    /// The endpoint's operation: the name of the traces' root span.
    #[arg(long)]
    operation: Option<String>,
    /// How far back to look, e.g. 1h, 2d.
    #[arg(long, default_value = "1h")]
    since: String,
    /// Most traces to read for --breakdown and --cohort (the server's default is 5000, its
    /// maximum 20000); the newest are read first.
    #[arg(long)]
    limit: Option<usize>,
    /// Rows per table (--breakdown, --cohort).
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print the server's JSON answer instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArg,
}

/// GETs `url` and returns its JSON body, or an error carrying the API's message.
async fn get_json(url: &str) -> anyhow::Result<Value> {
    let (status, body) = get(url).await?;
    let json: Value = serde_json::from_slice(&body)
        .with_context(|| format!("{url} did not return JSON ({status})"))?;
    if !status.is_success() {
        match json["error"]["message"].as_str() {
            Some(msg) => bail!("{url} answered {status}: {msg}"),
            None => bail!("{url} answered {status}: {json}"),
        }
    }
    Ok(json)
}

fn print_json(json: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(json)?);
    Ok(())
}

/// `stitch analyze`: asks the server to look across the traces of a window.
pub async fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let since = crate::config::parse_duration("--since", &args.since)?;
    if args.breakdown || args.cohort {
        return analyze_endpoint(&args, since).await;
    }
    if let Some(service) = &args.dependencies {
        return analyze_dependencies(&args, service).await;
    }
    let server = args.server.server.trim_end_matches('/');
    let url = format!(
        "{server}/api/v1/analysis/broken-propagation?since={}",
        encode_query_value(&args.since)
    );
    let json = get_json(&url).await?;
    if args.json {
        return print_json(&json);
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

/// `stitch analyze --dependencies SERVICE`: the service's deep dependencies and dependents.
async fn analyze_dependencies(args: &AnalyzeArgs, service: &str) -> anyhow::Result<()> {
    let server = args.server.server.trim_end_matches('/');
    let mut url = format!(
        "{server}/api/v1/services/{}/dependencies?lookback={}",
        encode_query_value(service),
        encode_query_value(&args.since)
    );
    if let Some(limit) = args.limit {
        url.push_str(&format!("&limit={limit}"));
    }
    let json = get_json(&url).await?;
    if args.json {
        return print_json(&json);
    }
    print!("{}", dependencies_text(&json, service, &args.since));
    Ok(())
}

/// The two lists of `stitch analyze --dependencies`, with the calls of each direct edge.
fn dependencies_text(json: &Value, service: &str, since: &str) -> String {
    let edges = json["edges"].as_array().cloned().unwrap_or_default();
    let calls = |parent: &str, child: &str| {
        edges
            .iter()
            .find(|e| e["parent"] == parent && e["child"] == child)
            .map(|e| format!("{:.0}", e["callCount"].as_f64().unwrap_or(0.0)))
            .unwrap_or_default()
    };
    let mut out = format!("{service}, calls of the last {since}:\n");
    for (key, heading, outward) in [
        ("dependsOn", "depends on", true),
        ("dependents", "is depended on by", false),
    ] {
        let list = json[key].as_array().cloned().unwrap_or_default();
        out.push('\n');
        if list.is_empty() {
            out.push_str(&format!("{service} {heading} no service\n"));
            continue;
        }
        out.push_str(&format!("{service} {heading} {} service(s):\n", list.len()));
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|d| {
                let name = d["service"].as_str().unwrap_or("?");
                let via = d["via"].as_str().unwrap_or("?");
                let (parent, child) = if outward { (via, name) } else { (name, via) };
                vec![
                    d["depth"].to_string(),
                    name.to_owned(),
                    if via == service {
                        String::new()
                    } else {
                        via.to_owned()
                    },
                    calls(parent, child),
                ]
            })
            .collect();
        let via_header = if outward { "via" } else { "through" };
        let t = table(
            &[
                ("depth", Align::Right),
                ("service", Align::Left),
                (via_header, Align::Left),
                ("calls", Align::Right),
            ],
            &rows,
        );
        for line in t.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `stitch analyze --breakdown` and `--cohort`: one endpoint across the traces of a window.
async fn analyze_endpoint(args: &AnalyzeArgs, since: std::time::Duration) -> anyhow::Result<()> {
    let (Some(service), Some(operation)) = (&args.service, &args.operation) else {
        bail!("--breakdown and --cohort need --service and --operation");
    };
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64;
    let mut params = vec![
        ("service", service.clone()),
        ("operation", operation.clone()),
        (
            "start",
            now_us.saturating_sub(since.as_micros() as u64).to_string(),
        ),
        ("end", now_us.to_string()),
    ];
    if let Some(limit) = args.limit {
        params.push(("limit", limit.to_string()));
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
        .collect();
    let route = if args.cohort { "cohort" } else { "breakdown" };
    let server = args.server.server.trim_end_matches('/');
    let url = format!("{server}/api/v1/analysis/{route}?{}", query.join("&"));
    let json = get_json(&url).await?;
    if args.json {
        return print_json(&json);
    }
    let endpoint = format!("{service} {operation}");
    let text = if args.cohort {
        cohort_text(&json, &endpoint, &args.since, args.top)
    } else {
        breakdown_text(&json, &endpoint, &args.since, args.top)
    };
    print!("{text}");
    Ok(())
}

/// "100 traces of the endpoint in the last 1h (103 read)", with a hint when the limit cut the
/// read short.
fn traces_line(json: &Value, since: &str) -> String {
    let used = json["tracesUsed"].as_u64().unwrap_or(0);
    let scanned = json["tracesScanned"].as_u64().unwrap_or(0);
    let mut line = format!("{used} traces of the endpoint in the last {since} ({scanned} read");
    if json["truncated"].as_bool() == Some(true) {
        line.push_str(", the newest only: raise --limit to read more");
    }
    line.push(')');
    line
}

fn nanos(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A signed duration: `+1.20s`, `−50ms`, `0`.
fn signed_duration(nanos: i64) -> String {
    match nanos {
        0 => "0".to_owned(),
        n if n > 0 => format!("+{}", format_duration(n.unsigned_abs())),
        n => format!("−{}", format_duration(n.unsigned_abs())),
    }
}

fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A column of a text table.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Renders rows under a header, each column as wide as its widest cell, two spaces apart.
/// Widths count characters, so `−` and `≥` line up like ASCII.
fn table(header: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::from(" ");
        for ((cell, w), (_, align)) in cells.iter().zip(&widths).zip(header) {
            let pad = " ".repeat(w - cell.chars().count());
            out.push(' ');
            match align {
                Align::Left => {
                    out.push_str(cell);
                    out.push_str(&pad);
                }
                Align::Right => {
                    out.push_str(&pad);
                    out.push_str(cell);
                }
            }
            out.push(' ');
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(header.iter().map(|(h, _)| *h).collect());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The first `top` rows, and a line saying how many were left out.
fn top_rows(rows: Vec<Vec<String>>, top: usize) -> (Vec<Vec<String>>, Option<String>) {
    let total = rows.len();
    let shown: Vec<Vec<String>> = rows.into_iter().take(top.max(1)).collect();
    let more = (total > shown.len()).then(|| {
        format!(
            "  … and {} more (--top, or --json for all)\n",
            total - shown.len()
        )
    });
    (shown, more)
}

/// Bar of up to 20 cells for a share between 0 and 1.
fn bar(share: f64) -> String {
    let cells = (share.clamp(0.0, 1.0) * 20.0).round() as usize;
    "█".repeat(cells)
}

/// The tables of `stitch analyze --breakdown`.
fn breakdown_text(json: &Value, endpoint: &str, since: &str, top: usize) -> String {
    let b = &json["breakdown"];
    let mut out = String::new();
    if b["traces"].as_u64().unwrap_or(0) == 0 {
        out.push_str(&format!(
            "no traces of {endpoint} in the last {since} ({} read)\n",
            json["tracesScanned"].as_u64().unwrap_or(0)
        ));
        return out;
    }
    out.push_str(&format!(
        "Latency breakdown of {endpoint}: where the critical path goes\n{}, mean duration {}\n",
        traces_line(json, since),
        format_duration(nanos(&b["meanDurationNanos"]))
    ));
    let share_cells = |r: &Value| {
        let share = r["share"].as_f64().unwrap_or(0.0);
        vec![
            percent(share),
            format_duration(nanos(&r["meanNanosPerTrace"])),
            bar(share),
        ]
    };
    let services: Vec<Vec<String>> = b["byService"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mut row = vec![r["service"].as_str().unwrap_or("?").to_owned()];
            row.extend(share_cells(r));
            row
        })
        .collect();
    let (services, more) = top_rows(services, top);
    out.push_str("\nBy service:\n");
    out.push_str(&table(
        &[
            ("SERVICE", Align::Left),
            ("SHARE", Align::Right),
            ("PER TRACE", Align::Right),
            ("", Align::Left),
        ],
        &services,
    ));
    out.extend(more);
    let operations: Vec<Vec<String>> = b["byOperation"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mut row = vec![
                r["service"].as_str().unwrap_or("?").to_owned(),
                r["operation"].as_str().unwrap_or("?").to_owned(),
            ];
            row.extend(share_cells(r));
            row
        })
        .collect();
    let (operations, more) = top_rows(operations, top);
    out.push_str("\nBy operation:\n");
    out.push_str(&table(
        &[
            ("SERVICE", Align::Left),
            ("OPERATION", Align::Left),
            ("SHARE", Align::Right),
            ("PER TRACE", Align::Right),
            ("", Align::Left),
        ],
        &operations,
    ));
    out.extend(more);
    out
}

/// The tables of `stitch analyze --cohort`: typical, slow and the delta per trace, the largest
/// delta first.
fn cohort_text(json: &Value, endpoint: &str, since: &str, top: usize) -> String {
    let mut out = String::new();
    let c = &json["cohort"];
    if c.is_null() {
        out.push_str(&format!(
            "no cohort diff for {endpoint}: {}\n({})\n",
            json["reason"].as_str().unwrap_or("too few traces"),
            traces_line(json, since)
        ));
        return out;
    }
    out.push_str(&format!(
        "Cohort diff of {endpoint}: slow (≥ p99) versus typical (p40–p60) traces\n{}\n",
        traces_line(json, since)
    ));
    for line in c["summary"].as_array().into_iter().flatten().take(1) {
        out.push_str(&format!("{}\n", line.as_str().unwrap_or("")));
    }
    let delta_cells = |d: &Value| {
        let delta = d["deltaNanos"].as_i64().unwrap_or(0);
        vec![
            format_duration(nanos(&d["typicalMeanNanos"])),
            format_duration(nanos(&d["slowMeanNanos"])),
            signed_duration(delta),
            if delta > 0 {
                format!(
                    "{:.0}%",
                    d["shareOfDifference"].as_f64().unwrap_or(0.0) * 100.0
                )
            } else {
                String::new()
            },
        ]
    };
    let delta_header = [
        ("TYPICAL", Align::Right),
        ("SLOW", Align::Right),
        ("DELTA", Align::Right),
        ("OF DIFF", Align::Right),
    ];
    let mut section = |title: &str, key_header: &[(&str, Align)], rows: Vec<Vec<String>>| {
        if rows.is_empty() {
            return;
        }
        let (rows, more) = top_rows(rows, top);
        let header: Vec<(&str, Align)> = key_header.iter().chain(&delta_header).copied().collect();
        out.push_str(&format!("\n{title}, per trace:\n"));
        out.push_str(&table(&header, &rows));
        out.extend(more);
    };
    let rows = |list: &Value, key: &dyn Fn(&Value) -> Vec<String>| -> Vec<Vec<String>> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                let mut row = key(d);
                row.extend(delta_cells(d));
                row
            })
            .collect()
    };
    let text = |d: &Value, k: &str| d[k].as_str().unwrap_or("?").to_owned();
    section(
        "By service",
        &[("SERVICE", Align::Left)],
        rows(&c["byService"], &|d| vec![text(d, "service")]),
    );
    section(
        "By operation",
        &[("SERVICE", Align::Left), ("OPERATION", Align::Left)],
        rows(&c["byOperation"], &|d| {
            vec![text(d, "service"), text(d, "operation")]
        }),
    );
    for dim in c["extra"].as_array().into_iter().flatten() {
        let name = dim["name"].as_str().unwrap_or("?");
        let (title, header) = if name == "findingKind" {
            ("By finding kind (findings may overlap)", "FINDING")
        } else {
            (name, "LABEL")
        };
        section(
            title,
            &[(header, Align::Left)],
            rows(&dim["deltas"], &|d| vec![text(d, "key")]),
        );
    }
    out
}

/// Percent-encodes everything but unreserved characters (fit for a query value or a path
/// segment).
pub(crate) fn encode_query_value(v: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_by_characters() {
        let rows = vec![
            vec!["payment".to_owned(), "+1.20s".to_owned()],
            vec!["auth".to_owned(), signed_duration(-50_000_000)],
            vec!["gateway".to_owned(), signed_duration(0)],
        ];
        let text = table(&[("SERVICE", Align::Left), ("DELTA", Align::Right)], &rows);
        assert_eq!(
            text,
            "  SERVICE    DELTA\n  payment   +1.20s\n  auth     −50.0ms\n  gateway        0\n"
        );
        let (shown, more) = top_rows(rows, 2);
        assert_eq!(shown.len(), 2);
        assert!(more.unwrap().contains("1 more"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("a b/{\"x\"}"), "a%20b%2F%7B%22x%22%7D");
    }
}
