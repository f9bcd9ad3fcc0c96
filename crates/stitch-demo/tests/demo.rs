//! `stitch demo` end to end, and Stitch's largest end-to-end test: an in-process store with
//! the demo's tail sampling and an OTLP/gRPC receiver, the whole fleet (real HTTP services, the
//! real OpenTelemetry SDK, mixed W3C/B3/Jaeger propagation) for a few seconds of traffic (and
//! the rare-timeout scenario's 10,000 requests and 30 s timeout), then the report and the store
//! are checked: for every scenario, the planted problem is Stitch's top finding, the
//! broken-propagation hop is named, and the rare timeout's slow trace is kept by the `slow`
//! policy while most of its normal traffic is dropped.
//!
//! Nothing here depends on timing thresholds: the services' latencies are sleeps hundreds of
//! milliseconds apart from any threshold of the analysis, and every wait is bounded.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stitch_analysis::{FindingKind, LikelyCause};
use stitch_demo::{
    DemoOptions, DemoReport, DemoTargets, RARE_ONE_IN, REST_POLICY, SLOW_POLICY, SamplingStatusFn,
    Scenario, ScenarioReport,
};
use stitch_ingest::{Ingest, IngestConfig};
use stitch_model::{AnyValue, SpanKind, TraceId, find_attribute};
use stitch_query::{SearchQuery, TraceReader};
use stitch_store::{Store, StoreConfig};
use tokio::net::TcpListener;

use FindingKind::*;

/// Per scenario: the kind of Stitch's top finding, and the service and name of its main span.
const EXPECTED: [(Scenario, FindingKind, &str, &str); 7] = [
    (
        Scenario::Checkout,
        DominantLeaf,
        "payment-service",
        "POST /v1/charges",
    ),
    (
        Scenario::Fraud,
        Retries,
        "billing-service",
        "POST /v2/score",
    ),
    (
        Scenario::Login,
        DominantLeaf,
        "identity-service",
        "bcrypt.compare",
    ),
    (
        Scenario::Orders,
        UninstrumentedTime,
        "user-service",
        "GET /users/{id}",
    ),
    (
        Scenario::Cascade,
        ErrorOrigin,
        "user-preferences",
        "GET /preferences",
    ),
    (
        Scenario::RareTimeout,
        ErrorOrigin,
        "search-service",
        "SELECT products_legacy",
    ),
    (
        Scenario::Chaos,
        Retries,
        "account-service",
        "GET /auth/verify",
    ),
];

/// An in-process Stitch: store and OTLP/gRPC receiver on a free loopback port.
struct Stitch {
    _dir: tempfile::TempDir,
    store: Store,
    endpoint: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), tonic_error::Error>>>,
}

mod tonic_error {
    /// The receiver's error type, named without depending on tonic.
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
}

impl Stitch {
    async fn start() -> Stitch {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path().join("data"));
        config.fsync = false;
        config.sampling = stitch_demo::sampling_config();
        let store = Store::open(config).await.unwrap();
        let ingest = Ingest::new(Arc::new(store.clone()), IngestConfig::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            stitch_ingest::grpc::serve(listener, ingest, async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| Box::new(e) as tonic_error::Error)
        });
        Stitch {
            _dir: dir,
            store,
            endpoint,
            stop: Some(stop),
            server: Some(server),
        }
    }

    fn sampling(&self) -> Option<SamplingStatusFn> {
        let store = self.store.clone();
        Some(Arc::new(move || store.sampling_status()))
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), server).await;
            assert!(
                matches!(result, Ok(Ok(Ok(())))),
                "the receiver stops cleanly"
            );
        }
    }
}

