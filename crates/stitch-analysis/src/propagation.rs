//! Broken context propagation across traces: find the fragments that belong together and name
//! the hop that broke.
//!
//! When a call loses its trace context, one request shows up as two traces (or as a trace with
//! a loose piece): the caller's fragment ends in a CLIENT span with no SERVER child, and the
//! callee's fragment starts with a SERVER span that has no parent, or a parent nobody stored.
//! [`find_broken_propagation`] pairs such fragments within a set of traces from one time window
//! and reports each broken hop ([`BrokenHop`]) with how often it broke, example trace-id pairs,
//! the likely cause and the evidence for it, ranked by occurrences.
//!
//! # How fragments are paired
//!
//! 1. **By id.** A root SERVER/CONSUMER span whose parent span id is a span stored under
//!    *another* trace id is paired with that span. If the two trace ids share their low 64 bits
//!    the cause is [`LikelyCause::Truncated64BitTraceId`]; otherwise
//!    [`LikelyCause::TraceIdReplaced`]. (A parent stored under the *same* trace id in another
//!    fragment is not a break: the input merely split one trace.)
//! 2. **By peer and time.** A *dangling client* — a CLIENT span, or a span with the attributes
//!    of an outgoing HTTP/RPC call, with no SERVER/CONSUMER child and no child in another
//!    service — is paired with a *callee root* — a SERVER/CONSUMER span with no parent, or with
//!    a parent id no stored span has — when a name the client gives its peer (`peer.service`,
//!    `server.address`, `net.peer.name`, the URL's host, `rpc.service`; ports stripped; for
//!    cluster-internal host names also the first label) equals a name of the callee (its
//!    `service.name`, `rpc.service` or `server.address`), the callee starts within the client's
//!    interval widened by [`PropagationOptions::max_clock_skew_nanos`], and the operation agrees
//!    (HTTP method, path against `http.route`, RPC method — when both sides record them).
//!    Pairs are chosen one-to-one, best operation match first, then best fit (the gaps between
//!    the starts and between the ends, squared and summed, a callee sticking out of its client
//!    counting double): greedily, then improved by swapping callees between clients while the
//!    total fit gets better. Under heavy concurrency (a call every millisecond to the same
//!    operation) an example pair can still be a neighbouring request's; the hop, its count and
//!    its cause do not depend on that.
//! 3. **By containment.** A callee root with an unknown parent id that shares its trace id with
//!    other spans, and was not paired in step 2, is paired with the deepest span of that trace
//!    that encloses its start (its client span is what is missing).
//!
//! A candidate lookup looks at no more than [`PropagationOptions::max_candidates`] callee roots
//! per peer name (the ones starting nearest the client), so the whole analysis is O(n log n) in
//! the number of spans.
//!
//! # Causes, and how sure they are
//!
//! * [`LikelyCause::HeaderStripped`]: the callee has no parent at all and a trace id seen nowhere
//!   else. The context did not arrive. Stitch cannot see whether the caller never injected it or
//!   something on the way removed it (seed 000's service #7, whose HTTP client interceptor
//!   stripped unknown headers). The message names the suspect side when the traces show one:
//!   the caller, when the callee joins traces from other callers (or the caller loses the
//!   context on its calls to several services) and no call of the caller keeps it; the callee,
//!   when the caller propagates on its other calls (or several callers lose it to the callee)
//!   and the callee never joins a trace.
//! * [`LikelyCause::FormatMismatch`]: as above, but the formats disagree. *Observed* when the
//!   callee recorded its request headers (`http.request.header.b3`, `...x-b3-*`,
//!   `...traceparent`) and still started a new trace: it received a format it does not read.
//!   Otherwise *inferred* from the tracers in use — a Zipkin/Brave/Sleuth tracer (B3) on one
//!   side, an OpenTelemetry SDK (W3C by default) on the other — and the message says it is an
//!   inference, not an observation of the headers.
//! * [`LikelyCause::Truncated64BitTraceId`]: the callee names the client span as parent, under a
//!   trace id that kept only the caller's low 64 bits.
//! * [`LikelyCause::TraceIdReplaced`]: the callee names the client span as parent under an
//!   unrelated trace id.
//! * [`LikelyCause::UnexportedParent`]: the callee names a parent that no stored span has. The
//!   header reached the callee, but the span it names was never exported: an uninstrumented hop
//!   (proxy, sidecar, a service that propagates without exporting) or a dropped export.
//! * [`LikelyCause::LateExport`]: as above, but the callee ended within
//!   [`PropagationOptions::late_export_grace_nanos`] of [`PropagationOptions::as_of_unix_nano`]:
//!   the parent may still be in an exporter's queue. Spans carry no arrival time, so without
//!   `as_of` a late export cannot be told from a dropped one.
//!
//! A callee root that nothing pairs with is not reported: a root with no parent is usually a
//! genuine entry point, and a parent from outside the window cannot be told from a broken one.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use stitch_model::{Span, SpanId, SpanRef, Trace, TraceId, find_attribute};

use crate::render::format_duration;
use crate::semconv::{
    first_str, full_url, host_keys, http_method, is_client_like, is_server_like, request_path,
    route_matches, str_attr, url_host,
};
use crate::tree::{NodeId, ParentLink, SpanTree};

/// Tuning of [`find_broken_propagation`].
#[derive(Clone, Debug, PartialEq)]
pub struct PropagationOptions {
    /// How far a callee may start outside its client's interval (clock skew between hosts);
    /// default 100 ms.
    pub max_clock_skew_nanos: u64,
    /// Callee roots examined per peer name and client (default 64).
    pub max_candidates: usize,
    /// Example trace pairs kept per hop (default 5).
    pub max_examples: usize,
    /// When the analysis runs (Unix nanoseconds); enables [`LikelyCause::LateExport`].
    pub as_of_unix_nano: Option<u64>,
    /// How long after a span ends its parent may still arrive (default 30 s).
    pub late_export_grace_nanos: u64,
    /// Only the hops with an occurrence in this trace, its occurrences first among the
    /// examples (the rest of the input is the neighbourhood that completes the pairs and the
    /// evidence). `None`: every hop.
    pub focus_trace: Option<TraceId>,
}

