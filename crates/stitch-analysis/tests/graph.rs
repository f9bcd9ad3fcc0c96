mod across;

use across::{MS, S, SEC, T0, assemble};
use stitch_analysis::{DependencyGraph, GraphOptions, TimeWindow, TransitiveDependency};
use stitch_model::{SpanKind, Trace, TraceId};

/// `n` requests: frontend → api → users, api → orders → postgresql (a database that reports
/// no spans). Every 4th call to users fails. One extra trace where a batch job's internal span
/// is the direct parent of api's server span (no client span).
fn traffic(n: u64) -> Vec<Trace> {
    let mut spans = Vec::new();
    for i in 0..n {
        let t = TraceId::from_halves(1, i + 1);
        let b = T0 + i * 100 * MS;
        let ms = |x: u64| b + x * MS;
        spans.push(S::new(
            "frontend",
            t,
            1,
            None,
            "GET /",
            SpanKind::Server,
            b,
            ms(60),
        ));
        spans.push(S::new(
            "frontend",
            t,
            2,
            Some(1),
            "GET",
            SpanKind::Client,
            ms(1),
            ms(59),
        ));
        spans.push(S::new(
            "api",
            t,
            3,
            Some(2),
            "GET /api",
            SpanKind::Server,
            ms(2),
            ms(58),
        ));
        spans.push(S::new(
            "api",
            t,
            4,
            Some(3),
            "GET",
            SpanKind::Client,
            ms(3),
            ms(23),
        ));
        let mut users = S::new(
            "users",
            t,
            5,
            Some(4),
            "GET /u",
            SpanKind::Server,
            ms(4),
            ms(22),
        );
        if i % 4 == 0 {
            users = users.error();
        }
        spans.push(users);
        spans.push(S::new(
            "api",
            t,
            6,
            Some(3),
            "POST",
            SpanKind::Client,
            ms(24),
            ms(57),
        ));
        spans.push(S::new(
            "orders",
            t,
            7,
            Some(6),
            "POST /o",
            SpanKind::Server,
            ms(25),
            ms(56),
        ));
        spans.push(
            S::new(
                "orders",
                t,
                8,
                Some(7),
                "INSERT",
                SpanKind::Client,
                ms(30),
                ms(40),
            )
            .attr("db.system", "postgresql")
            .attr("server.address", "10.0.0.5:5432"),
        );
    }
    let t = TraceId::from_halves(2, 1);
    spans.push(S::new(
        "batch",
        t,
        1,
        None,
        "nightly",
        SpanKind::Internal,
        T0,
        T0 + SEC,
    ));
    spans.push(S::new(
        "api",
        t,
        2,
        Some(1),
        "GET /api",
        SpanKind::Server,
        T0 + MS,
        T0 + 9 * MS,
    ));
    // The batch job also calls users, whose server span is missing (lost context, sampled away):
    // the host name still says which service it called.
    spans.push(
        S::new(
            "batch",
            t,
            3,
            Some(1),
            "GET",
            SpanKind::Client,
            T0 + 10 * MS,
            T0 + 20 * MS,
        )
        .http_client("GET", "users.default.svc.cluster.local", "/u"),
    );
    assemble(spans)
}

fn dep(service: &str, depth: usize, via: &str) -> TransitiveDependency {
    TransitiveDependency {
        service: service.to_owned(),
        depth,
        via: via.to_owned(),
    }
}

#[test]
fn the_dependency_graph_counts_calls_errors_and_latency_per_edge() {
    let mut graph = DependencyGraph::default();
    for t in &traffic(20) {
        graph.add_trace(t);
    }
    let snap = graph.snapshot_all();
    let edges: Vec<(&str, &str, f64, f64, bool)> = snap
        .edges
        .iter()
        .map(|e| {
            (
                e.parent.as_str(),
                e.child.as_str(),
                e.call_count,
                e.error_count,
                e.inferred_child,
            )
        })
        .collect();
    assert_eq!(
        edges,
        vec![
            ("api", "orders", 20.0, 0.0, false),
            ("api", "users", 20.0, 5.0, false),
            ("batch", "api", 1.0, 0.0, false),
            ("batch", "users", 1.0, 0.0, false),
            ("frontend", "api", 20.0, 0.0, false),
            ("orders", "postgresql", 20.0, 0.0, true),
        ]
    );
    // Latency is what the caller waited: the client span's 20 ms for api → users.
    let users = snap
        .edges
        .iter()
        .find(|e| e.parent == "api" && e.child == "users")
        .unwrap();
    assert_eq!(users.p50_nanos, 20 * MS);
    assert_eq!(users.error_rate, 0.25);
    // Without a client span, the callee's duration stands in.
    let batch = snap.edges.iter().find(|e| e.parent == "batch").unwrap();
    assert_eq!(batch.p99_nanos, 8 * MS);

    let inferred: Vec<&str> = snap
        .services
        .iter()
        .filter(|s| s.inferred)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(inferred, vec!["postgresql"]);
}

