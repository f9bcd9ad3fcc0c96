//! The wire protocols the load generator speaks: encoding a batch into request bodies and
//! sending them.

use std::time::Duration;

use anyhow::Context as _;
use bytes::{Buf as _, BufMut as _, Bytes};
use stitch_model::Batch;
use stitch_wire::otlp::ExportTraceServiceResponse;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use super::retry::{Outcome, Transport, classify_grpc, classify_http, grpc_retry_info};

/// How spans are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP/gRPC `TraceService/Export` (port 4317).
    OtlpGrpc,
    /// OTLP/HTTP `POST /v1/traces`, protobuf (port 4318).
    OtlpHttpProtobuf,
    /// OTLP/HTTP `POST /v1/traces`, JSON (port 4318).
    OtlpHttpJson,
    /// Zipkin v2 JSON, `POST /api/v2/spans` (port 9411).
    ZipkinJson,
    /// Jaeger agent, Thrift compact `emitBatch` datagrams over UDP (port 6831).
    JaegerThriftUdp,
    /// Jaeger collector, Thrift binary `Batch` over HTTP, `POST /api/traces` (port 14268).
    JaegerThriftHttp,
}

/// The largest datagram sent to a Jaeger agent: Jaeger's clients and agent use 65,000 bytes.
pub const MAX_DATAGRAM: usize = 65_000;

impl Protocol {
    pub const ALL: [Protocol; 6] = [
        Protocol::OtlpGrpc,
        Protocol::OtlpHttpProtobuf,
        Protocol::OtlpHttpJson,
        Protocol::ZipkinJson,
        Protocol::JaegerThriftUdp,
        Protocol::JaegerThriftHttp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "otlp-grpc",
            Protocol::OtlpHttpProtobuf => "otlp-http-protobuf",
            Protocol::OtlpHttpJson => "otlp-http-json",
            Protocol::ZipkinJson => "zipkin-json",
            Protocol::JaegerThriftUdp => "jaeger-thrift-udp",
            Protocol::JaegerThriftHttp => "jaeger-thrift-http",
        }
    }

    /// Where Stitch listens for this protocol by default.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "127.0.0.1:4317",
            Protocol::OtlpHttpProtobuf | Protocol::OtlpHttpJson => "127.0.0.1:4318",
            Protocol::ZipkinJson => "127.0.0.1:9411",
            Protocol::JaegerThriftUdp => "127.0.0.1:6831",
            Protocol::JaegerThriftHttp => "127.0.0.1:14268",
        }
    }

    fn default_path(self) -> &'static str {
        match self {
            Protocol::OtlpHttpProtobuf | Protocol::OtlpHttpJson => "/v1/traces",
            Protocol::ZipkinJson => "/api/v2/spans",
            Protocol::JaegerThriftHttp => "/api/traces",
            Protocol::OtlpGrpc | Protocol::JaegerThriftUdp => "",
        }
    }

    /// Whether the receiver answers each request (UDP does not: a datagram is sent and
    /// forgotten, so only `--verify` can tell whether it arrived).
    pub fn acknowledges(self) -> bool {
        self != Protocol::JaegerThriftUdp
    }

    /// The full address to send to: `host:port` for UDP, a URL for the rest. `endpoint` may be
    /// `host:port` or a URL; a URL without a path gets the protocol's standard path.
    pub fn target(self, endpoint: &str) -> String {
        let endpoint = endpoint.trim_end_matches('/');
        match self {
            Protocol::JaegerThriftUdp => endpoint
                .trim_start_matches("udp://")
                .trim_start_matches("http://")
                .to_owned(),
            _ => {
                let url = if endpoint.contains("://") {
                    endpoint.to_owned()
                } else {
                    format!("http://{endpoint}")
                };
                let has_path = url
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.contains('/'));
                if has_path || self == Protocol::OtlpGrpc {
                    url
                } else {
                    format!("{url}{}", self.default_path())
                }
            }
        }
    }

    /// The request bodies that carry `batch`: one for OTLP and Zipkin; one per service for the
    /// Jaeger collector (a Thrift `Batch` has one process); for the Jaeger agent as many
    /// datagrams of at most [`MAX_DATAGRAM`] bytes as it takes.
    pub fn encode(self, batch: &Batch) -> Vec<Bytes> {
        use stitch_wire::jaeger;
        match self {
            Protocol::OtlpGrpc | Protocol::OtlpHttpProtobuf => {
                vec![stitch_wire::otlp::encode_batch(batch).into()]
            }
            Protocol::OtlpHttpJson => vec![stitch_wire::otlp_json::encode_json(batch).into()],
            Protocol::ZipkinJson => {
                let spans = stitch_wire::zipkin::batch_to_zipkin(batch);
                vec![stitch_wire::zipkin::encode_spans_json(&spans).into()]
            }
            Protocol::JaegerThriftHttp => jaeger::to_thrift(batch)
                .iter()
                .map(|b| jaeger::encode_collector_thrift(b).into())
                .collect(),
            Protocol::JaegerThriftUdp => {
                let mut out = Vec::new();
                for b in jaeger::to_thrift(batch) {
                    datagrams(b, &mut out);
                }
                out
            }
        }
    }
}

