//! Invariants of the per-trace analysis on random trees.

mod pertrace;

use std::collections::HashMap;

use pertrace::{Builder, T0};
use proptest::prelude::*;
use stitch_analysis::{
    AnalysisOptions, SpanTree, adjust_clock_skew, analyze, critical_path, self_times,
};
use stitch_model::{Span, SpanId, SpanKind, Trace};

const KINDS: [SpanKind; 5] = [
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];
const SERVICES: [&str; 3] = ["a", "b", "c"];

/// `(service, parent selector, kind, start ms, length ms, end before start)` per span. Span 0
/// is a root; a selector divisible by 9 makes a span a root too (several roots, orphans).
type Raw = Vec<(usize, u16, usize, u16, u16, bool)>;

fn raw_trace(max: usize) -> impl Strategy<Value = Raw> {
    prop::collection::vec(
        (
            0..3usize,
            any::<u16>(),
            0..5usize,
            0..1000u16,
            0..600u16,
            prop::bool::weighted(0.05),
        ),
        1..max,
    )
}

fn build(raw: &Raw) -> Trace {
    let mut b = Builder::new();
    for (i, &(service, sel, kind, start, len, backwards)) in raw.iter().enumerate() {
        let parent = (i > 0 && sel % 9 != 0).then(|| (sel as usize % i) as u64 + 1);
        let (s, e) = (start as u64, start as u64 + len as u64);
        let (s, e) = if backwards { (e, s) } else { (s, e) };
        b.span(SERVICES[service], parent, KINDS[kind], "op", s, e);
    }
    b.build()
}

/// Whether `parent` waits for `child`, as the module docs define it (no links in these
/// traces).
fn sync(parent: &Span, child: &Span) -> bool {
    child.kind != SpanKind::Consumer && parent.kind != SpanKind::Producer
}

/// Effective intervals by node index, computed from the definition: synchronous children
/// clamped into their parent's effective interval, everything else as recorded.
fn effective(tree: &SpanTree<'_>) -> (Vec<(u64, u64)>, Vec<bool>) {
    let mut iv = vec![(0, 0); tree.len()];
    let mut is_sync = vec![false; tree.len()];
    for (id, _) in tree.pre_order() {
        let node = tree.node(id);
        let (s, e) = (node.start(), node.end());
        iv[id.index()] = match tree.parent(id) {
            Some(p) if sync(tree.node(p).span(), node.span()) => {
                is_sync[id.index()] = true;
                let (lo, hi) = iv[p.index()];
                let a = s.clamp(lo, hi);
                (a, e.clamp(lo, hi).max(a))
            }
            _ => (s, e),
        };
    }
    (iv, is_sync)
}

