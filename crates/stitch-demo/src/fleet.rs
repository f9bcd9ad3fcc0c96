//! The fleet: real HTTP services on loopback, each with its own listener, its own
//! `service.name` and its own OpenTelemetry SDK tracer provider exporting OTLP/gRPC to Stitch.
//!
//! Instrumentation is done by hand, the way an HTTP middleware and a client wrapper would do it:
//! every request gets a SERVER span whose parent is the context extracted from the request
//! headers with `stitch-propagation` (any of W3C, B3 single, B3 multi or Jaeger); every outgoing
//! call gets a CLIENT span and its context injected in the formats the hop is configured with.
//! Databases, caches and third-party APIs are not real: they are CLIENT spans with the
//! semantic-convention attributes a real client library would set, around a `sleep` for their
//! latency.
//!
//! The SDK's batch span processor exports from its own thread and blocks on the exporter there;
//! the tonic exporter only needs the Tokio runtime it was created in (its channel spawns a worker
//! task on it), so exporters are created inside the runtime and flushed from blocking tasks.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use opentelemetry::trace::{
    SpanKind, Status, TraceContextExt, TraceFlags, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use stitch_propagation::{Baggage, Format, Propagator, Sampling};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::scenario::Scenario;

pub(crate) type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A route's behaviour: what the service does for one request.
pub(crate) type Handler = fn(Call) -> BoxFut<Reply>;

/// One route of a service. The pattern may hold `{name}` segments.
pub(crate) struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    pub handler: Handler,
}

/// A service of the fleet.
pub(crate) struct ServiceSpec {
    pub name: &'static str,
    pub scenario: Scenario,
    pub version: &'static str,
    pub routes: Vec<Route>,
    /// Its HTTP client drops every header it does not know, trace context included (seed 000's
    /// service #7).
    pub strips_unknown_headers: bool,
}

/// What a route answers.
pub(crate) struct Reply {
    pub status: u16,
    pub message: String,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            status: 200,
            message: "ok".to_owned(),
        }
    }

    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply {
            status,
            message: message.into(),
        }
    }
}

/// Request handlers running now, across the fleet.
#[derive(Default)]
struct Inflight(AtomicUsize);

struct InflightGuard(Arc<Inflight>);

impl Inflight {
    fn enter(self: &Arc<Self>) -> InflightGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        InflightGuard(self.clone())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running service.
pub(crate) struct Service {
    spec: ServiceSpec,
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    client: reqwest::Client,
    directory: Arc<OnceLock<HashMap<&'static str, SocketAddr>>>,
    requests: AtomicU64,
    inflight: Arc<Inflight>,
}

/// The running fleet.
pub(crate) struct Fleet {
    services: Vec<Arc<Service>>,
    addrs: HashMap<&'static str, SocketAddr>,
    servers: Vec<JoinHandle<()>>,
    inflight: Arc<Inflight>,
}

/// Allowed by the stripping client of [`ServiceSpec::strips_unknown_headers`].
const KNOWN_HEADERS: [&str; 5] = [
    "accept",
    "content-type",
    "content-length",
    "user-agent",
    "host",
];

impl Fleet {
    /// Binds a listener per service on 127.0.0.1, creates its tracer provider (exporting to
    /// `otlp_endpoint`) and starts serving. Must run inside a Tokio runtime.
    pub async fn start(specs: Vec<ServiceSpec>, otlp_endpoint: &str) -> anyhow::Result<Fleet> {
        let directory: Arc<OnceLock<HashMap<&'static str, SocketAddr>>> = Arc::default();
        let inflight = Arc::new(Inflight::default());
        let mut listeners = Vec::new();
        let mut services = Vec::new();
        let mut addrs = HashMap::new();
        for spec in specs {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .with_context(|| format!("failed to listen for {}", spec.name))?;
            addrs.insert(spec.name, listener.local_addr()?);
            let provider = provider(&spec, otlp_endpoint)?;
            let tracer = provider.tracer_with_scope(
                InstrumentationScope::builder("stitch-demo")
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build(),
            );
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .context("failed to build an HTTP client")?;
            services.push(Arc::new(Service {
                spec,
                provider,
                tracer,
                client,
                directory: directory.clone(),
                requests: AtomicU64::new(0),
                inflight: inflight.clone(),
            }));
            listeners.push(listener);
        }
        let _ = directory.set(addrs.clone());
        let mut servers = Vec::new();
        for (service, listener) in services.iter().zip(listeners) {
            let router = axum::Router::new()
                .fallback(serve_request)
                .with_state(service.clone());
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
        }
        Ok(Fleet {
            services,
            addrs,
            servers,
            inflight,
        })
    }

