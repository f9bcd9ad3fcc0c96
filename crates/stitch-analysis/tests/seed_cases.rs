//! The case studies of the seed articles as traces with the articles' timings, and the
//! findings Stitch must produce for them. Where an article gives only durations, the offsets
//! are chosen to be consistent with its story (calls back to back, gaps where it says so).

mod pertrace;

use pertrace::{Builder, MS, T0, id, ms, of_kind, summary, titles};
use stitch_analysis::{
    AnalysisOptions, FindingKind, SpanTree, TraceAnalysis, WaterfallOptions, analyze,
    findings_text, trace_stats, waterfall,
};
use stitch_model::{SpanKind, Trace};

use FindingKind::*;
use SpanKind::{Client, Internal, Server};

fn run(trace: &Trace) -> TraceAnalysis {
    analyze(trace, &AnalysisOptions::default())
}

// ----- seed 000: the 3-second checkout --------------------------------------------------------

/// Seed 000's checkout: gateway → order service (15 ms of network between them); the order
/// service works 80 ms, calls inventory (90 ms; three database round trips of 45 ms in all)
/// and then pricing (70 ms), spends 400 ms writing a log synchronously between "inventory
/// check complete" and "payment initiated", then calls payment. Payment works 120 ms in all,
/// waits 800 ms on the external payment provider, then calls notification (200 ms) and
/// analytics (150 ms) synchronously before answering.
///
/// The article's 3.2 s is what the user measured; the spans it describes add up to 1.94 s
/// from the gateway's point of view, and that is what the trace contains.
fn seed_000_checkout() -> Trace {
    let mut b = Builder::new();
    let gw = b.span("api-gateway", None, Server, "POST /api/checkout", 0, 1942);
    let gw_c = b.span("api-gateway", Some(gw), Client, "POST /orders", 1, 1941);
    let order = b.span("order-service", Some(gw_c), Server, "POST /orders", 8, 1933);
    b.event(order, "inventory check complete", 249)
        .event(order, "payment initiated", 649);
    let inv_c = b.span(
        "order-service",
        Some(order),
        Client,
        "GET /inventory/check",
        88,
        178,
    );
    b.attr(inv_c, "http.request.method", "GET");
    let inv = b.span(
        "inventory-service",
        Some(inv_c),
        Server,
        "GET /inventory/check",
        90,
        176,
    );
    let q1 = b.span(
        "inventory-service",
        Some(inv),
        Client,
        "check stock",
        100,
        112,
    );
    b.db(
        q1,
        "postgresql",
        "inventory",
        "SELECT quantity FROM stock WHERE sku = 'A-1'",
    );
    let q2 = b.span(
        "inventory-service",
        Some(inv),
        Client,
        "reserve stock",
        113,
        128,
    );
    b.db(
        q2,
        "postgresql",
        "inventory",
        "UPDATE stock SET reserved = reserved + 1 WHERE sku = 'A-1'",
    );
    let q3 = b.span(
        "inventory-service",
        Some(inv),
        Client,
        "confirm reservation",
        129,
        147,
    );
    b.db(
        q3,
        "postgresql",
        "inventory",
        "INSERT INTO reservations (sku, order_id) VALUES ('A-1', 42)",
    );
    let price_c = b.span(
        "order-service",
        Some(order),
        Client,
        "GET /prices",
        179,
        249,
    );
    b.attr(price_c, "http.request.method", "GET");
    b.span(
        "pricing-service",
        Some(price_c),
        Server,
        "GET /prices",
        181,
        247,
    );
    let pay_c = b.span(
        "order-service",
        Some(order),
        Client,
        "POST /payments",
        649,
        1923,
    );
    b.attr(pay_c, "http.request.method", "POST");
    let pay = b.span(
        "payment-service",
        Some(pay_c),
        Server,
        "POST /payments",
        651,
        1921,
    );
    let provider = b.span(
        "payment-service",
        Some(pay),
        Client,
        "POST /v1/charges",
        701,
        1501,
    );
    b.attr(provider, "peer.service", "payment-provider")
        .attr(provider, "server.address", "api.stripe.com")
        .attr(provider, "http.request.method", "POST");
    let notify_c = b.span(
        "payment-service",
        Some(pay),
        Client,
        "POST /notifications",
        1541,
        1741,
    );
    b.span(
        "notification-service",
        Some(notify_c),
        Server,
        "POST /notifications",
        1543,
        1739,
    );
    let events_c = b.span(
        "payment-service",
        Some(pay),
        Client,
        "POST /events",
        1741,
        1891,
    );
    b.span(
        "analytics-service",
        Some(events_c),
        Server,
        "POST /events",
        1743,
        1889,
    );
    b.build()
}

// Span ids of seed_000_checkout, in the order they were added.
const S0_ORDER: u64 = 3;
const S0_INV_CLIENT: u64 = 4;
const S0_Q: [u64; 3] = [6, 7, 8];
const S0_PRICE_CLIENT: u64 = 9;
const S0_PROVIDER: u64 = 13;
const S0_NOTIFY_CLIENT: u64 = 14;
const S0_EVENTS_CLIENT: u64 = 16;

#[test]
fn seed_000_checkout_findings_are_ranked_as_the_article_fixed_them() {
    let a = run(&seed_000_checkout());
    assert_eq!(
        summary(&a),
        vec![
            (DominantLeaf, 800),
            (UninstrumentedTime, 400),
            (SynchronousTail, 200),
            (SynchronousTail, 150),
            (SequentialCalls, 70),
            (RepeatedCalls, 45),
        ],
        "{}",
        titles(&a)
    );
}