impl Drop for Stitch {
    fn drop(&mut self) {
        // On a failed assertion: never leave the receiver running.
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

fn scenario<'a>(report: &'a DemoReport, s: Scenario, text: &str) -> &'a ScenarioReport {
    report
        .scenario(s)
        .unwrap_or_else(|| panic!("no report for {s}\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_planted_problem_is_stitchs_top_finding() {
    let started = Instant::now();
    let stitch = Stitch::start().await;
    let reader: Arc<dyn TraceReader> = Arc::new(stitch.store.clone());
    let targets = DemoTargets {
        otlp_grpc_endpoint: stitch.endpoint.clone(),
        reader: reader.clone(),
        ui_base_url: "http://127.0.0.1:16686".to_owned(),
        sampling: stitch.sampling(),
    };
    let opts = DemoOptions {
        scenarios: Scenario::ALL.to_vec(),
        rate: 10.0,
        duration: Duration::from_secs(4),
        progress: false,
        ..Default::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(120), stitch_demo::run(targets, opts))
        .await
        .expect("the demo finishes within two minutes")
        .expect("the demo runs");
    let text = report.render(110);
    println!("{text}");

    assert!(report.export_failures.is_empty(), "{text}");
    assert_eq!(report.scenarios.len(), Scenario::ALL.len());
    for s in &report.scenarios {
        assert!(
            s.requests >= 2,
            "{}: every scenario gets two requests",
            s.scenario
        );
        if s.scenario != Scenario::RareTimeout {
            assert_eq!(
                s.traces_found as u64, s.requests,
                "{}: the demo's sampling keeps one trace per request\n{text}",
                s.scenario
            );
            assert!(s.sampling.is_none());
        }
    }
    let tail = report
        .tail_sampling
        .as_ref()
        .expect("Stitch's sampling counters");
    assert!(tail.enabled);
    assert_eq!(tail.buffered_traces, 0, "every trace was decided\n{text}");

    // The top finding of every per-trace scenario, through the report and the store.
    for (s, kind, service, span) in EXPECTED {
        let r = scenario(&report, s, &text);
        let trace = r
            .trace
            .as_ref()
            .unwrap_or_else(|| panic!("{s}: a trace was analysed\n{text}"));
        let top = r
            .findings
            .first()
            .unwrap_or_else(|| panic!("{s}: Stitch found something\n{text}"));
        assert_eq!(top.kind, kind, "{s}: kind of the top finding\n{text}");
        let main = top
            .main_span
            .as_ref()
            .expect("the main span is in the trace");
        assert_eq!(
            (main.service.as_str(), main.name.as_str()),
            (service, span),
            "{s}: span of the top finding\n{text}"
        );
        assert!(r.found_planted, "{s}\n{text}");
        assert_eq!(
            trace.url,
            format!("http://127.0.0.1:16686/trace/{}", trace.trace_id)
        );
        assert_eq!(trace.command, format!("stitch trace {}", trace.trace_id));

        let stored = reader
            .trace(TraceId::from_hex(&trace.trace_id).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{s}: the reported trace is stored"));
        let found = stored
            .spans()
            .find(|x| x.span.span_id.to_hex() == main.span_id)
            .unwrap_or_else(|| panic!("{s}: the finding's span is in the stored trace"));
        assert_eq!(found.service_name(), service);
        assert_eq!(found.span.name, span);
        assert_eq!(stored.span_count(), trace.span_count, "{s}");
    }

    // Checkout: the article's other fixes are all among the findings, where they belong.
    let checkout = scenario(&report, Scenario::Checkout, &text);
    let has = |kind: FindingKind, service: &str, target: Option<&str>| {
        checkout.findings.iter().any(|f| {
            f.kind == kind
                && f.service == service
                && target.is_none_or(|t| f.target.as_deref() == Some(t))
        })
    };
    assert!(
        has(UninstrumentedTime, "order-service", None),
        "400 ms log write\n{text}"
    );
    assert!(
        has(
            SynchronousTail,
            "payment-service",
            Some("notification-service")
        ),
        "{text}"
    );
    assert!(
        has(
            SynchronousTail,
            "payment-service",
            Some("analytics-service")
        ),
        "{text}"
    );
    assert!(
        has(SequentialCalls, "order-service", None),
        "inventory then pricing\n{text}"
    );
    assert!(
        has(RepeatedCalls, "inventory-service", None),
        "three round trips\n{text}"
    );
    let log_write = checkout
        .findings
        .iter()
        .find(|f| f.kind == UninstrumentedTime)
        .unwrap();
    assert!(
        log_write
            .title
            .contains("between \"inventory check complete\" and \"payment initiated\""),
        "{}",
        log_write.title
    );

    // Fraud: three attempts at the fraud API inside "Fraud Check".
    let fraud = &scenario(&report, Scenario::Fraud, &text).findings[0];
    assert_eq!(fraud.operation, "Fraud Check");
    assert_eq!(fraud.target.as_deref(), Some("fraud-api"));
    assert_eq!(fraud.count, Some(3));

    // Cascade: the symptom is two services up from the origin.
    let cascade = scenario(&report, Scenario::Cascade, &text);
    assert!(cascade.trace.as_ref().unwrap().root_failed);
    assert!(cascade.findings[0].title.contains("product-page"), "{text}");

    // Chaos: a retry storm against auth-service.
    let chaos = &scenario(&report, Scenario::Chaos, &text).findings[0];
    assert_eq!(chaos.target.as_deref(), Some("auth-service"));
    assert!(chaos.count.unwrap_or(0) >= 5, "{}", chaos.title);
    assert!(chaos.title.starts_with("Retry storm"), "{}", chaos.title);

    // Rare timeout: ~10,000 requests, exactly one of which took the rare path; Stitch kept
    // its trace (by the `slow` policy, whose name is on every span) and it is the one analysed,
    // while the normal traffic was sampled at ~5%.
    let rare = scenario(&report, Scenario::RareTimeout, &text);
    assert!(rare.requests >= RARE_ONE_IN, "{text}");
    assert_eq!(rare.failed_requests, 1, "{text}");
    let rare_trace = rare.trace.as_ref().unwrap();
    assert!(rare_trace.root_failed);
    assert!(rare_trace.duration_nanos >= 30_000_000_000);
    let sampling = rare.sampling.as_ref().expect("the rare timeout's sampling");
    assert_eq!(sampling.slow_requests, 1);
    // (A normal request the machine delayed past 1 s would be kept by `slow` too.)
    let failed: Vec<_> = sampling.slow_kept.iter().filter(|k| k.failed).collect();
    assert_eq!(failed.len(), 1, "the slow trace was kept\n{text}");
    let slow = failed[0];
    assert_eq!(slow.trace_id, rare_trace.trace_id);
    assert_eq!(slow.policy.as_deref(), Some(SLOW_POLICY), "{text}");
    assert_eq!(slow.probability, Some(1.0));
    assert!(slow.failed && slow.duration_nanos >= 30_000_000_000);
    let stored = reader
        .trace(TraceId::from_hex(&slow.trace_id).unwrap())
        .await
        .unwrap()
        .expect("the slow trace is stored");
    assert!(stored.span_count() >= 5, "the whole slow trace");
    for s in stored.spans() {
        assert_eq!(
            find_attribute(&s.span.attributes, "stitch.sampling.policy"),
            Some(&AnyValue::String(SLOW_POLICY.into())),
            "{}",
            s.span.name
        );
    }
    assert_eq!(sampling.normal_requests, rare.requests - 1);
    assert!(
        sampling.normal_kept < sampling.normal_requests,
        "normal traffic was sampled\n{text}"
    );
    // 5% of ~10,000 is ~500 with a standard deviation of ~22.
    assert!(
        (300..=700).contains(&sampling.normal_kept),
        "{} of {} normal traces kept\n{text}",
        sampling.normal_kept,
        sampling.normal_requests
    );
    assert_eq!(
        sampling.kept_by_policy.get(REST_POLICY).copied(),
        Some(sampling.normal_kept),
        "{text}"
    );
    assert_eq!(
        sampling.kept_traces,
        sampling.normal_kept + sampling.slow_kept.len() as u64
    );
    assert_eq!(rare.traces_found as u64, sampling.kept_traces);
    assert!(text.contains("kept by policy \"slow\""), "{text}");

    // Broken propagation: the hop is named, and the split is real in the store.
    let broken = scenario(&report, Scenario::BrokenPropagation, &text);
    let hop = broken
        .broken_hops
        .first()
        .unwrap_or_else(|| panic!("Stitch names a broken hop\n{text}"));
    assert_eq!(
        (hop.caller_service.as_str(), hop.callee_service.as_str()),
        ("legacy-billing", "tax-service"),
        "{text}"
    );
    assert_eq!(hop.caller_operation, "POST /tax/calculate");
    assert_eq!(hop.callee_operation, "POST /tax/calculate");
    assert_eq!(hop.cause, LikelyCause::HeaderStripped);
    assert!(hop.occurrences >= 1 && hop.occurrences as u64 <= broken.requests);
    assert!(broken.found_planted);
    let orphans = reader
        .search(&SearchQuery {
            service: Some("tax-service".into()),
            operation: Some("POST /tax/calculate".into()),
            span_kind: Some(SpanKind::Server),
            limit: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(orphans.len() as u64, broken.requests);
    for t in &orphans {
        let root = t
            .spans()
            .find(|s| s.span.name == "POST /tax/calculate" && s.span.kind == SpanKind::Server)
            .unwrap();
        assert_eq!(root.span.parent_span_id, None, "tax-service got no context");
        assert!(
            t.spans().all(|s| s.service_name() == "tax-service"),
            "the callee's fragment is a trace of its own"
        );
    }

    // The checkout's hops carry context in W3C, B3 (single and multi) and Jaeger headers, and
    // each arrives: the servers that read them are in the caller's trace, their spans saying
    // which format they read. Simulated databases and third parties are client spans with
    // semantic-convention attributes.
    let checkouts = reader
        .search(&SearchQuery {
            service: Some("api-gateway".into()),
            operation: Some("POST /api/checkout".into()),
            span_kind: Some(SpanKind::Server),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let checkout = checkouts.first().expect("a checkout trace");
    let attr = |s: &stitch_model::SpanRef<'_>, key: &str| {
        s.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.to_text())
    };
    let read_formats: std::collections::BTreeMap<String, String> = checkout
        .spans()
        .filter(|s| s.span.kind == SpanKind::Server && s.span.parent_span_id.is_some())
        .filter_map(|s| {
            attr(&s, "stitch.demo.propagation").map(|f| (s.service_name().to_owned(), f))
        })
        .collect();
    for (service, format) in [
        ("inventory-service", "b3"),
        ("pricing-service", "b3multi"),
        ("notification-service", "jaeger"),
        ("order-service", "tracecontext"),
    ] {
        assert_eq!(
            read_formats.get(service).map(String::as_str),
            Some(format),
            "{read_formats:?}"
        );
    }
    let db = checkout
        .spans()
        .find(|s| attr(s, "db.system").is_some() || attr(s, "db.system.name").is_some())
        .expect("a database client span");
    assert_eq!(db.span.kind, SpanKind::Client);
    assert!(
        attr(&db, "db.query.text").is_some() || attr(&db, "db.statement").is_some(),
        "{:?}",
        db.span.attributes
    );
    assert!(attr(&db, "server.address").is_some());
    let provider = checkout
        .spans()
        .find(|s| attr(s, "url.full").is_some_and(|u| u.starts_with("https://")))
        .expect("a third-party call");
    assert_eq!(provider.span.kind, SpanKind::Client);
    assert!(attr(&provider, "http.request.method").is_some());
    assert!(attr(&provider, "server.address").is_some());

    // The report serialises for machines.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["scenarios"][0]["scenario"], "checkout");
    assert_eq!(json["scenarios"][0]["findings"][0]["kind"], "dominantLeaf");
    assert_eq!(json["scenarios"][0]["foundPlanted"], true);
    assert!(report.all_found());
    assert!(
        text.contains("Stitch found 8 of 8 planted problems."),
        "{text}"
    );

    stitch.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the demo test took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scenario_can_run_alone_and_names_parse() {
    assert_eq!(
        Scenario::from_str("rare_timeout"),
        Ok(Scenario::RareTimeout)
    );
    assert_eq!(
        Scenario::from_str("Broken-Propagation"),
        Ok(Scenario::BrokenPropagation)
    );
    assert!(Scenario::from_str("nope").unwrap_err().contains("checkout"));
    for s in Scenario::ALL {
        assert_eq!(Scenario::from_str(s.name()), Ok(s));
    }

    let stitch = Stitch::start().await;
    let targets = DemoTargets {
        otlp_grpc_endpoint: stitch.endpoint.clone(),
        reader: Arc::new(stitch.store.clone()),
        ui_base_url: "http://127.0.0.1:9999/".to_owned(),
        sampling: stitch.sampling(),
    };
    let opts = DemoOptions {
        scenarios: vec![Scenario::Login],
        rate: 20.0,
        duration: Duration::from_millis(100),
        progress: false,
        ..Default::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(60), stitch_demo::run(targets, opts))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.scenarios.len(), 1);
    let login = &report.scenarios[0];
    assert_eq!(login.requests, 2, "at least two requests per scenario");
    let trace = login.trace.as_ref().unwrap();
    assert_eq!(
        trace.command,
        format!(
            "stitch trace {} --server http://127.0.0.1:9999",
            trace.trace_id
        )
    );
    assert!(report.render(80).contains("── 1. login · seed 003"));
    stitch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_early_still_reports_what_was_sent() {
    let stitch = Stitch::start().await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let targets = DemoTargets {
        otlp_grpc_endpoint: stitch.endpoint.clone(),
        reader: Arc::new(stitch.store.clone()),
        ui_base_url: "http://127.0.0.1:16686".to_owned(),
        sampling: stitch.sampling(),
    };
    let opts = DemoOptions {
        scenarios: vec![Scenario::Cascade],
        rate: 10.0,
        duration: Duration::from_secs(600),
        progress: false,
        stop: Some(stop_rx),
    };
    let started = Instant::now();
    let demo = tokio::spawn(stitch_demo::run(targets, opts));
    tokio::time::sleep(Duration::from_millis(450)).await;
    stop.send(true).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(60), demo)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    let cascade = &report.scenarios[0];
    assert!(
        (1..=20).contains(&cascade.requests),
        "{} requests",
        cascade.requests
    );
    assert_eq!(cascade.traces_found as u64, cascade.requests);
    assert!(cascade.found_planted, "{}", report.render(100));
    stitch.stop().await;
}

/// The demo as `stitch demo` runs it by default (20 s of traffic, about half a minute in all).
/// `cargo test -p stitch-demo --test demo -- --ignored --nocapture` shows the progress line and
/// the report.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "the full-length demo, to watch it"]
async fn the_default_demo() {
    let stitch = Stitch::start().await;
    let targets = DemoTargets {
        otlp_grpc_endpoint: stitch.endpoint.clone(),
        reader: Arc::new(stitch.store.clone()),
        ui_base_url: "http://127.0.0.1:16686".to_owned(),
        sampling: stitch.sampling(),
    };
    let started = Instant::now();
    let report = stitch_demo::run(targets, DemoOptions::default())
        .await
        .unwrap();
    println!("{}", report.render(100));
    println!("(the demo took {:.1}s)", started.elapsed().as_secs_f64());
    assert!(report.all_found());
    stitch.stop().await;
}
