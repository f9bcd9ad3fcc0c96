//! `stitch serve`: the composition root. Opens the store, starts the receivers and the query
//! API, and runs until interrupted.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use stitch_ingest::{Ingest, IngestConfig};
use stitch_query::{Live, LiveOptions, SpanSink, TraceReader};
use stitch_store::{Store, StoreConfig};
use tokio::net::TcpListener;

use crate::config::{FileConfig, parse_duration};
use crate::guard::BrowserPolicy;
use crate::unrouted::explained;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// YAML config file; flags override it.
    #[arg(long, env = "STITCH_CONFIG")]
    config: Option<PathBuf>,
    /// Where the WAL and blocks live [default: ./stitch-data].
    #[arg(long, env = "STITCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// How long traces are kept, e.g. 7d, 36h [default: 7d].
    #[arg(long)]
    retention: Option<String>,
    /// OTLP/gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long)]
    otlp_grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP listen address [default: 127.0.0.1:4318].
    #[arg(long)]
    otlp_http_addr: Option<SocketAddr>,
    /// Query API listen address [default: 127.0.0.1:16686].
    #[arg(long)]
    query_addr: Option<SocketAddr>,
    /// Zipkin listen address: span collection and the Zipkin v2 query API
    /// [default: 127.0.0.1:9411].
    #[arg(long)]
    zipkin_addr: Option<SocketAddr>,
    /// Jaeger agent UDP address, Thrift compact protocol [default: 127.0.0.1:6831].
    #[arg(long)]
    jaeger_agent_compact_addr: Option<SocketAddr>,
    /// Jaeger agent UDP address, Thrift binary protocol [default: 127.0.0.1:6832].
    #[arg(long)]
    jaeger_agent_binary_addr: Option<SocketAddr>,
    /// Jaeger collector HTTP address (`POST /api/traces`) [default: 127.0.0.1:14268].
    #[arg(long)]
    jaeger_http_addr: Option<SocketAddr>,
    /// Jaeger gRPC address: the collector (`PostSpans`) and remote sampling
    /// (`SamplingManager/GetSamplingStrategy`) [default: 127.0.0.1:14250].
    #[arg(long)]
    jaeger_grpc_addr: Option<SocketAddr>,
    /// Jaeger remote sampling HTTP address (`GET /sampling?service=`) [default: 127.0.0.1:5778].
    #[arg(long)]
    sampling_addr: Option<SocketAddr>,
    /// Tempo query API address, for Grafana's Tempo data source [default: 127.0.0.1:3200].
    #[arg(long, alias = "tempo-listen")]
    tempo_addr: Option<SocketAddr>,
    /// Flush the in-memory head to a block at this age, e.g. 2m.
    #[arg(long)]
    head_max_age: Option<String>,
    /// Flush the in-memory head to a block at this many spans.
    #[arg(long)]
    head_max_spans: Option<usize>,
    /// Largest request accepted, in bytes [default: 16 MiB].
    #[arg(long)]
    max_request_bytes: Option<usize>,
    /// A request body must arrive whole within this long, e.g. `30s`; a sender that trickles
    /// it gets 408 [default: 30s].
    #[arg(long)]
    request_body_timeout: Option<String>,
    /// Refuse spans (503, retry later) while the data directory's disk has fewer bytes free;
    /// 0 turns the check off [default: 5% of the disk, at most 128 MiB].
    #[arg(long)]
    min_free_bytes: Option<u64>,
    /// Start even though a WAL segment is damaged in the middle: rewrite it with every record
    /// that passes its checksum and drop only the damaged bytes (each range is logged).
    #[arg(long)]
    wal_salvage: bool,
    /// Also answer the query API and UI for this host name (repeatable; `.example.com` for every
    /// name under it, `*` for any). IP addresses and `localhost` are always answered.
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// Accept spans from browser pages of this origin, e.g. `http://localhost:3000`
    /// (repeatable; `*` for any). Writes carrying another `Origin` are refused.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
}

/// Opens the store with the live RED and dependency aggregates following it: the store, the
/// reader the APIs use, and the aggregates.
pub(crate) async fn open_store(
    mut config: StoreConfig,
) -> anyhow::Result<(Store, Arc<dyn TraceReader>, Arc<Live>)> {
    let live = Arc::new(Live::new(LiveOptions::default()));
    config.observer = Some(live.clone());
    let data_dir = config.data_dir.clone();
    let store = Store::open(config)
        .await
        .with_context(|| format!("failed to open the store in {}", data_dir.display()))?;
    let reader: Arc<dyn TraceReader> = Arc::new(store.clone());
    live.spawn_feeder(&reader);
    Ok((store, reader, live))
}

