//! Evaluating a parsed TraceQL query on one trace.
//!
//! The trace is indexed once (parent and children of each span). A spanset filter selects the
//! spans of the trace its condition holds for; a condition that reads event (or link) fields
//! holds for a span when it holds for one of its events (links). Spanset operators combine the
//! spans their two sides select (each side's spansets merged into one):
//!
//! | operator | spans returned |
//! |---|---|
//! | `A && B` | both sides', when each side selected a span |
//! | `A \|\| B` | both sides' |
//! | `A > B`, `A < B` | B spans whose parent is an A span; B spans that are the parent of an A span |
//! | `A >> B`, `A << B` | B spans below an A span; B spans above an A span |
//! | `A ~ B` | B spans that share their parent with another span that is an A span |
//! | `A !> B` (and `!<`, `!>>`, `!<<`, `!~`) | B spans for which the relation does not hold |
//! | `A &> B` (and `&<`, `&>>`, `&<<`, `&~`) | the B spans of the relation and the A spans they relate to |
//!
//! Pipeline stages then work on each spanset: a spanset expression keeps the spans of the
//! spanset it selects, an aggregate comparison keeps or drops the whole spanset, `by` splits
//! it by the values of its fields, `coalesce()` merges all spansets, `select` names fields to
//! return with each span. A trace matches when at least one non-empty spanset is left.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use stitch_model::{Event, Link, SpanRef, Trace};

use super::ast::*;
use super::value::{Value, arithmetic, compare, negate};

/// One trace, indexed for evaluation.
pub struct TraceIndex<'t> {
    pub trace: &'t Trace,
    pub spans: Vec<SpanRef<'t>>,
    pub parent: Vec<Option<usize>>,
    pub children: Vec<Vec<usize>>,
    pub root: Option<usize>,
    pub start: u64,
    pub end: u64,
    /// (left, right, parent's left) of each span in the nested-set numbering of the trace's
    /// tree (see [`Intrinsic::NestedSetLeft`]).
    pub nested: Vec<(i64, i64, i64)>,
}

impl<'t> TraceIndex<'t> {
    pub fn new(trace: &'t Trace) -> TraceIndex<'t> {
        let spans: Vec<SpanRef<'t>> = trace.spans().collect();
        let by_id: HashMap<_, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span.span_id, i))
            .collect();
        let parent: Vec<Option<usize>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.span
                    .parent_span_id
                    .and_then(|p| by_id.get(&p).copied())
                    .filter(|&p| p != i)
            })
            .collect();
        let mut children = vec![Vec::new(); spans.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        // The root: a span without a parent id, the earliest if several.
        let root = (0..spans.len())
            .filter(|&i| spans[i].span.parent_span_id.is_none())
            .min_by_key(|&i| (spans[i].span.start_time_unix_nano, spans[i].span.span_id));
        let start = spans
            .iter()
            .map(|s| s.span.start_time_unix_nano)
            .min()
            .unwrap_or(0);
        let end = spans
            .iter()
            .map(|s| s.span.end_time_unix_nano)
            .max()
            .unwrap_or(0);
        let nested = nested_sets(&spans, &parent, &children);
        TraceIndex {
            trace,
            spans,
            parent,
            children,
            root,
            start,
            end,
            nested,
        }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether `a` is a proper ancestor of `b`.
    fn ancestors(&self, mut i: usize) -> impl Iterator<Item = usize> + '_ {
        let mut steps = 0;
        std::iter::from_fn(move || {
            // A parent cycle (invalid data) ends the walk.
            steps += 1;
            if steps > self.len() {
                return None;
            }
            let p = self.parent[i]?;
            i = p;
            Some(p)
        })
    }
}

/// What a span's fields are read from: the span, and the event or link being looked at.
#[derive(Clone, Copy)]
struct Ctx<'t, 'x> {
    ix: &'x TraceIndex<'t>,
    span: usize,
    event: Option<&'t Event>,
    link: Option<&'t Link>,
}

fn attribute<'t>(attrs: &'t [stitch_model::KeyValue], name: &str) -> Option<Value<'t>> {
    attrs
        .iter()
        .find(|kv| kv.key == name)
        .map(|kv| Value::from_attribute(&kv.value))
}

