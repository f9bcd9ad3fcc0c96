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

mod pairing;
mod report;

use pairing::*;
use report::*;

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
