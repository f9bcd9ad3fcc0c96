//! `stitch demo` end to end, and Stitch's largest end-to-end test: an in-process store and
//! OTLP/gRPC receiver, the whole fleet (real HTTP services, the real OpenTelemetry SDK, mixed
//! W3C/B3/Jaeger propagation) for a few seconds of traffic, then the report and the store are
//! checked: for every scenario, the planted problem is Stitch's top finding, and the
//! broken-propagation hop is named.
//!
//! Nothing here depends on timing thresholds: the services' latencies are sleeps hundreds of
//! milliseconds apart from any threshold of the analysis, and every wait is bounded.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stitch_analysis::{FindingKind, LikelyCause};
use stitch_demo::{DemoOptions, DemoReport, DemoTargets, Scenario, ScenarioReport};
use stitch_ingest::{Ingest, IngestConfig};
use stitch_model::{SpanKind, TraceId};
use stitch_store::{SearchQuery, Store, StoreConfig, TraceReader};
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
        let store = Store::open(config).await.unwrap();
        let ingest = Ingest::new(store.clone(), IngestConfig::default());
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
        assert_eq!(
            s.traces_found as u64, s.requests,
            "{}: Stitch returns one trace per request\n{text}",
            s.scenario
        );
    }

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

    // Rare timeout: exactly one request of the run took the rare path, and it is the one
    // analysed.
    let rare = scenario(&report, Scenario::RareTimeout, &text);
    assert_eq!(rare.failed_requests, 1, "{text}");
    let rare_trace = rare.trace.as_ref().unwrap();
    assert!(rare_trace.root_failed);
    assert!(rare_trace.duration_nanos >= 3_000_000_000);

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
