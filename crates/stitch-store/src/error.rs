use std::path::PathBuf;

/// Failures of the store. Each variant names the object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("object store error on {path}: {source}")]
    Object {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("corrupt block {block}: {reason}")]
    CorruptBlock { block: String, reason: String },
    #[error("parquet error in block {block}: {source}")]
    Parquet {
        block: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("write-ahead log write failed: {0}")]
    WalWrite(String),
    #[error("the write-ahead log is closed")]
    WalClosed,
    #[error("the write-ahead log is full: {pending} appends pending")]
    Overloaded { pending: usize },
    #[error("invalid sampling configuration: {0}")]
    Sampling(#[from] stitch_pipeline::ConfigError),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}
