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

mod classify;
mod errors;
mod repeats;
#[cfg(test)]
mod tests;
mod time;

use classify::*;

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
}
