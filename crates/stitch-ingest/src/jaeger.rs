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

/// The most datagrams being decoded and stored at once; more are dropped and counted.
pub const MAX_UDP_IN_FLIGHT: usize = 256;
/// At most one warning about bad datagrams per this interval (per listener).
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// The largest `GetSamplingStrategy` request message (it holds a service name).
pub const MAX_SAMPLING_REQUEST_BYTES: usize = 64 * 1024;

/// The Thrift protocol of an agent port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentProtocol {
    /// Port 6831.
    Compact,
    /// Port 6832.
    Binary,
}

impl AgentProtocol {
    fn decode(self, bytes: &[u8]) -> Result<Decoded, JaegerError> {
        match self {
            AgentProtocol::Compact => jaeger::decode_agent_compact(bytes),
            AgentProtocol::Binary => jaeger::decode_agent_binary(bytes),
        }
    }

    fn name(self) -> &'static str {
        match self {
            AgentProtocol::Compact => "jaeger-agent-compact",
            AgentProtocol::Binary => "jaeger-agent-binary",
        }
    }
}

/// Serves one agent UDP port until `shutdown` completes. Never returns early on bad input.
pub async fn serve_udp(
    socket: UdpSocket,
    protocol: AgentProtocol,
    ingest: Arc<Ingest>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let socket = Arc::new(socket);
    let in_flight = Arc::new(Semaphore::new(MAX_UDP_IN_FLIGHT));
    let bad_log = Arc::new(RateLimitedLog::new(LOG_INTERVAL));
    let drop_log = Arc::new(RateLimitedLog::new(LOG_INTERVAL));
    let limit = ingest.config().max_request_bytes.min(MAX_DATAGRAM);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    tokio::pin!(shutdown);
    loop {
        let (len, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors and the like concern one exchange, never the listener.
                    tracing::debug!(error = %e, listener = protocol.name(), "UDP receive failed");
                    continue;
                }
            },
        };
        let stats = &ingest.stats;
        stats.udp_datagrams.fetch_add(1, Ordering::Relaxed);
        let dropped = |why: &str| {
            stats.udp_dropped_datagrams.fetch_add(1, Ordering::Relaxed);
            drop_log.log(|suppressed| {
                tracing::warn!(
                    listener = protocol.name(),
                    %peer,
                    suppressed,
                    "dropped a Jaeger UDP datagram: {why}"
                )
            });
        };
        if len > limit {
            stats.oversized_requests.fetch_add(1, Ordering::Relaxed);
            dropped("larger than the request limit");
            continue;
        }
        let Ok(slot) = in_flight.clone().try_acquire_owned() else {
            dropped("too many datagrams are being stored");
            continue;
        };
        let permit = match ingest.reserve(len) {
            Ok(p) => p,
            Err(e) => {
                dropped(&e.to_string());
                continue;
            }
        };
        let datagram = buf[..len].to_vec();
        let ingest = ingest.clone();
        let bad_log = bad_log.clone();
        let drop_log = drop_log.clone();
        tokio::spawn(async move {
            let stats = &ingest.stats;
            let decoded = match ingest.screened(protocol.decode(&datagram)) {
                Ok(d) => d,
                Err(e) => {
                    stats
                        .udp_malformed_datagrams
                        .fetch_add(1, Ordering::Relaxed);
                    bad_log.log(|suppressed| {
                        tracing::warn!(
                            listener = protocol.name(),
                            %peer,
                            bytes = datagram.len(),
                            suppressed,
                            "dropped a Jaeger UDP datagram that does not decode: {e}"
                        )
                    });
                    return;
                }
            };
            if decoded.rejected_spans > 0 {
                bad_log.log(|suppressed| {
                    tracing::warn!(
                        listener = protocol.name(),
                        %peer,
                        suppressed,
                        "rejected {} invalid spans of a Jaeger UDP datagram: {}",
                        decoded.rejected_spans,
                        decoded.error_message
                    )
                });
            }
            if let Err(e) = ingest.accept(None, decoded).await {
                stats.udp_dropped_datagrams.fetch_add(1, Ordering::Relaxed);
                drop_log.log(|suppressed| {
                    tracing::warn!(
                        listener = protocol.name(),
                        %peer,
                        suppressed,
                        "dropped a Jaeger UDP datagram: {e}"
                    )
                });
            }
            drop(permit);
            drop(slot);
        });
    }
}

// ---- HTTP collector ----

struct HttpReceiver {
    ingest: Arc<Ingest>,
    reject_log: RateLimitedLog,
}