#[test]
fn seed_000_inventory_then_pricing_could_run_in_parallel_and_save_70ms() {
    let a = run(&seed_000_checkout());
    let f = of_kind(&a, SequentialCalls)[0];
    assert_eq!(f.spans, vec![id(S0_INV_CLIENT), id(S0_PRICE_CLIENT)]);
    assert_eq!(f.cost_nanos, ms(70));
    assert_eq!(f.saving_nanos, Some(ms(70)));
    assert_eq!(f.service, "order-service");
    assert_eq!(f.count, Some(2));
    assert!(f.title.contains("save ~70.0ms"), "{}", f.title);
    assert!(f.title.contains("inventory-service"), "{}", f.title);
    assert!(f.title.contains("pricing-service"), "{}", f.title);
}

#[test]
fn seed_000_three_database_round_trips_could_be_one_transaction_saving_33ms() {
    let a = run(&seed_000_checkout());
    let f = of_kind(&a, RepeatedCalls)[0];
    assert_eq!(f.spans, S0_Q.map(id).to_vec());
    assert_eq!(f.cost_nanos, ms(45));
    // One round trip (the cheapest observed, 12 ms) instead of three: 45 - 12.
    assert_eq!(f.saving_nanos, Some(ms(33)));
    assert_eq!(f.count, Some(3));
    assert_eq!(f.service, "inventory-service");
    assert_eq!(f.target.as_deref(), Some("postgresql inventory"));
    assert!(f.title.contains("3 separate round trips"), "{}", f.title);
    assert!(f.title.contains("save ~33.0ms"), "{}", f.title);
}

#[test]
fn seed_000_the_400ms_log_write_is_time_no_child_span_explains() {
    let a = run(&seed_000_checkout());
    let gaps = of_kind(&a, UninstrumentedTime);
    assert_eq!(
        gaps.len(),
        1,
        "the 80 ms of order processing is under the threshold"
    );
    let f = gaps[0];
    assert_eq!(f.cost_nanos, ms(400));
    assert_eq!(f.spans, vec![id(S0_ORDER)]);
    assert_eq!(f.service, "order-service");
    assert_eq!(f.operation, "POST /orders");
    assert!(
        f.title
            .contains("between \"inventory check complete\" and \"payment initiated\""),
        "{}",
        f.title
    );
    assert!(
        f.title.starts_with(
            "order-service spent 400ms in \"POST /orders\" with no child span running"
        ),
        "{}",
        f.title
    );
}

#[test]
fn seed_000_the_800ms_payment_provider_call_is_the_widest_bar() {
    let a = run(&seed_000_checkout());
    let f = &a.findings[0];
    assert_eq!(f.kind, DominantLeaf);
    assert_eq!(f.spans, vec![id(S0_PROVIDER)]);
    assert_eq!(f.cost_nanos, ms(800));
    assert_eq!(f.saving_nanos, None, "an external call: nothing to promise");
    assert_eq!(f.target.as_deref(), Some("payment-provider"));
    assert!(f.title.contains("leaves the trace"), "{}", f.title);
}

#[test]
fn seed_000_notification_and_analytics_at_the_end_could_be_asynchronous() {
    let a = run(&seed_000_checkout());
    let tail = of_kind(&a, SynchronousTail);
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[0].spans, vec![id(S0_NOTIFY_CLIENT)]);
    assert_eq!(tail[0].saving_nanos, Some(ms(200)));
    assert_eq!(tail[0].target.as_deref(), Some("notification-service"));
    assert_eq!(tail[1].spans, vec![id(S0_EVENTS_CLIENT)]);
    assert_eq!(tail[1].saving_nanos, Some(ms(150)));
    assert_eq!(tail[1].target.as_deref(), Some("analytics-service"));
    assert_eq!(tail[0].service, "payment-service");
    // The article's fixes: async logging 400, notification 200, analytics 150,
    // parallel calls 70, one transaction 33.
    let savings: u64 = a.findings.iter().filter_map(|f| f.saving_nanos).sum();
    assert_eq!(savings, ms(200 + 150 + 70 + 33));
}

#[test]
fn seed_000_the_critical_path_covers_the_whole_request_and_every_service_on_it() {
    let trace = seed_000_checkout();
    let a = run(&trace);
    assert_eq!(a.critical_path.total_nanos, ms(1942));
    let total: u64 = a
        .critical_path
        .sections
        .iter()
        .map(|s| s.duration_nanos())
        .sum();
    assert_eq!(total, ms(1942));
    let by_span = a.critical_path.time_by_span();
    assert_eq!(by_span[&id(S0_PROVIDER)], ms(800));
    assert_eq!(by_span[&id(S0_ORDER)], ms(80 + 1 + 400 + 10));
    assert!(a.skew_adjustments.is_empty());
    let pricing = a
        .stats
        .services
        .iter()
        .find(|s| s.service == "pricing-service")
        .unwrap();
    assert_eq!(pricing.self_nanos, ms(66));
    assert_eq!(pricing.critical_path_nanos, ms(66));
    assert!((pricing.critical_path_share - 66.0 / 1942.0).abs() < 1e-9);
}

// ----- seed 001: checkout 2,400 ms, cascading failure, retries ----------------------------

