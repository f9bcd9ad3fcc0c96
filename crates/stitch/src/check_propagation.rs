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

// ---------------------------------------------------------------------------------------------
// The reference service
// ---------------------------------------------------------------------------------------------

struct Reference {
    client: reqwest::Client,
    break_mode: Option<BreakMode>,
}

/// The vendor key the reference service writes into `tracestate`.
const VENDOR_KEY: &str = "stitch";

async fn serve_reference(
    listener: tokio::net::TcpListener,
    break_mode: Option<BreakMode>,
) -> anyhow::Result<()> {
    let state = Arc::new(Reference {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        break_mode,
    });
    let app = Router::new()
        .fallback(post(reference_handler))
        .with_state(state);
    axum::serve(listener, app).await?;
    Ok(())
}

/// One instruction of the harness protocol.
struct Action {
    url: String,
    arguments: Value,
}

fn parse_actions(body: &[u8]) -> Result<Vec<Action>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other @ Value::Object(_) => vec![other],
        _ => return Err("the body must be a list of {\"url\", \"arguments\"} objects".into()),
    };
    items
        .into_iter()
        .map(|item| {
            let url = item
                .get("url")
                .and_then(Value::as_str)
                .ok_or("every element needs a \"url\" string")?
                .to_owned();
            let arguments = item.get("arguments").cloned().unwrap_or_else(|| json!([]));
            Ok(Action { url, arguments })
        })
        .collect()
}

async fn reference_handler(
    State(state): State<Arc<Reference>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let actions = match parse_actions(&body) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let mode = state.break_mode;
    let extracted = Propagator::default().extract(&headers);
    let incoming = extracted
        .context
        .clone()
        .filter(|_| mode != Some(BreakMode::Restart));

    // The server span: a child of the caller's span, or the root of a new trace.
    let server = match &incoming {
        Some(parent) => parent.child(),
        None => {
            let mut root = SpanContext::new_root(true);
            root.sampling = Some(extracted.sampling.unwrap_or(Sampling::Accept));
            root
        }
    };

    let mut formats = vec![Format::TraceContext, Format::Baggage];
    match extracted.source.filter(|_| incoming.is_some()) {
        Some(Format::B3Single) => formats.push(Format::B3Single),
        Some(Format::B3Multi) => formats.push(Format::B3Multi),
        Some(Format::Jaeger) => formats.extend([Format::Jaeger, Format::JaegerBaggage]),
        _ => {}
    }
    if mode == Some(BreakMode::StripTraceparent) {
        formats.retain(|f| *f != Format::TraceContext);
    }
    let baggage = if mode == Some(BreakMode::DropBaggage) {
        Baggage::new()
    } else {
        extracted.baggage.clone()
    };
    let propagator = Propagator::default().with_inject(&formats);

    let mut results = Vec::new();
    for action in actions {
        // Each outgoing call is a client span of its own, child of the server span.
        let mut client_span = server.child();
        if mode == Some(BreakMode::KeepParentId)
            && let Some(parent) = &incoming
        {
            client_span.span_id = parent.span_id;
        }
        if mode == Some(BreakMode::IgnoreSampled) {
            client_span.sampling = Some(Sampling::Accept);
        }
        if mode == Some(BreakMode::DropTracestate) {
            client_span.trace_state = TraceState::new();
        } else {
            // Our own member goes in front; the value is the parent-id we send, like the spec's
            // "rojo" example. Inserting cannot fail: the key and a hex value are valid.
            let _ = client_span
                .trace_state
                .insert(VENDOR_KEY, &client_span.span_id.to_string());
        }
        let mut out = reqwest::header::HeaderMap::new();
        propagator.inject(&client_span, &baggage, &mut out);
        let result = state
            .client
            .post(&action.url)
            .headers(out)
            .json(&action.arguments)
            .send()
            .await;
        results.push(match result {
            Ok(resp) => json!({"url": action.url, "status": resp.status().as_u16()}),
            Err(e) => json!({"url": action.url, "error": e.to_string()}),
        });
    }
    Json(json!({ "results": results })).into_response()
}

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const T2: &str = "0af7651916cd43dd8448eb211c80319c";
const T64: &str = "463ac35c9f6413ad";
const P: &str = "00f067aa0ba902b7";
const PP: &str = "05e3ac9a4f6e3b90";

fn tid(hex: &str) -> TraceId {
    if hex.len() == 16 {
        TraceId::from_u64(u64::from_str_radix(hex, 16).expect("a constant"))
    } else {
        hex.parse().expect("a constant")
    }
}

fn sid(hex: &str) -> SpanId {
    hex.parse().expect("a constant")
}

fn tp(flags: &str) -> String {
    format!("00-{T}-{P}-{flags}")
}

#[derive(Clone, Debug)]
enum Expect {
    /// Same trace id, a new parent/span id.
    Continue { trace_id: TraceId, parent: SpanId },
    /// A new, valid trace id, none of `avoid`.
    Restart { avoid: Vec<TraceId> },
    /// The sampled decision.
    Sampled(bool),
    /// The W3C random-trace-id flag.
    Random(bool),
    /// These tracestate members, exactly.
    TsHas(Vec<(String, String)>),
    /// This tracestate key, any value.
    TsHasKey(String),
    /// None of these tracestate keys.
    TsLacks(Vec<String>),
    /// This many tracestate members.
    TsLen(usize),
    /// Every member of this baggage string (key, decoded value, properties).
    BaggageHas(String),
    /// Every callback has the same trace id.
    SameTraceId,
    /// Every callback has a different span id.
    DistinctSpanIds,
}

#[derive(Clone, Debug)]
struct Case {
    suite: Suite,
    name: String,
    about: String,
    headers: Vec<(String, String)>,
    callbacks: usize,
    expect: Vec<Expect>,
}

struct CaseBuilder(Case);