impl Default for PropagationOptions {
    fn default() -> Self {
        PropagationOptions {
            max_clock_skew_nanos: 100_000_000,
            max_candidates: 64,
            max_examples: 5,
            as_of_unix_nano: None,
            late_export_grace_nanos: 30_000_000_000,
            focus_trace: None,
        }
    }
}

/// Why a hop lost its trace context, as far as the evidence goes. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LikelyCause {
    /// The callee got no context: stripped by a client or proxy, or never injected.
    HeaderStripped,
    /// The callee got no context it understands: B3 on one side, W3C on the other (inferred
    /// from the tracers in use).
    FormatMismatch,
    /// The callee kept only the low 64 bits of the 128-bit trace id.
    Truncated64BitTraceId,
    /// The parent span id survived but the trace id was replaced.
    TraceIdReplaced,
    /// The context arrived, but the span it names as parent was never exported.
    UnexportedParent,
    /// The parent span may not have arrived yet.
    LateExport,
}

impl LikelyCause {
    /// A short phrase for the cause.
    pub fn describe(self) -> &'static str {
        match self {
            LikelyCause::HeaderStripped => {
                "header stripped by a client or proxy, or not propagated"
            }
            LikelyCause::FormatMismatch => "B3/W3C propagation format mismatch",
            LikelyCause::Truncated64BitTraceId => "64-bit truncated trace id",
            LikelyCause::TraceIdReplaced => "trace id replaced on the way",
            LikelyCause::UnexportedParent => {
                "header reached the callee but the parent span was never exported \
                 (uninstrumented hop or dropped export)"
            }
            LikelyCause::LateExport => "parent span not exported yet (late export)",
        }
    }
}

/// One occurrence of a broken hop: the two fragments that belong together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HopExample {
    pub caller_trace_id: String,
    pub caller_span_id: String,
    pub callee_trace_id: String,
    pub callee_span_id: String,
    /// The parent span id the callee's root names, if any.
    pub callee_parent_span_id: Option<String>,
}

/// A hop (caller service and operation → callee service and operation) that lost trace
/// context, with a likely cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokenHop {
    pub caller_service: String,
    /// The caller span's name (its client span, or the span enclosing the call).
    pub caller_operation: String,
    pub callee_service: String,
    /// The callee root span's name.
    pub callee_operation: String,
    pub cause: LikelyCause,
    /// Calls on this hop that broke.
    pub occurrences: usize,
    /// The first occurrences, by callee start time.
    pub examples: Vec<HopExample>,
    /// The service the evidence points at, when it points at one.
    pub blamed_service: Option<String>,
    /// Facts behind the cause and the blame, one per line.
    pub evidence: Vec<String>,
    /// The plain-language explanation.
    pub message: String,
}

type Loc = (usize, NodeId);

struct Frag<'a> {
    tree: SpanTree<'a>,
}

/// Everything the analysis indexes about the input.
struct Index<'a> {
    frags: Vec<Frag<'a>>,
    /// First stored span with each id.
    spans: HashMap<SpanId, Loc>,
    /// Fragments per trace id.
    by_trace: HashMap<TraceId, Vec<usize>>,
    /// Calls from a service whose context arrived, and calls into a service that joined the
    /// caller's trace.
    out_linked: HashMap<String, usize>,
    in_linked: HashMap<String, usize>,
}

impl<'a> Index<'a> {
    fn node(&self, loc: Loc) -> SpanRef<'a> {
        self.frags[loc.0].tree.span(loc.1)
    }

    fn trace_id(&self, loc: Loc) -> TraceId {
        self.node(loc).span.trace_id
    }
}

/// One paired occurrence.
struct Occurrence {
    caller: Loc,
    callee: Loc,
    cause: LikelyCause,
    /// Step 3 pairing: the caller is the enclosing span, its client span is missing.
    enclosing: bool,
    mismatch: Option<Mismatch>,
}

