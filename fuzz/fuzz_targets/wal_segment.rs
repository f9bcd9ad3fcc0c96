//! A WAL segment of arbitrary bytes, as recovery finds it after a crash or a damaged disk:
//! reading it never panics, every record it yields decodes or is refused, and after salvage
//! the segment reads to its end with no damage left, keeping every record read before the
//! first damage.
//!
//! The first input byte picks the shape: the bytes as they are; the segment header then the
//! bytes; or records built from the bytes (kind, length, body; each with a valid checksum, so
//! the fuzzer reaches the record decoders) with one byte of the result flipped.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stitch_store::disk::Disk;
use stitch_store::wal::{self, SegmentEnd};

fn records(path: &Path) -> (Vec<(u8, Vec<u8>)>, SegmentEnd) {
    let mut out = Vec::new();
    let end = wal::read_segment(path, |kind, body| {
        match kind {
            wal::KIND_OTLP_PROTO | wal::KIND_OTLP_SAMPLED => {
                let _ = stitch_wire::otlp::decode_export_request(body);
            }
            wal::KIND_DECISIONS => {
                let _ = wal::decode_decisions(body);
            }
            _ => {}
        }
        out.push((kind, body.to_vec()));
    })
    .expect("a segment that exists can be read");
    (out, end)
}

/// `MAGIC`, then records of (kind byte, length byte, body) from `data`; the last two bytes
/// left, when there are, name a byte of the segment to flip.
fn framed(mut data: &[u8]) -> Vec<u8> {
    let mut out = wal::MAGIC.to_vec();
    while let [kind, len, rest @ ..] = data {
        let len = usize::from(*len).min(rest.len());
        wal::frame(&mut out, kind % 4, &rest[..len]);
        data = &rest[len..];
    }
    if let [hi, lo] = data {
        let at = usize::from(u16::from_le_bytes([*lo, *hi])) % out.len();
        out[at] ^= 0x5a;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let bytes = match shape % 3 {
        0 => rest.to_vec(),
        1 => [wal::MAGIC.as_slice(), rest].concat(),
        _ => framed(rest),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = wal::segment_path(dir.path(), 1);
    std::fs::write(&path, &bytes).expect("writing the segment");
    let (before, _) = records(&path);
    let disk = Disk::new(None, 0);
    wal::salvage_segment(dir.path(), 1, &disk).expect("salvage of a readable segment");
    let (after, end) = records(&path);
    assert!(
        !matches!(end, SegmentEnd::Damaged { .. }),
        "damage left after salvage: {end:?}"
    );
    assert!(after.len() >= before.len(), "salvage lost records");
    assert_eq!(&after[..before.len()], &before[..], "salvage changed records");
});
