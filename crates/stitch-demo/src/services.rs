//! What every service of the fleet does, scenario by scenario, with the seeds' numbers.
//!
//! `work(ms)` is the service's own code, with no span (it shows as the span's own time);
//! `db`, `external` and `http` are calls with CLIENT spans; `internal` wraps code in an INTERNAL
//! span. Latencies are sleeps, so a request takes the same time whatever the machine.

use opentelemetry::KeyValue;
use stitch_propagation::Format;

use crate::fleet::{BoxFut, Call, Db, External, Handler, Http, Reply, Route, ServiceSpec};
use crate::scenario::Scenario;

const B3_SINGLE: &[Format] = &[Format::B3Single];
const B3_MULTI: &[Format] = &[Format::B3Multi];
const JAEGER: &[Format] = &[Format::Jaeger];
const W3C_AND_B3: &[Format] = &[Format::TraceContext, Format::B3Multi];

/// The services a set of scenarios needs.
pub(crate) fn fleet_for(scenarios: &[Scenario]) -> Vec<ServiceSpec> {
    scenarios.iter().flat_map(|s| services(*s)).collect()
}

fn svc(scenario: Scenario, name: &'static str, routes: Vec<Route>) -> ServiceSpec {
    ServiceSpec {
        name,
        scenario,
        version: "1.4.2",
        routes,
        strips_unknown_headers: false,
    }
}

fn r(method: &'static str, pattern: &'static str, handler: Handler) -> Route {
    Route {
        method,
        pattern,
        handler,
    }
}

fn services(scenario: Scenario) -> Vec<ServiceSpec> {
    use Scenario::*;
    let s = |name, routes| svc(scenario, name, routes);
    match scenario {
        Checkout => vec![
            s(
                "api-gateway",
                vec![r("POST", "/api/checkout", checkout_gateway)],
            ),
            s("order-service", vec![r("POST", "/orders", checkout_order)]),
            s(
                "inventory-service",
                vec![r("GET", "/inventory/check", checkout_inventory)],
            ),
            s(
                "pricing-service",
                vec![r("GET", "/prices", checkout_pricing)],
            ),
            s(
                "payment-service",
                vec![r("POST", "/payments", checkout_payment)],
            ),
            s(
                "notification-service",
                vec![r("POST", "/notifications", checkout_notification)],
            ),
            s(
                "analytics-service",
                vec![r("POST", "/events", checkout_analytics)],
            ),
        ],
        Fraud => vec![
            s("storefront", vec![r("POST", "/checkout", fraud_storefront)]),
            s(
                "session-service",
                vec![r("GET", "/auth/validate", fraud_session)],
            ),
            s("cart-service", vec![r("GET", "/cart", fraud_cart)]),
            s("billing-service", vec![r("POST", "/charge", fraud_billing)]),
            s("stock-service", vec![r("POST", "/reserve", fraud_stock)]),
        ],
        Login => vec![
            s("login-api", vec![r("POST", "/login", login_api)]),
            s(
                "identity-service",
                vec![r("POST", "/authenticate", login_identity)],
            ),
            s(
                "member-service",
                vec![r("GET", "/members/{id}/profile", login_member)],
            ),
        ],
        Orders => vec![
            s("orders-api", vec![r("GET", "/api/orders/{id}", orders_api)]),
            s(
                "access-service",
                vec![r("GET", "/auth/check", orders_access)],
            ),
            s(
                "order-details",
                vec![r("GET", "/orders/{id}", orders_details)],
            ),
            s("user-service", vec![r("GET", "/users/{id}", orders_user)]),
            s(
                "product-service",
                vec![r("GET", "/products", orders_product)],
            ),
        ],
        Cascade => vec![
            s(
                "product-page",
                vec![r("GET", "/products/{id}", cascade_page)],
            ),
            s(
                "recommendations",
                vec![r("GET", "/recommendations", cascade_recommendations)],
            ),
            s(
                "user-preferences",
                vec![r("GET", "/preferences", cascade_preferences)],
            ),
        ],
        BrokenPropagation => {
            let mut legacy = s(
                "legacy-billing",
                vec![r("POST", "/billing/run", broken_legacy)],
            );
            legacy.strips_unknown_headers = true;
            legacy.version = "2.3.1-legacy";
            vec![
                s("invoice-api", vec![r("POST", "/invoices", broken_invoice)]),
                legacy,
                s(
                    "tax-service",
                    vec![
                        r("GET", "/tax/rates", broken_tax_rates),
                        r("POST", "/tax/calculate", broken_tax_calculate),
                    ],
                ),
            ]
        }
        RareTimeout => vec![
            s("catalog-api", vec![r("GET", "/search", rare_catalog)]),
            s("search-service", vec![r("GET", "/search", rare_search)]),
        ],
        Chaos => vec![
            s("edge-gateway", vec![r("GET", "/profile", chaos_gateway)]),
            s(
                "account-service",
                vec![r("GET", "/users/me", chaos_account)],
            ),
            s("auth-service", vec![r("GET", "/auth/verify", chaos_auth)]),
        ],
    }
}

