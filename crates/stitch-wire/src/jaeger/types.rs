//! The structures of Jaeger's `jaeger.thrift` and the `emitBatch` call of `agent.thrift`, read
//! and written with either Thrift protocol.
//!
//! Reading follows what Thrift's generated code does: fields are found by id, a field of an
//! unexpected type and an unknown field are skipped, and required fields that are absent are
//! reported — for a span by rejecting that span alone (its `missing` names the field), for the
//! batch and process by failing the whole batch.

use super::thrift::{Input, MESSAGE_CALL, MESSAGE_ONEWAY, Output, Result, TType, ThriftError};

/// A batch of spans from one process (`jaeger.thrift` `Batch`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub process: Process,
    pub spans: Vec<Span>,
    pub seq_no: Option<i64>,
    pub stats: Option<ClientStats>,
}

/// The process that emitted a batch (`Process`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<Tag>,
}

/// Client-side drop counters (`ClientStats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub full_queue_dropped_spans: i64,
    pub too_large_dropped_spans: i64,
    pub failed_to_emit_spans: i64,
}

/// One span (`Span`). Times are Unix microseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Span {
    pub trace_id_low: i64,
    pub trace_id_high: i64,
    pub span_id: i64,
    pub parent_span_id: i64,
    pub operation_name: String,
    pub references: Vec<SpanRef>,
    pub flags: i32,
    pub start_time: i64,
    pub duration: i64,
    pub tags: Vec<Tag>,
    pub logs: Vec<Log>,
    /// When reading: the first required field that was absent, which rejects the span.
    /// Ignored when writing.
    pub missing: Option<&'static str>,
}

/// A typed key-value pair (`Tag`).
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    pub key: String,
    pub value: TagValue,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: TagValue) -> Tag {
        Tag {
            key: key.into(),
            value,
        }
    }
}

/// The value of a tag, one variant per `TagType`.
#[derive(Clone, Debug, PartialEq)]
pub enum TagValue {
    String(String),
    Double(f64),
    Bool(bool),
    Long(i64),
    Binary(Vec<u8>),
    /// A `vType` this version of the IDL does not define.
    Unknown(i32),
}

/// A timestamped set of fields (`Log`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Log {
    /// Unix microseconds.
    pub timestamp: i64,
    pub fields: Vec<Tag>,
}

/// A reference to another span (`SpanRef`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef {
    pub ref_type: RefType,
    pub trace_id_low: i64,
    pub trace_id_high: i64,
    pub span_id: i64,
}

/// `SpanRefType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefType {
    ChildOf,
    FollowsFrom,
    /// A value the IDL does not define.
    Unknown(i32),
}

impl RefType {
    fn from_i32(v: i32) -> RefType {
        match v {
            0 => RefType::ChildOf,
            1 => RefType::FollowsFrom,
            other => RefType::Unknown(other),
        }
    }

    fn as_i32(self) -> i32 {
        match self {
            RefType::ChildOf => 0,
            RefType::FollowsFrom => 1,
            RefType::Unknown(v) => v,
        }
    }
}

/// The method of the agent's `emitBatch` call.
pub const EMIT_BATCH: &str = "emitBatch";
/// The agent's Zipkin method, which Stitch's Jaeger agent receivers do not serve.
pub const EMIT_ZIPKIN_BATCH: &str = "emitZipkinBatch";

fn invalid(message: impl Into<String>) -> ThriftError {
    ThriftError::Message(message.into())
}

/// Reads the agent's `emitBatch` message (a call or oneway message whose argument 1 is the
/// batch).
pub fn read_emit_batch<'a>(input: &mut impl Input<'a>) -> Result<Batch> {
    let (name, message_type, _seq) = input.message_begin()?;
    if message_type != MESSAGE_ONEWAY && message_type != MESSAGE_CALL {
        return Err(invalid(format!(
            "message type {message_type} is neither a call nor oneway"
        )));
    }
    if name == EMIT_ZIPKIN_BATCH {
        return Err(invalid(
            "emitZipkinBatch is not supported: send Zipkin spans to the Zipkin receiver",
        ));
    }
    if name != EMIT_BATCH {
        return Err(invalid(format!(
            "unknown agent method {:?}: expected emitBatch",
            crate::truncate(&name, 40)
        )));
    }
    let mut batch = None;
    input.struct_begin()?;
    while let Some((t, id)) = input.field_begin()? {
        match (id, t) {
            (1, TType::Struct) => batch = Some(read_batch(input)?),
            _ => input.skip(t, 1)?,
        }
    }
    input.struct_end();
    batch.ok_or_else(|| invalid("emitBatch carries no batch"))
}

