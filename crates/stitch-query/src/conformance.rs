//! The contract every [`SpanSink`] + [`TraceReader`] keeps, as runnable checks.
//!
//! [`run`] takes a factory of fresh, empty stores and runs each check on a store of its own;
//! a broken promise panics with the check's name and what differed. The store runs it (with
//! spans in memory and with spans in blocks), and so does [`crate::MemoryStore`], so a test
//! written against one holds for the other.

use std::future::Future;
use std::sync::Arc;

use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanId, SpanKind, Status, StatusCode, Trace, TraceId,
};

use crate::{Operation, SearchQuery, SpanSink, TraceReader};

const MILLI: u64 = 1_000_000;

/// Runs every check. `fresh` makes an empty store and something to keep alive while it is
/// used (a temporary directory, say), dropped after the check.
pub async fn run<S, G, F, Fut>(mut fresh: F)
where
    S: SpanSink + TraceReader,
    F: FnMut() -> Fut,
    Fut: Future<Output = (S, G)>,
{
    let t0 = now() - 3600 * 1_000 * MILLI;
    for (name, check) in CHECKS {
        let (store, guard) = fresh().await;
        let store: Arc<dyn Subject> = Arc::new(store);
        check(store, t0, name).await;
        drop(guard);
    }
}

/// A sink that is also a reader.
trait Subject: SpanSink + TraceReader {}
impl<T: SpanSink + TraceReader> Subject for T {}

type Check =
    fn(Arc<dyn Subject>, u64, &'static str) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

const CHECKS: &[(&str, Check)] = &[
    ("an unknown trace is absent", |s, t0, n| {
        Box::pin(unknown_trace(s, t0, n))
    }),
    ("a trace comes back whole, once", |s, t0, n| {
        Box::pin(whole_trace(s, t0, n))
    }),
    ("several traces at once, from a start on", |s, t0, n| {
        Box::pin(several_traces(s, t0, n))
    }),
    ("every field of a span survives", |s, t0, n| {
        Box::pin(every_field(s, t0, n))
    }),
    ("one span must meet every condition", |s, t0, n| {
        Box::pin(one_span_meets_all(s, t0, n))
    }),
    ("each search condition filters", |s, t0, n| {
        Box::pin(each_condition(s, t0, n))
    }),
    ("newest first, ties by id, within the limit", |s, t0, n| {
        Box::pin(order_and_limit(s, t0, n))
    }),
    ("services and operations are sorted", |s, t0, n| {
        Box::pin(services_and_operations(s, t0, n))
    }),
];

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

fn trace_id(n: u64) -> TraceId {
    TraceId::from_halves(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, n)
}

fn span_id(n: u64) -> SpanId {
    SpanId::from_u64(n.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1)
}

fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", service),
            KeyValue::new("host.name", format!("{service}-host")),
        ],
        ..Default::default()
    })
}

fn span(trace: u64, id: u64, name: &str, start: u64, duration: u64) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        name: name.into(),
        kind: SpanKind::Internal,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration,
        ..Default::default()
    }
}

/// One batch: `(service, spans)` groups.
fn batch(groups: Vec<(&str, Vec<Span>)>) -> Batch {
    Batch {
        resource_spans: groups
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: resource(service),
                scope_spans: vec![ScopeSpans {
                    scope: Arc::new(Scope {
                        name: "conformance".into(),
                        version: "1".into(),
                        ..Default::default()
                    }),
                    spans,
                }],
            })
            .collect(),
    }
}

async fn put(store: &dyn Subject, b: Batch, name: &str) {
    if let Err(e) = store.append(b, None).await {
        panic!("[{name}] append failed: {e}");
    }
}

async fn get(store: &dyn Subject, n: u64, name: &str) -> Option<Trace> {
    store
        .trace(trace_id(n))
        .await
        .unwrap_or_else(|e| panic!("[{name}] trace read failed: {e}"))
}

/// The spans of a trace with their service, in span id order; duplicates are kept, so a trace
/// that returns a span twice does not compare equal to one that returns it once.
pub fn spans_of(trace: &Trace) -> Vec<(String, Span)> {
    let mut out: Vec<(String, Span)> = trace
        .spans()
        .map(|s| (s.service_name().to_owned(), s.span.clone()))
        .collect();
    out.sort_by_key(|(_, s)| s.span_id);
    out
}

async fn found(store: &dyn Subject, query: SearchQuery, name: &str) -> Vec<TraceId> {
    store
        .search(&query)
        .await
        .unwrap_or_else(|e| panic!("[{name}] search failed: {e}"))
        .iter()
        .map(|t| t.trace_id)
        .collect()
}

