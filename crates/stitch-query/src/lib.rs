//! The contracts between Stitch's store and the crates that write to it and read from it.
//!
//! - [`SpanSink`]: where receivers hand decoded spans; success means durable.
//! - [`TraceReader`]: trace by id, search ([`SearchQuery`]), services and operations.
//! - [`TraceObserver`]: the store's report of which traces became visible, which the live
//!   RED and dependency aggregates ([`live`]) follow.
//! - [`MemoryStore`]: an in-memory sink and reader, for tests and as the brute-force
//!   reference that indexed search paths are checked against.
//! - [`conformance`]: the checks every sink-and-reader passes, the store and [`MemoryStore`]
//!   alike.
//! - [`traceql`]: the TraceQL language (parser, checks, evaluation on a trace) and search with
//!   it over any [`TraceReader`].
//!
//! Receivers (`stitch-ingest`), the query APIs (`stitch-api`) and the demo depend on these
//! contracts, not on the store; the binary composes them. Nothing here does I/O or speaks
//! HTTP; the live aggregates' feeding task is the only thing that runs on Tokio.

pub mod conformance;
pub mod live;
mod memory;
mod reader;
mod sink;
pub mod traceql;

pub use live::{Backlog, Live, LiveAggregates, LiveOptions, Pending};
pub use memory::MemoryStore;
pub use reader::{Operation, ReadError, SearchQuery, TraceReader};
pub use sink::{AppliedSpan, SpanSink, TraceObserver, WriteError};
/// How many spans a stored span stands for, from the sampling probabilities recorded on it
/// (readers that aggregate weight spans with it).
pub use stitch_pipeline::SpanWeights;
