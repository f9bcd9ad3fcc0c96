//! Zipkin v2 protobuf (`zipkin.proto3.ListOfSpans`, Zipkin's `zipkin.proto`), with the prost
//! messages written by hand.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use prost::Message;
use stitch_model::SpanKind;

use super::ZipkinError;
use super::span::{Annotation, Endpoint, RawId, RawKind, RawSpan, ZipkinSpan};

/// `zipkin.proto3.ListOfSpans`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListOfSpans {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
}

/// `zipkin.proto3.Span`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// 8 or 16 bytes, big-endian.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub parent_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub id: Vec<u8>,
    /// `Kind`: 0 unspecified, 1 client, 2 server, 3 producer, 4 consumer.
    #[prost(int32, tag = "4")]
    pub kind: i32,
    #[prost(string, tag = "5")]
    pub name: String,
    /// Epoch microseconds; 0 is absent.
    #[prost(fixed64, tag = "6")]
    pub timestamp: u64,
    /// Microseconds; 0 is absent.
    #[prost(uint64, tag = "7")]
    pub duration: u64,
    #[prost(message, optional, tag = "8")]
    pub local_endpoint: Option<ProtoEndpoint>,
    #[prost(message, optional, tag = "9")]
    pub remote_endpoint: Option<ProtoEndpoint>,
    #[prost(message, repeated, tag = "10")]
    pub annotations: Vec<ProtoAnnotation>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub tags: BTreeMap<String, String>,
    #[prost(bool, tag = "12")]
    pub debug: bool,
    #[prost(bool, tag = "13")]
    pub shared: bool,
}

/// `zipkin.proto3.Endpoint`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoEndpoint {
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// 4 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub ipv4: Vec<u8>,
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub ipv6: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub port: i32,
}

/// `zipkin.proto3.Annotation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAnnotation {
    #[prost(fixed64, tag = "1")]
    pub timestamp: u64,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Decodes a `ListOfSpans`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<RawSpan>, ZipkinError> {
    let list = ListOfSpans::decode(bytes).map_err(ZipkinError::Protobuf)?;
    Ok(list.spans.into_iter().map(raw_span).collect())
}

fn raw_id(bytes: Vec<u8>) -> RawId {
    if bytes.is_empty() {
        RawId::Absent
    } else {
        RawId::Bytes(bytes)
    }
}

fn raw_span(s: Span) -> RawSpan {
    let kind = match s.kind {
        0 => RawKind::Absent,
        1 => RawKind::Known(SpanKind::Client),
        2 => RawKind::Known(SpanKind::Server),
        3 => RawKind::Known(SpanKind::Producer),
        4 => RawKind::Known(SpanKind::Consumer),
        n => RawKind::UnknownNumber(n),
    };
    RawSpan {
        trace_id: raw_id(s.trace_id),
        parent_id: raw_id(s.parent_id),
        id: raw_id(s.id),
        kind,
        name: s.name,
        timestamp: Some(s.timestamp).filter(|t| *t != 0),
        duration: Some(s.duration).filter(|d| *d != 0),
        local_endpoint: s.local_endpoint.map(endpoint_from_proto),
        remote_endpoint: s.remote_endpoint.map(endpoint_from_proto),
        annotations: s
            .annotations
            .into_iter()
            .map(|a| Annotation {
                timestamp: a.timestamp,
                value: a.value,
            })
            .collect(),
        tags: s.tags,
        debug: s.debug,
        shared: s.shared,
    }
}

/// Addresses of the wrong length and ports outside 1..=65535 are dropped, as Zipkin does.
fn endpoint_from_proto(e: ProtoEndpoint) -> Endpoint {
    let ipv4 = <[u8; 4]>::try_from(e.ipv4.as_slice())
        .ok()
        .map(Ipv4Addr::from);
    let ipv6 = <[u8; 16]>::try_from(e.ipv6.as_slice())
        .ok()
        .map(Ipv6Addr::from);
    let (ipv4, ipv6) = match ipv6.map(|a| (a, a.to_ipv4_mapped())) {
        Some((_, Some(mapped))) => (ipv4.or(Some(mapped)), None),
        Some((a, None)) => (ipv4, Some(a)),
        None => (ipv4, None),
    };
    Endpoint {
        service_name: e.service_name,
        ipv4,
        ipv6,
        port: u16::try_from(e.port).ok().filter(|p| *p != 0),
    }
}

fn endpoint_to_proto(e: &Endpoint) -> ProtoEndpoint {
    ProtoEndpoint {
        service_name: e.service_name.clone(),
        ipv4: e.ipv4.map(|a| a.octets().to_vec()).unwrap_or_default(),
        ipv6: e.ipv6.map(|a| a.octets().to_vec()).unwrap_or_default(),
        port: e.port.map(i32::from).unwrap_or(0),
    }
}

/// One span as a protobuf message; a trace id with a zero high half is written as 8 bytes.
pub fn span_to_proto(s: &ZipkinSpan) -> Span {
    let trace_id = if s.trace_id.0[..8] == [0; 8] {
        s.trace_id.0[8..].to_vec()
    } else {
        s.trace_id.0.to_vec()
    };
    Span {
        trace_id,
        parent_id: s.parent_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        id: s.id.0.to_vec(),
        kind: match s.kind {
            Some(SpanKind::Client) => 1,
            Some(SpanKind::Server) => 2,
            Some(SpanKind::Producer) => 3,
            Some(SpanKind::Consumer) => 4,
            _ => 0,
        },
        name: s.name.clone(),
        timestamp: s.timestamp.unwrap_or(0),
        duration: s.duration.unwrap_or(0),
        local_endpoint: s.local_endpoint.as_ref().map(endpoint_to_proto),
        remote_endpoint: s.remote_endpoint.as_ref().map(endpoint_to_proto),
        annotations: s
            .annotations
            .iter()
            .map(|a| ProtoAnnotation {
                timestamp: a.timestamp,
                value: a.value.clone(),
            })
            .collect(),
        tags: s.tags.clone(),
        debug: s.debug,
        shared: s.shared,
    }
}

/// A list of spans as an encoded `ListOfSpans`.
pub fn encode_spans_proto(spans: &[ZipkinSpan]) -> Vec<u8> {
    ListOfSpans {
        spans: spans.iter().map(span_to_proto).collect(),
    }
    .encode_to_vec()
}
