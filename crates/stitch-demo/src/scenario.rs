//! The scenarios: which seed case study each one replays, what it plants, and where its
//! requests enter the fleet.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One case study of the seed articles, replayed live by a few services of the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Seed 000: the 3-second checkout through seven services.
    Checkout,
    /// Seed 001: a payment's fraud check retrying a timing-out third-party API.
    Fraud,
    /// Seed 003: a login slowed by a bcrypt cost factor that is too high.
    Login,
    /// Seed 004: `GET /api/orders/123`, 60 ms of business logic in the user service.
    Orders,
    /// Seed 001: product page → recommendations → an overloaded user-preferences service.
    Cascade,
    /// Seed 000: a legacy service whose HTTP client strips `traceparent`.
    BrokenPropagation,
    /// Seed 000: one request in 10,000 hits a 30-second timeout; Stitch tail-samples this
    /// scenario's traffic and keeps that one trace.
    RareTimeout,
    /// Seed 003's chaos experiment: 500 ms injected into auth, retries and timeouts upstream.
    Chaos,
}

impl Scenario {
    /// Every scenario, in the order the report lists them.
    pub const ALL: [Scenario; 8] = [
        Scenario::Checkout,
        Scenario::Fraud,
        Scenario::Login,
        Scenario::Orders,
        Scenario::Cascade,
        Scenario::BrokenPropagation,
        Scenario::RareTimeout,
        Scenario::Chaos,
    ];

