//! Findings: what a human would point at in a waterfall, found automatically, explained in one
//! plain sentence and ranked by the time it costs the request.
//!
//! Every finding has a [`FindingKind`], a one-line `title`, the spans involved, `cost_nanos`
//! (its time on the critical path) and, where a fix can be estimated, `saving_nanos`. The
//! kinds and the heuristics behind them:
//!
//! 1. [`FindingKind::DominantLeaf`] — "the widest bar two levels deep": the leaf span (no
//!    synchronous child) with the most critical-path time, when it holds at least
//!    [`AnalysisOptions::dominant_leaf_min_share`] of the trace. Only one per trace. No saving
//!    is estimated: the trace cannot tell whether the work is reducible.
//! 2. [`FindingKind::UninstrumentedTime`] — a stretch of the critical path inside a span that
//!    has children, during which none of its children was running: the span's own code
//!    (a synchronous log write, a lock, CPU work) or an uninstrumented call. One finding per
//!    stretch of at least the gap threshold (`max(gap_min_nanos, gap_min_share × trace)`).
//!    Events of the span at the stretch's ends name it ("between X and Y").
//! 3. [`FindingKind::ClientServerGap`] — a CLIENT span whose SERVER child (another service)
//!    accounts for only part of it: the rest, before the server started and after it ended,
//!    is network, queueing, connection setup and serialization. Cost: the client span's
//!    critical-path time outside its children; reported from the gap threshold.
//! 4. [`FindingKind::SequentialCalls`] — sibling calls to different targets made one after the
//!    other. To stay clear of false positives a run only forms from calls that are remote
//!    (CLIENT/PRODUCER, or a child span of another service), not database queries (successive
//!    queries usually depend on each other), not writes (HTTP POST/PUT/PATCH/DELETE or a name
//!    such as "Charge Card", "Reserve Items": the order of side effects matters), not gates
//!    (authenticate, validate, authorize: what follows depends on the outcome), not failed,
//!    each at least `sequential_min_call_nanos` long, and issued back to back: the caller was
//!    idle between them for at most `max(sequential_max_idle_nanos,
//!    sequential_max_idle_share × the shorter call)` — work in between suggests it used the
//!    first result. Saving: the run's total minus its longest call (what running them in
//!    parallel would take), bounded by their critical-path time.
//! 5. [`FindingKind::RepeatedCalls`] — at least `repeated_min_calls` sibling calls to the same
//!    endpoint (same target and operation: N+1), or database queries to the same database
//!    (separate round trips that one transaction or batch could do). Saving: their
//!    critical-path time minus the shortest of them — a batched call is assumed to cost about
//!    one round trip, and the cheapest observed round trip is the best estimate of one (seed
//!    000: 3 round trips of 12, 15 and 18 ms, 45 ms in all; one transaction measured 12 ms,
//!    saving 33 ms).
//! 6. [`FindingKind::Retries`] — consecutive sibling calls to the same endpoint where each
//!    attempt but the last failed (error status; timeouts are named as such). Cost: the failed
//!    attempts' critical-path time and the caller's waiting between attempts. A run of at
//!    least `retry_storm_min_attempts` is a retry storm and is reported whatever it costs.
//! 7. [`FindingKind::ErrorOrigin`] — a span with error status none of whose children failed:
//!    the error started there. The ancestors with error status above it only carried it; the
//!    title names them. Origins with the same parent and endpoint are one finding; failed
//!    attempts that a later retry recovered are left to the retries finding, and failed
//!    attempts a reported retries finding covers are described there (where the error
//!    surfaced) rather than charged a second time.
//! 8. [`FindingKind::SynchronousTail`] — calls at the very end of a span (nothing but them after
//!    its last other child, and the span ends within `tail_max_trailing_share` of its duration
//!    after them) to targets whose names mark fire-and-forget work
//!    ([`AnalysisOptions::tail_keywords`]: notification, email, analytics, audit, ...). The
//!    caller's response does not seem to need them; sending them asynchronously saves their
//!    critical-path time.
//! 9. [`FindingKind::BrokenPropagation`] — a call whose trace context was lost. It needs the
//!    traces around this one, so [`crate::analyze`] does not produce it:
//!    [`crate::TraceAnalysis::add_broken_propagation`] adds it from the hops
//!    [`crate::find_broken_propagation`] finds (the query API and `stitch trace` do both).
//!    On the caller's side it costs the call's critical-path time and replaces a dominant-leaf
//!    finding on the same span; on the callee's side it costs nothing and names the caller's
//!    trace.
//!
//! Thresholds: every finding but error origins and retry storms must cost at least
//! `min_cost_nanos`; restructuring findings (4, 5, 6, 8) at least `min_share` of the trace;
//! gap findings (2, 3) at least the gap threshold. Findings are ranked by cost, then kind,
//! then time, and cut at `max_findings`.
//!
//! Cost: every detector looks at each span and its children a constant number of times;
//! siblings are grouped per parent with sorting and hashing, never compared all against all.
//! O(n log n) overall. Calls are classified (attributes read) only when a detector asks, and
//! the detectors about groups of sibling calls skip a parent whose children's critical-path
//! time is below the reporting threshold.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde::Serialize;
use stitch_model::{AnyValue, Span, SpanId, SpanKind, StatusCode, find_attribute};

use crate::critical_path::{PathIndex, intersect};
use crate::fast_hash::{FastMap, FastSet};
use crate::json;
use crate::render::format_duration;
use crate::timeline::{Timeline, shift_time};