/// A PostgreSQL query.
fn pg(
    name: &'static str,
    database: &'static str,
    host: &'static str,
    statement: &'static str,
    latency_ms: u64,
) -> Db {
    Db {
        name,
        system: "postgresql",
        namespace: database,
        statement,
        host,
        port: 5432,
        latency_ms,
        fails: None,
    }
}

/// Passes a downstream failure on.
fn upstream_failed(status: u16, what: &str, answer: &crate::fleet::Answer) -> Reply {
    Reply::error(status, format!("{what} failed: {}", answer.describe()))
}

// ----- checkout (seed 000) -------------------------------------------------------------------

fn checkout_gateway(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let order = c.http(Http::post("order-service", "/orders")).await;
        if !order.is_success() {
            return upstream_failed(502, "order-service", &order);
        }
        Reply::ok()
    })
}

fn checkout_order(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.internal(
            "validate order",
            vec![KeyValue::new("order.items_count", 3i64)],
            |c| async move { c.work(80).await },
        )
        .await;
        // Inventory, then pricing: one after the other although neither needs the other.
        let stock = c
            .http(Http::get("inventory-service", "/inventory/check?sku=A-1").formats(B3_SINGLE))
            .await;
        if !stock.is_success() {
            return upstream_failed(502, "inventory-service", &stock);
        }
        let price = c
            .http(Http::get("pricing-service", "/prices?sku=A-1").formats(B3_MULTI))
            .await;
        if !price.is_success() {
            return upstream_failed(502, "pricing-service", &price);
        }
        c.event("inventory check complete");
        // The order log line is written synchronously to a file on an NFS mount.
        c.work(400).await;
        c.event("payment initiated");
        let payment = c.http(Http::post("payment-service", "/payments")).await;
        if !payment.is_success() {
            return upstream_failed(502, "payment-service", &payment);
        }
        c.work(10).await;
        Reply::ok()
    })
}

fn checkout_inventory(c: Call) -> BoxFut<Reply> {
    const DB: &str = "inventory-db.internal";
    Box::pin(async move {
        c.work(10).await;
        // Three round trips, each on a fresh connection, where one transaction would do.
        let _ = c
            .db(pg(
                "check stock",
                "inventory",
                DB,
                "SELECT quantity FROM stock WHERE sku = $1",
                12,
            ))
            .await;
        c.work(1).await;
        let _ = c
            .db(pg(
                "reserve stock",
                "inventory",
                DB,
                "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2",
                15,
            ))
            .await;
        c.work(1).await;
        let _ = c
            .db(pg(
                "confirm reservation",
                "inventory",
                DB,
                "INSERT INTO reservations (sku, order_id) VALUES ($1, $2)",
                18,
            ))
            .await;
        c.work(29).await;
        Reply::ok()
    })
}

fn checkout_pricing(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(68).await;
        Reply::ok()
    })
}

fn checkout_payment(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(50).await;
        let charged = c
            .external(External {
                name: "POST /v1/charges",
                method: "POST",
                peer: "payment-provider",
                url: "https://api.stripe.com/v1/charges",
                latency_ms: 800,
                times_out: None,
            })
            .await;
        if charged.is_err() {
            return Reply::error(502, "payment provider failed");
        }
        c.work(40).await;
        // The user waits for the e-mail to be queued and the analytics event to be recorded.
        let notified = c
            .http(Http::post("notification-service", "/notifications").formats(JAEGER))
            .await;
        if !notified.is_success() {
            return upstream_failed(502, "notification-service", &notified);
        }
        let tracked = c
            .http(Http::post("analytics-service", "/events").formats(W3C_AND_B3))
            .await;
        if !tracked.is_success() {
            return upstream_failed(502, "analytics-service", &tracked);
        }
        c.work(30).await;
        Reply::ok()
    })
}

fn checkout_notification(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(198).await;
        Reply::ok()
    })
}

fn checkout_analytics(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(148).await;
        Reply::ok()
    })
}

