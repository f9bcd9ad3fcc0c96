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
//! # Failures while writing
//!
//! A write or `fdatasync` that fails (a full disk, an I/O error) *seals* the segment: it is cut
//! back to the end of its last good record and never written again, because after a failed
//! `fdatasync` nothing says which of the bytes since the previous one reached the disk (the
//! page cache may already have dropped them). The appends of that group are refused; the next
//! group goes to a new segment. A new segment is made under a temporary name
//! (`<id>.wal.tmp`: header written and synced) and renamed into place, so a segment that exists
//! under its own name always starts with a whole header, and a failed attempt leaves at most a
//! temporary file that the next attempt (or the next start) removes. Hence, in any segment, a
//! record that is cut off or fails its checksum can only be followed by nothing: the bytes of
//! a write that failed or of a crash mid-write, never acknowledged.
//!
//! # Recovery
//!
//! Recovery reads each segment from the start. At the first record that is incomplete or fails
//! its checksum it looks at the rest of the segment for a valid record (a plausible header,
//! a body of the right shape, a matching checksum): none means the segment simply ends in an
//! unfinished write, which is dropped ([`SegmentEnd::Torn`]); one means the damage is in the
//! middle of acknowledged data ([`SegmentEnd::Damaged`]), and the store refuses to start
//! rather than drop what follows. [`salvage_segment`] is the way out: it rewrites the segment
//! with every record that passes its checksum and reports the byte ranges it skipped.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::StoreError;
use crate::disk::{Disk, IoStep};

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

/// The temporary name a segment is made under before it is renamed into place.
pub fn temporary_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal.tmp"))
}