fn descends_from(tree: &SpanTree<'_>, span: SpanId, root: SpanId) -> bool {
    let node = tree.find(span).unwrap();
    span == root
        || tree
            .ancestors(node)
            .any(|a| tree.span(a).span.span_id == root)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn critical_path_sections_never_overlap_and_tile_the_root_span(raw in raw_trace(40)) {
        let trace = build(&raw);
        let tree = SpanTree::build(&trace);
        let cp = critical_path(&tree);
        let root = tree.find(cp.root_span_id.unwrap()).unwrap();
        let (start, end) = (tree.node(root).start(), tree.node(root).end());
        prop_assert_eq!(cp.total_nanos, end - start);
        let total: u64 = cp.sections.iter().map(|s| s.duration_nanos()).sum();
        prop_assert_eq!(total, end - start);
        let mut cursor = start;
        for s in &cp.sections {
            prop_assert!(s.start_unix_nano < s.end_unix_nano, "empty section {:?}", s);
            prop_assert_eq!(s.start_unix_nano, cursor, "sections are contiguous and disjoint");
            prop_assert!(s.end_unix_nano <= end);
            prop_assert!(descends_from(&tree, s.span_id, cp.root_span_id.unwrap()));
            cursor = s.end_unix_nano;
        }
        prop_assert_eq!(cursor, end);
        // The root is the longest root.
        for &r in tree.roots() {
            prop_assert!(tree.node(r).end() - tree.node(r).start() <= end - start);
        }
    }

    #[test]
    fn self_times_sum_to_the_busy_time(raw in raw_trace(30)) {
        let trace = build(&raw);
        let tree = SpanTree::build(&trace);
        let (iv, is_sync) = effective(&tree);
        let mut points: Vec<u64> = iv.iter().flat_map(|&(a, b)| [a, b]).collect();
        points.sort_unstable();
        points.dedup();
        let covers = |i: usize, a: u64, b: u64| iv[i].0 < iv[i].1 && iv[i].0 <= a && iv[i].1 >= b;
        let mut busy = 0u64;
        for w in points.windows(2) {
            let (a, b) = (w[0], w[1]);
            for (id, node) in tree.nodes() {
                let i = id.index();
                if !covers(i, a, b) {
                    continue;
                }
                let child_running = node
                    .children()
                    .iter()
                    .any(|c| is_sync[c.index()] && covers(c.index(), a, b));
                if !child_running {
                    busy += b - a;
                }
            }
        }
        let selfs = self_times(&tree);
        prop_assert_eq!(selfs.iter().sum::<u64>(), busy);
        let analysis = analyze(&trace, &AnalysisOptions { adjust_clock_skew: false, ..Default::default() });
        prop_assert_eq!(analysis.stats.busy_nanos, busy);
        let by_service: u64 = analysis.stats.services.iter().map(|s| s.self_nanos).sum();
        let by_operation: u64 = analysis.stats.operations.iter().map(|s| s.self_nanos).sum();
        prop_assert_eq!(by_service, busy);
        prop_assert_eq!(by_operation, busy);
        let on_path: u64 = analysis.stats.services.iter().map(|s| s.critical_path_nanos).sum();
        prop_assert_eq!(on_path, analysis.critical_path.total_nanos);
    }

    #[test]
    fn adding_an_idle_child_never_changes_the_critical_path(
        raw in raw_trace(40),
        pick in any::<prop::sample::Index>(),
        a in any::<prop::sample::Index>(),
        e in any::<prop::sample::Index>(),
    ) {
        let trace = build(&raw);
        let tree = SpanTree::build(&trace);
        let cp = critical_path(&tree);
        let root = cp.root_span_id.unwrap();
        // A span on the path other than the root: it was its parent's last-finishing child.
        let on_path: Vec<SpanId> = cp.sections.iter().map(|s| s.span_id).filter(|&s| s != root).collect();
        prop_assume!(!on_path.is_empty());
        let c = *pick.get(&on_path);
        // Its clamped interval is the span of its subtree's sections.
        let mine: Vec<_> = cp.sections.iter().filter(|s| descends_from(&tree, s.span_id, c)).collect();
        let lo = mine.iter().map(|s| s.start_unix_nano).min().unwrap();
        let hi = mine.iter().map(|s| s.end_unix_nano).max().unwrap();
        prop_assume!(hi - lo >= 2);
        // A sibling that starts no earlier and ends strictly inside it: it finishes before
        // the other child does, and after that child started — never the one waited for.
        let start = lo + a.index((hi - lo - 1) as usize) as u64;
        let end = start + 1 + e.index((hi - start - 1) as usize) as u64;
        prop_assert!(end < hi && end > lo);
        let parent = tree.span(tree.parent(tree.find(c).unwrap()).unwrap()).span.span_id;
        let mut with_idle = trace.clone();
        with_idle.resource_spans[0].scope_spans[0].spans.push(Span {
            trace_id: trace.trace_id,
            span_id: SpanId::from_u64(1_000_000),
            parent_span_id: Some(parent),
            name: "idle".to_owned(),
            kind: SpanKind::Internal,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        });
        let after = critical_path(&SpanTree::build(&with_idle));
        prop_assert_eq!(after.total_nanos, cp.total_nanos);
        prop_assert_eq!(after.sections, cp.sections);
    }

    #[test]
    fn skew_adjustment_puts_every_child_that_fits_inside_its_parent(
        shape in prop::collection::vec((0..3usize, any::<u16>(), 0..3usize, any::<u16>(), any::<u16>()), 1..30),
        offsets in prop::collection::vec(-500i64..500, 3),
    ) {
        // True times: every child inside its parent. Then each service's clock is off.
        let mut b = Builder::new();
        let mut iv: Vec<(u64, u64)> = Vec::new();
        for (i, &(service, sel, kind, x, y)) in shape.iter().enumerate() {
            let parent = (i > 0).then(|| sel as usize % i);
            let (lo, hi) = parent.map_or((0, 10_000), |p| iv[p]);
            let len = hi - lo;
            let s = lo + x as u64 % (len + 1);
            let e = s + y as u64 % (hi - s + 1);
            iv.push((s, e));
            b.span(SERVICES[service], parent.map(|p| p as u64 + 1), KINDS[kind], "op", s, e);
        }
        let consistent = b.build();
        prop_assert!(adjust_clock_skew(&consistent).adjustments.is_empty());
        for (k, service) in SERVICES.iter().enumerate() {
            b.clock_offset(service, offsets[k]);
        }
        let skewed = b.build();
        let adjusted = adjust_clock_skew(&skewed);
        let tree = SpanTree::build(&adjusted.trace);
        let shifted: HashMap<SpanId, i64> = adjusted.adjustments.iter().map(|a| (a.span_id, a.shift_nanos)).collect();
        for (id, node) in tree.nodes() {
            let Some(p) = tree.parent(id) else { continue };
            let parent = tree.node(p);
            if node.end() - node.start() <= parent.end() - parent.start() {
                prop_assert!(
                    node.start() >= parent.start() && node.end() <= parent.end(),
                    "{:?} [{}, {}] outside {:?} [{}, {}] (shift {:?})",
                    node.span().span_id, node.start() - T0, node.end() - T0,
                    parent.span().span_id, parent.start() - T0, parent.end() - T0,
                    shifted.get(&node.span().span_id)
                );
            }
        }
        // A span that moved with its parent moved by exactly as much.
        for a in adjusted.adjustments.iter().filter(|a| a.inherited) {
            let node = tree.find(a.span_id).unwrap();
            let parent = tree.span(tree.parent(node).unwrap()).span.span_id;
            prop_assert_eq!(shifted.get(&parent), Some(&a.shift_nanos));
        }
    }

    #[test]
    fn clean_parallel_fan_outs_have_no_finding_above_five_percent(
        branches in prop::collection::vec((100u64..998, 0u64..20), 2..7),
    ) {
        // The gateway answers 1 ms after its slowest branch; branches start within 20 ms of
        // each other (the first at once); no step holds more than a fifth of the request.
        let root_end = branches.iter().map(|b| b.0).max().unwrap() + 1;
        let max_step = root_end / 5;
        let mut b = Builder::new();
        let root = b.span("gateway", None, SpanKind::Server, "GET /page", 0, root_end);
        for (j, &(end, jitter)) in branches.iter().enumerate() {
            let service = format!("svc-{j}");
            let start = if j == 0 { 1 } else { 1 + jitter.min(end - 90) };
            let client = b.span("gateway", Some(root), SpanKind::Client, &format!("GET /part/{j}"), start, end);
            let server = b.span(&service, Some(client), SpanKind::Server, &format!("GET /part/{j}"), start + 1, end - 1);
            // Steps back to back with 1 ms between them.
            let (lo, hi) = (start + 1, end - 1);
            let steps = (hi - lo).div_ceil(max_step);
            let width = (hi - lo) / steps;
            for k in 0..steps {
                let a = lo + k * width + 1;
                let z = if k + 1 == steps { hi - 1 } else { lo + (k + 1) * width };
                if z > a {
                    b.span(&service, Some(server), SpanKind::Internal, &format!("step {k}"), a, z);
                }
            }
        }
        let analysis = analyze(&b.build(), &AnalysisOptions::default());
        for f in &analysis.findings {
            prop_assert!(f.cost_nanos * 20 <= analysis.critical_path.total_nanos, "{:?}", f);
        }
    }
}