/// Splits a Jaeger batch in halves until each half fits in a datagram. A single span too large
/// for a datagram is sent anyway (the agent drops it, as it would from any client).
fn datagrams(batch: stitch_wire::jaeger::types::Batch, out: &mut Vec<Bytes>) {
    let bytes = stitch_wire::jaeger::encode_agent_compact(&batch, 0);
    if bytes.len() <= MAX_DATAGRAM || batch.spans.len() <= 1 {
        out.push(bytes.into());
        return;
    }
    let mut first = batch;
    let second_spans = first.spans.split_off(first.spans.len() / 2);
    let second = stitch_wire::jaeger::types::Batch {
        process: first.process.clone(),
        spans: second_spans,
        seq_no: None,
        stats: None,
    };
    datagrams(first, out);
    datagrams(second, out);
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Protocol, String> {
        let p = match s {
            "otlp-grpc" | "grpc" => Protocol::OtlpGrpc,
            "otlp-http-protobuf" | "otlp-http" | "otlp-http-proto" => Protocol::OtlpHttpProtobuf,
            "otlp-http-json" => Protocol::OtlpHttpJson,
            "zipkin-json" | "zipkin" => Protocol::ZipkinJson,
            "jaeger-thrift-udp" | "jaeger-udp" | "jaeger-agent" => Protocol::JaegerThriftUdp,
            "jaeger-thrift-http" | "jaeger-http" | "jaeger-collector" => Protocol::JaegerThriftHttp,
            _ => {
                return Err(format!(
                    "unknown protocol {s:?}: expected one of {}",
                    Protocol::ALL.map(Protocol::name).join(", ")
                ));
            }
        };
        Ok(p)
    }
}

/// One connection to the receiver.
pub(crate) enum Sender {
    Grpc(tonic::client::Grpc<Channel>),
    Http {
        client: reqwest::Client,
        url: String,
        protocol: Protocol,
    },
    Udp(tokio::net::UdpSocket),
}

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

impl Sender {
    /// Opens one connection (gRPC, UDP) or a client that keeps one connection alive (HTTP).
    pub async fn connect(
        protocol: Protocol,
        target: &str,
        timeout: Duration,
    ) -> anyhow::Result<Sender> {
        match protocol {
            Protocol::OtlpGrpc => {
                let channel = Channel::from_shared(target.to_owned())
                    .with_context(|| format!("invalid OTLP/gRPC endpoint {target:?}"))?
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .connect()
                    .await
                    .with_context(|| format!("failed to connect to OTLP/gRPC at {target}"))?;
                Ok(Sender::Grpc(tonic::client::Grpc::new(channel)))
            }
            Protocol::JaegerThriftUdp => {
                let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                    .await
                    .context("failed to open a UDP socket")?;
                socket
                    .connect(target)
                    .await
                    .with_context(|| format!("invalid Jaeger agent address {target:?}"))?;
                Ok(Sender::Udp(socket))
            }
            _ => {
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .pool_max_idle_per_host(1)
                    .build()
                    .context("failed to build the HTTP client")?;
                Ok(Sender::Http {
                    client,
                    url: target.to_owned(),
                    protocol,
                })
            }
        }
    }

