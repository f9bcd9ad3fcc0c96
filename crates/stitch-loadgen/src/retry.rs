//! Retrying exports the way OpenTelemetry exporters do.
//!
//! - **What is retried.** HTTP 429, 502, 503 and 504 (the OTLP/HTTP specification's retryable
//!   statuses; Stitch answers overload with 503 + `Retry-After`), the gRPC codes OTLP/gRPC calls
//!   retryable (`UNAVAILABLE`, which Stitch uses for overload, `CANCELLED`, `DEADLINE_EXCEEDED`,
//!   `ABORTED`, `OUT_OF_RANGE`, `DATA_LOSS`, and `RESOURCE_EXHAUSTED` only when the server sends
//!   `RetryInfo`), and transport failures (refused or reset connections, timeouts). Anything
//!   else (400, 413, 415, `INVALID_ARGUMENT`, ...) fails the request at once.
//! - **How long to wait.** The server's word first: `Retry-After` (seconds or an HTTP date) or
//!   gRPC `RetryInfo`, capped at [`RetryPolicy::max_retry_after`]. Otherwise exponential backoff
//!   from [`RetryPolicy::initial_backoff`], doubling up to [`RetryPolicy::max_backoff`], with
//!   jitter (each wait is 50–100% of the nominal one) so that senders throttled together do not
//!   come back together.
//! - **When to give up.** After [`RetryPolicy::max_attempts`] attempts, or when the next wait
//!   would take the request past [`RetryPolicy::max_elapsed`] since its first attempt.
//!
//! The loop ([`send_with_retry`]) takes the transport and the sleep as parameters, so tests
//! drive it with scripted answers and a fake clock.

use std::future::Future;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::generate::Rng;

/// The answer to one attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Stored. `rejected_spans` counts spans the server left out (OTLP partial success, or the
    /// Zipkin/Jaeger receivers' `rejected M` message).
    Accepted { rejected_spans: u64 },
    /// Worth another try, after `retry_after` if the server said how long.
    Retryable {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// Refused for good.
    Failed { reason: String },
}

