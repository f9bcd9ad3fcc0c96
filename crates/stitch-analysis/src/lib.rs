//! Pure algorithms over traces: span tree, critical path, gaps, findings, text rendering.
//!
//! # Contract
//!
//! * This crate performs no I/O: it reads no files, sockets, clocks or environment, and writes
//!   nothing anywhere. Renderers return `String`s; the caller decides where they go.
//! * Nothing is async and nothing spawns threads or tasks.
//! * It depends on no Stitch crate but `stitch-model`, and borrows model values rather than
//!   copying them.
//! * Results are deterministic: the same trace gives the same output (no randomness, no
//!   dependence on hash-map order).
//! * Imperfect traces (orphans, duplicate span ids, parent cycles, end before start) are
//!   handled, never rejected; see [`tree`].
//!
//! # Modules
//!
//! * [`tree`]: [`SpanTree`], the parent/child structure of a trace.
//! * [`render`]: [`waterfall`], a terminal waterfall of a trace, and [`format_duration`];
//!   [`findings_text`], the ranked findings under it.
//! * [`skew`]: per-trace clock-skew adjustment.
//! * [`mod@critical_path`]: the last-finishing-child walk, as time sections per span.
//! * [`stats`]: count, total, self and critical-path time per service and operation.
//! * [`findings`]: what is worth fixing, in plain words, ranked by the time it costs.
//! * [`analyze`]: all of the above for one trace, as one serialisable [`TraceAnalysis`].

pub mod aggregate;
mod analysis;
pub mod breakdown;
pub mod cohort;
pub mod critical_path;
mod fast_hash;
pub mod findings;
pub mod graph;
mod json;
pub mod propagation;
pub mod render;
mod semconv;
pub mod sketch;
pub mod skew;
pub mod stats;
mod timeline;
pub mod tree;

pub use render::{WaterfallOptions, format_duration, waterfall, waterfall_tree};
pub use tree::{Node, NodeId, ParentLink, PreOrder, SpanTree};

// Per trace.
pub use analysis::{TraceAnalysis, analyze};
pub use critical_path::{CriticalPath, CriticalPathSection, critical_path};
pub use findings::{AnalysisOptions, Finding, FindingKind};
pub use render::findings_text;
pub use skew::{SkewAdjusted, SkewAdjustment, adjust_clock_skew, clock_skew};
pub use stats::{GroupStats, TraceStats, self_times, trace_stats};

// Across traces.
pub use aggregate::{KindRow, OVERFLOW_OPERATION, RedAggregator, RedOptions, RedRow, TimeWindow};
pub use breakdown::{
    BreakdownShare, Endpoint, LatencyBreakdown, latency_breakdown, simple_critical_path,
};
pub use cohort::{
    CohortDelta, CohortDiff, CohortDimension, CohortDimensionDiff, CohortError, CohortOptions,
    cohort_diff, cohort_diff_with,
};
pub use graph::{
    DependencyEdge, DependencyGraph, GraphOptions, GraphSnapshot, JaegerDependency, ServiceNode,
    TransitiveDependency,
};
pub use propagation::{
    BrokenHop, HopExample, LikelyCause, PropagationOptions, find_broken_propagation,
};
pub use sketch::{QuantileSketch, SketchMismatch};