/// Removes what failed attempts to create segments left behind (`*.wal.tmp`).
pub fn remove_temporary_files(dir: &Path, disk: &Disk) -> Result<usize, StoreError> {
    let mut removed = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".wal.tmp"))
        {
            let path = entry.path();
            disk.remove_file(IoStep::WalRemove, &path)
                .map_err(|e| StoreError::io(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Appends encoded records to the active segment.
pub struct SegmentWriter {
    pub id: u64,
    path: PathBuf,
    file: File,
    /// The end of the last record written and synced: where the next record starts.
    pub bytes: u64,
    disk: Disk,
}

impl SegmentWriter {
    /// Creates a new, empty segment and makes its directory entry durable. The segment is
    /// written and synced under a temporary name and then renamed into place; a leftover of an
    /// earlier attempt (a temporary file, or a segment of that id holding no record) is
    /// replaced, so that a failed attempt never blocks the next one.
    pub fn create(dir: &Path, id: u64, disk: &Disk) -> Result<SegmentWriter, StoreError> {
        let path = segment_path(dir, id);
        let tmp = temporary_path(dir, id);
        let made = (|| -> io::Result<File> {
            disk.remove_file(IoStep::WalRemove, &tmp)?;
            if path.exists() && segment_holds_records(&path)? {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a segment of this id already holds records",
                ));
            }
            disk.check(IoStep::WalCreate, &tmp)?;
            let mut file = OpenOptions::new().create_new(true).write(true).open(&tmp)?;
            disk.write_all(IoStep::WalWrite, &mut file, &tmp, MAGIC)?;
            disk.sync(IoStep::WalSync, &file, &tmp, true)?;
            disk.check(IoStep::WalRename, &tmp)?;
            std::fs::rename(&tmp, &path)?;
            disk.sync_dir(dir)?;
            Ok(file)
        })();
        match made {
            Ok(file) => Ok(SegmentWriter {
                id,
                path,
                file,
                bytes: MAGIC.len() as u64,
                disk: disk.clone(),
            }),
            Err(e) => {
                // Best effort: a temporary file left now is removed by the next attempt.
                let _ = std::fs::remove_file(&tmp);
                Err(StoreError::io(&path, e))
            }
        }
    }

    /// Writes already framed records (see [`frame`]) and waits until they are durable.
    ///
    /// On failure the segment is sealed ([`SegmentWriter::seal`]) and must not be written
    /// again: the caller drops it and continues in a new segment.
    pub fn write_durable(&mut self, framed: &[u8], fsync: bool) -> Result<(), StoreError> {
        let written = self
            .disk
            .write_all(IoStep::WalWrite, &mut self.file, &self.path, framed)
            .and_then(|()| {
                if fsync {
                    self.disk
                        .sync(IoStep::WalSync, &self.file, &self.path, false)
                } else {
                    Ok(())
                }
            });
        match written {
            Ok(()) => {
                self.bytes += framed.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.seal();
                Err(StoreError::io(&self.path, e))
            }
        }
    }

    /// Cuts the segment back to the end of its last good record, so that no partial record
    /// of a failed write stays in it. Best effort: if this fails too, recovery finds the
    /// partial record at the end of the segment and drops it (it was never acknowledged).
    pub fn seal(&mut self) {
        let cut = self
            .disk
            .check(IoStep::WalTruncate, &self.path)
            .and_then(|()| self.file.set_len(self.bytes))
            .and_then(|()| {
                self.disk
                    .sync(IoStep::WalSync, &self.file, &self.path, true)
            });
        if let Err(e) = cut {
            tracing::warn!(
                segment = %self.path.display(),
                offset = self.bytes,
                error = %e,
                "cannot cut a failed WAL segment back to its last good record; recovery will drop the partial record at its end"
            );
        }
    }

    /// True when no record was written to the segment.
    pub fn is_empty(&self) -> bool {
        self.bytes <= MAGIC.len() as u64
    }
}

/// True when the segment at `path` holds at least one valid record.
fn segment_holds_records(path: &Path) -> io::Result<bool> {
    let mut any = false;
    match read_segment(path, |_, _| any = true) {
        Ok(_) => Ok(any),
        Err(StoreError::Io { source, .. }) => Err(source),
        Err(e) => Err(io::Error::other(e.to_string())),
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
    /// The segment ends in a record that is cut off or fails its checksum, at `offset`, and
    /// no valid record follows it: an unfinished write, never acknowledged.
    Torn { offset: u64, reason: String },
    /// The record at `offset` is damaged and valid records follow it, the first at `resume`.
    Damaged {
        offset: u64,
        reason: String,
        resume: u64,
    },
}

/// A damaged byte range that [`salvage_segment`] skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub offset: u64,
    pub len: u64,
    pub reason: String,
}

/// Reads every valid record of a segment, calling `on_record(kind, body)` for each.
pub fn read_segment(
    path: &Path,
    mut on_record: impl FnMut(u8, &[u8]),
) -> Result<SegmentEnd, StoreError> {
    read_segment_with_offsets(path, |_, kind, body| on_record(kind, body))
}

/// [`read_segment`] that also passes each record's offset in the segment (where its header
/// starts): `on_record(offset, kind, body)`. Reading stops at the first record that is not
/// valid; [`SegmentEnd`] says whether anything valid follows it.
pub fn read_segment_with_offsets(
    path: &Path,
    on_record: impl FnMut(u64, u8, &[u8]),
) -> Result<SegmentEnd, StoreError> {
    read_records(path, false, on_record).map(|(end, _)| end)
}

/// Reads the records of a segment. With `skip_damage`, reading goes on after a damaged range
/// at the next valid record, and the ranges skipped are returned; the end is then `Clean` or
/// `Torn`.
fn read_records(
    path: &Path,
    skip_damage: bool,
    mut on_record: impl FnMut(u64, u8, &[u8]),
) -> Result<(SegmentEnd, Vec<Skipped>), StoreError> {
    let io = |e| StoreError::io(path, e);
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut skipped = Vec::new();
    let mut magic = [0u8; 8];
    let n = read_full(&mut reader, &mut magic).map_err(io)?;
    let mut offset = MAGIC.len() as u64;
    let mut bad =
        (n != 8 || &magic != MAGIC).then(|| (0, format!("bad segment header ({n} bytes read)")));
    let mut body = Vec::new();
    loop {
        if let Some((at, reason)) = bad.take() {
            let Some(resume) = find_valid_after(reader.get_mut(), at).map_err(io)? else {
                return Ok((SegmentEnd::Torn { offset: at, reason }, skipped));
            };
            if !skip_damage {
                return Ok((
                    SegmentEnd::Damaged {
                        offset: at,
                        reason,
                        resume,
                    },
                    skipped,
                ));
            }
            skipped.push(Skipped {
                offset: at,
                len: resume - at,
                reason,
            });
            reader.seek(SeekFrom::Start(resume)).map_err(io)?;
            offset = resume;
        }
        let mut header = [0u8; RECORD_HEADER];
        let n = read_full(&mut reader, &mut header).map_err(io)?;
        if n == 0 {
            return Ok((SegmentEnd::Clean, skipped));
        }
        if n < RECORD_HEADER {
            bad = Some((offset, "incomplete record header".into()));
            continue;
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD {
            bad = Some((offset, format!("implausible record length {len}")));
            continue;
        }
        body.resize(len, 0);
        let got = read_full(&mut reader, &mut body).map_err(io)?;
        if got < len {
            bad = Some((offset, format!("record of {len} bytes cut off after {got}")));
            continue;
        }
        let actual = crc32c::crc32c_append(crc32c::crc32c(&header[..4]), &body);
        if actual != crc {
            bad = Some((
                offset,
                format!("checksum mismatch (stored {crc:08x}, computed {actual:08x})"),
            ));
            continue;
        }
        on_record(offset, body[0], &body[1..]);
        offset += (RECORD_HEADER + len) as u64;
    }
}

/// The offset of the first valid record that starts after `bad` (where an invalid one
/// starts), if any.
fn find_valid_after(file: &mut File, bad: u64) -> io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(bad))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest)?;
    Ok(find_record(&rest, 1).map(|i| bad + i as u64))
}

