mod common;

use common::{MS, T0, TraceBuilder, checkout};
use stitch_analysis::{NodeId, ParentLink, SpanTree};
use stitch_model::{SpanId, Trace};

fn id(tree: &SpanTree<'_>, span: u64) -> NodeId {
    tree.find(SpanId::from_u64(span)).expect("span in tree")
}

fn span_id(tree: &SpanTree<'_>, node: NodeId) -> u64 {
    tree.span(node).span.span_id.as_u64()
}

fn ids(tree: &SpanTree<'_>, nodes: &[NodeId]) -> Vec<u64> {
    nodes.iter().map(|&n| span_id(tree, n)).collect()
}

/// `(span id, depth)` in pre-order.
fn walk(tree: &SpanTree<'_>) -> Vec<(u64, usize)> {
    tree.pre_order()
        .map(|(n, d)| (span_id(tree, n), d))
        .collect()
}

#[test]
fn a_well_formed_trace_becomes_one_tree_with_parents_children_and_depths() {
    let trace = checkout();
    let tree = SpanTree::build(&trace);
    assert_eq!(tree.len(), 8);
    assert_eq!(ids(&tree, tree.roots()), vec![1]);
    assert_eq!(ids(&tree, tree.children(id(&tree, 1))), vec![2, 3, 5, 8]);
    assert_eq!(ids(&tree, tree.children(id(&tree, 5))), vec![6, 7]);
    assert_eq!(tree.parent(id(&tree, 4)), Some(id(&tree, 3)));
    assert_eq!(tree.parent(id(&tree, 1)), None);
    assert_eq!(tree.depth(id(&tree, 7)), 2);
    assert_eq!(tree.max_depth(), 2);
    assert_eq!(
        walk(&tree),
        vec![
            (1, 0),
            (2, 1),
            (3, 1),
            (4, 2),
            (5, 1),
            (6, 2),
            (7, 2),
            (8, 1)
        ]
    );
    let node = tree.node(id(&tree, 4));
    assert_eq!(node.service_name(), "postgres");
    assert_eq!(node.span().name, "DB");
    assert_eq!(node.parent_link(), ParentLink::Found(id(&tree, 3)));
    assert!(!node.is_orphan());
    assert_eq!(tree.duplicate_count(), 0);
    assert_eq!(tree.orphans().count(), 0);
}

#[test]
fn the_trace_start_and_end_cover_every_span() {
    let trace = checkout();
    let tree = SpanTree::build(&trace);
    assert_eq!(tree.start(), Some(T0));
    assert_eq!(tree.end(), Some(T0 + 2400 * MS));
    assert_eq!(tree.time_range(), Some((T0, T0 + 2400 * MS)));
    assert_eq!(tree.duration_nanos(), 2400 * MS);
}

#[test]
fn a_span_ending_before_it_starts_counts_as_instant() {
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 10, 5)
        .ms("a", 2, Some(1), "child", 10, 20)
        .build();
    let tree = SpanTree::build(&trace);
    let root = tree.node(id(&tree, 1));
    assert_eq!(root.end(), root.start());
    assert_eq!(tree.time_range(), Some((T0 + 10 * MS, T0 + 20 * MS)));
}

#[test]
fn children_are_ordered_by_start_time_then_span_id() {
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 0, 100)
        .ms("a", 9, Some(1), "late", 50, 60)
        .ms("a", 7, Some(1), "tie b", 10, 20)
        .ms("a", 3, Some(1), "tie a", 10, 30)
        .ms("a", 8, Some(1), "early", 5, 6)
        .build();
    let tree = SpanTree::build(&trace);
    assert_eq!(ids(&tree, tree.children(id(&tree, 1))), vec![8, 3, 7, 9]);
}

#[test]
fn several_roots_are_kept_and_ordered_by_start_time() {
    let trace = TraceBuilder::new()
        .ms("b", 20, None, "second root", 50, 90)
        .ms("b", 21, Some(20), "child of second", 60, 70)
        .ms("a", 10, None, "first root", 0, 40)
        .build();
    let tree = SpanTree::build(&trace);
    assert_eq!(ids(&tree, tree.roots()), vec![10, 20]);
    assert!(
        tree.roots()
            .iter()
            .all(|&r| tree.node(r).parent_link() == ParentLink::None)
    );
    assert_eq!(walk(&tree), vec![(10, 0), (20, 0), (21, 1)]);
}

#[test]
fn an_orphan_becomes_a_flagged_root_that_remembers_its_missing_parent() {
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 0, 100)
        .ms("b", 5, Some(99), "orphan", 20, 40)
        .ms("b", 6, Some(5), "child of orphan", 25, 30)
        .build();
    let tree = SpanTree::build(&trace);
    let orphan = id(&tree, 5);
    assert_eq!(ids(&tree, tree.roots()), vec![1, 5]);
    assert!(tree.node(orphan).is_orphan());
    assert!(tree.node(orphan).is_root());
    assert_eq!(
        tree.node(orphan).missing_parent(),
        Some(SpanId::from_u64(99))
    );
    assert_eq!(
        tree.node(orphan).parent_link(),
        ParentLink::Missing(SpanId::from_u64(99))
    );
    assert_eq!(tree.orphans().collect::<Vec<_>>(), vec![orphan]);
    assert_eq!(tree.parent(id(&tree, 6)), Some(orphan));
    assert_eq!(tree.depth(id(&tree, 6)), 1);
    assert!(!tree.node(id(&tree, 1)).is_orphan());
    assert_eq!(tree.node(id(&tree, 1)).missing_parent(), None);
}

