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
    #[error(
        "the disk holding the write-ahead log is nearly full ({free} bytes free, {reserve} kept in reserve); retry later"
    )]
    DiskFull { free: u64, reserve: u64 },
    #[error("no write-ahead log segment can be written ({0}); retry later")]
    WalUnavailable(String),
    #[error(
        "blocks are not being written fast enough (two heads wait for the flusher); retry later"
    )]
    FlushBacklog,
    #[error("the head cannot be flushed now: {0}")]
    FlushPostponed(String),
    #[error(
        "write-ahead log segment {} is damaged at offset {offset} ({reason}), and valid records follow at offset {resume}; \
         starting would drop acknowledged spans, so Stitch stops. Start once with --wal-salvage to keep every record \
         that passes its checksum and drop only the damaged bytes (they are logged)",
        path.display()
    )]
    WalDamaged {
        path: PathBuf,
        offset: u64,
        reason: String,
        resume: u64,
    },
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
