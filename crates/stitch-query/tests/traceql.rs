//! TraceQL: parsing (and precise refusals), evaluation on a trace built for it, structural
//! operators against their definitions on random trees, and search over a reader.

use std::sync::Arc;

use proptest::prelude::*;
use stitch_model::{
    Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind,
    Status, StatusCode, Trace, TraceId,
};
use stitch_query::traceql::{QueryError, TraceQl, Value};
use stitch_query::{MemoryStore, SpanSink};
use stitch_testkit::{MS, T0};

fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: vec![
            KeyValue::new("service.name", service),
            KeyValue::new("k8s.pod.name", format!("{service}-0")),
        ],
        ..Default::default()
    })
}

fn scope() -> Arc<Scope> {
    Arc::new(Scope {
        name: "io.opentelemetry.http".into(),
        version: "1.2".into(),
        attributes: vec![KeyValue::new("lib", "otel")],
        ..Default::default()
    })
}

struct S {
    id: u64,
    parent: Option<u64>,
    service: &'static str,
    name: &'static str,
    kind: SpanKind,
    start_ms: u64,
    dur_ms: u64,
    attrs: Vec<KeyValue>,
    error: bool,
}

fn s(
    id: u64,
    parent: Option<u64>,
    service: &'static str,
    name: &'static str,
    start_ms: u64,
    dur_ms: u64,
) -> S {
    S {
        id,
        parent,
        service,
        name,
        kind: SpanKind::Internal,
        start_ms,
        dur_ms,
        attrs: Vec::new(),
        error: false,
    }
}

fn trace_of(n: u64, specs: Vec<S>) -> Trace {
    let tid = TraceId::from_halves(0xfeed, n);
    let mut trace = Trace::new(tid);
    for sp in specs {
        let span = Span {
            trace_id: tid,
            span_id: SpanId::from_u64(sp.id),
            parent_span_id: sp.parent.map(SpanId::from_u64),
            name: sp.name.into(),
            kind: sp.kind,
            start_time_unix_nano: T0 + n * 1000 * MS + sp.start_ms * MS,
            end_time_unix_nano: T0 + n * 1000 * MS + (sp.start_ms + sp.dur_ms) * MS,
            attributes: sp.attrs,
            status: Status {
                code: if sp.error {
                    StatusCode::Error
                } else {
                    StatusCode::Unset
                },
                message: if sp.error {
                    "boom".into()
                } else {
                    String::new()
                },
            },
            ..Default::default()
        };
        trace.extend(vec![ResourceSpans {
            resource: resource(sp.service),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: vec![span],
            }],
        }]);
    }
    trace
}

/// checkout (1, server) ─┬─ GET /cart (2, client) ── cart handler (3, server, cart)
///                       ├─ charge (4, client, http.status_code 500, error) ── charge (5, payments, error)
///                       │                                                    └─ SELECT (6, db, 1200 ms)
///                       └─ notify (7) with an event "retry" {attempt: 2} and a link
fn shop() -> Trace {
    let mut root = s(1, None, "frontend", "checkout", 0, 2000);
    root.kind = SpanKind::Server;
    let mut cart = s(2, Some(1), "frontend", "GET /cart", 10, 100);
    cart.kind = SpanKind::Client;
    cart.attrs.push(KeyValue::new("http.request.method", "GET"));
    let mut handler = s(3, Some(2), "cart", "cart handler", 15, 80);
    handler.kind = SpanKind::Server;
    let mut charge = s(4, Some(1), "frontend", "charge", 120, 1500);
    charge.kind = SpanKind::Client;
    charge.attrs.push(KeyValue::new("http.status_code", 500i64));
    charge.error = true;
    let mut pay = s(5, Some(4), "payments", "charge", 125, 1450);
    pay.kind = SpanKind::Server;
    pay.error = true;
    pay.attrs.push(KeyValue::new("amount", 12.5f64));
    let mut db = s(6, Some(5), "db", "SELECT", 130, 1200);
    db.kind = SpanKind::Client;
    db.attrs
        .push(KeyValue::new("db.statement", "SELECT * FROM cards"));
    let notify = s(7, Some(1), "frontend", "notify", 1700, 50);
    let mut t = trace_of(1, vec![root, cart, handler, charge, pay, db, notify]);
    // Events and links on `notify`.
    for rs in &mut t.resource_spans {
        for ss in &mut rs.scope_spans {
            for sp in &mut ss.spans {
                if sp.span_id == SpanId::from_u64(7) {
                    sp.events.push(Event {
                        time_unix_nano: sp.start_time_unix_nano + 5 * MS,
                        name: "retry".into(),
                        attributes: vec![KeyValue::new("attempt", 2i64)],
                        dropped_attributes_count: 0,
                    });
                    sp.links.push(Link {
                        trace_id: TraceId::from_halves(0xabc, 1),
                        span_id: SpanId::from_u64(99),
                        trace_state: String::new(),
                        attributes: vec![KeyValue::new("reason", "batch")],
                        dropped_attributes_count: 0,
                        flags: 0,
                    });
                }
            }
        }
    }
    t
}

