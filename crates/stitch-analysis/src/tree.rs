//! The parent/child structure of a trace.
//!
//! [`SpanTree::build`] turns the flat list of spans in a [`Trace`] into a forest. Real traces are
//! rarely perfect, so the builder never fails and never loses a span it can place:
//!
//! * **Several roots** are kept side by side, ordered like siblings.
//! * **Orphans** — spans whose parent id is not in the trace (the parent was dropped, sampled
//!   away or has not arrived yet) — become roots; [`Node::missing_parent`] tells which id was
//!   missing.
//! * **Duplicate span ids**: the first span with an id (in [`Trace::spans`] order) is kept, the
//!   others are set aside and counted ([`SpanTree::duplicates`]).
//! * **A span that is its own parent** becomes a root ([`ParentLink::SelfParent`]).
//! * **Cycles** (A's parent is B, B's parent is A) are broken by cutting the parent link of the
//!   earliest-starting span in the cycle, which then becomes a root
//!   ([`ParentLink::CycleBroken`]).
//! * A parent id of all zeros (the invalid span id) means "no parent".
//!
//! Roots and the children of every node are ordered by start time, then span id, then position
//! in the trace, so the tree is the same for the same input whatever order the spans came in
//! (duplicates aside).

use crate::fast_hash::FastMap;

use stitch_model::{Resource, Scope, Span, SpanId, SpanRef, Trace};

/// The position of a node in a [`SpanTree`]. Valid only for the tree that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(usize);

impl NodeId {
    /// The node's position in [`SpanTree::nodes`] (the order of [`Trace::spans`], duplicates
    /// skipped).
    pub fn index(self) -> usize {
        self.0
    }
}

/// How a span relates to the parent it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParentLink {
    /// The span names no parent: a genuine root.
    None,
    /// The parent is in the trace.
    Found(NodeId),
    /// The parent id is not in the trace. The span is an orphan and placed as a root.
    Missing(SpanId),
    /// The span names itself as parent. It is placed as a root.
    SelfParent,
    /// The span's parent chain led back to it. Its link to the given parent was cut to break
    /// the cycle, and it is placed as a root.
    CycleBroken(SpanId),
}

/// One span in a [`SpanTree`].
#[derive(Clone, Debug)]
pub struct Node<'a> {
    span: SpanRef<'a>,
    link: ParentLink,
    children: Vec<NodeId>,
    depth: usize,
}

impl<'a> Node<'a> {
    /// The span with the resource and scope that produced it.
    pub fn span_ref(&self) -> SpanRef<'a> {
        self.span
    }

    pub fn span(&self) -> &'a Span {
        self.span.span
    }

    pub fn resource(&self) -> &'a Resource {
        self.span.resource
    }

    pub fn scope(&self) -> &'a Scope {
        self.span.scope
    }

    pub fn service_name(&self) -> &'a str {
        self.span.resource.service_name()
    }

    /// How the span relates to the parent it names.
    pub fn parent_link(&self) -> ParentLink {
        self.link
    }

    /// The parent node, if the span has one in the tree.
    pub fn parent(&self) -> Option<NodeId> {
        match self.link {
            ParentLink::Found(p) => Some(p),
            _ => None,
        }
    }

    /// Children ordered by start time, then span id.
    pub fn children(&self) -> &[NodeId] {
        &self.children
    }

    /// Number of ancestors: 0 for a root.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// True when the span is a root of the tree (for whatever reason).
    pub fn is_root(&self) -> bool {
        self.parent().is_none()
    }

    /// True when the span names a parent that is not in the trace.
    pub fn is_orphan(&self) -> bool {
        matches!(self.link, ParentLink::Missing(_))
    }

    /// The parent id an orphan names; `None` unless [`Node::is_orphan`].
    pub fn missing_parent(&self) -> Option<SpanId> {
        match self.link {
            ParentLink::Missing(id) => Some(id),
            _ => None,
        }
    }

    /// Start time in Unix nanoseconds.
    pub fn start(&self) -> u64 {
        self.span.span.start_time_unix_nano
    }

    /// End time in Unix nanoseconds, never before the start.
    pub fn end(&self) -> u64 {
        self.span
            .span
            .end_time_unix_nano
            .max(self.span.span.start_time_unix_nano)
    }
}

