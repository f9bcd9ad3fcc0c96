//! The web UI in a real headless Chromium, against the real binary: known traces go in over
//! OTLP/HTTP, then `tests/ui/e2e.mjs` (Playwright driving Debian's `chromium`) loads the pages
//! and asserts what a user sees — search results and the scatter plot, the critical path, a gap
//! label with its duration, findings, span details, keyboard navigation, the dependency graph's
//! edges and a service's RED charts. Screenshots go to `target/ui-artifacts/`.
//!
//! Needs `/usr/bin/chromium` (or `STITCH_CHROMIUM`) and `npm ci` in `crates/stitch/tests/ui`;
//! `./test.sh` installs both.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Stitch, eventually, get_json, post};
use serde_json::{Value, json};

const MS: u64 = 1_000_000;

pub const CHECKOUT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const FAILING_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// One span of a fixture: times in milliseconds from the trace's start.
struct S {
    key: &'static str,
    parent: Option<&'static str>,
    service: &'static str,
    kind: i64,
    name: &'static str,
    start: u64,
    end: u64,
    attrs: Vec<(&'static str, &'static str)>,
    events: Vec<(&'static str, u64)>,
    error: Option<&'static str>,
    /// A clock offset of the span's host, in milliseconds.
    skew: i64,
}

const SERVER: i64 = 2;
const CLIENT: i64 = 3;

fn s(
    key: &'static str,
    parent: Option<&'static str>,
    service: &'static str,
    kind: i64,
    name: &'static str,
    start: u64,
    end: u64,
) -> S {
    S {
        key,
        parent,
        service,
        kind,
        name,
        start,
        end,
        attrs: Vec::new(),
        events: Vec::new(),
        error: None,
        skew: 0,
    }
}

impl S {
    fn attr(mut self, k: &'static str, v: &'static str) -> S {
        self.attrs.push((k, v));
        self
    }
    fn event(mut self, name: &'static str, at: u64) -> S {
        self.events.push((name, at));
        self
    }
    fn error(mut self, msg: &'static str) -> S {
        self.error = Some(msg);
        self
    }
    fn skew(mut self, ms: i64) -> S {
        self.skew = ms;
        self
    }
}

/// Seed 000's checkout (the article's timings; see `stitch-analysis/tests/seed_cases.rs`): the
/// order service writes a log synchronously for 400 ms between "inventory check complete" and
/// "payment initiated", calls inventory and pricing one after the other, inventory makes three
/// database round trips, payment waits 800 ms on its provider and then calls notification and
/// analytics synchronously. Plus one span that is not on the critical path: a session lookup
/// that runs while the gateway's call to the order service does.
fn checkout() -> Vec<S> {
    let db = |span: S, statement: &'static str| {
        span.attr("db.system", "postgresql")
            .attr("db.name", "inventory")
            .attr("db.statement", statement)
    };
    vec![
        s(
            "gw",
            None,
            "api-gateway",
            SERVER,
            "POST /api/checkout",
            0,
            1942,
        ),
        s(
            "gwc",
            Some("gw"),
            "api-gateway",
            CLIENT,
            "POST /orders",
            1,
            1941,
        ),
        s(
            "session",
            Some("gw"),
            "api-gateway",
            CLIENT,
            "GET session",
            2,
            5,
        )
        .attr("db.system", "redis"),
        s(
            "order",
            Some("gwc"),
            "order-service",
            SERVER,
            "POST /orders",
            8,
            1933,
        )
        .event("inventory check complete", 249)
        .event("payment initiated", 649),
        s(
            "invc",
            Some("order"),
            "order-service",
            CLIENT,
            "GET /inventory/check",
            88,
            178,
        )
        .attr("http.request.method", "GET"),
        s(
            "inv",
            Some("invc"),
            "inventory-service",
            SERVER,
            "GET /inventory/check",
            90,
            176,
        ),
        db(
            s(
                "q1",
                Some("inv"),
                "inventory-service",
                CLIENT,
                "check stock",
                100,
                112,
            ),
            "SELECT quantity FROM stock WHERE sku = 'A-1'",
        ),
        db(
            s(
                "q2",
                Some("inv"),
                "inventory-service",
                CLIENT,
                "reserve stock",
                113,
                128,
            ),
            "UPDATE stock SET reserved = reserved + 1 WHERE sku = 'A-1'",
        ),
        db(
            s(
                "q3",
                Some("inv"),
                "inventory-service",
                CLIENT,
                "confirm reservation",
                129,
                147,
            ),
            "INSERT INTO reservations (sku, order_id) VALUES ('A-1', 42)",
        ),
        s(
            "pricec",
            Some("order"),
            "order-service",
            CLIENT,
            "GET /prices",
            179,
            249,
        )
        .attr("http.request.method", "GET"),
        s(
            "price",
            Some("pricec"),
            "pricing-service",
            SERVER,
            "GET /prices",
            181,
            247,
        ),
        s(
            "payc",
            Some("order"),
            "order-service",
            CLIENT,
            "POST /payments",
            649,
            1923,
        )
        .attr("http.request.method", "POST"),
        s(
            "pay",
            Some("payc"),
            "payment-service",
            SERVER,
            "POST /payments",
            651,
            1921,
        ),
        s(
            "provider",
            Some("pay"),
            "payment-service",
            CLIENT,
            "POST /v1/charges",
            701,
            1501,
        )
        .attr("peer.service", "payment-provider")
        .attr("server.address", "api.stripe.com")
        .attr("http.request.method", "POST"),
        s(
            "notifyc",
            Some("pay"),
            "payment-service",
            CLIENT,
            "POST /notifications",
            1541,
            1741,
        ),
        s(
            "notify",
            Some("notifyc"),
            "notification-service",
            SERVER,
            "POST /notifications",
            1543,
            1739,
        ),
        s(
            "eventsc",
            Some("pay"),
            "payment-service",
            CLIENT,
            "POST /events",
            1741,
            1891,
        ),
        s(
            "events",
            Some("eventsc"),
            "analytics-service",
            SERVER,
            "POST /events",
            1743,
            1889,
        ),
    ]
}

