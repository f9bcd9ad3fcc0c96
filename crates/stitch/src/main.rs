//! `stitch`: the binary. Parses the command line and hands over to the command.

mod check_propagation;
mod cli;
mod config;
mod demo;
mod guard;
mod loadgen;
mod metrics;
mod sampling;
mod search;
mod serve;
mod unrouted;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: under steady load glibc's per-thread arenas kept
/// growing (`BENCHMARKS.md`, memory under steady load). Built without transparent huge pages
/// (the `no_thp` feature), which would take 2 MB for each arena's first bytes (idle memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "stitch",
    version,
    about = "Distributed tracing backend: OTLP in, durable store, Jaeger-compatible queries, and answers to \"where did the time go?\""
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay the seed case studies on a live fleet and show what Stitch finds (about 30 s).
    Demo(demo::DemoArgs),
    /// Run everything: receivers, store, query API.
    Serve(Box<serve::ServeArgs>),
    /// Print one trace as a terminal waterfall.
    Trace {
        /// The trace id (hex).
        trace_id: String,
        #[command(flatten)]
        server: cli::ServerArg,
        /// Width in columns (default: the terminal's, or 120).
        #[arg(long)]
        width: Option<usize>,
        /// Colour: auto, always or never.
        #[arg(long, default_value = "auto")]
        color: cli::ColorChoice,
    },
    /// Find traces: with a TraceQL query, or with the Jaeger UI's filters (--service ...).
    Search(search::SearchArgs),
    /// Analyses across traces: `--broken-propagation`, or one endpoint's `--breakdown` or
    /// `--cohort` (slow versus typical) with `--service S --operation O`; `--since 1h`.
    Analyze(cli::AnalyzeArgs),
    /// Check that a live service propagates trace context (W3C, baggage, B3, Jaeger).
    CheckPropagation(check_propagation::CheckArgs),
    /// Send realistic trace load (OTLP, Zipkin, Jaeger) at a target rate and report throughput
    /// and latency; `--verify` reads a sample back and checks every span arrived.
    Loadgen(loadgen::LoadgenArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => serve::run(*args).await,
            Command::Trace {
                trace_id,
                server,
                width,
                color,
            } => cli::trace(&server.server, &trace_id, width, color).await,
            Command::Search(args) => search::search(args).await,
            Command::Analyze(args) => cli::analyze(args).await,
            Command::CheckPropagation(args) => check_propagation::run(args).await,
            Command::Loadgen(args) => loadgen::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Where data lives when neither flag nor config file says.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./stitch-data")
}