// ----- fraud (seed 001) ----------------------------------------------------------------------

fn fraud_storefront(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let session = c.http(Http::get("session-service", "/auth/validate")).await;
        if !session.is_success() {
            return upstream_failed(401, "session-service", &session);
        }
        let cart = c.http(Http::get("cart-service", "/cart")).await;
        if !cart.is_success() {
            return upstream_failed(502, "cart-service", &cart);
        }
        let charge = c
            .http(Http::post("billing-service", "/charge").formats(JAEGER))
            .await;
        if !charge.is_success() {
            return upstream_failed(502, "billing-service", &charge);
        }
        let reserve = c
            .http(Http::post("stock-service", "/reserve").formats(B3_SINGLE))
            .await;
        if !reserve.is_success() {
            return upstream_failed(502, "stock-service", &reserve);
        }
        Reply::ok()
    })
}

fn fraud_session(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.internal(
            "Validate Token",
            Vec::new(),
            |c| async move { c.work(43).await },
        )
        .await;
        Reply::ok()
    })
}

fn fraud_cart(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(15).await;
        let _ = c
            .db(pg(
                "SELECT cart_items",
                "carts",
                "carts-db.internal",
                "SELECT * FROM cart_items WHERE cart_id = $1",
                150,
            ))
            .await;
        c.work(13).await;
        Reply::ok()
    })
}

fn fraud_billing(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let charged = c
            .internal("Charge Card", Vec::new(), |c| async move {
                c.work(10).await;
                let scored = c
                    .internal("Fraud Check", Vec::new(), |c| async move {
                        // The third-party scoring API times out twice; the client retries
                        // after 10 ms, and the third attempt answers in 375 ms.
                        for attempt in 0..3 {
                            let last = attempt == 2;
                            let result = c
                                .external(External {
                                    name: "POST /v2/score",
                                    method: "POST",
                                    peer: "fraud-api",
                                    url: "https://api.fraudscore.example/v2/score",
                                    latency_ms: if last { 375 } else { 400 },
                                    times_out: (!last).then_some(
                                        "timeout: no response from api.fraudscore.example within 400ms",
                                    ),
                                })
                                .await;
                            if result.is_ok() {
                                c.attribute(KeyValue::new("fraud.risk_score", 0.12));
                                return true;
                            }
                            c.work(10).await;
                        }
                        false
                    })
                    .await;
                if !scored {
                    return false;
                }
                c.work(5).await;
                let paid = c
                    .external(External {
                        name: "Payment Gateway API",
                        method: "POST",
                        peer: "payment-gateway",
                        url: "https://api.paymentgateway.example/v1/payments",
                        latency_ms: 580,
                        times_out: None,
                    })
                    .await;
                c.work(5).await;
                paid.is_ok()
            })
            .await;
        if charged {
            Reply::ok()
        } else {
            Reply::error(502, "charge failed")
        }
    })
}

fn fraud_stock(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.internal(
            "Reserve Items",
            Vec::new(),
            |c| async move { c.work(318).await },
        )
        .await;
        Reply::ok()
    })
}

// ----- login (seed 003) ----------------------------------------------------------------------

fn login_api(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let auth = c
            .http(Http::post("identity-service", "/authenticate"))
            .await;
        if !auth.is_success() {
            return upstream_failed(401, "identity-service", &auth);
        }
        let profile = c
            .http(Http::get("member-service", "/members/42/profile").route("/members/{id}/profile"))
            .await;
        if !profile.is_success() {
            return upstream_failed(502, "member-service", &profile);
        }
        c.internal(
            "Generate JWT",
            Vec::new(),
            |c| async move { c.work(2).await },
        )
        .await;
        Reply::ok()
    })
}

fn login_identity(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.internal("Authenticate User", Vec::new(), |c| async move {
            let _ = c
                .db(pg(
                    "Query User DB",
                    "users",
                    "users-db.internal",
                    "SELECT id, password_hash FROM users WHERE email = $1",
                    150,
                ))
                .await;
            c.internal("Verify Password", Vec::new(), |c| async move {
                // Cost factor 14: 2^14 rounds of key expansion, ~1.95 s per comparison.
                c.internal(
                    "bcrypt.compare",
                    vec![KeyValue::new("bcrypt.cost", 14i64)],
                    |c| async move { c.work(1950).await },
                )
                .await;
            })
            .await;
        })
        .await;
        Reply::ok()
    })
}

fn login_member(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.internal("Load User Profile", Vec::new(), |c| async move {
            c.work(3).await
        })
        .await;
        Reply::ok()
    })
}

