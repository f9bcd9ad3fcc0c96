//! The live aggregates' feeder against a reader that fails: nothing it could not read is
//! dropped.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stitch_model::{Batch, Span, SpanId, TraceId};
use stitch_query::{Live, LiveOptions, MemoryStore, SpanSink, TraceReader};
use stitch_testkit::{batch_of, resource};

fn batch(traces: u64) -> Batch {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans = (1..=traces)
        .map(|n| Span {
            trace_id: TraceId::from_halves(n, n),
            span_id: SpanId::from_u64(n),
            name: "GET /".into(),
            start_time_unix_nano: now,
            end_time_unix_nano: now + 1_000_000,
            ..Default::default()
        })
        .collect();
    batch_of(&resource("web"), spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_whose_read_fails_stay_pending_and_are_added_once_reads_work() {
    let live = Arc::new(Live::new(LiveOptions {
        settle: Duration::from_millis(200),
        ..LiveOptions::default()
    }));
    let store = Arc::new(MemoryStore::with_observer(live.clone()));
    let reader: Arc<dyn TraceReader> = store.clone();
    live.spawn_feeder(&reader);
    store.fail_reads(Some("the disk is gone"));
    store.append(batch(3), None).await.unwrap();
    // Several rounds of the feeder (one a second) fail to read the settled traces.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(live.with(|l| l.traces_added), 0);
    assert_eq!(live.pending(10).traces.len(), 3, "still pending");
    store.fail_reads(None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.with(|l| l.traces_added) < 3 {
        assert!(Instant::now() < deadline, "the traces were never added");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(live.with(|l| (l.traces_added, l.late_updates)), (3, 0));
    assert_eq!(live.pending(10).traces.len(), 0);
}