#[test]
fn jaeger_dependencies_are_derived_from_the_snapshot() {
    let mut graph = DependencyGraph::default();
    for t in &traffic(3) {
        graph.add_trace(t);
    }
    let links = graph.snapshot_all().jaeger_dependencies();
    let json = serde_json::to_value(&links).unwrap();
    assert_eq!(
        json[0],
        serde_json::json!({"parent": "api", "child": "orders", "callCount": 3})
    );
    assert_eq!(links.len(), 6);
}

#[test]
fn transitive_dependencies_follow_calls_breadth_first() {
    let mut graph = DependencyGraph::default();
    for t in &traffic(4) {
        graph.add_trace(t);
    }
    assert_eq!(
        graph.transitive_dependencies("frontend"),
        vec![
            dep("api", 1, "frontend"),
            dep("orders", 2, "api"),
            dep("users", 2, "api"),
            dep("postgresql", 3, "orders"),
        ]
    );
    assert_eq!(graph.transitive_dependencies("users"), vec![]);
    assert_eq!(
        graph.snapshot_all().transitive_dependents("postgresql"),
        vec![
            dep("orders", 1, "postgresql"),
            dep("api", 2, "orders"),
            dep("batch", 3, "api"),
            dep("frontend", 3, "api"),
        ]
    );
}

#[test]
fn the_graph_grows_trace_by_trace_and_answers_per_window() {
    let traces = traffic(20);
    let mut graph = DependencyGraph::new(GraphOptions {
        resolution_nanos: SEC,
        ..Default::default()
    });
    graph.add_trace(&traces[0]);
    assert_eq!(graph.snapshot_all().edges.len(), 4);
    for t in &traces[1..] {
        graph.add_trace(t);
    }
    // Requests 10..19 start in the second second.
    let second = graph.snapshot(TimeWindow::new(T0 + SEC, T0 + 2 * SEC));
    let api_users = second.edges.iter().find(|e| e.child == "users").unwrap();
    assert_eq!(api_users.call_count, 10.0);
    assert!(second.edges.iter().all(|e| e.parent != "batch"));

    // A cycle (a → b → a) does not loop, and never lists the start service.
    let t = TraceId::from_halves(3, 3);
    let cyc = assemble(vec![
        S::new("a", t, 1, None, "x", SpanKind::Server, T0, T0 + 10 * MS),
        S::new(
            "b",
            t,
            2,
            Some(1),
            "y",
            SpanKind::Server,
            T0 + MS,
            T0 + 9 * MS,
        ),
        S::new(
            "a",
            t,
            3,
            Some(2),
            "z",
            SpanKind::Server,
            T0 + 2 * MS,
            T0 + 8 * MS,
        ),
    ]);
    let mut g = DependencyGraph::default();
    g.add_trace(&cyc[0]);
    assert_eq!(g.transitive_dependencies("a"), vec![dep("b", 1, "a")]);
}

#[test]
fn spans_of_the_callee_parented_to_the_client_span_count_as_one_call() {
    // As Zipkin's shared spans arrive: backend's server half and backend's own database query
    // both name frontend's client span as their parent. That is one frontend → backend call.
    let t = TraceId::from_halves(9, 9);
    let ms = |x: u64| T0 + x * MS;
    let traces = assemble(vec![
        S::new(
            "frontend",
            t,
            1,
            None,
            "GET /",
            SpanKind::Server,
            ms(0),
            ms(50),
        ),
        S::new(
            "frontend",
            t,
            2,
            Some(1),
            "GET /api",
            SpanKind::Client,
            ms(1),
            ms(49),
        ),
        S::new(
            "backend",
            t,
            3,
            Some(2),
            "GET /api",
            SpanKind::Server,
            ms(2),
            ms(48),
        ),
        S::new(
            "backend",
            t,
            4,
            Some(2),
            "SELECT",
            SpanKind::Client,
            ms(3),
            ms(20),
        ),
        S::new(
            "backend",
            t,
            5,
            Some(2),
            "render",
            SpanKind::Internal,
            ms(21),
            ms(40),
        ),
    ]);
    let mut graph = DependencyGraph::default();
    for trace in &traces {
        graph.add_trace(trace);
    }
    let snap = graph.snapshot_all();
    let calls: Vec<(&str, &str, f64)> = snap
        .edges
        .iter()
        .map(|e| (e.parent.as_str(), e.child.as_str(), e.call_count))
        .collect();
    assert_eq!(calls, vec![("frontend", "backend", 1.0)]);
}