/// The router of the collector's HTTP endpoint, `POST /api/traces`.
pub fn http_router(ingest: Arc<Ingest>) -> Router {
    let receiver = Arc::new(HttpReceiver {
        ingest,
        reject_log: RateLimitedLog::new(Duration::from_secs(1)),
    });
    Router::new()
        .route("/api/traces", post(post_traces))
        // Size is enforced by the shared body reader, which answers 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

fn thrift_content_type(headers: &HeaderMap, query: Option<&str>) -> Result<(), String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"))
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let format_param = query
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "format=jaeger.thrift");
    match mime.as_str() {
        "application/x-thrift" | "application/vnd.apache.thrift.binary" => Ok(()),
        "" if format_param => Ok(()),
        _ => Err(format!(
            "unsupported content type {content_type:?}: send application/x-thrift \
             (a Jaeger Batch in the Thrift binary protocol)"
        )),
    }
}

async fn post_traces(
    State(r): State<Arc<HttpReceiver>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ingest = &r.ingest;
    if let Err(message) = thrift_content_type(&headers, query.as_deref()) {
        ingest
            .stats
            .malformed_requests
            .fetch_add(1, Ordering::Relaxed);
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
    }
    let body = match read_body(ingest, &headers, body).await {
        Ok(b) => b,
        Err(e) => return text(e.status(), e.message()),
    };
    let decoded = match ingest.screened(jaeger::decode_collector_thrift(&body.bytes)) {
        Ok(d) => d,
        Err(e) => {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::BAD_REQUEST,
                format!("unable to process request body: {e}"),
            );
        }
    };
    let rejected = decoded.rejected_spans;
    if rejected > 0 && decoded.batch.span_count() == 0 {
        ingest
            .stats
            .rejected_spans
            .fetch_add(rejected, Ordering::Relaxed);
        ingest
            .stats
            .malformed_requests
            .fetch_add(1, Ordering::Relaxed);
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "no valid span: rejected {rejected}: {}",
                decoded.error_message
            ),
        );
    }
    let result = ingest.accept(None, decoded).await;
    drop(body.permit);
    match result {
        Ok(acc) if acc.rejected_spans == 0 => text(StatusCode::ACCEPTED, ""),
        Ok(acc) => {
            r.reject_log.log(|suppressed| {
                tracing::warn!(
                    suppressed,
                    "rejected {} invalid spans of a Jaeger HTTP batch: {}",
                    acc.rejected_spans,
                    acc.error_message
                )
            });
            text(
                StatusCode::ACCEPTED,
                format!(
                    "accepted {} spans; rejected {}: {}",
                    acc.accepted_spans, acc.rejected_spans, acc.error_message
                ),
            )
        }
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

// ---- gRPC collector ----

/// `PostSpans` itself.
#[derive(Clone)]
pub struct PostSpans {
    ingest: Arc<Ingest>,
}

impl UnaryMethod for PostSpans {
    const SERVICE: &'static str = proto::COLLECTOR_SERVICE;
    const PATH: &'static str = proto::POST_SPANS_PATH;
}

impl UnaryService<Bytes> for PostSpans {
    type Response = proto::PostSpansResponse;
    type Future = BoxFuture<Result<tonic::Response<proto::PostSpansResponse>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let ingest = self.ingest.clone();
        Box::pin(async move { post_spans(&ingest, request.into_inner()).await })
    }
}

async fn post_spans(
    ingest: &Ingest,
    bytes: Bytes,
) -> Result<tonic::Response<proto::PostSpansResponse>, Status> {
    let permit = ingest
        .reserve(bytes.len())
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let decoded = ingest
        .screened(jaeger::decode_post_spans(&bytes))
        .map_err(|e| {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            Status::invalid_argument(e.to_string())
        })?;
    drop(bytes);
    let rejected = decoded.rejected_spans;
    if rejected > 0 && decoded.batch.span_count() == 0 {
        ingest
            .stats
            .rejected_spans
            .fetch_add(rejected, Ordering::Relaxed);
        return Err(Status::invalid_argument(format!(
            "no valid span: rejected {rejected}: {}",
            decoded.error_message
        )));
    }
    let result = ingest.accept(None, decoded).await;
    drop(permit);
    match result {
        Ok(_) => Ok(tonic::Response::new(proto::PostSpansResponse {})),
        Err(e @ (IngestError::Overloaded(_) | IngestError::Unavailable(_))) => {
            Err(Status::unavailable(e.to_string()))
        }
    }
}

