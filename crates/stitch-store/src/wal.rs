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
//! kind 1  := body is an OTLP ExportTraceServiceRequest in protobuf; its spans went straight
//!            into the head (no tail sampling)
//! kind 2  := body is an OTLP ExportTraceServiceRequest in protobuf; its spans entered the
//!            tail sampler and are decided by a later kind-3 record
//! kind 3  := decisions of the tail sampler (see below)
//! ```
//!
//! A decision record ([`encode_decisions`], [`decode_decisions`]):
//!
//! ```text
//! body      := count:u32le decision{count}
//! decision  := trace_id:16 bytes  verdict:u8  probability:f64le  policy_len:u8  policy
//! verdict   := 0 not sampled | 1 sampled (kept) | 2 dropped by a `drop` policy
//! probability := the kept trace's sampling probability, NaN when unknown (rate limits,
//!               late spans)
//! policy    := UTF-8 name of the policy that kept (or dropped) the trace, at most 255 bytes
//! ```
//!
//! # Tail sampling and the log
//!
//! With tail sampling on, the WAL writer writes received spans as kind 2, feeds them to the
//! tail sampler after the group commit, and frames every decision it then makes (kept,
//! dropped, and the cached decision applied to late spans) into a kind-3 record written at
//! the start of the next group commit (no extra `fdatasync`), or before the segment rotates
//! (with one). Hence, replaying the log in order:
//!
//! * every kind-2 span is decided by the **first decision record of its trace that follows
//!   it**; none means the trace was undecided at the crash;
//! * the spans of a kept trace went into the head that was active when the decision was made,
//!   which is the head whose segments include the one holding the decision record. So a kept
//!   span is already in a block exactly when its decision record's segment is at or below the
//!   highest `wal_through` of the blocks.
//!
//! A segment can be deleted only when it is below the tail sampler's low watermark (the
//! oldest segment holding an undecided span), below the oldest source segment of every head
//! not yet written as a block, and below the active segment. Recovery relies on this: see
//! `Store::open`.
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
/// OTLP spans that entered the tail sampler.
pub const KIND_OTLP_SAMPLED: u8 = 2;
/// Tail-sampling decisions.
pub const KIND_DECISIONS: u8 = 3;

/// What a decision record says about a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    NotSampled = 0,
    Sampled = 1,
    Dropped = 2,
}

/// One decision of the tail sampler, as a kind-3 record holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionEntry {
    pub trace_id: stitch_model::TraceId,
    pub verdict: Verdict,
    /// NaN when unknown.
    pub probability: f64,
    pub policy: String,
}

/// Appends one decision to a kind-3 body under construction (see [`encode_decisions`]).
pub fn push_decision(
    body: &mut Vec<u8>,
    trace_id: &stitch_model::TraceId,
    verdict: Verdict,
    probability: Option<f64>,
    policy: &str,
) {
    if body.is_empty() {
        body.extend_from_slice(&0u32.to_le_bytes());
    }
    let count = u32::from_le_bytes(body[..4].try_into().expect("4 bytes")) + 1;
    body[..4].copy_from_slice(&count.to_le_bytes());
    body.extend_from_slice(&trace_id.0);
    body.push(verdict as u8);
    body.extend_from_slice(&probability.unwrap_or(f64::NAN).to_le_bytes());
    let mut end = policy.len().min(255);
    while !policy.is_char_boundary(end) {
        end -= 1;
    }
    body.push(end as u8);
    body.extend_from_slice(&policy.as_bytes()[..end]);
}

/// The body of a kind-3 record holding `entries`.
pub fn encode_decisions(entries: &[DecisionEntry]) -> Vec<u8> {
    let mut body = Vec::new();
    for e in entries {
        let p = (!e.probability.is_nan()).then_some(e.probability);
        push_decision(&mut body, &e.trace_id, e.verdict, p, &e.policy);
    }
    if body.is_empty() {
        body.extend_from_slice(&0u32.to_le_bytes());
    }
    body
}

