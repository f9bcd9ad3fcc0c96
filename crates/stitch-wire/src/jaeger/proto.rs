//! Jaeger's protobuf model (`jaeger.api_v2`, `model.proto` and `collector.proto`), written by
//! hand as prost messages with the field numbers of the IDL: what the collector's gRPC
//! `CollectorService/PostSpans` carries.
//!
//! Enums are plain `i32`s (`ValueType`: STRING 0, BOOL 1, INT64 2, FLOAT64 3, BINARY 4;
//! `SpanRefType`: CHILD_OF 0, FOLLOWS_FROM 1) so that values outside the IDL still decode.
//! Trace ids are 16 bytes (high half first) and span ids 8 bytes, both big-endian.

/// The full gRPC method path of `PostSpans`.
pub const POST_SPANS_PATH: &str = "/jaeger.api_v2.CollectorService/PostSpans";
/// The gRPC service name.
pub const COLLECTOR_SERVICE: &str = "jaeger.api_v2.CollectorService";

pub const VALUE_STRING: i32 = 0;
pub const VALUE_BOOL: i32 = 1;
pub const VALUE_INT64: i32 = 2;
pub const VALUE_FLOAT64: i32 = 3;
pub const VALUE_BINARY: i32 = 4;

pub const REF_CHILD_OF: i32 = 0;
pub const REF_FOLLOWS_FROM: i32 = 1;

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(int32, tag = "2")]
    pub v_type: i32,
    #[prost(string, tag = "3")]
    pub v_str: String,
    #[prost(bool, tag = "4")]
    pub v_bool: bool,
    #[prost(int64, tag = "5")]
    pub v_int64: i64,
    #[prost(double, tag = "6")]
    pub v_float64: f64,
    #[prost(bytes = "vec", tag = "7")]
    pub v_binary: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Log {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(message, repeated, tag = "2")]
    pub fields: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SpanRef {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(int32, tag = "3")]
    pub ref_type: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Process {
    #[prost(string, tag = "1")]
    pub service_name: String,
    #[prost(message, repeated, tag = "2")]
    pub tags: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub operation_name: String,
    #[prost(message, repeated, tag = "4")]
    pub references: Vec<SpanRef>,
    #[prost(uint32, tag = "5")]
    pub flags: u32,
    #[prost(message, optional, tag = "6")]
    pub start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub duration: Option<Duration>,
    #[prost(message, repeated, tag = "8")]
    pub tags: Vec<KeyValue>,
    #[prost(message, repeated, tag = "9")]
    pub logs: Vec<Log>,
    /// The span's own process; when absent the batch's process applies.
    #[prost(message, optional, tag = "10")]
    pub process: Option<Process>,
    #[prost(string, tag = "11")]
    pub process_id: String,
    #[prost(string, repeated, tag = "12")]
    pub warnings: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Batch {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
    #[prost(message, optional, tag = "2")]
    pub process: Option<Process>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PostSpansRequest {
    #[prost(message, optional, tag = "1")]
    pub batch: Option<Batch>,
}

#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct PostSpansResponse {}
