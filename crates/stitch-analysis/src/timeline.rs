//! The times every per-trace analysis works on: each span's interval after clock-skew
//! adjustment, clamped into its parent, with children indexed in start order.
//!
//! Built once per analysis in O(n log n); every array is indexed by [`NodeId::index`].

use stitch_model::{AnyValue, Span, SpanKind, find_attribute};

use crate::fast_hash::FastMap;
use crate::tree::{NodeId, SpanTree};

/// The link attribute that states how a span relates to the span it links (OpenTracing's
/// reference type; Stitch's Jaeger mapping writes and reads it).
pub(crate) const REF_TYPE: &str = "opentracing.ref_type";

#[derive(Debug)]
pub(crate) struct Timeline<'t, 'a> {
    pub tree: &'t SpanTree<'a>,
    /// `ids[i]` is the node at index `i`.
    pub ids: Vec<NodeId>,
    /// Service name of each node.
    services: Vec<&'a str>,
    /// Start after skew adjustment.
    pub start: Vec<u64>,
    /// End after skew adjustment, never before `start`.
    pub end: Vec<u64>,
    /// Effective interval `[lo, hi)`: a synchronous child's interval clamped into its parent's
    /// effective interval; roots and asynchronous children keep their own. `lo == hi` when
    /// nothing is left after clamping.
    pub lo: Vec<u64>,
    pub hi: Vec<u64>,
    /// True when the node has a parent and the parent waits for it (not a CONSUMER, not under
    /// a PRODUCER, not a FOLLOWS_FROM child).
    pub sync: Vec<bool>,
    /// Nodes in depth-first pre-order (parents before children).
    pub order: Vec<usize>,
    /// Children of node `i` are `kids[kid_off[i]..kid_off[i + 1]]`, ordered by `lo`, then
    /// `hi`, then index.
    kid_off: Vec<usize>,
    kids: Vec<usize>,
    /// `ops[op[i]]` is the (service, span name) of node `i`. The same pair may appear more
    /// than once in `ops` (one entry per resource that reports it); group by the strings.
    pub op: Vec<u32>,
    pub ops: Vec<(&'a str, &'a str)>,
}

impl<'t, 'a> Timeline<'t, 'a> {
    /// A timeline of `tree` with `shift[i]` nanoseconds added to node `i` (empty: no shift).
    pub fn new(tree: &'t SpanTree<'a>, shift: &[i64]) -> Timeline<'t, 'a> {
        let n = tree.len();
        let mut start = Vec::with_capacity(n);
        let mut end = Vec::with_capacity(n);
        let mut sync = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut services = Vec::with_capacity(n);
        let mut last: Option<(*const stitch_model::Resource, &'a str)> = None;
        // Operations are numbered here, while each span is at hand, so that passes grouping by
        // operation need not read span names again. Keyed by where the service name lives:
        // only the span name is hashed.
        let mut op = Vec::with_capacity(n);
        let mut ops: Vec<(&'a str, &'a str)> = Vec::new();
        let mut op_ids: FastMap<(usize, &'a str), u32> = FastMap::default();
        for (id, node) in tree.nodes() {
            ids.push(id);
            // Spans of one resource are usually adjacent: look the name up once per run.
            let resource = node.resource() as *const stitch_model::Resource;
            let service = match last {
                Some((r, s)) if r == resource => s,
                _ => node.service_name(),
            };
            last = Some((resource, service));
            services.push(service);
            let name = node.span().name.as_str();
            let next = ops.len() as u32;
            let o = *op_ids
                .entry((service.as_ptr() as usize, name))
                .or_insert_with(|| {
                    ops.push((service, name));
                    next
                });
            op.push(o);
            let d = shift.get(id.index()).copied().unwrap_or(0);
            start.push(shift_time(node.start(), d));
            end.push(shift_time(node.end(), d));
            sync.push(match node.parent() {
                Some(p) => blocks_parent(tree.node(p).span(), node.span()),
                None => false,
            });
        }

        let order: Vec<usize> = tree.pre_order().map(|(id, _)| id.index()).collect();
        let mut lo = start.clone();
        let mut hi = end.clone();
        for &i in &order {
            if !sync[i] {
                continue;
            }
            if let Some(p) = tree.parent(ids[i]) {
                let (plo, phi) = (lo[p.index()], hi[p.index()]);
                let a = start[i].clamp(plo, phi);
                let b = end[i].clamp(plo, phi);
                lo[i] = a;
                hi[i] = b.max(a);
            }
        }

        let mut kid_off = Vec::with_capacity(n + 1);
        let mut kids = Vec::with_capacity(n);
        kid_off.push(0);
        for (id, _) in tree.nodes() {
            let first = kids.len();
            kids.extend(tree.children(id).iter().map(|c| c.index()));
            let slice = &mut kids[first..];
            if !slice
                .windows(2)
                .all(|w| (lo[w[0]], hi[w[0]]) <= (lo[w[1]], hi[w[1]]))
            {
                slice.sort_by_key(|&c| (lo[c], hi[c], c));
            }
            kid_off.push(kids.len());
        }

        Timeline {
            tree,
            ids,
            services,
            start,
            end,
            lo,
            hi,
            sync,
            order,
            kid_off,
            kids,
            op,
            ops,
        }
    }

    pub fn len(&self) -> usize {
        self.start.len()
    }

    /// All children of `i` (synchronous or not) in `lo` order.
    pub fn kids(&self, i: usize) -> &[usize] {
        &self.kids[self.kid_off[i]..self.kid_off[i + 1]]
    }

    /// Synchronous children of `i` with a non-empty effective interval, in `lo` order.
    pub fn sync_kids(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.kids(i)
            .iter()
            .copied()
            .filter(|&c| self.sync[c] && self.hi[c] > self.lo[c])
    }

    pub fn span(&self, i: usize) -> &'a Span {
        self.tree.node(self.ids[i]).span()
    }

    pub fn service(&self, i: usize) -> &'a str {
        self.services[i]
    }

