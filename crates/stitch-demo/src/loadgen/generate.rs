//! Synthetic but realistic traces: the presets and the configurable generator.
//!
//! Every generator is deterministic: the same [`Rng`] state, trace count and start time give the
//! same [`Batch`], so a run is reproducible from its seed and benchmarks compare like with like.
//!
//! - [`Shop`] is modelled on the OpenTelemetry demo's web shop: a frontend calling cart,
//!   checkout, product catalog, currency, payment, shipping, email, recommendation and ad
//!   services over gRPC, with a cache client span, semantic-convention attributes and the
//!   resource attributes an SDK in Kubernetes reports. Traces have 22 spans across ten services
//!   (about 290 bytes per span as OTLP protobuf). With the default profile its output is exactly
//!   what `stitch-bench` measured before the generator moved here, so old and new figures
//!   compare.
//! - [`Synthetic`] builds traces of any shape: services, spans per trace, depth and fan-out.
//! - Any profile can add attributes of a chosen size to every span ([`Profile::attributes`],
//!   [`Profile::attribute_bytes`]); the `large-attributes` preset is the shop with eight
//!   256-byte attributes per span (SQL, JSON bodies, stack frames, headers, URLs, tokens).

use std::fmt::Write as _;
use std::sync::Arc;

use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId,
    SpanKind, Status, StatusCode, TraceId,
};