async fn unknown_trace(store: Arc<dyn Subject>, t0: u64, name: &'static str) {
    assert!(
        get(&*store, 1, name).await.is_none(),
        "[{name}] empty store"
    );
    put(
        &*store,
        batch(vec![("a", vec![span(2, 1, "op", t0, MILLI)])]),
        name,
    )
    .await;
    assert!(
        get(&*store, 1, name).await.is_none(),
        "[{name}] other trace stored"
    );
    // An empty batch is accepted and changes nothing.
    put(&*store, Batch::default(), name).await;
    assert_eq!(
        store.services().await.unwrap(),
        vec!["a".to_owned()],
        "[{name}]"
    );
}

async fn whole_trace(store: Arc<dyn Subject>, t0: u64, name: &'static str) {
    let first = batch(vec![
        ("front", vec![span(1, 1, "GET /", t0, 10 * MILLI)]),
        ("back", vec![span(1, 2, "query", t0 + MILLI, 5 * MILLI)]),
    ]);
    let mut late = span(1, 3, "late", t0 + 2 * MILLI, MILLI);
    late.parent_span_id = Some(span_id(1));
    let second = batch(vec![("front", vec![late.clone()])]);
    put(&*store, first.clone(), name).await;
    put(&*store, second, name).await;
    // Delivered again, as a retrying sender does.
    put(&*store, first, name).await;
    let trace = get(&*store, 1, name).await.expect("stored trace");
    let got = spans_of(&trace);
    let names: Vec<(&str, &str)> = got
        .iter()
        .map(|(svc, s)| (svc.as_str(), s.name.as_str()))
        .collect();
    let mut want = vec![
        (span_id(1), "front", "GET /"),
        (span_id(2), "back", "query"),
        (span_id(3), "front", "late"),
    ];
    want.sort();
    let want: Vec<(&str, &str)> = want.into_iter().map(|(_, svc, n)| (svc, n)).collect();
    assert_eq!(names, want, "[{name}] spans of the trace, each once");
    assert_eq!(trace.trace_id, trace_id(1), "[{name}]");
}

async fn several_traces(store: Arc<dyn Subject>, t0: u64, name: &'static str) {
    // Three traces, each with a span an hour before the others, delivered in two batches
    // (so that a store that flushes per append holds them in different places).
    let early = t0 - 3600 * 1_000 * MILLI;
    for n in [1, 2, 3] {
        let mut child = span(n, 10 * n + 2, "child", t0 + n * MILLI, MILLI);
        child.parent_span_id = Some(span_id(10 * n + 1));
        put(
            &*store,
            batch(vec![(
                "a",
                vec![span(n, 10 * n + 1, "root", early, 2 * MILLI)],
            )]),
            name,
        )
        .await;
        put(&*store, batch(vec![("b", vec![child])]), name).await;
    }
    // The ids in trace id order, as `traces_from` takes them.
    let sorted = |ns: &[u64]| {
        let mut ids: Vec<TraceId> = ns.iter().copied().map(trace_id).collect();
        ids.sort_unstable();
        ids
    };
    let read = |ids: Vec<TraceId>, from: u64| {
        let store = store.clone();
        async move {
            store
                .traces_from(&ids, from)
                .await
                .unwrap_or_else(|e| panic!("[{name}] traces_from failed: {e}"))
        }
    };
    // From the start of time: whole traces, as `trace` returns them, in the order asked;
    // an id with nothing stored is left out.
    let whole = read(sorted(&[1, 3, 4]), 0).await;
    let ids: Vec<TraceId> = whole.iter().map(|t| t.trace_id).collect();
    assert_eq!(
        ids,
        sorted(&[1, 3]),
        "[{name}] traces found, in the order asked"
    );
    for t in &whole {
        let one = store.trace(t.trace_id).await.unwrap().expect("stored");
        assert_eq!(spans_of(t), spans_of(&one), "[{name}] whole trace");
        assert_eq!(t.span_count(), 2, "[{name}] both spans");
    }
    // From t0 on: every span starting then or later is there, each once; the early roots may
    // or may not be.
    let later = read(sorted(&[1, 2, 3]), t0).await;
    let ids: Vec<TraceId> = later.iter().map(|t| t.trace_id).collect();
    assert_eq!(
        ids,
        sorted(&[1, 2, 3]),
        "[{name}] traces with a span from t0 on"
    );
    for t in &later {
        let n = (1..=3)
            .find(|&n| trace_id(n) == t.trace_id)
            .expect("an id asked for");
        let got = spans_of(t);
        let children: Vec<&Span> = got
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.start_time_unix_nano >= t0)
            .collect();
        assert_eq!(children.len(), 1, "[{name}] the later span, once");
        assert_eq!(children[0].span_id, span_id(10 * n + 2), "[{name}]");
        assert!(
            got.iter()
                .all(|(_, s)| s.span_id == span_id(10 * n + 1) || s.span_id == span_id(10 * n + 2)),
            "[{name}] only spans of the trace"
        );
    }
    // After every span: nothing that must be returned; what is returned belongs to the ids.
    let none = read(sorted(&[1, 2, 3]), t0 + 3600 * 1_000 * MILLI).await;
    assert!(
        none.iter()
            .all(|t| sorted(&[1, 2, 3]).contains(&t.trace_id)),
        "[{name}] only traces asked for"
    );
}

