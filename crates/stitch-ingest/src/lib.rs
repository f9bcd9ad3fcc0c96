//! Network receivers: OTLP over gRPC (port 4317) and over HTTP (port 4318), Zipkin's HTTP
//! collector API (port 9411, [`zipkin`]) and Jaeger's agent and collector ([`jaeger`]). The
//! Jaeger gRPC port also serves remote sampling (`jaeger.api_v2.SamplingManager`), mapping
//! strategies that the binary computes.
//!
//! Every receiver does the same four things, in this order:
//! 1. bounds the request: size before and after decompression, and the bytes of all requests
//!    in flight together (beyond which the sender is told to retry later);
//! 2. decodes it at the edge into the model with `stitch-wire` (no I/O in codecs), then rejects
//!    the spans whose times cannot be right ([`Ingest::screen`]);
//! 3. hands the valid spans to the store, which acknowledges only once they are durable;
//! 4. answers in the sender's protocol: success, partial success naming the rejected spans,
//!    or an error status that says what was wrong and whether to retry.
//!
//! Spans go to a [`SpanSink`] (`stitch-query`'s write contract); this crate knows nothing of
//! the store behind it, of how it encodes what it keeps, or of querying.

pub mod body;
pub mod grpc;
pub mod http;
pub mod jaeger;
mod log;
mod respond;
pub mod zipkin;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use stitch_query::{SpanSink, WriteError};
use stitch_wire::Decoded;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits shared by all receivers.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// Largest request accepted, compressed or not (the body as sent, and after decompression).
    pub max_request_bytes: usize,
    /// Requests in flight may together hold at most this many bytes of memory; beyond it,
    /// senders are asked to retry.
    pub max_inflight_bytes: usize,
    /// Spans lasting longer are rejected ([`Ingest::screen`]).
    pub max_span_duration_nanos: u64,
    /// A request body must have arrived whole within this long of the request's start; a
    /// sender that trickles or never ends it gets 408 and its connection slot is freed.
    pub body_timeout: std::time::Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_request_bytes: 16 * 1024 * 1024,
            max_inflight_bytes: 512 * 1024 * 1024,
            max_span_duration_nanos: 7 * DAY_NANOS,
            body_timeout: std::time::Duration::from_secs(30),
        }
    }
}

const DAY_NANOS: u64 = 86_400 * 1_000_000_000;

/// Counters of what the receivers saw, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub requests: AtomicU64,
    pub accepted_spans: AtomicU64,
    pub rejected_spans: AtomicU64,
    pub malformed_requests: AtomicU64,
    pub oversized_requests: AtomicU64,
    /// Requests whose body did not arrive within the body timeout.
    pub timed_out_requests: AtomicU64,
    pub refused_overload: AtomicU64,
    pub store_failures: AtomicU64,
    /// UDP datagrams received by the Jaeger agent receivers.
    pub udp_datagrams: AtomicU64,
    /// UDP datagrams that did not decode: counted, logged at a rate limit and dropped.
    pub udp_malformed_datagrams: AtomicU64,
    /// UDP datagrams dropped because Stitch was overloaded (UDP cannot ask senders to retry).
    pub udp_dropped_datagrams: AtomicU64,
    /// Spans acknowledged but not stored because the [`BatchFilter`] (head sampling) removed
    /// them.
    pub filtered_spans: AtomicU64,
    /// Spans rejected for their times ([`Ingest::screen`]); also in `rejected_spans`.
    pub rejected_times: AtomicU64,
}

/// A step every decoded batch goes through before the store, e.g. head sampling. It may
/// remove spans or change them.
pub trait BatchFilter: Send + Sync {
    /// Returns true when it changed the batch (then the request's bytes are not reused as
    /// the WAL record).
    fn filter(&self, batch: &mut stitch_model::Batch) -> bool;
}

/// What the store said about a decoded request.
#[derive(Debug)]
pub struct Accepted {
    pub accepted_spans: u64,
    pub rejected_spans: u64,
    pub error_message: String,
}

/// Why a well-formed request could not be stored. Both are worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("stitch is overloaded: {0}; retry later")]
    Overloaded(String),
    #[error("spans could not be stored: {0}")]
    Unavailable(String),
}

/// The part every receiver shares: limits, the store and the counters.
pub struct Ingest {
    sink: Arc<dyn SpanSink>,
    config: IngestConfig,
    inflight: Arc<Semaphore>,
    filter: Option<Arc<dyn BatchFilter>>,
    pub stats: IngestStats,
}

/// Memory held by a decoded request, per byte of its protobuf encoding.
const DECODED_EXPANSION: usize = 3;

impl Ingest {
    pub fn new(sink: Arc<dyn SpanSink>, config: IngestConfig) -> Arc<Ingest> {
        Ingest::with_filter(sink, config, None)
    }