/// A checkout that fails: the payment service declines, and the order service's clock runs
/// 35 ms late (its spans are moved back by the clock-skew adjustment).
fn failing() -> Vec<S> {
    vec![
        s(
            "gw",
            None,
            "api-gateway",
            SERVER,
            "POST /api/checkout",
            0,
            420,
        )
        .error("upstream failed"),
        s(
            "gwc",
            Some("gw"),
            "api-gateway",
            CLIENT,
            "POST /orders",
            2,
            418,
        )
        .error("502"),
        s(
            "order",
            Some("gwc"),
            "order-service",
            SERVER,
            "POST /orders",
            10,
            410,
        )
        .error("payment failed")
        .skew(35),
        s(
            "payc",
            Some("order"),
            "order-service",
            CLIENT,
            "POST /payments",
            40,
            400,
        )
        .error("payment failed")
        .skew(35),
        s(
            "pay",
            Some("payc"),
            "payment-service",
            SERVER,
            "POST /payments",
            45,
            395,
        )
        .error("card declined"),
    ]
}

/// Span id of span `k` of fixture `n`.
fn span_id(n: u64, k: usize) -> String {
    format!("{:016x}", 0x5eed_0000_0000_0000 + (n << 16) + k as u64 + 1)
}

/// The OTLP/JSON resource groups of one trace starting at `t0` (Unix ns); span ids by key.
fn otlp(trace_id: &str, n: u64, t0: u64, spans: &[S], scale: f64) -> (Vec<Value>, Value) {
    let ids: Vec<(&str, String)> = spans
        .iter()
        .enumerate()
        .map(|(k, sp)| (sp.key, span_id(n, k)))
        .collect();
    let id_of = |key: &str| ids.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    let at = |ms: u64, skew: i64| {
        let t = t0 + (ms as f64 * scale) as u64 * MS;
        t.saturating_add_signed(skew * MS as i64).to_string()
    };
    let mut groups: Vec<(&str, Vec<Value>)> = Vec::new();
    for sp in spans {
        let mut span = json!({
            "traceId": trace_id,
            "spanId": id_of(sp.key).unwrap(),
            "name": sp.name,
            "kind": sp.kind,
            "startTimeUnixNano": at(sp.start, sp.skew),
            "endTimeUnixNano": at(sp.end, sp.skew),
            "attributes": sp.attrs.iter().map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})).collect::<Vec<_>>(),
            "events": sp.events.iter().map(|(name, t)| json!({"name": name, "timeUnixNano": at(*t, sp.skew)})).collect::<Vec<_>>(),
        });
        if let Some(p) = sp.parent {
            span["parentSpanId"] = json!(id_of(p).unwrap());
        }
        if let Some(msg) = sp.error {
            span["status"] = json!({"code": 2, "message": msg});
        }
        match groups.iter_mut().find(|(svc, _)| *svc == sp.service) {
            Some((_, list)) => list.push(span),
            None => groups.push((sp.service, vec![span])),
        }
    }
    let resource_spans = groups
        .into_iter()
        .map(|(svc, spans)| {
            json!({
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": svc}},
                    {"key": "host.name", "value": {"stringValue": format!("{svc}-1")}},
                ]},
                "scopeSpans": [{"scope": {"name": "stitch-ui-test", "version": "1.0"}, "spans": spans}],
            })
        })
        .collect();
    let keys: serde_json::Map<String, Value> = ids
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
    (resource_spans, Value::Object(keys))
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("ui-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/ui-artifacts");
    dir
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("STITCH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: the UI tests need Debian's chromium (`apt-get install -y chromium`; ./test.sh does it)",
        path.display()
    );
    assert!(
        ui_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in {} (./test.sh does it)",
        ui_dir().display()
    );
    path
}

