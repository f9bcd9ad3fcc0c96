//! The service dependency graph, maintained incrementally as traces arrive.
//!
//! [`DependencyGraph::add_trace`] extracts the calls of one trace and adds them to time buckets
//! (like [`crate::RedAggregator`]); there is no batch job. [`DependencyGraph::snapshot`] merges
//! the buckets of a window into a [`GraphSnapshot`]: services, edges with call counts, error
//! counts and latency quantiles, Jaeger's `/api/dependencies` links
//! ([`GraphSnapshot::jaeger_dependencies`]) and deep dependencies
//! ([`GraphSnapshot::transitive_dependencies`]).
//!
//! # Which spans make an edge
//!
//! * **A linked call**: a span whose parent is in the trace and belongs to another service
//!   (whatever the kinds, so traces without CLIENT spans still give edges), or a
//!   SERVER/CONSUMER span whose parent is a CLIENT/PRODUCER span of the same service (a service
//!   calling itself). Edge: parent's service → child's service.
//! * **A call to something uninstrumented**: a CLIENT/PRODUCER span with no child in another
//!   service and no SERVER/CONSUMER child. Edge: its service → the peer its attributes name
//!   (`peer.service`, `db.system`, `messaging.system` for producers, `server.address`,
//!   `net.peer.name`, the URL's host, `rpc.service`, in that order; ports stripped). A client
//!   span naming no peer gives no edge. A peer whose name is a cluster-internal host name of a
//!   service that reports spans (`ledger.prod.svc.cluster.local` for `ledger`) is that service,
//!   so a call whose trace context was lost still shows up as an edge to the right service.
//!   Any other peer is an *inferred* node.
//!
//! # Numbers per edge
//!
//! Calls and errors are weighted like RED (`1 / sampling probability`). A call is an error when
//! the client span or the server span failed. Latency is what the caller observed: the CLIENT
//! span's duration when there is one, otherwise the callee span's duration. A call is placed in
//! the bucket of the caller span's start time.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::Serialize;
use stitch_model::{Span, SpanKind, Trace};

use crate::aggregate::{SECOND, TimeBuckets, TimeWindow, merge_maps};
use crate::semconv::{host_keys, is_server_like, peer_name};
use crate::sketch::{DEFAULT_RELATIVE_ACCURACY, QuantileSketch};
use crate::tree::SpanTree;

/// How a [`DependencyGraph`] buckets its state.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphOptions {
    /// Width of a time bucket (default 60 s).
    pub resolution_nanos: u64,
    /// Buckets kept (default 1,440: one day at 60 s).
    pub max_buckets: usize,
    /// Relative accuracy of the latency quantiles (default 1%).
    pub relative_accuracy: f64,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            resolution_nanos: 60 * SECOND,
            max_buckets: 1440,
            relative_accuracy: DEFAULT_RELATIVE_ACCURACY,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct EdgeKey {
    parent: String,
    child: String,
}

#[derive(Clone, Debug)]
struct EdgeCell {
    calls: f64,
    errors: f64,
    sampled: u64,
    latency: QuantileSketch,
}

impl EdgeCell {
    fn merge(&mut self, other: &EdgeCell) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.sampled += other.sampled;
        let _ = self.latency.merge(&other.latency);
    }
}

type EdgeBucket = HashMap<EdgeKey, EdgeCell>;

/// The service dependency graph. See the module documentation.
#[derive(Clone, Debug)]
pub struct DependencyGraph {
    opts: GraphOptions,
    buckets: TimeBuckets<EdgeBucket>,
    /// Services that reported spans (as opposed to peers only named by attributes).
    services: BTreeSet<String>,
}

impl Default for DependencyGraph {
    fn default() -> Self {
        DependencyGraph::new(GraphOptions::default())
    }
}

/// A service in a [`GraphSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceNode {
    pub name: String,
    /// True when the service never reported spans: it is known only from the attributes of
    /// its callers' client spans (a database, an external API, an uninstrumented service).
    pub inferred: bool,
}

