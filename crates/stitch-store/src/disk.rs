//! Where the store's writes meet the disk: the free-space reserve, and the hook through which
//! tests make any write step fail.
//!
//! Every step that changes the store's files (creating, writing, syncing, truncating,
//! renaming and removing WAL segments, writing and syncing block files) first asks the
//! [`Disk`]. In production the answer is always "go ahead"; a test installs a
//! [`FaultInjector`] (see [`crate::StoreConfig::faults`]) that answers with `ENOSPC`, `EIO` or
//! a write cut short, at any step, to check that no acknowledged span is ever lost.
//!
//! # The free-space reserve
//!
//! The WAL writer refuses appends once the file system holding the data directory has less
//! than [`Disk::reserve`] bytes free (the default is 5% of the file system, at most 128 MiB).
//! The reserve is not idle: flushing a head writes a block (a few times smaller than the WAL
//! records it replaces) and then deletes the WAL segments the block covers, so the room left
//! is what lets a full store give space back by itself.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// One kind of write the store makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoStep {
    /// Creating a WAL segment (its temporary file and header).
    WalCreate,
    /// Renaming a new segment into place.
    WalRename,
    /// Appending records to the active segment.
    WalWrite,
    /// `fdatasync` of the active segment.
    WalSync,
    /// Cutting a segment back to its last good record after a failure.
    WalTruncate,
    /// Deleting a segment nothing needs any more.
    WalRemove,
    /// Syncing a directory (after creating, renaming or removing files in it).
    DirSync,
    /// Writing one file of a block.
    BlockWrite,
    /// Syncing one file of a block.
    BlockSync,
}

/// What a [`FaultInjector`] makes of a step.
#[derive(Debug)]
pub enum Injected {
    /// Do it.
    Proceed,
    /// Fail with this error without doing anything.
    Fail(io::Error),
    /// For writes: write the first `n` bytes, then fail with the error (a torn write).
    Torn(usize, io::Error),
}

/// Decides the fate of every write step; installed by tests.
pub trait FaultInjector: Send + Sync + fmt::Debug {
    /// Called before `step` on `path`; `bytes` is how many bytes a write step would write.
    fn inject(&self, step: IoStep, path: &Path, bytes: u64) -> Injected;

    /// The free space to report instead of the measured one (tests simulate a small disk).
    fn free_bytes(&self, measured: u64) -> u64 {
        measured
    }
}

/// The store's door to the disk: fault hook, free space and the reserve.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    faults: Option<Arc<dyn FaultInjector>>,
    /// Appends are refused while fewer bytes than this are free.
    pub reserve: u64,
}

/// The default reserve: 5% of the file system, at most 128 MiB.
pub fn default_reserve(total_bytes: u64) -> u64 {
    (total_bytes / 20).min(128 * 1024 * 1024)
}

/// The bytes free for an unprivileged writer on the file system holding `dir`, and its size.
pub fn statvfs(dir: &Path) -> io::Result<(u64, u64)> {
    let st = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    let unit = st.f_frsize.max(1);
    Ok((
        st.f_bavail.saturating_mul(unit),
        st.f_blocks.saturating_mul(unit),
    ))
}

pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl Disk {
    pub fn new(faults: Option<Arc<dyn FaultInjector>>, reserve: u64) -> Disk {
        Disk { faults, reserve }
    }

    /// Asks the fault hook about a step that writes nothing; `Err` means fail it.
    pub fn check(&self, step: IoStep, path: &Path) -> io::Result<()> {
        self.check_write(step, path, 0)
    }

    /// Asks the fault hook about a write of `bytes` that the caller makes itself.
    pub fn check_write(&self, step: IoStep, path: &Path, bytes: u64) -> io::Result<()> {
        match &self.faults {
            None => Ok(()),
            Some(f) => match f.inject(step, path, bytes) {
                Injected::Proceed => Ok(()),
                Injected::Fail(e) | Injected::Torn(_, e) => Err(e),
            },
        }
    }

    /// Writes all of `bytes` to `file` (at its cursor), unless the hook fails the step.
    pub fn write_all(
        &self,
        step: IoStep,
        file: &mut File,
        path: &Path,
        bytes: &[u8],
    ) -> io::Result<()> {
        if let Some(f) = &self.faults {
            match f.inject(step, path, bytes.len() as u64) {
                Injected::Proceed => {}
                Injected::Fail(e) => return Err(e),
                Injected::Torn(n, e) => {
                    file.write_all(&bytes[..n.min(bytes.len())])?;
                    return Err(e);
                }
            }
        }
        file.write_all(bytes)
    }

    /// `fdatasync` (or `fsync` with `all`) of `file`, unless the hook fails the step.
    pub fn sync(&self, step: IoStep, file: &File, path: &Path, all: bool) -> io::Result<()> {
        self.check(step, path)?;
        if all {
            file.sync_all()
        } else {
            file.sync_data()
        }
    }

    /// Makes the entries of `dir` durable (created, renamed or removed files).
    pub fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(IoStep::DirSync, dir)?;
        File::open(dir)?.sync_all()
    }

    /// Removes a file; a file that is already gone is not an error.
    pub fn remove_file(&self, step: IoStep, path: &Path) -> io::Result<()> {
        self.check(step, path)?;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Bytes free on the file system holding `dir`, as the fault hook sees it.
    pub fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        let (free, _) = statvfs(dir)?;
        Ok(match &self.faults {
            Some(f) => f.free_bytes(free),
            None => free,
        })
    }
}
