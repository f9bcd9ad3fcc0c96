//! Synthetic but realistic trace data for Stitch's benchmarks.
//!
//! The `shop` preset is modelled on the OpenTelemetry demo's web shop: a frontend calling
//! cart, checkout, product catalog, currency, payment, shipping, email, recommendation and ad
//! services over HTTP and gRPC, with database and cache client spans, semantic-convention
//! attributes and the resource attributes an SDK in Kubernetes reports. Output is deterministic
//! for a given seed.

use std::sync::Arc;

use stitch_model::{
    AnyValue, Batch, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind,
    Status, StatusCode, TraceId,
};

/// A small, fast, deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }
}

const SERVICES: &[(&str, &str)] = &[
    ("frontend", "typescript"),
    ("cart", "dotnet"),
    ("checkout", "go"),
    ("product-catalog", "go"),
    ("currency", "cpp"),
    ("payment", "nodejs"),
    ("shipping", "rust"),
    ("email", "ruby"),
    ("recommendation", "python"),
    ("ad", "java"),
];

/// The resources of the shop's services, built once and shared by every batch.
pub struct Shop {
    resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
}

impl Default for Shop {
    fn default() -> Self {
        Shop::new()
    }
}

impl Shop {
    pub fn new() -> Shop {
        let resources = SERVICES
            .iter()
            .enumerate()
            .map(|(i, (name, lang))| {
                Arc::new(Resource {
                    attributes: vec![
                        KeyValue::new("service.name", *name),
                        KeyValue::new("service.namespace", "opentelemetry-demo"),
                        KeyValue::new("service.version", "2.0.2"),
                        KeyValue::new("telemetry.sdk.language", *lang),
                        KeyValue::new("telemetry.sdk.name", "opentelemetry"),
                        KeyValue::new("telemetry.sdk.version", "1.38.0"),
                        KeyValue::new("host.name", format!("node-{}", i % 3)),
                        KeyValue::new("k8s.namespace.name", "shop"),
                        KeyValue::new("k8s.pod.name", format!("{name}-7d9f8c{i:02}-x2k4p")),
                        KeyValue::new(
                            "container.id",
                            format!("{:064x}", (i as u64 + 1) * 0x1234_5678_9abc_def1),
                        ),
                    ],
                    dropped_attributes_count: 0,
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                })
            })
            .collect();
        Shop {
            resources,
            scope: Arc::new(Scope {
                name: "opentelemetry.instrumentation.http".into(),
                version: "0.48b0".into(),
                ..Default::default()
            }),
        }
    }