fn case(suite: Suite, name: &str, about: &str) -> CaseBuilder {
    CaseBuilder(Case {
        suite,
        name: name.to_owned(),
        about: about.to_owned(),
        headers: Vec::new(),
        callbacks: 1,
        expect: Vec::new(),
    })
}

impl CaseBuilder {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.0.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    fn callbacks(mut self, n: usize) -> Self {
        self.0.callbacks = n;
        self
    }
    fn expect(mut self, e: Expect) -> Self {
        self.0.expect.push(e);
        self
    }
    fn continues(self, trace_id: &str, parent: &str) -> Self {
        self.expect(Expect::Continue {
            trace_id: tid(trace_id),
            parent: sid(parent),
        })
    }
    fn restarts(self, avoid: &[&str]) -> Self {
        self.expect(Expect::Restart {
            avoid: avoid.iter().map(|t| tid(t)).collect(),
        })
    }
    fn sampled(self, s: bool) -> Self {
        self.expect(Expect::Sampled(s))
    }
    fn ts_has(self, members: &[(&str, &str)]) -> Self {
        self.expect(Expect::TsHas(
            members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ))
    }
    fn ts_lacks(self, keys: &[&str]) -> Self {
        self.expect(Expect::TsLacks(
            keys.iter().map(|k| (*k).to_owned()).collect(),
        ))
    }
    fn baggage_has(self, members: &str) -> Self {
        self.expect(Expect::BaggageHas(members.to_owned()))
    }
    fn done(self) -> Case {
        self.0
    }
}

