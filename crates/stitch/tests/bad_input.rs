//! Bad input and overload, against the real binary: every case gets a precise status and
//! message, the server keeps running, and nothing acknowledged is lost.

mod common;

use std::io::Write;

use common::{Stitch, eventually, fetch_trace, metric, post, synthetic_request};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

struct Case {
    name: &'static str,
    content_type: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// A substring the error message (or partial-success message) must contain.
    message: &'static str,
}

const LIMIT: usize = 64 * 1024;

fn cases() -> Vec<Case> {
    let (valid, _) = synthetic_request(1, 1, 2);
    let valid_bytes = valid.encode_to_vec();
    let mut bad_ids = valid.clone();
    bad_ids.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1, 2, 3];
    let mut zero_span_id = valid.clone();
    zero_span_id.resource_spans[0].scope_spans[0].spans[0].span_id = vec![0; 8];
    let (big, _) = synthetic_request(2, 200, 20);
    let big_bytes = big.encode_to_vec();
    assert!(big_bytes.len() > LIMIT);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    vec![
        Case {
            name: "protobuf that does not decode",
            content_type: "application/x-protobuf",
            encoding: None,
            body: b"\xff\xff\xff\xff not protobuf".to_vec(),
            status: 400,
            message: "failed to decode OTLP protobuf request",
        },
        Case {
            name: "JSON that does not parse",
            content_type: "application/json",
            encoding: None,
            body: b"{\"resourceSpans\": [".to_vec(),
            status: 400,
            message: "failed to decode OTLP JSON request",
        },
        Case {
            name: "JSON field of the wrong type",
            content_type: "application/json",
            encoding: None,
            body: br#"{"resourceSpans": 5}"#.to_vec(),
            status: 400,
            message: "resourceSpans",
        },
        Case {
            name: "JSON timestamp that is not a number",
            content_type: "application/json",
            encoding: None,
            body: br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":"abc"}]}]}]}"#.to_vec(),
            status: 400,
            message: "startTimeUnixNano",
        },
        Case {
            name: "unsupported content type",
            content_type: "text/plain",
            encoding: None,
            body: valid_bytes.clone(),
            status: 415,
            message: "unsupported content type",
        },
        Case {
            name: "unsupported content encoding",
            content_type: "application/x-protobuf",
            encoding: Some("br"),
            body: valid_bytes.clone(),
            status: 415,
            message: "unsupported content encoding",
        },
        Case {
            name: "body over the size limit",
            content_type: "application/x-protobuf",
            encoding: None,
            body: big_bytes.clone(),
            status: 413,
            message: "exceeds the limit of 65536 bytes",
        },
        Case {
            name: "gzip bomb",
            content_type: "application/x-protobuf",
            encoding: Some("gzip"),
            body: gzip(&vec![0u8; 20 * 1024 * 1024]),
            status: 413,
            message: "decompressed request body exceeds",
        },
        Case {
            name: "gzip that is corrupt",
            content_type: "application/x-protobuf",
            encoding: Some("gzip"),
            body: b"\x1f\x8b\x08\x00garbage".to_vec(),
            status: 400,
            message: "failed to decompress gzip",
        },
        Case {
            name: "a span with a trace id of the wrong length",
            content_type: "application/x-protobuf",
            encoding: None,
            body: bad_ids.encode_to_vec(),
            status: 200,
            message: "trace id must be 16 bytes, got 3",
        },
        Case {
            name: "a span with an all-zero span id",
            content_type: "application/x-protobuf",
            encoding: None,
            body: zero_span_id.encode_to_vec(),
            status: 200,
            message: "span id",
        },
        Case {
            name: "JSON span with an all-zero trace id",
            content_type: "application/json",
            encoding: None,
            body: br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000000","spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#.to_vec(),
            status: 200,
            message: "trace id",
        },
        Case {
            name: "JSON with a key given twice",
            content_type: "application/json",
            encoding: None,
            body: br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","traceId":"6b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x"}]}]}]}"#.to_vec(),
            status: 400,
            message: r#"duplicate key "traceId""#,
        },
        Case {
            name: "JSON that is not an export request",
            content_type: "application/json",
            encoding: None,
            body: br#"{"resource_spanz":[{"spans":[]}],"data":1}"#.to_vec(),
            status: 400,
            message: "no resourceSpans, and keys an export request does not have: data, resource_spanz",
        },
        Case {
            name: "a span at the start of 1970",
            content_type: "application/x-protobuf",
            encoding: None,
            body: with_times(&valid, 1, 0, 5),
            status: 200,
            message: "start time 0 ns is before 1970-01-02",
        },
        Case {
            name: "a span 584 years long",
            content_type: "application/x-protobuf",
            encoding: None,
            body: with_times(&valid, 0, now - 1_000, u64::MAX),
            status: 200,
            message: "longer than the maximum of 604800 s",
        },
        Case {
            name: "a span a week in the future",
            content_type: "application/x-protobuf",
            encoding: None,
            body: with_times(&valid, 1, now + 7 * 86_400_000_000_000, now + 7 * 86_400_000_000_001),
            status: 200,
            message: "more than a day in the future",
        },
    ]
}

