//! Stitch's durable embedded trace store. It implements the contracts of `stitch-query`:
//! [`stitch_query::SpanSink`] (appends are durable when acknowledged) and
//! [`stitch_query::TraceReader`], and reports the traces it makes visible to a
//! [`stitch_query::TraceObserver`] ([`StoreConfig::observer`]).
//!
//! ```text
//! append(batch) ──► WAL segment (group commit, fdatasync) ──► active head (memory) ──► ack
//!                                   │                             │ full or old
//!     with tail sampling: ack, then ▼                             ▼
//!     tail sampler ── kept traces ──► active head   frozen head ──► Parquet block in the object store
//!          └─ decision records ──► next WAL commit                │ block durable
//!                                                                 ▼
//!                                  WAL segments nothing needs any more are deleted
//! ```
//!
//! Invariants:
//! - A batch is acknowledged only after its WAL record is written and synced; recovery on open
//!   replays every segment not yet covered by a block, so no acknowledged span is lost to a
//!   crash (`kill -9` or power loss).
//! - A head holds exactly the spans put into a head while its WAL segments were active (records
//!   of those segments, and traces the tail sampler kept then, whose spans may be older). Only
//!   the WAL writer thread rotates segments, freezes heads and owns the tail sampler, so this
//!   holds without a lock per span.
//! - A WAL segment is deleted only below the oldest undecided span, the oldest source segment of
//!   every unflushed head, and the active segment ([`wal`] has the rules, [`sampling`] the
//!   sampler's side).
//! - A block becomes visible (registered, and `meta.json` written) before the head it came from
//!   stops being queryable and before the WAL segments it covers are deleted.
//! - Blocks are immutable; retention deletes whole blocks.
//! - Nothing is appended to a WAL segment after a write or sync of it failed: the segment is
//!   cut back to its last good record and sealed; appends are refused (retryable) until a new
//!   segment exists and while the disk is below its free-space reserve. Heads are frozen and
//!   flushed all the same, which gives WAL space back ([`disk`] and the writer's module docs).
//! - Recovery drops only an unfinished write at the end of a segment; damage followed by valid
//!   records stops [`Store::open`] (see [`wal`]), unless [`StoreConfig::wal_salvage`] is set.
//!
//! The on-disk formats are documented in [`wal`] (log records) and [`block`] (block files).

pub mod block;
pub mod clock;
pub mod disk;
mod error;
mod flush;
pub mod head;
pub mod sampling;
mod store;
pub mod wal;
mod writer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use sampling::SamplingStatus;
pub use store::{BlockMemory, Store, StoreConfig, StoreGone, StoreStats};