/// A trace's spans arranged as a forest. Borrows the trace.
#[derive(Clone, Debug)]
pub struct SpanTree<'a> {
    trace: &'a Trace,
    nodes: Vec<Node<'a>>,
    roots: Vec<NodeId>,
    by_id: FastMap<SpanId, NodeId>,
    duplicates: Vec<SpanRef<'a>>,
    range: Option<(u64, u64)>,
}

/// Sibling order: start time, then span id, then position in the trace.
fn order_key(span: &Span, index: usize) -> (u64, SpanId, usize) {
    (span.start_time_unix_nano, span.span_id, index)
}

impl<'a> SpanTree<'a> {
    /// Arranges the spans of `trace` into a forest. Never fails; see the module docs for how
    /// imperfect traces are handled.
    pub fn build(trace: &'a Trace) -> SpanTree<'a> {
        let n = trace.span_count();
        let mut refs: Vec<SpanRef<'a>> = Vec::with_capacity(n);
        let mut by_id: FastMap<SpanId, NodeId> =
            FastMap::with_capacity_and_hasher(n, Default::default());
        let mut duplicates = Vec::new();
        for span in trace.spans() {
            let next = NodeId(refs.len());
            match by_id.entry(span.span.span_id) {
                std::collections::hash_map::Entry::Occupied(_) => duplicates.push(span),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(next);
                    refs.push(span);
                }
            }
        }

        // Resolve every parent id, then cut one link in every cycle.
        let mut links: Vec<ParentLink> = refs
            .iter()
            .enumerate()
            .map(|(i, r)| match r.span.parent_span_id {
                None => ParentLink::None,
                Some(p) if !p.is_valid() => ParentLink::None,
                Some(p) => match by_id.get(&p) {
                    Some(&node) if node.0 == i => ParentLink::SelfParent,
                    Some(&node) => ParentLink::Found(node),
                    None => ParentLink::Missing(p),
                },
            })
            .collect();
        break_cycles(&refs, &mut links);

        let mut nodes: Vec<Node<'a>> = refs
            .iter()
            .zip(&links)
            .map(|(&span, &link)| Node {
                span,
                link,
                children: Vec::new(),
                depth: 0,
            })
            .collect();
        let mut roots = Vec::new();
        for (i, link) in links.iter().enumerate() {
            match link {
                ParentLink::Found(p) => nodes[p.0].children.push(NodeId(i)),
                _ => roots.push(NodeId(i)),
            }
        }
        // The sort keys side by side: sorting reads them many times, the spans are scattered.
        let keys: Vec<(u64, SpanId)> = refs
            .iter()
            .map(|r| (r.span.start_time_unix_nano, r.span.span_id))
            .collect();
        let key = |id: &NodeId| (keys[id.0].0, keys[id.0].1, id.0);
        roots.sort_by_key(key);
        for node in &mut nodes {
            node.children.sort_by_key(key);
        }

        // Depths: every node descends from a root once cycles are broken.
        let mut stack: Vec<(NodeId, usize)> = roots.iter().map(|&r| (r, 0)).collect();
        while let Some((id, depth)) = stack.pop() {
            nodes[id.0].depth = depth;
            stack.extend(nodes[id.0].children.iter().map(|&c| (c, depth + 1)));
        }

        let range = nodes.iter().fold(None, |acc, n| {
            let (s, e) = (n.start(), n.end());
            Some(match acc {
                None => (s, e),
                Some((lo, hi)) => (s.min(lo), e.max(hi)),
            })
        });

        SpanTree {
            trace,
            nodes,
            roots,
            by_id,
            duplicates,
            range,
        }
    }