fn field<'t>(f: &'t Field, c: Ctx<'t, '_>) -> Value<'t> {
    let s = &c.ix.spans[c.span];
    match f {
        Field::Static(v) => Value::from_static(v),
        Field::Attribute(scope, name) => {
            let found = match scope {
                Scope::Any => attribute(&s.span.attributes, name)
                    .or_else(|| attribute(&s.resource.attributes, name)),
                Scope::Span => attribute(&s.span.attributes, name),
                Scope::Resource => attribute(&s.resource.attributes, name),
                Scope::Event => c.event.and_then(|e| attribute(&e.attributes, name)),
                Scope::Link => c.link.and_then(|l| attribute(&l.attributes, name)),
                Scope::Instrumentation => attribute(&s.scope.attributes, name),
            };
            found.unwrap_or(Value::Nil)
        }
        Field::Intrinsic(i) => intrinsic(*i, c),
        Field::Binary {
            op,
            lhs,
            rhs,
            regex,
        } => {
            let l = field(lhs, c);
            match op {
                BinOp::And => Value::Bool(l.is_true() && field(rhs, c).is_true()),
                BinOp::Or => Value::Bool(l.is_true() || field(rhs, c).is_true()),
                BinOp::Re | BinOp::Nre => {
                    let Value::Str(text) = l else {
                        return Value::Bool(false);
                    };
                    let hit = regex.as_ref().is_some_and(|r| r.is_match(&text));
                    Value::Bool(hit == (*op == BinOp::Re))
                }
                op if op.is_comparison() => {
                    let r = field(rhs, c);
                    // Against the literal `nil`, a presence test; otherwise an absent value
                    // compares false, also with `!=`.
                    let nil = |f: &Field| matches!(f, Field::Static(Static::Nil));
                    let absent = matches!(l, Value::Nil) || matches!(r, Value::Nil);
                    Value::Bool(if nil(lhs) || nil(rhs) || !absent {
                        compare(*op, &l, &r)
                    } else {
                        false
                    })
                }
                op => arithmetic(*op, &l, &field(rhs, c)),
            }
        }
        Field::Not(x) => Value::Bool(!field(x, c).is_true()),
        Field::Neg(x) => negate(&field(x, c)),
    }
}