/// Seed 001's annotated tree: API Gateway 2,400 → Auth 45, Cart 180 (DB 150), Payment 1,800
/// (Fraud Check 1,200, Payment Gateway API 580), Inventory 320. Each service's span sits
/// directly under the gateway, as drawn.
fn seed_001_checkout(fraud_retries: bool) -> Trace {
    let mut b = Builder::new();
    let gw = b.span("api-gateway", None, Server, "POST /checkout", 0, 2400);
    b.span("auth-service", Some(gw), Server, "Validate Token", 5, 50);
    let cart = b.span("cart-service", Some(gw), Server, "Get Cart", 55, 235);
    let q = b.span(
        "cart-service",
        Some(cart),
        Client,
        "Database Query",
        70,
        220,
    );
    b.db(
        q,
        "postgresql",
        "carts",
        "SELECT * FROM cart_items WHERE cart_id = 17",
    );
    let pay = b.span(
        "payment-service",
        Some(gw),
        Server,
        "Charge Card",
        240,
        2040,
    );
    let fraud = b.span(
        "payment-service",
        Some(pay),
        Internal,
        "Fraud Check",
        250,
        1450,
    );
    if fraud_retries {
        // "The fraud check calls a third-party API that's timing out, causing retries."
        for (start, end, ok) in [(252, 652, false), (662, 1062, false), (1072, 1447, true)] {
            let attempt = b.span(
                "payment-service",
                Some(fraud),
                Client,
                "POST /v2/score",
                start,
                end,
            );
            b.attr(attempt, "peer.service", "fraud-api");
            if !ok {
                b.error(attempt, "timeout: no response after 400ms");
            }
        }
    }
    let gwapi = b.span(
        "payment-service",
        Some(pay),
        Client,
        "Payment Gateway API",
        1455,
        2035,
    );
    b.attr(gwapi, "peer.service", "payment-gateway");
    b.span(
        "inventory-service",
        Some(gw),
        Server,
        "Reserve Items",
        2045,
        2365,
    );
    b.build()
}

#[test]
fn seed_001_the_fraud_check_is_the_widest_bar_two_levels_deep() {
    let a = run(&seed_001_checkout(false));
    assert_eq!(summary(&a), vec![(DominantLeaf, 1200)], "{}", titles(&a));
    let f = &a.findings[0];
    assert_eq!(f.spans, vec![id(6)]);
    assert_eq!(f.service, "payment-service");
    assert_eq!(f.operation, "Fraud Check");
    assert_eq!(
        f.title,
        "payment-service spent 1.20s in \"Fraud Check\" (under \"Charge Card\") — 50% of the request: the widest bar on the critical path"
    );
    let payment = a
        .stats
        .services
        .iter()
        .find(|s| s.service == "payment-service")
        .unwrap();
    assert_eq!(payment.total_nanos, ms(1800 + 1200 + 580));
    assert_eq!(payment.critical_path_nanos, ms(1800));
    assert!((payment.critical_path_share - 0.75).abs() < 1e-9);
}

#[test]
fn seed_001_a_fraud_check_retrying_a_timing_out_api_is_reported_as_retries() {
    let a = run(&seed_001_checkout(true));
    assert_eq!(summary(&a), vec![(Retries, 820)], "{}", titles(&a));
    let f = &a.findings[0];
    assert_eq!(f.count, Some(3));
    assert_eq!(f.spans, vec![id(7), id(8), id(9)]);
    assert_eq!(f.target.as_deref(), Some("fraud-api"));
    assert_eq!(f.operation, "Fraud Check");
    // Two timed-out attempts of 400 ms and 10 ms of waiting after each.
    assert!(
        f.title
            .contains("2 attempts timed out (after up to 400ms) before the last one succeeded"),
        "{}",
        f.title
    );
    assert!(f.title.contains("820ms"), "{}", f.title);
    assert!(
        of_kind(&a, ErrorOrigin).is_empty(),
        "recovered attempts are not error origins"
    );
}

/// "The product page is failing. Tracing shows it calls the recommendation service, which
/// calls the user preference service, which is overloaded."
fn seed_001_cascade() -> Trace {
    let mut b = Builder::new();
    let page = b.span("product-page", None, Server, "GET /products/42", 0, 1040);
    b.error(page, "500 Internal Server Error");
    let rc = b.span(
        "product-page",
        Some(page),
        Client,
        "GET /recommendations",
        20,
        1030,
    );
    b.error(rc, "502 Bad Gateway");
    let rs = b.span(
        "recommendations",
        Some(rc),
        Server,
        "GET /recommendations",
        25,
        1025,
    );
    b.error(rs, "upstream failed");
    let pc = b.span(
        "recommendations",
        Some(rs),
        Client,
        "GET /preferences",
        30,
        1020,
    );
    b.error(pc, "503 Service Unavailable");
    let ps = b.span(
        "user-preferences",
        Some(pc),
        Server,
        "GET /preferences",
        35,
        1015,
    );
    b.error(ps, "503 Service Unavailable: overloaded");
    b.build()
}

#[test]
fn seed_001_the_cascading_failure_started_in_user_preferences_three_services_away() {
    let a = run(&seed_001_cascade());
    assert_eq!(summary(&a), vec![(ErrorOrigin, 980)], "{}", titles(&a));
    let f = &a.findings[0];
    assert_eq!(f.service, "user-preferences");
    assert_eq!(f.spans[0], id(5), "the origin comes first");
    assert_eq!(
        f.spans[1..],
        [id(4), id(3), id(2), id(1)],
        "then the carriers, nearest first"
    );
    assert_eq!(
        f.title,
        "user-preferences \"GET /preferences\" failed (503 Service Unavailable: overloaded): the error started here and surfaced two services up, in product-page \"GET /products/42\"; recommendations and product-page only passed it on"
    );
}