/// `request` with span `i` of its first scope starting and ending at these Unix nanoseconds.
fn with_times(request: &ExportTraceServiceRequest, i: usize, start: u64, end: u64) -> Vec<u8> {
    let mut r = request.clone();
    let span = &mut r.resource_spans[0].scope_spans[0].spans[i];
    span.start_time_unix_nano = start;
    span.end_time_unix_nano = end;
    r.encode_to_vec()
}

fn decode_status_message(content_type: &str, body: &[u8]) -> String {
    if content_type.starts_with("application/json") {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        v["message"]
            .as_str()
            .or(v["partialSuccess"]["errorMessage"].as_str())
            .unwrap_or("")
            .to_owned()
    } else {
        // Either a google.rpc.Status (field 2 = message) or an ExportTraceServiceResponse.
        #[derive(Clone, PartialEq, prost::Message)]
        struct Status {
            #[prost(int32, tag = "1")]
            code: i32,
            #[prost(string, tag = "2")]
            message: String,
        }
        if let Ok(r) =
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
                body,
            )
            && let Some(p) = r.partial_success
            && !p.error_message.is_empty()
        {
            return p.error_message;
        }
        Status::decode(body).map(|s| s.message).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_http_request_gets_a_precise_error_and_the_server_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &["--max-request-bytes", "65536"]);
    let url = server.otlp_http();
    for case in cases() {
        let resp = post(&url, case.content_type, case.encoding, case.body).await;
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.bytes().await.unwrap();
        let message = decode_status_message(&ct, &body);
        assert_eq!(status, case.status, "{}: {message}", case.name);
        assert!(
            message.contains(case.message),
            "{}: message {message:?} should contain {:?}",
            case.name,
            case.message
        );
        if case.status == 200 {
            // Partial success: the valid span of the request was kept.
            let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            if let Some(j) = json {
                assert_eq!(j["partialSuccess"]["rejectedSpans"], "1", "{}", case.name);
            } else {
                let r = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(&body[..]).unwrap();
                assert_eq!(
                    r.partial_success.unwrap().rejected_spans,
                    1,
                    "{}",
                    case.name
                );
            }
        }
    }
    // Two requests for the same two-span trace were partly rejected, one span each (the
    // second span in one, the first in the other): the valid span of each is stored.
    let (_, ids) = synthetic_request(1, 1, 2);
    let trace = fetch_trace(&server.api(), &ids[0]).await.expect("stored");
    let names: Vec<_> = trace.spans().map(|s| s.span.name.clone()).collect();
    assert_eq!(
        names,
        vec!["op-0", "op-1"],
        "the valid span of each request is kept"
    );

    // The server still accepts good input.
    let (ok, ids) = synthetic_request(3, 2, 3);
    let resp = post(&url, "application/x-protobuf", None, ok.encode_to_vec()).await;
    assert_eq!(resp.status().as_u16(), 200);
    let trace = fetch_trace(&server.api(), &ids[1]).await.expect("stored");
    assert_eq!(trace.span_count(), 3);

    // The three spans refused for their times are counted apart, and the live aggregates
    // take every stored trace once it has settled.
    let api = server.api();
    assert_eq!(
        metric(&api, "stitch_receiver_rejected_times_spans_total").await,
        3.0
    );
    let backlog = |api: String| async move {
        metric(&api, "stitch_live_waiting_traces").await
            + metric(&api, "stitch_live_touched_traces").await
    };
    assert!(
        backlog(api.clone()).await >= 1.0,
        "the trace just stored waits to settle"
    );
    let settled = eventually(std::time::Duration::from_secs(30), || {
        let api = api.clone();
        async move { (backlog(api).await == 0.0).then_some(()) }
    })
    .await;
    assert!(settled.is_some(), "the live aggregates never caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_rejects_oversized_messages_and_reports_invalid_spans() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &["--max-request-bytes", "65536"]);
    let mut client = TraceServiceClient::connect(server.otlp_grpc())
        .await
        .unwrap();

    let (big, _) = synthetic_request(4, 200, 20);
    let err = client.export(big).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");

    let (mut partly, ids) = synthetic_request(5, 1, 3);
    partly.resource_spans[0].scope_spans[0].spans[2].span_id = vec![9; 3];
    let resp = client.export(partly).await.unwrap().into_inner();
    let partial = resp.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("span id must be 8 bytes, got 3"),
        "{}",
        partial.error_message
    );
    let trace = fetch_trace(&server.api(), &ids[0]).await.expect("stored");
    assert_eq!(trace.span_count(), 2);

    let resp = client
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(resp.partial_success.is_none());
}

/// A message whose field 1 (`resource_spans`) holds bytes that are not a `ResourceSpans`.
#[derive(Clone, PartialEq, prost::Message)]
struct NotAnExport {
    #[prost(bytes = "vec", tag = "1")]
    resource_spans: Vec<u8>,
}