async fn every_field(store: Arc<dyn Subject>, t0: u64, name: &'static str) {
    let mut s = span(1, 1, "rich", t0, 3 * MILLI);
    s.parent_span_id = Some(span_id(9));
    s.kind = SpanKind::Client;
    s.trace_state = "ot=th:8".into();
    s.status = Status {
        code: StatusCode::Error,
        message: "boom".into(),
    };
    s.attributes = vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("retries", 3i64),
        KeyValue::new("ratio", 0.5f64),
        KeyValue::new("cached", true),
        KeyValue {
            key: "blob".into(),
            value: AnyValue::Bytes(vec![0, 1, 255]),
        },
        KeyValue {
            key: "list".into(),
            value: AnyValue::Array(vec![AnyValue::Int(1), AnyValue::String("two".into())]),
        },
    ];
    s.events = vec![Event {
        time_unix_nano: t0 + MILLI,
        name: "exception".into(),
        attributes: vec![KeyValue::new("exception.type", "Timeout")],
        dropped_attributes_count: 1,
    }];
    s.links = vec![Link {
        trace_id: trace_id(2),
        span_id: span_id(2),
        trace_state: String::new(),
        attributes: vec![KeyValue::new("link", "follows")],
        dropped_attributes_count: 0,
        flags: 0,
    }];
    s.dropped_attributes_count = 2;
    s.dropped_events_count = 3;
    s.dropped_links_count = 4;
    let b = batch(vec![("svc", vec![s.clone()])]);
    put(&*store, b.clone(), name).await;
    let trace = get(&*store, 1, name).await.expect("stored trace");
    assert_eq!(
        spans_of(&trace),
        vec![("svc".to_owned(), s)],
        "[{name}] the span as sent"
    );
    let stored = trace.spans().next().expect("one span");
    assert_eq!(
        stored.resource, &*b.resource_spans[0].resource,
        "[{name}] resource"
    );
    assert_eq!(
        stored.scope, &*b.resource_spans[0].scope_spans[0].scope,
        "[{name}] scope"
    );
}

async fn one_span_meets_all(store: Arc<dyn Subject>, t0: u64, name: &'static str) {
    let fast = span(1, 1, "fast", t0, 10 * MILLI);
    let mut slow = span(1, 2, "slow", t0 + MILLI, 100 * MILLI);
    slow.attributes.push(KeyValue::new("k", "v"));
    put(
        &*store,
        batch(vec![("one", vec![fast]), ("two", vec![slow])]),
        name,
    )
    .await;
    let q = |service: &str, min_ms: u64, tag: bool| SearchQuery {
        service: Some(service.into()),
        min_duration_nanos: Some(min_ms * MILLI),
        tags: if tag {
            vec![("k".into(), "v".into())]
        } else {
            vec![]
        },
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        found(&*store, q("one", 50, false), name).await,
        vec![],
        "[{name}]"
    );
    assert_eq!(
        found(&*store, q("one", 1, true), name).await,
        vec![],
        "[{name}]"
    );
    assert_eq!(
        found(&*store, q("two", 50, true), name).await,
        vec![trace_id(1)],
        "[{name}]"
    );
}

