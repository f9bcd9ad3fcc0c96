use super::*;

fn records(path: &Path) -> (Vec<(u8, Vec<u8>)>, SegmentEnd) {
    let mut out = Vec::new();
    let end = read_segment(path, |k, b| out.push((k, b.to_vec()))).unwrap();
    (out, end)
}

#[test]
fn records_written_are_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::create(dir.path(), 7, &Disk::default()).unwrap();
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
    let mut w = SegmentWriter::create(dir.path(), 1, &Disk::default()).unwrap();
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
    let mut w = SegmentWriter::create(dir.path(), 1, &Disk::default()).unwrap();
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

/// Fails the next write of a WAL record after `keep` bytes with ENOSPC, once.
#[derive(Debug)]
struct TearNextWrite {
    keep: usize,
    armed: std::sync::atomic::AtomicBool,
}

impl crate::disk::FaultInjector for TearNextWrite {
    fn inject(&self, step: IoStep, _: &Path, _: u64) -> crate::disk::Injected {
        use std::sync::atomic::Ordering;
        if step == IoStep::WalWrite && self.armed.swap(false, Ordering::SeqCst) {
            crate::disk::Injected::Torn(self.keep, io::ErrorKind::StorageFull.into())
        } else {
            crate::disk::Injected::Proceed
        }
    }
}

/// Three records in one segment; returns its path and where each record starts.
fn three_records(dir: &Path) -> (PathBuf, Vec<u64>) {
    let mut w = SegmentWriter::create(dir, 1, &Disk::default()).unwrap();
    let mut buf = Vec::new();
    let mut starts = Vec::new();
    for body in [&b"first"[..], b"second", b"third"] {
        starts.push(MAGIC.len() as u64 + buf.len() as u64);
        frame(
            &mut buf,
            KIND_DECISIONS,
            &encode_decisions(&[DecisionEntry {
                trace_id: stitch_model::TraceId([body.len() as u8; 16]),
                verdict: Verdict::Sampled,
                probability: 0.5,
                policy: String::from_utf8(body.to_vec()).unwrap(),
            }]),
        );
    }
    w.write_durable(&buf, true).unwrap();
    (segment_path(dir, 1), starts)
}

#[test]
fn a_damaged_record_followed_by_valid_ones_is_reported_with_where_they_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (path, starts) = three_records(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[starts[1] as usize + RECORD_HEADER + 3] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let (recs, end) = records(&path);
    assert_eq!(recs.len(), 1, "reading stops at the damaged record");
    match end {
        SegmentEnd::Damaged {
            offset,
            resume,
            reason,
        } => {
            assert_eq!((offset, resume), (starts[1], starts[2]));
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected damage in the middle, got {other:?}"),
    }
}

#[test]
fn salvage_rewrites_a_damaged_segment_with_every_valid_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, starts) = three_records(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // Damage the middle record's length and leave a torn write at the end.
    bytes[starts[1] as usize] = 0xff;
    bytes[starts[1] as usize + 3] = 0x7f;
    bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    std::fs::write(&path, &bytes).unwrap();
    let skipped = salvage_segment(dir.path(), 1, &Disk::default()).unwrap();
    assert_eq!(
        skipped
            .iter()
            .map(|s| (s.offset, s.len))
            .collect::<Vec<_>>(),
        vec![
            (starts[1], starts[2] - starts[1]),
            (bytes.len() as u64 - 6, 6)
        ]
    );
    let (recs, end) = records(&path);
    assert_eq!(end, SegmentEnd::Clean);
    let policies: Vec<String> = recs
        .iter()
        .map(|(_, b)| decode_decisions(b).unwrap()[0].policy.clone())
        .collect();
    assert_eq!(policies, ["first", "third"]);
    assert!(!temporary_path(dir.path(), 1).exists());
    // An intact segment is left alone.
    assert_eq!(
        salvage_segment(dir.path(), 1, &Disk::default()).unwrap(),
        vec![]
    );
}

#[test]
fn junk_after_the_last_record_is_a_torn_tail_however_it_looks() {
    let dir = tempfile::tempdir().unwrap();
    let (path, starts) = three_records(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let end_of_records = bytes.len() as u64;
    // Zeros, random bytes, and a header that promises more than follows.
    bytes.extend_from_slice(&[0; 100]);
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..4000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push(x as u8);
    }
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 1, 0x0a]);
    std::fs::write(&path, &bytes).unwrap();
    let (recs, end) = records(&path);
    assert_eq!(recs.len(), starts.len());
    assert!(
        matches!(end, SegmentEnd::Torn { offset, .. } if offset == end_of_records),
        "{end:?}"
    );
}

#[test]
fn a_failed_write_leaves_the_segment_cut_at_its_last_good_record() {
    let dir = tempfile::tempdir().unwrap();
    let faults = std::sync::Arc::new(TearNextWrite {
        keep: 11,
        armed: false.into(),
    });
    let disk = Disk::new(Some(faults.clone()), 0);
    let mut w = SegmentWriter::create(dir.path(), 3, &disk).unwrap();
    let mut good = Vec::new();
    frame(&mut good, KIND_OTLP_PROTO, b"");
    w.write_durable(&good, true).unwrap();
    faults
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut torn = Vec::new();
    frame(&mut torn, KIND_OTLP_PROTO, &[0x0a, 0x02, 0x0a, 0x00]);
    frame(&mut torn, KIND_OTLP_PROTO, b"");
    let err = w.write_durable(&torn, true).unwrap_err();
    assert!(err.to_string().contains("no storage space"), "{err}");
    let path = segment_path(dir.path(), 3);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        (MAGIC.len() + good.len()) as u64,
        "the partial record was cut away"
    );
    let (recs, end) = records(&path);
    assert_eq!((recs.len(), end), (1, SegmentEnd::Clean));
}

#[test]
fn making_a_segment_replaces_what_failed_attempts_left() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::default();
    std::fs::write(temporary_path(dir.path(), 5), b"STW").unwrap();
    std::fs::write(segment_path(dir.path(), 5), b"").unwrap();
    let mut w = SegmentWriter::create(dir.path(), 5, &disk).unwrap();
    assert!(!temporary_path(dir.path(), 5).exists());
    let mut buf = Vec::new();
    frame(&mut buf, KIND_OTLP_PROTO, b"");
    w.write_durable(&buf, true).unwrap();
    drop(w);
    // A segment that holds records is never replaced.
    let err = SegmentWriter::create(dir.path(), 5, &disk).err().unwrap();
    assert!(err.to_string().contains("already holds records"), "{err}");
    assert_eq!(records(&segment_path(dir.path(), 5)).0.len(), 1);
    std::fs::write(temporary_path(dir.path(), 6), b"junk").unwrap();
    assert_eq!(remove_temporary_files(dir.path(), &disk).unwrap(), 1);
    assert_eq!(list_segments(dir.path()).unwrap(), vec![5]);
}

#[test]
fn the_shape_check_accepts_otlp_requests_and_rejects_noise() {
    use prost::Message;
    let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: vec![Default::default(), Default::default()],
    };
    assert!(is_protobuf_message(&request.encode_to_vec()));
    assert!(is_protobuf_message(b""));
    assert!(
        !is_protobuf_message(&[0x0a, 0x05, 1]),
        "length past the end"
    );
    assert!(!is_protobuf_message(&[0x00]), "field number 0");
    assert!(!is_protobuf_message(&[0x0b]), "group wire type");
}