    /// `traces` whole traces starting around `start_unix_nanos`, each spread over the services
    /// it touches (one `ResourceSpans` per service per trace).
    pub fn batch(&self, rng: &mut Rng, traces: usize, start_unix_nanos: u64) -> Batch {
        let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
        for _ in 0..traces {
            self.trace(rng, start_unix_nanos, &mut by_service);
        }
        let resource_spans = by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(i, spans)| ResourceSpans {
                resource: self.resources[i].clone(),
                scope_spans: vec![ScopeSpans {
                    scope: self.scope.clone(),
                    spans,
                }],
            })
            .collect();
        Batch { resource_spans }
    }

    fn trace(&self, rng: &mut Rng, t0: u64, out: &mut [Vec<Span>]) {
        let trace_id = TraceId::from_halves(rng.next_u64(), rng.next_u64());
        let ms = 1_000_000u64;
        let start = t0 + rng.below(1000) * ms;
        let slow = rng.chance(10_000);
        let failed = rng.chance(5_000);
        let mut new_span = |rng: &mut Rng,
                            svc: usize,
                            parent: Option<SpanId>,
                            name: &str,
                            kind: SpanKind,
                            begin: u64,
                            dur: u64,
                            attrs: Vec<KeyValue>| {
            let span = Span {
                trace_id,
                span_id: SpanId::from_u64(rng.next_u64() | 1),
                parent_span_id: parent,
                trace_state: String::new(),
                flags: 0x301,
                name: name.to_owned(),
                kind,
                start_time_unix_nano: begin,
                end_time_unix_nano: begin + dur,
                attributes: attrs,
                status: Status::default(),
                ..Default::default()
            };
            let id = span.span_id;
            out[svc].push(span);
            id
        };
        let http_server = |method: &str, route: &str, status: i64| {
            vec![
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.route", route),
                KeyValue::new("url.path", route),
                KeyValue::new("url.scheme", "http"),
                KeyValue::new("http.response.status_code", status),
                KeyValue::new("server.address", "frontend-proxy"),
                KeyValue::new("server.port", 8080i64),
                KeyValue::new("user_agent.original", "python-requests/2.32.3"),
                KeyValue::new("network.protocol.version", "1.1"),
            ]
        };
        let rpc = |service: &str, method: &str| {
            vec![
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", format!("oteldemo.{service}")),
                KeyValue::new("rpc.method", method),
                KeyValue::new("rpc.grpc.status_code", 0i64),
                KeyValue::new("server.address", format!("{}:8080", service.to_lowercase())),
                KeyValue::new("network.peer.port", 8080i64),
            ]
        };
        let total = if slow {
            30_000 * ms
        } else {
            (40 + rng.below(400)) * ms
        };
        let root = new_span(
            rng,
            0,
            None,
            "GET /api/checkout",
            SpanKind::Server,
            start,
            total,
            http_server("POST", "/api/checkout", if failed { 500 } else { 200 }),
        );
        let mut at = start + ms;
        // Cart, product catalog (several items), currency, checkout → payment, shipping, email.
        let calls: &[(usize, &str, &str)] = &[
            (1, "CartService", "GetCart"),
            (3, "ProductCatalogService", "GetProduct"),
            (3, "ProductCatalogService", "GetProduct"),
            (4, "CurrencyService", "Convert"),
            (2, "CheckoutService", "PlaceOrder"),
            (8, "RecommendationService", "ListRecommendations"),
            (9, "AdService", "GetAds"),
        ];
        let budget = total.saturating_sub(2 * ms) / calls.len() as u64;
        for &(svc, service, method) in calls {
            let dur = budget.max(ms) * (50 + rng.below(50)) / 100;
            let name = format!("oteldemo.{service}/{method}");
            let client = new_span(
                rng,
                0,
                Some(root),
                &name,
                SpanKind::Client,
                at,
                dur,
                rpc(service, method),
            );
            let server = new_span(
                rng,
                svc,
                Some(client),
                &name,
                SpanKind::Server,
                at + dur / 20,
                dur * 9 / 10,
                rpc(service, method),
            );
            if svc == 1 {
                new_span(
                    rng,
                    svc,
                    Some(server),
                    "HGET",
                    SpanKind::Client,
                    at + dur / 10,
                    dur / 3,
                    vec![
                        KeyValue::new("db.system", "redis"),
                        KeyValue::new("db.statement", "HGET cart:{user}"),
                        KeyValue::new("server.address", "valkey-cart"),
                        KeyValue::new("server.port", 6379i64),
                    ],
                );
            }
            if svc == 2 {
                for (i, (s, m)) in [
                    (5, "Charge"),
                    (6, "ShipOrder"),
                    (7, "SendOrderConfirmation"),
                ]
                .into_iter()
                .enumerate()
                {
                    let sub = dur / 4;
                    let b = at + dur / 10 + i as u64 * sub;
                    let sname = format!("oteldemo.{}/{m}", SERVICES[s].0);
                    let c = new_span(
                        rng,
                        svc,
                        Some(server),
                        &sname,
                        SpanKind::Client,
                        b,
                        sub,
                        rpc(SERVICES[s].0, m),
                    );
                    new_span(
                        rng,
                        s,
                        Some(c),
                        &sname,
                        SpanKind::Server,
                        b + sub / 20,
                        sub * 9 / 10,
                        rpc(SERVICES[s].0, m),
                    );
                }
            }
            at += dur + ms / 2;
        }
        if failed && let Some(last) = out[0].last_mut() {
            last.status = Status {
                code: StatusCode::Error,
                message: "context deadline exceeded".into(),
            };
            last.events.push(stitch_model::Event {
                time_unix_nano: last.end_time_unix_nano,
                name: "exception".into(),
                attributes: vec![
                    KeyValue::new("exception.type", "DeadlineExceeded"),
                    KeyValue::new(
                        "exception.message",
                        AnyValue::from("context deadline exceeded"),
                    ),
                ],
                dropped_attributes_count: 0,
            });
        }
    }
}

/// Wall-clock now in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
