//! TraceQL, the trace query language of Grafana Tempo, as Stitch speaks it.
//!
//! ```text
//! { span.http.status_code >= 500 } >> { resource.service.name = "db" } | count() > 2
//! ```
//!
//! # The language
//!
//! - **Spanset filters** `{ condition }` select spans; `{ }` selects every span. Conditions
//!   read intrinsics (`name`, `status`, `statusMessage`, `kind`, `duration`, `span:id`,
//!   `span:parentID`, `trace:id`, `trace:duration`, `trace:rootName`, `trace:rootService`,
//!   `event:name`, `event:timeSinceStart`, `link:traceID`, `link:spanID`,
//!   `instrumentation:name`, `instrumentation:version`, `span:childCount`, `nestedSetLeft`,
//!   `nestedSetRight`, `nestedSetParent`; the older `rootName`,
//!   `rootServiceName`, `traceDuration` and `span:name`-style forms too) and attributes
//!   (`span.x`, `resource.x`, `event.x`, `link.x`, `instrumentation.x`, and `.x`: the span's,
//!   else its resource's; `span."a b"` for names with spaces), compare them with
//!   `= != < <= > >= =~ !~` (regular expressions are fully anchored), join conditions with
//!   `&& || !`, and compute with `+ - * / % ^`. Values are strings (`"..."` or `` `...` ``),
//!   numbers, durations (`1.5s`, `100ms`, `10us`, `5ns`, `2m`, `1h`), `true`, `false`, `nil`,
//!   statuses (`ok`, `error`, `unset`) and kinds (`server`, `client`, `producer`, `consumer`,
//!   `internal`, `unspecified`). `x = nil` asks whether `x` is absent, `x != nil` whether it is
//!   there; any other comparison with an absent value, or between values of different kinds,
//!   is false.
//! - **Spanset operators** combine filters: `&&`, `||`, and the structural ones `>` (child),
//!   `<` (parent), `>>` (descendant), `<<` (ancestor), `~` (sibling), their negations `!>`,
//!   `!<`, `!>>`, `!<<`, `!~`, and union forms `&>`, `&<`, `&>>`, `&<<`, `&~` (see [`eval`] for
//!   what each returns).
//! - **Pipelines** follow `|`: a spanset expression, an aggregate comparison (`count()`,
//!   `avg(f)`, `min(f)`, `max(f)`, `sum(f)` compared with a number or duration),
//!   `by(f, ...)`, `select(f, ...)` and `coalesce()`. A trailing `with(...)` of known hints
//!   (`most_recent`, `sample`, `span_sample`, `trace_sample`, `exemplars`) is accepted and
//!   changes nothing (answers are always the most recent traces).
//! - **Metrics queries** end in a metrics function (`| rate() by (name)`): [`metrics`] parses
//!   them ([`metrics::MetricsQuery`]) and computes their time series; [`TraceQl::parse`]
//!   refuses them, pointing at the function.
//!
//! Operator precedence, loosest first: `|`; `&&` and `||` (equal, left to right);
//! comparisons and structural operators; `+ -`; `!`; `* / %`; `^`.
//!
//! A query that does not parse or cannot be right whatever the data (comparing `status` with a
//! number, an invalid regular expression, `&&` on a number) is a [`QueryError`] naming the
//! character position and what was expected.

mod ast;
pub mod display;
pub mod eval;
mod lex;
pub mod metrics;
mod parse;
mod plan;
mod value;

use std::fmt;

use stitch_model::{Trace, TraceId};

pub use ast::{Field, Pipeline, Scope};
use eval::{Spanset, TraceIndex};
pub use value::Value;

use crate::{ReadError, SearchQuery, TraceReader};

/// Why a query was refused: where (a character position, from 0) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

impl QueryError {
    pub fn new(position: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            position,
            message: message.into(),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position + 1, self.message)
    }
}

impl std::error::Error for QueryError {}

/// A parsed, checked query.
#[derive(Clone, Debug)]
pub struct TraceQl {
    pipeline: Pipeline,
    /// Fields returned with each matching span: the attributes the query reads, then what
    /// `select` names.
    shown: Vec<Field>,
}

/// A span a query matched, with the fields it shows.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanMatch {
    pub span_id: stitch_model::SpanId,
    pub name: String,
    pub service: String,
    pub start_unix_nanos: u64,
    pub duration_nanos: u64,
    /// (field as written, value): the attributes the query reads and the `select`ed fields
    /// the span has.
    pub attributes: Vec<(String, Value<'static>)>,
}