// ----- seed 003: login 5 s, bcrypt, ride matching, retry storm -----------------------------

/// "Login took 5 seconds! Login Service 10ms, User Service 5ms, Auth Service 8ms, Database
/// 2ms. Total: 25ms ... where did the other 4.975 seconds go?" The app's call to the login
/// service, and the login service's calls to the user and auth services, spend the rest
/// between client and server.
fn seed_003_login() -> Builder {
    let mut b = Builder::new();
    let app = b.span("mobile-app", None, Client, "POST /login", 0, 5000);
    let login = b.span(
        "login-service",
        Some(app),
        Server,
        "POST /login",
        1500,
        4700,
    );
    let uc = b.span(
        "login-service",
        Some(login),
        Client,
        "GET /users/42",
        1504,
        3504,
    );
    b.attr(uc, "http.request.method", "GET");
    let us = b.span(
        "user-service",
        Some(uc),
        Server,
        "GET /users/42",
        2504,
        2511,
    );
    let q = b.span("user-service", Some(us), Client, "SELECT users", 2506, 2508);
    b.db(
        q,
        "postgresql",
        "users",
        "SELECT * FROM users WHERE id = 42",
    );
    let ac = b.span(
        "login-service",
        Some(login),
        Client,
        "POST /auth/verify",
        3507,
        4697,
    );
    b.attr(ac, "http.request.method", "POST");
    b.span(
        "auth-service",
        Some(ac),
        Server,
        "POST /auth/verify",
        4000,
        4008,
    );
    b
}

#[test]
fn seed_003_the_other_4975ms_of_the_login_are_between_clients_and_servers() {
    let a = run(&seed_003_login().build());
    assert_eq!(
        summary(&a),
        vec![
            (ClientServerGap, 1993),
            (ClientServerGap, 1800),
            (ClientServerGap, 1182)
        ],
        "{}",
        titles(&a)
    );
    let total: u64 = a.findings.iter().map(|f| f.cost_nanos).sum();
    assert_eq!(total, ms(4975));
    let f = &a.findings[0];
    assert_eq!(f.spans, vec![id(3), id(4)]);
    assert_eq!(f.target.as_deref(), Some("user-service"));
    assert_eq!(
        f.title,
        "login-service → user-service \"GET /users/42\": 1.99s of the call's 2.00s was spent outside user-service (1.00s before it started, 993ms after it finished) — network, queueing, connection setup or serialization"
    );
    // The services' own time is the article's 25 ms.
    let own = |service: &str, operation: &str| {
        a.stats
            .operations
            .iter()
            .find(|o| o.service == service && o.operation.as_deref() == Some(operation))
            .unwrap()
            .self_nanos
    };
    assert_eq!(own("login-service", "POST /login"), ms(10));
    assert_eq!(own("user-service", "GET /users/42"), ms(5));
    assert_eq!(own("user-service", "SELECT users"), ms(2));
    assert_eq!(own("auth-service", "POST /auth/verify"), ms(8));
}

#[test]
fn seed_003_a_server_clock_three_seconds_behind_is_adjusted_and_the_gaps_stay_the_same() {
    let mut b = seed_003_login();
    b.clock_offset("user-service", -3000);
    let trace = b.build();
    let a = run(&trace);
    // The user service's spans moved: the server span by its own position, the query with it.
    let moved: Vec<(u64, bool)> = a
        .skew_adjustments
        .iter()
        .map(|s| (s.span_id.as_u64(), s.inherited))
        .collect();
    assert_eq!(moved, vec![(4, false), (5, true)]);
    let shift = a.skew_adjustments[0].shift_nanos;
    assert_eq!(a.skew_adjustments[1].shift_nanos, shift);
    assert_eq!(
        a.skew_adjustments[0].original_start_unix_nano,
        T0 + ms(2504) - ms(3000)
    );
    // Centred in its 2,000 ms client span: (2000 - 7) / 2 on each side.
    let start = (T0 + ms(2504) - ms(3000)) as i128 + shift as i128;
    assert_eq!(start, (T0 + ms(1504) + (ms(2000) - ms(7)) / 2) as i128);
    let costs: Vec<u64> = of_kind(&a, ClientServerGap)
        .iter()
        .map(|f| f.cost_nanos)
        .collect();
    assert_eq!(costs, vec![ms(1993), ms(1800), ms(1182)]);

    let adjusted = stitch_analysis::adjust_clock_skew(&trace);
    let tree = SpanTree::build(&adjusted.trace);
    let server = tree.node(tree.find(id(4)).unwrap());
    let client = tree.node(tree.find(id(3)).unwrap());
    assert!(server.start() >= client.start() && server.end() <= client.end());
}