    /// The trace the tree was built from.
    pub fn trace(&self) -> &'a Trace {
        self.trace
    }

    /// Number of nodes (spans, duplicates excluded).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `id`.
    ///
    /// # Panics
    /// If `id` does not come from this tree.
    pub fn node(&self, id: NodeId) -> &Node<'a> {
        &self.nodes[id.0]
    }

    /// The span at `id` with its resource and scope.
    pub fn span(&self, id: NodeId) -> SpanRef<'a> {
        self.nodes[id.0].span
    }

    /// Every node in trace order (the order of [`Trace::spans`], duplicates skipped).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = (NodeId, &Node<'a>)> + '_ {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i), n))
    }

    /// Root nodes ordered by start time, then span id. Includes orphans and spans whose parent
    /// link was cut.
    pub fn roots(&self) -> &[NodeId] {
        &self.roots
    }

    /// Children of `id` ordered by start time, then span id.
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        &self.nodes[id.0].children
    }

    /// The parent of `id`, if it has one in the tree.
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.nodes[id.0].parent()
    }

    /// Number of ancestors of `id`: 0 for a root.
    pub fn depth(&self, id: NodeId) -> usize {
        self.nodes[id.0].depth
    }

    /// The greatest depth of any node; 0 for an empty tree.
    pub fn max_depth(&self) -> usize {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }

    /// The node holding the span with `span_id`.
    pub fn find(&self, span_id: SpanId) -> Option<NodeId> {
        self.by_id.get(&span_id).copied()
    }

    /// The parent, grandparent, ... of `id`, nearest first.
    pub fn ancestors(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::successors(self.parent(id), move |&p| self.parent(p))
    }

    /// Depth-first pre-order walk over the whole forest, yielding each node with its depth.
    /// Roots are visited in [`SpanTree::roots`] order, children in [`SpanTree::children`]
    /// order.
    pub fn pre_order(&self) -> PreOrder<'_, 'a> {
        PreOrder {
            tree: self,
            stack: self.roots.iter().rev().map(|&r| (r, 0)).collect(),
        }
    }

    /// Roots that name a parent missing from the trace.
    pub fn orphans(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.roots
            .iter()
            .copied()
            .filter(|&r| self.nodes[r.0].is_orphan())
    }

    /// Spans left out because an earlier span had the same id, in trace order.
    pub fn duplicates(&self) -> &[SpanRef<'a>] {
        &self.duplicates
    }

    /// Number of spans left out because an earlier span had the same id.
    pub fn duplicate_count(&self) -> usize {
        self.duplicates.len()
    }

    /// Earliest start and latest end over all nodes, in Unix nanoseconds; `None` when empty.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        self.range
    }

    /// Earliest start over all nodes, in Unix nanoseconds.
    pub fn start(&self) -> Option<u64> {
        self.range.map(|r| r.0)
    }

    /// Latest end over all nodes, in Unix nanoseconds.
    pub fn end(&self) -> Option<u64> {
        self.range.map(|r| r.1)
    }

    /// `end - start`; 0 when empty.
    pub fn duration_nanos(&self) -> u64 {
        self.range.map_or(0, |(s, e)| e - s)
    }
}

/// Cuts one parent link in every cycle of the parent graph: the link of the span in the cycle
/// that starts first. Each node has at most one parent, so every cycle is found by walking up
/// from each node until reaching a root, a node already settled, or a node on the current walk.
fn break_cycles(refs: &[SpanRef<'_>], links: &mut [ParentLink]) {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; refs.len()];
    let mut path = Vec::new();
    for start in 0..refs.len() {
        if state[start] != NEW {
            continue;
        }
        path.clear();
        let mut current = Some(start);
        while let Some(c) = current {
            match state[c] {
                NEW => {
                    state[c] = ON_PATH;
                    path.push(c);
                    current = match links[c] {
                        ParentLink::Found(p) => Some(p.0),
                        _ => None,
                    };
                }
                ON_PATH => {
                    let begin = path.iter().position(|&p| p == c).unwrap_or(0);
                    if let Some(&cut) = path[begin..]
                        .iter()
                        .min_by_key(|&&i| order_key(refs[i].span, i))
                    {
                        let parent = refs[cut].span.parent_span_id.unwrap_or_default();
                        links[cut] = ParentLink::CycleBroken(parent);
                    }
                    current = None;
                }
                _ => current = None,
            }
        }
        for &p in &path {
            state[p] = DONE;
        }
    }
}

/// Depth-first pre-order iterator over a [`SpanTree`]; yields `(node, depth)`.
#[derive(Clone, Debug)]
pub struct PreOrder<'t, 'a> {
    tree: &'t SpanTree<'a>,
    stack: Vec<(NodeId, usize)>,
}

impl Iterator for PreOrder<'_, '_> {
    type Item = (NodeId, usize);

    fn next(&mut self) -> Option<Self::Item> {
        let (id, depth) = self.stack.pop()?;
        self.stack.extend(
            self.tree.nodes[id.0]
                .children
                .iter()
                .rev()
                .map(|&c| (c, depth + 1)),
        );
        Some((id, depth))
    }
}
