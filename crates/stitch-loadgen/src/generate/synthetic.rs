//! Synthetic traces of a chosen shape (topology, depth, fan-out, attribute payloads).

use super::*;

pub(super) const SYNTHETIC_SERVICES: &[(&str, &str)] = &[
    ("gateway", "go"),
    ("users", "java"),
    ("orders", "python"),
    ("inventory", "go"),
    ("pricing", "rust"),
    ("payments", "nodejs"),
    ("search", "java"),
    ("notifications", "ruby"),
    ("auth", "go"),
    ("recommendations", "python"),
];

pub(super) const SYNTHETIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/items"),
    ("GET", "/api/items/{id}"),
    ("POST", "/api/orders"),
    ("GET", "/api/orders/{id}"),
    ("GET", "/api/users/{id}"),
    ("PUT", "/api/users/{id}"),
    ("POST", "/api/search"),
    ("GET", "/api/health"),
];

/// Traces of a configurable shape: a tree of `spans_per_trace` spans that reaches `depth`
/// levels, no span with more than `fan_out` children, spans spread over `services` services.
/// The tree is the same for every trace (a chain down to `depth`, then filled breadth first);
/// services, operations and timings vary per trace.
pub struct Synthetic {
    pub(super) resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
    extras: Extras,
    error_per_million: u64,
    slow_per_million: u64,
    /// The parent of every span, by index; parents come before their children.
    pub(super) parents: Vec<Option<usize>>,
    /// The children of every span, by index.
    children: Vec<Vec<usize>>,
}

impl Synthetic {
    pub(super) fn new(
        shape: Shape,
        extras: Extras,
        error_per_million: u64,
        slow_per_million: u64,
    ) -> Result<Synthetic, ProfileError> {
        let Shape {
            services,
            spans_per_trace: n,
            depth,
            fan_out,
        } = shape;
        for (name, v) in [
            ("--services", services),
            ("--spans-per-trace", n),
            ("--depth", depth),
        ] {
            if v == 0 {
                return Err(ProfileError::Zero(name));
            }
        }
        let too_many = |capacity| ProfileError::TooManySpans {
            spans: n,
            depth,
            fan_out,
            capacity,
        };
        let mut parents: Vec<Option<usize>> = vec![None];
        let mut level = vec![1usize];
        let mut child_count = vec![0usize];
        // The spine: one chain down to `depth` levels.
        while parents.len() < n.min(depth) {
            let p = parents.len() - 1;
            if fan_out == 0 {
                return Err(too_many(1));
            }
            parents.push(Some(p));
            level.push(level[p] + 1);
            child_count[p] += 1;
            child_count.push(0);
        }
        // Then breadth first, each span up to `fan_out` children, no deeper than `depth`.
        let mut i = 0;
        while parents.len() < n && i < parents.len() {
            if child_count[i] < fan_out && level[i] < depth {
                parents.push(Some(i));
                level.push(level[i] + 1);
                child_count[i] += 1;
                child_count.push(0);
            } else {
                i += 1;
            }
        }
        if parents.len() < n {
            return Err(too_many(parents.len()));
        }
        let mut children = vec![Vec::new(); n];
        for (i, p) in parents.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        let resources = (0..services)
            .map(|i| {
                let (name, lang) = SYNTHETIC_SERVICES[i % SYNTHETIC_SERVICES.len()];
                let name = if i < SYNTHETIC_SERVICES.len() {
                    name.to_owned()
                } else {
                    format!("{name}-{}", i / SYNTHETIC_SERVICES.len())
                };
                k8s_resource(i, &name, lang)
            })
            .collect();
        Ok(Synthetic {
            resources,
            scope: http_scope(),
            extras,
            error_per_million,
            slow_per_million,
            parents,
            children,
        })
    }