    /// `http://127.0.0.1:port` of a service.
    pub fn base_url(&self, service: &str) -> Option<String> {
        self.addrs.get(service).map(|a| format!("http://{a}"))
    }

    /// Waits until no request handler is running (a server may outlive its caller, as auth
    /// does in the chaos scenario), at most `limit`. Returns whether the fleet went idle.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.inflight.0.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Exports every finished span now. Returns the services whose export failed, with why.
    pub async fn flush(&self) -> Vec<(String, String)> {
        let tasks: Vec<_> = self
            .services
            .iter()
            .map(|s| {
                let provider = s.provider.clone();
                let name = s.spec.name;
                // `force_flush` blocks until the exporter thread has exported, and the export
                // needs the runtime's workers: never block one of them.
                (
                    name,
                    tokio::task::spawn_blocking(move || provider.force_flush()),
                )
            })
            .collect();
        let mut failed = Vec::new();
        for (name, task) in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push((name.to_owned(), e.to_string())),
                Err(e) => failed.push((name.to_owned(), e.to_string())),
            }
        }
        failed
    }

    /// Stops every server and shuts the tracer providers down (exporting what is left).
    pub async fn shutdown(mut self) {
        let servers = std::mem::take(&mut self.servers);
        for server in &servers {
            server.abort();
        }
        for server in servers {
            let _ = server.await;
        }
        let tasks: Vec<_> = self
            .services
            .iter()
            .map(|s| {
                let provider = s.provider.clone();
                tokio::task::spawn_blocking(move || provider.shutdown())
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Fleet {
    /// If the demo is cancelled (its future dropped), the servers stop anyway.
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

fn provider(spec: &ServiceSpec, otlp_endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(otlp_endpoint)
        .with_timeout(Duration::from_secs(10))
        .build()
        .with_context(|| format!("failed to create the OTLP exporter of {}", spec.name))?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(500))
                .with_max_queue_size(16_384)
                .with_max_export_batch_size(1_024)
                .build(),
        )
        .build();
    let resource = Resource::builder_empty()
        .with_service_name(spec.name)
        .with_attributes([
            KeyValue::new("service.namespace", "stitch-demo"),
            KeyValue::new("service.version", spec.version),
            KeyValue::new("deployment.environment.name", "demo"),
            KeyValue::new("stitch.demo.scenario", spec.scenario.name()),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
            KeyValue::new("telemetry.sdk.language", "rust"),
        ])
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// Whether `path` matches `pattern`, whose `{name}` segments match any non-empty segment.
fn route_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) => {
                let param = w.starts_with('{') && w.ends_with('}');
                if !(w == g || param && !g.is_empty()) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The HTTP server instrumentation: extract, SERVER span, behaviour, status.
async fn serve_request(
    State(svc): State<Arc<Service>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let _busy = svc.inflight.enter();
    let path = uri.path();
    let Some(route) = svc
        .spec
        .routes
        .iter()
        .find(|r| r.method == method.as_str() && route_matches(r.pattern, path))
    else {
        return (StatusCode::NOT_FOUND, "no such route").into_response();
    };
    let seq = svc.requests.fetch_add(1, Ordering::SeqCst);
    let extracted = Propagator::default().extract(&headers);
    let parent = match extracted.context.as_ref().filter(|c| c.is_valid()) {
        Some(remote) => Context::new().with_remote_span_context(to_otel(remote)),
        None => Context::new(),
    };
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.to_string()),
        KeyValue::new("http.route", route.pattern),
        KeyValue::new("url.path", path.to_owned()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("network.protocol.version", "1.1"),
    ];
    if let Some(query) = uri.query() {
        attributes.push(KeyValue::new("url.query", query.to_owned()));
    }
    if let Some(format) = extracted.source {
        attributes.push(KeyValue::new("stitch.demo.propagation", format.name()));
    }
    let span = svc
        .tracer
        .span_builder(format!("{method} {}", route.pattern))
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(&svc.tracer, &parent);
    let cx = parent.with_span(span);
    let call = Call {
        svc: svc.clone(),
        cx: cx.clone(),
        seq,
    };
    let reply = (route.handler)(call).await;
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(reply.status),
    ));
    if reply.status >= 500 {
        span.set_attribute(KeyValue::new("error.type", reply.status.to_string()));
        span.set_status(Status::error(reply.message.clone()));
    }
    span.end();
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, reply.message).into_response()
}