/// One spanset of a matched trace.
#[derive(Clone, Debug, PartialEq)]
pub struct SpansetMatch {
    /// How many spans the spanset holds; `spans` lists at most the number asked for.
    pub matched: usize,
    pub spans: Vec<SpanMatch>,
    /// The values a `by` stage grouped the spanset by.
    pub by: Vec<(String, String)>,
}

/// A trace a query matched.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceMatch {
    pub trace_id: TraceId,
    pub root_service: Option<String>,
    pub root_name: Option<String>,
    pub start_unix_nanos: u64,
    pub duration_nanos: u64,
    pub spansets: Vec<SpansetMatch>,
    /// Per service of the trace (by name): its spans and its spans with status ERROR.
    pub service_stats: Vec<(String, usize, usize)>,
}

impl TraceQl {
    /// Parses and checks `text`.
    pub fn parse(text: &str) -> Result<TraceQl, QueryError> {
        let (pipeline, metrics) = parse::parse(text)?;
        if let Some((at, _)) = metrics {
            return Err(QueryError::new(
                at,
                "a metrics function makes this a metrics query: it is answered by \
                 /api/metrics/query_range (time series), not by a search",
            ));
        }
        Ok(TraceQl::of(pipeline))
    }

    fn of(pipeline: Pipeline) -> TraceQl {
        let mut shown = Vec::new();
        collect_shown(&pipeline, &mut shown);
        TraceQl { pipeline, shown }
    }

    /// The query, written back in a canonical form.
    pub fn to_text(&self) -> String {
        display::pipeline(&self.pipeline)
    }

    /// Evaluates the query on one trace: `None` when it does not match. Each spanset lists at
    /// most `spans_per_spanset` spans (the earliest).
    pub fn evaluate(&self, trace: &Trace, spans_per_spanset: usize) -> Option<TraceMatch> {
        let ix = TraceIndex::new(trace);
        let universe = vec![true; ix.spans.len()];
        let sets = eval::pipeline(&self.pipeline, &ix, &universe);
        if sets.is_empty() {
            return None;
        }
        let root = ix.root.map(|r| &ix.spans[r]);
        let mut stats: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        for s in &ix.spans {
            let e = stats.entry(s.service_name()).or_default();
            e.0 += 1;
            e.1 += usize::from(s.span.is_error());
        }
        Some(TraceMatch {
            service_stats: stats
                .into_iter()
                .map(|(name, (spans, errors))| (name.to_owned(), spans, errors))
                .collect(),
            trace_id: trace.trace_id,
            root_service: root.map(|r| r.service_name().to_owned()),
            root_name: root.map(|r| r.span.name.clone()),
            start_unix_nanos: ix.start,
            duration_nanos: ix.end.saturating_sub(ix.start),
            spansets: sets
                .into_iter()
                .map(|s| self.spanset_match(&ix, s, spans_per_spanset))
                .collect(),
        })
    }

    fn spanset_match(&self, ix: &TraceIndex<'_>, set: Spanset, limit: usize) -> SpansetMatch {
        let mut spans: Vec<usize> = set.spans.clone();
        spans.sort_by_key(|&i| (ix.spans[i].span.start_time_unix_nano, i));
        spans.truncate(limit);
        SpansetMatch {
            matched: set.spans.len(),
            by: set.by,
            spans: spans
                .into_iter()
                .map(|i| {
                    let s = &ix.spans[i];
                    let mut attributes = Vec::new();
                    for f in &self.shown {
                        let name = display::field(f);
                        if attributes.iter().any(|(n, _)| *n == name) {
                            continue;
                        }
                        let v = eval::span_field(f, ix, i);
                        if v != Value::Nil {
                            attributes.push((name, owned(v)));
                        }
                    }
                    SpanMatch {
                        span_id: s.span.span_id,
                        name: s.span.name.clone(),
                        service: s.service_name().to_owned(),
                        start_unix_nanos: s.span.start_time_unix_nano,
                        duration_nanos: s.span.duration_nanos(),
                        attributes,
                    }
                })
                .collect(),
        }
    }
}

