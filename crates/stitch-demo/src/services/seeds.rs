//! The handlers of the scenarios taken from the seed articles' case studies: the slow
//! checkout, the fraud check, the login and the orders page.

use super::*;

// ----- checkout (seed 000) -------------------------------------------------------------------

pub(super) fn checkout_gateway(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        let order = c.http(Http::post("order-service", "/orders")).await;
        if !order.is_success() {
            return upstream_failed(502, "order-service", &order);
        }
        Reply::ok()
    })
}

pub(super) fn checkout_order(c: Call) -> BoxFut<Reply> {
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

pub(super) fn checkout_inventory(c: Call) -> BoxFut<Reply> {
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

pub(super) fn checkout_pricing(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(68).await;
        Reply::ok()
    })
}

pub(super) fn checkout_payment(c: Call) -> BoxFut<Reply> {
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

pub(super) fn checkout_notification(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(198).await;
        Reply::ok()
    })
}

pub(super) fn checkout_analytics(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(148).await;
        Reply::ok()
    })
}

// ----- fraud (seed 001) ----------------------------------------------------------------------

pub(super) fn fraud_storefront(c: Call) -> BoxFut<Reply> {
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

pub(super) fn fraud_session(c: Call) -> BoxFut<Reply> {
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

pub(super) fn fraud_cart(c: Call) -> BoxFut<Reply> {
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

pub(super) fn fraud_billing(c: Call) -> BoxFut<Reply> {
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

pub(super) fn fraud_stock(c: Call) -> BoxFut<Reply> {
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

pub(super) fn login_api(c: Call) -> BoxFut<Reply> {
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

pub(super) fn login_identity(c: Call) -> BoxFut<Reply> {
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

pub(super) fn login_member(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.internal("Load User Profile", Vec::new(), |c| async move {
            c.work(3).await
        })
        .await;
        Reply::ok()
    })
}

// ----- orders (seed 004) ---------------------------------------------------------------------

pub(super) fn orders_api(c: Call) -> BoxFut<Reply> {
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

pub(super) fn orders_access(c: Call) -> BoxFut<Reply> {
    Box::pin(async move {
        c.work(14).await;
        Reply::ok()
    })
}

pub(super) fn orders_details(c: Call) -> BoxFut<Reply> {
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

pub(super) fn orders_user(c: Call) -> BoxFut<Reply> {
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

pub(super) fn orders_product(c: Call) -> BoxFut<Reply> {
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