/// "Trace: User Login Flow (5.2s total) ├─ API Gateway (5.2s) │ ├─ Authenticate User (2.1s) │
/// │ ├─ Query User DB (150ms) │ │ └─ Verify Password (1.95s) │ │ └─ bcrypt.compare (1.95s) ←
/// Found it! │ ├─ Load User Profile (3ms) │ └─ Generate JWT (2ms)"
fn seed_003_bcrypt() -> Trace {
    let mut b = Builder::new();
    let gw = b.span("api-gateway", None, Server, "POST /login", 0, 5200);
    let auth = b.span(
        "auth-service",
        Some(gw),
        Server,
        "Authenticate User",
        10,
        2110,
    );
    let q = b.span("auth-service", Some(auth), Client, "Query User DB", 10, 160);
    b.db(
        q,
        "postgresql",
        "users",
        "SELECT * FROM users WHERE email = 'a@b.c'",
    );
    let verify = b.span(
        "auth-service",
        Some(auth),
        Internal,
        "Verify Password",
        160,
        2110,
    );
    b.span(
        "auth-service",
        Some(verify),
        Internal,
        "bcrypt.compare",
        160,
        2110,
    );
    b.span(
        "user-service",
        Some(gw),
        Server,
        "Load User Profile",
        2112,
        2115,
    );
    b.span(
        "api-gateway",
        Some(gw),
        Internal,
        "Generate JWT",
        2116,
        2118,
    );
    b.build()
}

#[test]
fn seed_003_bcrypt_compare_is_the_widest_bar_and_the_gateway_time_the_tree_leaves_out_is_named() {
    let a = run(&seed_003_bcrypt());
    // The article's tree accounts for 2.1 s of the gateway's 5.2 s; the 3.08 s after the last
    // child is reported too.
    assert_eq!(
        summary(&a),
        vec![(UninstrumentedTime, 3082), (DominantLeaf, 1950)],
        "{}",
        titles(&a)
    );
    let f = &of_kind(&a, DominantLeaf)[0];
    assert_eq!(f.spans, vec![id(5)]);
    assert_eq!(f.operation, "bcrypt.compare");
    assert_eq!(
        f.title,
        "auth-service spent 1.95s in \"bcrypt.compare\" (under \"Verify Password\") — 38% of the request: the widest bar on the critical path"
    );
}

#[test]
fn seed_003_the_28s_driver_availability_check_is_the_widest_bar() {
    // "Some rides take 30s to match ... 'Driver Availability Check' taking 28s ... DB index
    // missing."
    let mut b = Builder::new();
    let m = b.span(
        "matching-service",
        None,
        Server,
        "POST /rides/match",
        0,
        30_000,
    );
    let q = b.span(
        "matching-service",
        Some(m),
        Client,
        "Driver Availability Check",
        500,
        28_500,
    );
    b.db(
        q,
        "postgresql",
        "drivers",
        "SELECT * FROM drivers WHERE region = 7 AND available",
    );
    b.span(
        "matching-service",
        Some(m),
        Internal,
        "Price Estimate",
        28_600,
        28_800,
    );
    let a = run(&b.build());
    assert_eq!(summary(&a), vec![(DominantLeaf, 28_000)], "{}", titles(&a));
    assert!(a.findings[0]
        .title
        .starts_with("matching-service spent 28.0s on the database query \"Driver Availability Check\" (postgresql drivers)"));
}

/// Seed 003's chaos case: user-service calls auth six times, 150 ms each with a 10 ms pause,
/// under a gateway that gives up after 1 s. `auth_fails_fast`: auth answers each attempt at
/// once with an error (overloaded); otherwise it is 500 ms slow and answers after the caller
/// gave up (the injected latency).
fn auth_retry_storm(auth_fails_fast: bool) -> Trace {
    let mut b = Builder::new();
    let gw = b.span("api-gateway", None, Server, "GET /profile", 0, 1000);
    b.error(gw, "504 Gateway Timeout");
    let gc = b.span("api-gateway", Some(gw), Client, "GET /users/me", 2, 1000);
    b.error(gc, "timeout after 1s");
    let us = b.span("user-service", Some(gc), Server, "GET /users/me", 5, 995);
    b.error(us, "auth unavailable");
    for k in 0..6 {
        let start = 8 + k * 160;
        let attempt = b.span(
            "user-service",
            Some(us),
            Client,
            "GET /auth/verify",
            start,
            start + 150,
        );
        let end = if auth_fails_fast {
            start + 148
        } else {
            start + 522
        };
        let served = b.span(
            "auth-service",
            Some(attempt),
            Server,
            "GET /auth/verify",
            start + 2,
            end,
        );
        if auth_fails_fast {
            b.error(attempt, "503 Service Unavailable");
            b.error(served, "overloaded");
        } else {
            b.error(attempt, "deadline exceeded after 150ms");
        }
    }
    b.build()
}

#[test]
fn seed_003_injected_auth_latency_causes_a_retry_storm_and_the_error_starts_at_the_timed_out_calls()
{
    // "Inject 500ms latency in Auth Service. Traces show cascading timeouts: API Gateway
    // timeout (1s), User Service retry storm."
    let a = run(&auth_retry_storm(false));
    // The failed attempts are where the error started; the retries finding says so instead
    // of an error-origin finding charging the same 900 ms a second time.
    assert_eq!(summary(&a), vec![(Retries, 950)], "{}", titles(&a));
    let storm = &a.findings[0];
    assert_eq!(storm.count, Some(6));
    assert!(
        storm.title.starts_with(
            "Retry storm: user-service called auth-service \"GET /auth/verify\" 6 times"
        ),
        "{}",
        storm.title
    );
    assert!(
        storm.title.contains("and every attempt failed"),
        "{}",
        storm.title
    );
    assert_eq!(
        storm.spans.len(),
        6 + 3,
        "six attempts, then user-service, the gateway's client span and the gateway"
    );
    assert!(
        storm
            .title
            .contains("the error started in these attempts and surfaced one service up, in api-gateway \"GET /profile\""),
        "{}",
        storm.title
    );
    assert!(
        a.skew_adjustments.is_empty(),
        "servers outliving their callers are not skew"
    );
}

