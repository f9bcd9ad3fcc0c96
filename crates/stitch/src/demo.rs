//! `stitch demo`: Stitch on a temporary store plus a fleet of instrumented services that replay
//! the seed case studies; prints what Stitch's analysis found in each. The store tail-samples
//! with the demo's policies (`stitch_demo::sampling_config`), so the rare-timeout scenario
//! shows its one slow trace kept among ~5% of its normal traffic.

use std::future::IntoFuture;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use stitch_demo::{DemoOptions, DemoTargets, Scenario};

use crate::guard::BrowserPolicy;
use stitch_ingest::{Ingest, IngestConfig};
use stitch_query::SpanSink;
use stitch_store::StoreConfig;
use tokio::net::TcpListener;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Only these scenarios (repeatable or comma-separated): checkout, fraud, login, orders,
    /// cascade, broken-propagation, rare-timeout, chaos.
    #[arg(long = "scenario", value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// Requests per second, spread over the scenarios other than rare-timeout (which sends
    /// its own 500 per second, at least 10,000 requests).
    #[arg(long, default_value_t = 8.0)]
    rate: f64,
    /// How long to send traffic.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Exit after the report instead of serving the UI until Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the data here [default: a temporary directory, deleted at exit].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// UI and query API address.
    #[arg(long, default_value = "127.0.0.1:16686")]
    query_addr: SocketAddr,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temporary = args.data_dir.is_none();
    let data_dir = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("stitch-demo-{}", std::process::id()))
    });
    let sampling_config = stitch_demo::sampling_config();
    let mut config = StoreConfig::new(&data_dir);
    config.sampling = sampling_config.clone();
    let (store, reader, live) = crate::serve::open_store(config).await?;
    let sink: Arc<dyn SpanSink> = Arc::new(store.clone());
    let ingest = Ingest::new(sink, IngestConfig::default());
    let grpc_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("failed to listen for OTLP/gRPC on 127.0.0.1")?;
    let query_listener = crate::serve::QUERY.bind(args.query_addr).await?;
    let otlp = format!("http://{}", grpc_listener.local_addr()?);
    let query_bound = query_listener.local_addr()?;
    let ui = format!("http://{query_bound}");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // The sampling API shows the tail sampler's counters while the UI stays up.
    let api = Arc::new(BrowserPolicy::default()).guard_reads(
        stitch_api::router(reader.clone(), Some(live)).merge(
            crate::sampling::Sampling::new(Some(sampling_config))
                .api_router(store.clone(), ingest.clone()),
        ),
    );
    let grpc = tokio::spawn(stitch_ingest::grpc::serve(grpc_listener, ingest, stopped()));
    let query = tokio::spawn(
        axum::serve(query_listener, crate::unrouted::explained(api))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );
    crate::serve::QUERY.announce(query_bound);
    eprintln!("stitch demo: Stitch is up (UI and API at {ui}); starting the fleet");

    // First Ctrl-C: stop the traffic and report. Second: quit (removing a temporary store).
    let (traffic_tx, traffic_rx) = tokio::sync::watch::channel(false);
    let interrupt = {
        let data_dir = data_dir.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = traffic_tx.send(true);
            eprintln!(
                "\nstitch demo: stopping the traffic; the report follows once the requests in \
                 flight have answered (a rare-timeout request takes 30 s) and Stitch has decided \
                 their traces (Ctrl-C again to quit without it)"
            );
            let _ = tokio::signal::ctrl_c().await;
            if temporary {
                let _ = std::fs::remove_dir_all(&data_dir);
            }
            std::process::exit(130);
        })
    };
    let scenarios = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios
    };
    let opts = DemoOptions {
        scenarios,
        rate: args.rate,
        duration: args.duration,
        progress: std::io::stderr().is_terminal(),
        stop: Some(traffic_rx),
    };
    let targets = DemoTargets {
        otlp_grpc_endpoint: otlp,
        reader,
        ui_base_url: ui.clone(),
        sampling: Some({
            let store = store.clone();
            Arc::new(move || store.sampling_status())
        }),
    };
    let result = stitch_demo::run(targets, opts).await;
    interrupt.abort();
    let outcome = match result {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let width = std::env::var("COLUMNS")
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(100);
                println!("{}", report.render(width));
            }
            if !args.exit {
                eprintln!("stitch demo: the UI stays up at {ui}; Ctrl-C to quit");
                let _ = tokio::signal::ctrl_c().await;
            }
            if args.exit && !report.all_found() {
                bail!("Stitch did not find every planted problem");
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    let _ = stop_tx.send(true);
    let (g, q) = tokio::join!(grpc, query);
    g.context("OTLP/gRPC server task")?
        .context("OTLP/gRPC server")?;
    q.context("query server task")?.context("query server")?;
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(20), store.flush()).await;
    }
    outcome
}