/// The remote parent for the SDK, from what `stitch-propagation` extracted.
fn to_otel(remote: &stitch_propagation::SpanContext) -> opentelemetry::trace::SpanContext {
    // A deferred B3 decision leaves it to us: record.
    let sampled = remote.sampling.is_none_or(Sampling::is_sampled);
    let mut flags = TraceFlags::default().with_sampled(sampled);
    if remote.random_trace_id {
        flags = TraceFlags::new(flags.to_u8() | 0x02);
    }
    let state = opentelemetry::trace::TraceState::from_str(&remote.trace_state.to_string())
        .unwrap_or_default();
    opentelemetry::trace::SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes(remote.trace_id.to_bytes()),
        opentelemetry::trace::SpanId::from_bytes(remote.span_id.to_bytes()),
        flags,
        true,
        state,
    )
}

/// The context of a span of ours, for `stitch-propagation` to inject.
fn to_stitch(sc: &opentelemetry::trace::SpanContext) -> stitch_propagation::SpanContext {
    let mut out = stitch_propagation::SpanContext::new(
        stitch_propagation::TraceId::from_bytes(sc.trace_id().to_bytes()),
        stitch_propagation::SpanId::from_bytes(sc.span_id().to_bytes()),
    );
    out.sampling = Some(Sampling::from_sampled(sc.is_sampled()));
    out.random_trace_id = sc.trace_flags().to_u8() & 0x02 != 0;
    out.trace_state = sc.trace_state().header().parse().unwrap_or_default();
    out
}

/// A database, cache or search-engine round trip, simulated.
pub(crate) struct Db {
    /// Span name.
    pub name: &'static str,
    /// `db.system.name`: postgresql, redis, elasticsearch, ...
    pub system: &'static str,
    /// `db.namespace` (the database).
    pub namespace: &'static str,
    pub statement: &'static str,
    pub host: &'static str,
    pub port: i64,
    pub latency_ms: u64,
    /// When set, the query fails after its latency with `(error.type, message)`.
    pub fails: Option<(&'static str, &'static str)>,
}

/// A call to a third-party HTTP API outside the fleet, simulated.
pub(crate) struct External {
    pub name: &'static str,
    pub method: &'static str,
    /// `peer.service`.
    pub peer: &'static str,
    pub url: &'static str,
    pub latency_ms: u64,
    /// When set, the call times out after its latency with this message.
    pub times_out: Option<&'static str>,
}

/// A call to another service of the fleet.
pub(crate) struct Http {
    to: &'static str,
    method: Method,
    path: String,
    route: Option<&'static str>,
    formats: &'static [Format],
    timeout: Option<Duration>,
}

impl Http {
    pub fn get(to: &'static str, path: impl Into<String>) -> Http {
        Http::new(to, Method::GET, path)
    }

    pub fn post(to: &'static str, path: impl Into<String>) -> Http {
        Http::new(to, Method::POST, path)
    }

    fn new(to: &'static str, method: Method, path: impl Into<String>) -> Http {
        Http {
            to,
            method,
            path: path.into(),
            route: None,
            formats: &[Format::TraceContext],
            timeout: None,
        }
    }

    /// The route template that names the span, when the path has parameters.
    pub fn route(mut self, route: &'static str) -> Http {
        self.route = Some(route);
        self
    }

    /// The propagation formats injected on this hop (W3C by default).
    pub fn formats(mut self, formats: &'static [Format]) -> Http {
        self.formats = formats;
        self
    }