// ----- orders (seed 004) ---------------------------------------------------------------------

fn orders_api(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(2).await;
        let auth = c.http(Http::get("access-service", "/auth/check")).await;
        if !auth.is_success() {
            return upstream_failed(401, "access-service", &auth);
        }
        c.work(2).await;
        let order = c
            .http(Http::get("order-details", "/orders/123").route("/orders/{id}"))
            .await;
        if !order.is_success() {
            return upstream_failed(502, "order-details", &order);
        }
        c.work(2).await;
        c.internal("Response", Vec::new(), |c| async move { c.work(5).await })
            .await;
        Reply::ok()
    })
}

fn orders_access(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(14).await;
        Reply::ok()
    })
}

fn orders_details(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(2).await;
        let _ = c
            .db(pg(
                "Order DB Query",
                "orders",
                "orders-db.internal",
                "SELECT * FROM orders WHERE id = $1",
                50,
            ))
            .await;
        c.work(2).await;
        let user = c
            .http(
                Http::get("user-service", "/users/7")
                    .route("/users/{id}")
                    .formats(B3_SINGLE),
            )
            .await;
        if !user.is_success() {
            return upstream_failed(502, "user-service", &user);
        }
        // The products shown depend on the user's region.
        c.internal(
            "resolve region catalogue",
            vec![KeyValue::new("user.region", "eu-west")],
            |c| async move { c.work(10).await },
        )
        .await;
        let products = c
            .http(Http::get("product-service", "/products?region=eu-west"))
            .await;
        if !products.is_success() {
            return upstream_failed(502, "product-service", &products);
        }
        c.work(4).await;
        Reply::ok()
    })
}

fn orders_user(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let _ = c
            .db(pg(
                "User DB",
                "users",
                "users-db.internal",
                "SELECT * FROM users WHERE id = $1",
                20,
            ))
            .await;
        c.event("user row loaded");
        // Business logic with no span: permission expansion and profile assembly.
        c.work(60).await;
        c.event("profile assembled");
        Reply::ok()
    })
}

fn orders_product(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let _ = c
            .db(Db {
                name: "Redis Cache",
                system: "redis",
                namespace: "0",
                statement: "GET products:region:eu-west",
                host: "cache.internal",
                port: 6379,
                latency_ms: 2,
                fails: None,
            })
            .await;
        let _ = c
            .db(pg(
                "SELECT products",
                "catalog",
                "catalog-db.internal",
                "SELECT id, name, price FROM products WHERE region = $1",
                52,
            ))
            .await;
        c.work(5).await;
        Reply::ok()
    })
}

// ----- cascade (seed 001) --------------------------------------------------------------------

fn cascade_page(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(20).await;
        let recs = c
            .http(Http::get("recommendations", "/recommendations?product=42").formats(B3_MULTI))
            .await;
        c.work(10).await;
        if !recs.is_success() {
            return upstream_failed(500, "recommendations", &recs);
        }
        Reply::ok()
    })
}

fn cascade_recommendations(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(5).await;
        let prefs = c
            .http(Http::get("user-preferences", "/preferences?user=7").formats(JAEGER))
            .await;
        c.work(5).await;
        if !prefs.is_success() {
            return upstream_failed(502, "user-preferences", &prefs);
        }
        Reply::ok()
    })
}

fn cascade_preferences(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        // Overloaded: the request queues for a worker until the queue deadline, then is shed.
        c.work(950).await;
        c.event("request shed: no worker free within 950ms");
        Reply::error(503, "503 Service Unavailable: overloaded")
    })
}

// ----- broken propagation (seed 000) ---------------------------------------------------------

fn broken_invoice(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(2).await;
        let rates = c
            .http(Http::get("tax-service", "/tax/rates?country=DE"))
            .await;
        if !rates.is_success() {
            return upstream_failed(502, "tax-service", &rates);
        }
        let run = c.http(Http::post("legacy-billing", "/billing/run")).await;
        if !run.is_success() {
            return upstream_failed(502, "legacy-billing", &run);
        }
        c.work(2).await;
        Reply::ok()
    })
}

fn broken_legacy(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(5).await;
        // This service's HTTP client strips every header it does not know (see
        // `strips_unknown_headers`): tax-service never sees the trace context.
        let tax = c.http(Http::post("tax-service", "/tax/calculate")).await;
        if !tax.is_success() {
            return upstream_failed(502, "tax-service", &tax);
        }
        c.work(3).await;
        Reply::ok()
    })
}