/// Runs `node <script>` in `tests/ui` with `fixture` in `STITCH_FIXTURE`; panics with its output
/// when it fails or takes longer than `limit`.
fn run_node(script: &str, fixture: &Value, limit: Duration) {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(ui_dir())
        .env("STITCH_FIXTURE", fixture.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (Node.js 18 or later must be installed)");
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    println!("{out}");
    eprintln!("{err}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{script} failed ({s}):\n{out}\n{err}"),
        None => panic!("{script} did not finish within {limit:?}:\n{out}\n{err}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_shows_the_gaps_the_critical_path_and_the_service_graph() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let stitch = Stitch::start(&dir.path().join("data"), &[]);

    // Five checkouts a minute apart (scaled durations), then the failing one, all in the last
    // ten minutes so every page's default window holds them.
    let now = now_nanos();
    let mut resource_spans = Vec::new();
    let mut checkout_ids = Value::Null;
    for (n, scale) in [(0u64, 1.0), (1, 0.6), (2, 0.8), (3, 1.2), (4, 0.9)] {
        let trace_id = if n == 0 {
            CHECKOUT_TRACE.to_owned()
        } else {
            format!("{:032x}", 0x00c0_ffee_0000 + n)
        };
        let t0 = now - (7 - n) * 60_000 * MS;
        let (groups, ids) = otlp(&trace_id, n, t0, &checkout(), scale);
        resource_spans.extend(groups);
        if n == 0 {
            checkout_ids = ids;
        }
    }
    let (groups, failing_ids) = otlp(FAILING_TRACE, 9, now - 60_000 * MS, &failing(), 1.0);
    resource_spans.extend(groups);
    let body = json!({ "resourceSpans": resource_spans }).to_string();
    let resp = post(
        &stitch.otlp_http(),
        "application/json",
        None,
        body.into_bytes(),
    )
    .await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );

    let api = stitch.api();
    let found = eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let (status, body) = get_json(&format!(
                "{api}/api/traces?service=api-gateway&lookback=1h&limit=50"
            ))
            .await;
            (status == 200 && body["data"].as_array().map_or(0, Vec::len) == 6).then_some(())
        }
    })
    .await;
    assert!(found.is_some(), "the six traces are searchable");

    let fixture = json!({
        "url": api,
        "chromium": chromium,
        "artifacts": artifacts_dir(),
        "checkout": {"traceId": CHECKOUT_TRACE, "spans": checkout_ids},
        "failing": {"traceId": FAILING_TRACE, "spans": failing_ids},
    });
    run_node("e2e.mjs", &fixture, Duration::from_secs(240));
}

/// A hostile page in the user's browser (`tests/ui/attacks.mjs`): reading traces through a
/// domain rebound to 127.0.0.1, and writing a span into the Zipkin collector with a `no-cors`
/// request. Against the default configuration, and with Zipkin's lenient content type on, both
/// fail; against a Stitch told to allow those names and that origin, both work, which shows the
/// browser really made each request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_page_can_neither_read_through_a_rebound_domain_nor_write_spans() {
    let chromium = chromium();
    let cases: [(&str, &str, &[&str], bool); 3] = [
        ("defaults", "", &[], true),
        (
            "zipkin-lenient",
            "zipkin:\n  accept_missing_content_type: true\n",
            &[],
            true,
        ),
        (
            "allowed",
            "zipkin:\n  accept_missing_content_type: true\n",
            &[
                "--allowed-host",
                "rebind.test",
                "--allowed-origin",
                "http://attacker.test:8123",
            ],
            false,
        ),
    ];
    for (n, (name, config, flags, blocked)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("stitch.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut args = vec!["--config", config_path.to_str().unwrap()];
        args.extend_from_slice(flags);
        let stitch = Stitch::start(&dir.path().join("data"), &args);
        let service = format!("secret-service-{name}");
        let now = now_nanos();
        let body = json!({ "resourceSpans": [{
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": service } }] },
            "scopeSpans": [{ "spans": [{
                "traceId": format!("{:032x}", 0x5ec2_e700 + n), "spanId": "00000000000000a1", "name": "GET /",
                "startTimeUnixNano": (now - 5 * MS).to_string(), "endTimeUnixNano": now.to_string(),
            }] }],
        }] });
        let resp = post(
            &stitch.otlp_http(),
            "application/json",
            None,
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(resp.status().as_u16(), 200, "{name}");
        let marker = format!("{:032x}", 0xf0_2ed0 + n);
        let host_port = |url: String| url.trim_start_matches("http://").to_owned();
        run_node(
            "attacks.mjs",
            &json!({
                "chromium": chromium,
                "query": host_port(stitch.api()),
                "zipkin": host_port(stitch.zipkin()),
                "service": service,
                "expectBlocked": blocked,
                "marker": marker,
            }),
            Duration::from_secs(120),
        );
        // Whatever the page was told, the span is stored only where writes were allowed.
        let stored = eventually(Duration::from_secs(if blocked { 1 } else { 10 }), || {
            let api = stitch.api();
            let marker = marker.clone();
            async move { common::fetch_trace(&api, &marker).await }
        })
        .await;
        assert_eq!(stored.is_some(), !blocked, "{name}: forged span stored");
    }
}