/// The collector gRPC service (`PostSpans` only) with Stitch's limits applied.
pub fn grpc_service(ingest: Arc<Ingest>) -> OversizeIsResourceExhausted<UnaryGrpc<PostSpans>> {
    let limit = ingest.config().max_request_bytes;
    UnaryGrpc::serve(PostSpans { ingest }, limit)
}

// ---- gRPC remote sampling ----

/// Why no strategy can be given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrategyError {
    /// The request names no service (absent, empty or blank).
    NoService,
}

/// The source of Jaeger remote-sampling strategies. One implementation answers both forms,
/// HTTP (`GET /sampling?service=`) and gRPC (`SamplingManager`), so they always agree.
pub trait SamplingStrategies: Send + Sync + 'static {
    /// The strategy `service` should use; a service never seen gets the default strategy.
    fn strategy(&self, service: &str) -> Result<SamplingStrategyResponse, StrategyError>;
}

/// The api_v2 protobuf form of a strategy (the JSON form is its serde serialisation).
pub fn strategy_to_proto(s: &SamplingStrategyResponse) -> proto::SamplingStrategyResponse {
    let probabilistic = |rate: f64| proto::ProbabilisticSamplingStrategy {
        sampling_rate: rate,
    };
    proto::SamplingStrategyResponse {
        strategy_type: match s.strategy_type {
            StrategyType::Probabilistic => proto::STRATEGY_PROBABILISTIC,
            StrategyType::RateLimiting => proto::STRATEGY_RATE_LIMITING,
        },
        probabilistic_sampling: s
            .probabilistic_sampling
            .as_ref()
            .map(|p| probabilistic(p.sampling_rate)),
        rate_limiting_sampling: s.rate_limiting_sampling.as_ref().map(|r| {
            proto::RateLimitingSamplingStrategy {
                max_traces_per_second: r.max_traces_per_second,
            }
        }),
        operation_sampling: s.operation_sampling.as_ref().map(|o| {
            proto::PerOperationSamplingStrategies {
                default_sampling_probability: o.default_sampling_probability,
                default_lower_bound_traces_per_second: o.default_lower_bound_traces_per_second,
                per_operation_strategies: o
                    .per_operation_strategies
                    .iter()
                    .map(|op| proto::OperationSamplingStrategy {
                        operation: op.operation.clone(),
                        probabilistic_sampling: Some(probabilistic(
                            op.probabilistic_sampling.sampling_rate,
                        )),
                    })
                    .collect(),
                default_upper_bound_traces_per_second: o.default_upper_bound_traces_per_second,
            }
        }),
    }
}

/// `GetSamplingStrategy` itself.
#[derive(Clone)]
pub struct GetSamplingStrategy {
    strategies: Arc<dyn SamplingStrategies>,
}

impl UnaryMethod for GetSamplingStrategy {
    const SERVICE: &'static str = proto::SAMPLING_MANAGER;
    const PATH: &'static str = proto::GET_SAMPLING_STRATEGY_PATH;
}

impl UnaryService<Bytes> for GetSamplingStrategy {
    type Response = proto::SamplingStrategyResponse;
    type Future = BoxFuture<Result<tonic::Response<proto::SamplingStrategyResponse>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let answer = get_sampling_strategy(&*self.strategies, &request.into_inner());
        Box::pin(async move { answer.map(tonic::Response::new) })
    }
}

fn get_sampling_strategy(
    strategies: &dyn SamplingStrategies,
    bytes: &[u8],
) -> Result<proto::SamplingStrategyResponse, Status> {
    let params = proto::SamplingStrategyParameters::decode(bytes).map_err(|e| {
        Status::invalid_argument(format!("not a SamplingStrategyParameters message: {e}"))
    })?;
    match strategies.strategy(&params.service_name) {
        Ok(s) => Ok(strategy_to_proto(&s)),
        Err(StrategyError::NoService) => {
            Err(Status::invalid_argument("serviceName must be provided"))
        }
    }
}

/// The remote-sampling gRPC service (`GetSamplingStrategy` only) with Stitch's limits applied.
pub fn sampling_service(
    strategies: Arc<dyn SamplingStrategies>,
) -> OversizeIsResourceExhausted<UnaryGrpc<GetSamplingStrategy>> {
    UnaryGrpc::serve(
        GetSamplingStrategy { strategies },
        MAX_SAMPLING_REQUEST_BYTES,
    )
}