/// Reads a `Batch` struct.
pub fn read_batch<'a>(input: &mut impl Input<'a>) -> Result<Batch> {
    let mut process = None;
    let mut spans = None;
    let mut batch = Batch::default();
    input.struct_begin()?;
    while let Some((t, id)) = input.field_begin()? {
        match (id, t) {
            (1, TType::Struct) => process = Some(read_process(input)?),
            (2, TType::List) => spans = Some(read_list(input, TType::Struct, read_span)?),
            (3, TType::I64) => batch.seq_no = Some(input.i64()?),
            (4, TType::Struct) => batch.stats = Some(read_stats(input)?),
            _ => input.skip(t, 1)?,
        }
    }
    input.struct_end();
    batch.process = process.ok_or_else(|| invalid("Batch.process is missing"))?;
    batch.spans = spans.ok_or_else(|| invalid("Batch.spans is missing"))?;
    Ok(batch)
}

/// Reads a list whose elements should be of type `elem`; a list of another element type is
/// skipped and read as empty.
fn read_list<'a, I: Input<'a>, T>(
    input: &mut I,
    elem: TType,
    read: impl Fn(&mut I) -> Result<T>,
) -> Result<Vec<T>> {
    let (t, n) = input.list_begin()?;
    if t != elem {
        for _ in 0..n {
            input.skip(t, 2)?;
        }
        return Ok(Vec::new());
    }
    // Never reserve more than a small start: a count only says what the sender claims.
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        out.push(read(input)?);
    }
    Ok(out)
}

fn read_process<'a>(input: &mut impl Input<'a>) -> Result<Process> {
    let mut service_name = None;
    let mut tags = Vec::new();
    input.struct_begin()?;
    while let Some((t, id)) = input.field_begin()? {
        match (id, t) {
            (1, TType::Binary) => service_name = Some(input.string()?),
            (2, TType::List) => tags = read_tags(input)?,
            _ => input.skip(t, 2)?,
        }
    }
    input.struct_end();
    Ok(Process {
        service_name: service_name.ok_or_else(|| invalid("Process.serviceName is missing"))?,
        tags,
    })
}

fn read_stats<'a>(input: &mut impl Input<'a>) -> Result<ClientStats> {
    let mut stats = ClientStats::default();
    input.struct_begin()?;
    while let Some((t, id)) = input.field_begin()? {
        match (id, t) {
            (1, TType::I64) => stats.full_queue_dropped_spans = input.i64()?,
            (2, TType::I64) => stats.too_large_dropped_spans = input.i64()?,
            (3, TType::I64) => stats.failed_to_emit_spans = input.i64()?,
            _ => input.skip(t, 2)?,
        }
    }
    input.struct_end();
    Ok(stats)
}

/// Tags; a tag without a key or a type is dropped (Thrift would refuse it as a whole).
fn read_tags<'a>(input: &mut impl Input<'a>) -> Result<Vec<Tag>> {
    Ok(read_list(input, TType::Struct, read_tag)?
        .into_iter()
        .flatten()
        .collect())
}

fn read_tag<'a>(input: &mut impl Input<'a>) -> Result<Option<Tag>> {
    let mut key = None;
    let mut v_type = None;
    let (mut v_str, mut v_double, mut v_bool, mut v_long, mut v_binary) =
        (None, None, None, None, None);
    input.struct_begin()?;
    while let Some((t, id)) = input.field_begin()? {
        match (id, t) {
            (1, TType::Binary) => key = Some(input.string()?),
            (2, TType::I32) => v_type = Some(input.i32()?),
            (3, TType::Binary) => v_str = Some(input.string()?),
            (4, TType::Double) => v_double = Some(input.double()?),
            (5, TType::Bool) => v_bool = Some(input.bool()?),
            (6, TType::I64) => v_long = Some(input.i64()?),
            (7, TType::Binary) => v_binary = Some(input.binary()?.to_vec()),
            _ => input.skip(t, 3)?,
        }
    }
    input.struct_end();
    let (Some(key), Some(v_type)) = (key, v_type) else {
        return Ok(None);
    };
    // A value absent for its type is that type's zero value, as Jaeger reads it.
    let value = match v_type {
        0 => TagValue::String(v_str.unwrap_or_default()),
        1 => TagValue::Double(v_double.unwrap_or_default()),
        2 => TagValue::Bool(v_bool.unwrap_or_default()),
        3 => TagValue::Long(v_long.unwrap_or_default()),
        4 => TagValue::Binary(v_binary.unwrap_or_default()),
        other => TagValue::Unknown(other),
    };
    Ok(Some(Tag { key, value }))
}