async fn each_condition(store: Arc<dyn Subject>, t0: u64, name: &'static str) {
    let mut server = span(1, 1, "GET /cart", t0, 20 * MILLI);
    server.kind = SpanKind::Server;
    server
        .attributes
        .push(KeyValue::new("http.response.status_code", 500i64));
    server.status.code = StatusCode::Error;
    let mut client = span(2, 2, "GET /cart", t0 + 10 * MILLI, 5 * MILLI);
    client.kind = SpanKind::Client;
    client.events.push(Event {
        time_unix_nano: t0 + 11 * MILLI,
        name: "retry".into(),
        attributes: vec![KeyValue::new("attempt", 2i64)],
        dropped_attributes_count: 0,
    });
    let other = span(3, 3, "other", t0 + 20 * MILLI, 50 * MILLI);
    put(
        &*store,
        batch(vec![("cart", vec![server, client]), ("misc", vec![other])]),
        name,
    )
    .await;
    let base = SearchQuery {
        limit: 10,
        ..Default::default()
    };
    let cases: Vec<(&str, SearchQuery, Vec<u64>)> = vec![
        ("everything", base.clone(), vec![3, 2, 1]),
        (
            "service",
            SearchQuery {
                service: Some("cart".into()),
                ..base.clone()
            },
            vec![2, 1],
        ),
        (
            "operation",
            SearchQuery {
                operation: Some("other".into()),
                ..base.clone()
            },
            vec![3],
        ),
        (
            "kind",
            SearchQuery {
                span_kind: Some(SpanKind::Client),
                ..base.clone()
            },
            vec![2],
        ),
        (
            "span attribute, as text",
            SearchQuery {
                tags: vec![("http.response.status_code".into(), "500".into())],
                ..base.clone()
            },
            vec![1],
        ),
        (
            "resource attribute",
            SearchQuery {
                tags: vec![("host.name".into(), "misc-host".into())],
                ..base.clone()
            },
            vec![3],
        ),
        (
            "event attribute",
            SearchQuery {
                tags: vec![("attempt".into(), "2".into())],
                ..base.clone()
            },
            vec![2],
        ),
        (
            "error=true",
            SearchQuery {
                tags: vec![("error".into(), "true".into())],
                ..base.clone()
            },
            vec![1],
        ),
        (
            "duration bounds are inclusive",
            SearchQuery {
                min_duration_nanos: Some(5 * MILLI),
                max_duration_nanos: Some(20 * MILLI),
                ..base.clone()
            },
            vec![2, 1],
        ),
        (
            "start window is inclusive",
            SearchQuery {
                start_unix_nanos: Some(t0 + 10 * MILLI),
                end_unix_nanos: Some(t0 + 20 * MILLI),
                ..base.clone()
            },
            vec![3, 2],
        ),
        (
            "no match",
            SearchQuery {
                service: Some("nobody".into()),
                ..base.clone()
            },
            vec![],
        ),
    ];
    for (what, query, want) in cases {
        let want: Vec<TraceId> = want.into_iter().map(trace_id).collect();
        assert_eq!(found(&*store, query, name).await, want, "[{name}] {what}");
    }
}

async fn order_and_limit(store: Arc<dyn Subject>, t0: u64, name: &'static str) {
    // Traces 1..=5 start one millisecond apart; 6 and 7 tie with 5.
    let mut spans: Vec<Span> = (1..=5)
        .map(|n| span(n, n, "op", t0 + n * MILLI, MILLI))
        .collect();
    spans.push(span(6, 6, "op", t0 + 5 * MILLI, MILLI));
    spans.push(span(7, 7, "op", t0 + 5 * MILLI, MILLI));
    // Trace 1 also has a later span that does not match.
    spans.push(span(1, 8, "later", t0 + 10 * MILLI, MILLI));
    put(&*store, batch(vec![("svc", spans)]), name).await;
    let q = |limit| SearchQuery {
        operation: Some("op".into()),
        limit,
        ..Default::default()
    };
    let mut tied = vec![trace_id(5), trace_id(6), trace_id(7)];
    tied.sort();
    let mut want = tied.clone();
    want.extend([trace_id(4), trace_id(3), trace_id(2), trace_id(1)]);
    assert_eq!(found(&*store, q(100), name).await, want, "[{name}] order");
    assert_eq!(
        found(&*store, q(4), name).await,
        want[..4].to_vec(),
        "[{name}] limit"
    );
    assert_eq!(found(&*store, q(0), name).await, vec![], "[{name}] limit 0");
}

async fn services_and_operations(store: Arc<dyn Subject>, t0: u64, name: &'static str) {
    let mut a = span(1, 1, "b-op", t0, MILLI);
    a.kind = SpanKind::Server;
    let mut b = span(1, 2, "a-op", t0, MILLI);
    b.kind = SpanKind::Client;
    let mut c = span(1, 3, "a-op", t0, MILLI);
    c.kind = SpanKind::Server;
    let d = span(2, 4, "x", t0, MILLI);
    put(
        &*store,
        batch(vec![("zeta", vec![a, b, c.clone()]), ("alpha", vec![d])]),
        name,
    )
    .await;
    put(&*store, batch(vec![("zeta", vec![c])]), name).await;
    assert_eq!(
        store.services().await.unwrap(),
        vec!["alpha".to_owned(), "zeta".to_owned()],
        "[{name}]"
    );
    let op = |name: &str, kind| Operation {
        name: name.into(),
        kind,
    };
    let mut want = vec![
        op("a-op", SpanKind::Server),
        op("a-op", SpanKind::Client),
        op("b-op", SpanKind::Server),
    ];
    want.sort();
    assert_eq!(store.operations("zeta").await.unwrap(), want, "[{name}]");
    assert_eq!(
        store.operations("nobody").await.unwrap(),
        vec![],
        "[{name}]"
    );
}