fn owned(v: Value<'_>) -> Value<'static> {
    match v {
        Value::Str(s) => Value::Str(std::borrow::Cow::Owned(s.into_owned())),
        Value::Nil => Value::Nil,
        Value::Bool(b) => Value::Bool(b),
        Value::Int(i) => Value::Int(i),
        Value::Float(f) => Value::Float(f),
        Value::Duration(d) => Value::Duration(d),
        Value::Status(s) => Value::Status(s),
        Value::Kind(k) => Value::Kind(k),
    }
}

/// The attributes a pipeline reads, in order, then the fields it selects.
fn collect_shown(p: &Pipeline, out: &mut Vec<Field>) {
    fn field(f: &Field, out: &mut Vec<Field>) {
        match f {
            Field::Attribute(..) => out.push(f.clone()),
            Field::Binary { lhs, rhs, .. } => {
                field(lhs, out);
                field(rhs, out);
            }
            Field::Not(x) | Field::Neg(x) => field(x, out),
            Field::Static(_) | Field::Intrinsic(_) => {}
        }
    }
    fn spanset(e: &ast::SpansetExpr, out: &mut Vec<Field>) {
        match e {
            ast::SpansetExpr::Filter(Some(f)) => field(f, out),
            ast::SpansetExpr::Filter(None) => {}
            ast::SpansetExpr::Op { lhs, rhs, .. } => {
                spanset(lhs, out);
                spanset(rhs, out);
            }
            ast::SpansetExpr::Pipeline(p) => collect_shown(p, out),
        }
    }
    spanset(&p.source, out);
    for stage in &p.stages {
        match stage {
            ast::Stage::Spanset(e) => spanset(e, out),
            ast::Stage::By(fs) | ast::Stage::Select(fs) => out.extend(fs.iter().cloned()),
            _ => {}
        }
    }
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchResult {
    /// The matching traces, newest first (by their start), ties by trace id.
    pub traces: Vec<TraceMatch>,
    /// Candidate traces the query was evaluated on.
    pub inspected_traces: usize,
    /// The search stopped at [`MAX_INSPECTED_TRACES`] candidates: older matches may be missing.
    pub truncated: bool,
}

/// The most candidate traces one search evaluates the query on.
pub const MAX_INSPECTED_TRACES: usize = 20_000;

impl TraceQl {
    /// Conditions one span of every matching trace meets, when the query states any (see
    /// [`plan`]).
    pub fn prefilter(&self) -> Option<SearchQuery> {
        plan::prefilter(&self.pipeline)
    }
}

/// Runs `query` over the window `[start, end]` (Unix nanoseconds), returning at most `limit`
/// matches, newest first, with at most `spans_per_spanset` spans per spanset.
///
/// The candidates are the traces with a span starting in the window that meets the query's
/// plan ([`TraceQl::prefilter`]; any span without one), newest first, as the reader finds
/// them; the query is evaluated on each whole trace. Candidates are asked for in growing
/// numbers until `limit` traces match, the window has no more, or [`MAX_INSPECTED_TRACES`]
/// were inspected.
pub async fn search(
    reader: &dyn TraceReader,
    query: &TraceQl,
    start_unix_nanos: u64,
    end_unix_nanos: u64,
    limit: usize,
    spans_per_spanset: usize,
) -> Result<SearchResult, ReadError> {
    let plan = query.prefilter().unwrap_or_default();
    // As many candidates as answers first (a plan often selects exactly the matches), then
    // four times more each round.
    let mut want = limit.clamp(16, MAX_INSPECTED_TRACES);
    loop {
        let candidates = SearchQuery {
            start_unix_nanos: Some(start_unix_nanos),
            end_unix_nanos: Some(end_unix_nanos),
            limit: want,
            ..plan.clone()
        };
        let traces = reader.search(&candidates).await?;
        let exhausted = traces.len() < want;
        let mut matches: Vec<TraceMatch> = traces
            .iter()
            .filter_map(|t| query.evaluate(t, spans_per_spanset))
            .collect();
        if matches.len() >= limit || exhausted || want >= MAX_INSPECTED_TRACES {
            matches.sort_by(|a, b| {
                b.start_unix_nanos
                    .cmp(&a.start_unix_nanos)
                    .then(a.trace_id.cmp(&b.trace_id))
            });
            matches.truncate(limit);
            return Ok(SearchResult {
                traces: matches,
                inspected_traces: traces.len(),
                truncated: !exhausted && want >= MAX_INSPECTED_TRACES,
            });
        }
        want = want.saturating_mul(4).min(MAX_INSPECTED_TRACES);
    }
}