    /// The name used on the command line (`stitch demo --scenario checkout`).
    pub const fn name(self) -> &'static str {
        match self {
            Scenario::Checkout => "checkout",
            Scenario::Fraud => "fraud",
            Scenario::Login => "login",
            Scenario::Orders => "orders",
            Scenario::Cascade => "cascade",
            Scenario::BrokenPropagation => "broken-propagation",
            Scenario::RareTimeout => "rare-timeout",
            Scenario::Chaos => "chaos",
        }
    }

    /// The seed article the scenario comes from (`000` ... `004`).
    pub const fn seed(self) -> &'static str {
        match self {
            Scenario::Checkout | Scenario::BrokenPropagation | Scenario::RareTimeout => "000",
            Scenario::Fraud | Scenario::Cascade => "001",
            Scenario::Login | Scenario::Chaos => "003",
            Scenario::Orders => "004",
        }
    }

    /// A short title.
    pub const fn title(self) -> &'static str {
        match self {
            Scenario::Checkout => "the 3-second checkout",
            Scenario::Fraud => "a payment's fraud check retrying a slow third-party API",
            Scenario::Login => "a 2-second login",
            Scenario::Orders => "GET /api/orders/123",
            Scenario::Cascade => "a cascading failure three services away",
            Scenario::BrokenPropagation => "one service that breaks every trace through it",
            Scenario::RareTimeout => "the 1-in-10,000 timeout",
            Scenario::Chaos => "chaos: 500 ms injected into auth",
        }
    }

    /// The problem the scenario plants, in words (what a reader should expect Stitch to find).
    pub const fn planted(self) -> &'static str {
        match self {
            Scenario::Checkout => {
                "api-gateway → order-service, which calls inventory-service (90 ms, with three \
                 separate database round trips of 12, 15 and 18 ms) and then pricing-service \
                 (70 ms) one after the other, writes a log synchronously for 400 ms (plain code, \
                 no span) between \"inventory check complete\" and \"payment initiated\", then \
                 calls payment-service, which waits 800 ms on the external payment provider and \
                 then calls notification-service (200 ms) and analytics-service (150 ms) \
                 synchronously before answering. The 800 ms provider call is the widest bar; \
                 the article's fixes were async logging (400 ms), async notification (200 ms) \
                 and analytics (150 ms), parallel inventory and pricing (70 ms) and one \
                 transaction for the three queries (33 ms)."
            }
            Scenario::Fraud => {
                "storefront → session-service (45 ms), cart-service (180 ms, a 150 ms query), \
                 billing-service \"Charge Card\" (1.8 s) and stock-service (320 ms). Inside \
                 \"Charge Card\", \"Fraud Check\" calls the third-party fraud-api, which times \
                 out twice after 400 ms (10 ms backoff each) before the third attempt succeeds \
                 in 375 ms; then the payment gateway API takes 580 ms. The retries cost ~820 ms."
            }
            Scenario::Login => {
                "login-api → identity-service \"Authenticate User\": the user lookup takes \
                 150 ms, then \"Verify Password\" runs bcrypt.compare for 1.95 s because the \
                 cost factor is 14 rounds instead of 12; loading the profile (3 ms) and \
                 generating the JWT (2 ms) are quick."
            }
            Scenario::Orders => {
                "orders-api → access-service (15 ms) and order-details (200 ms: its own 50 ms \
                 query, then user-service (80 ms), then product-service (60 ms), whose lookup \
                 needs the user's region). user-service spends 20 ms in its database and the \
                 remaining 60 ms in business logic that has no span."
            }
            Scenario::Cascade => {
                "product-page → recommendations → user-preferences. user-preferences is \
                 overloaded: every request waits ~950 ms for a worker and is shed with 503; \
                 recommendations and product-page only pass the error on (502, then 500). The \
                 root cause is three services away from the symptom."
            }
            Scenario::BrokenPropagation => {
                "invoice-api → legacy-billing → tax-service. legacy-billing's HTTP client has an \
                 interceptor that strips unknown headers, traceparent and tracestate included, \
                 so every call to tax-service starts a new trace: each request shows up as two \
                 fragments. invoice-api's own calls to tax-service propagate fine."
            }
            Scenario::RareTimeout => {
                "catalog-api → search-service. One request in 10,000 takes a code path that \
                 falls back to a legacy database query which hangs until the 30 s statement \
                 timeout and fails the request with 504; every other request answers in \
                 ~20 ms. Stitch runs with tail sampling on, as the article recommends: the \
                 slow trace must be kept while only ~5% of the normal ones are."
            }
            Scenario::Chaos => {
                "edge-gateway (1 s timeout) → account-service → auth-service, with 500 ms of \
                 latency injected into auth-service. account-service gives each call 120 ms and \
                 retries up to six times within an 850 ms budget (so that it answers before the \
                 gateway gives up); every attempt times out, account-service answers 503 and \
                 the gateway fails the request."
            }
        }
    }

    /// Where the demo departs from the seed's numbers, if anywhere.
    pub const fn scaling(self) -> Option<&'static str> {
        match self {
            Scenario::RareTimeout => Some(
                "which request is rare is deterministic, not random: search-service's request \
                 number 2, 10,002, 20,002, ... takes the rare path (1 in 10,000, and early \
                 enough for its 30 s to elapse during the run); the scenario sends its own \
                 500 requests per second, at least 10,000 of them, whatever --rate says",
            ),
            Scenario::Orders => Some(
                "product-service's 58 ms are spent in a query the article does not draw, and \
                 the product lookup uses the user's region (a 10 ms step between the calls): \
                 with the article's layout two other findings tie with the planted one at \
                 60 ms",
            ),
            _ => None,
        }
    }

    /// The request that enters the scenario: `(service, method, path, root span name)`.
    pub(crate) const fn entry(self) -> Entry {
        match self {
            Scenario::Checkout => {
                Entry::new("api-gateway", "POST", "/api/checkout", "/api/checkout")
            }
            Scenario::Fraud => Entry::new("storefront", "POST", "/checkout", "/checkout"),
            Scenario::Login => Entry::new("login-api", "POST", "/login", "/login"),
            Scenario::Orders => {
                Entry::new("orders-api", "GET", "/api/orders/123", "/api/orders/{id}")
            }
            Scenario::Cascade => {
                Entry::new("product-page", "GET", "/products/42", "/products/{id}")
            }
            Scenario::BrokenPropagation => {
                Entry::new("invoice-api", "POST", "/invoices", "/invoices")
            }
            Scenario::RareTimeout => Entry::new("catalog-api", "GET", "/search?q=lamp", "/search"),
            Scenario::Chaos => Entry::new("edge-gateway", "GET", "/profile", "/profile"),
        }
    }

    /// The span Stitch's top finding should point at (for broken propagation: the hop), so the
    /// report can say whether Stitch found the planted problem.
    pub(crate) const fn planted_top(self) -> Planted {
        match self {
            Scenario::Checkout => Planted::Span {
                service: "payment-service",
                span: "POST /v1/charges",
            },
            Scenario::Fraud => Planted::Span {
                service: "billing-service",
                span: "POST /v2/score",
            },
            Scenario::Login => Planted::Span {
                service: "identity-service",
                span: "bcrypt.compare",
            },
            Scenario::Orders => Planted::Span {
                service: "user-service",
                span: "GET /users/{id}",
            },
            Scenario::Cascade => Planted::Span {
                service: "user-preferences",
                span: "GET /preferences",
            },
            Scenario::BrokenPropagation => Planted::Hop {
                caller: "legacy-billing",
                callee: "tax-service",
            },
            Scenario::RareTimeout => Planted::Span {
                service: "search-service",
                span: "SELECT products_legacy",
            },
            Scenario::Chaos => Planted::Span {
                service: "account-service",
                span: "GET /auth/verify",
            },
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    /// Accepts the [`Scenario::name`]s, case-insensitively, with `_` for `-`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown scenario {s:?} (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// Where a scenario's requests enter the fleet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub service: &'static str,
    pub method: &'static str,
    /// The path requested, with its query.
    pub path: &'static str,
    /// The route template, which names the root span (`{method} {route}`).
    pub route: &'static str,
}

impl Entry {
    const fn new(
        service: &'static str,
        method: &'static str,
        path: &'static str,
        route: &'static str,
    ) -> Entry {
        Entry {
            service,
            method,
            path,
            route,
        }
    }

    pub fn root_span_name(&self) -> String {
        format!("{} {}", self.method, self.route)
    }
}

/// What the scenario planted, where Stitch should point.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Planted {
    /// The main span of the top finding.
    Span {
        service: &'static str,
        span: &'static str,
    },
    /// A hop that loses trace context.
    Hop {
        caller: &'static str,
        callee: &'static str,
    },
}
