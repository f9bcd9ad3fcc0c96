//! What goes in comes out: from the head, from blocks, and from both at once.

mod common;

use std::sync::Arc;

use common::*;
use stitch_model::{Batch, Resource, ResourceSpans, Scope, ScopeSpans, Span, Trace, TraceId};
use stitch_query::TraceReader;
use stitch_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_is_returned_whole_from_the_head_and_identically_from_its_block_after_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    let t0 = now_nanos() - 60 * SECOND;
    let id = trace_id(1);
    let other = trace_id(2);
    let batch = rich_batch(id, t0);
    let noise = rich_batch(other, t0 + SECOND);
    append(&store, &batch).await;
    append(&store, &noise).await;

    let want = expected(id, &[&batch]);
    assert_eq!(want.span_count(), 6);
    let from_head = get(&store, id).await.expect("trace in the head");
    assert_eq!(from_head, want);

    store.flush().await.unwrap();
    assert_eq!(store.head_spans(), 0);
    assert_eq!(store.block_count(), 1);
    let from_block = get(&store, id).await.expect("trace in the block");
    assert_eq!(from_block, from_head);
    assert_eq!(
        get(&store, other).await.unwrap(),
        expected(other, &[&noise])
    );
}

/// A trace whose arrival order differs from start order: in resource `b`, the scope listed
/// first starts last; resources `a` and `b` start at the same time, `b` arriving first although
/// its first span has the larger span id. The head keeps arrival order while a block returns
/// rows in (start, span id) order.
fn out_of_order_batch(id: TraceId, t0: u64) -> Batch {
    let (x, y) = (span_id(11), span_id(12));
    let (b_first, a_first) = if x > y { (x, y) } else { (y, x) };
    let group = |res: Arc<Resource>, scopes: Vec<(&str, Span)>| ResourceSpans {
        resource: res,
        scope_spans: scopes
            .into_iter()
            .map(|(name, span)| ScopeSpans {
                scope: scope(name),
                spans: vec![span],
            })
            .collect(),
    };
    Batch {
        resource_spans: vec![
            group(
                resource("b"),
                vec![
                    ("late", span(id, span_id(10), "late", t0 + 50, 10)),
                    ("early", span(id, b_first, "early", t0, 10)),
                ],
            ),
            group(
                resource("a"),
                vec![("only", span(id, a_first, "a", t0, 10))],
            ),
        ],
    }
}