    pub fn batch(&self, rng: &mut Rng, traces: usize, start_unix_nanos: u64) -> Batch {
        let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); self.resources.len()];
        for _ in 0..traces {
            self.trace(rng, start_unix_nanos, &mut by_service);
        }
        group(&self.resources, &self.scope, by_service)
    }

    fn trace(&self, rng: &mut Rng, t0: u64, out: &mut [Vec<Span>]) {
        let n = self.parents.len();
        let ms = 1_000_000u64;
        let trace_id = TraceId::from_halves(rng.next_u64(), rng.next_u64());
        let slow = rng.chance(self.slow_per_million);
        let failed = rng.chance(self.error_per_million);
        let failing = if failed {
            Some(rng.below(n as u64) as usize)
        } else {
            None
        };
        let start = t0 + rng.below(1000) * ms;
        let total = if slow {
            30_000 * ms
        } else {
            (20 + rng.below(480)) * ms
        };
        // Where each span sits: (start, duration, service, span id).
        let mut placed: Vec<(u64, u64, usize, SpanId)> = Vec::with_capacity(n);
        for i in 0..n {
            let (begin, dur, service) = match self.parents[i] {
                None => (start, total, 0),
                Some(p) => {
                    let (p_start, p_dur, _, _) = placed[p];
                    let siblings = &self.children[p];
                    let k = siblings.len() as u64;
                    let j = siblings.iter().position(|&c| c == i).unwrap_or(0) as u64;
                    let slot = p_dur * 9 / 10 / k.max(1);
                    let begin = p_start + p_dur / 20 + j * slot;
                    let dur = (slot * (60 + rng.below(35)) / 100).max(1);
                    let service = rng.below(self.resources.len() as u64) as usize;
                    (begin, dur, service)
                }
            };
            let parent_service = self.parents[i].map(|p| placed[p].2);
            let (method, route) =
                SYNTHETIC_ROUTES[rng.below(SYNTHETIC_ROUTES.len() as u64) as usize];
            let kind = match parent_service {
                None => SpanKind::Server,
                Some(ps) if ps != service => SpanKind::Server,
                Some(_) => SpanKind::Internal,
            };
            let error_here = failing == Some(i) || (failed && i == 0);
            let mut attributes = vec![
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.route", route),
                KeyValue::new(
                    "http.response.status_code",
                    if error_here { 500i64 } else { 200 },
                ),
            ];
            let span_id = SpanId::from_u64(rng.next_u64() | 1);
            self.extras.add(rng, &mut attributes);
            let mut span = Span {
                trace_id,
                span_id,
                parent_span_id: self.parents[i].map(|p| placed[p].3),
                flags: 0x301,
                name: format!("{method} {route}"),
                kind,
                start_time_unix_nano: begin,
                end_time_unix_nano: begin + dur,
                attributes,
                ..Default::default()
            };
            if error_here {
                mark_failed(&mut span);
            }
            out[service].push(span);
            placed.push((begin, dur, service, span_id));
        }
    }
}

/// The kinds of added attributes: key and what its value looks like.
pub(super) const EXTRA_KINDS: &[(&str, &str)] = &[
    ("db.query.text", "sql"),
    ("app.request.body", "json"),
    ("app.exception.stack", "stack"),
    ("http.request.headers", "headers"),
    ("url.full", "url"),
    ("app.auth.token", "token"),
    ("app.response.body", "json"),
    ("app.feature_flags", "flags"),
];

