//! The shop preset: an online shop's services and the requests that cross them.

use super::*;

/// The shop preset: the OpenTelemetry demo's checkout, 22 spans over ten services.
pub struct Shop {
    pub(super) resources: Vec<Arc<Resource>>,
    pub(super) scope: Arc<Scope>,
    pub(super) extras: Extras,
    pub(super) error_per_million: u64,
    pub(super) slow_per_million: u64,
}

impl Default for Shop {
    fn default() -> Self {
        Shop::new()
    }
}

impl Shop {
    /// Spans in every shop trace.
    pub const SPANS_PER_TRACE: usize = 22;

    /// The shop with the default profile: 0.5% of traces fail, 1% are slow.
    pub fn new() -> Shop {
        Shop {
            resources: SERVICES
                .iter()
                .enumerate()
                .map(|(i, (name, lang))| k8s_resource(i, name, lang))
                .collect(),
            scope: http_scope(),
            extras: Extras::default(),
            error_per_million: 5_000,
            slow_per_million: 10_000,
        }
    }

    /// `traces` whole traces starting around `start_unix_nanos`, each spread over the services
    /// it touches (one `ResourceSpans` per service per batch).
    pub fn batch(&self, rng: &mut Rng, traces: usize, start_unix_nanos: u64) -> Batch {
        let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
        for _ in 0..traces {
            self.trace(rng, start_unix_nanos, &mut by_service);
        }
        group(&self.resources, &self.scope, by_service)
    }

    fn trace(&self, rng: &mut Rng, t0: u64, out: &mut [Vec<Span>]) {
        let trace_id = TraceId::from_halves(rng.next_u64(), rng.next_u64());
        let ms = 1_000_000u64;
        let start = t0 + rng.below(1000) * ms;
        let slow = rng.chance(self.slow_per_million);
        let failed = rng.chance(self.error_per_million);
        let extras = self.extras;
        let mut new_span = |rng: &mut Rng,
                            svc: usize,
                            parent: Option<SpanId>,
                            name: &str,
                            kind: SpanKind,
                            begin: u64,
                            dur: u64,
                            mut attrs: Vec<KeyValue>| {
            let span_id = SpanId::from_u64(rng.next_u64() | 1);
            extras.add(rng, &mut attrs);
            let span = Span {
                trace_id,
                span_id,
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
            out[svc].push(span);
            span_id
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
            mark_failed(last);
        }
    }
}
