//! Stitch's sampling engine: head, tail and adaptive sampling.
//!
//! # Contract
//!
//! * Pure and deterministic: no I/O, no threads, no async, no clock reads. Every method that
//!   depends on time takes `now` (nanoseconds; Unix time in the server, anything monotonic
//!   in tests), so tests never sleep.
//! * Bounded memory: the tail buffer has a byte budget and a trace limit; caches are LRUs of
//!   configured sizes; per-service and per-operation state is capped.
//! * No wire formats and no store: spans come in as [`stitch_model`] values (or any
//!   [`SpanRecord`]); decisions go out as values for the caller to store, count and log.
//!
//! # Modules
//!
//! * [`config`]: the `sampling` section of the config file (Collector-compatible policy
//!   list), validation with field paths, the `seed` preset.
//! * [`tail`]: [`TailSampler`], trace assembly, decision wait, policies, decision caches,
//!   byte budget, metrics.
//! * [`policy`]: the policy types and how their votes combine.
//! * [`condition`]: Stitch's filter language for the `condition` policy.
//! * [`head`]: [`HeadSampler`], consistent probability sampling from the trace id or the
//!   OpenTelemetry `th`/`rv` values in `tracestate`, and a rate limiter.
//! * [`adaptive`]: raising a service's sampling when its error rate spikes
//!   ([`ErrorRateController`]) and Jaeger remote sampling with per-operation probabilities
//!   ([`adaptive::jaeger::RemoteSampler`]).
//! * [`stage`]: the head stage every received batch passes before the write-ahead log: root
//!   spans counted for remote sampling, head sampling applied and recorded on kept spans.
//! * [`span`]: what policies see of a span ([`SpanView`]), the buffered record
//!   ([`ModelSpan`]), splitting batches by trace and regrouping kept spans.
//! * [`weight`]: how many spans a stored span stands for ([`SpanWeights`]), from the head and
//!   tail probabilities recorded on it, to scale RED and call counts.

pub mod adaptive;
pub mod bucket;
pub mod condition;
pub mod config;
pub mod head;
mod lru;
pub mod policy;
pub mod span;
pub mod stage;
pub mod tail;
pub mod units;
pub mod weight;

pub use adaptive::{AdaptiveEvent, ErrorRateController, Level, ServiceState};
pub use config::{ConfigError, FieldError, Preset, SamplingConfig};
pub use head::{HeadDecision, HeadSampler};
pub use span::{
    CompactResource, CompactSpan, Compactor, ModelSpan, SpanNeeds, SpanRecord, SpanView,
    group_spans, split_batch,
};
pub use tail::{Decision, DecisionReason, SamplingStatus, TailMetrics, TailSampler, Verdict};
pub use weight::SpanWeights;