/// Thresholds and word lists of the heuristics. The defaults are documented per field.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisOptions {
    /// Adjust clock skew before analysing (default `true`).
    pub adjust_clock_skew: bool,
    /// Floor on the cost of any finding (default 1 ms).
    pub min_cost_nanos: u64,
    /// Minimum cost of restructuring findings (sequential, repeated, retries, synchronous
    /// tail) as a share of the trace (default 0.02: below 2% of the request a code change is
    /// rarely worth it).
    pub min_share: f64,
    /// Gap findings (uninstrumented time, client→server gaps) need at least
    /// `max(gap_min_nanos, gap_min_share × trace)` (defaults 10 ms and 0.05).
    pub gap_min_nanos: u64,
    pub gap_min_share: f64,
    /// A leaf is dominant from this share of the trace's critical path (default 0.25).
    pub dominant_leaf_min_share: f64,
    /// Shortest call that takes part in a sequential-calls finding (default 5 ms).
    pub sequential_min_call_nanos: u64,
    /// Idle time allowed between two calls of a sequential run: the larger of an absolute
    /// time (default 2 ms) and a share of the shorter call (default 0.10).
    pub sequential_max_idle_nanos: u64,
    pub sequential_max_idle_share: f64,
    /// Sibling calls to one endpoint or database from which they are reported (default 3).
    pub repeated_min_calls: usize,
    /// Attempts from which retries are a retry storm (default 5).
    pub retry_storm_min_attempts: usize,
    /// Words (whole words of the target or the span name, case-insensitive) that mark work a
    /// response does not need to wait for.
    pub tail_keywords: Vec<String>,
    /// How long a span may go on after its tail calls, as a share of its duration (default
    /// 0.10), for them to count as its tail.
    pub tail_max_trailing_share: f64,
    /// At most this many findings are returned (default 25).
    pub max_findings: usize,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            adjust_clock_skew: true,
            min_cost_nanos: 1_000_000,
            min_share: 0.02,
            gap_min_nanos: 10_000_000,
            gap_min_share: 0.05,
            dominant_leaf_min_share: 0.25,
            sequential_min_call_nanos: 5_000_000,
            sequential_max_idle_nanos: 2_000_000,
            sequential_max_idle_share: 0.10,
            repeated_min_calls: 3,
            retry_storm_min_attempts: 5,
            tail_keywords: [
                "notification",
                "notifications",
                "notify",
                "notifier",
                "email",
                "emails",
                "mail",
                "mailer",
                "sms",
                "push",
                "analytics",
                "audit",
                "event",
                "events",
                "log",
                "logs",
                "logging",
                "logger",
                "tracking",
                "telemetry",
                "metrics",
                "webhook",
                "webhooks",
            ]
            .map(String::from)
            .to_vec(),
            tail_max_trailing_share: 0.10,
            max_findings: 25,
        }
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FindingKind {
    DominantLeaf,
    UninstrumentedTime,
    ClientServerGap,
    SequentialCalls,
    RepeatedCalls,
    Retries,
    ErrorOrigin,
    SynchronousTail,
    /// A call whose trace context was lost: the request continues in another trace. Found
    /// across traces ([`crate::find_broken_propagation`]) and added to a trace's analysis by
    /// [`crate::TraceAnalysis::add_broken_propagation`].
    BrokenPropagation,
}

/// One thing worth fixing or knowing in a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: FindingKind,
    /// One plain-language sentence.
    pub title: String,
    /// The spans involved, the main one first.
    #[serde(serialize_with = "json::span_ids")]
    pub spans: Vec<SpanId>,
    /// Time the finding accounts for on the critical path.
    pub cost_nanos: u64,
    /// Estimated time the fix would save, where one can be estimated.
    pub saving_nanos: Option<u64>,
    /// Service and operation of the span where the fix belongs (the caller for call
    /// findings).
    pub service: String,
    pub operation: String,
    /// The called service or host, for findings about calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Number of calls or attempts, for repeated calls and retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

pub(crate) struct Ctx<'x, 't, 'a> {
    pub tl: &'x Timeline<'t, 'a>,
    pub path: &'x PathIndex,
    pub opts: &'x AnalysisOptions,
    pub shift: &'x [i64],
}

/// Runs every detector and ranks the findings.
pub(crate) fn find(ctx: &Ctx<'_, '_, '_>) -> Vec<Finding> {
    let tl = ctx.tl;
    let Some(root) = tl.primary_root() else {
        return Vec::new();
    };
    let duration = tl.width(root);
    let failed: Vec<bool> = (0..tl.len()).map(|i| has_error(tl.span(i))).collect();
    // Calls are classified when a detector first looks at them: classification reads a span's
    // attributes, and in a large trace the detectors look at few of its spans.
    let calls: Vec<OnceCell<Option<Box<Call<'_>>>>> =
        (0..tl.len()).map(|_| OnceCell::new()).collect();
    let mut d = Detector {
        ctx,
        duration,
        calls: &calls,
        failed: &failed,
        retried: vec![false; tl.len()],
        retry_finding: vec![None; tl.len()],
        out: Vec::new(),
        origin_of_error: Vec::new(),
    };
    // Retries first: they claim attempts that the repeated-calls and error-origin detectors
    // must not report again.
    for (p, &p_failed) in failed.iter().enumerate() {
        if !tl.kids(p).is_empty() && (d.on_path(p) || p_failed) {
            d.retries_and_repeats(p);
        }
    }
    for p in 0..tl.len() {
        if !d.on_path(p) || tl.kids(p).is_empty() {
            continue;
        }
        d.uninstrumented_and_gaps(p);
        d.sequential(p);
        d.tail(p);
    }
    d.error_origins();
    d.dominant_leaf();

    let mut out = d.out;
    out.sort_by(|a, b| {
        (
            std::cmp::Reverse(a.0.cost_nanos),
            a.0.kind,
            a.1,
            a.0.spans.first(),
        )
            .cmp(&(
                std::cmp::Reverse(b.0.cost_nanos),
                b.0.kind,
                b.1,
                b.0.spans.first(),
            ))
    });
    out.truncate(ctx.opts.max_findings);
    out.into_iter().map(|(f, _)| f).collect()
}

struct Detector<'c, 'x, 't, 'a> {
    ctx: &'c Ctx<'x, 't, 'a>,
    duration: u64,
    /// Each span's classification, made on first use ([`Detector::call`]).
    calls: &'c [OnceCell<Option<Box<Call<'a>>>>],
    /// Error status per node.
    failed: &'c [bool],
    retried: Vec<bool>,
    /// The reported retries finding (index into `out`) that claimed each attempt.
    retry_finding: Vec<Option<usize>>,
    /// Findings with the time they start at (for ranking ties).
    out: Vec<(Finding, u64)>,
    /// Error-origin spans, to keep the dominant leaf from repeating one.
    origin_of_error: Vec<usize>,
}

/// What a remote call goes to. Classifying every call of a large trace is a large part of
/// its analysis, so what only some detectors need (a statement's shape, whether the call
/// writes or gates) is worked out when first asked for.
#[derive(Clone, Debug)]
struct Call<'a> {
    /// The called service, host or database, for display and grouping.
    target: Cow<'a, str>,
    /// Database calls: the system (and namespace) for display.
    db: Option<Cow<'a, str>>,
    /// Database calls: the statement (or `None`: the name stands for it).
    statement: Option<&'a str>,
    /// The normalised statement of a database call, once asked for.
    shape: OnceCell<String>,
    /// The span name.
    name: &'a str,
    /// The request method (HTTP) or, without one, the first word of the name.
    method: Option<&'a str>,
    kind: SpanKind,
    /// Messaging destination, for tail-work names.
    destination: Option<&'a str>,
    /// Child spans of another service under this call (SERVER side), in `lo` order.
    remote_kids: Vec<usize>,
}

