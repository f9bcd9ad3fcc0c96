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

mod shop;
mod synthetic;
#[cfg(test)]
mod tests;

pub use shop::Shop;
pub use synthetic::Synthetic;
use synthetic::*;

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