    pub fn parent(&self, i: usize) -> Option<usize> {
        self.tree.parent(self.ids[i]).map(NodeId::index)
    }

    /// Effective duration `hi - lo`.
    pub fn width(&self, i: usize) -> u64 {
        self.hi[i] - self.lo[i]
    }

    /// Raw (adjusted, unclamped) duration.
    pub fn duration(&self, i: usize) -> u64 {
        self.end[i] - self.start[i]
    }

    /// The parts of `[lo, hi)` of node `i` that no synchronous child covers, in time order.
    pub fn self_intervals(&self, i: usize) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut cursor = self.lo[i];
        for c in self.sync_kids(i) {
            if self.lo[c] > cursor {
                out.push((cursor, self.lo[c]));
            }
            cursor = cursor.max(self.hi[c]);
        }
        if self.hi[i] > cursor {
            out.push((cursor, self.hi[i]));
        }
        out
    }

    /// `width(i)` minus the union of its synchronous children.
    pub fn self_time(&self, i: usize) -> u64 {
        let mut covered = 0;
        let mut run: Option<(u64, u64)> = None;
        for c in self.sync_kids(i) {
            let (a, b) = (self.lo[c], self.hi[c]);
            run = match run {
                Some((s, e)) if a <= e => Some((s, e.max(b))),
                Some((s, e)) => {
                    covered += e - s;
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some((s, e)) = run {
            covered += e - s;
        }
        self.width(i) - covered
    }

    /// The primary root: the root with the longest effective duration, then the earliest
    /// start, then the first in tree order.
    pub fn primary_root(&self) -> Option<usize> {
        self.tree
            .roots()
            .iter()
            .map(|r| r.index())
            .min_by_key(|&r| (std::cmp::Reverse(self.width(r)), self.lo[r], r))
    }
}

/// `t + delta`, saturating at the ends of `u64`.
pub(crate) fn shift_time(t: u64, delta: i64) -> u64 {
    if delta >= 0 {
        t.saturating_add(delta as u64)
    } else {
        t.saturating_sub(delta.unsigned_abs())
    }
}

/// Whether `parent` waits for `child`. Children that do not block their parent: CONSUMER
/// spans (they process a message some time after it was sent), children of a PRODUCER, and
/// children whose link to their parent is marked `follows_from`.
pub(crate) fn blocks_parent(parent: &Span, child: &Span) -> bool {
    if child.kind == SpanKind::Consumer || parent.kind == SpanKind::Producer {
        return false;
    }
    !child.links.iter().any(|l| {
        l.span_id == parent.span_id
            && matches!(
                find_attribute(&l.attributes, REF_TYPE),
                Some(AnyValue::String(t)) if t.eq_ignore_ascii_case("follows_from")
            )
    })
}
