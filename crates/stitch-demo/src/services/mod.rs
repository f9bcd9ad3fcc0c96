//! What every service of the fleet does, scenario by scenario, with the seeds' numbers.
//!
//! `work(ms)` is the service's own code, with no span (it shows as the span's own time);
//! `db`, `external` and `http` are calls with CLIENT spans; `internal` wraps code in an INTERNAL
//! span. Latencies are sleeps, so a request takes the same time whatever the machine.

use opentelemetry::KeyValue;
use stitch_propagation::Format;

use crate::fleet::{BoxFut, Call, Db, External, Handler, Http, Reply, Route, ServiceSpec};
use crate::scenario::Scenario;

mod failures;
mod seeds;

use failures::*;
pub use failures::{RARE_ONE_IN, RARE_REQUEST, RARE_TIMEOUT_MS};
use seeds::*;

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