    async fn send_grpc(client: &mut tonic::client::Grpc<Channel>, payload: Bytes) -> Outcome {
        if let Err(e) = client.ready().await {
            return Outcome::Retryable {
                retry_after: None,
                reason: format!("gRPC connection: {e}"),
            };
        }
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        match client
            .unary(tonic::Request::new(payload), path, RawCodec)
            .await
        {
            Ok(response) => Outcome::Accepted {
                rejected_spans: response
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_spans.max(0) as u64),
            },
            Err(status) => classify_grpc(
                status.code(),
                status.message(),
                grpc_retry_info(status.details()),
            ),
        }
    }

    async fn send_http(
        client: &reqwest::Client,
        url: &str,
        protocol: Protocol,
        payload: Bytes,
    ) -> Outcome {
        let content_type = match protocol {
            Protocol::OtlpHttpProtobuf => "application/x-protobuf",
            Protocol::JaegerThriftHttp => "application/x-thrift",
            _ => "application/json",
        };
        let response = match client
            .post(url)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(payload)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retryable {
                    retry_after: None,
                    reason: format!("HTTP transport: {}", error_chain(&e)),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Retryable {
                    retry_after: None,
                    reason: format!("HTTP transport: {}", error_chain(&e)),
                };
            }
        };
        match classify_http(
            status,
            retry_after.as_deref(),
            &String::from_utf8_lossy(&body),
        ) {
            Outcome::Accepted { .. } => Outcome::Accepted {
                rejected_spans: rejected_in_body(protocol, &body),
            },
            other => other,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Spans the receiver says it left out of an accepted request.
pub(crate) fn rejected_in_body(protocol: Protocol, body: &[u8]) -> u64 {
    use prost::Message as _;
    match protocol {
        Protocol::OtlpHttpProtobuf | Protocol::OtlpGrpc => ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map_or(0, |p| p.rejected_spans.max(0) as u64),
        Protocol::OtlpHttpJson => {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
                return 0;
            };
            // proto3 JSON writes int64 as a string, but numbers are accepted too.
            match &v["partialSuccess"]["rejectedSpans"] {
                serde_json::Value::String(s) => s.parse().unwrap_or(0),
                serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
                _ => 0,
            }
        }
        // Stitch's Zipkin and Jaeger receivers: `accepted N spans; rejected M: <reasons>`.
        Protocol::ZipkinJson | Protocol::JaegerThriftHttp | Protocol::JaegerThriftUdp => {
            let text = String::from_utf8_lossy(body);
            text.split_once("rejected ")
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        }
    }
}

impl Transport for Sender {
    async fn send(&mut self, payload: Bytes) -> Outcome {
        match self {
            Sender::Grpc(client) => Sender::send_grpc(client, payload).await,
            Sender::Http {
                client,
                url,
                protocol,
            } => Sender::send_http(client, url, *protocol, payload).await,
            Sender::Udp(socket) => match socket.send(&payload).await {
                Ok(_) => Outcome::Accepted { rejected_spans: 0 },
                Err(e) => Outcome::Failed {
                    reason: format!("UDP send: {e}"),
                },
            },
        }
    }
}

/// Sends pre-encoded request bytes as they are (no decode and re-encode per request) and
/// decodes the `ExportTraceServiceResponse`.
#[derive(Clone, Copy)]
struct RawCodec;