impl<'a> Call<'a> {
    /// The operation called: the normalised statement for database calls, else the name.
    fn op(&self) -> &str {
        match &self.db {
            Some(_) => self.shape(),
            None => self.name,
        }
    }

    fn endpoint(&self) -> (&str, &str) {
        (&self.target, self.op())
    }

    /// The shape of a database call's statement (its name when it has none).
    fn shape(&self) -> &str {
        self.shape.get_or_init(|| {
            self.statement
                .map_or_else(|| self.name.to_owned(), normalize_statement)
        })
    }

    /// Whether the call changes state (so a later call may depend on it).
    fn writes(&self) -> bool {
        let is = |list: &[&str]| {
            self.method
                .is_some_and(|m| list.iter().any(|x| x.eq_ignore_ascii_case(m)))
        };
        if is(&WRITE_METHODS) {
            true
        } else if is(&READ_METHODS) {
            false
        } else {
            self.kind == SpanKind::Producer || has_word(self.name, &WRITE_VERBS)
        }
    }

    /// Whether the call decides whether the request goes on (auth, validation, locks).
    fn gates(&self) -> bool {
        has_word(self.name, &GATE_VERBS) || has_word(&self.target, &GATE_VERBS)
    }
}

impl<'c, 'x, 't, 'a> Detector<'c, 'x, 't, 'a> {
    fn tl(&self) -> &'x Timeline<'t, 'a> {
        self.ctx.tl
    }

    fn opts(&self) -> &'x AnalysisOptions {
        self.ctx.opts
    }

    fn call(&self, i: usize) -> Option<&'c Call<'a>> {
        let tl = self.ctx.tl;
        self.calls[i]
            .get_or_init(|| call_info(tl, i).map(Box::new))
            .as_deref()
    }

    /// Critical-path time under the synchronous children of `p`: no finding about a group of
    /// them (sequential, repeated, trailing calls) can cost more.
    fn kids_path_time(&self, p: usize) -> u64 {
        self.tl()
            .sync_kids(p)
            .map(|c| self.ctx.path.subtree[c])
            .sum()
    }

    fn on_path(&self, i: usize) -> bool {
        self.ctx.path.subtree[i] > 0
    }

    fn share_threshold(&self) -> u64 {
        let o = self.opts();
        o.min_cost_nanos
            .max((o.min_share * self.duration as f64).ceil() as u64)
    }

    fn gap_threshold(&self) -> u64 {
        let o = self.opts();
        o.min_cost_nanos
            .max(o.gap_min_nanos)
            .max((o.gap_min_share * self.duration as f64).ceil() as u64)
    }

    fn pct(&self, v: u64) -> String {
        if self.duration == 0 {
            return "0%".to_owned();
        }
        format!("{:.0}%", 100.0 * v as f64 / self.duration as f64)
    }

    fn push(&mut self, main: usize, f: Finding) {
        let at = self.tl().lo[main];
        self.out.push((f, at));
    }

    fn finding(&self, kind: FindingKind, at: usize, spans: Vec<usize>) -> Finding {
        let tl = self.tl();
        Finding {
            kind,
            title: String::new(),
            spans: spans.iter().map(|&i| tl.span(i).span_id).collect(),
            cost_nanos: 0,
            saving_nanos: None,
            service: tl.service(at).to_owned(),
            operation: tl.span(at).name.clone(),
            target: None,
            count: None,
        }
    }

    /// `target "operation"` of a call, or `service "name"` of any span.
    fn call_label(&self, i: usize) -> String {
        match self.call(i) {
            Some(c) => format!("{} {:?}", c.target, self.tl().span(i).name),
            None => format!("{} {:?}", self.tl().service(i), self.tl().span(i).name),
        }
    }

    // ----- 1. dominant leaf -------------------------------------------------------------

    fn dominant_leaf(&mut self) {
        let tl = self.tl();
        let path = self.ctx.path;
        let best = (0..tl.len())
            .filter(|&i| path.own[i] > 0 && tl.sync_kids(i).next().is_none())
            .max_by_key(|&i| {
                (
                    path.own[i],
                    std::cmp::Reverse(tl.lo[i]),
                    std::cmp::Reverse(i),
                )
            });
        let Some(leaf) = best else { return };
        let cost = path.own[leaf];
        let min = self
            .opts()
            .min_cost_nanos
            .max((self.opts().dominant_leaf_min_share * self.duration as f64).ceil() as u64);
        if cost < min || self.origin_of_error.contains(&leaf) {
            return;
        }
        let span = tl.span(leaf);
        let service = tl.service(leaf);
        let what = match self.call(leaf) {
            Some(Call { db: Some(db), .. }) => {
                format!(
                    "{service} spent {} on the database query {:?} ({db})",
                    format_duration(cost),
                    span.name
                )
            }
            Some(c)
                if tl.kids(leaf).is_empty()
                    && matches!(span.kind, SpanKind::Client | SpanKind::Producer) =>
            {
                format!(
                    "{service} waited {} on {:?} to {}, a call that leaves the trace (an external or uninstrumented service)",
                    format_duration(cost),
                    span.name,
                    c.target
                )
            }
            _ => match tl.parent(leaf) {
                Some(p) => format!(
                    "{service} spent {} in {:?} (under {:?})",
                    format_duration(cost),
                    span.name,
                    tl.span(p).name
                ),
                None => format!(
                    "{service} spent {} in {:?}",
                    format_duration(cost),
                    span.name
                ),
            },
        };
        let mut f = self.finding(FindingKind::DominantLeaf, leaf, vec![leaf]);
        f.title = format!(
            "{what} — {} of the request: the widest bar on the critical path",
            self.pct(cost)
        );
        f.cost_nanos = cost;
        f.target = self.call(leaf).map(|c| c.target.to_string());
        self.push(leaf, f);
    }

    // ----- 2 and 3. uninstrumented time, client→server gaps ----------------------------

    fn uninstrumented_and_gaps(&mut self, p: usize) {
        let tl = self.tl();
        let path = self.ctx.path;
        let threshold = self.gap_threshold();
        if path.own[p] < threshold || tl.sync_kids(p).next().is_none() {
            return;
        }
        let stretches = intersect(path.sections(p), &tl.self_intervals(p));
        let remote = self
            .call(p)
            .filter(|c| tl.span(p).kind == SpanKind::Client && !c.remote_kids.is_empty());
        if let Some(call) = remote {
            let cost: u64 = stretches.iter().map(|(a, b)| b - a).sum();
            if cost < threshold {
                return;
            }
            let first = call.remote_kids[0];
            let before = tl.lo[first] - tl.lo[p];
            let last_end = call
                .remote_kids
                .iter()
                .map(|&k| tl.hi[k])
                .max()
                .unwrap_or(tl.hi[p]);
            let after = tl.hi[p] - last_end;
            let callee = tl.service(first);
            let mut spans = vec![p];
            spans.extend(&call.remote_kids);
            let mut f = self.finding(FindingKind::ClientServerGap, p, spans);
            f.title = format!(
                "{} → {callee} {:?}: {} of the call's {} was spent outside {callee} ({} before it started, {} after it finished) — network, queueing, connection setup or serialization",
                tl.service(p),
                tl.span(p).name,
                format_duration(cost),
                format_duration(tl.width(p)),
                format_duration(before),
                format_duration(after),
            );
            f.cost_nanos = cost;
            f.target = Some(callee.to_owned());
            self.push(p, f);
            return;
        }
        for (a, b) in stretches {
            if b - a < threshold {
                continue;
            }
            let between = self.events_around(p, a, b);
            let mut f = self.finding(FindingKind::UninstrumentedTime, p, vec![p]);
            f.title = format!(
                "{} spent {} in {:?} with no child span running{between} — uninstrumented work such as a synchronous log write, a lock or CPU-heavy code",
                tl.service(p),
                format_duration(b - a),
                tl.span(p).name,
            );
            f.cost_nanos = b - a;
            self.out.push((f, a));
        }
    }

    /// ` (between "X" and "Y")`, `(after "X")`, `(before "Y")` from the span's events at the
    /// ends of `[a, b)`, or nothing.
    fn events_around(&self, p: usize, a: u64, b: u64) -> String {
        let span = self.tl().span(p);
        let shift = self.ctx.shift.get(p).copied().unwrap_or(0);
        let tol = ((b - a) / 20).max(1_000_000);
        let near = |t: u64, at: u64| t + tol >= at && t <= at + tol;
        let mut start = None;
        let mut end = None;
        for e in &span.events {
            let t = shift_time(e.time_unix_nano, shift);
            if near(t, a) {
                start = Some(e.name.as_str());
            }
            if end.is_none() && near(t, b) {
                end = Some(e.name.as_str());
            }
        }
        match (start, end) {
            (Some(x), Some(y)) if x != y => format!(" (between {x:?} and {y:?})"),
            (Some(x), _) => format!(" (after {x:?})"),
            (None, Some(y)) => format!(" (before {y:?})"),
            (None, None) => String::new(),
        }
    }

    // ----- 4. sequential calls -----------------------------------------------------------

    fn sequential(&mut self, p: usize) {
        if self.kids_path_time(p) < self.share_threshold() {
            return;
        }
        let tl = self.tl();
        let mut run: Vec<usize> = Vec::new();
        let mut endpoints: FastSet<(&str, &str)> = FastSet::default();
        let kids: Vec<usize> = tl.sync_kids(p).collect();
        for c in kids {
            if !self.parallel_candidate(c) {
                self.flush_sequential(p, &run);
                run.clear();
                endpoints.clear();
                continue;
            }
            let endpoint = self.call(c).map_or(("", ""), Call::endpoint);
            let joins = run.last().is_some_and(|&last| {
                let idle_ok = tl.lo[c] >= tl.hi[last] && {
                    let shorter = tl.width(last).min(tl.width(c));
                    let allowed = self
                        .opts()
                        .sequential_max_idle_nanos
                        .max((self.opts().sequential_max_idle_share * shorter as f64) as u64);
                    tl.lo[c] - tl.hi[last] <= allowed
                };
                idle_ok && !endpoints.contains(&endpoint)
            });
            if !joins {
                self.flush_sequential(p, &run);
                run.clear();
                endpoints.clear();
            }
            run.push(c);
            endpoints.insert(endpoint);
        }
        self.flush_sequential(p, &run);
    }

    fn parallel_candidate(&self, c: usize) -> bool {
        let tl = self.tl();
        let Some(call) = self.call(c) else {
            return false;
        };
        call.db.is_none()
            && !self.failed[c]
            && tl.width(c) >= self.opts().sequential_min_call_nanos
            && !call.writes()
            && !call.gates()
            && !self.is_tail_work(c)
    }

    fn flush_sequential(&mut self, p: usize, run: &[usize]) {
        if run.len() < 2 {
            return;
        }
        let tl = self.tl();
        let total: u64 = run.iter().map(|&c| tl.width(c)).sum();
        let longest = run.iter().map(|&c| tl.width(c)).max().unwrap_or(0);
        let on_path: u64 = run.iter().map(|&c| self.ctx.path.subtree[c]).sum();
        let cost = (total - longest).min(on_path);
        if cost < self.share_threshold() {
            return;
        }
        let calls: Vec<String> = run
            .iter()
            .map(|&c| format!("{} ({})", self.call_label(c), format_duration(tl.width(c))))
            .collect();
        let mut f = self.finding(FindingKind::SequentialCalls, p, run.to_vec());
        f.title = format!(
            "{} called {} one after the other in {:?}; nothing in the trace shows that one needs another's result — in parallel they would save ~{}",
            tl.service(p),
            join_words(&calls, "then"),
            tl.span(p).name,
            format_duration(cost),
        );
        f.cost_nanos = cost;
        f.saving_nanos = Some(cost);
        f.target = Some(
            run.iter()
                .filter_map(|&c| self.call(c).map(|k| k.target.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        );
        f.count = Some(run.len() as u32);
        self.push(run[0], f);
    }

    // ----- 5 and 6. repeated calls, retries ---------------------------------------------

    fn retries_and_repeats(&mut self, p: usize) {
        let tl = self.tl();
        // Retries need a failed call, repeated calls several calls costing enough.
        let repeats_possible = self.on_path(p) && self.kids_path_time(p) >= self.share_threshold();
        if !repeats_possible && !tl.sync_kids(p).any(|c| self.failed[c]) {
            return;
        }
        let calls = tl.sync_kids(p).filter(|&c| self.call(c).is_some());
        let (mut count, mut any_failed) = (0, false);
        for c in calls {
            count += 1;
            any_failed |= self.failed[c];
        }
        if count < 2 || (!any_failed && count < self.opts().repeated_min_calls) {
            return;
        }
        // Endpoint groups for retries, in lo order.
        let mut by_endpoint: FastMap<(&str, &str), Vec<usize>> = FastMap::default();
        let mut order: Vec<(&str, &str)> = Vec::new();
        for c in tl.sync_kids(p).filter(|_| any_failed) {
            if let Some(call) = self.call(c) {
                let key = call.endpoint();
                let group = by_endpoint.entry(key).or_default();
                if group.is_empty() {
                    order.push(key);
                }
                group.push(c);
            }
        }
        let mut claimed: Vec<usize> = Vec::new();
        for key in &order {
            let group = &by_endpoint[key];
            let mut run: Vec<usize> = Vec::new();
            for &c in group {
                let joins = run
                    .last()
                    .is_some_and(|&last| self.failed[last] && tl.lo[c] >= tl.hi[last]);
                if !joins {
                    claimed.extend(self.flush_retries(p, &run));
                    run.clear();
                }
                run.push(c);
            }
            claimed.extend(self.flush_retries(p, &run));
        }
        for &c in &claimed {
            self.retried[c] = true;
        }
        if !repeats_possible {
            return;
        }

        // Repeated calls: database queries grouped by database, other calls by endpoint.
        let mut by_target: FastMap<(&str, &str), Vec<usize>> = FastMap::default();
        let mut order: Vec<(&str, &str)> = Vec::new();
        for c in tl.sync_kids(p) {
            if self.retried[c] {
                continue;
            }
            if let Some(call) = self.call(c) {
                let key = match &call.db {
                    Some(_) => (&*call.target, ""),
                    None => call.endpoint(),
                };
                let group = by_target.entry(key).or_default();
                if group.is_empty() {
                    order.push(key);
                }
                group.push(c);
            }
        }
        for key in order {
            let group = &by_target[&key];
            if group.len() >= self.opts().repeated_min_calls.max(2) {
                self.flush_repeated(p, group);
            }
        }
    }

    /// Reports a retry run (attempts of one endpoint, each but the last failed). Returns the
    /// attempts it claims.
    fn flush_retries(&mut self, p: usize, run: &[usize]) -> Vec<usize> {
        if run.len() < 2 {
            return Vec::new();
        }
        let tl = self.tl();
        let path = self.ctx.path;
        let last = *run.last().expect("non-empty");
        let all_failed = self.failed[last];
        let failed: Vec<usize> = if all_failed {
            run.to_vec()
        } else {
            run[..run.len() - 1].to_vec()
        };
        let window = (
            tl.lo[run[0]],
            if all_failed { tl.hi[last] } else { tl.lo[last] },
        );
        let waiting = time_within(path.sections(p), window);
        let cost: u64 = failed.iter().map(|&c| path.subtree[c]).sum::<u64>() + waiting;
        let storm = run.len() >= self.opts().retry_storm_min_attempts;
        if !storm && cost < self.share_threshold() {
            // Too cheap to report, but the attempts were still retried.
            return run.to_vec();
        }
        let timeouts = failed.iter().filter(|&&c| is_timeout(tl.span(c))).count();
        let reason = if timeouts == failed.len() {
            let longest = failed.iter().map(|&c| tl.width(c)).max().unwrap_or(0);
            format!("timed out (after up to {})", format_duration(longest))
        } else {
            failure_reason(tl.span(failed[0]))
        };
        let outcome = if all_failed {
            "and every attempt failed"
        } else {
            "before the last one succeeded"
        };
        let mut f = self.finding(FindingKind::Retries, p, run.to_vec());
        f.title = format!(
            "{}{} called {} {} times in {:?}: {} attempts {reason} {outcome} — the retries cost {} on the critical path",
            if storm { "Retry storm: " } else { "" },
            tl.service(p),
            self.call_label(run[0]),
            run.len(),
            tl.span(p).name,
            failed.len(),
            format_duration(cost),
        );
        f.cost_nanos = cost;
        f.target = self.call(run[0]).map(|c| c.target.to_string());
        f.count = Some(run.len() as u32);
        for &c in run {
            self.retry_finding[c] = Some(self.out.len());
        }
        self.push(run[0], f);
        run.to_vec()
    }

    fn flush_repeated(&mut self, p: usize, group: &[usize]) {
        let tl = self.tl();
        let path = self.ctx.path;
        let cost: u64 = group.iter().map(|&c| path.subtree[c]).sum();
        let shortest = group.iter().map(|&c| tl.width(c)).min().unwrap_or(0);
        let saving = cost.saturating_sub(shortest);
        if cost < self.share_threshold() || saving == 0 {
            return;
        }
        let n = group.len();
        let total: u64 = group.iter().map(|&c| tl.width(c)).sum();
        let first = self.call(group[0]).expect("calls only");
        let service = tl.service(p);
        let title = match &first.db {
            Some(db) => {
                let shape = first.shape();
                let same = group.iter().all(|&c| {
                    self.call(c)
                        .is_some_and(|k| k.db.is_some() && k.shape() == shape)
                });
                if same {
                    format!(
                        "{service} ran the same query {n} times on {db} in {:?} ({:?}, {} in all) — an N+1 pattern; one batched query would save ~{}",
                        tl.span(p).name,
                        ellipsize_plain(shape, 80),
                        format_duration(total),
                        format_duration(saving),
                    )
                } else {
                    let names: Vec<String> = group
                        .iter()
                        .take(4)
                        .map(|&c| format!("{:?}", tl.span(c).name))
                        .collect();
                    let more = if n > 4 { ", ..." } else { "" };
                    format!(
                        "{service} made {n} separate round trips to {db} in {:?} ({}{more}; {} in all) — one transaction or batch would save ~{}",
                        tl.span(p).name,
                        names.join(", "),
                        format_duration(total),
                        format_duration(saving),
                    )
                }
            }
            None => format!(
                "{service} called {} {n} times in {:?} ({} in all) — an N+1 pattern; one batched call would save ~{}",
                self.call_label(group[0]),
                tl.span(p).name,
                format_duration(total),
                format_duration(saving),
            ),
        };
        let mut f = self.finding(FindingKind::RepeatedCalls, p, group.to_vec());
        f.title = title;
        f.cost_nanos = cost;
        f.saving_nanos = Some(saving);
        f.target = Some(first.target.to_string());
        f.count = Some(n as u32);
        self.push(group[0], f);
    }

    // ----- 7. error origin --------------------------------------------------------------

    fn error_origins(&mut self) {
        let tl = self.tl();
        let path = self.ctx.path;
        // Origins grouped by (parent, endpoint), in pre-order.
        type Key<'k> = (Option<usize>, &'k str, &'k str);
        let mut groups: Vec<(Key<'_>, Vec<usize>)> = Vec::new();
        let mut index: FastMap<Key<'_>, usize> = FastMap::default();
        // Per reported retries finding: (attempt, origin) of the errors that started in its
        // attempts, the origin being the attempt itself or a span under it (an instrumented
        // callee that failed).
        let mut folded: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
        for &i in &tl.order {
            if !self.failed[i] || tl.kids(i).iter().any(|&k| self.failed[k]) {
                continue;
            }
            let parent = tl.parent(i);
            let parent_failed = parent.is_some_and(|p| self.failed[p]);
            if self.retried[i] && !parent_failed {
                continue;
            }
            // Errors that started in (or under) attempts a retries finding reports already:
            // that finding says where the error went instead of a second finding costing the
            // same time again.
            let attempt = std::iter::successors(Some(i), |&a| tl.parent(a))
                .take_while(|&a| self.failed[a])
                .find_map(|a| self.retry_finding[a].map(|f| (f, a)));
            if let Some((f, a)) = attempt {
                match folded.iter_mut().find(|(g, _)| *g == f) {
                    Some((_, members)) => members.push((a, i)),
                    None => folded.push((f, vec![(a, i)])),
                }
                continue;
            }
            let key = match self.call(i) {
                Some(c) => (parent, &*c.target, c.op()),
                None => (parent, tl.service(i), tl.span(i).name.as_str()),
            };
            let slot = *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(i);
        }
        // Only the most expensive groups can make the final cut; titles (which walk up the
        // chain of carriers) are built for those alone.
        let cost_of = |members: &[usize]| members.iter().map(|&c| path.subtree[c]).sum::<u64>();
        groups.sort_by_cached_key(|(_, members)| {
            (
                std::cmp::Reverse(cost_of(members)),
                tl.lo[members[0]],
                tl.span(members[0]).span_id,
            )
        });
        groups.truncate(self.opts().max_findings);
        for ((parent, _, _), members) in groups {
            let origin = members[0];
            let span = tl.span(origin);
            let service = tl.service(origin);
            let cost = cost_of(&members);
            let (carriers, carried) = self.carriers(parent, service);
            let reason = failure_reason(span);
            let what = if members.len() > 1 {
                format!(
                    "{} calls to {} from {}",
                    members.len(),
                    self.call_label(origin),
                    tl.service(parent.unwrap_or(origin))
                )
            } else {
                format!("{service} {:?}", span.name)
            };
            let title = match (carried, parent) {
                (Some(carried), _) => {
                    format!("{what} failed ({reason}): the error started here{carried}")
                }
                (None, Some(p)) => format!(
                    "{what} failed ({reason}); its caller {} {:?} carried on without an error",
                    tl.service(p),
                    tl.span(p).name
                ),
                (None, None) => format!(
                    "{what} failed ({reason}) with no failing child: the error started in its own code"
                ),
            };
            let mut spans = members.clone();
            spans.extend(&carriers);
            let mut f = self.finding(FindingKind::ErrorOrigin, origin, spans);
            f.title = title;
            f.cost_nanos = cost;
            if members.len() > 1 {
                f.count = Some(members.len() as u32);
            }
            self.origin_of_error.extend(&members);
            self.push(origin, f);
        }
        for (f, members) in folded {
            let (attempt, origin) = members[0];
            let (carriers, carried) = self.carriers(tl.parent(attempt), tl.service(attempt));
            let started = if origin == attempt {
                "these attempts".to_owned()
            } else {
                format!(
                    "{} {:?}, under these attempts",
                    tl.service(origin),
                    tl.span(origin).name
                )
            };
            let finding = &mut self.out[f].0;
            if let Some(carried) = carried {
                finding.title =
                    format!("{}; the error started in {started}{carried}", finding.title);
            }
            finding
                .spans
                .extend(carriers.iter().map(|&c| tl.span(c).span_id));
            self.origin_of_error
                .extend(members.iter().map(|&(_, origin)| origin));
        }
    }

    /// The failed ancestors above `parent` (itself included) that only carried an error
    /// started below them, nearest first, and a clause saying where it surfaced (`None` when
    /// `parent` did not fail). `service` is the origin's.
    fn carriers(&self, parent: Option<usize>, service: &str) -> (Vec<usize>, Option<String>) {
        let tl = self.tl();
        let mut carriers = Vec::new();
        let mut up = parent;
        while let Some(a) = up {
            if !self.failed[a] {
                break;
            }
            carriers.push(a);
            up = tl.parent(a);
        }
        let Some(&top) = carriers.last() else {
            return (carriers, None);
        };
        let mut services: Vec<&str> = Vec::new();
        for &c in &carriers {
            let s = tl.service(c);
            if s != service && !services.contains(&s) {
                services.push(s);
            }
        }
        let clause = if services.is_empty() {
            format!(
                "; {} {:?} only passed it on",
                tl.service(top),
                tl.span(top).name
            )
        } else {
            format!(
                " and surfaced {} up, in {} {:?}; {} only passed it on",
                plural(services.len(), "service", "services"),
                tl.service(top),
                tl.span(top).name,
                join_words(
                    &services.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    "and"
                ),
            )
        };
        (carriers, Some(clause))
    }

    // ----- 8. synchronous tail work -----------------------------------------------------

    fn is_tail_work(&self, c: usize) -> bool {
        let tl = self.tl();
        let Some(call) = self.call(c) else {
            return false;
        };
        if call.db.is_some() {
            return false;
        }
        let span = tl.span(c);
        let keywords = &self.opts().tail_keywords;
        [
            Some(&*call.target),
            Some(span.name.as_str()),
            call.destination,
        ]
        .into_iter()
        .flatten()
        .any(|text| has_word(text, keywords))
    }

    fn tail(&mut self, p: usize) {
        if self.kids_path_time(p) < self.share_threshold() {
            return;
        }
        let tl = self.tl();
        let keywords = &self.opts().tail_keywords;
        // A notification service sending mail is doing its job, not tail work.
        if has_word(tl.service(p), keywords) {
            return;
        }
        let kids: Vec<usize> = tl.sync_kids(p).collect();
        let mut tail = Vec::new();
        for &c in kids.iter().rev() {
            if !self.is_tail_work(c) {
                break;
            }
            tail.push(c);
        }
        if tail.is_empty() {
            return;
        }
        let end = tail.iter().map(|&c| tl.hi[c]).max().unwrap_or(tl.hi[p]);
        let allowed =
            ((self.opts().tail_max_trailing_share * tl.width(p) as f64) as u64).max(1_000_000);
        if tl.hi[p] - end > allowed {
            return;
        }
        tail.reverse();
        for c in tail {
            let cost = self.ctx.path.subtree[c];
            if cost < self.share_threshold() {
                continue;
            }
            let mut f = self.finding(FindingKind::SynchronousTail, p, vec![c]);
            f.title = format!(
                "{} waits {} for {} at the end of {:?} although its response does not seem to need it — sending it asynchronously (a queue, fire-and-forget) would save ~{}",
                tl.service(p),
                format_duration(cost),
                self.call_label(c),
                tl.span(p).name,
                format_duration(cost),
            );
            f.cost_nanos = cost;
            f.saving_nanos = Some(cost);
            f.target = self.call(c).map(|k| k.target.to_string());
            self.push(c, f);
        }
    }
}

/// Time of the sorted, disjoint `sections` inside `[window.0, window.1)`, found by binary
/// search so that many windows over one long list stay cheap.
fn time_within(sections: &[(u64, u64)], window: (u64, u64)) -> u64 {
    let first = sections.partition_point(|&(_, end)| end <= window.0);
    sections[first..]
        .iter()
        .take_while(|&&(start, _)| start < window.1)
        .map(|&(start, end)| end.min(window.1).saturating_sub(start.max(window.0)))
        .sum()
}

// ----- span classification ------------------------------------------------------------------

fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match find_attribute(&span.attributes, key) {
        Some(AnyValue::String(s)) if !s.trim().is_empty() => Some(s.trim()),
        _ => None,
    }
}

fn first_attr<'a>(span: &'a Span, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| str_attr(span, k))
}

