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
//! * [`render`]: [`waterfall`], a terminal waterfall of a trace, and [`format_duration`].

pub mod render;
pub mod tree;

pub use render::{WaterfallOptions, format_duration, waterfall, waterfall_tree};
pub use tree::{Node, NodeId, ParentLink, PreOrder, SpanTree};