fn read_log<'a>(input: &mut impl Input<'a>) -> Result<Log> {
    let mut log = Log::default();
    input.struct_begin()?;
    while let Some((t, id)) = input.field_begin()? {
        match (id, t) {
            (1, TType::I64) => log.timestamp = input.i64()?,
            (2, TType::List) => log.fields = read_tags(input)?,
            _ => input.skip(t, 3)?,
        }
    }
    input.struct_end();
    Ok(log)
}

/// A reference without a type or ids is dropped.
fn read_ref<'a>(input: &mut impl Input<'a>) -> Result<Option<SpanRef>> {
    let (mut ref_type, mut low, mut high, mut span) = (None, None, None, None);
    input.struct_begin()?;
    while let Some((t, id)) = input.field_begin()? {
        match (id, t) {
            (1, TType::I32) => ref_type = Some(RefType::from_i32(input.i32()?)),
            (2, TType::I64) => low = Some(input.i64()?),
            (3, TType::I64) => high = Some(input.i64()?),
            (4, TType::I64) => span = Some(input.i64()?),
            _ => input.skip(t, 3)?,
        }
    }
    input.struct_end();
    Ok(match (ref_type, low, high, span) {
        (Some(ref_type), Some(trace_id_low), Some(trace_id_high), Some(span_id)) => Some(SpanRef {
            ref_type,
            trace_id_low,
            trace_id_high,
            span_id,
        }),
        _ => None,
    })
}

fn read_span<'a>(input: &mut impl Input<'a>) -> Result<Span> {
    let mut span = Span::default();
    // Required fields seen, in IDL order.
    const REQUIRED: [&str; 8] = [
        "traceIdLow",
        "traceIdHigh",
        "spanId",
        "parentSpanId",
        "operationName",
        "flags",
        "startTime",
        "duration",
    ];
    let mut seen = [false; 8];
    input.struct_begin()?;
    while let Some((t, id)) = input.field_begin()? {
        match (id, t) {
            (1, TType::I64) => {
                span.trace_id_low = input.i64()?;
                seen[0] = true;
            }
            (2, TType::I64) => {
                span.trace_id_high = input.i64()?;
                seen[1] = true;
            }
            (3, TType::I64) => {
                span.span_id = input.i64()?;
                seen[2] = true;
            }
            (4, TType::I64) => {
                span.parent_span_id = input.i64()?;
                seen[3] = true;
            }
            (5, TType::Binary) => {
                span.operation_name = input.string()?;
                seen[4] = true;
            }
            (6, TType::List) => {
                span.references = read_list(input, TType::Struct, read_ref)?
                    .into_iter()
                    .flatten()
                    .collect();
            }
            (7, TType::I32) => {
                span.flags = input.i32()?;
                seen[5] = true;
            }
            (8, TType::I64) => {
                span.start_time = input.i64()?;
                seen[6] = true;
            }
            (9, TType::I64) => {
                span.duration = input.i64()?;
                seen[7] = true;
            }
            (10, TType::List) => span.tags = read_tags(input)?,
            (11, TType::List) => span.logs = read_list(input, TType::Struct, read_log)?,
            _ => input.skip(t, 2)?,
        }
    }
    input.struct_end();
    span.missing = seen.iter().position(|s| !s).map(|i| REQUIRED[i]);
    Ok(span)
}