/// Every case, in the order they run.
fn cases() -> Vec<Case> {
    use Suite::{B3, Baggage as Bag, Jaeger, Tracecontext as Tc, Tracestate as Ts};
    let zero = "0".repeat(32);
    let mut c = vec![
        // ---- traceparent: valid input is continued --------------------------------------
        case(
            Tc,
            "starts-a-trace-without-context",
            "no trace headers: the service starts a trace and sends a valid traceparent",
        )
        .done(),
        case(
            Tc,
            "continues-sampled",
            "a valid sampled traceparent: same trace id, new parent id, sampled",
        )
        .header("traceparent", &tp("01"))
        .continues(T, P)
        .sampled(true)
        .done(),
        case(
            Tc,
            "continues-not-sampled",
            "a valid unsampled traceparent: same trace id, new parent id, not sampled",
        )
        .header("traceparent", &tp("00"))
        .continues(T, P)
        .sampled(false)
        .done(),
        case(
            Tc,
            "keeps-random-flag",
            "Level 2 random-trace-id flag (02) is kept when continuing the trace",
        )
        .header("traceparent", &tp("02"))
        .continues(T, P)
        .expect(Expect::Random(true))
        .sampled(false)
        .done(),
        case(
            Tc,
            "keeps-sampled-and-random-flags",
            "flags 03: sampled and random are both kept",
        )
        .header("traceparent", &tp("03"))
        .continues(T, P)
        .expect(Expect::Random(true))
        .sampled(true)
        .done(),
        case(
            Tc,
            "clears-reserved-flags",
            "flags 09: sampled is kept, the reserved bit is not passed on",
        )
        .header("traceparent", &tp("09"))
        .continues(T, P)
        .sampled(true)
        .done(),
        case(
            Tc,
            "header-name-uppercase",
            "the header name TRACEPARENT is the same header",
        )
        .header("TRACEPARENT", &tp("01"))
        .continues(T, P)
        .done(),
        case(
            Tc,
            "header-name-mixed-case",
            "the header name TrAcEpArEnT is the same header",
        )
        .header("TrAcEpArEnT", &tp("01"))
        .continues(T, P)
        .done(),
        case(
            Tc,
            "optional-whitespace",
            "spaces and tabs around the value are optional whitespace",
        )
        .header("traceparent", &format!(" \t{} \t", tp("01")))
        .continues(T, P)
        .done(),
        case(
            Tc,
            "future-version",
            "version cc (a future version) is parsed by its first four fields",
        )
        .header("traceparent", &format!("cc-{T}-{P}-01"))
        .continues(T, P)
        .done(),
        case(
            Tc,
            "future-version-extra-fields",
            "version cc with extra fields: continued, and sent on as version 00",
        )
        .header(
            "traceparent",
            &format!("cc-{T}-{P}-01-what-the-future-will-be-like"),
        )
        .continues(T, P)
        .done(),
        // ---- traceparent: invalid input restarts the trace ------------------------------
        case(
            Tc,
            "header-name-with-dash",
            "trace-parent is not traceparent: a new trace",
        )
        .header("trace-parent", &tp("01"))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "header-name-with-dot",
            "trace.parent is not traceparent: a new trace",
        )
        .header("trace.parent", &tp("01"))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "duplicated-header",
            "two traceparent headers: a new trace",
        )
        .header("traceparent", &format!("00-{T2}-{P}-01"))
        .header("traceparent", &tp("01"))
        .restarts(&[T, T2])
        .done(),
        case(
            Tc,
            "version-00-trailing-fields",
            "version 00 followed by more fields is invalid",
        )
        .header(
            "traceparent",
            &format!("{}-what-the-future-will-be-like", tp("01")),
        )
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "version-00-trailing-character",
            "version 00 followed by a character is invalid",
        )
        .header("traceparent", &format!("{}.", tp("01")))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "future-version-bad-delimiter",
            "a future version whose flags are followed by something else than '-' is invalid",
        )
        .header(
            "traceparent",
            &format!("cc-{T}-{P}-01.what-the-future-will-be-like"),
        )
        .restarts(&[T])
        .done(),
        case(Tc, "version-ff", "version ff is forbidden")
            .header("traceparent", &format!("ff-{T}-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "version-illegal-character", "version .0 is invalid")
            .header("traceparent", &format!(".0-{T}-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "version-too-long", "a 3-digit version is invalid")
            .header("traceparent", &format!("000-{T}-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "version-too-short", "a 1-digit version is invalid")
            .header("traceparent", &format!("0-{T}-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "trace-id-all-zero", "an all-zero trace id is invalid")
            .header("traceparent", &format!("00-{zero}-{P}-01"))
            .restarts(&[])
            .done(),
        case(
            Tc,
            "trace-id-illegal-character",
            "a trace id with a '.' is invalid",
        )
        .header("traceparent", &format!("00-.{}-{P}-01", &T[1..]))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "trace-id-uppercase",
            "a trace id in uppercase hex is invalid",
        )
        .header("traceparent", &format!("00-{}-{P}-01", T.to_uppercase()))
        .restarts(&[T])
        .done(),
        case(Tc, "trace-id-too-long", "a 33-digit trace id is invalid")
            .header("traceparent", &format!("00-{T}3-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "trace-id-too-short", "a 31-digit trace id is invalid")
            .header("traceparent", &format!("00-{}-{P}-01", &T[1..]))
            .restarts(&[T])
            .done(),
        case(Tc, "parent-id-all-zero", "an all-zero parent id is invalid")
            .header("traceparent", &format!("00-{T}-0000000000000000-01"))
            .restarts(&[T])
            .done(),
        case(
            Tc,
            "parent-id-illegal-character",
            "a parent id with a '.' is invalid",
        )
        .header("traceparent", &format!("00-{T}-{}.-01", &P[..15]))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "parent-id-uppercase",
            "a parent id in uppercase hex is invalid",
        )
        .header("traceparent", &format!("00-{T}-00F067AA0BA902B7-01"))
        .restarts(&[T])
        .done(),
        case(Tc, "parent-id-too-long", "a 17-digit parent id is invalid")
            .header("traceparent", &format!("00-{T}-{P}7-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "parent-id-too-short", "a 15-digit parent id is invalid")
            .header("traceparent", &format!("00-{T}-{}-01", &P[1..]))
            .restarts(&[T])
            .done(),
        case(Tc, "flags-illegal-character", "trace-flags 0. are invalid")
            .header("traceparent", &tp("0."))
            .restarts(&[T])
            .done(),
        case(Tc, "flags-too-long", "3-digit trace-flags are invalid")
            .header("traceparent", &tp("001"))
            .restarts(&[T])
            .done(),
        case(Tc, "flags-too-short", "1-digit trace-flags are invalid")
            .header("traceparent", &tp("1"))
            .restarts(&[T])
            .done(),
        // ---- several outgoing calls ---------------------------------------------------------
        case(
            Tc,
            "several-calls-continue",
            "three outgoing calls: one trace id, three different parent ids",
        )
        .header("traceparent", &tp("01"))
        .callbacks(3)
        .continues(T, P)
        .expect(Expect::SameTraceId)
        .expect(Expect::DistinctSpanIds)
        .done(),
        case(
            Tc,
            "several-calls-new-trace",
            "three outgoing calls without incoming context: one new trace, three parent ids",
        )
        .callbacks(3)
        .expect(Expect::SameTraceId)
        .expect(Expect::DistinctSpanIds)
        .done(),
        case(
            Tc,
            "several-calls-invalid-context",
            "three outgoing calls after an invalid traceparent: one new trace, three parent ids",
        )
        .header("traceparent", &format!("00-{zero}-{P}-01"))
        .callbacks(3)
        .restarts(&[])
        .expect(Expect::SameTraceId)
        .expect(Expect::DistinctSpanIds)
        .done(),
        // ---- tracestate ------------------------------------------------------------------------
        case(
            Ts,
            "kept",
            "tracestate is passed on with the trace, members and order kept",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1,bar=2")
        .continues(T, P)
        .ts_has(&[("foo", "1"), ("bar", "2")])
        .done(),
        case(
            Ts,
            "dropped-without-traceparent",
            "tracestate without traceparent is not used",
        )
        .header("tracestate", "foo=1,bar=2")
        .ts_lacks(&["foo", "bar"])
        .done(),
        case(
            Ts,
            "dropped-with-invalid-traceparent",
            "tracestate next to an invalid traceparent is not used",
        )
        .header("traceparent", &format!("00-{zero}-{P}-01"))
        .header("tracestate", "foo=1")
        .restarts(&[])
        .ts_lacks(&["foo"])
        .done(),
        case(
            Ts,
            "header-name-mixed-case",
            "the header name TrAcEsTaTe is the same header",
        )
        .header("traceparent", &tp("00"))
        .header("TrAcEsTaTe", "foo=1")
        .ts_has(&[("foo", "1")])
        .done(),
        case(Ts, "header-name-with-dash", "trace-state is not tracestate")
            .header("traceparent", &tp("00"))
            .header("trace-state", "foo=1")
            .ts_lacks(&["foo"])
            .done(),
        case(Ts, "empty-header", "an empty tracestate is accepted")
            .header("traceparent", &tp("00"))
            .header("tracestate", "")
            .continues(T, P)
            .done(),
        case(
            Ts,
            "empty-and-valid-headers",
            "an empty tracestate header next to a valid one",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "")
        .header("tracestate", "foo=1")
        .continues(T, P)
        .ts_has(&[("foo", "1")])
        .done(),
        case(
            Ts,
            "several-headers-combined",
            "several tracestate headers are combined in order",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1,bar=2")
        .header("tracestate", "rojo=1,congo=2")
        .header("tracestate", "baz=3")
        .ts_has(&[
            ("foo", "1"),
            ("bar", "2"),
            ("rojo", "1"),
            ("congo", "2"),
            ("baz", "3"),
        ])
        .done(),
        case(
            Ts,
            "duplicated-keys",
            "a repeated key: the trace continues and the key is sent once",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1,foo=2")
        .continues(T, P)
        .expect(Expect::TsHasKey("foo".into()))
        .done(),
        case(
            Ts,
            "duplicated-keys-across-headers",
            "a key repeated across headers is sent once",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1")
        .header("tracestate", "foo=2")
        .continues(T, P)
        .expect(Expect::TsHasKey("foo".into()))
        .done(),
        case(
            Ts,
            "optional-whitespace",
            "spaces and tabs around members are optional whitespace",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1 \t , \t bar=2, \t baz=3")
        .ts_has(&[("foo", "1"), ("bar", "2"), ("baz", "3")])
        .done(),
        case(
            Ts,
            "key-illegal-space",
            "a key with a space invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo =1")
        .ts_lacks(&["foo"])
        .done(),
        case(
            Ts,
            "key-illegal-uppercase",
            "an uppercase key invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "FOO=1,bar=2")
        .ts_lacks(&["bar"])
        .done(),
        case(
            Ts,
            "key-illegal-dot",
            "a key with a '.' invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo.bar=1,bar=2")
        .ts_lacks(&["bar"])
        .done(),
        case(
            Ts,
            "multi-tenant-keys",
            "tenant@system keys and keys with several '@' are valid",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "t61@congo=1,foo@=2,foo@@bar=3,foo@bar@baz=4")
        .ts_has(&[
            ("t61@congo", "1"),
            ("foo@", "2"),
            ("foo@@bar", "3"),
            ("foo@bar@baz", "4"),
        ])
        .done(),
        case(
            Ts,
            "key-starting-with-at",
            "a key starting with '@' invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "@foo=1,bar=2")
        .ts_lacks(&["bar"])
        .done(),
        case(
            Ts,
            "value-with-equals",
            "a value with '=' invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=bar=baz,bar=2")
        .ts_lacks(&["foo", "bar"])
        .done(),
        case(Ts, "value-empty", "an empty value invalidates the header")
            .header("traceparent", &tp("00"))
            .header("tracestate", "foo=,bar=3")
            .ts_lacks(&["foo", "bar"])
            .done(),
        case(Ts, "key-256-characters", "a 256-character key is valid")
            .header("traceparent", &tp("00"))
            .header("tracestate", "foo=1")
            .header("tracestate", &format!("{}=1", "z".repeat(256)))
            .ts_has(&[("foo", "1")])
            .done(),
        case(
            Ts,
            "key-257-characters",
            "a 257-character key invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1")
        .header("tracestate", &format!("{}=1", "z".repeat(257)))
        .ts_lacks(&["foo"])
        .done(),
    ];

    let key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let value_chars: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect();
    c.push(
        case(
            Ts,
            "all-allowed-characters",
            "every character the grammar allows, in a key and a value",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", &format!("{key_chars}={value_chars}"))
        .ts_has(&[(key_chars, value_chars.as_str())])
        .done(),
    );
    let members32: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
    let mut b = case(
        Ts,
        "32-members",
        "32 members are valid: kept (the right-most may make room for the service's own)",
    )
    .header("traceparent", &tp("00"));
    for chunk in members32.chunks(10) {
        b = b.header("tracestate", &chunk.join(","));
    }
    c.push(
        b.ts_has(&[("bar01", "01")])
            .expect(Expect::TsLen(32))
            .done(),
    );
    let mut b =
        case(Ts, "33-members", "33 members invalidate the header").header("traceparent", &tp("00"));
    for chunk in members32.chunks(10) {
        b = b.header("tracestate", &chunk.join(","));
    }
    c.push(
        b.header("tracestate", "bar33=33")
            .ts_lacks(&["bar01"])
            .done(),
    );

    c.extend([
        // ---- baggage ----------------------------------------------------------------------------
        case(
            Bag,
            "kept",
            "baggage is passed on, values percent-decoded as the spec's example",
        )
        .header("traceparent", &tp("01"))
        .header(
            "baggage",
            "userId=alice,serverNode=DF%2028,isProduction=false",
        )
        .baggage_has("userId=alice,serverNode=DF%2028,isProduction=false")
        .done(),
        case(Bag, "utf8-value", "a percent-encoded UTF-8 value survives")
            .header("traceparent", &tp("01"))
            .header("baggage", "userId=Am%C3%A9lie")
            .baggage_has("userId=Am%C3%A9lie")
            .done(),
        case(
            Bag,
            "several-headers",
            "several baggage headers are combined",
        )
        .header("traceparent", &tp("01"))
        .header("baggage", "userId=alice")
        .header("baggage", "serverNode=DF%2028,isProduction=false")
        .baggage_has("userId=alice,serverNode=DF%2028,isProduction=false")
        .done(),
        case(
            Bag,
            "optional-whitespace",
            "spaces around keys, values and '=' are optional whitespace",
        )
        .header("traceparent", &tp("01"))
        .header("baggage", "userId =   alice")
        .header("baggage", "serverNode = DF%2028, isProduction = false")
        .baggage_has("userId=alice,serverNode=DF%2028,isProduction=false")
        .done(),
        case(
            Bag,
            "properties",
            "member properties (;k=v and ;k) are kept",
        )
        .header("traceparent", &tp("01"))
        .header(
            "baggage",
            "key1=value1;property1;property2, key3=value3; propertyKey=propertyValue",
        )
        .baggage_has("key1=value1;property1;property2,key3=value3;propertyKey=propertyValue")
        .done(),
        case(Bag, "value-with-equals", "a value may contain '='")
            .header("traceparent", &tp("01"))
            .header("baggage", "k=a=b")
            .baggage_has("k=a=b")
            .done(),
        case(
            Bag,
            "without-trace-context",
            "baggage is passed on even when the trace starts here",
        )
        .header("baggage", "userId=alice")
        .baggage_has("userId=alice")
        .done(),
        // ---- B3 -----------------------------------------------------------------------------------
        case(
            B3,
            "single-sampled",
            "b3 single header, sampled: same trace id, new span id, sampled",
        )
        .header("b3", &format!("{T}-{P}-1"))
        .continues(T, P)
        .sampled(true)
        .done(),
        case(B3, "single-with-parent", "b3 with all four fields")
            .header("b3", &format!("{T}-{P}-1-{PP}"))
            .continues(T, P)
            .sampled(true)
            .done(),
        case(B3, "single-not-sampled", "b3 deny decision is honoured")
            .header("b3", &format!("{T}-{P}-0"))
            .continues(T, P)
            .sampled(false)
            .done(),
        case(B3, "single-debug", "b3 debug (d) implies sampled")
            .header("b3", &format!("{T}-{P}-d"))
            .continues(T, P)
            .sampled(true)
            .done(),
        case(
            B3,
            "single-64-bit-trace-id",
            "a 64-bit trace id continues (left-padded to 128 bits in W3C)",
        )
        .header("b3", &format!("{T64}-{P}-1"))
        .continues(T64, P)
        .sampled(true)
        .done(),
        case(
            B3,
            "single-deferred",
            "b3 without sampling state: the trace continues",
        )
        .header("b3", &format!("{T}-{P}"))
        .continues(T, P)
        .done(),
        case(
            B3,
            "sampling-only-deny",
            "b3: 0 alone: a new trace that is not sampled",
        )
        .header("b3", "0")
        .restarts(&[])
        .sampled(false)
        .done(),
        case(
            B3,
            "multi-sampled",
            "X-B3-* headers, 128-bit trace id, sampled",
        )
        .header("X-B3-TraceId", T)
        .header("X-B3-SpanId", P)
        .header("X-B3-ParentSpanId", PP)
        .header("X-B3-Sampled", "1")
        .continues(T, P)
        .sampled(true)
        .done(),
        case(
            B3,
            "multi-64-bit-trace-id",
            "X-B3-* headers with a 64-bit trace id",
        )
        .header("X-B3-TraceId", T64)
        .header("X-B3-SpanId", P)
        .header("X-B3-Sampled", "1")
        .continues(T64, P)
        .sampled(true)
        .done(),
        case(B3, "multi-not-sampled", "X-B3-Sampled: 0 is honoured")
            .header("X-B3-TraceId", T)
            .header("X-B3-SpanId", P)
            .header("X-B3-Sampled", "0")
            .continues(T, P)
            .sampled(false)
            .done(),
        case(
            B3,
            "multi-debug-flag",
            "X-B3-Flags: 1 (debug) implies sampled",
        )
        .header("X-B3-TraceId", T)
        .header("X-B3-SpanId", P)
        .header("X-B3-Flags", "1")
        .continues(T, P)
        .sampled(true)
        .done(),
        case(
            B3,
            "multi-lowercase-names",
            "lowercase x-b3-* names are the same headers",
        )
        .header("x-b3-traceid", T)
        .header("x-b3-spanid", P)
        .header("x-b3-sampled", "1")
        .continues(T, P)
        .done(),
        case(
            B3,
            "single-wins-over-multi",
            "when b3 and X-B3-* disagree, the single header wins",
        )
        .header("b3", &format!("{T}-{P}-1"))
        .header("X-B3-TraceId", T2)
        .header("X-B3-SpanId", PP)
        .header("X-B3-Sampled", "1")
        .continues(T, P)
        .done(),
        case(
            B3,
            "single-all-zero-trace-id",
            "an all-zero B3 trace id starts a new trace",
        )
        .header("b3", &format!("{zero}-{P}-1"))
        .restarts(&[])
        .done(),
        case(
            B3,
            "single-uppercase",
            "uppercase hex in b3 starts a new trace",
        )
        .header("b3", &format!("{}-{P}-1", T.to_uppercase()))
        .restarts(&[T])
        .done(),
        case(
            B3,
            "multi-missing-span-id",
            "X-B3-TraceId without X-B3-SpanId starts a new trace",
        )
        .header("X-B3-TraceId", T)
        .header("X-B3-Sampled", "1")
        .restarts(&[T])
        .done(),
        // ---- Jaeger -------------------------------------------------------------------------------
        case(
            Jaeger,
            "sampled",
            "uber-trace-id, sampled: same trace id, new span id",
        )
        .header("uber-trace-id", &format!("{T}:{P}:0:1"))
        .continues(T, P)
        .sampled(true)
        .done(),
        case(Jaeger, "not-sampled", "uber-trace-id flags 0 are honoured")
            .header("uber-trace-id", &format!("{T}:{P}:0:0"))
            .continues(T, P)
            .sampled(false)
            .done(),
        case(Jaeger, "debug", "uber-trace-id flags 3 (sampled + debug)")
            .header("uber-trace-id", &format!("{T}:{P}:{PP}:3"))
            .continues(T, P)
            .sampled(true)
            .done(),
        case(Jaeger, "no-leading-zeros", "hex ids without leading zeros")
            .header(
                "uber-trace-id",
                &format!(
                    "{}:{}:0:1",
                    T64.trim_start_matches('0'),
                    P.trim_start_matches('0')
                ),
            )
            .continues(T64, P)
            .sampled(true)
            .done(),
        case(Jaeger, "url-encoded", "the URL-encoded form with %3A")
            .header("uber-trace-id", &format!("{T}%3A{P}%3A0%3A1"))
            .continues(T, P)
            .done(),
        case(Jaeger, "baggage", "uberctx-* baggage is passed on")
            .header("uber-trace-id", &format!("{T}:{P}:0:1"))
            .header("uberctx-user", "alice")
            .baggage_has("user=alice")
            .done(),
        case(
            Jaeger,
            "zero-trace-id",
            "a zero trace id starts a new trace",
        )
        .header("uber-trace-id", &format!("0:{P}:0:1"))
        .restarts(&[])
        .done(),
    ]);
    c
}

// ---------------------------------------------------------------------------------------------
// Running cases
// ---------------------------------------------------------------------------------------------

type Headers = Vec<(String, String)>;

#[derive(Default)]
struct Callbacks {
    received: Mutex<HashMap<String, Headers>>,
    arrived: Notify,
}

async fn callback_handler(
    State(state): State<Arc<Callbacks>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Json<Value> {
    let list: Headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    state
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id, list);
    state.arrived.notify_waiters();
    Json(Value::Null)
}

struct CaseResult {
    case: Case,
    failures: Vec<String>,
    callbacks: Vec<Option<Headers>>,
}

struct Report {
    target: String,
    harness: SocketAddr,
    results: Vec<CaseResult>,
}

impl Report {
    fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !r.failures.is_empty())
            .count()
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "stitch check-propagation: {} (harness listening on {})",
            self.target, self.harness
        );
        for r in &self.results {
            let status = if r.failures.is_empty() {
                "PASS"
            } else {
                "FAIL"
            };
            let _ = writeln!(
                out,
                "{status}  {}/{}: {}",
                r.case.suite.name(),
                r.case.name,
                r.case.about
            );
            if r.failures.is_empty() {
                continue;
            }
            for f in &r.failures {
                let _ = writeln!(out, "        - {f}");
            }
            for (k, v) in &r.case.headers {
                let _ = writeln!(out, "        sent      {k}: {v}");
            }
            for (i, cb) in r.callbacks.iter().enumerate() {
                match cb {
                    None => {
                        let _ = writeln!(out, "        callback {i}: none");
                    }
                    Some(headers) => {
                        let trace: Vec<_> =
                            headers.iter().filter(|(k, _)| is_trace_header(k)).collect();
                        if trace.is_empty() {
                            let _ = writeln!(out, "        callback {i}: no trace headers");
                        }
                        for (k, v) in trace {
                            let _ = writeln!(out, "        callback {i}: {k}: {v}");
                        }
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "stitch check-propagation: {} of {} cases passed, {} failed",
            self.results.len() - self.failed(),
            self.results.len(),
            self.failed()
        );
        out
    }

    fn to_json(&self) -> Value {
        let cases: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "suite": r.case.suite.name(),
                    "name": r.case.name,
                    "description": r.case.about,
                    "passed": r.failures.is_empty(),
                    "failures": r.failures,
                    "sent": r.case.headers,
                    "callbacks": r.callbacks.iter().map(|cb| cb.as_ref().map(|h| {
                        h.iter().filter(|(k, _)| is_trace_header(k)).cloned().collect::<Vec<_>>()
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "target": self.target,
            "harness": self.harness.to_string(),
            "total": self.results.len(),
            "passed": self.results.len() - self.failed(),
            "failed": self.failed(),
            "cases": cases,
        })
    }
}

fn is_trace_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "traceparent" | "tracestate" | "baggage" | "b3" | "uber-trace-id"
    ) || n.starts_with("x-b3-")
        || n.starts_with("uberctx-")
}

async fn check(
    target: &str,
    suites: &[Suite],
    timeout: Duration,
    listen: SocketAddr,
) -> anyhow::Result<Report> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the harness listener to {listen}"))?;
    let harness = listener.local_addr()?;
    let callbacks = Arc::new(Callbacks::default());
    let app = Router::new()
        .route("/callback/{id}", post(callback_handler))
        .with_state(callbacks.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder().timeout(timeout).build()?;

    let result = async {
        // Reachability first, so that a wrong URL is one clear error, not 90 failed cases.
        let probe = client
            .post(target)
            .header("content-type", "application/json")
            .body("[]")
            .send()
            .await
            .with_context(|| format!("cannot reach the service under test at {target}"))?;
        if probe.status().is_server_error() || probe.status() == StatusCode::NOT_FOUND {
            anyhow::bail!(
                "the service under test at {target} answered an empty instruction list with HTTP {}",
                probe.status()
            );
        }
        let run = SpanId::generate();
        let mut results = Vec::new();
        for (i, case) in cases().into_iter().filter(|c| suites.contains(&c.suite)).enumerate() {
            results.push(run_case(&client, target, harness, &callbacks, &format!("{run}-{i}"), case, timeout).await);
        }
        Ok(Report {
            target: target.to_owned(),
            harness,
            results,
        })
    }
    .await;
    server.abort();
    result
}

async fn run_case(
    client: &reqwest::Client,
    target: &str,
    harness: SocketAddr,
    callbacks: &Callbacks,
    id: &str,
    case: Case,
    timeout: Duration,
) -> CaseResult {
    let deadline = tokio::time::Instant::now() + timeout;
    let ids: Vec<String> = (0..case.callbacks).map(|n| format!("{id}.{n}")).collect();
    let body: Vec<Value> = ids
        .iter()
        .map(|cb| json!({"url": format!("http://{harness}/callback/{cb}"), "arguments": []}))
        .collect();
    let mut failures = Vec::new();
    let mut request = client.post(target).json(&body);
    for (k, v) in &case.headers {
        request = request.header(k.as_str(), v.as_str());
    }
    match request.send().await {
        Ok(resp) if !resp.status().is_success() => {
            failures.push(format!("the service answered HTTP {}", resp.status()));
        }
        Ok(_) => {}
        Err(e) => failures.push(format!("the request to the service failed: {e}")),
    }
    // Callbacks normally arrive before the service answers; allow a short grace for services
    // that call back asynchronously.
    let grace = tokio::time::Instant::now() + timeout.min(Duration::from_secs(1));
    let until = deadline.min(grace).max(tokio::time::Instant::now());
    loop {
        let notified = callbacks.arrived.notified();
        {
            let got = callbacks
                .received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if ids.iter().all(|i| got.contains_key(i)) {
                break;
            }
        }
        if tokio::time::timeout_at(until, notified).await.is_err() {
            break;
        }
    }
    let received: Vec<Option<Headers>> = {
        let mut got = callbacks
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ids.iter().map(|i| got.remove(i)).collect()
    };
    failures.extend(evaluate(&case, &received));
    CaseResult {
        case,
        failures,
        callbacks: received,
    }
}

/// What one callback carried, as far as the checks are concerned.
struct Observed {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
    random: Option<bool>,
}

/// Checks one case's callbacks; returns the failures in words.
fn evaluate(case: &Case, callbacks: &[Option<Headers>]) -> Vec<String> {
    let mut failures = Vec::new();
    let several = callbacks.len() > 1;
    let label = |i: usize| {
        if several {
            format!("callback {i}: ")
        } else {
            String::new()
        }
    };
    let sent_tp = sent_traceparent(case);
    let sent_ts = sent_tp.as_ref().and_then(|_| {
        TraceState::from_header_values(
            case.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("tracestate"))
                .map(|(_, v)| v.as_str()),
        )
        .ok()
    });

    let mut observed: Vec<Option<Observed>> = Vec::new();
    for (i, cb) in callbacks.iter().enumerate() {
        let Some(headers) = cb else {
            failures.push(format!(
                "{}the service made no call to the harness",
                label(i)
            ));
            observed.push(None);
            continue;
        };
        let (obs, mut problems) = observe(case, headers, sent_ts.as_ref());
        for p in problems.drain(..) {
            failures.push(format!("{}{p}", label(i)));
        }
        if let Some(o) = &obs {
            for e in &case.expect {
                if let Some(p) = check_one(e, o, headers) {
                    failures.push(format!("{}{p}", label(i)));
                }
            }
        } else {
            // Without a context only the header-content checks can run.
            for e in &case.expect {
                if matches!(e, Expect::TsLacks(_) | Expect::BaggageHas(_)) {
                    let dummy = Observed {
                        trace_id: TraceId::INVALID,
                        span_id: SpanId::INVALID,
                        sampled: false,
                        random: None,
                    };
                    if let Some(p) = check_one(e, &dummy, headers) {
                        failures.push(format!("{}{p}", label(i)));
                    }
                }
            }
        }
        observed.push(obs);
    }

    let seen: Vec<&Observed> = observed.iter().flatten().collect();
    if case.expect.iter().any(|e| matches!(e, Expect::SameTraceId)) && seen.len() > 1 {
        let first = seen[0].trace_id;
        if seen.iter().any(|o| o.trace_id != first) {
            failures.push(format!(
                "the outgoing calls belong to different traces ({}): one incoming request must stay one trace",
                seen.iter().map(|o| o.trace_id.to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if case
        .expect
        .iter()
        .any(|e| matches!(e, Expect::DistinctSpanIds))
    {
        let mut ids: Vec<SpanId> = seen.iter().map(|o| o.span_id).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != seen.len() {
            failures.push(
                "several outgoing calls share a parent id: each call needs its own span id".into(),
            );
        }
    }
    failures
}

/// The valid traceparent the case sends, if it sends exactly one.
fn sent_traceparent(case: &Case) -> Option<TraceParent> {
    let values: Vec<&str> = case
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .map(|(_, v)| v.as_str())
        .collect();
    match values.as_slice() {
        [one] => TraceParent::parse(one).ok(),
        _ => None,
    }
}

/// Reads the context of one callback and runs the checks every case shares.
fn observe(
    case: &Case,
    headers: &Headers,
    sent_ts: Option<&TraceState>,
) -> (Option<Observed>, Vec<String>) {
    let mut problems = Vec::new();
    let traceparents: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .map(|(_, v)| v.as_str())
        .collect();
    let tp = match traceparents.as_slice() {
        [] => None,
        [one] => match TraceParent::parse_with_version(one) {
            Ok((0, tp)) if one.trim() == tp.to_string() => Some(tp),
            Ok((0, _)) => {
                problems.push(format!("the traceparent {one:?} is not in canonical form"));
                None
            }
            Ok((v, _)) => {
                problems.push(format!(
                    "the service sent traceparent version {v:02x}; it must send the version it implements (00)"
                ));
                None
            }
            Err(e) => {
                problems.push(format!(
                    "the service sent an invalid traceparent {one:?}: {e}"
                ));
                None
            }
        },
        _ => {
            problems.push(format!(
                "the service sent {} traceparent headers; expected one",
                traceparents.len()
            ));
            None
        }
    };
    if let Some(tp) = &tp
        && tp.flags.bits() & !0x03 != 0
    {
        problems.push(format!(
            "the service sent reserved trace-flags bits ({:02x}); they must be zero",
            tp.flags.bits()
        ));
    }

    // What the service sent must itself be a valid tracestate, updated by the spec's rules.
    let ts_values: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("tracestate"))
        .map(|(_, v)| v.as_str())
        .collect();
    if !ts_values.is_empty() {
        match TraceState::from_header_values_strict(ts_values.iter().copied()) {
            Err(e) => problems.push(format!("the service sent an invalid tracestate: {e}")),
            Ok(out) => {
                let continued = tp
                    .as_ref()
                    .zip(sent_traceparent(case))
                    .is_some_and(|(o, s)| o.trace_id == s.trace_id);
                if let (Some(input), true) = (sent_ts, continued)
                    && let Some(p) = tracestate_mutation_problem(input, &out)
                {
                    problems.push(p);
                }
            }
        }
    }

    if case.suite.requires_traceparent() {
        if tp.is_none() && traceparents.is_empty() {
            problems.push("the service sent no traceparent header".into());
        }
        return (
            tp.map(|tp| Observed {
                trace_id: tp.trace_id,
                span_id: tp.parent_id,
                sampled: tp.flags.is_sampled(),
                random: Some(tp.flags.is_random()),
            }),
            problems,
        );
    }
    // Other suites accept a context in any format the harness knows.
    let found = Propagator::default().extract(headers);
    let Some(ctx) = found.context else {
        if matches!(case.suite, Suite::B3 | Suite::Jaeger) {
            problems.push("the service sent no trace context in any known format".into());
        }
        return (None, problems);
    };
    (
        Some(Observed {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            sampled: ctx.is_sampled(),
            random: (found.source == Some(Format::TraceContext)).then_some(ctx.random_trace_id),
        }),
        problems,
    )
}

/// Members the service did not touch keep their relative order and come after every member it
/// added or modified.
fn tracestate_mutation_problem(input: &TraceState, output: &TraceState) -> Option<String> {
    let unmodified: Vec<&str> = output
        .iter()
        .filter(|(k, v)| input.get(k) == Some(*v))
        .map(|(k, _)| k)
        .collect();
    let input_order: Vec<&str> = input
        .iter()
        .map(|(k, _)| k)
        .filter(|k| unmodified.contains(k))
        .collect();
    if unmodified != input_order {
        return Some(format!(
            "tracestate members were reordered: received order {input_order:?}, sent {unmodified:?}"
        ));
    }
    let first_unmodified = output.iter().position(|(k, v)| input.get(k) == Some(v));
    let last_modified = output.iter().rposition(|(k, v)| input.get(k) != Some(v));
    if let (Some(u), Some(m)) = (first_unmodified, last_modified)
        && m > u
    {
        let key = output.iter().nth(m).map(|(k, _)| k).unwrap_or_default();
        return Some(format!(
            "the new or updated tracestate member {key:?} is not at the front (new and modified members go left)"
        ));
    }
    None
}

fn check_one(expect: &Expect, o: &Observed, headers: &Headers) -> Option<String> {
    match expect {
        Expect::Continue { trace_id, parent } => {
            if o.trace_id != *trace_id {
                return Some(format!(
                    "the trace was not continued: expected trace id {trace_id}, the service sent {}",
                    o.trace_id
                ));
            }
            if o.span_id == *parent {
                return Some(format!(
                    "the parent id {parent} was passed on unchanged; the service must send its own span id"
                ));
            }
            None
        }
        Expect::Restart { avoid } => {
            if !o.trace_id.is_valid() {
                return Some("the service sent an all-zero trace id".into());
            }
            if avoid.contains(&o.trace_id) {
                return Some(format!(
                    "the invalid context was used: trace id {} should have been replaced by a new one",
                    o.trace_id
                ));
            }
            None
        }
        Expect::Sampled(s) => (o.sampled != *s).then(|| {
            format!(
                "the sampling decision was not honoured: expected {}, the service sent {}",
                if *s { "sampled" } else { "not sampled" },
                if o.sampled { "sampled" } else { "not sampled" }
            )
        }),
        Expect::Random(r) => match o.random {
            Some(got) if got != *r => Some(format!(
                "the random-trace-id flag was {} (it must be kept when the trace continues)",
                if got { "set" } else { "dropped" }
            )),
            _ => None,
        },
        Expect::TsHas(members) => {
            let ts = sent_tracestate(headers);
            let missing: Vec<String> = members
                .iter()
                .filter(|(k, v)| ts.get(k) != Some(v.as_str()))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "tracestate members were not passed on: {} (the service sent {:?})",
                    shorten(&missing.join(",")),
                    shorten(&ts.to_string())
                )
            })
        }
        Expect::TsHasKey(key) => {
            let ts = sent_tracestate(headers);
            ts.get(key).is_none().then(|| {
                format!(
                    "the tracestate key {key:?} was not passed on (the service sent {:?})",
                    ts.to_string()
                )
            })
        }
        Expect::TsLacks(keys) => {
            let ts = sent_tracestate(headers);
            let present: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| ts.get(k).is_some())
                .collect();
            (!present.is_empty()).then(|| {
                format!(
                    "an invalid or unusable tracestate was passed on (keys {present:?}); it must be discarded"
                )
            })
        }
        Expect::TsLen(n) => {
            let ts = sent_tracestate(headers);
            (ts.len() != *n).then(|| {
                format!(
                    "expected {n} tracestate members, the service sent {}",
                    ts.len()
                )
            })
        }
        Expect::BaggageHas(members) => {
            let got = Propagator::default().extract(headers).baggage;
            let want = Baggage::parse(members).unwrap_or_default();
            let missing: Vec<String> = want
                .iter()
                .filter(|m| !got.iter().any(|g| same_member(g, m)))
                .map(ToString::to_string)
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "baggage was not passed on: {} (the service sent {:?})",
                    missing.join(","),
                    got.to_string()
                )
            })
        }
        Expect::SameTraceId | Expect::DistinctSpanIds => None,
    }
}

fn same_member(a: &BaggageMember, b: &BaggageMember) -> bool {
    a.key() == b.key() && a.value() == b.value() && a.properties() == b.properties()
}

fn sent_tracestate(headers: &Headers) -> TraceState {
    TraceState::from_header_values(
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("tracestate"))
            .map(|(_, v)| v.as_str()),
    )
    .unwrap_or_default()
}

fn shorten(s: &str) -> String {
    if s.len() <= 120 {
        return s.to_owned();
    }
    let mut end = 117;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_within_a_suite() {
        let all = cases();
        let mut names: Vec<String> = all
            .iter()
            .map(|c| format!("{}/{}", c.suite.name(), c.name))
            .collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn a_tracestate_whose_new_member_is_not_in_front_is_reported() {
        let input: TraceState = "a=1,b=2".parse().unwrap();
        assert!(tracestate_mutation_problem(&input, &"x=1,a=1,b=2".parse().unwrap()).is_none());
        assert!(tracestate_mutation_problem(&input, &"a=9,b=2".parse().unwrap()).is_none());
        assert!(tracestate_mutation_problem(&input, &"a=1,x=1,b=2".parse().unwrap()).is_some());
        assert!(tracestate_mutation_problem(&input, &"b=2,a=1".parse().unwrap()).is_some());
    }

    #[test]
    fn the_protocol_body_accepts_a_list_an_object_or_nothing() {
        assert_eq!(parse_actions(b"").unwrap().len(), 0);
        assert_eq!(parse_actions(b"[]").unwrap().len(), 0);
        let a = parse_actions(
            br#"[{"url": "http://x/1", "arguments": [{"url": "http://y", "arguments": []}]}]"#,
        )
        .unwrap();
        assert_eq!(a[0].url, "http://x/1");
        assert!(a[0].arguments.is_array());
        assert_eq!(parse_actions(br#"{"url": "http://x"}"#).unwrap().len(), 1);
        assert!(parse_actions(b"[1]").is_err());
        assert!(parse_actions(b"{").is_err());
    }
}