pub(super) const PRODUCTS: &[&str] = &[
    "OLJCESPC7Z",
    "66VCHSJNUP",
    "1YMWWN1N4O",
    "L9ECAV7KIM",
    "2ZYFJ3GM2N",
    "0PUK6V6EV0",
    "LS4PSXUNUM",
    "9SIQT8TOJO",
    "6E92ZMYYFZ",
    "HQTGWGPNH4",
];
pub(super) const CURRENCIES: &[&str] = &["USD", "EUR", "CAD", "JPY", "GBP", "TRY"];
pub(super) const CLASSES: &[&str] = &[
    "io.opentelemetry.demo.checkout.CheckoutService",
    "io.opentelemetry.demo.cart.CartStore",
    "org.springframework.web.servlet.FrameworkServlet",
    "io.grpc.internal.ServerImpl$JumpToApplicationThreadServerStreamListener",
    "com.zaxxer.hikari.pool.HikariPool",
    "org.apache.kafka.clients.producer.KafkaProducer",
];
pub(super) const METHODS: &[&str] = &[
    "placeOrder",
    "getCart",
    "processRequest",
    "runInContext",
    "getConnection",
    "send",
    "doFilter",
];
pub(super) const FLAGS: &[&str] = &[
    "adServiceFailure",
    "cartServiceFailure",
    "productCatalogFailure",
    "recommendationCache",
    "paymentUnreachable",
    "loadGeneratorFloodHomepage",
    "kafkaQueueProblems",
    "imageSlowLoad",
];

pub(super) fn hex(rng: &mut Rng, out: &mut String, digits: usize) {
    for _ in 0..digits.div_ceil(16) {
        let _ = write!(out, "{:016x}", rng.next_u64());
    }
    out.truncate(out.len() - (digits.div_ceil(16) * 16 - digits));
}

pub(super) fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}

/// A realistic attribute value of exactly `bytes` bytes (ASCII): repeated fragments of the
/// kind's template with random numbers and ids, so it compresses like real payloads do rather
/// than like random bytes or a repeated constant.
pub(super) fn payload(rng: &mut Rng, kind: usize, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 160);
    let kind = EXTRA_KINDS[kind % EXTRA_KINDS.len()].1;
    while s.len() < bytes {
        match kind {
            "sql" => {
                let _ = write!(
                    s,
                    "SELECT o.id, o.status, o.total_units, i.sku, i.quantity FROM orders o JOIN \
                     order_items i ON i.order_id = o.id WHERE o.customer_id = {} AND o.created_at \
                     > now() - interval '{} days' ORDER BY o.created_at DESC LIMIT {}; ",
                    rng.below(10_000_000),
                    1 + rng.below(90),
                    10 + rng.below(90)
                );
            }
            "json" => {
                let _ = write!(
                    s,
                    "{{\"productId\":\"{}\",\"quantity\":{},\"price\":{{\"currencyCode\":\"{}\",\
                     \"units\":{},\"nanos\":{}}}}},",
                    pick(rng, PRODUCTS),
                    1 + rng.below(9),
                    pick(rng, CURRENCIES),
                    rng.below(500),
                    rng.below(100) * 10_000_000
                );
            }
            "stack" => {
                let _ = writeln!(
                    s,
                    "\tat {}.{}({}.java:{})",
                    pick(rng, CLASSES),
                    pick(rng, METHODS),
                    pick(rng, METHODS),
                    10 + rng.below(900)
                );
            }
            "headers" => {
                s.push_str(
                    "accept: application/json; accept-language: en-US,en;q=0.9; x-request-id: ",
                );
                hex(rng, &mut s, 32);
                s.push_str("; traceparent: 00-");
                hex(rng, &mut s, 32);
                s.push('-');
                hex(rng, &mut s, 16);
                s.push_str("-01; ");
            }
            "url" => {
                let _ = write!(
                    s,
                    "https://shop.example.com/api/products?category={}&page={}&currency={}&sessionId=",
                    pick(rng, PRODUCTS),
                    1 + rng.below(40),
                    pick(rng, CURRENCIES)
                );
                hex(rng, &mut s, 32);
                s.push('&');
            }
            "token" => {
                // Base64url-like: random, as tokens are.
                const ALPHABET: &[u8] =
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let mut x = rng.next_u64();
                for _ in 0..10 {
                    s.push(ALPHABET[(x & 63) as usize] as char);
                    x >>= 6;
                }
            }
            _ => {
                let _ = write!(
                    s,
                    "{}={};",
                    pick(rng, FLAGS),
                    if rng.chance(200_000) { "on" } else { "off" }
                );
            }
        }
    }
    s.truncate(bytes);
    s
}