/// Writes the agent's `emitBatch` oneway message.
pub fn write_emit_batch(out: &mut impl Output, batch: &Batch, seq_id: i32) {
    out.message_begin(EMIT_BATCH, MESSAGE_ONEWAY, seq_id);
    out.struct_begin();
    out.field(TType::Struct, 1);
    write_batch(out, batch);
    out.struct_end();
}

/// Writes a `Batch` struct.
pub fn write_batch(out: &mut impl Output, batch: &Batch) {
    out.struct_begin();
    out.field(TType::Struct, 1);
    write_process(out, &batch.process);
    out.field(TType::List, 2);
    out.list_begin(TType::Struct, batch.spans.len());
    for span in &batch.spans {
        write_span(out, span);
    }
    if let Some(seq) = batch.seq_no {
        out.field(TType::I64, 3);
        out.i64(seq);
    }
    if let Some(stats) = &batch.stats {
        out.field(TType::Struct, 4);
        out.struct_begin();
        out.field(TType::I64, 1);
        out.i64(stats.full_queue_dropped_spans);
        out.field(TType::I64, 2);
        out.i64(stats.too_large_dropped_spans);
        out.field(TType::I64, 3);
        out.i64(stats.failed_to_emit_spans);
        out.struct_end();
    }
    out.struct_end();
}

fn write_process(out: &mut impl Output, process: &Process) {
    out.struct_begin();
    out.field(TType::Binary, 1);
    out.binary(process.service_name.as_bytes());
    if !process.tags.is_empty() {
        out.field(TType::List, 2);
        write_tags(out, &process.tags);
    }
    out.struct_end();
}

fn write_tags(out: &mut impl Output, tags: &[Tag]) {
    out.list_begin(TType::Struct, tags.len());
    for tag in tags {
        out.struct_begin();
        out.field(TType::Binary, 1);
        out.binary(tag.key.as_bytes());
        out.field(TType::I32, 2);
        match &tag.value {
            TagValue::String(s) => {
                out.i32(0);
                out.field(TType::Binary, 3);
                out.binary(s.as_bytes());
            }
            TagValue::Double(d) => {
                out.i32(1);
                out.field(TType::Double, 4);
                out.double(*d);
            }
            TagValue::Bool(b) => {
                out.i32(2);
                out.bool_field(5, *b);
            }
            TagValue::Long(l) => {
                out.i32(3);
                out.field(TType::I64, 6);
                out.i64(*l);
            }
            TagValue::Binary(b) => {
                out.i32(4);
                out.field(TType::Binary, 7);
                out.binary(b);
            }
            TagValue::Unknown(t) => out.i32(*t),
        }
        out.struct_end();
    }
}

fn write_span(out: &mut impl Output, span: &Span) {
    out.struct_begin();
    out.field(TType::I64, 1);
    out.i64(span.trace_id_low);
    out.field(TType::I64, 2);
    out.i64(span.trace_id_high);
    out.field(TType::I64, 3);
    out.i64(span.span_id);
    out.field(TType::I64, 4);
    out.i64(span.parent_span_id);
    out.field(TType::Binary, 5);
    out.binary(span.operation_name.as_bytes());
    if !span.references.is_empty() {
        out.field(TType::List, 6);
        out.list_begin(TType::Struct, span.references.len());
        for r in &span.references {
            out.struct_begin();
            out.field(TType::I32, 1);
            out.i32(r.ref_type.as_i32());
            out.field(TType::I64, 2);
            out.i64(r.trace_id_low);
            out.field(TType::I64, 3);
            out.i64(r.trace_id_high);
            out.field(TType::I64, 4);
            out.i64(r.span_id);
            out.struct_end();
        }
    }
    out.field(TType::I32, 7);
    out.i32(span.flags);
    out.field(TType::I64, 8);
    out.i64(span.start_time);
    out.field(TType::I64, 9);
    out.i64(span.duration);
    if !span.tags.is_empty() {
        out.field(TType::List, 10);
        write_tags(out, &span.tags);
    }
    if !span.logs.is_empty() {
        out.field(TType::List, 11);
        out.list_begin(TType::Struct, span.logs.len());
        for log in &span.logs {
            out.struct_begin();
            out.field(TType::I64, 1);
            out.i64(log.timestamp);
            out.field(TType::List, 2);
            write_tags(out, &log.fields);
            out.struct_end();
        }
    }
    out.struct_end();
}
