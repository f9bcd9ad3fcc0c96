//! `kill -9` during sustained ingest, then restart: every span whose export was acknowledged
//! is queryable.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Stitch, fetch_trace, synthetic_request};
use prost::Message;

const SPANS_PER_TRACE: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_kill_9_during_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A small head so that blocks are flushed (and WAL segments deleted) while the load runs:
    // the crash can land before, during or after a flush.
    let mut server = Stitch::start(&data, &["--head-max-spans", "3000"]);
    let url = server.otlp_http();

    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for worker in 0..4u64 {
        let url = url.clone();
        let stop = stop.clone();
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            let mut seed = worker * 1_000_000;
            // Bounded in count and time, whatever happens to the server.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                seed += 1;
                let (req, ids) = synthetic_request(seed, 25, SPANS_PER_TRACE);
                let sent = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(req.encode_to_vec())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => acked.extend(ids),
                    Ok(_) => {}
                    // The server died mid-request: that export was never acknowledged.
                    Err(_) => break,
                }
            }
            acked
        }));
    }

    // Let the load run until some blocks have been flushed, then kill the server mid-stream.
    let blocks = data.join("blocks");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let flushed = std::fs::read_dir(&blocks).map(|d| d.count()).unwrap_or(0);
        if flushed >= 2 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);

    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(
        acked.len() > 1000,
        "the load should have been acknowledged for a while before the crash ({} traces)",
        acked.len()
    );

    let server = Stitch::start(&data, &[]);
    let api = server.api();
    let mut missing = Vec::new();
    for id in &acked {
        match fetch_trace(&api, id).await {
            Some(t) if t.span_count() as u64 == SPANS_PER_TRACE => {}
            Some(t) => missing.push(format!(
                "{id}: {} of {SPANS_PER_TRACE} spans",
                t.span_count()
            )),
            None => missing.push(format!("{id}: absent")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged traces lost after kill -9, e.g. {:?}\nserver log:\n{}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)],
        server.log()
    );
}
