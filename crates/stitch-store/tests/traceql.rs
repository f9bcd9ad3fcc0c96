//! TraceQL over the store answers exactly what evaluating the query on every trace gives:
//! random traces (some in blocks, read through the row-group index, some in memory) and random
//! queries, against a brute-force evaluation over the in-memory store's traces.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use stitch_model::{
    AnyValue, Batch, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanKind, Status,
    StatusCode, TraceId,
};
use stitch_query::traceql::{self, TraceMatch, TraceQl};
use stitch_query::{MemoryStore, SpanSink, TraceReader};
use stitch_store::Store;

const SERVICES: [&str; 3] = ["api", "cart", "db"];
const NAMES: [&str; 3] = ["GET /", "query", "publish"];

#[derive(Clone, Debug)]
struct SpanSpec {
    parent: Option<prop::sample::Index>,
    service: usize,
    name: usize,
    kind: i32,
    millis: u64,
    error: bool,
    user: Option<u8>,
    code: Option<u16>,
}

fn span_spec() -> impl Strategy<Value = SpanSpec> {
    (
        proptest::option::weighted(0.85, any::<prop::sample::Index>()),
        0..SERVICES.len(),
        0..NAMES.len(),
        1..=3i32,
        1..2000u64,
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.3, 0..4u8),
        proptest::option::of(prop_oneof![Just(200u16), Just(404), Just(500), Just(503)]),
    )
        .prop_map(
            |(parent, service, name, kind, millis, error, user, code)| SpanSpec {
                parent,
                service,
                name,
                kind,
                millis,
                error,
                user,
                code,
            },
        )
}

fn traces() -> impl Strategy<Value = Vec<Vec<SpanSpec>>> {
    proptest::collection::vec(proptest::collection::vec(span_spec(), 1..7), 1..14)
}

fn build(traces: &[Vec<SpanSpec>], t0: u64) -> Vec<Batch> {
    let resources: Vec<Arc<Resource>> = SERVICES.iter().map(|s| resource(s)).collect();
    let mut next_span = 0u64;
    traces
        .iter()
        .enumerate()
        .map(|(t, specs)| {
            let id = trace_id(t as u64 + 1);
            let mut ids = Vec::new();
            let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
            for (i, s) in specs.iter().enumerate() {
                next_span += 1;
                let sid = span_id(next_span);
                let start = t0 + (t as u64) * SECOND + (i as u64) * MILLI;
                let mut sp = span(id, sid, NAMES[s.name], start, s.millis * MILLI);
                sp.kind = SpanKind::from_i32(s.kind).unwrap();
                sp.parent_span_id = match (&s.parent, ids.is_empty()) {
                    (Some(p), false) => Some(*p.get(&ids)),
                    _ => None,
                };
                if s.error {
                    sp.status = Status {
                        code: StatusCode::Error,
                        message: "failed".into(),
                    };
                }
                if let Some(u) = s.user {
                    sp.attributes.push(KeyValue::new("user", format!("u{u}")));
                }
                if let Some(c) = s.code {
                    // `http.status_code` has a dedicated column in blocks; 503 as text and a
                    // second 404 are values the column does not take, so they stay in the list.
                    let value = match c {
                        503 => AnyValue::String("503".into()),
                        c => AnyValue::Int(i64::from(c)),
                    };
                    sp.attributes.push(KeyValue::new("http.status_code", value));
                    if c == 404 {
                        sp.attributes
                            .push(KeyValue::new("http.status_code", 404i64));
                    }
                }
                ids.push(sid);
                by_service[s.service].push(sp);
            }
            Batch {
                resource_spans: by_service
                    .into_iter()
                    .enumerate()
                    .filter(|(_, spans)| !spans.is_empty())
                    .map(|(i, spans)| ResourceSpans {
                        resource: resources[i].clone(),
                        scope_spans: vec![ScopeSpans {
                            scope: Arc::new(Scope::default()),
                            spans,
                        }],
                    })
                    .collect(),
            }
        })
        .collect()
}

fn query() -> impl Strategy<Value = String> {
    let service = proptest::sample::select(SERVICES.to_vec());
    let name = proptest::sample::select(NAMES.to_vec());
    let user = 0..5u8;
    let code = prop_oneof![Just(200u16), Just(404), Just(500), Just(503)];
    (service, name, user, code, 0..2000u64, 0..4usize, 0..12usize).prop_map(
        |(s, n, u, c, ms, k, which)| match which {
            0 => format!(r#"{{ resource.service.name = "{s}" }}"#),
            1 => format!(r#"{{ name = "{n}" && duration > {ms}ms }}"#),
            2 => format!(r#"{{ span.user = "u{u}" }}"#),
            3 => format!("{{ span.http.status_code = {c} }}"),
            4 => format!(r#"{{ status = error }} >> {{ resource.service.name = "{s}" }}"#),
            5 => format!(r#"{{ name = "{n}" }} && {{ .user = "u{u}" }}"#),
            6 => format!(r#"{{ .service.name = "{s}" }} | count() > {k}"#),
            7 => format!("{{ span.http.status_code >= {c} }} ~ {{ }}"),
            8 => "{ kind = server } !> { status = error }".to_owned(),
            9 => "{ } | by(resource.service.name) | count() > 1".to_owned(),
            10 => format!(r#"{{ name = "{n}" }} || {{ span.user = "u{u}" }}"#),
            _ => format!(
                r#"{{ kind = client && resource.service.name = "{s}" }} < {{ duration < {ms}ms }}"#
            ),
        },
    )
}

/// The matches of `q` on every trace of `memory`, as the evaluation alone gives them.
async fn brute_force(memory: &MemoryStore, q: &TraceQl) -> BTreeMap<TraceId, TraceMatch> {
    let everything = stitch_query::SearchQuery {
        limit: usize::MAX,
        ..Default::default()
    };
    memory
        .search(&everything)
        .await
        .unwrap()
        .iter()
        .filter_map(|t| q.evaluate(t, 1000))
        .map(|m| (m.trace_id, m))
        .collect()
}

async fn through(
    reader: &dyn TraceReader,
    q: &TraceQl,
    window: (u64, u64),
) -> BTreeMap<TraceId, TraceMatch> {
    traceql::search(reader, q, window.0, window.1, 1000, 1000)
        .await
        .unwrap()
        .traces
        .into_iter()
        .map(|m| (m.trace_id, m))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_store_answers_traceql_as_evaluating_every_trace_does(
        specs in traces(),
        queries in proptest::collection::vec(query(), 1..8),
        flushed in 0..15usize,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(config(dir.path())).await.unwrap();
            let memory = MemoryStore::new();
            let t0 = now_nanos() - 3600 * SECOND;
            let batches = build(&specs, t0);
            for (i, b) in batches.iter().enumerate() {
                append(&store, b).await;
                memory.append(b.clone(), None).await.unwrap();
                // The first traces go into blocks (with their row-group index), the rest stay
                // in memory.
                if i + 1 == flushed.min(batches.len()) {
                    store.flush().await.unwrap();
                }
            }
            let window = (t0 - SECOND, t0 + 60 * SECOND);
            for text in &queries {
                let q = TraceQl::parse(text).unwrap();
                let want = brute_force(&memory, &q).await;
                let got = through(&store, &q, window).await;
                assert_eq!(got, want, "{text} on the store");
                let mem = through(&memory, &q, window).await;
                assert_eq!(mem, want, "{text} on the in-memory store");
            }
        });
    }
}
