//! Which client span a callee belongs to: candidate callees by name and time, one-to-one
//! pairing, and where the trace went unexported.

use super::*;

/// Chooses one-to-one pairs among `(score, misfit, client, callee)` candidates: greedily, best
/// score then least misfit first, then improved by moving a client to a free callee or swapping
/// the callees of two clients while that raises the total score or, at equal score, lowers the
/// total misfit. Greedy alone pairs a client with a neighbour's callee whenever that one
/// happens to fit a little better; the swaps undo most of those.
pub(super) fn assign(candidates: Vec<(u32, u64, Loc, usize)>) -> Vec<(Loc, usize)> {
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
pub(super) fn start_distance(client_start: u64, callee_start: u64) -> u64 {
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
pub(super) fn fit(client: &Span, callee: &Span) -> u64 {
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
pub(super) fn nearest_first(
    list: &[(u64, usize)],
    t: u64,
    lo: u64,
    hi: u64,
    cap: usize,
) -> Vec<(u64, usize)> {
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

pub(super) fn build_index(traces: &[Trace]) -> Index<'_> {
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
pub(super) fn callee_names(span: SpanRef<'_>) -> Vec<String> {
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
pub(super) fn client_peer_names(span: &Span) -> Vec<String> {
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
pub(super) struct OperationAttrs<'a> {
    pub(super) method: Option<&'a str>,
    pub(super) rpc_method: Option<&'a str>,
    /// The client's request path, or the server's `url.path`/`http.target`.
    pub(super) path: Option<&'a str>,
    /// The server's `http.route`.
    pub(super) route: Option<&'a str>,
}

impl<'a> OperationAttrs<'a> {
    pub(super) fn client(span: &'a Span) -> Self {
        OperationAttrs {
            method: http_method(span),
            rpc_method: str_attr(span, "rpc.method"),
            path: request_path(span),
            route: None,
        }
    }

    pub(super) fn server(span: &'a Span) -> Self {
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
pub(super) fn operation_score(
    client: &OperationAttrs<'_>,
    server: &OperationAttrs<'_>,
) -> Option<u32> {
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

pub(super) fn unexported_cause(callee: &Span, opts: &PropagationOptions) -> LikelyCause {
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
pub(super) fn enclosing_span(
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

pub(super) fn in_subtree(index: &Index<'_>, loc: Loc, root: Loc) -> bool {
    if loc.0 != root.0 {
        return false;
    }
    let tree = &index.frags[loc.0].tree;
    loc.1 == root.1 || tree.ancestors(loc.1).any(|a| a == root.1)
}