/// Calls from one service to another over a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyEdge {
    pub parent: String,
    pub child: String,
    /// Estimated calls (sum of sampling weights).
    pub call_count: f64,
    /// Calls actually seen.
    pub sampled_calls: u64,
    /// Estimated failed calls.
    pub error_count: f64,
    pub error_rate: f64,
    pub p50_nanos: u64,
    pub p95_nanos: u64,
    pub p99_nanos: u64,
    /// True when the child never reported spans (see [`ServiceNode::inferred`]).
    pub inferred_child: bool,
}

/// One link in Jaeger's `/api/dependencies` answer: `{"parent","child","callCount"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerDependency {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
}

/// A service reached from another through one or more calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitiveDependency {
    pub service: String,
    /// Calls on the shortest path: 1 for a direct dependency.
    pub depth: usize,
    /// The service one step before on that shortest path (the start service for depth 1).
    pub via: String,
}

/// The graph over one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphSnapshot {
    /// The bucket-aligned window the snapshot covers.
    pub window: TimeWindow,
    /// Every service that appears on an edge, by name.
    pub services: Vec<ServiceNode>,
    /// Edges ordered by parent, then child.
    pub edges: Vec<DependencyEdge>,
}

impl GraphSnapshot {
    /// The links of Jaeger's `/api/dependencies` (call counts rounded to whole calls).
    pub fn jaeger_dependencies(&self) -> Vec<JaegerDependency> {
        self.edges
            .iter()
            .map(|e| JaegerDependency {
                parent: e.parent.clone(),
                child: e.child.clone(),
                call_count: e.call_count.round().max(0.0) as u64,
            })
            .collect()
    }

    /// Edges leaving `service`.
    pub fn edges_from<'s>(&'s self, service: &'s str) -> impl Iterator<Item = &'s DependencyEdge> {
        self.edges.iter().filter(move |e| e.parent == service)
    }

    /// Every service `service` depends on, directly or through others, found breadth-first:
    /// ordered by depth, then name. The service itself is left out even when a cycle leads
    /// back to it.
    pub fn transitive_dependencies(&self, service: &str) -> Vec<TransitiveDependency> {
        self.bfs(service, |e| (&e.parent, &e.child))
    }

    /// Every service that depends on `service`, directly or through others (the reverse
    /// walk): who is affected when `service` fails.
    pub fn transitive_dependents(&self, service: &str) -> Vec<TransitiveDependency> {
        self.bfs(service, |e| (&e.child, &e.parent))
    }

    fn bfs<'s>(
        &'s self,
        start: &str,
        direction: impl Fn(&'s DependencyEdge) -> (&'s String, &'s String),
    ) -> Vec<TransitiveDependency> {
        let mut adjacency: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for e in &self.edges {
            let (from, to) = direction(e);
            adjacency.entry(from).or_default().insert(to);
        }
        let mut seen: BTreeSet<&str> = BTreeSet::from([start]);
        let mut queue: VecDeque<(&str, usize)> = VecDeque::from([(start, 0)]);
        let mut out = Vec::new();
        while let Some((node, depth)) = queue.pop_front() {
            for &next in adjacency.get(node).into_iter().flatten() {
                if seen.insert(next) {
                    out.push(TransitiveDependency {
                        service: next.to_owned(),
                        depth: depth + 1,
                        via: node.to_owned(),
                    });
                    queue.push_back((next, depth + 1));
                }
            }
        }
        out.sort_by(|a, b| {
            a.depth
                .cmp(&b.depth)
                .then_with(|| a.service.cmp(&b.service))
        });
        out
    }
}

impl DependencyGraph {
    pub fn new(opts: GraphOptions) -> DependencyGraph {
        let buckets = TimeBuckets::new(opts.resolution_nanos, opts.max_buckets);
        DependencyGraph {
            opts,
            buckets,
            services: BTreeSet::new(),
        }
    }

    /// Adds the calls of `trace` with weight 1.
    pub fn add_trace(&mut self, trace: &Trace) {
        self.add_trace_weighted(trace, 1.0);
    }