/// The span ids of the first spanset of a match, sorted.
fn ids(query: &str, trace: &Trace) -> Vec<u64> {
    let q = TraceQl::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    match q.evaluate(trace, 100) {
        None => vec![],
        Some(m) => {
            let mut all: Vec<u64> = m
                .spansets
                .iter()
                .flat_map(|s| s.spans.iter().map(|sp| u64::from_be_bytes(sp.span_id.0)))
                .collect();
            all.sort();
            all.dedup();
            all
        }
    }
}

#[test]
fn filters_read_intrinsics_and_attributes() {
    let t = shop();
    let cases: &[(&str, &[u64])] = &[
        ("{ }", &[1, 2, 3, 4, 5, 6, 7]),
        (r#"{ name = "charge" }"#, &[4, 5]),
        (
            r#"{ span:name = "charge" && resource.service.name = "payments" }"#,
            &[5],
        ),
        ("{ status = error }", &[4, 5]),
        ("{ status != error }", &[1, 2, 3, 6, 7]),
        (r#"{ statusMessage = "boom" }"#, &[4, 5]),
        ("{ kind = server }", &[1, 3, 5]),
        ("{ span:kind = client && duration > 1s }", &[4, 6]),
        ("{ duration >= 1500ms }", &[1, 4]),
        ("{ duration < 60ms }", &[7]),
        ("{ span.http.status_code >= 500 }", &[4]),
        ("{ .http.status_code = 500 }", &[4]),
        (r#"{ .service.name = "db" }"#, &[6]),
        ("{ span.http.status_code = nil }", &[1, 2, 3, 5, 6, 7]),
        ("{ span.http.status_code != nil }", &[4]),
        ("{ span.amount > 10 && span.amount < 13.0 }", &[5]),
        (r#"{ span.db.statement =~ "SELECT.*cards" }"#, &[6]),
        (r#"{ span.db.statement =~ "cards" }"#, &[]),
        (r#"{ name !~ "c.*" }"#, &[2, 6, 7]),
        (r#"{ resource.k8s.pod.name = "cart-0" }"#, &[3]),
        (
            r#"{ instrumentation:name = "io.opentelemetry.http" && instrumentation.lib = "otel" }"#,
            &[1, 2, 3, 4, 5, 6, 7],
        ),
        (r#"{ event:name = "retry" && event.attempt = 2 }"#, &[7]),
        ("{ event:timeSinceStart = 5ms }", &[7]),
        (
            r#"{ link.reason = "batch" && link:spanID = "0000000000000063" }"#,
            &[7],
        ),
        (
            r#"{ trace:rootService = "frontend" && trace:rootName = "checkout" && name = "SELECT" }"#,
            &[6],
        ),
        (
            r#"{ rootServiceName = "frontend" && traceDuration = 2s && kind = server && name = "checkout" }"#,
            &[1],
        ),
        ("{ span:id = \"0000000000000003\" }", &[3]),
        ("{ span:parentID = \"0000000000000005\" }", &[6]),
        ("{ duration - 1s > 400ms }", &[1, 4, 5]),
        ("{ duration * 2 >= 3s }", &[1, 4]),
        ("{ !(kind = server) && status = error }", &[4]),
        (
            "{ (kind = server || kind = client) && status = error }",
            &[4, 5],
        ),
        ("{ span.http.status_code != \"500\" }", &[]),
    ];
    for (q, want) in cases {
        assert_eq!(ids(q, &t), *want, "{q}");
    }
}

/// The nested-set numbers of `shop()`, a depth-first walk with children by start time:
/// checkout 1..14, GET /cart 2..5, cart handler 3..4, charge 6..11, payments 7..10, SELECT
/// 8..9, notify 12..13.
#[test]
fn nested_set_intrinsics_number_the_tree_depth_first() {
    let t = shop();
    assert_eq!(ids("{ nestedSetParent < 0 }", &t), vec![1]);
    assert_eq!(ids("{ nestedSetParent = 1 }", &t), vec![2, 4, 7]);
    assert_eq!(
        ids("{ nestedSetLeft = 7 && nestedSetRight = 10 }", &t),
        vec![5]
    );
    // Descendants of charge (6..11) lie inside its interval.
    assert_eq!(
        ids("{ nestedSetLeft > 6 && nestedSetRight < 11 }", &t),
        vec![5, 6]
    );
    assert_eq!(ids("{ nestedSetParent = 6 }", &t), vec![5]);
    assert_eq!(ids("{ span:childCount = 0 }", &t), vec![3, 6, 7]);
    assert_eq!(ids("{ span:childCount > 2 }", &t), vec![1]);
    // What Grafana's Traces Drilldown asks first: root spans.
    assert_eq!(
        ids("{ nestedSetParent < 0 && true && status = error }", &t),
        Vec::<u64>::new()
    );
    assert_eq!(ids("{ nestedSetParent<0 && true }", &t), vec![1]);
}

#[test]
fn structural_operators_relate_spans_as_defined() {
    let t = shop();
    let cases: &[(&str, &[u64])] = &[
        (r#"{ name = "checkout" } > { }"#, &[2, 4, 7]),
        (r#"{ name = "checkout" } >> { kind = server }"#, &[3, 5]),
        (r#"{ name = "SELECT" } < { }"#, &[5]),
        (r#"{ name = "SELECT" } << { }"#, &[1, 4, 5]),
        (r#"{ name = "GET /cart" } ~ { }"#, &[4, 7]),
        (r#"{ name = "checkout" } !> { kind = client }"#, &[6]),
        (r#"{ status = error } !>> { }"#, &[1, 2, 3, 4, 7]),
        (r#"{ kind = server } !< { }"#, &[1, 3, 5, 6, 7]),
        (r#"{ name = "SELECT" } !<< { }"#, &[2, 3, 6, 7]),
        (r#"{ name = "notify" } !~ { }"#, &[1, 3, 5, 6, 7]),
        (r#"{ kind = server } &> { status = error }"#, &[1, 4]),
        (r#"{ name = "SELECT" } &< { }"#, &[5, 6]),
        (
            r#"{ resource.service.name = "frontend" } &>> { resource.service.name = "db" }"#,
            &[1, 4, 6],
        ),
        (r#"{ name = "SELECT" } &<< { kind = server }"#, &[1, 5, 6]),
        (r#"{ name = "notify" } &~ { kind = client }"#, &[2, 4, 7]),
        (r#"{ name = "checkout" } && { name = "SELECT" }"#, &[1, 6]),
        (r#"{ name = "checkout" } && { name = "nope" }"#, &[]),
        (r#"{ name = "nope" } || { name = "SELECT" }"#, &[6]),
        // Structural operators bind tighter than `&&`.
        (
            r#"{ name = "notify" } && { kind = server } > { status = error }"#,
            &[4, 7],
        ),
        (r#"({ status = error } > { }) >> { name = "SELECT" }"#, &[6]),
        (
            r#"{ span.http.status_code >= 500 } >> { resource.service.name = "db" }"#,
            &[6],
        ),
    ];
    for (q, want) in cases {
        assert_eq!(ids(q, &t), *want, "{q}");
    }
}

#[test]
fn pipelines_count_aggregate_group_and_select() {
    let t = shop();
    assert_eq!(ids("{ status = error } | count() > 1", &t), vec![4, 5]);
    assert_eq!(
        ids("{ status = error } | count() > 2", &t),
        Vec::<u64>::new()
    );
    // Servers: 2000, 80 and 1450 ms.
    assert_eq!(
        ids("{ kind = server } | avg(duration) > 1s", &t),
        vec![1, 3, 5]
    );
    assert_eq!(
        ids("{ kind = server } | avg(duration) > 1200ms", &t),
        Vec::<u64>::new()
    );
    assert_eq!(
        ids("{ kind = server } | max(duration) >= 2s", &t),
        vec![1, 3, 5]
    );
    assert_eq!(
        ids("{ kind = client } | sum(duration) = 2800ms", &t),
        vec![2, 4, 6]
    );
    assert_eq!(
        ids("{ } | min(span.amount) = 12.5", &t),
        (1..=7).collect::<Vec<_>>()
    );
    assert_eq!(
        ids("{ } | { status = error } | count() = 2", &t),
        vec![4, 5]
    );
    assert_eq!(
        ids("{ } | (count() + 1) * 2 = 16", &t),
        (1..=7).collect::<Vec<_>>()
    );

    let q = TraceQl::parse("{ } | by(resource.service.name) | count() > 1").unwrap();
    let m = q.evaluate(&t, 2).expect("frontend has four spans");
    assert_eq!(m.spansets.len(), 1);
    assert_eq!(m.spansets[0].matched, 4);
    assert_eq!(m.spansets[0].spans.len(), 2, "at most 2 spans per spanset");
    assert_eq!(
        m.spansets[0].by,
        vec![("resource.service.name".to_owned(), "frontend".to_owned())]
    );
    let q = TraceQl::parse("{ } | by(kind) | coalesce()").unwrap();
    assert_eq!(q.evaluate(&t, 10).unwrap().spansets.len(), 1);

    let q = TraceQl::parse(
        "{ span.http.status_code >= 500 } | select(span.http.request.method, duration)",
    )
    .unwrap();
    let m = q.evaluate(&t, 10).unwrap();
    let span = &m.spansets[0].spans[0];
    assert_eq!(span.name, "charge");
    assert_eq!(span.service, "frontend");
    assert_eq!(
        span.attributes,
        vec![
            ("span.http.status_code".to_owned(), Value::Int(500)),
            ("duration".to_owned(), Value::Duration(1_500_000_000)),
        ]
    );
    assert_eq!(m.root_service.as_deref(), Some("frontend"));
    assert_eq!(m.root_name.as_deref(), Some("checkout"));
    assert_eq!(m.duration_nanos, 2000 * MS);
}

fn refused(query: &str) -> QueryError {
    match TraceQl::parse(query) {
        Ok(q) => panic!("{query} was accepted as {}", q.to_text()),
        Err(e) => e,
    }
}

#[test]
fn bad_queries_are_refused_with_the_position_and_what_was_expected() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "the query is empty"),
        (
            "{ name = }",
            9,
            "expected a value, an attribute or an intrinsic such as `duration`, found `}`",
        ),
        (
            "{ name = \"a\" ",
            13,
            "expected `}` or an operator, found the end of the query",
        ),
        (
            "{ status = 500 }",
            9,
            "cannot compare a status (ok, error, unset) with a number",
        ),
        (
            "{ duration > \"slow\" }",
            11,
            "cannot compare a duration with a string",
        ),
        ("{ kind > server }", 7, "cannot order a span kind"),
        ("{ name =~ \"(\" }", 10, "invalid regular expression"),
        (
            "{ name =~ span.x }",
            10,
            "needs a regular expression in quotes",
        ),
        ("{ 1 + 2 }", 2, "a spanset filter needs a condition"),
        (
            "{ foo = 1 }",
            2,
            "unknown name `foo`: an attribute is written `span.foo`",
        ),
        ("{ } | count()", 13, "expected a comparison such as `> 2`"),
        (
            "{ } | count() > 1s",
            14,
            "cannot compare a number with a duration",
        ),
        (
            "{ } | avg(name) > 1",
            10,
            "`avg` needs a number or a duration, found a string",
        ),
        ("{ } | 1 > 2", 6, "needs an aggregate"),
        ("{ } | frobnicate()", 6, "found `frobnicate`"),
        (
            "{ } }",
            4,
            "expected `|`, a spanset operator or the end of the query, found `}`",
        ),
        ("{ duration > 5d }", 14, "unknown duration unit"),
        ("name = \"x\"", 0, "expected a spanset filter"),
        (
            "{ status = error && 3 }",
            17,
            "`&&`: joins conditions, found a number",
        ),
        ("{ .a < nil }", 5, "only `=` and `!=` compare with nil"),
        (
            "{ } with(most_recent=maybe)",
            21,
            "expected `true` or `false`",
        ),
    ];
    for (q, pos, message) in cases {
        let e = refused(q);
        assert!(
            e.message.contains(message),
            "{q}: message {:?} lacks {message:?}",
            e.message
        );
        assert_eq!(e.position, *pos, "{q}: {e}");
    }
    assert_eq!(
        refused("{ name = }").to_string(),
        "at character 10: expected a value, an attribute or an intrinsic such as `duration`, found `}`"
    );
}

#[test]
fn queries_are_written_back_in_a_form_that_parses_the_same() {
    for q in [
        r#"{ span.http.status_code >= 500 } >> { resource.service.name = "db" }"#,
        r#"{ .a = 1 && (.b = 2 || !(.c = 3)) } | count() > 2 | by(name, kind) | select(span."a b")"#,
        "({ } | avg(duration) > 10ms) &>> { status = error } | coalesce()",
        "{ duration > 1.5s && trace:duration < 2m && span.x = -3 } with(most_recent=true)",
    ] {
        let once = TraceQl::parse(q).unwrap().to_text();
        let twice = TraceQl::parse(&once).unwrap().to_text();
        assert_eq!(once, twice, "{q}");
    }
}

// ---------------------------------------------------------------------------------------------
// Structural operators on random trees, against their definitions.

/// A random tree of `parents.len()` spans: span i's parent is `parents[i]` (an earlier span)
/// or none; its name is one of a, b, c.
fn tree(parents: &[Option<usize>], names: &[u8]) -> Trace {
    let specs = parents
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (p, n))| {
            s(
                i as u64 + 1,
                p.map(|p| p as u64 + 1),
                "svc",
                ["a", "b", "c"][*n as usize % 3],
                i as u64,
                1,
            )
        })
        .collect();
    trace_of(7, specs)
}

fn expected(op: &str, parents: &[Option<usize>], names: &[u8], l: u8, r: u8) -> Vec<u64> {
    let n = parents.len();
    let name = |i: usize| names[i] % 3;
    let in_l = |i: usize| name(i) == l;
    let in_r = |i: usize| name(i) == r;
    let is_ancestor = |a: usize, mut d: usize| {
        while let Some(p) = parents[d] {
            if p == a {
                return true;
            }
            d = p;
        }
        false
    };
    let child = |p: usize, c: usize| parents[c] == Some(p);
    let sibling = |x: usize, y: usize| x != y && parents[x].is_some() && parents[x] == parents[y];
    let exists = |f: &dyn Fn(usize) -> bool| (0..n).any(f);
    let pick = |f: &dyn Fn(usize) -> bool| -> Vec<u64> {
        (0..n).filter(|&i| f(i)).map(|i| i as u64 + 1).collect()
    };
    match op {
        ">" => pick(&|b| in_r(b) && exists(&|a| in_l(a) && child(a, b))),
        "<" => pick(&|b| in_r(b) && exists(&|a| in_l(a) && child(b, a))),
        ">>" => pick(&|b| in_r(b) && exists(&|a| in_l(a) && is_ancestor(a, b))),
        "<<" => pick(&|b| in_r(b) && exists(&|a| in_l(a) && is_ancestor(b, a))),
        "~" => pick(&|b| in_r(b) && exists(&|a| in_l(a) && sibling(a, b))),
        "!>" => pick(&|b| in_r(b) && !exists(&|a| in_l(a) && child(a, b))),
        "!<" => pick(&|b| in_r(b) && !exists(&|a| in_l(a) && child(b, a))),
        "!>>" => pick(&|b| in_r(b) && !exists(&|a| in_l(a) && is_ancestor(a, b))),
        "!<<" => pick(&|b| in_r(b) && !exists(&|a| in_l(a) && is_ancestor(b, a))),
        "!~" => pick(&|b| in_r(b) && !exists(&|a| in_l(a) && sibling(a, b))),
        "&>" => pick(&|x| {
            (in_r(x) && exists(&|a| in_l(a) && child(a, x)))
                || (in_l(x) && exists(&|b| in_r(b) && child(x, b)))
        }),
        "&<" => pick(&|x| {
            (in_r(x) && exists(&|a| in_l(a) && child(x, a)))
                || (in_l(x) && exists(&|b| in_r(b) && child(b, x)))
        }),
        "&>>" => pick(&|x| {
            (in_r(x) && exists(&|a| in_l(a) && is_ancestor(a, x)))
                || (in_l(x) && exists(&|b| in_r(b) && is_ancestor(x, b)))
        }),
        "&<<" => pick(&|x| {
            (in_r(x) && exists(&|a| in_l(a) && is_ancestor(x, a)))
                || (in_l(x) && exists(&|b| in_r(b) && is_ancestor(b, x)))
        }),
        "&~" => pick(&|x| {
            (in_r(x) && exists(&|a| in_l(a) && sibling(a, x)))
                || (in_l(x) && exists(&|b| in_r(b) && sibling(x, b)))
        }),
        "&&" => {
            if exists(&in_l) && exists(&in_r) {
                pick(&|x| in_l(x) || in_r(x))
            } else {
                vec![]
            }
        }
        "||" => pick(&|x| in_l(x) || in_r(x)),
        _ => unreachable!(),
    }
}

const OPS: [&str; 17] = [
    ">", "<", ">>", "<<", "~", "!>", "!<", "!>>", "!<<", "!~", "&>", "&<", "&>>", "&<<", "&~",
    "&&", "||",
];

fn random_tree() -> impl Strategy<Value = (Vec<Option<usize>>, Vec<u8>)> {
    (1..12usize).prop_flat_map(|n| {
        let parents = (0..n)
            .map(|i| {
                if i == 0 {
                    Just(None).boxed()
                } else {
                    proptest::option::weighted(0.9, 0..i).boxed()
                }
            })
            .collect::<Vec<_>>();
        (parents, proptest::collection::vec(0..3u8, n))
    })
}

proptest! {
    #[test]
    fn every_structural_operator_matches_its_definition(
        (parents, names) in random_tree(),
        op in proptest::sample::select(OPS.to_vec()),
        l in 0..3u8,
        r in 0..3u8,
    ) {
        let t = tree(&parents, &names);
        let n = ["a", "b", "c"];
        let q = format!("{{ name = \"{}\" }} {op} {{ name = \"{}\" }}", n[l as usize], n[r as usize]);
        prop_assert_eq!(ids(&q, &t), expected(op, &parents, &names, l, r), "{}", q);
    }
}

#[tokio::test]
async fn search_returns_matching_traces_newest_first_with_their_spans() {
    let store = MemoryStore::new();
    for n in 1..=5u64 {
        let mut root = s(1, None, "api", "GET /", 0, 10 * n);
        root.error = n % 2 == 0;
        let child = s(2, Some(1), "db", "query", 1, 5);
        let t = trace_of(n, vec![root, child]);
        store
            .append(
                stitch_model::Batch {
                    resource_spans: t.resource_spans,
                },
                None,
            )
            .await
            .unwrap();
    }
    let q = TraceQl::parse("{ status = error } > { resource.service.name = \"db\" }").unwrap();
    let window = (T0, T0 + 10 * 1000 * MS);
    let found = stitch_query::traceql::search(&store, &q, window.0, window.1, 10, 3)
        .await
        .unwrap();
    let got: Vec<TraceId> = found.traces.iter().map(|t| t.trace_id).collect();
    assert_eq!(
        got,
        vec![
            TraceId::from_halves(0xfeed, 4),
            TraceId::from_halves(0xfeed, 2)
        ]
    );
    // Only the traces with an error span were candidates (the plan of the query).
    assert_eq!(found.inspected_traces, 2);
    assert!(!found.truncated);
    assert_eq!(found.traces[0].spansets[0].spans[0].name, "query");
    let limited = stitch_query::traceql::search(&store, &q, window.0, window.1, 1, 3)
        .await
        .unwrap();
    assert_eq!(limited.traces.len(), 1);
    // An empty window finds nothing.
    let none = stitch_query::traceql::search(&store, &q, 1, 2, 10, 3)
        .await
        .unwrap();
    assert_eq!((none.traces.len(), none.inspected_traces), (0, 0));
}