/// Decodes the body of a kind-3 record; `None` when it is malformed.
pub fn decode_decisions(body: &[u8]) -> Option<Vec<DecisionEntry>> {
    let count = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let mut rest = &body[4..];
    let mut out = Vec::with_capacity(count.min(rest.len() / 26));
    for _ in 0..count {
        let (id, r) = rest.split_first_chunk::<16>()?;
        let (&v, r) = r.split_first()?;
        let (p, r) = r.split_first_chunk::<8>()?;
        let (&len, r) = r.split_first()?;
        let name = r.get(..len as usize)?;
        rest = &r[len as usize..];
        out.push(DecisionEntry {
            trace_id: stitch_model::TraceId(*id),
            verdict: match v {
                0 => Verdict::NotSampled,
                1 => Verdict::Sampled,
                2 => Verdict::Dropped,
                _ => return None,
            },
            probability: f64::from_le_bytes(*p),
            policy: String::from_utf8_lossy(name).into_owned(),
        });
    }
    rest.is_empty().then_some(out)
}

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
    pub created: std::time::Instant,
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
            created: std::time::Instant::now(),
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
    read_segment_with_offsets(path, |_, kind, body| on_record(kind, body))
}

/// [`read_segment`] that also passes each record's offset in the segment (where its header
/// starts): `on_record(offset, kind, body)`.
pub fn read_segment_with_offsets(
    path: &Path,
    mut on_record: impl FnMut(u64, u8, &[u8]),
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
        on_record(offset, body[0], &body[1..]);
        offset += (RECORD_HEADER + len) as u64;
    }
}

/// Bits of a [`position`] that hold the record's offset in its segment.
const OFFSET_BITS: u32 = 40;

/// A record's place in the log as one number, ordered like the log: the segment id in the
/// high 24 bits, the record's offset in the segment (up to 1 TiB) in the low 40.
pub fn position(segment: u64, offset: u64) -> u64 {
    debug_assert!(offset < 1 << OFFSET_BITS && segment < 1 << (64 - OFFSET_BITS));
    (segment << OFFSET_BITS) | offset
}

/// The segment of a [`position`].
pub fn position_segment(position: u64) -> u64 {
    position >> OFFSET_BITS
}

/// The offset in its segment of a [`position`].
pub fn position_offset(position: u64) -> u64 {
    position & ((1 << OFFSET_BITS) - 1)
}

/// Reads the record whose header starts at `offset` of the open segment `file` and checks
/// it: `(kind, body)`.
pub fn read_record_at(file: &File, offset: u64) -> io::Result<(u8, Vec<u8>)> {
    use std::os::unix::fs::FileExt;
    let mut header = [0u8; RECORD_HEADER];
    file.read_exact_at(&mut header, offset)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("implausible record length {len} at offset {offset}"),
        ));
    }
    let mut body = vec![0u8; len];
    file.read_exact_at(&mut body, offset + RECORD_HEADER as u64)?;
    let actual = crc32c::crc32c_append(crc32c::crc32c(&header[..4]), &body);
    if actual != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "checksum mismatch at offset {offset} (stored {crc:08x}, computed {actual:08x})"
            ),
        ));
    }
    let kind = body.remove(0);
    Ok((kind, body))
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
    fn decision_records_round_trip() {
        let entries = vec![
            DecisionEntry {
                trace_id: stitch_model::TraceId([7; 16]),
                verdict: Verdict::Sampled,
                probability: 0.05,
                policy: "rest".into(),
            },
            DecisionEntry {
                trace_id: stitch_model::TraceId([8; 16]),
                verdict: Verdict::Dropped,
                probability: f64::NAN,
                policy: "é".repeat(200),
            },
        ];
        let body = encode_decisions(&entries);
        let back = decode_decisions(&body).unwrap();
        assert_eq!(back[0], entries[0]);
        assert!(back[1].probability.is_nan());
        assert_eq!(back[1].verdict, Verdict::Dropped);
        assert_eq!(
            back[1].policy,
            "é".repeat(127),
            "cut at a char boundary under 256 bytes"
        );
        assert!(decode_decisions(&body[..body.len() - 1]).is_none());
        assert!(decode_decisions(&[1, 0]).is_none());
        assert_eq!(decode_decisions(&encode_decisions(&[])).unwrap(), vec![]);
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