/// Calls `path` on the OTLP/gRPC port with any message.
async fn grpc_call<T: prost::Message + Default + Send + Sync + 'static>(
    server: &Stitch,
    path: &'static str,
    request: T,
) -> Result<
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
    tonic::Status,
> {
    let channel = tonic::transport::Channel::from_shared(server.otlp_grpc())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(request),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::<T, _>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_what_is_not_an_export_request_and_unknown_methods() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    let export = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    let e = grpc_call(
        &server,
        export,
        NotAnExport {
            resource_spans: vec![0xff, 0xff, 0xff],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("ExportTraceServiceRequest"), "{e:?}");
    let e = grpc_call(
        &server,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
        ExportTraceServiceRequest::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");
    assert!(e.message().contains("TraceService/Nope"), "{e:?}");
    assert!(e.message().contains("has only Export"), "{e:?}");
    let e = grpc_call(
        &server,
        "/foo.Bar/Baz",
        ExportTraceServiceRequest::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");
    assert!(
        e.message().contains("unknown service /foo.Bar/Baz"),
        "{e:?}"
    );
    assert!(e.message().contains("TraceService/Export"), "{e:?}");
    // The server goes on: a valid export is stored.
    let (req, ids) = synthetic_request(77, 1, 2);
    let resp = grpc_call(&server, export, req).await.expect("export");
    assert!(resp.partial_success.is_none());
    assert_eq!(
        fetch_trace(&server.api(), &ids[0])
            .await
            .expect("stored")
            .span_count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_503_with_retry_after_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stitch.yaml");
    std::fs::write(&config, "limits:\n  max_inflight_bytes: 40000\n").unwrap();
    let server = Stitch::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let url = server.otlp_http();
    let mut tasks = Vec::new();
    for seed in 100..160u64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (req, ids) = synthetic_request(seed, 40, 5);
            let resp = post(&url, "application/x-protobuf", None, req.encode_to_vec()).await;
            let retry_after = resp.headers().get("retry-after").is_some();
            (resp.status().as_u16(), retry_after, ids)
        }));
    }
    let mut acked = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (status, retry_after, ids) = t.await.unwrap();
        match status {
            200 => acked.extend(ids),
            503 => {
                assert!(retry_after, "503 carries Retry-After");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        refused > 0,
        "60 concurrent requests over a 40 kB budget must be refused in part"
    );
    assert!(!acked.is_empty(), "some requests fit the budget");
    for id in &acked {
        let t = fetch_trace(&server.api(), id)
            .await
            .expect("acknowledged trace is stored");
        assert_eq!(t.span_count(), 5);
    }
}

/// A method a route does not take, or a path no route has, is answered with a reason on every
/// HTTP listener, not a bare status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_requests_are_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &[]);
    let client = reqwest::Client::new();
    for (method, url, status, says) in [
        (
            reqwest::Method::PUT,
            server.otlp_http(),
            405,
            "PUT is not allowed on /v1/traces: it takes POST",
        ),
        (
            reqwest::Method::GET,
            format!("{}/nope", server.api()),
            404,
            "nothing answers GET /nope on this port",
        ),
        (
            reqwest::Method::DELETE,
            format!("{}/api/v2/spans", server.zipkin()),
            405,
            "DELETE is not allowed on /api/v2/spans",
        ),
        (
            reqwest::Method::GET,
            format!("{}/api/nothing", server.tempo()),
            404,
            "nothing answers GET /api/nothing",
        ),
    ] {
        let resp = client.request(method, &url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{url}");
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/plain"),
            "{url}: {content_type}"
        );
        let body = resp.text().await.unwrap();
        assert!(body.contains(says), "{url}: {body}");
    }
    // A handler's own 404 keeps its message.
    let resp = client
        .get(format!(
            "{}/api/traces/00000000000000000000000000000abc",
            server.api()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert!(!resp.text().await.unwrap().contains("nothing answers"));
}

/// A sender that starts a body and never finishes it gets 408 once the body timeout passes,
/// its connection is closed, the refusal is counted, and other senders are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_ends_times_out_and_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = Stitch::start(&dir.path().join("data"), &["--request-body-timeout", "1s"]);
    let mut slow = tokio::net::TcpStream::connect(server.http).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
         Transfer-Encoding: chunked\r\n\r\n4\r\n\x0a\x02\x0a\x00\r\n",
        server.http
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();

    // Meanwhile a whole request is answered at once.
    let (req, _) = synthetic_request(5, 1, 2);
    let resp = post(
        &server.otlp_http(),
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);

    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        slow.read_to_end(&mut answer),
    )
    .await
    .expect("the slow request was never answered")
    .unwrap();
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive whole within 1 s"), "{text}");
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "{waited:?}"
    );
    assert_eq!(
        metric(&server.api(), "stitch_receiver_timed_out_requests_total").await,
        1.0
    );
}