/// Serves the Jaeger gRPC port on `listener` until `shutdown` completes: the collector
/// (`PostSpans`) and remote sampling (`GetSamplingStrategy`).
pub async fn serve_grpc(
    listener: tokio::net::TcpListener,
    ingest: Arc<Ingest>,
    strategies: Arc<dyn SamplingStrategies>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(grpc_service(ingest))
        .add_service(sampling_service(strategies))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thrift_content_types_are_recognised() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_str(ct).unwrap(),
            );
            h
        };
        assert!(thrift_content_type(&with("application/x-thrift"), None).is_ok());
        assert!(thrift_content_type(&with("application/vnd.apache.thrift.binary"), None).is_ok());
        assert!(thrift_content_type(&with("Application/X-Thrift; charset=x"), None).is_ok());
        assert!(thrift_content_type(&HeaderMap::new(), Some("format=jaeger.thrift")).is_ok());
        assert!(thrift_content_type(&HeaderMap::new(), None).is_err());
        assert!(thrift_content_type(&with("application/json"), None).is_err());
    }

    struct Fixed;

    impl SamplingStrategies for Fixed {
        fn strategy(&self, service: &str) -> Result<SamplingStrategyResponse, StrategyError> {
            use stitch_pipeline::adaptive::jaeger::{
                OperationSamplingStrategy, PerOperationSamplingStrategies,
                ProbabilisticSamplingStrategy,
            };
            if service.is_empty() {
                return Err(StrategyError::NoService);
            }
            Ok(SamplingStrategyResponse {
                strategy_type: StrategyType::Probabilistic,
                probabilistic_sampling: Some(ProbabilisticSamplingStrategy {
                    sampling_rate: 0.25,
                }),
                rate_limiting_sampling: None,
                operation_sampling: Some(PerOperationSamplingStrategies {
                    default_sampling_probability: 0.25,
                    default_lower_bound_traces_per_second: 0.5,
                    per_operation_strategies: vec![OperationSamplingStrategy {
                        operation: format!("{service}-op"),
                        probabilistic_sampling: ProbabilisticSamplingStrategy {
                            sampling_rate: 0.125,
                        },
                    }],
                    default_upper_bound_traces_per_second: 2.0,
                }),
            })
        }
    }

    #[test]
    fn get_sampling_strategy_maps_every_field_and_answers_bad_requests_with_codes() {
        let request = proto::SamplingStrategyParameters {
            service_name: "shop".into(),
        }
        .encode_to_vec();
        let got = get_sampling_strategy(&Fixed, &request).unwrap();
        assert_eq!(
            got,
            proto::SamplingStrategyResponse {
                strategy_type: proto::STRATEGY_PROBABILISTIC,
                probabilistic_sampling: Some(proto::ProbabilisticSamplingStrategy {
                    sampling_rate: 0.25
                }),
                rate_limiting_sampling: None,
                operation_sampling: Some(proto::PerOperationSamplingStrategies {
                    default_sampling_probability: 0.25,
                    default_lower_bound_traces_per_second: 0.5,
                    per_operation_strategies: vec![proto::OperationSamplingStrategy {
                        operation: "shop-op".into(),
                        probabilistic_sampling: Some(proto::ProbabilisticSamplingStrategy {
                            sampling_rate: 0.125
                        }),
                    }],
                    default_upper_bound_traces_per_second: 2.0,
                }),
            }
        );
        let rate_limited = strategy_to_proto(&SamplingStrategyResponse {
            strategy_type: StrategyType::RateLimiting,
            probabilistic_sampling: None,
            rate_limiting_sampling: Some(
                stitch_pipeline::adaptive::jaeger::RateLimitingSamplingStrategy {
                    max_traces_per_second: 7,
                },
            ),
            operation_sampling: None,
        });
        assert_eq!(rate_limited.strategy_type, proto::STRATEGY_RATE_LIMITING);
        assert_eq!(
            rate_limited.rate_limiting_sampling,
            Some(proto::RateLimitingSamplingStrategy {
                max_traces_per_second: 7
            })
        );

        let empty = get_sampling_strategy(&Fixed, &[]).unwrap_err();
        assert_eq!(empty.code(), tonic::Code::InvalidArgument);
        // Field 1 claims 10 bytes and has 2.
        let truncated = get_sampling_strategy(&Fixed, &[0x0a, 10, b'a', b'b']).unwrap_err();
        assert_eq!(truncated.code(), tonic::Code::InvalidArgument);
        assert!(truncated.message().contains("SamplingStrategyParameters"));
    }
}