/// How a request is retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured as given; longer ones are cut to this.
    pub max_retry_after: Duration,
    /// No retry starts later than this after the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1` after attempt `attempt` (1-based) was
    /// answered `retry_after`-or-not; `jitter` in `[0, 1)` picks the point within 50–100% of
    /// the nominal backoff. `None`: no more attempts.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        if let Some(after) = retry_after {
            return Some(after.min(self.max_retry_after));
        }
        let doublings = attempt.saturating_sub(1).min(30);
        let nominal = self
            .initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff);
        Some(nominal.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`). A date in
/// the past means "now"; anything else unparseable is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Classifies an HTTP answer (for a success, the caller reads the body for rejected spans).
pub fn classify_http(status: u16, retry_after: Option<&str>, body: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Accepted { rejected_spans: 0 },
        429 | 502 | 503 | 504 => Outcome::Retryable {
            retry_after: retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())),
            reason: format!("HTTP {status}"),
        },
        _ => Outcome::Failed {
            reason: format!("HTTP {status}: {}", first_line(body)),
        },
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_owned(),
    }
}

/// Classifies a gRPC error status. `retry_info` is the delay of a `google.rpc.RetryInfo` in the
/// status details, if the server sent one.
pub fn classify_grpc(code: tonic::Code, message: &str, retry_info: Option<Duration>) -> Outcome {
    use tonic::Code;
    let retryable = match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_info.is_some(),
        _ => false,
    };
    let reason = format!("gRPC {code:?}: {}", first_line(message));
    if retryable {
        Outcome::Retryable {
            retry_after: retry_info,
            reason,
        }
    } else {
        Outcome::Failed { reason }
    }
}

/// The `RetryInfo` delay in gRPC status details (`google.rpc.Status` with `Any` details).
pub fn grpc_retry_info(details: &[u8]) -> Option<Duration> {
    use prost::Message;
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Any {
        #[prost(string, tag = "1")]
        type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        retry_delay: Option<ProtoDuration>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct ProtoDuration {
        #[prost(int64, tag = "1")]
        seconds: i64,
        #[prost(int32, tag = "2")]
        nanos: i32,
    }
    if details.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    let any = status
        .details
        .iter()
        .find(|d| d.type_url.ends_with("/google.rpc.RetryInfo"))?;
    let delay = RetryInfo::decode(&any.value[..]).ok()?.retry_delay?;
    let secs = u64::try_from(delay.seconds).ok()?;
    let nanos = u32::try_from(delay.nanos).ok()?;
    Some(Duration::from_secs(secs) + Duration::from_nanos(nanos.into()))
}

/// Something that sends one payload and says how it went.
pub trait Transport {
    fn send(&mut self, payload: Bytes) -> impl Future<Output = Outcome> + Send;
}

/// Waits; the real one is `tokio::time::sleep`.
pub trait Sleep {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// `tokio::time::sleep`.
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// How one request went, over all its attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempted {
    /// The last answer.
    pub outcome: Outcome,
    pub attempts: u32,
    /// Retryable answers received (throttling, unavailability, transport errors).
    pub retryable_answers: u32,
    /// Time spent waiting between attempts.
    pub waited: Duration,
}

/// Sends `payload` until it is accepted, fails for good, or the policy gives up.
pub async fn send_with_retry<T: Transport, S: Sleep>(
    transport: &mut T,
    payload: Bytes,
    policy: &RetryPolicy,
    jitter: &mut Rng,
    sleep: &S,
) -> Attempted {
    let mut attempts = 0;
    let mut retryable_answers = 0;
    let mut waited = Duration::ZERO;
    loop {
        attempts += 1;
        let outcome = transport.send(payload.clone()).await;
        let retry_after = match &outcome {
            Outcome::Retryable { retry_after, .. } => *retry_after,
            _ => {
                return Attempted {
                    outcome,
                    attempts,
                    retryable_answers,
                    waited,
                };
            }
        };
        retryable_answers += 1;
        let delay = policy
            .delay(attempts, retry_after, jitter.unit())
            .filter(|d| waited + *d <= policy.max_elapsed);
        let Some(delay) = delay else {
            return Attempted {
                outcome,
                attempts,
                retryable_answers,
                waited,
            };
        };
        sleep.sleep(delay).await;
        waited += delay;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    struct Scripted(VecDeque<Outcome>, u32);

    impl Transport for Scripted {
        fn send(&mut self, _payload: Bytes) -> impl Future<Output = Outcome> + Send {
            self.1 += 1;
            let next = self
                .0
                .pop_front()
                .expect("the script has an answer for every attempt");
            async move { next }
        }
    }

    /// Records the waits instead of waiting.
    #[derive(Default)]
    struct FakeSleep(Mutex<Vec<Duration>>);

    impl Sleep for FakeSleep {
        fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
            self.0.lock().unwrap().push(d);
            async {}
        }
    }

    fn busy(after: Option<u64>) -> Outcome {
        Outcome::Retryable {
            retry_after: after.map(Duration::from_secs),
            reason: "HTTP 503".into(),
        }
    }

    fn run(script: Vec<Outcome>, policy: &RetryPolicy) -> (Attempted, Vec<Duration>, u32) {
        let mut t = Scripted(script.into(), 0);
        let sleep = FakeSleep::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let a = rt.block_on(send_with_retry(
            &mut t,
            Bytes::from_static(b"x"),
            policy,
            &mut Rng::new(1),
            &sleep,
        ));
        let waits = sleep.0.into_inner().unwrap();
        (a, waits, t.1)
    }

    #[test]
    fn a_throttled_request_is_retried_after_the_servers_retry_after() {
        let ok = Outcome::Accepted { rejected_spans: 0 };
        let (a, waits, sent) = run(
            vec![busy(Some(2)), busy(Some(1)), ok.clone()],
            &RetryPolicy::default(),
        );
        assert_eq!(a.outcome, ok);
        assert_eq!((a.attempts, a.retryable_answers, sent), (3, 2, 3));
        assert_eq!(waits, [Duration::from_secs(2), Duration::from_secs(1)]);
        assert_eq!(a.waited, Duration::from_secs(3));
    }

    #[test]
    fn without_retry_after_the_backoff_doubles_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 7,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let mut script = vec![busy(None); 6];
        script.push(Outcome::Accepted { rejected_spans: 0 });
        let (a, waits, _) = run(script, &policy);
        assert!(matches!(a.outcome, Outcome::Accepted { .. }));
        let nominal = [100, 200, 400, 800, 1000, 1000];
        assert_eq!(waits.len(), nominal.len());
        for (w, n) in waits.iter().zip(nominal) {
            let n = Duration::from_millis(n);
            assert!(*w >= n / 2 && *w <= n, "{w:?} for a nominal {n:?}");
        }
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let failed = classify_http(400, None, "span 0: trace id is all zeros\nmore");
        assert_eq!(
            failed,
            Outcome::Failed {
                reason: "HTTP 400: span 0: trace id is all zeros".into()
            }
        );
        let (a, waits, sent) = run(vec![failed.clone()], &RetryPolicy::default());
        assert_eq!((a.outcome, a.attempts, sent), (failed, 1, 1));
        assert!(waits.is_empty());
    }

    #[test]
    fn retries_stop_after_max_attempts_and_report_the_last_answer() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let (a, waits, sent) = run(vec![busy(Some(1)); 3], &policy);
        assert_eq!(a.outcome, busy(Some(1)));
        assert_eq!((a.attempts, a.retryable_answers, sent), (3, 3, 3));
        assert_eq!(waits.len(), 2);
    }

    #[test]
    fn retries_stop_when_the_next_wait_would_pass_max_elapsed_and_long_retry_afters_are_cut() {
        let policy = RetryPolicy {
            max_retry_after: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(25),
            ..RetryPolicy::default()
        };
        let (a, waits, sent) = run(vec![busy(Some(3600)); 4], &policy);
        assert_eq!(waits, [Duration::from_secs(10), Duration::from_secs(10)]);
        assert_eq!((a.attempts, sent), (3, 3));
    }

    #[test]
    fn retryable_http_statuses_and_retry_after_forms() {
        for status in [429, 502, 503, 504] {
            assert!(matches!(
                classify_http(status, None, ""),
                Outcome::Retryable { .. }
            ));
        }
        for status in [400, 401, 404, 413, 415, 500] {
            assert!(matches!(
                classify_http(status, None, ""),
                Outcome::Failed { .. }
            ));
        }
        assert!(matches!(
            classify_http(202, None, ""),
            Outcome::Accepted { .. }
        ));
        assert_eq!(
            classify_http(503, Some("7"), ""),
            Outcome::Retryable {
                retry_after: Some(Duration::from_secs(7)),
                reason: "HTTP 503".into()
            }
        );
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(" 12 ", now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn grpc_codes_follow_the_otlp_specification() {
        use tonic::Code;
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::Aborted,
        ] {
            assert!(matches!(
                classify_grpc(code, "", None),
                Outcome::Retryable { .. }
            ));
        }
        for code in [Code::InvalidArgument, Code::Unimplemented, Code::Internal] {
            assert!(matches!(
                classify_grpc(code, "", None),
                Outcome::Failed { .. }
            ));
        }
        assert!(matches!(
            classify_grpc(Code::ResourceExhausted, "too big", None),
            Outcome::Failed { .. }
        ));
        assert_eq!(
            classify_grpc(
                Code::ResourceExhausted,
                "slow down",
                Some(Duration::from_millis(1500))
            ),
            Outcome::Retryable {
                retry_after: Some(Duration::from_millis(1500)),
                reason: "gRPC ResourceExhausted: slow down".into()
            }
        );
    }

    #[test]
    fn retry_info_is_read_from_grpc_status_details() {
        // google.rpc.Status { code: 8, details: [Any { RetryInfo { retry_delay: 2.5 s } }] },
        // encoded by hand: the bytes a Go or Java server puts in grpc-status-details-bin.
        let duration = [0x08, 0x02, 0x10, 0x80, 0xca, 0xb5, 0xee, 0x01]; // 2 s, 500,000,000 ns
        let mut retry_info = vec![0x0a, duration.len() as u8];
        retry_info.extend(duration);
        let type_url = b"type.googleapis.com/google.rpc.RetryInfo";
        let mut any = vec![0x0a, type_url.len() as u8];
        any.extend(type_url);
        any.extend([0x12, retry_info.len() as u8]);
        any.extend(&retry_info);
        let mut status = vec![0x08, 0x08, 0x1a, any.len() as u8];
        status.extend(&any);
        assert_eq!(grpc_retry_info(&status), Some(Duration::from_millis(2500)));
        assert_eq!(grpc_retry_info(&[]), None);
        assert_eq!(grpc_retry_info(&[0x08, 0x08]), None);
        assert_eq!(grpc_retry_info(&[0xff, 0xff]), None);
    }
}