#[test]
fn a_parent_id_of_all_zeros_means_no_parent() {
    let mut trace = TraceBuilder::new().ms("a", 1, None, "root", 0, 10).build();
    trace.resource_spans[0].scope_spans[0].spans[0].parent_span_id = Some(SpanId::INVALID);
    let tree = SpanTree::build(&trace);
    assert_eq!(tree.node(tree.roots()[0]).parent_link(), ParentLink::None);
    assert_eq!(tree.orphans().count(), 0);
}

#[test]
fn duplicate_span_ids_keep_the_first_span_and_count_the_rest() {
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 0, 100)
        .ms("a", 2, Some(1), "first copy", 10, 20)
        .ms("b", 2, Some(1), "second copy", 30, 40)
        .ms("c", 2, None, "third copy", 50, 60)
        .ms("a", 3, Some(2), "grandchild", 12, 18)
        .build();
    let tree = SpanTree::build(&trace);
    assert_eq!(tree.len(), 3);
    assert_eq!(tree.duplicate_count(), 2);
    let dropped: Vec<&str> = tree
        .duplicates()
        .iter()
        .map(|s| s.span.name.as_str())
        .collect();
    assert_eq!(dropped, vec!["second copy", "third copy"]);
    let kept = id(&tree, 2);
    assert_eq!(tree.span(kept).span.name, "first copy");
    assert_eq!(tree.parent(id(&tree, 3)), Some(kept));
    assert_eq!(walk(&tree), vec![(1, 0), (2, 1), (3, 2)]);
}

#[test]
fn a_span_that_is_its_own_parent_becomes_a_root() {
    let trace = TraceBuilder::new()
        .ms("a", 1, Some(1), "narcissus", 0, 100)
        .ms("a", 2, Some(1), "child", 10, 20)
        .build();
    let tree = SpanTree::build(&trace);
    let root = id(&tree, 1);
    assert_eq!(tree.roots(), &[root]);
    assert_eq!(tree.node(root).parent_link(), ParentLink::SelfParent);
    assert!(!tree.node(root).is_orphan());
    assert_eq!(walk(&tree), vec![(1, 0), (2, 1)]);
}

#[test]
fn a_parent_cycle_is_broken_at_its_earliest_span_and_nothing_is_lost() {
    // 1 → 3 → 2 → 1 (each arrow points to the parent), with 4 and 5 hanging off the cycle.
    let trace = TraceBuilder::new()
        .ms("a", 3, Some(2), "c", 30, 40)
        .ms("a", 4, Some(2), "hangs off b", 25, 26)
        .ms("a", 2, Some(1), "b", 20, 50)
        .ms("a", 1, Some(3), "a", 10, 60)
        .ms("a", 5, Some(3), "hangs off c", 35, 36)
        .build();
    let tree = SpanTree::build(&trace);
    let a = id(&tree, 1);
    assert_eq!(
        tree.roots(),
        &[a],
        "the earliest span of the cycle becomes the root"
    );
    assert_eq!(
        tree.node(a).parent_link(),
        ParentLink::CycleBroken(SpanId::from_u64(3))
    );
    assert_eq!(walk(&tree), vec![(1, 0), (2, 1), (4, 2), (3, 2), (5, 3)]);
    assert_eq!(tree.ancestors(id(&tree, 5)).count(), 3);
}

#[test]
fn separate_cycles_are_each_broken_once() {
    let trace = TraceBuilder::new()
        .ms("a", 1, Some(2), "x", 0, 10)
        .ms("a", 2, Some(1), "y", 1, 9)
        .ms("a", 3, Some(4), "p", 20, 30)
        .ms("a", 4, Some(3), "q", 19, 31)
        .ms("a", 5, None, "plain root", 40, 50)
        .build();
    let tree = SpanTree::build(&trace);
    assert_eq!(ids(&tree, tree.roots()), vec![1, 4, 5]);
    let cut = tree
        .nodes()
        .filter(|(_, n)| matches!(n.parent_link(), ParentLink::CycleBroken(_)))
        .count();
    assert_eq!(cut, 2);
    assert_eq!(tree.pre_order().count(), 5);
}

#[test]
fn the_tree_does_not_depend_on_the_order_spans_arrive_in() {
    let forward = checkout();
    let mut backward = Trace::new(forward.trace_id);
    backward.resource_spans = forward.resource_spans.iter().rev().cloned().collect();
    for rs in &mut backward.resource_spans {
        for ss in &mut rs.scope_spans {
            ss.spans.reverse();
        }
    }
    let (a, b) = (SpanTree::build(&forward), SpanTree::build(&backward));
    assert_eq!(walk(&a), walk(&b));
}

#[test]
fn ancestors_lead_from_a_node_to_its_root() {
    let trace = checkout();
    let tree = SpanTree::build(&trace);
    let chain: Vec<u64> = tree
        .ancestors(id(&tree, 7))
        .map(|n| span_id(&tree, n))
        .collect();
    assert_eq!(chain, vec![5, 1]);
    assert_eq!(tree.ancestors(id(&tree, 1)).count(), 0);
}

#[test]
fn an_empty_trace_gives_an_empty_tree() {
    let trace = Trace::default();
    let tree = SpanTree::build(&trace);
    assert!(tree.is_empty());
    assert_eq!(tree.roots().len(), 0);
    assert_eq!(tree.pre_order().count(), 0);
    assert_eq!(tree.time_range(), None);
    assert_eq!(tree.duration_nanos(), 0);
    assert_eq!(tree.max_depth(), 0);
}