#[test]
fn seed_003_the_playback_start_breakdown_shows_each_steps_share_of_the_critical_path() {
    // "40% time: CDN redirect, 30%: DRM license fetch, 20%: Manifest parsing, 10%: Video
    // buffering."
    let mut b = Builder::new();
    let root = b.span(
        "playback-api",
        None,
        Server,
        "POST /playback/start",
        0,
        1000,
    );
    for (name, start, end) in [
        ("CDN redirect", 0, 400),
        ("DRM license fetch", 400, 700),
        ("Manifest parsing", 700, 900),
        ("Video buffering", 900, 1000),
    ] {
        b.span("playback-api", Some(root), Internal, name, start, end);
    }
    let trace = b.build();
    let stats = trace_stats(&SpanTree::build(&trace));
    let shares: Vec<(&str, f64)> = stats
        .operations
        .iter()
        .map(|o| (o.operation.as_deref().unwrap(), o.critical_path_share))
        .collect();
    assert_eq!(
        shares,
        vec![
            ("CDN redirect", 0.4),
            ("DRM license fetch", 0.3),
            ("Manifest parsing", 0.2),
            ("Video buffering", 0.1),
            ("POST /playback/start", 0.0),
        ]
    );
    assert_eq!(stats.busy_nanos, ms(1000));
}

// ----- seed 004: GET /api/orders/123 --------------------------------------------------------

/// "[API Gateway] 250ms ├─ [Auth Service] 15ms ├─ [Order Service] 200ms │ ├─ [Order DB Query]
/// 50ms │ ├─ [User Service] 80ms │ │ └─ [User DB] 20ms │ └─ [Product Service] 60ms │ └─ [Redis
/// Cache] 2ms └─ [Response] 5ms. Bottleneck found: User Service (80ms) → User DB (20ms). The
/// remaining 60ms is in User Service business logic."
fn seed_004_orders() -> Trace {
    let mut b = Builder::new();
    let gw = b.span("api-gateway", None, Server, "GET /api/orders/123", 0, 250);
    b.span("auth-service", Some(gw), Server, "GET /auth/check", 5, 20);
    let order = b.span(
        "order-service",
        Some(gw),
        Server,
        "GET /orders/123",
        25,
        225,
    );
    let q = b.span(
        "order-service",
        Some(order),
        Client,
        "Order DB Query",
        27,
        77,
    );
    b.db(
        q,
        "postgresql",
        "orders",
        "SELECT * FROM orders WHERE id = 123",
    );
    let user = b.span("user-service", Some(order), Server, "GET /users/7", 79, 159);
    b.attr(user, "http.request.method", "GET");
    let udb = b.span("user-service", Some(user), Client, "User DB", 79, 99);
    b.db(
        udb,
        "postgresql",
        "users",
        "SELECT * FROM users WHERE id = 7",
    );
    let product = b.span(
        "product-service",
        Some(order),
        Server,
        "GET /products",
        161,
        221,
    );
    b.attr(product, "http.request.method", "GET");
    let redis = b.span(
        "product-service",
        Some(product),
        Client,
        "Redis Cache",
        162,
        164,
    );
    b.attr(redis, "db.system", "redis");
    b.span("api-gateway", Some(gw), Internal, "Response", 235, 240);
    b.build()
}

#[test]
fn seed_004_the_60ms_of_user_service_business_logic_is_the_top_finding() {
    let a = run(&seed_004_orders());
    assert_eq!(
        summary(&a),
        vec![
            (UninstrumentedTime, 60),
            (SequentialCalls, 60),
            (UninstrumentedTime, 57),
        ],
        "{}",
        titles(&a)
    );
    let f = &a.findings[0];
    assert_eq!(f.service, "user-service");
    assert_eq!(f.spans, vec![id(5)]);
    // The product service has the same pattern (58 ms of its 60 outside Redis) — and the
    // user and product lookups do not depend on each other.
    let seq = &a.findings[1];
    assert_eq!(seq.spans, vec![id(5), id(7)]);
    assert_eq!(seq.saving_nanos, Some(ms(60)));
    assert_eq!(a.findings[2].service, "product-service");
}

// ----- a clean trace --------------------------------------------------------------------------

/// `(service, operation, start, end, steps)`; a step is `(name, database, start, end)` with
/// the database as `(system, name)`.
type Branch = (
    &'static str,
    &'static str,
    u64,
    u64,
    &'static [(&'static str, Option<(&'static str, &'static str)>, u64, u64)],
);

