//! Write-ahead log segments: the on-disk record format, writing and recovery.
//!
//! A segment is one file, `wal/<segment id, 20 digits>.wal`:
//!
//! ```text
//! segment := magic record*
//! magic   := "STWAL001"                      (8 bytes)
//! record  := len:u32le crc:u32le payload     (8-byte header + len bytes)
//! crc     := crc32c(len as 4 LE bytes ++ payload)
//! payload := kind:u8 body
//! kind 1  := body is an OTLP ExportTraceServiceRequest in protobuf
//! ```
//!
//! Records are appended by one writer; an append is acknowledged only after the bytes are
//! written and `fdatasync` has returned, so an acknowledged record survives a crash of the
//! process or the machine. Many appends share one `fdatasync` (group commit).
//!
//! Recovery reads each segment from the start and stops at the first record that is incomplete
//! or fails its checksum. At the tail of the newest segment this is the normal result of a crash
//! during a write (such a record was never acknowledged). Anywhere else it is corruption; the
//! rest of that segment is skipped and reported.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

pub const MAGIC: &[u8; 8] = b"STWAL001";
pub const RECORD_HEADER: usize = 8;
/// A payload larger than this is treated as corruption during recovery.
pub const MAX_RECORD: usize = 256 * 1024 * 1024;

/// Payload kinds.
pub const KIND_OTLP_PROTO: u8 = 1;

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// The ids of the segments in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".wal")
            && let Ok(id) = stem.parse::<u64>()
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Appends encoded records to the active segment.
pub struct SegmentWriter {
    pub id: u64,
    path: PathBuf,
    file: File,
    pub bytes: u64,
}

impl SegmentWriter {
    /// Creates a new, empty segment and makes its directory entry durable.
    pub fn create(dir: &Path, id: u64) -> Result<SegmentWriter, StoreError> {
        let path = segment_path(dir, id);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        file.write_all(MAGIC)
            .and_then(|_| file.sync_all())
            .map_err(|e| StoreError::io(&path, e))?;
        sync_dir(dir)?;
        Ok(SegmentWriter {
            id,
            path,
            file,
            bytes: MAGIC.len() as u64,
        })
    }

    /// Writes already framed records (see [`frame`]) and waits until they are durable.
    pub fn write_durable(&mut self, framed: &[u8], fsync: bool) -> Result<(), StoreError> {
        self.file
            .write_all(framed)
            .map_err(|e| StoreError::io(&self.path, e))?;
        if fsync {
            self.file
                .sync_data()
                .map_err(|e| StoreError::io(&self.path, e))?;
        }
        self.bytes += framed.len() as u64;
        Ok(())
    }
}

/// Appends one framed record (header, then `kind` and `body`) to `out`.
pub fn frame(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let len = (body.len() + 1) as u32;
    let len_bytes = len.to_le_bytes();
    let mut hasher = crc32c::crc32c(&len_bytes);
    hasher = crc32c::crc32c_append(hasher, &[kind]);
    hasher = crc32c::crc32c_append(hasher, body);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&hasher.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

/// How reading a segment ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Every byte was a valid record.
    Clean,
    /// The segment ends inside a record or with a record that fails its checksum, at `offset`.
    Torn { offset: u64, reason: String },
}

/// Reads every valid record of a segment, calling `on_record(kind, body)` for each.
pub fn read_segment(
    path: &Path,
    mut on_record: impl FnMut(u8, &[u8]),
) -> Result<SegmentEnd, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    match read_full(&mut reader, &mut magic).map_err(|e| StoreError::io(path, e))? {
        8 if &magic == MAGIC => {}
        n => {
            return Ok(SegmentEnd::Torn {
                offset: 0,
                reason: format!("bad segment header ({n} bytes read)"),
            });
        }
    }
    let mut offset = MAGIC.len() as u64;
    let mut body = Vec::new();
    loop {
        let mut header = [0u8; RECORD_HEADER];
        let n = read_full(&mut reader, &mut header).map_err(|e| StoreError::io(path, e))?;
        if n == 0 {
            return Ok(SegmentEnd::Clean);
        }
        if n < RECORD_HEADER {
            return Ok(SegmentEnd::Torn {
                offset,
                reason: "incomplete record header".into(),
            });
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD {
            return Ok(SegmentEnd::Torn {
                offset,
                reason: format!("implausible record length {len}"),
            });
        }
        body.resize(len, 0);
        let got = read_full(&mut reader, &mut body).map_err(|e| StoreError::io(path, e))?;
        if got < len {
            return Ok(SegmentEnd::Torn {
                offset,
                reason: format!("record of {len} bytes cut off after {got}"),
            });
        }
        let actual = crc32c::crc32c_append(crc32c::crc32c(&header[..4]), &body);
        if actual != crc {
            return Ok(SegmentEnd::Torn {
                offset,
                reason: format!("checksum mismatch (stored {crc:08x}, computed {actual:08x})"),
            });
        }
        on_record(body[0], &body[1..]);
        offset += (RECORD_HEADER + len) as u64;
    }
}

/// Reads until `buf` is full or the end of the input; returns the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Makes directory entries (a created or removed file) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(path: &Path) -> (Vec<(u8, Vec<u8>)>, SegmentEnd) {
        let mut out = Vec::new();
        let end = read_segment(path, |k, b| out.push((k, b.to_vec()))).unwrap();
        (out, end)
    }

    #[test]
    fn records_written_are_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 7).unwrap();
        let mut buf = Vec::new();
        frame(&mut buf, 1, b"alpha");
        frame(&mut buf, 1, b"");
        frame(&mut buf, 2, b"gamma");
        w.write_durable(&buf, true).unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), vec![7]);
        let (recs, end) = records(&segment_path(dir.path(), 7));
        assert_eq!(end, SegmentEnd::Clean);
        assert_eq!(
            recs,
            vec![(1, b"alpha".to_vec()), (1, vec![]), (2, b"gamma".to_vec())]
        );
    }

    #[test]
    fn a_torn_tail_keeps_every_complete_record_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1).unwrap();
        let mut buf = Vec::new();
        frame(&mut buf, 1, b"kept");
        frame(&mut buf, 1, b"torn away");
        let cut = buf.len() - 3;
        w.write_durable(&buf[..cut], true).unwrap();
        let (recs, end) = records(&segment_path(dir.path(), 1));
        assert_eq!(recs, vec![(1, b"kept".to_vec())]);
        assert!(
            matches!(end, SegmentEnd::Torn { offset: 21, .. }),
            "{end:?}"
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1).unwrap();
        let mut buf = Vec::new();
        frame(&mut buf, 1, b"first");
        let second = buf.len();
        frame(&mut buf, 1, b"second");
        buf[second + RECORD_HEADER + 2] ^= 0x10;
        w.write_durable(&buf, true).unwrap();
        let (recs, end) = records(&segment_path(dir.path(), 1));
        assert_eq!(recs.len(), 1);
        match end {
            SegmentEnd::Torn { reason, .. } => assert!(reason.contains("checksum"), "{reason}"),
            other => panic!("expected a torn segment, got {other:?}"),
        }
    }
}