/// The first index at or after `from` in `bytes` where a valid record starts: a plausible
/// length, a known kind, a body of that kind's shape, and a matching checksum. The cheap
/// checks come first, so that scanning the bytes of a torn write costs little.
fn find_record(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&i| {
        let Some(header) = bytes.get(i..i + RECORD_HEADER) else {
            return false;
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len > bytes.len() - i - RECORD_HEADER {
            return false;
        }
        let payload = &bytes[i + RECORD_HEADER..i + RECORD_HEADER + len];
        let shaped = match payload[0] {
            KIND_OTLP_PROTO | KIND_OTLP_SAMPLED => is_protobuf_message(&payload[1..]),
            KIND_DECISIONS => decode_decisions(&payload[1..]).is_some(),
            _ => false,
        };
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        shaped && crc32c::crc32c_append(crc32c::crc32c(&header[..4]), payload) == crc
    })
}

/// True when `bytes` is a sequence of well-formed protobuf fields that ends exactly at its
/// end (what every OTLP request is; the fields themselves are not decoded).
fn is_protobuf_message(mut bytes: &[u8]) -> bool {
    fn varint(b: &[u8]) -> Option<(u64, usize)> {
        let mut v = 0u64;
        for (i, &byte) in b.iter().enumerate().take(10) {
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some((v, i + 1));
            }
        }
        None
    }
    while !bytes.is_empty() {
        let Some((key, n)) = varint(bytes) else {
            return false;
        };
        if key >> 3 == 0 {
            return false;
        }
        bytes = &bytes[n..];
        let skip = match key & 7 {
            0 => match varint(bytes) {
                Some((_, n)) => n,
                None => return false,
            },
            1 => 8,
            2 => match varint(bytes) {
                Some((len, n)) if len <= (bytes.len() - n) as u64 => n + len as usize,
                _ => return false,
            },
            5 => 4,
            _ => return false,
        };
        let Some(rest) = bytes.get(skip..) else {
            return false;
        };
        bytes = rest;
    }
    true
}

/// Rewrites a damaged segment with every record that passes its checksum, dropping the
/// damaged byte ranges (and an unfinished write at its end), and returns what it skipped.
/// A segment without damage in its middle is left as it is (`Ok(vec![])`). The new content is
/// written and synced under the temporary name, then renamed over the segment.
pub fn salvage_segment(dir: &Path, id: u64, disk: &Disk) -> Result<Vec<Skipped>, StoreError> {
    let path = segment_path(dir, id);
    let mut framed = Vec::new();
    framed.extend_from_slice(MAGIC);
    let (end, mut skipped) = read_records(&path, true, |_, kind, body| {
        frame(&mut framed, kind, body);
    })?;
    if skipped.is_empty() {
        return Ok(skipped);
    }
    if let SegmentEnd::Torn { offset, reason } = end {
        let len = std::fs::metadata(&path)
            .map_err(|e| StoreError::io(&path, e))?
            .len()
            .saturating_sub(offset);
        skipped.push(Skipped {
            offset,
            len,
            reason,
        });
    }
    let tmp = temporary_path(dir, id);
    let written = (|| -> io::Result<()> {
        disk.remove_file(IoStep::WalRemove, &tmp)?;
        disk.check(IoStep::WalCreate, &tmp)?;
        let mut file = OpenOptions::new().create_new(true).write(true).open(&tmp)?;
        disk.write_all(IoStep::WalWrite, &mut file, &tmp, &framed)?;
        disk.sync(IoStep::WalSync, &file, &tmp, true)?;
        disk.check(IoStep::WalRename, &tmp)?;
        std::fs::rename(&tmp, &path)?;
        disk.sync_dir(dir)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::io(&path, e));
    }
    Ok(skipped)
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

#[cfg(test)]
mod tests;
