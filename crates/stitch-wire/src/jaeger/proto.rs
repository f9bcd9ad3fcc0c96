//! Jaeger's protobuf model (`jaeger.api_v2`: `model.proto`, `collector.proto` and
//! `sampling.proto`), written by hand as prost messages with the field numbers of the IDL: what
//! the collector's gRPC `CollectorService/PostSpans` carries, and the messages of
//! `SamplingManager/GetSamplingStrategy` (remote sampling over gRPC).
//!
//! Enums are plain `i32`s (`ValueType`: STRING 0, BOOL 1, INT64 2, FLOAT64 3, BINARY 4;
//! `SpanRefType`: CHILD_OF 0, FOLLOWS_FROM 1) so that values outside the IDL still decode.
//! Trace ids are 16 bytes (high half first) and span ids 8 bytes, both big-endian.

/// The full gRPC method path of `PostSpans`.
pub const POST_SPANS_PATH: &str = "/jaeger.api_v2.CollectorService/PostSpans";
/// The gRPC service name.
pub const COLLECTOR_SERVICE: &str = "jaeger.api_v2.CollectorService";
/// The full gRPC method path of `GetSamplingStrategy`.
pub const GET_SAMPLING_STRATEGY_PATH: &str = "/jaeger.api_v2.SamplingManager/GetSamplingStrategy";
/// The remote-sampling gRPC service name.
pub const SAMPLING_MANAGER: &str = "jaeger.api_v2.SamplingManager";

pub const VALUE_STRING: i32 = 0;
pub const VALUE_BOOL: i32 = 1;
pub const VALUE_INT64: i32 = 2;
pub const VALUE_FLOAT64: i32 = 3;
pub const VALUE_BINARY: i32 = 4;

pub const REF_CHILD_OF: i32 = 0;
pub const REF_FOLLOWS_FROM: i32 = 1;

/// `SamplingStrategyType`. The IDL calls the field legacy: with per-operation strategies it
/// stays PROBABILISTIC, and clients look at which strategy message is present.
pub const STRATEGY_PROBABILISTIC: i32 = 0;
pub const STRATEGY_RATE_LIMITING: i32 = 1;

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

// ---- sampling.proto ----

#[derive(Clone, PartialEq, prost::Message)]
pub struct SamplingStrategyParameters {
    #[prost(string, tag = "1")]
    pub service_name: String,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ProbabilisticSamplingStrategy {
    #[prost(double, tag = "1")]
    pub sampling_rate: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct RateLimitingSamplingStrategy {
    #[prost(int32, tag = "1")]
    pub max_traces_per_second: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct OperationSamplingStrategy {
    #[prost(string, tag = "1")]
    pub operation: String,
    #[prost(message, optional, tag = "2")]
    pub probabilistic_sampling: Option<ProbabilisticSamplingStrategy>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PerOperationSamplingStrategies {
    #[prost(double, tag = "1")]
    pub default_sampling_probability: f64,
    #[prost(double, tag = "2")]
    pub default_lower_bound_traces_per_second: f64,
    #[prost(message, repeated, tag = "3")]
    pub per_operation_strategies: Vec<OperationSamplingStrategy>,
    #[prost(double, tag = "4")]
    pub default_upper_bound_traces_per_second: f64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SamplingStrategyResponse {
    /// [`STRATEGY_PROBABILISTIC`] or [`STRATEGY_RATE_LIMITING`].
    #[prost(int32, tag = "1")]
    pub strategy_type: i32,
    #[prost(message, optional, tag = "2")]
    pub probabilistic_sampling: Option<ProbabilisticSamplingStrategy>,
    #[prost(message, optional, tag = "3")]
    pub rate_limiting_sampling: Option<RateLimitingSamplingStrategy>,
    #[prost(message, optional, tag = "4")]
    pub operation_sampling: Option<PerOperationSamplingStrategies>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn sampling_messages_use_the_idl_field_numbers() {
        let params = SamplingStrategyParameters {
            service_name: "ab".into(),
        };
        assert_eq!(params.encode_to_vec(), [0x0a, 2, b'a', b'b']);

        let half = 0.5f64.to_le_bytes();
        let response = SamplingStrategyResponse {
            strategy_type: STRATEGY_RATE_LIMITING,
            probabilistic_sampling: Some(ProbabilisticSamplingStrategy { sampling_rate: 0.5 }),
            rate_limiting_sampling: Some(RateLimitingSamplingStrategy {
                max_traces_per_second: 3,
            }),
            operation_sampling: Some(PerOperationSamplingStrategies {
                default_sampling_probability: 0.5,
                default_lower_bound_traces_per_second: 0.5,
                per_operation_strategies: vec![OperationSamplingStrategy {
                    operation: "x".into(),
                    probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                        sampling_rate: 0.5,
                    }),
                }],
                default_upper_bound_traces_per_second: 0.5,
            }),
        };
        let mut want = vec![0x08, 1, 0x12, 9, 0x09];
        want.extend(half);
        want.extend([0x1a, 2, 0x08, 3, 0x22, 43, 0x09]);
        want.extend(half);
        want.push(0x11);
        want.extend(half);
        // perOperationStrategies: operation "x", probabilisticSampling {0.5}.
        want.extend([0x1a, 14, 0x0a, 1, b'x', 0x12, 9, 0x09]);
        want.extend(half);
        want.push(0x21);
        want.extend(half);
        assert_eq!(response.encode_to_vec(), want);
        assert_eq!(
            SamplingStrategyResponse::decode(want.as_slice()).unwrap(),
            response
        );
    }
}