    /// Adds the calls of `trace`, each standing for `weight` calls.
    pub fn add_trace_weighted(&mut self, trace: &Trace, weight: f64) {
        self.add_trace_where(trace, |_| weight, |_| true);
    }

    /// Adds the calls of `trace` that involve a span for which `is_new` holds: a linked call
    /// when its callee span is new, a call to something uninstrumented when its client span is.
    /// A call stands for `weight(span)` calls, `span` being the callee span of a linked call
    /// and the client span of a call to something uninstrumented.
    /// The edges are found on the whole trace, so a trace added again with `is_new` true only
    /// for spans that arrived since adds each call once. (A client span counted as a call to
    /// an uninstrumented peer whose server span arrives later is counted a second time, as the
    /// linked call.)
    pub fn add_trace_where(
        &mut self,
        trace: &Trace,
        weight: impl Fn(&Span) -> f64,
        is_new: impl Fn(&Span) -> bool,
    ) {
        let tree = SpanTree::build(trace);
        // A client span with a server-like child: that child is the call. Other spans of the
        // callee parented to the client span (Zipkin's shared-span children, which name the
        // client half as parent) are work inside that call, not further calls.
        let mut has_server_child = vec![false; tree.len()];
        for (id, node) in tree.nodes() {
            if is_server_like(node.span().kind)
                && let Some(p) = tree.parent(id)
            {
                has_server_child[p.index()] = true;
            }
        }
        for (id, node) in tree.nodes() {
            let span = node.span();
            let service = node.service_name();
            if !self.services.contains(service) {
                self.services.insert(service.to_owned());
            }
            if let Some(p) = tree.parent(id) {
                let parent = tree.node(p);
                let parent_span = parent.span();
                let parent_service = parent.service_name();
                let caller_is_client =
                    matches!(parent_span.kind, SpanKind::Client | SpanKind::Producer);
                let is_call = if caller_is_client && has_server_child[p.index()] {
                    is_server_like(span.kind)
                } else {
                    parent_service != service || (caller_is_client && is_server_like(span.kind))
                };
                if is_call && is_new(span) {
                    let latency = if parent_span.kind == SpanKind::Client {
                        parent_span.duration_nanos()
                    } else {
                        span.duration_nanos()
                    };
                    let error = span.is_error() || (caller_is_client && parent_span.is_error());
                    self.add_call(
                        parent_service,
                        service,
                        parent_span,
                        latency,
                        error,
                        weight(span),
                    );
                }
            }
            if matches!(span.kind, SpanKind::Client | SpanKind::Producer) && is_new(span) {
                let linked = tree.children(id).iter().any(|&c| {
                    let child = tree.node(c);
                    child.service_name() != service || is_server_like(child.span().kind)
                });
                if !linked && let Some(peer) = peer_name(span) {
                    self.add_call(
                        service,
                        &peer,
                        span,
                        span.duration_nanos(),
                        span.is_error(),
                        weight(span),
                    );
                }
            }
        }
    }

    fn add_call(
        &mut self,
        parent: &str,
        child: &str,
        caller: &Span,
        latency: u64,
        error: bool,
        weight: f64,
    ) {
        if !(weight.is_finite() && weight > 0.0) {
            return;
        }
        let alpha = self.opts.relative_accuracy;
        let Some(bucket) = self.buckets.slot(caller.start_time_unix_nano) else {
            return;
        };
        let key = EdgeKey {
            parent: parent.to_owned(),
            child: child.to_owned(),
        };
        let cell = bucket.entry(key).or_insert_with(|| EdgeCell {
            calls: 0.0,
            errors: 0.0,
            sampled: 0,
            latency: QuantileSketch::new(alpha),
        });
        cell.calls += weight;
        if error {
            cell.errors += weight;
        }
        cell.sampled += 1;
        cell.latency.add_weighted(latency, weight);
    }