    /// Like [`Ingest::new`], with a filter applied to every batch before it is stored.
    pub fn with_filter(
        sink: Arc<dyn SpanSink>,
        config: IngestConfig,
        filter: Option<Arc<dyn BatchFilter>>,
    ) -> Arc<Ingest> {
        let permits = config.max_inflight_bytes.min(Semaphore::MAX_PERMITS);
        Arc::new(Ingest {
            sink,
            inflight: Arc::new(Semaphore::new(permits)),
            config,
            filter,
            stats: IngestStats::default(),
        })
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Reserves memory for a request of `encoded_len` bytes, or says the server is full.
    pub fn reserve(&self, encoded_len: usize) -> Result<OwnedSemaphorePermit, IngestError> {
        let want = encoded_len.saturating_mul(DECODED_EXPANSION).clamp(
            1,
            self.config.max_inflight_bytes.min(Semaphore::MAX_PERMITS),
        ) as u32;
        self.inflight
            .clone()
            .try_acquire_many_owned(want)
            .map_err(|_| {
                self.stats.refused_overload.fetch_add(1, Ordering::Relaxed);
                IngestError::Overloaded("too many bytes of requests in flight".into())
            })
    }

    /// Rejects the spans of a decoded request whose times cannot be right: starting before
    /// 1970-01-02 (a zero or missing time), more than a day in the future, or lasting longer
    /// than [`IngestConfig::max_span_duration_nanos`]. They are counted and described in the
    /// request's answer like the spans a decoder rejects. Every receiver calls it right after
    /// decoding, before it looks at what is left.
    pub fn screen(&self, decoded: &mut Decoded) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let max = self.config.max_span_duration_nanos;
        let mut problems = Vec::new();
        decoded.batch.retain_spans(|span| {
            let start = span.start_time_unix_nano;
            let why = if start < DAY_NANOS {
                format!("start time {start} ns is before 1970-01-02")
            } else if start > now.saturating_add(DAY_NANOS) {
                format!("start time {start} ns is more than a day in the future")
            } else if span.duration_nanos() > max {
                format!(
                    "lasts {} s, longer than the maximum of {} s",
                    span.duration_nanos() / 1_000_000_000,
                    max / 1_000_000_000
                )
            } else {
                return true;
            };
            problems.push(format!("span {}: {why}", span.span_id.to_hex()));
            false
        });
        if problems.is_empty() {
            return;
        }
        let n = problems.len() as u64;
        self.stats.rejected_times.fetch_add(n, Ordering::Relaxed);
        decoded.rejected_spans += n;
        const SHOWN: usize = 3;
        let mut message = problems[..problems.len().min(SHOWN)].join("; ");
        if problems.len() > SHOWN {
            message.push_str(&format!(" (and {} more)", problems.len() - SHOWN));
        }
        if decoded.error_message.is_empty() {
            decoded.error_message = message;
        } else {
            decoded.error_message = format!("{}; {message}", decoded.error_message);
        }
    }

    /// `decoded` with [`Ingest::screen`] applied when it decoded.
    pub fn screened<E>(&self, decoded: Result<Decoded, E>) -> Result<Decoded, E> {
        decoded.map(|mut d| {
            self.screen(&mut d);
            d
        })
    }

    /// Stores the valid spans of a decoded request. `raw` is the request's protobuf encoding
    /// when the caller has it; it is reused as the WAL record when no span was rejected.
    pub async fn accept(
        &self,
        raw: Option<Vec<u8>>,
        decoded: Decoded,
    ) -> Result<Accepted, IngestError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let rejected = decoded.rejected_spans;
        self.stats
            .rejected_spans
            .fetch_add(rejected, Ordering::Relaxed);
        let count = decoded.batch.span_count() as u64;
        let (mut decoded, mut raw) = (decoded, raw);
        let mut stored = count;
        if count > 0
            && let Some(f) = &self.filter
            && f.filter(&mut decoded.batch)
        {
            raw = None;
            stored = decoded.batch.span_count() as u64;
            self.stats
                .filtered_spans
                .fetch_add(count.saturating_sub(stored), Ordering::Relaxed);
        }
        if stored > 0 {
            // The received bytes are the batch only when no span was rejected or removed.
            let received = raw.filter(|_| rejected == 0);
            match self.sink.append(decoded.batch, received).await {
                Ok(()) => {}
                Err(WriteError::Overloaded(why)) => {
                    self.stats.refused_overload.fetch_add(1, Ordering::Relaxed);
                    return Err(IngestError::Overloaded(why));
                }
                Err(WriteError::Unavailable(why)) => {
                    self.stats.store_failures.fetch_add(1, Ordering::Relaxed);
                    return Err(IngestError::Unavailable(why));
                }
            }
        }
        self.stats
            .accepted_spans
            .fetch_add(count, Ordering::Relaxed);
        Ok(Accepted {
            accepted_spans: count,
            rejected_spans: rejected,
            error_message: decoded.error_message,
        })
    }
}
