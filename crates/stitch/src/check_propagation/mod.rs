//! `stitch check-propagation`: does a live service propagate trace context correctly?
//!
//! The protocol is the W3C trace-context test harness's. The service under test exposes an
//! endpoint that accepts `POST` with a JSON body `[{"url": "...", "arguments": [...]}, ...]`
//! and, for each element, `POST`s `arguments` (as JSON) to `url`, propagating the trace
//! context it received. The harness listens on loopback for those calls ("callbacks"), sends
//! the service crafted requests (valid, invalid and edge-case `traceparent`/`tracestate`,
//! baggage, B3, Jaeger) and checks, case by case, what arrives: the same trace id and a new
//! parent id when the input was valid, the sampled and random flags honoured, `tracestate`
//! kept and updated by the spec's rules, baggage kept, and a fresh trace when the input was
//! invalid. Any failing case makes the command fail, so it fits CI.
//!
//! `--serve-reference ADDR` runs a small reference service built on `stitch-propagation`
//! that passes every case (a hidden `--break MODE` makes it misbehave on purpose, to show
//! what the harness catches).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use stitch_propagation::{
    Baggage, BaggageMember, Format, Propagator, Sampling, SpanContext, SpanId, TraceId,
    TraceParent, TraceState,
};
use tokio::sync::Notify;

mod cases;
mod harness;
mod reference;

use cases::*;
use harness::*;
use reference::*;

/// Arguments of `stitch check-propagation`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Endpoint of the service under test, e.g. http://127.0.0.1:5000/test (see the protocol
    /// below). Optional with --serve-reference, which then serves until interrupted.
    #[arg(required_unless_present = "serve_reference")]
    pub target: Option<String>,

    /// Run the reference service on ADDR (e.g. 127.0.0.1:0) and print
    /// "stitch: reference service listening on ADDR".
    #[arg(long, value_name = "ADDR")]
    pub serve_reference: Option<SocketAddr>,

    /// How long to wait, per case, for the service's answer and its callbacks.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// Run only these suites (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub suite: Vec<Suite>,

    /// Address the harness listens on for the service's callbacks.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Make the reference service misbehave (to demonstrate and test the harness).
    #[arg(long = "break", value_enum, value_name = "MODE", hide = true)]
    pub break_mode: Option<BreakMode>,
}

/// A group of cases.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// W3C `traceparent`.
    Tracecontext,
    /// W3C `tracestate`.
    Tracestate,
    /// W3C `baggage`.
    Baggage,
    /// Zipkin B3, single and multiple headers.
    B3,
    /// Jaeger `uber-trace-id` and `uberctx-*`.
    Jaeger,
}

impl Suite {
    const ALL: [Suite; 5] = [
        Suite::Tracecontext,
        Suite::Tracestate,
        Suite::Baggage,
        Suite::B3,
        Suite::Jaeger,
    ];

    fn name(self) -> &'static str {
        match self {
            Suite::Tracecontext => "tracecontext",
            Suite::Tracestate => "tracestate",
            Suite::Baggage => "baggage",
            Suite::B3 => "b3",
            Suite::Jaeger => "jaeger",
        }
    }

    /// Whether every callback of this suite's cases must carry a valid `traceparent`.
    fn requires_traceparent(self) -> bool {
        matches!(self, Suite::Tracecontext | Suite::Tracestate)
    }
}

/// Ways to break the reference service.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakMode {
    /// Send no `traceparent`/`tracestate` downstream (the legacy proxy that splits traces).
    StripTraceparent,
    /// Ignore incoming context: always start a new trace.
    Restart,
    /// Forward the caller's parent id instead of a new one.
    KeepParentId,
    /// Do not forward `tracestate`.
    DropTracestate,
    /// Do not forward baggage.
    DropBaggage,
    /// Always mark downstream requests as sampled.
    IgnoreSampled,
}

/// Runs the command.
pub async fn run(args: CheckArgs) -> anyhow::Result<()> {
    let reference = match args.serve_reference {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the reference service to {addr}"))?;
            let local = listener.local_addr()?;
            println!("stitch: reference service listening on {local}");
            Some(tokio::spawn(serve_reference(listener, args.break_mode)))
        }
        None => None,
    };
    let Some(target) = args.target.clone() else {
        let Some(reference) = reference else {
            anyhow::bail!("give the URL of the service to check, or --serve-reference ADDR");
        };
        tokio::select! {
            served = reference => served.context("the reference service stopped")??,
            _ = tokio::signal::ctrl_c() => {}
        }
        return Ok(());
    };

    let suites = if args.suite.is_empty() {
        Suite::ALL.to_vec()
    } else {
        args.suite.clone()
    };
    let report = check(&target, &suites, args.timeout, args.listen).await;
    if let Some(reference) = reference {
        reference.abort();
    }
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    if report.failed() > 0 {
        anyhow::bail!(
            "{} of {} propagation cases failed against {target}",
            report.failed(),
            report.results.len()
        );
    }
    Ok(())
}