    /// The graph over `window` (widened to whole buckets).
    pub fn snapshot(&self, window: TimeWindow) -> GraphSnapshot {
        let mut merged: EdgeBucket = HashMap::new();
        for bucket in self.buckets.in_window(window) {
            merge_maps(&mut merged, bucket, EdgeCell::merge);
        }
        // A peer named by host (`ledger.prod.svc.cluster.local:8080`) that is a service which
        // reports spans (`ledger`) is that service.
        let mut resolved: EdgeBucket = HashMap::new();
        for (key, cell) in merged {
            let key = EdgeKey {
                child: self.resolve(&key.child),
                parent: key.parent,
            };
            match resolved.get_mut(&key) {
                Some(c) => c.merge(&cell),
                None => {
                    resolved.insert(key, cell);
                }
            }
        }
        let merged = resolved;
        let mut cells: Vec<(EdgeKey, EdgeCell)> = merged.into_iter().collect();
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for (k, _) in &cells {
            names.insert(&k.parent);
            names.insert(&k.child);
        }
        let services = names
            .into_iter()
            .map(|n| ServiceNode {
                name: n.to_owned(),
                inferred: !self.services.contains(n),
            })
            .collect();
        let edges = cells
            .iter()
            .map(|(k, c)| DependencyEdge {
                parent: k.parent.clone(),
                child: k.child.clone(),
                call_count: c.calls,
                sampled_calls: c.sampled,
                error_count: c.errors,
                error_rate: if c.calls > 0.0 {
                    c.errors / c.calls
                } else {
                    0.0
                },
                p50_nanos: c.latency.quantile(0.50).unwrap_or(0),
                p95_nanos: c.latency.quantile(0.95).unwrap_or(0),
                p99_nanos: c.latency.quantile(0.99).unwrap_or(0),
                inferred_child: !self.services.contains(&k.child),
            })
            .collect();
        GraphSnapshot {
            window: self.buckets.aligned(window),
            services,
            edges,
        }
    }

    /// The reporting service a peer name stands for, or the name itself.
    fn resolve(&self, peer: &str) -> String {
        if self.services.contains(peer) {
            return peer.to_owned();
        }
        let mut keys = Vec::new();
        host_keys(peer, &mut keys);
        keys.into_iter()
            .find(|k| self.services.contains(k))
            .unwrap_or_else(|| peer.to_owned())
    }

    /// The graph over everything kept.
    pub fn snapshot_all(&self) -> GraphSnapshot {
        let window = self
            .buckets
            .covered()
            .unwrap_or_else(|| TimeWindow::new(0, 0));
        self.snapshot(window)
    }

    /// Deep dependencies of `service` over everything kept; see
    /// [`GraphSnapshot::transitive_dependencies`].
    pub fn transitive_dependencies(&self, service: &str) -> Vec<TransitiveDependency> {
        self.snapshot_all().transitive_dependencies(service)
    }

    /// Adds everything `other` holds. Both must use the same resolution and accuracy;
    /// otherwise nothing is merged and `false` is returned.
    pub fn merge(&mut self, other: &DependencyGraph) -> bool {
        if self.buckets.resolution() != other.buckets.resolution()
            || self.opts.relative_accuracy != other.opts.relative_accuracy
        {
            return false;
        }
        for (start, theirs) in other.buckets.buckets() {
            if let Some(mine) = self.buckets.slot(start) {
                merge_maps(mine, theirs, EdgeCell::merge);
            }
        }
        self.services.extend(other.services.iter().cloned());
        true
    }

    /// A copy of the buckets that overlap `window` (and of the services seen): it answers
    /// [`DependencyGraph::snapshot`] for `window` as `self` does, and calls added to it change
    /// the copy only. Its buckets are not bounded.
    pub fn window_copy(&self, window: TimeWindow) -> DependencyGraph {
        DependencyGraph {
            opts: self.opts.clone(),
            buckets: self.buckets.window_copy(window),
            services: self.services.clone(),
        }
    }

    /// Drops every bucket that ends at or before `t`.
    pub fn prune_before(&mut self, t: u64) {
        self.buckets.prune_before(t);
    }

    /// Calls not added because they were older than every bucket kept.
    pub fn dropped_calls(&self) -> u64 {
        self.buckets.dropped()
    }
}
