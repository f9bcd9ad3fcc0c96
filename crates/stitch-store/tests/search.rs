//! Trace search, services and operations, over the head, blocks, and both.

mod common;

use std::sync::Arc;

use common::*;
use stitch_model::{
    Batch, Event, KeyValue, Resource, ResourceSpans, ScopeSpans, SpanKind, Status, StatusCode,
    TraceId,
};
use stitch_query::{Operation, SearchQuery, TraceReader};
use stitch_store::Store;

/// Five traces, one batch each, starting one second apart (trace 1 oldest):
///
/// | trace | service  | matching spans                                          |
/// |-------|----------|---------------------------------------------------------|
/// | 1     | checkout | `GET /cart` server 50 ms, `http.status_code=500`, error  |
/// | 2     | payments | `charge` 200 ms, resource `host.name=pay-2`             |
/// | 3     | checkout | `POST /pay` 1 s, event with `exception.type=Timeout`    |
/// | 4     | payments | `charge` 5 ms; a `refund` child in service `ledger`      |
/// | 5     | checkout | `GET /cart` client 120 ms                               |
struct Fixture {
    t0: u64,
    batches: Vec<Batch>,
}

fn fixture() -> Fixture {
    let t0 = now_nanos() - 600 * SECOND;
    let start = |n: u64| t0 + n * SECOND;
    let checkout = resource("checkout");
    let payments = Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", "payments"),
            KeyValue::new("host.name", "pay-2"),
        ],
        ..Default::default()
    });
    let payments_other_host = Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", "payments"),
            KeyValue::new("host.name", "pay-1"),
        ],
        ..Default::default()
    });
    let ledger = resource("ledger");

    let mut t1 = span(trace_id(1), span_id(1), "GET /cart", start(1), 50 * MILLI);
    t1.attributes = vec![KeyValue::new("http.status_code", 500i64)];
    t1.status = Status {
        code: StatusCode::Error,
        message: String::new(),
    };
    let t2 = span(trace_id(2), span_id(2), "charge", start(2), 200 * MILLI);
    let mut t3 = span(trace_id(3), span_id(3), "POST /pay", start(3), SECOND);
    t3.events = vec![Event {
        time_unix_nano: start(3) + 5,
        name: "exception".into(),
        attributes: vec![KeyValue::new("exception.type", "Timeout")],
        dropped_attributes_count: 0,
    }];
    let t4 = span(trace_id(4), span_id(4), "charge", start(4), 5 * MILLI);
    let mut t4_child = span(trace_id(4), span_id(41), "refund", start(4) + MILLI, MILLI);
    t4_child.parent_span_id = Some(span_id(4));
    t4_child.kind = SpanKind::Internal;
    let mut t5 = span(trace_id(5), span_id(5), "GET /cart", start(5), 120 * MILLI);
    t5.kind = SpanKind::Client;

    let batches = vec![
        batch_of(&checkout, vec![t1]),
        batch_of(&payments, vec![t2]),
        batch_of(&checkout, vec![t3]),
        Batch {
            resource_spans: vec![
                ResourceSpans {
                    resource: payments_other_host,
                    scope_spans: vec![ScopeSpans {
                        scope: scope("s"),
                        spans: vec![t4],
                    }],
                },
                ResourceSpans {
                    resource: ledger,
                    scope_spans: vec![ScopeSpans {
                        scope: scope("s"),
                        spans: vec![t4_child],
                    }],
                },
            ],
        },
        batch_of(&checkout, vec![t5]),
    ];
    Fixture { t0, batches }
}

async fn ids(store: &Store, query: SearchQuery) -> Vec<u64> {
    let query = SearchQuery {
        limit: if query.limit == 0 { 20 } else { query.limit },
        ..query
    };
    let found = store.search(&query).await.unwrap();
    found
        .iter()
        .map(|t| {
            (1..=5)
                .find(|n| trace_id(*n) == t.trace_id)
                .unwrap_or_else(|| panic!("unexpected trace {:?}", t.trace_id))
        })
        .collect()
}