    pub fn timeout_ms(mut self, ms: u64) -> Http {
        self.timeout = Some(Duration::from_millis(ms));
        self
    }
}

/// What a call to another service returned.
pub(crate) enum Answer {
    /// An HTTP answer: status and body.
    Status(u16, String),
    /// No answer: timed out or could not connect.
    Failed(String),
}

impl Answer {
    pub fn is_success(&self) -> bool {
        matches!(self, Answer::Status(s, _) if *s < 400)
    }

    /// A short description of a failure, for the caller's own error message.
    pub fn describe(&self) -> String {
        match self {
            Answer::Status(s, body) => format!("{s} {}", body.trim()),
            Answer::Failed(e) => e.clone(),
        }
    }
}

/// One request being handled, and the span that is current in it.
#[derive(Clone)]
pub(crate) struct Call {
    svc: Arc<Service>,
    cx: Context,
    seq: u64,
}

impl Call {
    /// 0 for the first request this service received, 1 for the second, ...
    pub fn request_number(&self) -> u64 {
        self.seq
    }

    /// Code that runs without a span of its own (it shows as the current span's own time).
    pub async fn work(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// An event on the current span.
    pub fn event(&self, name: &'static str) {
        self.cx.span().add_event(name, Vec::new());
    }

    /// An attribute on the current span.
    pub fn attribute(&self, kv: KeyValue) {
        self.cx.span().set_attribute(kv);
    }

    fn start(&self, name: String, kind: SpanKind, attributes: Vec<KeyValue>) -> Context {
        let span = self
            .svc
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(&self.svc.tracer, &self.cx);
        self.cx.with_span(span)
    }

    /// Runs `f` inside an INTERNAL span.
    pub async fn internal<F, Fut, T>(
        &self,
        name: &'static str,
        attributes: Vec<KeyValue>,
        f: F,
    ) -> T
    where
        F: FnOnce(Call) -> Fut,
        Fut: Future<Output = T>,
    {
        let cx = self.start(name.to_owned(), SpanKind::Internal, attributes);
        let out = f(Call {
            cx: cx.clone(),
            ..self.clone()
        })
        .await;
        cx.span().end();
        out
    }

    /// A database round trip: a CLIENT span with the database semantic conventions.
    pub async fn db(&self, q: Db) -> Result<(), String> {
        let operation = q
            .statement
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let attributes = vec![
            KeyValue::new("db.system.name", q.system),
            KeyValue::new("db.system", q.system),
            KeyValue::new("db.namespace", q.namespace),
            KeyValue::new("db.name", q.namespace),
            KeyValue::new("db.query.text", q.statement),
            KeyValue::new("db.statement", q.statement),
            KeyValue::new("db.operation.name", operation),
            KeyValue::new("server.address", q.host),
            KeyValue::new("server.port", q.port),
        ];
        let cx = self.start(q.name.to_owned(), SpanKind::Client, attributes);
        tokio::time::sleep(Duration::from_millis(q.latency_ms)).await;
        let span = cx.span();
        let result = match q.fails {
            Some((error_type, message)) => {
                span.set_attribute(KeyValue::new("error.type", error_type));
                span.set_status(Status::error(message));
                Err(message.to_owned())
            }
            None => Ok(()),
        };
        span.end();
        result
    }

    /// A call to a third-party API: a CLIENT span with the HTTP client conventions and
    /// `peer.service`, whose server side is outside the trace.
    pub async fn external(&self, x: External) -> Result<(), String> {
        let host = x
            .url
            .split_once("://")
            .map_or(x.url, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or("");
        let attributes = vec![
            KeyValue::new("http.request.method", x.method),
            KeyValue::new("url.full", x.url),
            KeyValue::new("server.address", host.to_owned()),
            KeyValue::new("server.port", 443i64),
            KeyValue::new("peer.service", x.peer),
        ];
        let cx = self.start(x.name.to_owned(), SpanKind::Client, attributes);
        tokio::time::sleep(Duration::from_millis(x.latency_ms)).await;
        let span = cx.span();
        let result = match x.times_out {
            Some(message) => {
                span.set_attribute(KeyValue::new("error.type", "timeout"));
                span.set_status(Status::error(message));
                Err(message.to_owned())
            }
            None => {
                span.set_attribute(KeyValue::new("http.response.status_code", 200i64));
                Ok(())
            }
        };
        span.end();
        result
    }

    /// A real HTTP call to another service of the fleet, with a CLIENT span and the trace
    /// context injected in the hop's formats.
    pub async fn http(&self, req: Http) -> Answer {
        let Some(addr) = self
            .svc
            .directory
            .get()
            .and_then(|d| d.get(req.to))
            .copied()
        else {
            return Answer::Failed(format!("unknown service {}", req.to));
        };
        let url = format!("http://{addr}{}", req.path);
        let route = req
            .route
            .unwrap_or_else(|| req.path.split('?').next().unwrap_or(""));
        let formats: Vec<&str> = req.formats.iter().map(|f| f.name()).collect();
        let attributes = vec![
            KeyValue::new("http.request.method", req.method.to_string()),
            KeyValue::new("url.full", url.clone()),
            KeyValue::new("server.address", addr.ip().to_string()),
            KeyValue::new("server.port", i64::from(addr.port())),
            KeyValue::new("peer.service", req.to),
            KeyValue::new("stitch.demo.propagation", formats.join(",")),
        ];
        let cx = self.start(
            format!("{} {route}", req.method),
            SpanKind::Client,
            attributes,
        );
        let mut headers = HeaderMap::new();
        Propagator::default().with_inject(req.formats).inject(
            &to_stitch(cx.span().span_context()),
            &Baggage::default(),
            &mut headers,
        );
        if self.svc.spec.strips_unknown_headers {
            // The legacy client's interceptor: only headers it knows get through.
            let names: Vec<HeaderName> = headers.keys().cloned().collect();
            for name in names {
                if !KNOWN_HEADERS.contains(&name.as_str()) {
                    headers.remove(&name);
                }
            }
        }
        let mut builder = self
            .svc
            .client
            .request(req.method.clone(), &url)
            .headers(headers);
        if let Some(t) = req.timeout {
            builder = builder.timeout(t);
        }
        let answer = match builder.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.text().await {
                    Ok(body) => Answer::Status(status, body),
                    Err(e) => Answer::Failed(describe_error(&e, req.to, req.timeout)),
                }
            }
            Err(e) => Answer::Failed(describe_error(&e, req.to, req.timeout)),
        };
        let span = cx.span();
        match &answer {
            Answer::Status(status, _) => {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(*status),
                ));
                if *status >= 400 {
                    span.set_attribute(KeyValue::new("error.type", status.to_string()));
                    let reason = StatusCode::from_u16(*status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("");
                    span.set_status(Status::error(format!("{status} {reason}")));
                }
            }
            Answer::Failed(message) => {
                let timeout = message.starts_with("timeout");
                span.set_attribute(KeyValue::new(
                    "error.type",
                    if timeout {
                        "timeout"
                    } else {
                        "connection_error"
                    },
                ));
                span.set_status(Status::error(message.clone()));
            }
        }
        span.end();
        answer
    }
}

fn describe_error(e: &reqwest::Error, to: &str, timeout: Option<Duration>) -> String {
    if e.is_timeout() {
        match timeout {
            Some(t) => format!("timeout: no answer from {to} within {}ms", t.as_millis()),
            None => format!("timeout: no answer from {to}"),
        }
    } else {
        format!("request to {to} failed: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_literal_and_parameter_segments() {
        assert!(route_matches("/users/{id}", "/users/7"));
        assert!(route_matches("/checkout", "/checkout"));
        assert!(!route_matches("/users/{id}", "/users/"));
        assert!(!route_matches("/users/{id}", "/users/7/x"));
        assert!(!route_matches("/checkout", "/checkouts"));
    }

    #[test]
    fn contexts_convert_both_ways() {
        let remote = stitch_propagation::SpanContext::new_root(true);
        let otel = to_otel(&remote);
        assert!(otel.is_remote() && otel.is_sampled());
        let back = to_stitch(&otel);
        assert_eq!(back.trace_id, remote.trace_id);
        assert_eq!(back.span_id, remote.span_id);
        assert!(back.is_sampled());
    }
}
