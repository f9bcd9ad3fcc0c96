//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, gzip accepted.
//!
//! Status codes follow the OTLP specification: a request whose spans are partly invalid
//! succeeds with `partial_success`; a message that is not an `ExportTraceServiceRequest` is
//! `INVALID_ARGUMENT`; overload is `UNAVAILABLE` (which SDKs retry); a message over the size
//! limit, before or after decompression, is `RESOURCE_EXHAUSTED`; another method is
//! `UNIMPLEMENTED`.
//!
//! The message reaches the handler as bytes ([`RawRequestCodec`]): its size is reserved
//! against the in-flight budget before it is decoded, it is decoded once, straight into the
//! model, and the same bytes become the WAL record when every span is valid (no re-encoding).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::Service;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::{Ingest, IngestError};

/// The gRPC path of `Export`.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Hands the request message to the handler as bytes, so that a message that does not decode
/// gets `INVALID_ARGUMENT` (prost's codec would answer `INTERNAL`) and its size is known. `M` is
/// the response message.
pub struct RawRequestCodec<M>(PhantomData<fn() -> M>);

impl<M> Default for RawRequestCodec<M> {
    fn default() -> Self {
        RawRequestCodec(PhantomData)
    }
}

/// Takes the message as it is.
pub struct RawDecoder;
/// Encodes the response message with prost.
pub struct ResponseEncoder<M>(PhantomData<fn() -> M>);

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

impl<M: Message> Encoder for ResponseEncoder<M> {
    type Item = M;
    type Error = Status;

    fn encode(&mut self, item: M, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let mut buf = Vec::with_capacity(item.encoded_len());
        item.encode(&mut buf)
            .map_err(|e| Status::internal(e.to_string()))?;
        dst.put_slice(&buf);
        Ok(())
    }
}

impl<M: Message + Send + 'static> Codec for RawRequestCodec<M> {
    type Encode = M;
    type Decode = Bytes;
    type Encoder = ResponseEncoder<M>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> ResponseEncoder<M> {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// `Export` itself: the request's bytes are reserved against the in-flight budget before they
/// are decoded, decoded once into the model, and kept as the WAL record when every span is
/// valid.
#[derive(Clone)]
pub struct Export {
    ingest: Arc<Ingest>,
}

impl UnaryMethod for Export {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = EXPORT_PATH;
}

impl UnaryService<Bytes> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Result<Response<ExportTraceServiceResponse>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let ingest = self.ingest.clone();
        Box::pin(async move { export(&ingest, request.into_inner()).await })
    }
}

async fn export(
    ingest: &Ingest,
    bytes: Bytes,
) -> Result<Response<ExportTraceServiceResponse>, Status> {
    let permit = ingest
        .reserve(bytes.len())
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let decoded = ingest
        .screened(stitch_wire::otlp::decode_export_request(&bytes))
        .map_err(|e| {
            ingest
                .stats
                .malformed_requests
                .fetch_add(1, Ordering::Relaxed);
            Status::invalid_argument(format!("not an ExportTraceServiceRequest: {e}"))
        })?;
    let raw = bytes.to_vec();
    drop(bytes);
    let result = ingest.accept(Some(raw), decoded).await;
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

/// The one method of a gRPC service served by [`UnaryGrpc`]: its handler, which receives the
/// request message as bytes ([`RawRequestCodec`]), and where it lives.
pub trait UnaryMethod: UnaryService<Bytes, Future = BoxFuture<UnaryResult<Self>>> + Clone {
    /// The service's full name, such as `jaeger.api_v2.CollectorService`.
    const SERVICE: &'static str;
    /// The method's path, `/<service>/<method>`.
    const PATH: &'static str;
}

/// What a [`UnaryMethod`] answers.
pub type UnaryResult<M> = Result<Response<<M as UnaryService<Bytes>>::Response>, Status>;

/// A gRPC service of one unary method: gzip accepted and sent, a request over `limit` bytes
/// refused, any other method `UNIMPLEMENTED`.
#[derive(Clone)]
pub struct UnaryGrpc<M> {
    method: M,
    limit: usize,
}

impl<M: UnaryMethod> UnaryGrpc<M> {
    /// `method` behind [`OversizeIsResourceExhausted`], as every Stitch gRPC service is served.
    pub fn serve(method: M, limit: usize) -> OversizeIsResourceExhausted<UnaryGrpc<M>> {
        OversizeIsResourceExhausted(UnaryGrpc { method, limit })
    }
}

impl<M: UnaryMethod> NamedService for UnaryGrpc<M> {
    const NAME: &'static str = M::SERVICE;
}

impl<M, B> Service<http::Request<B>> for UnaryGrpc<M>
where
    M: UnaryMethod + Send + 'static,
    M::Response: Message + Send + 'static,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (method, limit) = (self.method.clone(), self.limit);
        Box::pin(async move {
            let path = req.uri().path();
            if path != M::PATH {
                let only = M::PATH.rsplit('/').next().unwrap_or(M::PATH);
                return Ok(Status::unimplemented(format!(
                    "unknown method {path}: {} has only {only}",
                    M::SERVICE
                ))
                .into_http());
            }
            let mut grpc = Grpc::new(RawRequestCodec::<M::Response>::default())
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit);
            Ok(grpc.unary(method, req).await)
        })
    }
}

/// The OTLP trace service (`Export` only) with Stitch's limits applied.
pub fn service(ingest: Arc<Ingest>) -> OversizeIsResourceExhausted<UnaryGrpc<Export>> {
    let limit = ingest.config().max_request_bytes;
    UnaryGrpc::serve(Export { ingest }, limit)
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ingest: Arc<Ingest>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_routes(naming_unknown_services(
            tonic::service::Routes::new(service(ingest)),
            Export::PATH,
        ))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}

/// `routes` answering a request for a service they do not have `UNIMPLEMENTED` with a message
/// that names the path asked and `serves` (what the port does serve), instead of tonic's bare
/// status.
pub fn naming_unknown_services(
    routes: tonic::service::Routes,
    serves: &'static str,
) -> tonic::service::Routes {
    let fallback = move |uri: http::Uri| async move {
        let status = Status::unimplemented(format!(
            "unknown service {}: this port serves {serves}",
            uri.path()
        ));
        let (parts, ()) = status.into_http::<()>().into_parts();
        axum::response::Response::from_parts(parts, axum::body::Body::empty())
    };
    tonic::service::Routes::from(routes.into_axum_router().fallback(fallback))
}

/// Tonic answers a message over the size limit with `OUT_OF_RANGE`; OTLP senders expect
/// `RESOURCE_EXHAUSTED` (as tonic already uses when decompression exceeds the limit). This
/// wrapper rewrites that one status and passes everything else through.
#[derive(Clone)]
pub struct OversizeIsResourceExhausted<S>(S);

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
