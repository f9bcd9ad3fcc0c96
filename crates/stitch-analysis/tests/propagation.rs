mod across;

use std::collections::HashMap;

use across::{MS, Rng, S, SEC, T0, assemble};
use stitch_analysis::{LikelyCause, PropagationOptions, find_broken_propagation};
use stitch_model::{SpanKind, Trace, TraceId};

/// Where the context gets lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Service #7's HTTP client strips `traceparent` from every call it makes (seed 000).
    ClientOf7Strips,
    /// Service #7 does not read the context of the calls it receives.
    ServerOf7Ignores,
}

/// Generates checkout traffic through seed 000's twelve services.
struct Fleet {
    rng: Rng,
    next_id: u64,
    spans: Vec<S>,
    /// (caller trace, callee trace) for every call whose context was stripped.
    split: Vec<(TraceId, TraceId)>,
}

impl Fleet {
    fn new(seed: u64) -> Fleet {
        Fleet {
            rng: Rng::new(seed),
            next_id: 0,
            spans: Vec::new(),
            split: Vec::new(),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A client span in `caller` and the server span it causes in `callee`, for `op`
    /// (method, route, path), from `at.0` to `at.1`, with 0.2 to 1.5 ms of network each way.
    /// With `strip`, the header does not arrive: the callee starts a new trace. Returns the
    /// server span's id and trace id.
    fn call(
        &mut self,
        (trace, parent): (TraceId, u64),
        (caller, callee): (&str, &str),
        (method, route, path): (&str, &str, &str),
        (start, end): (u64, u64),
        strip: bool,
    ) -> (TraceId, u64) {
        let client = self.id();
        let host = format!("{callee}.prod.svc.cluster.local");
        self.spans.push(
            S::new(
                caller,
                trace,
                client,
                Some(parent),
                method,
                SpanKind::Client,
                start,
                end,
            )
            .http_client(method, &host, path),
        );
        let (callee_trace, callee_parent) = if strip {
            let fresh = self.rng.trace_id();
            self.split.push((trace, fresh));
            (fresh, None)
        } else {
            (trace, Some(client))
        };
        let server = self.id();
        let there = self.rng.range(200, 1500) * 1000;
        let back = self.rng.range(200, 1500) * 1000;
        let name = format!("{method} {route}");
        self.spans.push(
            S::new(
                callee,
                callee_trace,
                server,
                callee_parent,
                &name,
                SpanKind::Server,
                start + there,
                end - back,
            )
            .http_server(method, route, path),
        );
        (callee_trace, server)
    }

    /// One checkout request starting at `b`. Service #7 is `legacy-billing`.
    fn checkout(&mut self, b: u64, fault: Fault) {
        let ms = |n: u64| b + n * MS;
        let t = self.rng.trace_id();
        let g = self.id();
        self.spans.push(
            S::new(
                "gateway",
                t,
                g,
                None,
                "POST /checkout",
                SpanKind::Server,
                b,
                ms(345),
            )
            .http_server("POST", "/checkout", "/checkout"),
        );
        let gw = (t, g);
        let post = |path: &'static str| ("POST", path, path);
        self.call(
            gw,
            ("gateway", "auth"),
            post("/verify"),
            (ms(2), ms(20)),
            false,
        );
        let orders = self.call(
            gw,
            ("gateway", "orders"),
            post("/orders"),
            (ms(22), ms(340)),
            false,
        );
        let db = self.id();
        self.spans.push(
            S::new(
                "orders",
                t,
                db,
                Some(orders.1),
                "SELECT orders",
                SpanKind::Client,
                ms(25),
                ms(29),
            )
            .attr("db.system", "postgresql")
            .attr("server.address", "orders-db"),
        );
        let stock = ("GET", "/stock/{sku}", "/stock/42");
        self.call(
            orders,
            ("orders", "inventory"),
            stock,
            (ms(30), ms(120)),
            false,
        );
        let prices = ("GET", "/prices/{sku}", "/prices/42");
        self.call(
            orders,
            ("orders", "pricing"),
            prices,
            (ms(122), ms(192)),
            false,
        );
        let payments = self.call(
            orders,
            ("orders", "payments"),
            post("/charge"),
            (ms(195), ms(325)),
            false,
        );
        let fraud = self.call(
            payments,
            ("payments", "fraud"),
            post("/score"),
            (ms(200), ms(230)),
            false,
        );
        let ext = self.id();
        self.spans.push(
            S::new(
                "fraud",
                t,
                ext,
                Some(fraud.1),
                "POST",
                SpanKind::Client,
                ms(204),
                ms(226),
            )
            .http_client("POST", "api.fraudscore.example.com", "/v2/score"),
        );
        let ignores = fault == Fault::ServerOf7Ignores;
        let billing = self.call(
            payments,
            ("payments", "legacy-billing"),
            post("/invoice"),
            (ms(232), ms(320)),
            ignores,
        );
        // Service #7's own calls take as long as they take: 8 to 40 ms, then 8 to 30 ms.
        let strips = fault == Fault::ClientOf7Strips;
        let (start, end) = (ms(236), ms(236) + self.rng.range(8_000, 40_000) * 1000);
        let ledger = self.call(
            billing,
            ("legacy-billing", "ledger"),
            post("/entries"),
            (start, end),
            strips,
        );
        self.call(
            ledger,
            ("ledger", "audit"),
            post("/audit"),
            (start + 3 * MS, end - 3 * MS),
            false,
        );
        let (start, end) = (
            end + 4 * MS,
            end + 4 * MS + self.rng.range(8_000, 30_000) * 1000,
        );
        let notify = self.call(
            billing,
            ("legacy-billing", "notifications"),
            post("/notify"),
            (start, end),
            strips,
        );
        self.call(
            notify,
            ("notifications", "analytics"),
            post("/events"),
            (start + 2 * MS, end - 2 * MS),
            false,
        );
        // Orders also notifies directly, with context intact.
        self.call(
            orders,
            ("orders", "notifications"),
            post("/notify"),
            (ms(326), ms(334)),
            false,
        );
    }

    /// `n` overlapping checkouts, one every ~7 ms.
    fn traffic(seed: u64, n: u64, fault: Fault) -> (Vec<Trace>, Vec<(TraceId, TraceId)>) {
        Fleet::traffic_every(seed, n, 7 * MS, fault)
    }

    /// `n` overlapping checkouts, one every `interval` (plus up to 1 ms of jitter).
    fn traffic_every(
        seed: u64,
        n: u64,
        interval: u64,
        fault: Fault,
    ) -> (Vec<Trace>, Vec<(TraceId, TraceId)>) {
        let mut fleet = Fleet::new(seed);
        for r in 0..n {
            let jitter = fleet.rng.range(0, MS);
            fleet.checkout(T0 + r * interval + jitter, fault);
        }
        (assemble(fleet.spans), fleet.split)
    }
}

#[test]
fn the_service_that_strips_traceparent_is_found_and_named_with_both_fragments() {
    let (traces, split) = Fleet::traffic(7, 200, Fault::ClientOf7Strips);
    let services: std::collections::BTreeSet<String> = traces
        .iter()
        .flat_map(|t| t.spans().map(|s| s.service_name().to_owned()))
        .collect();
    assert_eq!(services.len(), 12, "{services:?}");
    // Every checkout split: 200 gateway traces plus 2 × 200 fragments.
    assert_eq!(traces.len(), 600);

    let hops = find_broken_propagation(&traces, &PropagationOptions::default());
    assert_eq!(hops.len(), 2, "{hops:#?}");
    for hop in &hops {
        assert_eq!(hop.caller_service, "legacy-billing");
        assert_eq!(hop.cause, LikelyCause::HeaderStripped);
        assert_eq!(hop.occurrences, 200);
        assert_eq!(hop.examples.len(), 5);
    }
    let to_notifications = hops
        .iter()
        .find(|h| h.callee_service == "notifications")
        .unwrap();
    assert_eq!(to_notifications.caller_operation, "POST");
    assert_eq!(to_notifications.callee_operation, "POST /notify");
    // Notifications joins the traces of its other caller (orders); legacy-billing never keeps
    // context on any call: the evidence points at service #7.
    assert_eq!(
        to_notifications.blamed_service.as_deref(),
        Some("legacy-billing")
    );
    assert!(
        to_notifications
            .message
            .contains("legacy-billing is the service that breaks the trace"),
        "{}",
        to_notifications.message
    );
    assert!(to_notifications.message.contains("traceparent"));
    // Ledger has no other caller, but legacy-billing loses the context on every call it
    // makes, to two services: it is still the common factor.
    let to_ledger = hops.iter().find(|h| h.callee_service == "ledger").unwrap();
    assert_eq!(to_ledger.callee_operation, "POST /entries");
    assert_eq!(to_ledger.blamed_service.as_deref(), Some("legacy-billing"));
    assert!(to_ledger.evidence.contains(
        &"legacy-billing loses the context on its calls to 2 different services".to_owned()
    ));
    assert!(
        to_ledger
            .evidence
            .iter()
            .any(|e| e == "none of legacy-billing's calls in these traces kept the trace context"),
        "{:?}",
        to_ledger.evidence
    );

    // The examples pair the right fragments.
    let truth: HashMap<String, String> = split
        .iter()
        .map(|(caller, callee)| (callee.to_hex(), caller.to_hex()))
        .collect();
    for hop in &hops {
        for ex in &hop.examples {
            assert_eq!(truth.get(&ex.callee_trace_id), Some(&ex.caller_trace_id));
            assert_eq!(ex.callee_parent_span_id, None);
        }
    }
}

#[test]
fn under_heavy_concurrent_traffic_fragments_are_still_paired_with_the_right_caller() {
    // A checkout every millisecond: some 300 in flight at once, dozens of candidate callees
    // for every stripped call.
    let (traces, split) = Fleet::traffic_every(21, 1000, MS, Fault::ClientOf7Strips);
    let opts = PropagationOptions {
        max_examples: usize::MAX,
        ..Default::default()
    };
    let hops = find_broken_propagation(&traces, &opts);
    assert_eq!(hops.len(), 2, "{hops:#?}");
    let truth: HashMap<String, String> = split
        .iter()
        .map(|(caller, callee)| (callee.to_hex(), caller.to_hex()))
        .collect();
    for hop in &hops {
        assert_eq!(hop.occurrences, 1000);
        let right = hop
            .examples
            .iter()
            .filter(|ex| truth.get(&ex.callee_trace_id) == Some(&ex.caller_trace_id))
            .count();
        assert!(
            right >= 950,
            "{} → {}: {right} of 1000 paired right",
            hop.caller_service,
            hop.callee_service
        );
    }
}

#[test]
fn a_service_that_does_not_read_the_header_is_named_as_the_callee_of_the_broken_hop() {
    let (traces, split) = Fleet::traffic(8, 100, Fault::ServerOf7Ignores);
    assert_eq!(split.len(), 100);
    let hops = find_broken_propagation(&traces, &PropagationOptions::default());
    assert_eq!(hops.len(), 1, "{hops:#?}");
    let hop = &hops[0];
    assert_eq!(
        (hop.caller_service.as_str(), hop.callee_service.as_str()),
        ("payments", "legacy-billing")
    );
    assert_eq!(hop.callee_operation, "POST /invoice");
    assert_eq!(hop.cause, LikelyCause::HeaderStripped);
    assert_eq!(hop.occurrences, 100);
    // Payments keeps the context on its call to fraud; legacy-billing never joins a trace.
    assert_eq!(hop.blamed_service.as_deref(), Some("legacy-billing"));
    assert!(
        hop.message
            .contains("legacy-billing probably does not extract the context"),
        "{}",
        hop.message
    );
}

#[test]
fn a_clean_set_of_traces_yields_no_broken_hop() {
    let (traces, split) = Fleet::traffic(11, 200, Fault::None);
    assert!(split.is_empty());
    assert_eq!(traces.len(), 200);
    // Database calls and the external fraud API have no server span either; they are not
    // broken hops.
    assert!(find_broken_propagation(&traces, &PropagationOptions::default()).is_empty());
}

#[test]
fn a_trace_id_truncated_to_64_bits_is_recognised_by_the_parent_span_id() {
    let mut rng = Rng::new(64);
    let mut spans = Vec::new();
    let mut id = 0u64;
    for r in 0..50u64 {
        let b = T0 + r * 40 * MS;
        let t = rng.trace_id();
        let (_, low) = t.halves();
        let truncated = TraceId::from_halves(0, low);
        let (root, client, server) = (id + 1, id + 2, id + 3);
        id += 3;
        spans.push(S::new(
            "storefront",
            t,
            root,
            None,
            "GET /product",
            SpanKind::Server,
            b,
            b + 30 * MS,
        ));
        spans.push(
            S::new(
                "storefront",
                t,
                client,
                Some(root),
                "GET",
                SpanKind::Client,
                b + 5 * MS,
                b + 25 * MS,
            )
            .http_client("GET", "catalog", "/items/7"),
        );
        spans.push(
            S::new(
                "catalog",
                truncated,
                server,
                Some(client),
                "GET /items/{id}",
                SpanKind::Server,
                b + 6 * MS,
                b + 24 * MS,
            )
            .http_server("GET", "/items/{id}", "/items/7"),
        );
    }
    let traces = assemble(spans);
    assert_eq!(traces.len(), 100);
    let hops = find_broken_propagation(&traces, &PropagationOptions::default());
    assert_eq!(hops.len(), 1, "{hops:#?}");
    let hop = &hops[0];
    assert_eq!(
        (hop.caller_service.as_str(), hop.callee_service.as_str()),
        ("storefront", "catalog")
    );
    assert_eq!(hop.cause, LikelyCause::Truncated64BitTraceId);
    assert_eq!(hop.occurrences, 50);
    assert_eq!(hop.blamed_service.as_deref(), Some("catalog"));
    let ex = &hop.examples[0];
    assert!(ex.callee_trace_id.starts_with("0000000000000000"));
    assert_eq!(ex.callee_trace_id[16..], ex.caller_trace_id[16..]);
    assert_eq!(ex.callee_parent_span_id.as_ref(), Some(&ex.caller_span_id));
    assert!(hop.message.contains("low 64 bits"), "{}", hop.message);
}

/// `n` calls web → search at 50 ms intervals; the callee's root has no parent and is
/// decorated by `callee`.
fn web_to_search(n: u64, callee: impl Fn(S) -> S) -> Vec<Trace> {
    let mut rng = Rng::new(3);
    let mut spans = Vec::new();
    for r in 0..n {
        let b = T0 + r * 50 * MS;
        let (t, fresh) = (rng.trace_id(), rng.trace_id());
        let id = r * 10;
        spans.push(S::new(
            "web",
            t,
            id + 1,
            None,
            "GET /",
            SpanKind::Server,
            b,
            b + 40 * MS,
        ));
        spans.push(
            S::new(
                "web",
                t,
                id + 2,
                Some(id + 1),
                "GET",
                SpanKind::Client,
                b + 5 * MS,
                b + 35 * MS,
            )
            .http_client("GET", "search", "/q"),
        );
        spans.push(callee(
            S::new(
                "search",
                fresh,
                id + 3,
                None,
                "GET /q",
                SpanKind::Server,
                b + 7 * MS,
                b + 33 * MS,
            )
            .http_server("GET", "/q", "/q"),
        ));
    }
    assemble(spans)
}

#[test]
fn a_b3_header_reaching_a_w3c_callee_is_reported_as_a_format_mismatch_with_its_caveat() {
    let traces = web_to_search(20, |s| {
        s.attr("http.request.header.b3", "80f198ee-e457b5a2-1")
    });
    let hops = find_broken_propagation(&traces, &PropagationOptions::default());
    assert_eq!(hops.len(), 1, "{hops:#?}");
    assert_eq!(hops[0].cause, LikelyCause::FormatMismatch);
    assert_eq!(hops[0].occurrences, 20);
    // The callee recorded the B3 header it received: that is observed, not inferred.
    assert_eq!(hops[0].blamed_service.as_deref(), Some("search"));
    assert!(
        hops[0]
            .message
            .contains("with a B3 header (search recorded it)")
    );
    assert!(
        hops[0]
            .evidence
            .iter()
            .any(|e| e.contains("`b3` request header"))
    );

    // With only the tracers to go by, the message says it is an inference.
    let zipkin_callee = web_to_search(20, |s| s.scope("brave.spring"));
    let hops = find_broken_propagation(&zipkin_callee, &PropagationOptions::default());
    assert_eq!(hops[0].cause, LikelyCause::FormatMismatch);
    assert_eq!(hops[0].blamed_service, None);
    assert!(hops[0].message.contains("not from the headers on the wire"));
    assert!(hops[0].evidence.iter().any(|e| e.contains("brave")));

    // Without any format marker the same split is a stripped header, and nobody is blamed:
    // neither side shows a working hop.
    let plain = web_to_search(20, |s| s);
    let hops = find_broken_propagation(&plain, &PropagationOptions::default());
    assert_eq!(hops[0].cause, LikelyCause::HeaderStripped);
    assert_eq!(hops[0].blamed_service, None);
    assert!(
        hops[0].message.contains("cannot tell"),
        "{}",
        hops[0].message
    );
}

#[test]
fn a_parent_id_nobody_stored_means_an_unexported_hop_or_a_late_export() {
    // api's client → (a proxy that exports nothing, span 900+r) → backend, same trace id.
    let mut rng = Rng::new(5);
    let mut spans = Vec::new();
    for r in 0..10u64 {
        let b = T0 + r * 100 * MS;
        let t = rng.trace_id();
        let id = r * 10;
        spans.push(S::new(
            "api",
            t,
            id + 1,
            None,
            "GET /a",
            SpanKind::Server,
            b,
            b + 50 * MS,
        ));
        spans.push(
            S::new(
                "api",
                t,
                id + 2,
                Some(id + 1),
                "GET",
                SpanKind::Client,
                b + 5 * MS,
                b + 45 * MS,
            )
            .http_client("GET", "backend", "/b"),
        );
        spans.push(
            S::new(
                "backend",
                t,
                id + 3,
                Some(900 + r),
                "GET /b",
                SpanKind::Server,
                b + 8 * MS,
                b + 42 * MS,
            )
            .http_server("GET", "/b", "/b"),
        );
    }
    let traces = assemble(spans);
    let hops = find_broken_propagation(&traces, &PropagationOptions::default());
    assert_eq!(hops.len(), 1, "{hops:#?}");
    assert_eq!(hops[0].cause, LikelyCause::UnexportedParent);
    assert_eq!(hops[0].caller_operation, "GET");
    assert_eq!(hops[0].occurrences, 10);
    assert!(hops[0].message.contains("never stored"));
    assert_eq!(
        hops[0].examples[0].caller_trace_id,
        hops[0].examples[0].callee_trace_id
    );

    // Analysed right after the calls, the parent may still be on its way.
    let recent = PropagationOptions {
        as_of_unix_nano: Some(T0 + 2 * SEC),
        ..Default::default()
    };
    let hops = find_broken_propagation(&traces, &recent);
    assert_eq!(hops[0].cause, LikelyCause::LateExport);
    assert!(hops[0].message.contains("not arrived yet"));
}

#[test]
fn a_missing_client_span_makes_the_enclosing_span_the_caller() {
    let t = TraceId::from_halves(1, 2);
    let traces = assemble(vec![
        S::new(
            "api",
            t,
            1,
            None,
            "GET /a",
            SpanKind::Server,
            T0,
            T0 + 50 * MS,
        ),
        S::new(
            "backend",
            t,
            3,
            Some(2),
            "GET /b",
            SpanKind::Server,
            T0 + 10 * MS,
            T0 + 40 * MS,
        ),
    ]);
    let hops = find_broken_propagation(&traces, &PropagationOptions::default());
    assert_eq!(hops.len(), 1);
    assert_eq!(hops[0].caller_service, "api");
    assert_eq!(hops[0].caller_operation, "GET /a");
    assert_eq!(hops[0].callee_service, "backend");
    assert_eq!(hops[0].cause, LikelyCause::UnexportedParent);
}

#[test]
fn broken_hops_serialise_with_camel_case_names() {
    let traces = web_to_search(2, |s| s);
    let hops = find_broken_propagation(&traces, &PropagationOptions::default());
    let json = serde_json::to_value(&hops[0]).unwrap();
    assert_eq!(json["callerService"], "web");
    assert_eq!(json["calleeService"], "search");
    assert_eq!(json["cause"], "headerStripped");
    assert_eq!(json["occurrences"], 2);
    assert!(json["examples"][0]["calleeTraceId"].is_string());
}

#[test]
fn one_trace_analysis_names_its_broken_hop_on_both_sides() {
    let (traces, split) = Fleet::traffic(11, 50, Fault::ClientOf7Strips);
    let (caller_id, callee_id) = split[20];
    let caller = traces.iter().find(|t| t.trace_id == caller_id).unwrap();
    let callee = traces.iter().find(|t| t.trace_id == callee_id).unwrap();

    // Focused on the caller: only its hops, its own occurrence first, and the evidence of the
    // whole window (every checkout broke on both hops).
    let focus = |id: TraceId| PropagationOptions {
        focus_trace: Some(id),
        ..PropagationOptions::default()
    };
    let hops = find_broken_propagation(&traces, &focus(caller_id));
    assert_eq!(hops.len(), 2, "{hops:#?}");
    for hop in &hops {
        assert_eq!(hop.occurrences, 50);
        assert_eq!(hop.examples[0].caller_trace_id, caller_id.to_hex());
    }
    let mut analysis = stitch_analysis::analyze(caller, &Default::default());
    analysis.add_broken_propagation(&hops);
    let broken: Vec<_> = analysis
        .findings
        .iter()
        .filter(|f| f.kind == stitch_analysis::FindingKind::BrokenPropagation)
        .collect();
    assert_eq!(broken.len(), 2, "{:#?}", analysis.findings);
    let to_callee = hops
        .iter()
        .find(|h| h.examples[0].callee_trace_id == callee_id.to_hex())
        .expect("the hop to the chosen callee fragment");
    let f = broken
        .iter()
        .find(|f| f.target.as_deref() == Some(to_callee.callee_service.as_str()))
        .unwrap();
    assert_eq!(f.service, "legacy-billing");
    assert_eq!(f.spans[0].to_hex(), to_callee.examples[0].caller_span_id);
    assert!(f.title.contains(&callee_id.to_hex()), "{}", f.title);
    assert!(
        f.title.contains("did not receive the trace context"),
        "{}",
        f.title
    );
    assert!(f.cost_nanos > 0, "the caller waited on the call: {f:?}");
    assert_eq!(f.count, Some(1), "one call of this trace broke on the hop");
    // No other finding is about the same span, and ranking still holds.
    let main = f.spans[0];
    assert_eq!(
        analysis
            .findings
            .iter()
            .filter(|g| g.spans.first() == Some(&main))
            .count(),
        1
    );
    assert!(
        analysis
            .findings
            .windows(2)
            .all(|w| w[0].cost_nanos >= w[1].cost_nanos)
    );

    // Focused on the callee fragment: one hop, and the finding names the caller's trace.
    let hops = find_broken_propagation(&traces, &focus(callee_id));
    assert_eq!(hops.len(), 1, "{hops:#?}");
    assert_eq!(hops[0].examples[0].callee_trace_id, callee_id.to_hex());
    let mut analysis = stitch_analysis::analyze(callee, &Default::default());
    analysis.add_broken_propagation(&hops);
    let f = analysis
        .findings
        .iter()
        .find(|f| f.kind == stitch_analysis::FindingKind::BrokenPropagation)
        .expect("a broken-propagation finding on the callee side");
    assert!(f.title.contains(&caller_id.to_hex()), "{}", f.title);
    assert!(f.title.starts_with("This trace is the "), "{}", f.title);
    assert_eq!(f.cost_nanos, 0);

    // In traffic where nothing breaks, a trace gets no hop and no finding of the kind.
    let (clean, _) = Fleet::traffic(11, 20, Fault::None);
    let hops = find_broken_propagation(&clean, &focus(clean[3].trace_id));
    assert!(hops.is_empty(), "{hops:#?}");
}
