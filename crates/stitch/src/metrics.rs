//! `GET /metrics`: Stitch's own counters in the Prometheus text format.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use stitch_ingest::Ingest;
use stitch_query::Live;
use stitch_store::Store;

#[derive(Clone)]
struct Sources {
    store: Store,
    ingest: Arc<Ingest>,
    live: Arc<Live>,
}

pub fn router(store: Store, ingest: Arc<Ingest>, live: Arc<Live>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(Sources {
            store,
            ingest,
            live,
        })
}

fn counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

async fn render(State(s): State<Sources>) -> impl IntoResponse {
    let mut out = String::new();
    let i = &s.ingest.stats;
    counter(
        &mut out,
        "stitch_receiver_requests_total",
        "Export requests that decoded.",
        &i.requests,
    );
    counter(
        &mut out,
        "stitch_receiver_accepted_spans_total",
        "Spans acknowledged to senders.",
        &i.accepted_spans,
    );
    counter(
        &mut out,
        "stitch_receiver_rejected_spans_total",
        "Invalid spans rejected with a partial success.",
        &i.rejected_spans,
    );
    counter(
        &mut out,
        "stitch_receiver_rejected_times_spans_total",
        "Spans rejected for their times: before 1970-01-02, over a day ahead, or too long (also in rejected_spans).",
        &i.rejected_times,
    );
    counter(
        &mut out,
        "stitch_receiver_malformed_requests_total",
        "Requests refused as malformed.",
        &i.malformed_requests,
    );
    counter(
        &mut out,
        "stitch_receiver_oversized_requests_total",
        "Requests refused as too large.",
        &i.oversized_requests,
    );
    counter(
        &mut out,
        "stitch_receiver_timed_out_requests_total",
        "Requests whose body did not arrive within the body timeout (408).",
        &i.timed_out_requests,
    );
    counter(
        &mut out,
        "stitch_receiver_refused_overload_total",
        "Requests refused because Stitch was overloaded.",
        &i.refused_overload,
    );
    counter(
        &mut out,
        "stitch_receiver_store_failures_total",
        "Requests the store failed to persist.",
        &i.store_failures,
    );
    counter(
        &mut out,
        "stitch_receiver_udp_datagrams_total",
        "Jaeger agent UDP datagrams received.",
        &i.udp_datagrams,
    );
    counter(
        &mut out,
        "stitch_receiver_udp_malformed_datagrams_total",
        "Jaeger agent UDP datagrams that did not decode (dropped).",
        &i.udp_malformed_datagrams,
    );
    counter(
        &mut out,
        "stitch_receiver_udp_dropped_datagrams_total",
        "Jaeger agent UDP datagrams dropped because Stitch was overloaded.",
        &i.udp_dropped_datagrams,
    );
    let st = s.store.stats();
    counter(
        &mut out,
        "stitch_wal_appends_total",
        "Batches written to the write-ahead log.",
        &st.appends,
    );
    counter(
        &mut out,
        "stitch_wal_spans_total",
        "Spans written to the write-ahead log.",
        &st.appended_spans,
    );
    counter(
        &mut out,
        "stitch_wal_bytes_total",
        "Payload bytes written to the write-ahead log.",
        &st.wal_bytes,
    );
    counter(
        &mut out,
        "stitch_wal_syncs_total",
        "Group commits (one fdatasync each).",
        &st.wal_syncs,
    );
    counter(
        &mut out,
        "stitch_store_blocks_written_total",
        "Blocks flushed from the head.",
        &st.blocks_written,
    );
    counter(
        &mut out,
        "stitch_store_blocks_deleted_total",
        "Blocks deleted by retention.",
        &st.blocks_deleted,
    );
    counter(
        &mut out,
        "stitch_store_flush_failures_total",
        "Failed block flush attempts (retried).",
        &st.flush_failures,
    );
    counter(
        &mut out,
        "stitch_store_recovered_spans_total",
        "Spans replayed from the WAL at start.",
        &st.recovered_spans,
    );
    counter(
        &mut out,
        "stitch_wal_write_failures_total",
        "WAL writes or syncs that failed; each sealed its segment at its last good record.",
        &st.wal_write_failures,
    );
    counter(
        &mut out,
        "stitch_store_refused_appends_total",
        "Appends refused at once because the disk was below its free-space reserve or no WAL segment could be written.",
        &st.refused_appends,
    );
    counter(
        &mut out,
        "stitch_store_disk_full_episodes_total",
        "Times the free space on the data directory's disk fell below the reserve.",
        &st.disk_full_episodes,
    );
    gauge(
        &mut out,
        "stitch_store_disk_free_bytes",
        "Free bytes on the data directory's disk at the last check.",
        st.disk_free_bytes.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "stitch_store_disk_reserve_bytes",
        "Free bytes below which appends are refused.",
        st.disk_reserve_bytes.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "stitch_wal_writable",
        "1 while the WAL accepts appends, 0 while they are refused (full disk, no writable segment).",
        st.wal_writable.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "stitch_store_head_spans",
        "Spans held in memory, not yet in a block.",
        s.store.head_spans() as u64,
    );
    gauge(
        &mut out,
        "stitch_store_blocks",
        "Blocks in the store.",
        s.store.block_count() as u64,
    );
    let blocks = s.store.block_memory();
    gauge(
        &mut out,
        "stitch_store_block_filter_bytes",
        "Bytes of the blocks' trace-id filters, row-group indexes and page boundaries held in memory.",
        blocks.filter_bytes,
    );
    gauge(
        &mut out,
        "stitch_store_block_footer_bytes",
        "Bytes of Parquet footers and page indexes kept in memory for reads (store.footer_cache_bytes bounds them).",
        blocks.footer_bytes,
    );
    gauge(
        &mut out,
        "stitch_store_block_footer_blocks",
        "Blocks whose Parquet footer is kept in memory.",
        blocks.footer_blocks,
    );
    counter(
        &mut out,
        "stitch_head_sampling_filtered_spans_total",
        "Spans acknowledged but not stored because head sampling rejected their trace.",
        &i.filtered_spans,
    );
    let backlog = s.live.backlog();
    gauge(
        &mut out,
        "stitch_live_waiting_traces",
        "Traces the live RED and dependency aggregates have yet to read and add (settling or behind).",
        backlog.waiting as u64,
    );
    gauge(
        &mut out,
        "stitch_live_queue_entries",
        "Entries of the live aggregates' settle queue.",
        backlog.queued as u64,
    );
    gauge(
        &mut out,
        "stitch_live_touched_traces",
        "Trace marks reported since the live aggregates' feeder last looked (a trace's consecutive spans as one).",
        backlog.touched as u64,
    );
    gauge(
        &mut out,
        "stitch_live_remembered_spans",
        "Span ids the live aggregates remember to count late spans once.",
        backlog.remembered_spans as u64,
    );
    crate::sampling::render_metrics(&mut out, &s.store);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
}