/// True when the span failed: error status. (The Zipkin and Jaeger decoders turn the `error`
/// tag into the status, so the model's status is the one place to look.)
pub(crate) fn has_error(span: &Span) -> bool {
    span.status.code == StatusCode::Error
}

fn is_timeout(span: &Span) -> bool {
    let mentions = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("timeout") || s.contains("timed out") || s.contains("deadline")
    };
    if mentions(&span.status.message) {
        return true;
    }
    if let Some(t) = first_attr(span, &["error.type", "exception.type", "exception.message"])
        && mentions(t)
    {
        return true;
    }
    let status = find_attribute(&span.attributes, "http.response.status_code")
        .or_else(|| find_attribute(&span.attributes, "http.status_code"));
    if matches!(status, Some(AnyValue::Int(408 | 504))) {
        return true;
    }
    if matches!(
        find_attribute(&span.attributes, "rpc.grpc.status_code"),
        Some(AnyValue::Int(4))
    ) {
        return true;
    }
    span.events.iter().any(|e| {
        e.name == "exception"
            && e.attributes
                .iter()
                .any(|kv| kv.key.starts_with("exception.") && mentions(&kv.value.to_text()))
    })
}

/// A short reason for a failure: the status message, the exception, the HTTP status.
fn failure_reason(span: &Span) -> String {
    if is_timeout(span) && span.status.message.is_empty() {
        return "timed out".to_owned();
    }
    if !span.status.message.trim().is_empty() {
        return ellipsize_plain(span.status.message.trim(), 60);
    }
    for e in &span.events {
        if e.name == "exception"
            && let Some(AnyValue::String(m)) = find_attribute(&e.attributes, "exception.message")
        {
            return ellipsize_plain(m, 60);
        }
    }
    let status = find_attribute(&span.attributes, "http.response.status_code")
        .or_else(|| find_attribute(&span.attributes, "http.status_code"));
    match status {
        Some(v) => format!("HTTP {}", v.to_text()),
        None => "error status".to_owned(),
    }
}

