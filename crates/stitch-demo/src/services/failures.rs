//! The handlers of the failure scenarios: a cascade, broken propagation, a rare timeout and
//! chaos with retries.

use super::*;

// ----- cascade (seed 001) --------------------------------------------------------------------

pub(super) fn cascade_page(c: Call) -> BoxFut<Reply> {
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

pub(super) fn cascade_recommendations(c: Call) -> BoxFut<Reply> {
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

pub(super) fn cascade_preferences(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        // Overloaded: the request queues for a worker until the queue deadline, then is shed.
        c.work(950).await;
        c.event("request shed: no worker free within 950ms");
        Reply::error(503, "503 Service Unavailable: overloaded")
    })
}

// ----- broken propagation (seed 000) ---------------------------------------------------------

pub(super) fn broken_invoice(c: Call) -> BoxFut<Reply> {
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

pub(super) fn broken_legacy(c: Call) -> BoxFut<Reply> {
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

pub(super) fn broken_tax_rates(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(4).await;
        Reply::ok()
    })
}

pub(super) fn broken_tax_calculate(c: Call) -> BoxFut<Reply> {
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

pub(super) fn rare_catalog(c: Call) -> BoxFut<Reply> {
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

pub(super) fn rare_search(c: Call) -> BoxFut<Reply> {
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

pub(super) fn chaos_gateway(c: Call) -> BoxFut<Reply> {
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
pub(super) const AUTH_ATTEMPT_MS: u64 = 120;
pub(super) const AUTH_BUDGET_MS: u64 = 850;
pub(super) const AUTH_BACKOFF_MS: u64 = 10;
pub(super) const AUTH_MAX_ATTEMPTS: u32 = 6;

pub(super) fn chaos_account(c: Call) -> BoxFut<Reply> {
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

pub(super) fn chaos_auth(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.attribute(KeyValue::new("chaos.injected_latency_ms", 500i64));
        c.event("chaos: latency injected");
        c.work(500).await;
        c.work(8).await;
        Reply::ok()
    })
}
