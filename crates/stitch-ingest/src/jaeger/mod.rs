//! Jaeger receivers: the agent's UDP ports and the collector's HTTP and gRPC endpoints.
//!
//! | port (default) | what | decoder |
//! | --- | --- | --- |
//! | UDP 6831 | agent, `emitBatch` in the Thrift compact protocol | `jaeger::decode_agent_compact` |
//! | UDP 6832 | agent, `emitBatch` in the Thrift binary protocol | `jaeger::decode_agent_binary` |
//! | TCP 14268 | collector HTTP, `POST /api/traces`, a binary-protocol `Batch` | `jaeger::decode_collector_thrift` |
//! | TCP 14250 | collector gRPC, `jaeger.api_v2.CollectorService/PostSpans` | `jaeger::decode_post_spans` |
//! | TCP 14250 | remote sampling over gRPC, `jaeger.api_v2.SamplingManager/GetSamplingStrategy` | `proto::SamplingStrategyParameters` |
//!
//! Spans go through [`Ingest`]: the same limits and the same durable acknowledgement as
//! OTLP. Sampling strategies come from a [`SamplingStrategies`], the same source that answers
//! Jaeger's HTTP form (`GET /sampling?service=`, served by the `stitch` binary).
//!
//! # UDP
//!
//! A datagram is one batch; there is no answer. A datagram that does not decode is counted in
//! `udp_malformed_datagrams` and logged at warn level at most once per [`LOG_INTERVAL`] (with the
//! number left unlogged since); the listener goes on. UDP has no backpressure, so when Stitch is
//! overloaded — the in-flight memory budget is spent, [`MAX_UDP_IN_FLIGHT`] datagrams are
//! already being stored, or the store refuses — the datagram is dropped and counted in
//! `udp_dropped_datagrams`. Datagrams are stored concurrently, so the socket is drained while
//! earlier batches wait for the WAL.
//!
//! # HTTP (Jaeger collector's answers)
//!
//! | status | when |
//! | --- | --- |
//! | 202 Accepted | stored (empty body), or stored with some spans rejected: the body then says `accepted N spans; rejected M: <reasons>` |
//! | 400 Bad Request | the body is not a Thrift `Batch` (the message says where it breaks), cannot be read or decompressed, or no span in it is valid |
//! | 413 Payload Too Large | the body, before or after gzip decompression, is over the request limit |
//! | 415 Unsupported Media Type | a content type other than `application/x-thrift` or `application/vnd.apache.thrift.binary` (`format=jaeger.thrift` in the query is accepted too), or an encoding other than gzip |
//! | 503 Service Unavailable + `Retry-After` | overloaded or the store failed |
//!
//! # gRPC
//!
//! `PostSpans` answers `PostSpansResponse {}` once the spans are durable. A message that is not
//! a `PostSpansRequest` is `INVALID_ARGUMENT`; over the size limit (before or after gzip
//! decompression) `RESOURCE_EXHAUSTED`; overload `UNAVAILABLE`. Invalid spans are left out
//! (Jaeger's protocol has no partial success) and counted; when every span is invalid the
//! answer is `INVALID_ARGUMENT` naming them.
//!
//! `GetSamplingStrategy` answers the strategy of `serviceName` (a service Stitch has not seen
//! gets the default strategy, as over HTTP); the gRPC handler only maps it to the api_v2
//! messages. A message that is not a `SamplingStrategyParameters` is `INVALID_ARGUMENT`, and so
//! is an empty or blank `serviceName` (HTTP answers 400 there); a message over
//! [`MAX_SAMPLING_REQUEST_BYTES`] is `RESOURCE_EXHAUSTED`. Any other method of either service is
//! `UNIMPLEMENTED`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use prost::Message;
use stitch_pipeline::adaptive::jaeger::{SamplingStrategyResponse, StrategyType};
use stitch_wire::Decoded;
use stitch_wire::jaeger::{self, JaegerError, proto};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tonic::server::UnaryService;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Status};

use crate::body::read_body;
use crate::grpc::{BoxFuture, OversizeIsResourceExhausted, UnaryGrpc, UnaryMethod};
use crate::log::RateLimitedLog;
use crate::respond::text;
use crate::{Ingest, IngestError};

mod grpc;
mod http_collector;
mod udp;

pub use self::grpc::{
    GetSamplingStrategy, PostSpans, SamplingStrategies, StrategyError, grpc_service,
    sampling_service, strategy_to_proto,
};
pub use self::http_collector::http_router;
pub use self::udp::{AgentProtocol, serve_udp};

/// The most datagrams being decoded and stored at once; more are dropped and counted.
pub const MAX_UDP_IN_FLIGHT: usize = 256;
/// At most one warning about bad datagrams per this interval (per listener).
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// The largest `GetSamplingStrategy` request message (it holds a service name).
pub const MAX_SAMPLING_REQUEST_BYTES: usize = 64 * 1024;

/// Serves the Jaeger gRPC port on `listener` until `shutdown` completes: the collector
/// (`PostSpans`) and remote sampling (`GetSamplingStrategy`).
pub async fn serve_grpc(
    listener: tokio::net::TcpListener,
    ingest: Arc<Ingest>,
    strategies: Arc<dyn SamplingStrategies>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let routes =
        tonic::service::Routes::new(grpc_service(ingest)).add_service(sampling_service(strategies));
    tonic::transport::Server::builder()
        .add_routes(crate::grpc::naming_unknown_services(
            routes,
            "/jaeger.api_v2.CollectorService/PostSpans and \
             /jaeger.api_v2.SamplingManager/GetSamplingStrategy",
        ))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}