/// A healthy page load: the gateway fans out to four services in parallel; each does a few
/// short steps back to back; no step dominates.
fn clean_fan_out() -> Trace {
    let mut b = Builder::new();
    let gw = b.span("api-gateway", None, Server, "GET /home", 0, 100);
    let branches: [Branch; 4] = [
        (
            "profile-service",
            "GET /profile",
            1,
            97,
            &[
                ("SELECT profile", Some(("postgresql", "profiles")), 3, 23),
                ("GET", Some(("redis", "")), 24, 26),
                ("SELECT avatars", Some(("postgresql", "profiles")), 27, 47),
                ("build profile", None, 48, 70),
                ("serialize", None, 71, 95),
            ],
        ),
        (
            "recommendation-service",
            "GET /recommendations",
            1,
            80,
            &[
                ("score", None, 3, 25),
                ("rank", None, 26, 48),
                ("filter", None, 49, 70),
            ],
        ),
        (
            "cart-service",
            "GET /cart",
            2,
            60,
            &[
                ("GET", Some(("redis", "")), 4, 6),
                ("SELECT cart", Some(("postgresql", "carts")), 7, 30),
                ("price cart", None, 31, 55),
            ],
        ),
        (
            "ads-service",
            "GET /ads",
            3,
            50,
            &[("auction", None, 5, 45)],
        ),
    ];
    for (service, op, start, end, steps) in branches {
        let c = b.span("api-gateway", Some(gw), Client, op, start, end);
        b.attr(c, "http.request.method", "GET");
        let s = b.span(service, Some(c), Server, op, start + 1, end - 1);
        for &(name, db, a, z) in steps {
            let kind = if db.is_some() { Client } else { Internal };
            let step = b.span(service, Some(s), kind, name, a, z);
            if let Some((system, dbname)) = db {
                b.attr(step, "db.system", system);
                if !dbname.is_empty() {
                    b.attr(step, "db.name", dbname);
                }
                b.attr(step, "db.statement", format!("{name} WHERE id = 1"));
            }
        }
    }
    b.build()
}

#[test]
fn a_clean_parallel_trace_has_no_finding_above_five_percent_of_its_duration() {
    let trace = clean_fan_out();
    let a = run(&trace);
    let limit = a.critical_path.total_nanos / 20;
    for f in &a.findings {
        assert!(f.cost_nanos <= limit, "{}", titles(&a));
    }
    assert!(a.findings.is_empty(), "{}", titles(&a));
    // The same trace slowed down or sped up uniformly stays clean.
    for factor in [1u64, 7, 1000] {
        let mut scaled = trace.clone();
        for rs in &mut scaled.resource_spans {
            for span in &mut rs.scope_spans[0].spans {
                span.start_time_unix_nano = T0 + (span.start_time_unix_nano - T0) * factor;
                span.end_time_unix_nano = T0 + (span.end_time_unix_nano - T0) * factor;
            }
        }
        let a = run(&scaled);
        assert!(
            a.findings
                .iter()
                .all(|f| f.cost_nanos * 20 <= a.critical_path.total_nanos),
            "×{factor}: {}",
            titles(&a)
        );
    }
}

// ----- output ---------------------------------------------------------------------------------

#[test]
fn the_analysis_serialises_to_camel_case_json_with_hex_ids() {
    let a = run(&seed_000_checkout());
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(json["durationNanos"], ms(1942));
    assert_eq!(json["spanCount"], 17);
    assert_eq!(json["startUnixNano"], T0.to_string());
    let first = &json["findings"][0];
    assert_eq!(first["kind"], "dominantLeaf");
    assert_eq!(first["spans"][0], "000000000000000d");
    assert_eq!(first["costNanos"], ms(800));
    assert!(first["savingNanos"].is_null());
    let seq = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "sequentialCalls")
        .unwrap();
    assert_eq!(seq["savingNanos"], ms(70));
    assert_eq!(seq["count"], 2);
    let section = &json["criticalPath"]["sections"][0];
    assert_eq!(section["spanId"], "0000000000000001");
    assert_eq!(section["startUnixNano"], T0.to_string());
    assert_eq!(json["criticalPath"]["rootSpanId"], "0000000000000001");
    assert_eq!(json["criticalPath"]["totalNanos"], ms(1942));
    let service = &json["stats"]["services"][0];
    for key in [
        "service",
        "spanCount",
        "totalNanos",
        "selfNanos",
        "criticalPathNanos",
        "selfShare",
        "criticalPathShare",
    ] {
        assert!(service.get(key).is_some(), "{key} in {service}");
    }
    assert!(json["skewAdjustments"].as_array().unwrap().is_empty());
}

#[test]
fn findings_text_points_at_the_problem_like_an_annotated_tree() {
    let trace = seed_000_checkout();
    let a = run(&trace);
    let text = findings_text(&a, &trace, 100);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Where the time went · critical path 1.94s");
    let marked: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("← here's your problem"))
        .collect();
    assert_eq!(marked.len(), 1);
    assert!(
        marked[0].contains("POST /v1/charges payment-service"),
        "{text}"
    );
    assert!(marked[0].contains("800ms"), "{text}");
    assert!(
        lines[1].starts_with("POST /api/checkout api-gateway"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("└─ POST /orders api-gateway"),
        "{text}"
    );
    assert!(
        text.contains("Findings, ranked by time on the critical path"),
        "{text}"
    );
    assert!(
        text.contains(" 1.  800ms  widest bar        payment-service waited 800ms"),
        "{text}"
    );
    assert!(
        text.contains(" 5. 70.0ms  sequential calls  order-service called"),
        "{text}"
    );
    assert!(
        text.contains("would save\n                              ~33.0ms"),
        "{text}"
    );
    for width in [30, 60, 100, 140] {
        for line in findings_text(&a, &trace, width).lines() {
            assert!(line.chars().count() <= width, "{width}: {line:?}");
        }
    }
    let clean = clean_fan_out();
    let text = findings_text(&run(&clean), &clean, 80);
    assert_eq!(
        text,
        "No findings: nothing on the critical path stands out.\n"
    );
}

