//! Stitch's durable embedded trace store.

mod error;
pub mod query;

pub use error::StoreError;
pub use query::{Operation, SearchQuery, TraceReader};