/// One listening port of `stitch serve` (and `stitch demo`): the name its `listening on` line
/// gives it (tests and scripts read those lines), what it serves, the flag that moves it and
/// its default port on 127.0.0.1.
#[derive(Clone, Copy)]
pub(crate) struct Listen {
    name: &'static str,
    what: &'static str,
    flag: &'static str,
    port: u16,
}

const fn listen(name: &'static str, what: &'static str, flag: &'static str, port: u16) -> Listen {
    Listen {
        name,
        what,
        flag,
        port,
    }
}

const OTLP_GRPC: Listen = listen("otlp-grpc", "OTLP/gRPC", "--otlp-grpc-addr", 4317);
const OTLP_HTTP: Listen = listen("otlp-http", "OTLP/HTTP", "--otlp-http-addr", 4318);
pub(crate) const QUERY: Listen = listen("query", "the query API and UI", "--query-addr", 16686);
const ZIPKIN: Listen = listen("zipkin", "Zipkin", "--zipkin-addr", 9411);
const JAEGER_AGENT_COMPACT: Listen = listen(
    "jaeger-agent-compact",
    "the Jaeger agent (compact)",
    "--jaeger-agent-compact-addr",
    6831,
);
const JAEGER_AGENT_BINARY: Listen = listen(
    "jaeger-agent-binary",
    "the Jaeger agent (binary)",
    "--jaeger-agent-binary-addr",
    6832,
);
const JAEGER_HTTP: Listen = listen(
    "jaeger-http",
    "the Jaeger collector (HTTP)",
    "--jaeger-http-addr",
    14268,
);
const JAEGER_GRPC: Listen = listen("jaeger-grpc", "Jaeger gRPC", "--jaeger-grpc-addr", 14250);
const SAMPLING: Listen = listen(
    "sampling",
    "Jaeger remote sampling",
    "--sampling-addr",
    5778,
);
const TEMPO: Listen = listen("tempo", "the Tempo query API", "--tempo-addr", 3200);

