//! The seed case, built with the test kit's trace builder (re-exported for the tests).
#![allow(dead_code)]

use stitch_model::Trace;
#[allow(unused_imports)]
pub use stitch_testkit::{MS, T0, TraceBuilder};

/// The seed case: a checkout request of 2,400 ms. API Gateway 2400ms → Auth 45ms, Cart 180ms
/// (→ DB 150ms), Payment 1800ms (→ Fraud Check 1200ms, Payment Gateway API 580ms),
/// Inventory 320ms.
pub fn checkout() -> Trace {
    TraceBuilder::new()
        .ms("api-gateway", 1, None, "API Gateway", 0, 2400)
        .ms("auth", 2, Some(1), "Auth", 5, 50)
        .ms("cart", 3, Some(1), "Cart", 55, 235)
        .ms("postgres", 4, Some(3), "DB", 70, 220)
        .ms("payment", 5, Some(1), "Payment", 240, 2040)
        .ms("fraud", 6, Some(5), "Fraud Check", 250, 1450)
        .ms("payment", 7, Some(5), "Payment Gateway API", 1455, 2035)
        .ms("inventory", 8, Some(1), "Inventory", 2045, 2365)
        .build()
}
