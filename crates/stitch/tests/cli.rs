//! `stitch trace`, `stitch search` and `stitch analyze` against a running server.

mod common;

use common::{Stitch, get_json, hex_of, service_spans, stitch};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

const TRACE_ID: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];

/// The checkout trace from the seed article: 2,400 ms, payment 1,800 ms (fraud check 1,200 ms
/// failing), starting a minute ago.
fn checkout_trace() -> ExportTraceServiceRequest {
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 60_000_000_000;
    let ms = 1_000_000u64;
    let span = |id: u8, parent: Option<u8>, name: &str, start: u64, dur: u64, error: bool| Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent
            .map(|p| vec![0, 0, 0, 0, 0, 0, 0, p])
            .unwrap_or_default(),
        name: name.into(),
        kind: if parent.is_none() { 2 } else { 3 },
        start_time_unix_nano: t0 + start * ms,
        end_time_unix_nano: t0 + (start + dur) * ms,
        status: error.then(|| Status {
            code: 2,
            message: "timeout".into(),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            service_spans(
                "api-gateway",
                vec![span(1, None, "POST /checkout", 0, 2400, false)],
            ),
            service_spans(
                "auth",
                vec![span(2, Some(1), "validate token", 5, 45, false)],
            ),
            service_spans("cart", vec![span(3, Some(1), "get cart", 55, 180, false)]),
            service_spans(
                "payment",
                vec![
                    span(4, Some(1), "charge card", 240, 1800, false),
                    span(5, Some(4), "fraud check", 245, 1200, true),
                    span(6, Some(4), "payment gateway API", 1455, 580, false),
                ],
            ),
            service_spans(
                "inventory",
                vec![span(7, Some(1), "reserve items", 2060, 320, false)],
            ),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_and_search_commands_show_the_stored_trace() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    server.export(&checkout_trace()).await;
    let api = server.api();
    let id = hex_of(&TRACE_ID);

    let (ok, out, err) = tokio::task::spawn_blocking({
        let (api, id) = (api.clone(), id.clone());
        move || {
            stitch(&[
                "trace", &id, "--server", &api, "--width", "80", "--color", "never",
            ])
        }
    })
    .await
    .unwrap();
    assert!(ok, "stitch trace failed: {err}");
    assert!(out.contains(&id), "{out}");
    for name in [
        "POST /checkout",
        "validate token",
        "get cart",
        "charge card",
        "fraud check",
        "payment gateway API",
        "reserve items",
    ] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
    let fraud = out.lines().find(|l| l.contains("fraud check")).unwrap();
    assert!(fraud.contains('✗'), "the failing span is marked: {fraud}");
    assert!(fraud.trim_end().ends_with("1.20s"), "{fraud}");
    assert!(
        out.lines()
            .any(|l| l.contains("POST /checkout") && l.trim_end().ends_with("2.40s"))
    );
    for line in out.lines() {
        assert!(
            line.chars().count() <= 80,
            "line wider than 80 columns: {line:?}"
        );
    }
    assert!(
        !out.contains('\u{1b}'),
        "no colour escapes with --color never"
    );

    // The critical path is highlighted: the fraud check lies on it whole and is drawn solid;
    // the root's own time on it is a few milliseconds between children, too little for a
    // cell, so its bar is light: the children carry the path.
    assert!(fraud.contains('█') && !fraud.contains('░'), "{fraud}");
    let root = out.lines().find(|l| l.contains("POST /checkout")).unwrap();
    assert!(root.contains('░') && !root.contains('█'), "{root}");

    // Under the waterfall: the analysis, with the failing fraud check as the error's origin.
    assert!(out.contains("← the error started here"), "{out}");
    assert!(out.contains("Findings") || out.contains("finding"), "{out}");

    // The same analysis over the API.
    let (status, analysis) = get_json(&format!("{api}/api/v1/traces/{id}/analysis")).await;
    assert_eq!(status, 200, "{analysis}");
    assert_eq!(analysis["traceId"], id.as_str());
    assert_eq!(analysis["spanCount"], 7);
    assert_eq!(analysis["durationNanos"], 2_400_000_000u64);
    let findings = analysis["findings"].as_array().unwrap();
    let origin = findings
        .iter()
        .find(|f| f["kind"] == "errorOrigin")
        .unwrap_or_else(|| panic!("no error origin in {analysis}"));
    assert_eq!(
        origin["spans"][0], "0000000000000005",
        "the fraud check span"
    );
    assert!(
        origin["title"].as_str().unwrap().contains("fraud check"),
        "{origin}"
    );
    let (status, _) = get_json(&format!(
        "{api}/api/v1/traces/00000000000000000000000000000abc/analysis"
    ))
    .await;
    assert_eq!(status, 404);

    let (ok, wide, _) = tokio::task::spawn_blocking({
        let (api, id) = (api.clone(), id.clone());
        move || {
            stitch(&[
                "trace", &id, "--server", &api, "--width", "200", "--color", "never",
            ])
        }
    })
    .await
    .unwrap();
    assert!(ok);
    assert!(wide.lines().all(|l| l.chars().count() <= 200));
    assert!(
        wide.lines().any(|l| l.chars().count() > 120),
        "wide output uses the width"
    );

    let (ok, listed, err) = tokio::task::spawn_blocking({
        let api = api.clone();
        move || {
            stitch(&[
                "search",
                "--service",
                "payment",
                "--min-duration",
                "1s",
                "--server",
                &api,
            ])
        }
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let row = listed
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("2.40s"), "{row}");
    assert!(row.contains("api-gateway: POST /checkout"), "{row}");
    assert!(row.contains(" 7 "), "span count: {row}");

    let (ok, none, _) = tokio::task::spawn_blocking({
        let api = api.clone();
        move || {
            stitch(&[
                "search",
                "--service",
                "payment",
                "--min-duration",
                "3s",
                "--server",
                &api,
            ])
        }
    })
    .await
    .unwrap();
    assert!(ok);
    assert_eq!(none.trim(), "no traces matched");

    let (ok, _, err) = tokio::task::spawn_blocking({
        let api = api.clone();
        move || {
            stitch(&[
                "trace",
                "0123456789abcdef0123456789abcdef",
                "--server",
                &api,
            ])
        }
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");

    // A server whose host clock runs 3 s behind its caller's: the waterfall draws it inside
    // its client span, as the analysis sees it, and says so.
    let t0 = ago(30);
    let ms = 1_000_000u64;
    let span = |id: u8, parent: Option<u8>, name: &str, kind: i32, start: u64, end: u64| {
        numbered_span([0x5c, 0x5c], 1, id, parent, name, kind, start, end)
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            service_spans(
                "web",
                vec![
                    span(1, None, "GET /home", 2, t0, t0 + 100 * ms),
                    span(2, Some(1), "GET /profile", 3, t0 + 10 * ms, t0 + 90 * ms),
                ],
            ),
            service_spans(
                "profile",
                vec![span(
                    3,
                    Some(2),
                    "GET /profile",
                    2,
                    t0 - 2_980 * ms,
                    t0 - 2_910 * ms,
                )],
            ),
        ],
    };
    let skewed = hex_of(&request.resource_spans[0].scope_spans[0].spans[0].trace_id);
    server.export(&request).await;
    let (ok, out, err) = tokio::task::spawn_blocking({
        let (api, id) = (api.clone(), skewed);
        move || stitch(&["trace", &id, "--server", &api, "--width", "80"])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("1 span(s) shifted for clock skew between hosts"),
        "{out}"
    );
    // The whole trace is the 100 ms of its root, not 3 s.
    let root = out.lines().find(|l| l.contains("GET /home")).unwrap();
    assert!(root.trim_end().ends_with("100ms"), "{out}");
    let header = out.lines().next().unwrap();
    assert!(header.contains(" · 100ms · 3 spans"), "{header}");

    let (ok, _, err) =
        tokio::task::spawn_blocking(move || stitch(&["trace", "xyz", "--server", &api]))
            .await
            .unwrap();
    assert!(!ok);
    assert!(err.contains("is not a trace id"), "{err}");
}

/// Unix nanoseconds `seconds` ago.
fn ago(seconds: u64) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - seconds * 1_000_000_000
}

/// Span `id` of request `n` in a numbered family of traces (`family` tells families apart):
/// the trace id ends in `n`, span ids in `(n, id)`. Kinds: 1 INTERNAL, 2 SERVER, 3 CLIENT.
#[allow(clippy::too_many_arguments)]
fn numbered_span(
    family: [u8; 2],
    n: u8,
    id: u8,
    parent: Option<u8>,
    name: &str,
    kind: i32,
    start: u64,
    end: u64,
) -> Span {
    let mut trace_id = vec![0u8; 16];
    trace_id[..2].copy_from_slice(&family);
    trace_id[15] = n;
    Span {
        trace_id,
        span_id: vec![0, 0, 0, 0, 0, 0, n, id],
        parent_span_id: parent
            .map(|p| vec![0, 0, 0, 0, 0, 0, n, p])
            .unwrap_or_default(),
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        ..Default::default()
    }
}

/// One resource per service, in the order given.
fn per_service(by_service: Vec<(&str, Vec<Span>)>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(name, spans)| service_spans(name, spans))
            .collect(),
    }
}

/// A server with `request` stored, and its API address.
async fn serving(dir: &std::path::Path, request: ExportTraceServiceRequest) -> (Stitch, String) {
    let server = Stitch::start(&dir.join("data"), &[]);
    server.export(&request).await;
    let api = server.api();
    (server, api)
}

/// `count` checkouts of gateway `POST /checkout`, starting two minutes ago, one every 100 ms:
/// auth 15 ms, then payment and inventory in turn, 5 ms of the gateway's own at each end.
/// The checkouts numbered in `slow` spend 1,200 ms more in payment.
fn checkouts(count: u8, slow: &[u8]) -> ExportTraceServiceRequest {
    let t0 = ago(120);
    let ms = 1_000_000u64;
    let mut by_service: Vec<(&str, Vec<Span>)> = ["gateway", "auth", "payment", "inventory"]
        .into_iter()
        .map(|s| (s, Vec::new()))
        .collect();
    for n in 1..=count {
        let start = t0 + u64::from(n) * 100 * ms;
        let payment = if slow.contains(&n) { 1_300 } else { 100 };
        let span = |id: u8, parent: Option<u8>, name: &str, from: u64, to: u64| {
            let kind = if parent.is_none() { 2 } else { 1 };
            let (from, to) = (start + from * ms, start + to * ms);
            numbered_span([0xca, 0xfe], n, id, parent, name, kind, from, to)
        };
        let pay_end = 20 + payment;
        let inv_end = pay_end + 30;
        by_service[0]
            .1
            .push(span(1, None, "POST /checkout", 0, inv_end + 5));
        by_service[1]
            .1
            .push(span(2, Some(1), "validate token", 5, 20));
        by_service[2]
            .1
            .push(span(3, Some(1), "charge card", 20, pay_end));
        by_service[3]
            .1
            .push(span(4, Some(1), "reserve items", pay_end, inv_end));
    }
    per_service(by_service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_cohort_and_breakdown_name_where_the_time_of_an_endpoint_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api) = serving(dir.path(), checkouts(100, &[37, 81])).await;
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            stitch(&args)
        })
    };
    let endpoint_args = |what: &str| -> Vec<String> {
        [
            "analyze",
            what,
            "--service",
            "gateway",
            "--operation",
            "POST /checkout",
            "--since",
            "1h",
            "--server",
            &api,
        ]
        .map(String::from)
        .to_vec()
    };

    let (ok, out, err) = run(endpoint_args("--cohort")).await.unwrap();
    assert!(ok, "stitch analyze --cohort failed: {err}");
    assert!(
        out.contains("Cohort diff of gateway POST /checkout"),
        "{out}"
    );
    assert!(out.contains("100 traces of the endpoint"), "{out}");
    // The first row of the first table is payment, 1.20 s slower in a slow trace.
    let first = out
        .lines()
        .skip_while(|l| !l.starts_with("By service"))
        .nth(2)
        .unwrap_or_else(|| panic!("no service table:\n{out}"));
    let cells: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(
        cells,
        ["payment", "100ms", "1.30s", "+1.20s", "100%"],
        "{out}"
    );
    assert!(out.contains("By operation"), "{out}");
    assert!(out.contains("charge card"), "{out}");

    let (ok, out, err) = run(endpoint_args("--breakdown")).await.unwrap();
    assert!(ok, "stitch analyze --breakdown failed: {err}");
    // payment: (98 × 100 + 2 × 1,300) / (98 × 155 + 2 × 1,355) = 69.3%, 124 ms per trace.
    let payment = out
        .lines()
        .find(|l| l.trim_start().starts_with("payment "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        payment.contains("69.3%") && payment.contains("124ms"),
        "{payment}"
    );

    let mut json_args = endpoint_args("--cohort");
    json_args.push("--json".into());
    let (ok, out, err) = run(json_args).await.unwrap();
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(json["tracesUsed"], 100);
    assert_eq!(json["cohort"]["byService"][0]["service"], "payment");
    assert_eq!(
        json["cohort"]["byService"][0]["deltaNanos"],
        1_200_000_000u64
    );

    // An endpoint is required; a bad --since is named.
    let (ok, _, err) = run(["analyze", "--cohort", "--server", &api]
        .map(String::from)
        .to_vec())
    .await
    .unwrap();
    assert!(!ok);
    assert!(err.contains("--service"), "{err}");
    let mut bad = endpoint_args("--breakdown");
    bad[7] = "soon".into();
    let (ok, _, err) = run(bad).await.unwrap();
    assert!(!ok);
    assert!(err.contains("--since"), "{err}");
}

