//! The write contract: where receivers hand decoded spans to be stored.

use async_trait::async_trait;
use stitch_model::Batch;

/// Why spans were not stored. Both are worth retrying, and neither was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Too much is waiting to be written; the message names the bound.
    #[error("{0}")]
    Overloaded(String),
    /// The store cannot write now (a full disk, a failed write); the message says why.
    #[error("{0}")]
    Unavailable(String),
}

/// Takes batches of spans and makes them durable.
#[async_trait]
pub trait SpanSink: Send + Sync + 'static {
    /// Stores `batch` and returns once it is durable: a success is an acknowledgement, and an
    /// acknowledged span is never lost. `received` is the OTLP `ExportTraceServiceRequest`
    /// protobuf the batch was decoded from, when the caller has it and it holds exactly the
    /// spans of `batch` (none rejected or removed); a sink that stores OTLP keeps those bytes
    /// instead of encoding the batch again.
    async fn append(&self, batch: Batch, received: Option<Vec<u8>>) -> Result<(), WriteError>;
}

/// Told which traces a store made visible, so that aggregates can follow the data without
/// scanning it (see [`crate::live`]).
pub trait TraceObserver: Send + Sync + std::fmt::Debug + 'static {
    /// The store opened. Spans that started after `since_unix_nanos` will all be reported
    /// through [`TraceObserver::applied`] (those recovered at start-up included); older ones
    /// may sit in blocks that were never reported.
    fn opened(&self, since_unix_nanos: u64) {
        let _ = since_unix_nanos;
    }

    /// These spans became visible to readers (one mark per span, or one per trace carrying
    /// its earliest start). Called on the store's write path: implementations only take note
    /// and return.
    fn applied(&self, spans: &mut dyn Iterator<Item = AppliedSpan>);
}

/// What [`TraceObserver::applied`] reports of a span: its trace and when it started (a
/// lower bound, when one mark stands for several spans of the trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedSpan {
    pub trace_id: stitch_model::TraceId,
    pub start_unix_nanos: u64,
}

impl AppliedSpan {
    pub fn of(span: &stitch_model::Span) -> AppliedSpan {
        AppliedSpan {
            trace_id: span.trace_id,
            start_unix_nanos: span.start_time_unix_nano,
        }
    }
}
