//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, gzip accepted.
//!
//! Status codes follow the OTLP specification: a request whose spans are partly invalid
//! succeeds with `partial_success`; overload is `UNAVAILABLE` (which SDKs retry); a message
//! over the size limit, before or after decompression, is `RESOURCE_EXHAUSTED`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::{Ingest, IngestError};

/// The OTLP trace service.
pub struct OtlpGrpc {
    ingest: Arc<Ingest>,
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let request = request.into_inner();
        let permit = self
            .ingest
            .reserve(request.encoded_len())
            .map_err(|e| Status::unavailable(e.to_string()))?;
        // The WAL stores the protobuf encoding; re-encoding the decoded request is cheaper than
        // encoding the model, and the bytes are identical in meaning.
        let raw = request.encode_to_vec();
        let decoded = stitch_wire::otlp::from_proto(request);
        let result = self.ingest.accept(Some(raw), decoded).await;
        drop(permit);
        match result {
            Ok(acc) => {
                let partial_success = if acc.rejected_spans > 0 || !acc.error_message.is_empty() {
                    Some(ExportTracePartialSuccess {
                        rejected_spans: acc.rejected_spans as i64,
                        error_message: acc.error_message,
                    })
                } else {
                    None
                };
                Ok(Response::new(ExportTraceServiceResponse {
                    partial_success,
                }))
            }
            Err(e @ IngestError::Overloaded(_)) | Err(e @ IngestError::Unavailable(_)) => {
                Err(Status::unavailable(e.to_string()))
            }
        }
    }
}

/// The gRPC service with Stitch's limits applied.
pub fn service(ingest: Arc<Ingest>) -> OversizeIsResourceExhausted<TraceServiceServer<OtlpGrpc>> {
    let limit = ingest.config().max_request_bytes;
    OversizeIsResourceExhausted(
        TraceServiceServer::new(OtlpGrpc { ingest })
            .max_decoding_message_size(limit)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip),
    )
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ingest: Arc<Ingest>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(service(ingest))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}

/// Tonic answers a message over the size limit with `OUT_OF_RANGE`; OTLP senders expect
/// `RESOURCE_EXHAUSTED` (as tonic already uses when decompression exceeds the limit). This
/// wrapper rewrites that one status and passes everything else through.
#[derive(Clone)]
pub struct OversizeIsResourceExhausted<S>(S);

impl<S> OversizeIsResourceExhausted<S> {
    /// Wraps another gRPC service (the Jaeger collector's uses it too).
    pub fn new(inner: S) -> Self {
        OversizeIsResourceExhausted(inner)
    }
}

impl<S: NamedService> NamedService for OversizeIsResourceExhausted<S> {
    const NAME: &'static str = S::NAME;
}

const GRPC_STATUS: &str = "grpc-status";
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for OversizeIsResourceExhausted<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let headers = resp.headers_mut();
            if headers.get(GRPC_STATUS).is_some_and(|v| v == OUT_OF_RANGE) {
                headers.insert(
                    GRPC_STATUS,
                    http::HeaderValue::from_static(RESOURCE_EXHAUSTED),
                );
            }
            Ok(resp)
        })
    }
}
