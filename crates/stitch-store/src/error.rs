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

impl StoreError {
    /// The error as a sender of spans may read it: what failed, without the server's file
    /// paths or object names (the server's log has those).
    pub fn for_senders(&self) -> String {
        match self {
            StoreError::Io { source, .. } => format!("i/o error: {source}"),
            StoreError::Object { .. } => {
                "object store error (the server's log has the details)".into()
            }
            StoreError::CorruptBlock { .. } | StoreError::Parquet { .. } => {
                "a block could not be read (the server's log has the details)".into()
            }
            StoreError::WalDamaged { offset, .. } => format!(
                "a write-ahead log segment is damaged at offset {offset} (the server's log has the details)"
            ),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_are_not_told_the_servers_paths() {
        let e = StoreError::Io {
            path: "/srv/stitch/wal/00000007.wal".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        assert!(e.to_string().contains("/srv/stitch"), "{e}");
        let told = e.for_senders();
        assert!(!told.contains("/srv"), "{told}");
        assert!(told.contains("No space left"), "{told}");
        let full = StoreError::DiskFull {
            free: 1,
            reserve: 2,
        };
        assert_eq!(full.for_senders(), full.to_string());
    }
}