/// A small, fast, deterministic generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The generator for batch number `index` of a run seeded with `seed`: batches can be
    /// generated in any order, by any worker, and still be the same.
    pub fn for_batch(seed: u64, index: u64) -> Rng {
        // SplitMix64's finaliser spreads consecutive indices over the whole state space.
        let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng::new(z ^ (z >> 31))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `per_million` / 1,000,000.
    pub fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Wall-clock now in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A named starting point for a [`Profile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The OpenTelemetry demo's shop: 22 spans, 10 services, semantic-convention attributes.
    Shop,
    /// The shop with eight 256-byte attributes on every span (about 2.4 KB per span).
    LargeAttributes,
    /// A configurable tree: 8 services, 20 spans, depth 4, fan-out 4, four 32-byte attributes.
    Synthetic,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Shop, Preset::LargeAttributes, Preset::Synthetic];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Shop => "shop",
            Preset::LargeAttributes => "large-attributes",
            Preset::Synthetic => "synthetic",
        }
    }

    pub fn profile(self) -> Profile {
        let shop = Profile {
            preset: self,
            topology: Topology::Shop,
            attributes: 0,
            attribute_bytes: 0,
            error_rate: 0.005,
            slow_rate: 0.01,
        };
        match self {
            Preset::Shop => shop,
            Preset::LargeAttributes => Profile {
                attributes: 8,
                attribute_bytes: 256,
                ..shop
            },
            Preset::Synthetic => Profile {
                topology: Topology::Synthetic(Shape {
                    services: 8,
                    spans_per_trace: 20,
                    depth: 4,
                    fan_out: 4,
                }),
                attributes: 4,
                attribute_bytes: 32,
                ..shop
            },
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Preset, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("unknown preset {s:?}: expected shop, large-attributes or synthetic")
            })
    }
}

/// The call graph of generated traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// The shop's fixed call graph (22 spans, 10 services).
    Shop,
    /// A tree of the given shape.
    Synthetic(Shape),
}

/// The shape of a synthetic trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Distinct `service.name`s spans are spread over.
    pub services: usize,
    /// Spans in every trace.
    pub spans_per_trace: usize,
    /// Levels of the tree (the root is level 1). Every trace reaches exactly this depth when it
    /// has at least as many spans.
    pub depth: usize,
    /// The most children any span has.
    pub fan_out: usize,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The preset this profile started from (for reports).
    pub preset: Preset,
    pub topology: Topology,
    /// Attributes added to every span on top of the preset's semantic-convention ones.
    pub attributes: usize,
    /// Length of each added attribute's value, in bytes.
    pub attribute_bytes: usize,
    /// Share of traces that fail (an error span and an HTTP 500 at the root).
    pub error_rate: f64,
    /// Share of traces that take 30 s instead of tens of milliseconds.
    pub slow_rate: f64,
}

/// Why a profile cannot be generated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("{0} must be between 0 and 1")]
    Rate(&'static str),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error(
        "{spans} spans do not fit in a tree of depth {depth} with fan-out {fan_out} \
         (at most {capacity}); raise --depth or --fan-out"
    )]
    TooManySpans {
        spans: usize,
        depth: usize,
        fan_out: usize,
        capacity: usize,
    },
}

fn per_million(rate: f64) -> u64 {
    (rate * 1_000_000.0).round() as u64
}

/// Extra attributes added to every span.
#[derive(Clone, Copy, Debug, Default)]
struct Extras {
    count: usize,
    bytes: usize,
}

impl Extras {
    fn add(self, rng: &mut Rng, attributes: &mut Vec<KeyValue>) {
        for i in 0..self.count {
            let (key, _) = EXTRA_KINDS[i % EXTRA_KINDS.len()];
            let key = if i < EXTRA_KINDS.len() {
                key.to_owned()
            } else {
                format!("{key}.{}", i / EXTRA_KINDS.len())
            };
            attributes.push(KeyValue::new(key, payload(rng, i, self.bytes)));
        }
    }
}

/// A trace generator built from a [`Profile`].
pub enum Generator {
    Shop(Shop),
    Synthetic(Synthetic),
}

impl Generator {
    pub fn new(profile: &Profile) -> Result<Generator, ProfileError> {
        for (name, rate) in [
            ("the error rate", profile.error_rate),
            ("the slow rate", profile.slow_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ProfileError::Rate(name));
            }
        }
        let extras = Extras {
            count: profile.attributes,
            bytes: profile.attribute_bytes,
        };
        let (errors, slow) = (
            per_million(profile.error_rate),
            per_million(profile.slow_rate),
        );
        Ok(match profile.topology {
            Topology::Shop => Generator::Shop(Shop {
                extras,
                error_per_million: errors,
                slow_per_million: slow,
                ..Shop::new()
            }),
            Topology::Synthetic(shape) => {
                Generator::Synthetic(Synthetic::new(shape, extras, errors, slow)?)
            }
        })
    }

    /// `traces` whole traces starting within a second of `start_unix_nanos`.
    pub fn batch(&self, rng: &mut Rng, traces: usize, start_unix_nanos: u64) -> Batch {
        match self {
            Generator::Shop(g) => g.batch(rng, traces, start_unix_nanos),
            Generator::Synthetic(g) => g.batch(rng, traces, start_unix_nanos),
        }
    }

    /// Spans in every generated trace.
    pub fn spans_per_trace(&self) -> usize {
        match self {
            Generator::Shop(_) => Shop::SPANS_PER_TRACE,
            Generator::Synthetic(g) => g.parents.len(),
        }
    }

    /// Distinct services of the generated traces.
    pub fn services(&self) -> usize {
        match self {
            Generator::Shop(g) => g.resources.len(),
            Generator::Synthetic(g) => g.resources.len(),
        }
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

fn k8s_resource(i: usize, name: &str, lang: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", name),
            KeyValue::new("service.namespace", "opentelemetry-demo"),
            KeyValue::new("service.version", "2.0.2"),
            KeyValue::new("telemetry.sdk.language", lang),
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
}

fn http_scope() -> Arc<Scope> {
    Arc::new(Scope {
        name: "opentelemetry.instrumentation.http".into(),
        version: "0.48b0".into(),
        ..Default::default()
    })
}

/// One `ResourceSpans` per service that has spans.
fn group(resources: &[Arc<Resource>], scope: &Arc<Scope>, by_service: Vec<Vec<Span>>) -> Batch {
    let resource_spans = by_service
        .into_iter()
        .enumerate()
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(i, spans)| ResourceSpans {
            resource: resources[i].clone(),
            scope_spans: vec![ScopeSpans {
                scope: scope.clone(),
                spans,
            }],
        })
        .collect();
    Batch { resource_spans }
}

/// The shop preset: the OpenTelemetry demo's checkout, 22 spans over ten services.
pub struct Shop {
    resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
    extras: Extras,
    error_per_million: u64,
    slow_per_million: u64,
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

fn mark_failed(span: &mut Span) {
    span.status = Status {
        code: StatusCode::Error,
        message: "context deadline exceeded".into(),
    };
    span.events.push(Event {
        time_unix_nano: span.end_time_unix_nano,
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

const SYNTHETIC_SERVICES: &[(&str, &str)] = &[
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

const SYNTHETIC_ROUTES: &[(&str, &str)] = &[
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
    resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
    extras: Extras,
    error_per_million: u64,
    slow_per_million: u64,
    /// The parent of every span, by index; parents come before their children.
    parents: Vec<Option<usize>>,
    /// The children of every span, by index.
    children: Vec<Vec<usize>>,
}

impl Synthetic {
    fn new(
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
const EXTRA_KINDS: &[(&str, &str)] = &[
    ("db.query.text", "sql"),
    ("app.request.body", "json"),
    ("app.exception.stack", "stack"),
    ("http.request.headers", "headers"),
    ("url.full", "url"),
    ("app.auth.token", "token"),
    ("app.response.body", "json"),
    ("app.feature_flags", "flags"),
];

const PRODUCTS: &[&str] = &[
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
const CURRENCIES: &[&str] = &["USD", "EUR", "CAD", "JPY", "GBP", "TRY"];
const CLASSES: &[&str] = &[
    "io.opentelemetry.demo.checkout.CheckoutService",
    "io.opentelemetry.demo.cart.CartStore",
    "org.springframework.web.servlet.FrameworkServlet",
    "io.grpc.internal.ServerImpl$JumpToApplicationThreadServerStreamListener",
    "com.zaxxer.hikari.pool.HikariPool",
    "org.apache.kafka.clients.producer.KafkaProducer",
];
const METHODS: &[&str] = &[
    "placeOrder",
    "getCart",
    "processRequest",
    "runInContext",
    "getConnection",
    "send",
    "doFilter",
];
const FLAGS: &[&str] = &[
    "adServiceFailure",
    "cartServiceFailure",
    "productCatalogFailure",
    "recommendationCache",
    "paymentUnreachable",
    "loadGeneratorFloodHomepage",
    "kafkaQueueProblems",
    "imageSlowLoad",
];

fn hex(rng: &mut Rng, out: &mut String, digits: usize) {
    for _ in 0..digits.div_ceil(16) {
        let _ = write!(out, "{:016x}", rng.next_u64());
    }
    out.truncate(out.len() - (digits.div_ceil(16) * 16 - digits));
}

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}

/// A realistic attribute value of exactly `bytes` bytes (ASCII): repeated fragments of the
/// kind's template with random numbers and ids, so it compresses like real payloads do rather
/// than like random bytes or a repeated constant.
fn payload(rng: &mut Rng, kind: usize, bytes: usize) -> String {
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

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn spans_by_trace(batch: &Batch) -> HashMap<TraceId, Vec<(Span, String)>> {
        let mut out: HashMap<TraceId, Vec<(Span, String)>> = HashMap::new();
        for s in batch.spans() {
            out.entry(s.span.trace_id)
                .or_default()
                .push((s.span.clone(), s.service_name().to_owned()));
        }
        out
    }

    /// Depth of every span (root = 1) and the largest number of children, checking on the way
    /// that the spans form one tree.
    fn tree_shape(spans: &[(Span, String)]) -> (usize, usize) {
        let ids: HashMap<SpanId, Option<SpanId>> = spans
            .iter()
            .map(|(s, _)| (s.span_id, s.parent_span_id))
            .collect();
        assert_eq!(ids.len(), spans.len(), "span ids are unique within a trace");
        let roots = spans
            .iter()
            .filter(|(s, _)| s.parent_span_id.is_none())
            .count();
        assert_eq!(roots, 1, "one root");
        let mut children: HashMap<SpanId, usize> = HashMap::new();
        let mut max_depth = 0;
        for (s, _) in spans {
            if let Some(p) = s.parent_span_id {
                assert!(ids.contains_key(&p), "every parent is in the trace");
                *children.entry(p).or_default() += 1;
            }
            let mut depth = 1;
            let mut at = s.parent_span_id;
            while let Some(p) = at {
                depth += 1;
                assert!(depth <= spans.len(), "no cycles");
                at = ids[&p];
            }
            max_depth = max_depth.max(depth);
        }
        (max_depth, children.values().copied().max().unwrap_or(0))
    }

    fn generator(preset: Preset) -> Generator {
        Generator::new(&preset.profile()).unwrap()
    }

    #[test]
    fn shop_traces_have_22_spans_over_ten_services_in_one_tree() {
        let g = generator(Preset::Shop);
        let batch = g.batch(&mut Rng::new(5), 40, 1_700_000_000_000_000_000);
        assert_eq!(batch.span_count(), 40 * 22);
        assert_eq!(batch.resource_spans.len(), 10);
        let traces = spans_by_trace(&batch);
        assert_eq!(traces.len(), 40);
        for spans in traces.values() {
            assert_eq!(spans.len(), Shop::SPANS_PER_TRACE);
            let services: HashSet<&str> = spans.iter().map(|(_, s)| s.as_str()).collect();
            assert_eq!(
                services.len(),
                10,
                "every shop trace touches all ten services"
            );
            let (depth, fan_out) = tree_shape(spans);
            assert_eq!(
                depth, 5,
                "frontend → checkout client → server → payment client → server"
            );
            assert_eq!(fan_out, 7, "the frontend root calls seven services");
            for (s, _) in spans {
                assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
                assert!(s.attributes.len() >= 4);
            }
        }
    }

    #[test]
    fn generators_are_deterministic_for_a_seed_and_differ_between_seeds() {
        for preset in Preset::ALL {
            let g = generator(preset);
            let a = g.batch(&mut Rng::for_batch(9, 3), 7, 1_000);
            let b = g.batch(&mut Rng::for_batch(9, 3), 7, 1_000);
            assert_eq!(a, b, "{preset:?}");
            let c = g.batch(&mut Rng::for_batch(9, 4), 7, 1_000);
            assert_ne!(a, c, "{preset:?}");
        }
    }

    #[test]
    fn the_shop_is_what_stitch_bench_measured_before_the_move() {
        // Length and FNV-1a hash of a seed-1 batch encoded as OTLP protobuf, as produced by the
        // shop generator that lived in stitch-bench: figures in BENCHMARKS.md stay comparable.
        let batch = Shop::new().batch(&mut Rng::new(1), 50, 1_700_000_000_000_000_000);
        assert_eq!(batch.span_count(), 1_100);
        let bytes = stitch_wire::otlp::encode_batch(&batch);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in &bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        assert_eq!((bytes.len(), h), (323_295, 0x77f9_2280_39ee_daf3));
    }

    #[test]
    fn large_attributes_add_eight_realistic_values_of_the_configured_size() {
        let g = generator(Preset::LargeAttributes);
        let batch = g.batch(&mut Rng::new(2), 10, 0);
        for s in batch.spans() {
            let added: Vec<&KeyValue> = s
                .span
                .attributes
                .iter()
                .filter(|kv| EXTRA_KINDS.iter().any(|(k, _)| *k == kv.key))
                .collect();
            assert_eq!(added.len(), 8);
            for kv in added {
                assert_eq!(kv.value.as_str().unwrap().len(), 256, "{}", kv.key);
            }
        }
        let bytes = stitch_wire::otlp::encode_batch(&batch).len() / batch.span_count();
        assert!((2_200..3_000).contains(&bytes), "{bytes} bytes per span");
        // Realistic, not random: zstd shrinks it several times, but it is not a constant.
        let packed = zstd_free_estimate(&stitch_wire::otlp::encode_batch(&batch));
        assert!(packed > 20, "values vary: {packed} distinct 8-byte chunks");
    }

    /// Distinct 8-byte chunks (in hundreds): a crude check that values are not all the same.
    fn zstd_free_estimate(bytes: &[u8]) -> usize {
        bytes.chunks(8).collect::<HashSet<_>>().len() / 100
    }

    #[test]
    fn synthetic_traces_have_the_configured_shape() {
        for (services, spans, depth, fan_out) in [
            (3, 20, 4, 4),
            (1, 1, 1, 0),
            (8, 100, 10, 3),
            (5, 10, 10, 1),
            (2, 7, 3, 2),
        ] {
            let profile = Profile {
                topology: Topology::Synthetic(Shape {
                    services,
                    spans_per_trace: spans,
                    depth,
                    fan_out,
                }),
                ..Preset::Synthetic.profile()
            };
            let g = Generator::new(&profile).unwrap();
            assert_eq!(g.spans_per_trace(), spans);
            let batch = g.batch(&mut Rng::new(3), 30, 0);
            let traces = spans_by_trace(&batch);
            assert_eq!(traces.len(), 30);
            let mut seen_services = HashSet::new();
            for t in traces.values() {
                assert_eq!(t.len(), spans);
                let (d, f) = tree_shape(t);
                assert_eq!(d, depth.min(spans), "{services}/{spans}/{depth}/{fan_out}");
                assert!(f <= fan_out);
                for (s, svc) in t {
                    seen_services.insert(svc.clone());
                    // Four added attributes of 32 bytes, on top of three HTTP ones.
                    assert_eq!(s.attributes.len(), 7);
                    if let Some(p) = s.parent_span_id {
                        let parent = &t.iter().find(|(x, _)| x.span_id == p).unwrap().0;
                        assert!(s.start_time_unix_nano >= parent.start_time_unix_nano);
                        assert!(s.end_time_unix_nano <= parent.end_time_unix_nano);
                    }
                }
            }
            assert!(seen_services.len() <= services);
            assert!(seen_services.len() >= services.min(2));
        }
    }

    #[test]
    fn a_shape_that_cannot_hold_the_spans_is_an_error() {
        let profile = |spans, depth, fan_out| Profile {
            topology: Topology::Synthetic(Shape {
                services: 2,
                spans_per_trace: spans,
                depth,
                fan_out,
            }),
            ..Preset::Synthetic.profile()
        };
        assert!(matches!(
            Generator::new(&profile(16, 3, 3)),
            Err(ProfileError::TooManySpans { capacity: 13, .. })
        ));
        assert!(Generator::new(&profile(13, 3, 3)).is_ok());
        assert!(matches!(
            Generator::new(&profile(2, 2, 0)),
            Err(ProfileError::TooManySpans { .. })
        ));
        assert_eq!(
            Generator::new(&profile(0, 2, 2)).err(),
            Some(ProfileError::Zero("--spans-per-trace"))
        );
        let bad_rate = Profile {
            error_rate: 1.5,
            ..Preset::Shop.profile()
        };
        assert_eq!(
            Generator::new(&bad_rate).err(),
            Some(ProfileError::Rate("the error rate"))
        );
    }

    #[test]
    fn error_and_slow_rates_are_honoured() {
        for preset in [Preset::Shop, Preset::Synthetic] {
            let profile = Profile {
                error_rate: 0.2,
                slow_rate: 0.1,
                ..preset.profile()
            };
            let g = Generator::new(&profile).unwrap();
            let batch = g.batch(&mut Rng::new(4), 2_000, 0);
            let traces = spans_by_trace(&batch);
            let failed = traces
                .values()
                .filter(|t| t.iter().any(|(s, _)| s.is_error()))
                .count();
            let slow = traces
                .values()
                .filter(|t| t.iter().any(|(s, _)| s.duration_nanos() >= 30_000_000_000))
                .count();
            assert!(
                (300..500).contains(&failed),
                "{preset:?}: {failed} failed of 2000"
            );
            assert!(
                (130..270).contains(&slow),
                "{preset:?}: {slow} slow of 2000"
            );
        }
        let none = Profile {
            error_rate: 0.0,
            slow_rate: 0.0,
            ..Preset::Shop.profile()
        };
        let batch = Generator::new(&none)
            .unwrap()
            .batch(&mut Rng::new(4), 500, 0);
        assert!(batch.spans().all(|s| !s.span.is_error()));
    }
}
