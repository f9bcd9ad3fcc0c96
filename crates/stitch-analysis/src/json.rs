//! Serialisation helpers for output types: ids as lower-case hex strings, Unix-nanosecond
//! timestamps as decimal strings (they exceed the 2^53 integers a JSON reader such as a
//! browser can hold exactly, which is also why OTLP/JSON encodes them as strings).

use serde::Serializer;
use serde::ser::SerializeSeq;
use stitch_model::{SpanId, TraceId};

pub(crate) fn span_id<S: Serializer>(id: &SpanId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

pub(crate) fn opt_span_id<S: Serializer>(id: &Option<SpanId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.collect_str(id),
        None => s.serialize_none(),
    }
}

pub(crate) fn span_ids<S: Serializer>(ids: &[SpanId], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(ids.len()))?;
    for id in ids {
        seq.serialize_element(&id.to_string())?;
    }
    seq.end()
}

pub(crate) fn trace_id<S: Serializer>(id: &TraceId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

pub(crate) fn u64_string<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}