/// `count` requests down a chain: web → orders → payment → an uninstrumented bank (a CLIENT
/// span naming `peer.service`), each service's spans in its own resource.
fn chain(count: u8) -> ExportTraceServiceRequest {
    let t0 = ago(60);
    let ms = 1_000_000u64;
    let mut by_service: Vec<(&str, Vec<Span>)> = ["web", "orders", "payment"]
        .into_iter()
        .map(|s| (s, Vec::new()))
        .collect();
    for n in 1..=count {
        let start = t0 + u64::from(n) * 50 * ms;
        let span = |id: u8, parent: Option<u8>, name: &str, kind: i32, from: u64, to: u64| {
            let (from, to) = (start + from * ms, start + to * ms);
            numbered_span([0xde, 0xe9], n, id, parent, name, kind, from, to)
        };
        by_service[0].1.push(span(1, None, "GET /order", 2, 0, 40));
        by_service[1]
            .1
            .push(span(2, Some(1), "GET /order", 2, 2, 38));
        by_service[2]
            .1
            .push(span(3, Some(2), "POST /charge", 2, 5, 35));
        let mut bank = span(4, Some(3), "POST /v1/charges", 3, 8, 30);
        bank.attributes.push(KeyValue {
            key: "peer.service".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("bank".into())),
            }),
            ..Default::default()
        });
        by_service[2].1.push(bank);
    }
    per_service(by_service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_dependencies_walks_a_services_deep_dependencies_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api) = serving(dir.path(), chain(20)).await;

    let (status, json) = get_json(&format!(
        "{api}/api/v1/services/orders/dependencies?lookback=1h"
    ))
    .await;
    assert_eq!(status, 200, "{json}");
    let walk = |key: &str| -> Vec<(String, u64, String)> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["service"].as_str().unwrap().to_owned(),
                    d["depth"].as_u64().unwrap(),
                    d["via"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let own = |s: &str, d: u64, v: &str| (s.to_owned(), d, v.to_owned());
    assert_eq!(
        walk("dependsOn"),
        [own("payment", 1, "orders"), own("bank", 2, "payment")]
    );
    assert_eq!(walk("dependents"), [own("web", 1, "orders")]);
    let edge = |p: &str, c: &str| {
        json["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["parent"] == p && e["child"] == c)
            .map(|e| e["callCount"].as_f64().unwrap())
    };
    assert_eq!(edge("orders", "payment"), Some(20.0), "{json}");
    assert_eq!(edge("payment", "bank"), Some(20.0), "{json}");
    assert_eq!(edge("web", "orders"), Some(20.0), "{json}");

    // Bad input is named: a window that is not a duration, a trace id that is not one.
    let (status, json) = get_json(&format!(
        "{api}/api/v1/services/orders/dependencies?lookback=soon"
    ))
    .await;
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lookback"),
        "{json}"
    );
    let (status, json) = get_json(&format!("{api}/api/v1/traces/xyz/broken-propagation")).await;
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid trace id"),
        "{json}"
    );

    // The last service of the chain has no dependencies; everything upstream depends on it.
    let (_, json) = get_json(&format!("{api}/api/v1/services/bank/dependencies")).await;
    assert_eq!(json["dependsOn"], serde_json::json!([]));
    let names: Vec<&str> = json["dependents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["payment", "orders", "web"]);

    let server_arg = api.clone();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        stitch(&[
            "analyze",
            "--dependencies",
            "orders",
            "--since",
            "1h",
            "--server",
            &server_arg,
        ])
    })
    .await
    .unwrap();
    assert!(ok, "stitch analyze --dependencies failed: {err}");
    assert!(out.contains("orders depends on 2 service(s)"), "{out}");
    assert!(
        out.contains("orders is depended on by 1 service(s)"),
        "{out}"
    );
    let bank = out
        .lines()
        .find(|l| l.contains(" bank "))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = bank.split_whitespace().collect();
    assert_eq!(cells, ["2", "bank", "payment", "20"], "{out}");
}
