//! The agent's UDP ports (6831 compact, 6832 binary Thrift): one datagram, one batch, no answer.

use super::*;

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