fn tag(k: &str, v: &str) -> Vec<(String, String)> {
    vec![(k.to_owned(), v.to_owned())]
}

/// Every query of the fixture and the traces it must return, newest first.
async fn check_queries(store: &Store, f: &Fixture) {
    let start = |n: u64| f.t0 + n * SECOND;
    let q = SearchQuery::default;
    let svc = |s: &str| Some(s.to_owned());

    assert_eq!(ids(store, q()).await, vec![5, 4, 3, 2, 1]);
    assert_eq!(
        ids(
            store,
            SearchQuery {
                service: svc("checkout"),
                ..q()
            }
        )
        .await,
        vec![5, 3, 1]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                service: svc("payments"),
                ..q()
            }
        )
        .await,
        vec![4, 2]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                service: svc("ledger"),
                ..q()
            }
        )
        .await,
        vec![4]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                service: svc("nobody"),
                ..q()
            }
        )
        .await,
        Vec::<u64>::new()
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                operation: svc("GET /cart"),
                ..q()
            }
        )
        .await,
        vec![5, 1]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                service: svc("checkout"),
                operation: svc("GET /cart"),
                span_kind: Some(SpanKind::Server),
                ..q()
            }
        )
        .await,
        vec![1]
    );
    // The operation must belong to the service of the same span.
    assert_eq!(
        ids(
            store,
            SearchQuery {
                service: svc("payments"),
                operation: svc("refund"),
                ..q()
            }
        )
        .await,
        Vec::<u64>::new()
    );
    // Span attribute, resource attribute, event attribute, and the error status.
    assert_eq!(
        ids(
            store,
            SearchQuery {
                tags: tag("http.status_code", "500"),
                ..q()
            }
        )
        .await,
        vec![1]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                tags: tag("host.name", "pay-2"),
                ..q()
            }
        )
        .await,
        vec![2]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                service: svc("checkout"),
                tags: tag("exception.type", "Timeout"),
                ..q()
            }
        )
        .await,
        vec![3]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                tags: tag("error", "true"),
                ..q()
            }
        )
        .await,
        vec![1]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                tags: [tag("host.name", "pay-2"), tag("http.status_code", "500")].concat(),
                ..q()
            }
        )
        .await,
        Vec::<u64>::new()
    );
    // Durations are inclusive bounds.
    assert_eq!(
        ids(
            store,
            SearchQuery {
                min_duration_nanos: Some(200 * MILLI),
                ..q()
            }
        )
        .await,
        vec![3, 2]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                max_duration_nanos: Some(50 * MILLI),
                ..q()
            }
        )
        .await,
        vec![4, 1]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                min_duration_nanos: Some(50 * MILLI),
                max_duration_nanos: Some(200 * MILLI),
                ..q()
            }
        )
        .await,
        vec![5, 2, 1]
    );
    // Start times are inclusive bounds too.
    assert_eq!(
        ids(
            store,
            SearchQuery {
                start_unix_nanos: Some(start(2)),
                end_unix_nanos: Some(start(4)),
                ..q()
            }
        )
        .await,
        vec![4, 3, 2]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                start_unix_nanos: Some(start(5) + 1),
                ..q()
            }
        )
        .await,
        Vec::<u64>::new()
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                end_unix_nanos: Some(start(1)),
                ..q()
            }
        )
        .await,
        vec![1]
    );
    // The limit keeps the newest.
    assert_eq!(
        ids(store, SearchQuery { limit: 2, ..q() }).await,
        vec![5, 4]
    );
    assert_eq!(
        ids(
            store,
            SearchQuery {
                service: svc("checkout"),
                limit: 1,
                ..q()
            }
        )
        .await,
        vec![5]
    );
    // Hits are whole traces.
    let found = store
        .search(&SearchQuery {
            service: svc("ledger"),
            limit: 10,
            ..q()
        })
        .await
        .unwrap();
    assert_eq!(found, vec![expected(trace_id(4), &[&f.batches[3]])]);
}