/// Numbers every span reachable from a root (a span without a parent id) in a depth-first
/// walk, children by start time: `left` on entry, `right` on leaving, counting from 1, so a
/// span's descendants are exactly those whose `left` lies between its `left` and `right`.
/// Spans under a parent missing from the trace keep zeros.
fn nested_sets(
    spans: &[SpanRef<'_>],
    parent: &[Option<usize>],
    children: &[Vec<usize>],
) -> Vec<(i64, i64, i64)> {
    let mut out = vec![(0, 0, 0); spans.len()];
    let start = |i: &usize| (spans[*i].span.start_time_unix_nano, spans[*i].span.span_id);
    let mut roots: Vec<usize> = (0..spans.len())
        .filter(|&i| spans[i].span.parent_span_id.is_none() && parent[i].is_none())
        .collect();
    roots.sort_by_key(start);
    let mut counter = 0i64;
    let mut visited = vec![false; spans.len()];
    for root in roots {
        // (span, whether its children were pushed)
        let mut stack = vec![(root, false)];
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                counter += 1;
                out[i].1 = counter;
                continue;
            }
            if visited[i] {
                continue;
            }
            visited[i] = true;
            counter += 1;
            out[i].0 = counter;
            out[i].2 = parent[i].map_or(-1, |p| out[p].0);
            stack.push((i, true));
            let mut kids: Vec<usize> = children[i]
                .iter()
                .copied()
                .filter(|&k| !visited[k])
                .collect();
            kids.sort_by_key(start);
            stack.extend(kids.into_iter().rev().map(|k| (k, false)));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn intrinsic<'t>(i: Intrinsic, c: Ctx<'t, '_>) -> Value<'t> {
    let s = &c.ix.spans[c.span];
    let span = s.span;
    let root = c.ix.root.map(|r| &c.ix.spans[r]);
    match i {
        Intrinsic::Name => Value::Str(Cow::Borrowed(&span.name)),
        Intrinsic::Status => Value::Status(span.status.code),
        Intrinsic::StatusMessage => Value::Str(Cow::Borrowed(&span.status.message)),
        Intrinsic::Kind => Value::Kind(span.kind),
        Intrinsic::Duration => Value::Duration(span.duration_nanos() as i64),
        Intrinsic::SpanId => Value::Str(Cow::Owned(hex(&span.span_id.0))),
        Intrinsic::ParentId => span
            .parent_span_id
            .map_or(Value::Nil, |p| Value::Str(Cow::Owned(hex(&p.0)))),
        Intrinsic::TraceId => Value::Str(Cow::Owned(hex(&span.trace_id.0))),
        Intrinsic::TraceDuration => Value::Duration(c.ix.end.saturating_sub(c.ix.start) as i64),
        Intrinsic::RootName => root.map_or(Value::Nil, |r| Value::Str(Cow::Borrowed(&r.span.name))),
        Intrinsic::RootService => root.map_or(Value::Nil, |r| {
            Value::Str(Cow::Owned(r.service_name().to_owned()))
        }),
        Intrinsic::EventName => c
            .event
            .map_or(Value::Nil, |e| Value::Str(Cow::Borrowed(&e.name))),
        Intrinsic::EventTimeSinceStart => c.event.map_or(Value::Nil, |e| {
            Value::Duration(e.time_unix_nano.saturating_sub(span.start_time_unix_nano) as i64)
        }),
        Intrinsic::LinkTraceId => c
            .link
            .map_or(Value::Nil, |l| Value::Str(Cow::Owned(hex(&l.trace_id.0)))),
        Intrinsic::LinkSpanId => c
            .link
            .map_or(Value::Nil, |l| Value::Str(Cow::Owned(hex(&l.span_id.0)))),
        Intrinsic::InstrumentationName => Value::Str(Cow::Borrowed(&s.scope.name)),
        Intrinsic::InstrumentationVersion => Value::Str(Cow::Borrowed(&s.scope.version)),
        Intrinsic::NestedSetLeft => Value::Int(c.ix.nested[c.span].0),
        Intrinsic::NestedSetRight => Value::Int(c.ix.nested[c.span].1),
        Intrinsic::NestedSetParent => Value::Int(c.ix.nested[c.span].2),
        Intrinsic::ChildCount => Value::Int(c.ix.children[c.span].len() as i64),
    }
}

/// Whether span `i` satisfies `cond`, for one of its events and links when it reads them.
fn holds(cond: &Field, ix: &TraceIndex<'_>, i: usize, events: bool, links: bool) -> bool {
    let span = ix.spans[i].span;
    let evs: Vec<Option<&Event>> = if events && !span.events.is_empty() {
        span.events.iter().map(Some).collect()
    } else {
        vec![None]
    };
    let lks: Vec<Option<&Link>> = if links && !span.links.is_empty() {
        span.links.iter().map(Some).collect()
    } else {
        vec![None]
    };
    evs.iter().any(|&event| {
        lks.iter().any(|&link| {
            field(
                cond,
                Ctx {
                    ix,
                    span: i,
                    event,
                    link,
                },
            )
            .is_true()
        })
    })
}

/// Spans of a trace (by index into [`TraceIndex::spans`], ascending), with the values a `by`
/// stage grouped them by.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spanset {
    pub spans: Vec<usize>,
    pub by: Vec<(String, String)>,
}

/// Evaluates a pipeline on a trace; `universe` marks the spans its filters may select.
pub fn pipeline(p: &Pipeline, ix: &TraceIndex<'_>, universe: &[bool]) -> Vec<Spanset> {
    let mut sets = spanset_expr(&p.source, ix, universe);
    for stage in &p.stages {
        if sets.is_empty() {
            break;
        }
        sets = match stage {
            Stage::Spanset(expr) => sets
                .into_iter()
                .flat_map(|s| {
                    let mut within = vec![false; ix.len()];
                    for &i in &s.spans {
                        within[i] = true;
                    }
                    spanset_expr(expr, ix, &within)
                        .into_iter()
                        .map(move |mut r| {
                            r.by = s.by.clone();
                            r
                        })
                })
                .collect(),
            Stage::ScalarFilter { op, lhs, rhs } => sets
                .into_iter()
                .filter(|s| compare(*op, &scalar(lhs, ix, s), &scalar(rhs, ix, s)))
                .collect(),
            Stage::By(fields) => sets
                .into_iter()
                .flat_map(|s| group(fields, ix, s))
                .collect(),
            Stage::Select(_) => sets,
            Stage::Coalesce => {
                let mut all: Vec<usize> = sets.into_iter().flat_map(|s| s.spans).collect();
                all.sort_unstable();
                all.dedup();
                vec![Spanset {
                    spans: all,
                    by: Vec::new(),
                }]
            }
        };
    }
    sets.retain(|s| !s.spans.is_empty());
    sets
}

fn spanset_expr(e: &SpansetExpr, ix: &TraceIndex<'_>, universe: &[bool]) -> Vec<Spanset> {
    let selected: Vec<usize> = match e {
        SpansetExpr::Filter(cond) => {
            let (events, links) = cond
                .as_ref()
                .map_or((false, false), |c| (c.reads_events(), c.reads_links()));
            (0..ix.len())
                .filter(|&i| universe[i])
                .filter(|&i| cond.as_ref().is_none_or(|c| holds(c, ix, i, events, links)))
                .collect()
        }
        SpansetExpr::Pipeline(p) => return pipeline(p, ix, universe),
        SpansetExpr::Op { op, lhs, rhs } => {
            let l = merged(spanset_expr(lhs, ix, universe), ix.len());
            let r = merged(spanset_expr(rhs, ix, universe), ix.len());
            relate(*op, ix, &l, &r)
        }
    };
    if selected.is_empty() {
        Vec::new()
    } else {
        vec![Spanset {
            spans: selected,
            by: Vec::new(),
        }]
    }
}

/// The spans of all `sets`, as membership flags.
fn merged(sets: Vec<Spanset>, n: usize) -> Vec<bool> {
    let mut m = vec![false; n];
    for s in sets {
        for i in s.spans {
            m[i] = true;
        }
    }
    m
}

/// The spans `op` returns from sides selecting `l` and `r`, ascending.
fn relate(op: SpansetOp, ix: &TraceIndex<'_>, l: &[bool], r: &[bool]) -> Vec<usize> {
    let n = ix.len();
    let any = |m: &[bool]| m.iter().any(|&x| x);
    // For each span, whether its parent is in `m`; whether a child is; an ancestor; a
    // descendant; a sibling.
    let parent_in = |m: &[bool], i: usize| ix.parent[i].is_some_and(|p| m[p]);
    let child_in = |m: &[bool], i: usize| ix.children[i].iter().any(|&c| m[c]);
    let ancestor_in = |m: &[bool], i: usize| ix.ancestors(i).any(|a| m[a]);
    let above = |m: &[bool]| {
        // Spans that are an ancestor of a span in `m`.
        let mut out = vec![false; n];
        for i in (0..n).filter(|&i| m[i]) {
            for a in ix.ancestors(i) {
                if out[a] {
                    break;
                }
                out[a] = true;
            }
        }
        out
    };
    let sibling_in = |m: &[bool], i: usize| {
        ix.parent[i].is_some_and(|p| ix.children[p].iter().any(|&s| s != i && m[s]))
    };
    let pick =
        |pred: &dyn Fn(usize) -> bool| -> Vec<usize> { (0..n).filter(|&i| pred(i)).collect() };
    let union = |a: Vec<usize>, b: Vec<usize>| {
        let mut all = a;
        all.extend(b);
        all.sort_unstable();
        all.dedup();
        all
    };
    match op {
        SpansetOp::And => {
            if any(l) && any(r) {
                pick(&|i| l[i] || r[i])
            } else {
                Vec::new()
            }
        }
        SpansetOp::Or => pick(&|i| l[i] || r[i]),
        SpansetOp::Child => pick(&|i| r[i] && parent_in(l, i)),
        SpansetOp::Parent => pick(&|i| r[i] && child_in(l, i)),
        SpansetOp::Descendant => pick(&|i| r[i] && ancestor_in(l, i)),
        SpansetOp::Ancestor => {
            let up = above(l);
            pick(&|i| r[i] && up[i])
        }
        SpansetOp::Sibling => pick(&|i| r[i] && sibling_in(l, i)),
        SpansetOp::NotChild => pick(&|i| r[i] && !parent_in(l, i)),
        SpansetOp::NotParent => pick(&|i| r[i] && !child_in(l, i)),
        SpansetOp::NotDescendant => pick(&|i| r[i] && !ancestor_in(l, i)),
        SpansetOp::NotAncestor => {
            let up = above(l);
            pick(&|i| r[i] && !up[i])
        }
        SpansetOp::NotSibling => pick(&|i| r[i] && !sibling_in(l, i)),
        SpansetOp::UnionChild => union(
            pick(&|i| r[i] && parent_in(l, i)),
            pick(&|i| l[i] && child_in(r, i)),
        ),
        SpansetOp::UnionParent => union(
            pick(&|i| r[i] && child_in(l, i)),
            pick(&|i| l[i] && parent_in(r, i)),
        ),
        SpansetOp::UnionDescendant => {
            let up = above(r);
            union(
                pick(&|i| r[i] && ancestor_in(l, i)),
                pick(&|i| l[i] && up[i]),
            )
        }
        SpansetOp::UnionAncestor => {
            let up = above(l);
            union(
                pick(&|i| r[i] && up[i]),
                pick(&|i| l[i] && ancestor_in(r, i)),
            )
        }
        SpansetOp::UnionSibling => union(
            pick(&|i| r[i] && sibling_in(l, i)),
            pick(&|i| l[i] && sibling_in(r, i)),
        ),
    }
}

/// The value of a field for span `i` (its first event or link, when it reads them).
pub fn span_field<'t>(f: &'t Field, ix: &TraceIndex<'t>, i: usize) -> Value<'t> {
    let span = ix.spans[i].span;
    field(
        f,
        Ctx {
            ix,
            span: i,
            event: span.events.first(),
            link: span.links.first(),
        },
    )
}

fn scalar<'t>(s: &'t Scalar, ix: &TraceIndex<'t>, set: &Spanset) -> Value<'t> {
    match s {
        Scalar::Static(v) => Value::from_static(v),
        Scalar::Binary { op, lhs, rhs } => {
            arithmetic(*op, &scalar(lhs, ix, set), &scalar(rhs, ix, set))
        }
        Scalar::Aggregate(AggregateKind::Count, _) => Value::Int(set.spans.len() as i64),
        Scalar::Aggregate(kind, Some(f)) => {
            let values: Vec<Value<'t>> = set
                .spans
                .iter()
                .map(|&i| span_field(f, ix, i))
                .filter(|v| matches!(v, Value::Int(_) | Value::Float(_) | Value::Duration(_)))
                .collect();
            aggregate(*kind, &values)
        }
        Scalar::Aggregate(_, None) => Value::Nil,
    }
}

fn aggregate<'t>(kind: AggregateKind, values: &[Value<'t>]) -> Value<'t> {
    if values.is_empty() {
        return Value::Nil;
    }
    let durations = values.iter().all(|v| matches!(v, Value::Duration(_)));
    let ints = values.iter().all(|v| matches!(v, Value::Int(_)));
    let num = |v: &Value<'_>| match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Duration(d) => *d as f64,
        _ => 0.0,
    };
    let mut nums: Vec<f64> = values.iter().map(num).collect();
    if !durations && values.iter().any(|v| matches!(v, Value::Duration(_))) {
        // Durations mixed with plain numbers do not aggregate.
        return Value::Nil;
    }
    let r = match kind {
        AggregateKind::Count => return Value::Int(values.len() as i64),
        AggregateKind::Sum => nums.iter().sum::<f64>(),
        AggregateKind::Avg => nums.iter().sum::<f64>() / nums.len() as f64,
        AggregateKind::Min => {
            nums.sort_by(f64::total_cmp);
            nums[0]
        }
        AggregateKind::Max => {
            nums.sort_by(f64::total_cmp);
            nums[nums.len() - 1]
        }
    };
    if durations {
        Value::Duration(r.round() as i64)
    } else if ints && kind != AggregateKind::Avg {
        Value::Int(r as i64)
    } else {
        Value::Float(r)
    }
}

/// Splits a spanset by the values of `fields` (in order of the values' text).
fn group(fields: &[Field], ix: &TraceIndex<'_>, set: Spanset) -> Vec<Spanset> {
    let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for &i in &set.spans {
        let key: Vec<String> = fields
            .iter()
            .map(|f| span_field(f, ix, i).to_text())
            .collect();
        groups.entry(key).or_default().push(i);
    }
    groups
        .into_iter()
        .map(|(key, spans)| {
            let mut by = set.by.clone();
            by.extend(fields.iter().map(super::display::field).zip(key));
            Spanset { spans, by }
        })
        .collect()
}
