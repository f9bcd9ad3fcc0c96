//! Stitch's durable embedded trace store.
//!
//! ```text
//! append(batch) ──► WAL segment (group commit, fdatasync) ──► active head (memory) ──► ack
//!                                                                 │ full or old
//!                                                                 ▼
//!                                          frozen head ──► Parquet block in the object store
//!                                                                 │ block durable
//!                                                                 ▼
//!                                                 WAL segments it covered are deleted
//! ```
//!
//! Invariants:
//! - A batch is acknowledged only after its WAL record is written and synced; recovery on open
//!   replays every segment not yet covered by a block, so no acknowledged span is lost to a
//!   crash (`kill -9` or power loss).
//! - A head holds exactly the records of the WAL segments written while it was active. Only the
//!   WAL writer thread rotates segments and freezes heads, so this holds without a lock per span.
//! - A block becomes visible (registered, and `meta.json` written) before the head it came from
//!   stops being queryable and before the WAL segments it covers are deleted.
//! - Blocks are immutable; retention deletes whole blocks.
//!
//! The on-disk formats are documented in [`wal`] (log records) and [`block`] (block files).

pub mod block;
mod error;
pub mod head;
pub mod query;
mod store;
pub mod wal;

pub use error::StoreError;
pub use query::{Operation, SearchQuery, TraceReader};
pub use store::{Store, StoreConfig, StoreStats};