async fn open(dir: &std::path::Path) -> Store {
    Store::open(config(dir)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_traces_in_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let f = fixture();
    for b in &f.batches {
        append(&store, b).await;
    }
    assert_eq!(store.block_count(), 0);
    check_queries(&store, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_traces_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let f = fixture();
    // One block with traces 1, 2 and 5, another with 3 and 4.
    for i in [0, 1, 4] {
        append(&store, &f.batches[i]).await;
    }
    store.flush().await.unwrap();
    for i in [2, 3] {
        append(&store, &f.batches[i]).await;
    }
    store.flush().await.unwrap();
    assert_eq!(store.head_spans(), 0);
    assert_eq!(store.block_count(), 2);
    check_queries(&store, &f).await;
    drop(store);
    let store = open(dir.path()).await;
    check_queries(&store, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_merges_hits_from_the_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let f = fixture();
    for i in [1, 3] {
        append(&store, &f.batches[i]).await;
    }
    store.flush().await.unwrap();
    for i in [0, 2, 4] {
        append(&store, &f.batches[i]).await;
    }
    check_queries(&store, &f).await;
    // The same, with the head recovered from the WAL.
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(store.head_spans(), 3);
    check_queries(&store, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_split_between_a_block_and_the_head_ranks_by_its_newest_matching_span() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let t0 = now_nanos() - 600 * SECOND;
    let svc = resource("svc");
    let (a, b): (TraceId, TraceId) = (trace_id(1), trace_id(2));
    // `a` starts first, but its second span (still in the head) is the newest of all.
    let a_old = batch_of(&svc, vec![span(a, span_id(1), "op", t0, 10)]);
    let b_mid = batch_of(&svc, vec![span(b, span_id(2), "op", t0 + SECOND, 10)]);
    let a_new = batch_of(&svc, vec![span(a, span_id(3), "op", t0 + 2 * SECOND, 10)]);
    append(&store, &a_old).await;
    append(&store, &b_mid).await;
    store.flush().await.unwrap();
    append(&store, &a_new).await;
    let query = SearchQuery {
        service: Some("svc".into()),
        limit: 10,
        ..Default::default()
    };
    let found = store.search(&query).await.unwrap();
    assert_eq!(
        found,
        vec![expected(a, &[&a_old, &a_new]), expected(b, &[&b_mid])]
    );
    let found = store
        .search(&SearchQuery {
            limit: 1,
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(found, vec![expected(a, &[&a_old, &a_new])]);
    // Restricted to the first second, `a` ranks by its old span, behind `b`.
    let found = store
        .search(&SearchQuery {
            end_unix_nanos: Some(t0 + SECOND),
            ..query
        })
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![expected(b, &[&b_mid]), expected(a, &[&a_old, &a_new])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_operations_include_blocks_and_the_head_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let f = fixture();
    for i in [0, 1, 2] {
        append(&store, &f.batches[i]).await;
    }
    store.flush().await.unwrap();
    for i in [3, 4] {
        append(&store, &f.batches[i]).await;
    }
    let op = |name: &str, kind: SpanKind| Operation {
        name: name.into(),
        kind,
    };
    let checkout = vec![
        op("GET /cart", SpanKind::Server),
        op("GET /cart", SpanKind::Client),
        op("POST /pay", SpanKind::Server),
    ];
    let check = |store: Store| {
        let checkout = checkout.clone();
        async move {
            assert_eq!(
                store.services().await.unwrap(),
                vec!["checkout", "ledger", "payments"]
            );
            assert_eq!(store.operations("checkout").await.unwrap(), checkout);
            assert_eq!(
                store.operations("payments").await.unwrap(),
                vec![op("charge", SpanKind::Server)]
            );
            assert_eq!(
                store.operations("ledger").await.unwrap(),
                vec![op("refund", SpanKind::Internal)]
            );
            assert!(store.operations("nobody").await.unwrap().is_empty());
            store
        }
    };
    let store = check(store).await;
    drop(store);
    let store = check(open(dir.path()).await).await;
    assert_eq!(store.block_count(), 1);
    store.flush().await.unwrap();
    drop(store);
    let store = check(open(dir.path()).await).await;
    assert_eq!(store.block_count(), 2);
    assert_eq!(store.head_spans(), 0);
}