#[test]
fn an_error_origin_is_marked_where_the_error_started() {
    let trace = seed_001_cascade();
    let text = findings_text(&run(&trace), &trace, 120);
    let marked = text
        .lines()
        .find(|l| l.contains("← the error started here"))
        .unwrap();
    assert!(
        marked.contains("GET /preferences user-preferences"),
        "{text}"
    );
}

#[test]
fn the_waterfall_can_highlight_the_critical_path() {
    let trace = clean_fan_out();
    let opts = WaterfallOptions {
        width: 100,
        critical_path: true,
        ..Default::default()
    };
    let text = waterfall(&trace, &opts);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .to_owned()
    };
    // The ads branch ends at 50 ms while the profile branch runs to 97 ms: off the path.
    assert!(
        line("auction").contains('░') && !line("auction").contains('█'),
        "{text}"
    );
    // The profile branch is on it.
    assert!(
        line("serialize").contains('█') && !line("serialize").contains('░'),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("█ critical path   ░ off it"),
        "{text}"
    );
    for l in text.lines() {
        assert!(l.chars().count() <= 100);
    }
    // Without the option the waterfall is unchanged.
    let plain = waterfall(
        &trace,
        &WaterfallOptions {
            width: 100,
            ..Default::default()
        },
    );
    assert!(!plain.contains('░'));
    assert_eq!(ms(1), MS);
}

// ----- N+1 patterns -------------------------------------------------------------------------

#[test]
fn the_same_query_run_once_per_item_is_an_n_plus_1_with_its_saving() {
    // An order page loads 8 line items one query each (12 ms apiece), the ids differing only.
    let mut b = Builder::new();
    let root = b.span("orders", None, Server, "GET /orders/9", 0, 120);
    for k in 0..8u64 {
        let start = 10 + k * 13;
        let q = b.span(
            "orders",
            Some(root),
            Client,
            "SELECT items",
            start,
            start + 12,
        );
        b.db(
            q,
            "postgresql",
            "shop",
            &format!("SELECT * FROM items WHERE id = {}", 100 + k),
        );
    }
    let a = run(&b.build());
    let repeated = of_kind(&a, RepeatedCalls);
    assert_eq!(repeated.len(), 1, "{}", titles(&a));
    let f = repeated[0];
    assert_eq!(f.count, Some(8));
    assert_eq!(
        f.cost_nanos,
        96 * MS,
        "eight 12 ms queries on the critical path"
    );
    assert_eq!(f.saving_nanos, Some(84 * MS), "one query instead of eight");
    assert!(
        f.title
            .contains("ran the same query 8 times on postgresql shop")
            && f.title.contains("an N+1 pattern"),
        "{}",
        f.title
    );
    assert!(
        f.title.contains("SELECT * FROM items WHERE id = ?"),
        "{}",
        f.title
    );
}

#[test]
fn the_same_http_call_made_per_item_is_an_n_plus_1_too() {
    // A cart asks the pricing service for each of its 5 items in turn (20 ms each).
    let mut b = Builder::new();
    let root = b.span("cart", None, Server, "GET /cart", 0, 115);
    for k in 0..5u64 {
        let start = 5 + k * 21;
        let c = b.span("cart", Some(root), Client, "GET /price", start, start + 20);
        b.attr(c, "http.request.method", "GET");
        b.attr(c, "server.address", "pricing");
        b.span(
            "pricing",
            Some(c),
            Server,
            "GET /price",
            start + 1,
            start + 19,
        );
    }
    let a = run(&b.build());
    let repeated = of_kind(&a, RepeatedCalls);
    assert_eq!(repeated.len(), 1, "{}", titles(&a));
    let f = repeated[0];
    assert_eq!(f.count, Some(5));
    assert_eq!(f.target.as_deref(), Some("pricing"));
    assert_eq!(f.saving_nanos, Some(80 * MS), "one call instead of five");
    assert!(f.title.contains("called pricing"), "{}", f.title);
    assert!(f.title.contains("5 times"), "{}", f.title);
    // Repeated calls to one endpoint are not also sequential calls to different services.
    assert!(of_kind(&a, SequentialCalls).is_empty(), "{}", titles(&a));
}

#[test]
fn a_retry_storm_against_a_failing_instrumented_service_is_one_finding_that_names_it() {
    // The same storm, but auth answers each attempt at once with an error (503, overloaded):
    // the error starts in auth's own span under each attempt. The retries finding says so;
    // no error-origin finding charges the attempts' time a second time.
    let a = run(&auth_retry_storm(true));
    assert!(of_kind(&a, ErrorOrigin).is_empty(), "{}", titles(&a));
    let storm = of_kind(&a, Retries);
    assert_eq!(storm.len(), 1, "{}", titles(&a));
    assert!(
        storm[0].title.contains(
            "the error started in auth-service \"GET /auth/verify\", under these attempts"
        ),
        "{}",
        storm[0].title
    );
    assert!(
        storm[0].title.contains("in api-gateway \"GET /profile\""),
        "{}",
        storm[0].title
    );
    let total: u64 = a.findings.iter().map(|f| f.cost_nanos).sum();
    assert!(
        total <= a.critical_path.total_nanos,
        "findings cost {total} ns on a {} ns critical path: {}",
        a.critical_path.total_nanos,
        titles(&a)
    );
}