/// Finds the hops whose context propagation broke in `traces` (whole traces or fragments from
/// one time window). Ranked by occurrences, most first. See the module docs.
pub fn find_broken_propagation(traces: &[Trace], opts: &PropagationOptions) -> Vec<BrokenHop> {
    let index = build_index(traces);
    let mut occurrences: Vec<Occurrence> = Vec::new();
    let mut used_callers: HashSet<Loc> = HashSet::new();
    let mut used_callees: HashSet<Loc> = HashSet::new();
    // Client spans whose server span is stored in another fragment of the same trace.
    let mut linked_clients: HashSet<Loc> = HashSet::new();

    // Callee roots, and step 1: pairing by id.
    let mut callee_roots: Vec<Loc> = Vec::new();
    for (f, frag) in index.frags.iter().enumerate() {
        for &root in frag.tree.roots() {
            let loc = (f, root);
            let node = frag.tree.node(root);
            if !is_server_like(node.span().kind) {
                continue;
            }
            match node.parent_link() {
                ParentLink::None => callee_roots.push(loc),
                ParentLink::Missing(parent) => match index.spans.get(&parent) {
                    Some(&parent_loc) if index.trace_id(parent_loc) == index.trace_id(loc) => {
                        linked_clients.insert(parent_loc);
                    }
                    Some(&parent_loc) => {
                        let (caller_hi, caller_lo) = index.trace_id(parent_loc).halves();
                        let (callee_hi, callee_lo) = index.trace_id(loc).halves();
                        let cause = if caller_lo == callee_lo && caller_hi != callee_hi {
                            LikelyCause::Truncated64BitTraceId
                        } else {
                            LikelyCause::TraceIdReplaced
                        };
                        used_callers.insert(parent_loc);
                        used_callees.insert(loc);
                        occurrences.push(Occurrence {
                            caller: parent_loc,
                            callee: loc,
                            cause,
                            enclosing: false,
                            mismatch: None,
                        });
                    }
                    None => callee_roots.push(loc),
                },
                _ => {}
            }
        }
    }

    // Step 2: dangling clients against callee roots, by peer name and time.
    let mut by_name: HashMap<String, Vec<(u64, usize)>> = HashMap::new();
    for (i, &loc) in callee_roots.iter().enumerate() {
        if used_callees.contains(&loc) {
            continue;
        }
        let span = index.node(loc);
        for key in callee_names(span) {
            by_name
                .entry(key)
                .or_default()
                .push((span.span.start_time_unix_nano, i));
        }
    }
    for list in by_name.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    let skew = opts.max_clock_skew_nanos;
    let callee_ops: Vec<OperationAttrs<'_>> = callee_roots
        .iter()
        .map(|&r| OperationAttrs::server(index.node(r).span))
        .collect();
    // (score, fit, client, callee root index)
    let mut candidates: Vec<(u32, u64, Loc, usize)> = Vec::new();
    for (f, frag) in index.frags.iter().enumerate() {
        for (id, node) in frag.tree.nodes() {
            let loc = (f, id);
            let span = node.span();
            if !is_client_like(span) || used_callers.contains(&loc) || linked_clients.contains(&loc)
            {
                continue;
            }
            let service = node.service_name();
            let linked = frag.tree.children(id).iter().any(|&c| {
                let child = frag.tree.node(c);
                child.service_name() != service || is_server_like(child.span().kind)
            });
            if linked {
                continue;
            }
            let (lo, hi) = (
                span.start_time_unix_nano.saturating_sub(skew),
                span.end_time_unix_nano
                    .max(span.start_time_unix_nano)
                    .saturating_add(skew),
            );
            // Callees named by several of the client's peer names are looked at once.
            let t = span.start_time_unix_nano;
            let mut nearby: Vec<usize> = Vec::new();
            for key in client_peer_names(span) {
                if let Some(list) = by_name.get(&key) {
                    let cap = opts.max_candidates.max(1);
                    nearby.extend(nearest_first(list, t, lo, hi, cap).into_iter().map(|c| c.1));
                }
            }
            nearby.sort_unstable();
            nearby.dedup();
            let client_op = OperationAttrs::client(span);
            for ri in nearby {
                let root_span = index.node(callee_roots[ri]).span;
                let same_trace = root_span.trace_id == span.trace_id;
                let orphan = root_span.parent_span_id.is_some_and(|p| p.is_valid());
                if same_trace && !orphan {
                    continue;
                }
                if let Some(score) = operation_score(&client_op, &callee_ops[ri]) {
                    candidates.push((score, fit(span, root_span), loc, ri));
                }
            }
        }
    }
    for (client, ri) in assign(candidates) {
        let root = callee_roots[ri];
        used_callers.insert(client);
        used_callees.insert(root);
        let root_span = index.node(root);
        let client_span = index.node(client);
        let has_parent = root_span.span.parent_span_id.is_some_and(|p| p.is_valid());
        let (cause, mismatch) = if has_parent {
            (unexported_cause(root_span.span, opts), None)
        } else {
            match format_mismatch(&format_markers(client_span), &format_markers(root_span)) {
                Some(m) => (LikelyCause::FormatMismatch, Some(m)),
                None => (LikelyCause::HeaderStripped, None),
            }
        };
        occurrences.push(Occurrence {
            caller: client,
            callee: root,
            cause,
            enclosing: false,
            mismatch,
        });
    }

    // Step 3: orphan roots of a trace that has other spans: the enclosing span is the caller.
    let mut per_trace: HashMap<TraceId, Vec<(u64, u64, Loc)>> = HashMap::new();
    for &root in &callee_roots {
        if used_callees.contains(&root) {
            continue;
        }
        let span = index.node(root).span;
        if span.parent_span_id.is_none_or(|p| !p.is_valid()) {
            continue;
        }
        let timeline = per_trace.entry(span.trace_id).or_insert_with(|| {
            let mut all = Vec::new();
            for &f in index.by_trace.get(&span.trace_id).into_iter().flatten() {
                for (id, node) in index.frags[f].tree.nodes() {
                    if node.span().trace_id == span.trace_id {
                        all.push((node.start(), node.end(), (f, id)));
                    }
                }
            }
            all.sort_unstable();
            all
        });
        if let Some(caller) = enclosing_span(&index, timeline, root, opts) {
            occurrences.push(Occurrence {
                caller,
                callee: root,
                cause: unexported_cause(span, opts),
                enclosing: true,
                mismatch: None,
            });
        }
    }

    group(&index, occurrences, opts)
}