impl Listen {
    /// The address from the flag, else the config file, else the default.
    fn addr(&self, flag: Option<SocketAddr>, file: Option<SocketAddr>) -> SocketAddr {
        flag.or(file)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], self.port)))
    }

    fn bind_error(&self, addr: SocketAddr) -> String {
        format!(
            "failed to listen for {} on {addr} (choose another address with {}; port 0 for any free one)",
            self.what, self.flag
        )
    }

    pub(crate) async fn bind(&self, addr: SocketAddr) -> anyhow::Result<TcpListener> {
        TcpListener::bind(addr)
            .await
            .with_context(|| self.bind_error(addr))
    }

    async fn bind_udp(&self, addr: SocketAddr) -> anyhow::Result<tokio::net::UdpSocket> {
        tokio::net::UdpSocket::bind(addr)
            .await
            .with_context(|| format!("{} (UDP)", self.bind_error(addr)))
    }

    /// Prints the `stitch: <name> listening on <addr>` line.
    pub(crate) fn announce(&self, addr: SocketAddr) {
        println!("stitch: {} listening on {addr}", self.name);
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STITCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };

    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(crate::default_data_dir);
    let mut store_config = StoreConfig::new(&data_dir);
    if let Some(r) = args.retention.as_ref().or(file.retention.as_ref()) {
        store_config.retention = parse_duration("retention", r)?;
    }
    if let Some(a) = args
        .head_max_age
        .as_ref()
        .or(file.store.head_max_age.as_ref())
    {
        store_config.head_max_age = parse_duration("store.head_max_age", a)?;
    }
    if let Some(n) = args.head_max_spans.or(file.store.head_max_spans) {
        store_config.head_max_spans = n;
    }
    if let Some(n) = file.store.head_max_bytes {
        store_config.head_max_bytes = n;
    }
    if let Some(f) = file.store.fsync {
        store_config.fsync = f;
    }
    if let Some(n) = file.store.footer_cache_bytes {
        store_config.footer_cache_bytes = n;
    }
    store_config.min_free_bytes = args.min_free_bytes.or(file.store.min_free_bytes);
    store_config.wal_salvage = args.wal_salvage;
    // Validated when the file was read; absent means keep every trace, without buffering.
    store_config.sampling = file.sampling.clone().unwrap_or_default();
    let mut ingest_config = IngestConfig::default();
    if let Some(n) = args.max_request_bytes.or(file.limits.max_request_bytes) {
        ingest_config.max_request_bytes = n;
    }
    if let Some(n) = file.limits.max_inflight_bytes {
        ingest_config.max_inflight_bytes = n;
    }
    if let Some(text) = args
        .request_body_timeout
        .as_ref()
        .or(file.limits.request_body_timeout.as_ref())
    {
        let d = parse_duration("--request-body-timeout", text)?;
        if d.is_zero() {
            anyhow::bail!("--request-body-timeout: must be longer than zero");
        }
        ingest_config.body_timeout = d;
    }
    if let Some(text) = &file.limits.max_span_duration {
        let d = parse_duration("limits.max_span_duration", text)?;
        ingest_config.max_span_duration_nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    }
    let l = &file.listen;
    let grpc_addr = OTLP_GRPC.addr(args.otlp_grpc_addr, l.otlp_grpc);
    let http_addr = OTLP_HTTP.addr(args.otlp_http_addr, l.otlp_http);
    let query_addr = QUERY.addr(args.query_addr, l.query);
    let zipkin_addr = ZIPKIN.addr(args.zipkin_addr, l.zipkin);
    let jaeger_compact_addr =
        JAEGER_AGENT_COMPACT.addr(args.jaeger_agent_compact_addr, l.jaeger_agent_compact);
    let jaeger_binary_addr =
        JAEGER_AGENT_BINARY.addr(args.jaeger_agent_binary_addr, l.jaeger_agent_binary);
    let jaeger_http_addr = JAEGER_HTTP.addr(args.jaeger_http_addr, l.jaeger_http);
    let jaeger_grpc_addr = JAEGER_GRPC.addr(args.jaeger_grpc_addr, l.jaeger_grpc);
    let sampling_addr = SAMPLING.addr(args.sampling_addr, l.sampling);
    let tempo_addr = TEMPO.addr(args.tempo_addr, l.tempo);
    let mut zipkin_api_config = stitch_api::zipkin::ZipkinApiConfig::default();
    if let Some(keys) = file.zipkin.autocomplete_keys.clone() {
        zipkin_api_config.autocomplete_keys = keys;
    }
    let zipkin_receiver_config = stitch_ingest::zipkin::ZipkinReceiverConfig {
        json_without_content_type: file.zipkin.accept_missing_content_type.unwrap_or(false),
    };

    let (store, reader, live) = open_store(store_config).await?;
    let sampling = crate::sampling::Sampling::new(file.sampling.clone());
    let sink: Arc<dyn SpanSink> = Arc::new(store.clone());
    let ingest = Ingest::with_filter(sink, ingest_config, Some(sampling.filter()));

    let grpc_listener = OTLP_GRPC.bind(grpc_addr).await?;
    let http_listener = OTLP_HTTP.bind(http_addr).await?;
    let query_listener = QUERY.bind(query_addr).await?;
    let zipkin_listener = ZIPKIN.bind(zipkin_addr).await?;
    let jaeger_compact_socket = JAEGER_AGENT_COMPACT.bind_udp(jaeger_compact_addr).await?;
    let jaeger_binary_socket = JAEGER_AGENT_BINARY.bind_udp(jaeger_binary_addr).await?;
    let jaeger_http_listener = JAEGER_HTTP.bind(jaeger_http_addr).await?;
    let jaeger_grpc_listener = JAEGER_GRPC.bind(jaeger_grpc_addr).await?;
    let sampling_listener = SAMPLING.bind(sampling_addr).await?;
    let tempo_listener = TEMPO.bind(tempo_addr).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let browsers = Arc::new(BrowserPolicy::new(
        &[
            args.allowed_hosts.clone(),
            file.listen.allowed_hosts.clone(),
        ]
        .concat(),
        &[
            args.allowed_origins.clone(),
            file.listen.allowed_origins.clone(),
        ]
        .concat(),
    ));
    let query_router = browsers.guard_reads(
        stitch_api::router(reader.clone(), Some(live.clone()))
            .merge(crate::metrics::router(store.clone(), ingest.clone(), live))
            .merge(sampling.api_router(store.clone(), ingest.clone())),
    );
    let otlp_http_router = browsers.guard_writes(stitch_ingest::http::router(ingest.clone()));
    // Zipkin's collector and query API share one port, as in Zipkin itself.
    let zipkin_router = browsers
        .guard_writes(stitch_ingest::zipkin::router(
            ingest.clone(),
            zipkin_receiver_config,
        ))
        .merge(browsers.guard_reads(stitch_api::zipkin::router(
            reader.clone(),
            zipkin_api_config,
        )));
    let jaeger_http_router =
        browsers.guard_writes(stitch_ingest::jaeger::http_router(ingest.clone()));
    let tempo_router = browsers.guard_reads(stitch_api::tempo::router(reader.clone()));

    // Tests and scripts read these lines to learn the bound ports.
    for (listen, addr) in [
        (OTLP_GRPC, grpc_listener.local_addr()?),
        (OTLP_HTTP, http_listener.local_addr()?),
        (QUERY, query_listener.local_addr()?),
        (ZIPKIN, zipkin_listener.local_addr()?),
        (JAEGER_AGENT_COMPACT, jaeger_compact_socket.local_addr()?),
        (JAEGER_AGENT_BINARY, jaeger_binary_socket.local_addr()?),
        (JAEGER_HTTP, jaeger_http_listener.local_addr()?),
        (JAEGER_GRPC, jaeger_grpc_listener.local_addr()?),
        (SAMPLING, sampling_listener.local_addr()?),
        (TEMPO, tempo_listener.local_addr()?),
    ] {
        listen.announce(addr);
    }
    println!(
        "stitch: ready (data in {}; UI and API at http://{})",
        data_dir.display(),
        query_listener.local_addr()?
    );

    let remote_sampling = tokio::spawn(
        axum::serve(sampling_listener, explained(sampling.jaeger_router()))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );
    let grpc = tokio::spawn(stitch_ingest::grpc::serve(
        grpc_listener,
        ingest.clone(),
        stopped(),
    ));
    let http = tokio::spawn(
        axum::serve(http_listener, explained(otlp_http_router))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );
    let query = tokio::spawn(
        axum::serve(query_listener, explained(query_router))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );

    let zipkin = tokio::spawn(
        axum::serve(zipkin_listener, explained(zipkin_router))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );
    let tempo = tokio::spawn(
        axum::serve(tempo_listener, explained(tempo_router))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );

    let jaeger = {
        use stitch_ingest::jaeger::{self, AgentProtocol};
        let compact = jaeger::serve_udp(
            jaeger_compact_socket,
            AgentProtocol::Compact,
            ingest.clone(),
            stopped(),
        );
        let binary = jaeger::serve_udp(
            jaeger_binary_socket,
            AgentProtocol::Binary,
            ingest.clone(),
            stopped(),
        );
        let http = axum::serve(jaeger_http_listener, explained(jaeger_http_router))
            .with_graceful_shutdown(stopped())
            .into_future();
        // The collector and remote sampling share the gRPC port, as in Jaeger's collector.
        let grpc = jaeger::serve_grpc(
            jaeger_grpc_listener,
            ingest.clone(),
            sampling.clone(),
            stopped(),
        );
        tokio::spawn(async move {
            let (c, b, h, g) = tokio::join!(compact, binary, http, grpc);
            c.context("Jaeger agent (compact)")?;
            b.context("Jaeger agent (binary)")?;
            h.context("Jaeger collector (HTTP)")?;
            g.context("Jaeger gRPC (collector and remote sampling)")?;
            anyhow::Ok(())
        })
    };

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let (g, h, q) = tokio::join!(grpc, http, query);
    g.context("OTLP/gRPC server task")?
        .context("OTLP/gRPC server")?;
    h.context("OTLP/HTTP server task")?
        .context("OTLP/HTTP server")?;
    q.context("query server task")?.context("query server")?;
    zipkin
        .await
        .context("Zipkin server task")?
        .context("Zipkin server")?;
    tempo
        .await
        .context("Tempo API server task")?
        .context("Tempo API server")?;
    jaeger.await.context("Jaeger receivers task")??;
    remote_sampling
        .await
        .context("remote sampling server task")?
        .context("remote sampling server")?;
    // Everything acknowledged is already in the WAL; writing the head as a block now only makes
    // the next start faster, so it is bounded in time.
    match tokio::time::timeout(std::time::Duration::from_secs(20), store.flush()).await {
        Ok(Ok(())) => tracing::info!("flushed the in-memory head to a block"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not flush the head; the WAL will be replayed at start")
        }
        Err(_) => {
            tracing::warn!("flushing the head took too long; the WAL will be replayed at start")
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
