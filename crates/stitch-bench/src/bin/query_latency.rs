//! Query latency of a running `stitch serve`, as a client sees it (HTTP, JSON encoding
//! included): trace by id over a list of known ids, and searches by service and duration and
//! by attribute, each repeated.
//!
//! `query_latency --query http://127.0.0.1:16686 --ids FILE [--lookups 1000] [--searches 20] [--search-budget 60s] [--lookback 24h]`
//!
//! Requests are sequential (one client), so the figures are latencies, not throughput. Each
//! search is repeated `--searches` times, or fewer (at least three) when its repetitions would
//! take more than `--search-budget`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

struct Stats(Vec<Duration>);

impl Stats {
    fn pct(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1000.0
    }

    fn line(&self, what: &str, extra: &str) {
        println!(
            "{what}: n={} p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms{extra}",
            self.0.len(),
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.pct(1.0)
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut query = "http://127.0.0.1:16686".to_owned();
    let mut ids_file = None;
    let (mut lookups, mut searches) = (1_000usize, 20usize);
    let mut lookback = "24h".to_owned();
    let mut budget = Duration::from_secs(60);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--query" => query = value()?,
            "--ids" => ids_file = Some(value()?),
            "--lookups" => lookups = value()?.parse()?,
            "--searches" => searches = value()?.parse()?,
            "--lookback" => lookback = value()?,
            "--search-budget" => budget = humantime::parse_duration(&value()?)?,
            other => bail!("unknown argument {other}"),
        }
    }
    let ids_file = ids_file.context("give --ids FILE (written by fill_store --ids-out)")?;
    let ids: Vec<String> = std::fs::read_to_string(&ids_file)
        .with_context(|| format!("failed to read {ids_file}"))?
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    if ids.is_empty() {
        bail!("{ids_file} holds no trace ids");
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;

    // Trace by id: spread over the whole id list (the whole time range), each id once per pass.
    let mut by_id = Stats(Vec::new());
    let mut spans = 0usize;
    for i in 0..lookups {
        let id = &ids[(i * 7919) % ids.len()];
        let url = format!("{query}/api/v1/traces/{id}");
        let t = Instant::now();
        let r = client.get(&url).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        by_id.0.push(t.elapsed());
        if !status.is_success() {
            bail!("GET {url} answered {status}");
        }
        spans += stitch_wire::otlp_json::decode_export_request(&body)
            .context("the native API returns OTLP JSON")?
            .batch
            .span_count();
    }
    by_id.line(
        "trace by id (GET /api/v1/traces/{id})",
        &format!("; {:.1} spans per trace", spans as f64 / lookups as f64),
    );

    let searches_to_run = [
        (
            "search by service + min duration (checkout, >= 1s)",
            format!("service=checkout&minDuration=1s&lookback={lookback}&limit=20"),
        ),
        (
            "search by attribute, frequent value (frontend, http.response.status_code=500)",
            format!(
                "service=frontend&tags=%7B%22http.response.status_code%22%3A%22500%22%7D&lookback={lookback}&limit=20"
            ),
        ),
        (
            "search by attribute, no match: full scan (frontend, http.route=/nope)",
            format!(
                "service=frontend&tags=%7B%22http.route%22%3A%22%2Fnope%22%7D&lookback={lookback}&limit=20"
            ),
        ),
    ];
    let traceql = [
        (
            "TraceQL, one rare attribute value",
            r#"{ span.app.user.id = "user-rare" }"#,
        ),
        ("TraceQL, { status = error }", "{ status = error }"),
        (
            "TraceQL, structural (a 500 above an error)",
            "{ span.http.response.status_code = 500 } >> { status = error }",
        ),
        (
            "TraceQL, structural, every trace matches (checkout > payment)",
            r#"{ resource.service.name = "checkout" } > { resource.service.name = "payment" }"#,
        ),
    ];
    let encode = |q: &str| -> String {
        q.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let runs = searches_to_run
        .iter()
        .map(|(what, params)| {
            (
                what.to_string(),
                format!("{query}/api/traces?{params}"),
                "data",
            )
        })
        .chain(traceql.iter().map(|(what, q)| {
            (
                what.to_string(),
                format!(
                    "{query}/api/v1/search?q={}&lookback={lookback}&limit=20",
                    encode(q)
                ),
                "traces",
            )
        }));
    for (what, url, list) in runs {
        let mut stats = Stats(Vec::new());
        let mut found = 0;
        let started = Instant::now();
        for i in 0..searches {
            if i >= 3 && started.elapsed() > budget {
                break;
            }
            let t = Instant::now();
            let r = client.get(&url).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            stats.0.push(t.elapsed());
            if !status.is_success() {
                bail!(
                    "GET {url} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            found = v[list].as_array().map_or(0, Vec::len);
        }
        stats.line(&what, &format!("; {found} traces returned"));
    }
    Ok(())
}