fn ellipsize_plain(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

const WRITE_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];
const READ_METHODS: [&str; 4] = ["GET", "HEAD", "OPTIONS", "QUERY"];
const WRITE_VERBS: [&str; 24] = [
    "add", "book", "cancel", "charge", "commit", "confirm", "create", "delete", "insert", "pay",
    "place", "post", "publish", "put", "refund", "remove", "reserve", "save", "send", "set",
    "store", "submit", "update", "write",
];
const GATE_VERBS: [&str; 10] = [
    "auth",
    "authenticate",
    "authorize",
    "authorise",
    "login",
    "signin",
    "validate",
    "verify",
    "permission",
    "permissions",
];

/// The attributes a call is classified by, read in one pass over the span's attributes. Each
/// field keeps the value of the most preferred key present (current semantic-convention names
/// before older ones; the first of duplicate keys).
struct CallAttrs<'a> {
    db_system: Option<(u8, &'a str)>,
    db_namespace: Option<(u8, &'a str)>,
    statement: Option<(u8, &'a str)>,
    method: Option<(u8, &'a str)>,
    peer: Option<(u8, &'a str)>,
    url: Option<(u8, &'a str)>,
    destination: Option<(u8, &'a str)>,
}

impl<'a> CallAttrs<'a> {
    fn read(span: &'a Span) -> CallAttrs<'a> {
        // Slots of `CallAttrs`, in field order.
        const DB_SYSTEM: usize = 0;
        const DB_NAMESPACE: usize = 1;
        const STATEMENT: usize = 2;
        const METHOD: usize = 3;
        const PEER: usize = 4;
        const URL: usize = 5;
        const DESTINATION: usize = 6;
        let mut slots: [Option<(u8, &'a str)>; 7] = [None; 7];
        for kv in &span.attributes {
            let AnyValue::String(v) = &kv.value else {
                continue;
            };
            // (slot, rank): a lower rank wins (the current semantic convention over the old).
            let places: &[(usize, u8)] = match kv.key.as_str() {
                "db.system.name" => &[(DB_SYSTEM, 0)],
                "db.system" => &[(DB_SYSTEM, 1)],
                "db.namespace" => &[(DB_NAMESPACE, 0)],
                "db.name" => &[(DB_NAMESPACE, 1)],
                "db.query.text" => &[(STATEMENT, 0)],
                "db.statement" => &[(STATEMENT, 1)],
                "http.request.method" => &[(METHOD, 0)],
                "http.method" => &[(METHOD, 1)],
                "peer.service" => &[(PEER, 0)],
                "server.address" => &[(PEER, 1)],
                "net.peer.name" => &[(PEER, 2)],
                "http.host" => &[(PEER, 3)],
                "messaging.destination.name" => &[(PEER, 4), (DESTINATION, 0)],
                "messaging.destination" => &[(PEER, 5), (DESTINATION, 1)],
                "rpc.service" => &[(PEER, 6)],
                "url.full" => &[(URL, 0)],
                "http.url" => &[(URL, 1)],
                // Other values are not even trimmed: a span may carry large ones (stack
                // traces, payloads).
                _ => continue,
            };
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            for &(slot, rank) in places {
                if slots[slot].is_none_or(|(r, _)| rank < r) {
                    slots[slot] = Some((rank, v));
                }
            }
        }
        CallAttrs {
            db_system: slots[DB_SYSTEM],
            db_namespace: slots[DB_NAMESPACE],
            statement: slots[STATEMENT],
            method: slots[METHOD],
            peer: slots[PEER],
            url: slots[URL],
            destination: slots[DESTINATION],
        }
    }
}

fn value(slot: Option<(u8, &str)>) -> Option<&str> {
    slot.map(|(_, v)| v)
}

/// The call a span makes, when it is one: a CLIENT or PRODUCER span, or a span of another
/// service directly under its caller (the client side not instrumented).
fn call_info<'a>(tl: &Timeline<'_, 'a>, i: usize) -> Option<Call<'a>> {
    let span = tl.span(i);
    let service = tl.service(i);
    let direct = match tl.parent(i) {
        Some(p) => {
            tl.sync[i]
                && !matches!(tl.span(p).kind, SpanKind::Client | SpanKind::Producer)
                && tl.service(p) != service
                && matches!(
                    span.kind,
                    SpanKind::Server | SpanKind::Unspecified | SpanKind::Internal
                )
        }
        None => false,
    };
    let outgoing = matches!(span.kind, SpanKind::Client | SpanKind::Producer);
    if !outgoing && !direct {
        return None;
    }
    let attrs = CallAttrs::read(span);
    let remote_kids: Vec<usize> = if outgoing {
        tl.sync_kids(i)
            .filter(|&k| tl.service(k) != service)
            .collect()
    } else {
        Vec::new()
    };
    let db = value(attrs.db_system).map(|system| -> Cow<'a, str> {
        match value(attrs.db_namespace) {
            Some(ns) => Cow::Owned(format!("{system} {ns}")),
            None => Cow::Borrowed(system),
        }
    });
    let target: Cow<'a, str> = if direct {
        Cow::Borrowed(service)
    } else if let Some(&k) = remote_kids.first() {
        Cow::Borrowed(tl.service(k))
    } else if let Some(display) = &db {
        display.clone()
    } else if let Some(peer) = value(attrs.peer) {
        Cow::Borrowed(peer)
    } else if let Some(host) = value(attrs.url).and_then(url_host) {
        Cow::Borrowed(host)
    } else {
        Cow::Borrowed(span.name.as_str())
    };
    Some(Call {
        target,
        db,
        statement: value(attrs.statement),
        shape: OnceCell::new(),
        name: span.name.as_str(),
        method: value(attrs.method).or_else(|| span.name.split_whitespace().next()),
        kind: span.kind,
        destination: value(attrs.destination),
        remote_kids,
    })
}

fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    (!host.is_empty()).then_some(host)
}

/// The words of `s`: runs of alphanumeric characters, also split where a lower-case letter or
/// digit is followed by an upper-case one (`sendEmail` → `send`, `Email`).
fn words(s: &str) -> impl Iterator<Item = &str> + '_ {
    let mut rest = s;
    std::iter::from_fn(move || {
        let start = rest.find(char::is_alphanumeric)?;
        rest = &rest[start..];
        let mut prev_lower = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if !c.is_alphanumeric() || (c.is_uppercase() && prev_lower) {
                end = i;
                break;
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

/// Whether a word of `s` is one of `list` (ASCII case-insensitive).
fn has_word<S: AsRef<str>>(s: &str, list: &[S]) -> bool {
    words(s).any(|w| list.iter().any(|k| k.as_ref().eq_ignore_ascii_case(w)))
}

/// The shape of a statement: literals replaced by `?`, `IN (?, ?, ...)` collapsed, white space
/// collapsed, keywords upper-cased as written. Two statements that differ only in values have
/// the same shape.
pub(crate) fn normalize_statement(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut prev_word = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // A quoted literal ('' escapes a quote). Double quotes are identifiers in
                // standard SQL but values in MySQL; either way the value is dropped.
                while let Some(d) = chars.next() {
                    if d == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
                out.push('?');
                prev_word = false;
            }
            '$' | ':' if chars.peek().is_some_and(|d| d.is_ascii_alphanumeric()) => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
                {
                    chars.next();
                }
                out.push('?');
                prev_word = false;
            }
            c if c.is_ascii_digit() && !prev_word => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.' || *d == '_')
                {
                    chars.next();
                }
                out.push('?');
                prev_word = false;
            }
            c if c.is_whitespace() => {
                if !out.ends_with(' ') && !out.is_empty() {
                    out.push(' ');
                }
                prev_word = false;
            }
            c => {
                out.push(c);
                prev_word = c.is_alphanumeric() || c == '_';
            }
        }
    }
    let mut s = out.trim().to_owned();
    // Collapse lists of placeholders: (?, ?, ?) → (?)
    loop {
        let next = s.replace("?, ?", "?").replace("?,?", "?");
        if next == s {
            break;
        }
        s = next;
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    let word = if n == 1 { one } else { many };
    let number = match n {
        1 => "one".to_owned(),
        2 => "two".to_owned(),
        3 => "three".to_owned(),
        4 => "four".to_owned(),
        5 => "five".to_owned(),
        n => n.to_string(),
    };
    format!("{number} {word}")
}

/// `a`, `a and b`, `a, b and c` (with `then`: `a then b then c`).
fn join_words(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        _ if word == "then" => items.join(" then "),
        [rest @ .., last] => format!("{} {word} {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_differ_only_in_values_have_one_shape() {
        assert_eq!(
            normalize_statement("SELECT * FROM items WHERE id = 42 AND name = 'x''y'"),
            "SELECT * FROM items WHERE id = ? AND name = ?"
        );
        assert_eq!(
            normalize_statement("select *\n  from t where id in (1, 2,3) and v = $1"),
            "select * from t where id in (?) and v = ?"
        );
        assert_eq!(
            normalize_statement("SELECT col1 FROM t2"),
            "SELECT col1 FROM t2"
        );
    }

    #[test]
    fn words_split_on_punctuation_and_camel_case() {
        let all = |s| words(s).collect::<Vec<_>>();
        assert_eq!(
            all("sendEmail /v1/notifications"),
            vec!["send", "Email", "v1", "notifications"]
        );
        assert_eq!(all("login-service"), vec!["login", "service"]);
        assert_eq!(all("HTTPServer"), vec!["HTTPServer"]);
        assert!(has_word("Notification-Service", &["notification"]));
        assert!(!has_word("login-service", &["log"]));
    }

    #[test]
    fn url_hosts_lose_scheme_user_and_port() {
        assert_eq!(
            url_host("https://u@api.stripe.com:443/v1/charges"),
            Some("api.stripe.com")
        );
        assert_eq!(url_host("http://[::1]:8080/x"), Some("::1"));
        assert_eq!(url_host("example.com/x"), Some("example.com"));
    }
}
