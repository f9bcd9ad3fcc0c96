//! The collector's gRPC services (14250): `PostSpans`, and remote sampling's
//! `GetSamplingStrategy` mapped from the strategies the binary computes.

use super::*;

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

#[cfg(test)]
mod tests {
    use super::*;

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