/// Chooses one-to-one pairs among `(score, misfit, client, callee)` candidates: greedily, best
/// score then least misfit first, then improved by moving a client to a free callee or swapping
/// the callees of two clients while that raises the total score or, at equal score, lowers the
/// total misfit. Greedy alone pairs a client with a neighbour's callee whenever that one
/// happens to fit a little better; the swaps undo most of those.
fn assign(candidates: Vec<(u32, u64, Loc, usize)>) -> Vec<(Loc, usize)> {
    // Cost of a pair: lower is better; sums of costs compare the same way.
    type Cost = (u32, u64);
    let cost_of = |score: u32, misfit: u64| -> Cost { (u32::MAX / 4 - score.min(1 << 20), misfit) };
    let add = |a: Cost, b: Cost| -> Cost { (a.0 + b.0, a.1.saturating_add(b.1)) };

    let mut clients: Vec<Loc> = candidates.iter().map(|c| c.2).collect();
    clients.sort_unstable();
    clients.dedup();
    let roots = candidates.iter().map(|c| c.3 + 1).max().unwrap_or(0);
    // Per client: options best first, and the same sorted by callee for lookups.
    let mut best_first: Vec<Vec<(Cost, usize)>> = vec![Vec::new(); clients.len()];
    for &(score, misfit, client, ri) in &candidates {
        let c = clients.binary_search(&client).unwrap_or_default();
        best_first[c].push((cost_of(score, misfit), ri));
    }
    let mut by_root: Vec<Vec<(usize, Cost)>> = Vec::with_capacity(clients.len());
    for options in &mut best_first {
        options.sort_unstable();
        options.dedup_by_key(|o| o.1);
        let mut sorted: Vec<(usize, Cost)> = options.iter().map(|&(c, r)| (r, c)).collect();
        sorted.sort_unstable();
        sorted.dedup_by_key(|o| o.0);
        by_root.push(sorted);
    }
    let lookup = |by_root: &[Vec<(usize, Cost)>], c: usize, r: usize| -> Option<Cost> {
        let options = &by_root[c];
        options
            .binary_search_by_key(&r, |o| o.0)
            .ok()
            .map(|i| options[i].1)
    };

    // Greedy.
    let mut all: Vec<(Cost, usize, usize)> = best_first
        .iter()
        .enumerate()
        .flat_map(|(c, options)| options.iter().map(move |&(cost, r)| (cost, c, r)))
        .collect();
    all.sort_unstable();
    let mut root_of: Vec<Option<usize>> = vec![None; clients.len()];
    let mut client_of: Vec<Option<usize>> = vec![None; roots];
    for (_, c, r) in all {
        if root_of[c].is_none() && client_of[r].is_none() {
            root_of[c] = Some(r);
            client_of[r] = Some(c);
        }
    }

    // Improvement. A client only looks at options better than the one it holds: a swap that
    // is worse for it must be better for the other client, which finds it from its side.
    for _pass in 0..8 {
        let mut improved = false;
        for c1 in 0..clients.len() {
            let current = root_of[c1].map(|r1| (r1, lookup(&by_root, c1, r1).unwrap_or_default()));
            for &(cost12, r2) in &best_first[c1] {
                let Some((r1, cost11)) = current else {
                    if client_of[r2].is_none() {
                        root_of[c1] = Some(r2);
                        client_of[r2] = Some(c1);
                        improved = true;
                        break;
                    }
                    continue;
                };
                if cost12 >= cost11 {
                    break;
                }
                match client_of[r2] {
                    None => {
                        client_of[r1] = None;
                        root_of[c1] = Some(r2);
                        client_of[r2] = Some(c1);
                        improved = true;
                        break;
                    }
                    Some(c2) => {
                        let Some(cost21) = lookup(&by_root, c2, r1) else {
                            continue;
                        };
                        let cost22 = lookup(&by_root, c2, r2).unwrap_or_default();
                        if add(cost12, cost21) < add(cost11, cost22) {
                            root_of[c1] = Some(r2);
                            client_of[r2] = Some(c1);
                            root_of[c2] = Some(r1);
                            client_of[r1] = Some(c2);
                            improved = true;
                            break;
                        }
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
    let mut pairs: Vec<(Loc, usize)> = root_of
        .iter()
        .enumerate()
        .filter_map(|(c, r)| r.map(|r| (clients[c], r)))
        .collect();
    pairs.sort_unstable();
    pairs
}

/// How far a callee's start is from its client's: starting before the client counts double
/// (only clock skew explains it, while network delay always puts the server after).
fn start_distance(client_start: u64, callee_start: u64) -> u64 {
    if callee_start >= client_start {
        callee_start - client_start
    } else {
        (client_start - callee_start).saturating_mul(2)
    }
}

/// How badly a callee's interval fits inside its client's: the time between the starts plus
/// the time between the ends (the network and queueing both ways), a callee sticking out on
/// either side counting double. Start times alone cannot tell apart concurrent calls of equal
/// latency; both ends together usually can.
fn fit(client: &Span, callee: &Span) -> u64 {
    let gap = |earlier: u64, later: u64| {
        if later >= earlier {
            later - earlier
        } else {
            (earlier - later).saturating_mul(2)
        }
    };
    let client_end = client.end_time_unix_nano.max(client.start_time_unix_nano);
    let callee_end = callee.end_time_unix_nano.max(callee.start_time_unix_nano);
    let (a, b) = (
        gap(client.start_time_unix_nano, callee.start_time_unix_nano),
        gap(callee_end, client_end),
    );
    // Squares favour two small gaps over one tiny and one large.
    let (a, b) = (a / 1000, b / 1000);
    a.saturating_mul(a).saturating_add(b.saturating_mul(b))
}

/// Up to `cap` entries of `list` (sorted by start) whose start lies in `[lo, hi]`, nearest to
/// `t` first (see [`start_distance`]).
fn nearest_first(list: &[(u64, usize)], t: u64, lo: u64, hi: u64, cap: usize) -> Vec<(u64, usize)> {
    let mid = list.partition_point(|&(start, _)| start < t);
    let (mut left, mut right) = (mid, mid);
    let mut out = Vec::new();
    while out.len() < cap {
        let before = (left > 0 && list[left - 1].0 >= lo).then(|| list[left - 1]);
        let after = (right < list.len() && list[right].0 <= hi).then(|| list[right]);
        match (before, after) {
            (None, None) => break,
            (Some(b), Some(a)) if start_distance(t, b.0) < start_distance(t, a.0) => {
                out.push(b);
                left -= 1;
            }
            (Some(b), None) => {
                out.push(b);
                left -= 1;
            }
            (_, Some(a)) => {
                out.push(a);
                right += 1;
            }
        }
    }
    out
}

fn build_index(traces: &[Trace]) -> Index<'_> {
    let mut index = Index {
        frags: Vec::with_capacity(traces.len()),
        spans: HashMap::new(),
        by_trace: HashMap::new(),
        out_linked: HashMap::new(),
        in_linked: HashMap::new(),
    };
    for (f, trace) in traces.iter().enumerate() {
        let tree = SpanTree::build(trace);
        for (id, node) in tree.nodes() {
            index.spans.entry(node.span().span_id).or_insert((f, id));
            if let Some(p) = tree.parent(id) {
                let parent = tree.node(p);
                if parent.service_name() != node.service_name() {
                    *index
                        .out_linked
                        .entry(parent.service_name().to_owned())
                        .or_default() += 1;
                    *index
                        .in_linked
                        .entry(node.service_name().to_owned())
                        .or_default() += 1;
                }
            }
        }
        index.frags.push(Frag { tree });
    }
    // Fragments are grouped by the trace id of their spans, which is what links them.
    let mut by_span_trace: HashMap<TraceId, Vec<usize>> = HashMap::new();
    for (f, frag) in index.frags.iter().enumerate() {
        let mut ids: Vec<TraceId> = frag.tree.nodes().map(|(_, n)| n.span().trace_id).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            by_span_trace.entry(id).or_default().push(f);
        }
    }
    index.by_trace = by_span_trace;
    // Links across fragments of one trace count as linked calls too.
    let mut cross: Vec<(String, String)> = Vec::new();
    for frag in &index.frags {
        for root in frag.tree.orphans() {
            let node = frag.tree.node(root);
            if let Some(parent) = node.missing_parent()
                && let Some(&ploc) = index.spans.get(&parent)
            {
                let p = index.node(ploc);
                if p.span.trace_id == node.span().trace_id
                    && p.service_name() != node.service_name()
                {
                    cross.push((p.service_name().to_owned(), node.service_name().to_owned()));
                }
            }
        }
    }
    for (from, to) in cross {
        *index.out_linked.entry(from).or_default() += 1;
        *index.in_linked.entry(to).or_default() += 1;
    }
    index
}

/// Lower-case names a callee root answers to.
fn callee_names(span: SpanRef<'_>) -> Vec<String> {
    let mut out = vec![span.service_name().to_ascii_lowercase()];
    if let Some(rpc) = str_attr(span.span, "rpc.service") {
        out.push(rpc.to_ascii_lowercase());
    }
    if let Some(host) = str_attr(span.span, "server.address") {
        host_keys(host, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// Lower-case names a client span gives its peer.
fn client_peer_names(span: &Span) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = str_attr(span, "peer.service") {
        out.push(p.to_ascii_lowercase());
    }
    if let Some(rpc) = str_attr(span, "rpc.service") {
        out.push(rpc.to_ascii_lowercase());
    }
    for key in ["server.address", "net.peer.name"] {
        if let Some(h) = str_attr(span, key) {
            host_keys(h, &mut out);
        }
    }
    if let Some(h) = full_url(span).and_then(url_host) {
        host_keys(h, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// What a span says about the operation it calls or serves.
struct OperationAttrs<'a> {
    method: Option<&'a str>,
    rpc_method: Option<&'a str>,
    /// The client's request path, or the server's `url.path`/`http.target`.
    path: Option<&'a str>,
    /// The server's `http.route`.
    route: Option<&'a str>,
}

impl<'a> OperationAttrs<'a> {
    fn client(span: &'a Span) -> Self {
        OperationAttrs {
            method: http_method(span),
            rpc_method: str_attr(span, "rpc.method"),
            path: request_path(span),
            route: None,
        }
    }

    fn server(span: &'a Span) -> Self {
        OperationAttrs {
            method: http_method(span),
            rpc_method: str_attr(span, "rpc.method"),
            path: first_str(span, &["url.path", "http.target"])
                .map(|p| p.split(['?', '#']).next().unwrap_or(p)),
            route: str_attr(span, "http.route"),
        }
    }
}

/// How well a client span and a server span describe the same operation: `None` when they
/// contradict each other, otherwise higher for more agreeing attributes.
fn operation_score(client: &OperationAttrs<'_>, server: &OperationAttrs<'_>) -> Option<u32> {
    let mut score = 1;
    if let (Some(a), Some(b)) = (client.method, server.method) {
        if !a.eq_ignore_ascii_case(b) {
            return None;
        }
        score += 1;
    }
    if let (Some(a), Some(b)) = (client.rpc_method, server.rpc_method) {
        if a != b {
            return None;
        }
        score += 2;
    }
    if let Some(path) = client.path {
        // A proxy may strip or add a prefix: a path ending in the other still agrees.
        let path_ok = server
            .path
            .map(|p| p == path || path.ends_with(p) || p.ends_with(path));
        let route_ok = server.route.map(|r| route_matches(r, path));
        match (path_ok, route_ok) {
            (Some(true), _) | (None, Some(true)) => score += 2,
            (Some(false), Some(true)) => score += 1,
            (Some(false), _) | (None, Some(false)) => return None,
            (None, None) => {}
        }
    }
    Some(score)
}

fn unexported_cause(callee: &Span, opts: &PropagationOptions) -> LikelyCause {
    match opts.as_of_unix_nano {
        Some(now)
            if callee
                .end_time_unix_nano
                .saturating_add(opts.late_export_grace_nanos)
                >= now =>
        {
            LikelyCause::LateExport
        }
        _ => LikelyCause::UnexportedParent,
    }
}

/// The deepest span of the root's trace (outside the root's own subtree) that encloses the
/// root's start; spans of another service than the root's first.
fn enclosing_span(
    index: &Index<'_>,
    timeline: &[(u64, u64, Loc)],
    root: Loc,
    opts: &PropagationOptions,
) -> Option<Loc> {
    let skew = opts.max_clock_skew_nanos;
    let root_span = index.node(root);
    let t = root_span.span.start_time_unix_nano;
    let upto = timeline.partition_point(|&(start, _, _)| start <= t.saturating_add(skew));
    let limit = opts.max_candidates.max(1) * 4;
    let mut best: Option<(bool, usize, u64, Loc)> = None;
    for &(start, end, loc) in timeline[..upto].iter().rev().take(limit) {
        if end.saturating_add(skew) < t || in_subtree(index, loc, root) {
            continue;
        }
        let node = index.frags[loc.0].tree.node(loc.1);
        let other_service = node.service_name() != root_span.service_name();
        let key = (other_service, node.depth(), start, loc);
        if best
            .as_ref()
            .is_none_or(|b| (key.0, key.1, key.2) > (b.0, b.1, b.2))
        {
            best = Some(key);
        }
    }
    best.map(|b| b.3)
}

fn in_subtree(index: &Index<'_>, loc: Loc, root: Loc) -> bool {
    if loc.0 != root.0 {
        return false;
    }
    let tree = &index.frags[loc.0].tree;
    loc.1 == root.1 || tree.ancestors(loc.1).any(|a| a == root.1)
}

/// Signs of which propagation format a side uses.
#[derive(Default)]
struct Markers {
    /// The side's tracer is a B3 (Zipkin-family) tracer.
    b3_tracer: Option<String>,
    /// The side's tracer is an OpenTelemetry SDK (W3C by default).
    w3c_tracer: Option<String>,
    /// The span recorded a B3 request header.
    b3_header: Option<String>,
    /// The span recorded a `traceparent` request header.
    w3c_header: Option<String>,
}

/// Why a B3/W3C mismatch is suspected.
#[derive(Clone, Debug)]
struct Mismatch {
    /// The header format the callee was seen receiving, when it recorded its request headers.
    received: Option<&'static str>,
    evidence: Vec<String>,
}

fn format_markers(span: SpanRef<'_>) -> Markers {
    let mut m = Markers::default();
    let service = span.service_name();
    let sdk = match find_attribute(&span.resource.attributes, "telemetry.sdk.name") {
        Some(v) => v.to_text().to_ascii_lowercase(),
        None => String::new(),
    };
    let scope = span.scope.name.to_ascii_lowercase();
    for tracer in ["zipkin", "brave", "sleuth"] {
        if m.b3_tracer.is_none() && sdk.contains(tracer) {
            m.b3_tracer = Some(format!(
                "{service} reports through a {tracer} tracer (`telemetry.sdk.name` = {sdk}), \
                 which propagates B3"
            ));
        } else if m.b3_tracer.is_none() && scope.contains(tracer) {
            m.b3_tracer = Some(format!(
                "spans of {service} come from the {tracer} instrumentation scope `{}`, which \
                 propagates B3",
                span.scope.name
            ));
        }
    }
    if sdk == "opentelemetry" {
        m.w3c_tracer = Some(format!(
            "{service} uses an OpenTelemetry SDK, whose default propagator is W3C `traceparent`"
        ));
    }
    // Captured headers (`http.request.header.*`) are direct evidence.
    for kv in &span.span.attributes {
        let key = kv.key.to_ascii_lowercase();
        if let Some(header) = key.strip_prefix("http.request.header.") {
            if header == "b3" || header.starts_with("x-b3-") {
                m.b3_header = Some(format!(
                    "the span of {service} recorded a `{header}` request header"
                ));
            } else if header == "traceparent" {
                m.w3c_header = Some(format!(
                    "the span of {service} recorded a `traceparent` request header"
                ));
            }
        }
    }
    m
}

/// A suspected B3/W3C mismatch between a caller and a callee that started a new trace.
fn format_mismatch(caller: &Markers, callee: &Markers) -> Option<Mismatch> {
    // Observed: the callee recorded the header it got, and still started a new trace.
    if let (Some(seen), None) = (&callee.b3_header, &callee.w3c_header) {
        let mut evidence = vec![seen.clone()];
        evidence.extend(callee.w3c_tracer.clone());
        return Some(Mismatch {
            received: Some("B3"),
            evidence,
        });
    }
    if let (Some(seen), None, Some(tracer)) =
        (&callee.w3c_header, &callee.b3_header, &callee.b3_tracer)
    {
        return Some(Mismatch {
            received: Some("W3C `traceparent`"),
            evidence: vec![seen.clone(), tracer.clone()],
        });
    }
    // Inferred from the tracers on each side.
    let b3_callee = callee.b3_tracer.is_some() && caller.b3_tracer.is_none();
    let b3_caller = caller.b3_tracer.is_some() && callee.b3_tracer.is_none();
    let evidence: Vec<String> = if b3_callee && caller.w3c_tracer.is_some() {
        [&callee.b3_tracer, &caller.w3c_tracer]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    } else if b3_caller && callee.w3c_tracer.is_some() {
        [&caller.b3_tracer, &callee.w3c_tracer]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    } else {
        return None;
    };
    Some(Mismatch {
        received: None,
        evidence,
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Groups occurrences into hops, writes the explanations and ranks the hops.
fn group(
    index: &Index<'_>,
    occurrences: Vec<Occurrence>,
    opts: &PropagationOptions,
) -> Vec<BrokenHop> {
    type Key = (String, String, String, String, LikelyCause, bool);
    let mut groups: BTreeMap<Key, Vec<Occurrence>> = BTreeMap::new();
    for occ in occurrences {
        let caller = index.node(occ.caller);
        let callee = index.node(occ.callee);
        let key = (
            caller.service_name().to_owned(),
            caller.span.name.clone(),
            callee.service_name().to_owned(),
            callee.span.name.clone(),
            occ.cause,
            occ.enclosing,
        );
        groups.entry(key).or_default().push(occ);
    }
    // Which callees each caller lost the context to, and the reverse: a service that loses
    // it on calls to several services (or from several callers) is the common factor.
    let mut stripped_to: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut stripped_from: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (caller, _, callee, _, cause, _) in groups.keys() {
        if *cause == LikelyCause::HeaderStripped {
            stripped_to.entry(caller).or_default().insert(callee);
            stripped_from.entry(callee).or_default().insert(caller);
        }
    }
    let spread: HashMap<(String, String), (usize, usize)> = groups
        .keys()
        .map(|(caller, _, callee, ..)| {
            let out = stripped_to.get(caller.as_str()).map_or(0, HashSet::len);
            let inn = stripped_from.get(callee.as_str()).map_or(0, HashSet::len);
            ((caller.clone(), callee.clone()), (out, inn))
        })
        .collect();
    // With a focus trace: only its hops, its own occurrences first.
    let in_focus = |o: &Occurrence| {
        opts.focus_trace.is_none_or(|t| {
            index.node(o.caller).span.trace_id == t || index.node(o.callee).span.trace_id == t
        })
    };
    let mut hops: Vec<BrokenHop> = groups
        .into_iter()
        .filter(|(_, occs)| occs.iter().any(in_focus))
        .map(
            |((caller, caller_op, callee, callee_op, cause, enclosing), mut occs)| {
                occs.sort_by_key(|o| {
                    let s = index.node(o.callee).span;
                    (!in_focus(o), s.start_time_unix_nano, s.trace_id, s.span_id)
                });
                let examples = occs
                    .iter()
                    .take(opts.max_examples)
                    .map(|o| {
                        let (c, r) = (index.node(o.caller).span, index.node(o.callee).span);
                        HopExample {
                            caller_trace_id: c.trace_id.to_hex(),
                            caller_span_id: c.span_id.to_hex(),
                            callee_trace_id: r.trace_id.to_hex(),
                            callee_span_id: r.span_id.to_hex(),
                            callee_parent_span_id: r
                                .parent_span_id
                                .filter(|p| p.is_valid())
                                .map(|p| p.to_hex()),
                        }
                    })
                    .collect();
                let n = occs.len();
                let spread = spread
                    .get(&(caller.clone(), callee.clone()))
                    .copied()
                    .unwrap_or((0, 0));
                let (message, evidence, blamed) = explain(
                    index, &caller, &callee, cause, enclosing, &occs, spread, opts,
                );
                BrokenHop {
                    caller_service: caller,
                    caller_operation: caller_op,
                    callee_service: callee,
                    callee_operation: callee_op,
                    cause,
                    occurrences: n,
                    examples,
                    blamed_service: blamed,
                    evidence,
                    message,
                }
            },
        )
        .collect();
    hops.sort_by(|a, b| {
        b.occurrences
            .cmp(&a.occurrences)
            .then_with(|| a.caller_service.cmp(&b.caller_service))
            .then_with(|| a.callee_service.cmp(&b.callee_service))
            .then_with(|| a.caller_operation.cmp(&b.caller_operation))
            .then_with(|| a.callee_operation.cmp(&b.callee_operation))
            .then_with(|| a.cause.cmp(&b.cause))
    });
    hops
}

/// The message, evidence and blamed service of one hop. `spread` is how many services the
/// caller lost the context to, and how many callers lost it to the callee (stripped headers).
#[allow(clippy::too_many_arguments)]
fn explain(
    index: &Index<'_>,
    caller: &str,
    callee: &str,
    cause: LikelyCause,
    enclosing: bool,
    occs: &[Occurrence],
    spread: (usize, usize),
    opts: &PropagationOptions,
) -> (String, Vec<String>, Option<String>) {
    let (lost_to, lost_from) = spread;
    let n = occs.len();
    let calls = plural(n, "call", "calls");
    let out_ok = index.out_linked.get(caller).copied().unwrap_or(0);
    let in_ok = index.in_linked.get(callee).copied().unwrap_or(0);
    let mut evidence = Vec::new();
    let first = &occs[0];
    let (c, r) = (index.node(first.caller).span, index.node(first.callee).span);
    match cause {
        LikelyCause::HeaderStripped | LikelyCause::FormatMismatch => {
            evidence.push(format!(
                "{n} root spans of {callee} have no parent and a trace id seen nowhere else, \
                 each starting while a client span of {caller} to {callee} was waiting for an \
                 answer"
            ));
        }
        LikelyCause::Truncated64BitTraceId | LikelyCause::TraceIdReplaced => {
            evidence.push(format!(
                "{callee}'s root span names {caller}'s client span {} as its parent, but under \
                 trace id {} instead of {}",
                c.span_id, r.trace_id, c.trace_id
            ));
        }
        LikelyCause::UnexportedParent | LikelyCause::LateExport => {
            let parent = r.parent_span_id.map(|p| p.to_hex()).unwrap_or_default();
            evidence.push(format!(
                "{callee}'s root span names parent span {parent}, which no stored span has"
            ));
            if r.trace_id == c.trace_id {
                evidence.push(format!(
                    "it carries the same trace id as {caller}'s span, so the trace context \
                     itself arrived"
                ));
            } else {
                evidence.push(format!(
                    "its trace id {} differs from {caller}'s {}",
                    r.trace_id, c.trace_id
                ));
            }
        }
    }
    if out_ok > 0 {
        evidence.push(format!(
            "{caller} kept the trace context on {} to other services",
            plural(out_ok, "call", "calls")
        ));
    } else {
        evidence.push(format!(
            "none of {caller}'s calls in these traces kept the trace context"
        ));
    }
    if in_ok > 0 {
        evidence.push(format!(
            "{callee} joined its callers' traces on {}",
            plural(in_ok, "other call", "other calls")
        ));
    } else {
        evidence.push(format!(
            "{callee} never joined a caller's trace in these traces"
        ));
    }
    let mut blamed = None;
    let message = match cause {
        LikelyCause::HeaderStripped => {
            let mut msg = format!(
                "{caller} → {callee}: {calls} reached {callee} without trace context, so each \
                 of those traces split in two ({callee} started a new trace). The `traceparent` \
                 header was stripped on the way — by {caller}'s HTTP client or a proxy between \
                 them — or never injected."
            );
            let caller_suspect = out_ok == 0 && (in_ok > 0 || lost_to >= 2);
            let callee_suspect = in_ok == 0 && (out_ok > 0 || lost_from >= 2);
            if lost_to >= 2 {
                evidence.push(format!(
                    "{caller} loses the context on its calls to {lost_to} different services"
                ));
            }
            if lost_from >= 2 {
                evidence.push(format!(
                    "calls from {lost_from} different services lose the context on their way \
                     to {callee}"
                ));
            }
            if caller_suspect && !callee_suspect {
                blamed = Some(caller.to_owned());
                let why = if in_ok > 0 {
                    format!("{callee} joins traces from other callers")
                } else {
                    format!("{caller} loses it on its calls to {lost_to} services")
                };
                msg.push_str(&format!(
                    " {why}, and no call of {caller} keeps its context: {caller} is the service \
                     that breaks the trace (check its HTTP client's interceptors and header \
                     allow-lists)."
                ));
            } else if callee_suspect && !caller_suspect {
                blamed = Some(callee.to_owned());
                let why = if out_ok > 0 {
                    format!("{caller} propagates on its other calls")
                } else {
                    format!("calls from {lost_from} services lose it on their way to {callee}")
                };
                msg.push_str(&format!(
                    " {why}, and {callee} never joins an incoming trace: {callee} probably does \
                     not extract the context (or expects another header format)."
                ));
            } else if out_ok > 0 && in_ok > 0 {
                msg.push_str(&format!(
                    " Both propagate on other hops, so look at what is special about this one: \
                     a proxy, gateway or per-route client configuration between {caller} and \
                     {callee}."
                ));
            } else {
                msg.push_str(&format!(
                    " These traces cannot tell whether {caller} failed to send the header or \
                     {callee} failed to read it; `stitch check-propagation` against {callee} \
                     tells them apart."
                ));
            }
            msg
        }
        LikelyCause::FormatMismatch => {
            let m = first.mismatch.clone().unwrap_or(Mismatch {
                received: None,
                evidence: Vec::new(),
            });
            evidence.extend(m.evidence.iter().cloned());
            match m.received {
                Some(format) => {
                    blamed = Some(callee.to_owned());
                    format!(
                        "{caller} → {callee}: {calls} arrived at {callee} with a {format} header \
                         ({callee} recorded it), yet {callee} started a new trace each time, so \
                         each of those traces split in two: {callee} does not read {format}. \
                         Configure {callee} with a propagator that accepts it (a composite \
                         W3C + B3 propagator), or make {caller} send the format {callee} reads."
                    )
                }
                None => format!(
                    "{caller} → {callee}: {calls} reached {callee} without context it \
                     understood, so each of those traces split in two. One side looks B3 \
                     (Zipkin) instrumented and the other W3C (`traceparent`): {}. If they speak \
                     different header formats, the callee finds no context and starts a new \
                     trace. This is inferred from the tracers in use, not from the headers on \
                     the wire: configure both sides with the same propagators (or a composite \
                     W3C + B3 propagator) and verify with `stitch check-propagation`.",
                    m.evidence.join("; ")
                ),
            }
        }
        LikelyCause::Truncated64BitTraceId => {
            blamed = Some(callee.to_owned());
            format!(
                "{caller} → {callee}: {calls} arrived with the right parent span but a trace id \
                 cut to its low 64 bits ({} became {}), so {callee}'s spans form a separate \
                 trace. {callee} (or a proxy in front of it) handles only 64-bit trace ids: \
                 configure its tracer or propagator for 128-bit ids.",
                c.trace_id, r.trace_id
            )
        }
        LikelyCause::TraceIdReplaced => format!(
            "{caller} → {callee}: {calls} arrived with the right parent span but an unrelated \
             trace id ({} became {}): something between them — a proxy or gateway — replaces \
             trace ids while keeping span ids.",
            c.trace_id, r.trace_id
        ),
        LikelyCause::UnexportedParent if enclosing => format!(
            "{caller} → {callee}: {calls} carried the trace context, but the client span of \
             {caller} that {callee} names as parent was never stored, so {callee}'s spans hang \
             loose in the trace. {caller} propagates context on a call it does not trace, or \
             the span was dropped on export (exporter queue full, export failed, or sent to \
             another collector)."
        ),
        LikelyCause::UnexportedParent if r.trace_id == c.trace_id => format!(
            "{caller} → {callee}: {calls} carried the trace context, but the span {callee} \
             names as parent is not {caller}'s client span and was never stored. A hop between \
             them — a proxy, a mesh sidecar, an uninstrumented service or an inner client span \
             — propagated the context under its own span id without exporting its span, or \
             the span was dropped on export."
        ),
        LikelyCause::UnexportedParent => format!(
            "{caller} → {callee}: {calls} reached {callee} with a parent from a trace that was \
             never stored: something between them (a proxy or mesh with its own tracer, or a \
             service exporting elsewhere) started its own trace, and its spans never arrived. \
             The header reached {callee}; the parent span was never exported."
        ),
        LikelyCause::LateExport => format!(
            "{caller} → {callee}: {calls} ended less than {} before this analysis and name a \
             parent span that has not arrived yet; it may still be in an exporter's queue. \
             Run the analysis again later: if the parent is still missing, it was never \
             exported.",
            format_duration(opts.late_export_grace_nanos)
        ),
    };
    (message, evidence, blamed)
}