fn broken_tax_rates(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(4).await;
        Reply::ok()
    })
}

fn broken_tax_calculate(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let _ = c
            .db(pg(
                "SELECT tax_rules",
                "tax",
                "tax-db.internal",
                "SELECT rate FROM tax_rules WHERE country = $1 AND category = $2",
                25,
            ))
            .await;
        c.work(6).await;
        Reply::ok()
    })
}

// ----- rare timeout (seed 000) ---------------------------------------------------------------

/// One request in this many takes the rare path.
pub const RARE_ONE_IN: u64 = 10_000;
/// Which request of each `RARE_ONE_IN` search-service receives takes it (0-based: the second
/// request of the run, so that its 30 s elapse while the rest of the traffic runs). The choice
/// is deterministic, not random: a short run always contains exactly one rare request.
pub const RARE_REQUEST: u64 = 1;
/// The legacy database's statement timeout, which the rare request waits out (the article's
/// 30 s).
pub const RARE_TIMEOUT_MS: u64 = 30_000;

fn rare_catalog(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let found = c
            .http(Http::get("search-service", "/search?q=lamp").formats(B3_MULTI))
            .await;
        if !found.is_success() {
            return upstream_failed(504, "search-service", &found);
        }
        Reply::ok()
    })
}

fn rare_search(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let _ = c
            .db(Db {
                name: "GET search cache",
                system: "redis",
                namespace: "0",
                statement: "GET search:lamp",
                host: "cache.internal",
                port: 6379,
                latency_ms: 1,
                fails: None,
            })
            .await;
        if c.request_number() % RARE_ONE_IN == RARE_REQUEST {
            // The rare code path: a fallback to the legacy table, whose query waits on a lock
            // until the statement timeout.
            c.attribute(KeyValue::new("search.path", "legacy-fallback"));
            let _ = c
                .db(Db {
                    name: "SELECT products_legacy",
                    system: "postgresql",
                    namespace: "catalog_legacy",
                    statement: "SELECT * FROM products_legacy WHERE title ILIKE $1",
                    host: "legacy-db.internal",
                    port: 5432,
                    latency_ms: RARE_TIMEOUT_MS,
                    fails: Some((
                        "timeout",
                        "canceling statement due to statement timeout (30s)",
                    )),
                })
                .await;
            return Reply::error(504, "search timed out");
        }
        c.attribute(KeyValue::new("search.path", "index"));
        let _ = c
            .db(Db {
                name: "search products",
                system: "elasticsearch",
                namespace: "products",
                statement: "POST /products/_search",
                host: "search.internal",
                port: 9200,
                latency_ms: 15,
                fails: None,
            })
            .await;
        c.work(2).await;
        Reply::ok()
    })
}

// ----- chaos (seed 003) ----------------------------------------------------------------------

fn chaos_gateway(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let me = c
            .http(Http::get("account-service", "/users/me").timeout_ms(1_000))
            .await;
        if !me.is_success() {
            return upstream_failed(503, "account-service", &me);
        }
        Reply::ok()
    })
}

/// Time account-service gives one auth call, and all of them together.
const AUTH_ATTEMPT_MS: u64 = 120;
const AUTH_BUDGET_MS: u64 = 850;
const AUTH_BACKOFF_MS: u64 = 10;
const AUTH_MAX_ATTEMPTS: u32 = 6;

fn chaos_account(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let started = std::time::Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let verified = c
                .http(Http::get("auth-service", "/auth/verify").timeout_ms(AUTH_ATTEMPT_MS))
                .await;
            if verified.is_success() {
                let _ = c
                    .db(pg(
                        "SELECT account",
                        "accounts",
                        "accounts-db.internal",
                        "SELECT * FROM accounts WHERE user_id = $1",
                        5,
                    ))
                    .await;
                return Reply::ok();
            }
            let next_ends =
                started.elapsed().as_millis() as u64 + AUTH_BACKOFF_MS + AUTH_ATTEMPT_MS;
            if attempts >= AUTH_MAX_ATTEMPTS || next_ends > AUTH_BUDGET_MS {
                break;
            }
            c.work(AUTH_BACKOFF_MS).await;
        }
        Reply::error(
            503,
            format!("auth unavailable: {attempts} attempts to auth-service timed out"),
        )
    })
}

fn chaos_auth(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.attribute(KeyValue::new("chaos.injected_latency_ms", 500i64));
        c.event("chaos: latency injected");
        c.work(500).await;
        c.work(8).await;
        Reply::ok()
    })
}
