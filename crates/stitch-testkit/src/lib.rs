//! The test kit: what the tests of every Stitch crate build their data with, so that a span,
//! a trace or a batch is made one way everywhere.
//!
//! * [`TraceBuilder`]: a trace span by span (service, ids, parent, name, times, kind, status,
//!   attributes), as a [`Trace`] or a [`Batch`].
//! * [`trace_id`], [`span_id`], [`resource`], [`scope`], [`batch_of`]: the small pieces.
//! * [`Rng`]: a seeded generator (SplitMix64), the same sequence on every machine.
//! * [`MemoryStore`]: the in-memory sink and reader of `stitch-query` (test double and
//!   brute-force reference), re-exported so tests find it here.
//!
//! A dev-dependency only: nothing in a shipped binary depends on it.

mod build;
mod rng;

pub use build::{
    MS, SECOND, T0, TraceBuilder, batch_of, default_trace_id, resource, scope, span, span_id,
    trace_id,
};
pub use rng::Rng;
pub use stitch_query::MemoryStore;

use stitch_model::{Batch, Trace};

/// Every span of `trace` as one batch, resources and scopes kept.
pub fn trace_to_batch(trace: &Trace) -> Batch {
    Batch {
        resource_spans: trace.resource_spans.clone(),
    }
}