/// The trace as sorted groups of sorted spans, whatever the order of its groups.
fn groups(trace: &Trace) -> Vec<(Resource, Scope, Vec<Span>)> {
    let mut out: Vec<_> = trace
        .resource_spans
        .iter()
        .flat_map(|rs| {
            rs.scope_spans.iter().map(|ss| {
                (
                    (*rs.resource).clone(),
                    (*ss.scope).clone(),
                    ss.spans.clone(),
                )
            })
        })
        .collect();
    out.sort_by_key(|(_, _, spans)| spans.iter().map(|s| s.span_id).collect::<Vec<_>>());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_has_the_same_groups_and_spans_from_the_head_and_from_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    let id = trace_id(7);
    let batch = out_of_order_batch(id, now_nanos() - 60 * SECOND);
    append(&store, &batch).await;
    let from_head = get(&store, id).await.unwrap();
    assert_eq!(from_head, expected(id, &[&batch]));
    assert_eq!(from_head.resource_spans.len(), 2);
    store.flush().await.unwrap();
    let from_block = get(&store, id).await.unwrap();
    assert_eq!(groups(&from_block), groups(&from_head));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_of_scopes_and_resources_in_a_trace_does_not_depend_on_where_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    let id = trace_id(7);
    let batch = out_of_order_batch(id, now_nanos() - 60 * SECOND);
    append(&store, &batch).await;
    let from_head = get(&store, id).await.unwrap();
    store.flush().await.unwrap();
    let from_block = get(&store, id).await.unwrap();
    assert_eq!(from_block, from_head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_appended_in_several_batches_is_returned_whole_from_blocks_and_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    let t0 = now_nanos() - 60 * SECOND;
    let id = trace_id(3);
    let web = resource("web");
    let api = resource("api");
    let first = batch_of(&web, vec![span(id, span_id(1), "GET /", t0, 500 * MILLI)]);
    let second = batch_of(
        &api,
        vec![span(id, span_id(2), "load", t0 + MILLI, 10 * MILLI)],
    );
    let third = batch_of(
        &api,
        vec![
            span(id, span_id(3), "save", t0 + 20 * MILLI, 10 * MILLI),
            span(trace_id(4), span_id(40), "unrelated", t0, 1),
        ],
    );
    let fourth = batch_of(
        &web,
        vec![span(id, span_id(4), "render", t0 + 30 * MILLI, 1)],
    );

    append(&store, &first).await;
    store.flush().await.unwrap();
    append(&store, &second).await;
    append(&store, &third).await;
    store.flush().await.unwrap();
    append(&store, &fourth).await;
    assert_eq!(store.block_count(), 2);
    assert_eq!(store.head_spans(), 1);

    let want = expected(id, &[&first, &second, &third, &fourth]);
    assert_eq!(want.span_count(), 4);
    assert_eq!(get(&store, id).await.unwrap(), want);

    store.flush().await.unwrap();
    assert_eq!(store.block_count(), 3);
    assert_eq!(get(&store, id).await.unwrap(), want);
    assert_eq!(
        get(&store, trace_id(4)).await.unwrap(),
        expected(trace_id(4), &[&third])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_from_a_start_on_skips_the_blocks_of_earlier_spans_and_takes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    let t0 = now_nanos() - 60 * SECOND;
    let (a, b) = (trace_id(5), trace_id(6));
    let web = resource("web");
    let early = batch_of(
        &web,
        vec![
            span(a, span_id(1), "GET /a", t0, 500 * MILLI),
            span(b, span_id(2), "GET /b", t0, 500 * MILLI),
        ],
    );
    let later = batch_of(&web, vec![span(a, span_id(3), "a later", t0 + SECOND, 1)]);
    let latest = batch_of(
        &web,
        vec![span(b, span_id(4), "b later", t0 + 2 * SECOND, 1)],
    );
    append(&store, &early).await;
    store.flush().await.unwrap();
    append(&store, &later).await;
    store.flush().await.unwrap();
    append(&store, &latest).await;
    let mut ids = vec![a, b];
    ids.sort_unstable();
    let names = |traces: Vec<Trace>| -> Vec<(TraceId, Vec<String>)> {
        traces
            .iter()
            .map(|t| {
                let mut n: Vec<String> = t.spans().map(|s| s.span.name.clone()).collect();
                n.sort();
                (t.trace_id, n)
            })
            .collect()
    };
    let want = |pairs: &[(TraceId, &[&str])]| -> Vec<(TraceId, Vec<String>)> {
        let mut w: Vec<(TraceId, Vec<String>)> = pairs
            .iter()
            .map(|(id, n)| (*id, n.iter().map(|s| s.to_string()).collect()))
            .collect();
        w.sort_by_key(|(id, _)| *id);
        w
    };
    // From 0: whole traces, from both blocks and the head.
    assert_eq!(
        names(store.traces_from(&ids, 0).await.unwrap()),
        want(&[(a, &["GET /a", "a later"]), (b, &["GET /b", "b later"])])
    );
    // From t0 + 1 s: the first block (every span of it started at t0) is not read.
    assert_eq!(
        names(store.traces_from(&ids, t0 + SECOND).await.unwrap()),
        want(&[(a, &["a later"]), (b, &["b later"])])
    );
    // After the second block's spans: only the head's span is left.
    assert_eq!(
        names(store.traces_from(&ids, t0 + 2 * SECOND).await.unwrap()),
        want(&[(b, &["b later"])])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_delivered_twice_is_returned_once_wherever_the_copies_are() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    let t0 = now_nanos() - 60 * SECOND;
    let id = trace_id(5);
    let svc = resource("svc");
    let once = batch_of(&svc, vec![span(id, span_id(1), "op", t0, 10)]);
    let both = batch_of(
        &svc,
        vec![
            span(id, span_id(1), "op", t0, 10),
            span(id, span_id(2), "op2", t0 + 5, 10),
        ],
    );
    let want = expected(id, &[&both]);

    // Both copies in the head.
    append(&store, &once).await;
    append(&store, &both).await;
    assert_eq!(get(&store, id).await.unwrap(), want);
    // Both copies in one block.
    store.flush().await.unwrap();
    assert_eq!(get(&store, id).await.unwrap(), want);
    // A third copy in the head, the others in a block.
    append(&store, &both).await;
    assert_eq!(get(&store, id).await.unwrap(), want);
    // Copies in two blocks.
    store.flush().await.unwrap();
    assert_eq!(store.block_count(), 2);
    assert_eq!(get(&store, id).await.unwrap(), want);
    // Duplicates within one batch.
    let twice = batch_of(
        &svc,
        vec![
            span(id, span_id(3), "op3", t0 + 7, 1),
            span(id, span_id(3), "op3", t0 + 7, 1),
        ],
    );
    append(&store, &twice).await;
    let want = expected(id, &[&both, &twice]);
    assert_eq!(want.span_count(), 3);
    assert_eq!(get(&store, id).await.unwrap(), want);
    store.flush().await.unwrap();
    assert_eq!(get(&store, id).await.unwrap(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_trace_id_is_not_found_in_the_head_or_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    assert!(get(&store, trace_id(1)).await.is_none());
    let t0 = now_nanos();
    let batch = batch_of(
        &resource("svc"),
        (1..=50)
            .map(|n| span(trace_id(n), span_id(n), "op", t0 + n, 1))
            .collect(),
    );
    append(&store, &batch).await;
    assert!(get(&store, trace_id(1_000)).await.is_none());
    store.flush().await.unwrap();
    for n in 1_000..1_200 {
        assert!(get(&store, trace_id(n)).await.is_none());
    }
    for n in 1..=50 {
        assert_eq!(get(&store, trace_id(n)).await.unwrap().span_count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_found_in_a_block_of_several_row_groups() {
    // More rows than one row group holds, with a trace whose rows straddle the boundary.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    let t0 = now_nanos();
    let svc = resource("svc");
    let rows = stitch_store::block::ROW_GROUP_ROWS as u64;
    let mut next_span = 0u64;
    let mut spans = Vec::new();
    for n in 0..(rows + 1_000) / 3 {
        for _ in 0..3 {
            next_span += 1;
            spans.push(span(
                trace_id(n + 1),
                span_id(next_span),
                "op",
                t0 + next_span,
                1,
            ));
        }
    }
    // Trace ids sort by their bytes; find the trace that holds the boundary row.
    let mut ids: Vec<_> = spans.iter().map(|s| s.trace_id).collect();
    ids.sort();
    let boundary = ids[rows as usize];
    assert_eq!(
        ids[rows as usize - 1],
        boundary,
        "the trace must straddle the boundary"
    );
    let batch = batch_of(&svc, spans);
    append(&store, &batch).await;
    store.flush().await.unwrap();
    for id in [ids[0], boundary, *ids.last().unwrap()] {
        let t = get(&store, id).await.unwrap();
        assert_eq!(t, expected(id, &[&batch]));
        assert_eq!(t.span_count(), 3);
    }
    // A search answering many traces reads them from the block in one pass: every trace whole,
    // across both row groups and all their pages, newest first.
    let traces = (rows + 1_000) / 3;
    let found = store
        .search(&stitch_query::SearchQuery {
            service: Some("svc".into()),
            limit: traces as usize,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len() as u64, traces);
    for (i, t) in found.iter().enumerate() {
        assert_eq!(t.trace_id, trace_id(traces - i as u64), "newest first");
        assert_eq!(t.span_count(), 3, "{}", t.trace_id);
    }
    assert!(found.iter().any(|t| t.trace_id == boundary));
    for t in found.iter().step_by(997) {
        assert_eq!(*t, expected(t.trace_id, &[&batch]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acknowledged_trace_stays_readable_while_its_head_is_frozen_and_flushed() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).await.unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, acked, done) = (store.clone(), acked.clone(), done.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) {
                    let n = acked.load(Ordering::Acquire);
                    if n == 0 {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let found = store.trace(trace_id(n)).await.unwrap();
                    assert!(found.is_some(), "acknowledged trace {n} was not found");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let t0 = now_nanos();
    let svc = resource("svc");
    for n in 1..=40u64 {
        let batch = batch_of(&svc, vec![span(trace_id(n), span_id(n), "op", t0 + n, 1)]);
        append(&store, &batch).await;
        acked.store(n, Ordering::Release);
        store.flush().await.unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
    assert_eq!(store.block_count(), 40);
}