struct RawEncoder;
struct ResponseDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        use prost::Message as _;
        let n = src.remaining();
        let bytes = src.copy_to_bytes(n);
        ExportTraceServiceResponse::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable export response: {e}")))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Generator, Preset, Rng};

    #[test]
    fn targets_get_the_standard_paths_unless_given_one() {
        assert_eq!(
            Protocol::OtlpHttpJson.target("127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            Protocol::ZipkinJson.target("http://localhost:9411/"),
            "http://localhost:9411/api/v2/spans"
        );
        assert_eq!(
            Protocol::JaegerThriftHttp.target("http://h:1/custom"),
            "http://h:1/custom"
        );
        assert_eq!(
            Protocol::OtlpGrpc.target("127.0.0.1:4317"),
            "http://127.0.0.1:4317"
        );
        assert_eq!(
            Protocol::JaegerThriftUdp.target("udp://127.0.0.1:6831"),
            "127.0.0.1:6831"
        );
        for p in Protocol::ALL {
            assert_eq!(p.name().parse::<Protocol>(), Ok(p));
        }
        assert!("smoke-signals".parse::<Protocol>().is_err());
    }

    #[test]
    fn every_encoding_decodes_back_to_the_same_spans() {
        use stitch_wire::{jaeger, otlp, otlp_json, zipkin};
        let g = Generator::new(&Preset::Shop.profile()).unwrap();
        let batch = g.batch(&mut Rng::new(8), 30, 1_700_000_000_000_000_000);
        let ids = |b: &Batch| {
            let mut v: Vec<_> = b
                .spans()
                .map(|s| (s.span.trace_id, s.span.span_id, s.span.parent_span_id))
                .collect();
            v.sort();
            v
        };
        let want = ids(&batch);
        for p in Protocol::ALL {
            let mut got = Vec::new();
            for body in p.encode(&batch) {
                let decoded = match p {
                    Protocol::OtlpGrpc | Protocol::OtlpHttpProtobuf => {
                        otlp::decode_export_request(&body).unwrap()
                    }
                    Protocol::OtlpHttpJson => otlp_json::decode_export_request(&body).unwrap(),
                    Protocol::ZipkinJson => zipkin::decode_v2_json(&body).unwrap(),
                    Protocol::JaegerThriftUdp => {
                        assert!(body.len() <= MAX_DATAGRAM);
                        jaeger::decode_agent_compact(&body).unwrap()
                    }
                    Protocol::JaegerThriftHttp => jaeger::decode_collector_thrift(&body).unwrap(),
                };
                assert_eq!(
                    decoded.rejected_spans, 0,
                    "{p:?}: {}",
                    decoded.error_message
                );
                got.extend(ids(&decoded.batch));
            }
            got.sort();
            assert_eq!(got, want, "{p:?}");
        }
    }

    #[test]
    fn jaeger_agent_batches_are_split_to_fit_in_datagrams() {
        let g = Generator::new(&Preset::LargeAttributes.profile()).unwrap();
        let batch = g.batch(&mut Rng::new(8), 20, 0);
        let datagrams = Protocol::JaegerThriftUdp.encode(&batch);
        assert!(datagrams.len() > 10, "{} datagrams", datagrams.len());
        assert!(datagrams.iter().all(|d| d.len() <= MAX_DATAGRAM));
    }

    #[test]
    fn rejected_spans_are_read_from_every_kind_of_answer() {
        let proto = stitch_wire::otlp::encode_export_response(3, "bad ids");
        assert_eq!(rejected_in_body(Protocol::OtlpHttpProtobuf, &proto), 3);
        assert_eq!(
            rejected_in_body(
                Protocol::OtlpHttpJson,
                br#"{"partialSuccess":{"rejectedSpans":"4","errorMessage":"x"}}"#
            ),
            4
        );
        assert_eq!(rejected_in_body(Protocol::OtlpHttpJson, b"{}"), 0);
        assert_eq!(
            rejected_in_body(
                Protocol::ZipkinJson,
                b"accepted 8 spans; rejected 2: span 0: ..."
            ),
            2
        );
        assert_eq!(rejected_in_body(Protocol::JaegerThriftHttp, b""), 0);
    }
}
