//! Which traces a TraceQL query needs to look at: conditions that one span of every matching
//! trace meets, as a [`SearchQuery`] a reader can answer from its indexes.
//!
//! The conditions come from a spanset filter every match needs (the right side of a structural
//! operator, a side of `&&`, the source of a pipeline), from the conjuncts of its condition
//! that a [`SearchQuery`] can state: the service (`resource.service.name = "x"`, `.service.name
//! = "x"`), the span name, the kind, duration bounds, `status = error`, and an attribute equal to
//! a string, an integer or a boolean (a tag, which a reader matches against span, resource and
//! event attributes: never fewer spans than the filter). Everything else is left to the
//! evaluation of the whole query on each candidate trace, so a plan only ever narrows what is
//! read, never what matches.

use stitch_model::StatusCode;

use super::ast::*;
use crate::SearchQuery;

/// Conditions one span of every trace the pipeline matches satisfies (`None`: no such
/// conditions are known; every trace of the window is a candidate).
pub fn prefilter(p: &Pipeline) -> Option<SearchQuery> {
    let q = required(&p.source)?;
    let empty = q.service.is_none()
        && q.operation.is_none()
        && q.span_kind.is_none()
        && q.tags.is_empty()
        && q.min_duration_nanos.is_none()
        && q.max_duration_nanos.is_none();
    (!empty).then_some(q)
}

/// How many conditions a plan states (the more, the fewer candidates).
fn weight(q: &SearchQuery) -> usize {
    usize::from(q.service.is_some())
        + usize::from(q.operation.is_some())
        + usize::from(q.span_kind.is_some())
        + q.tags.len() * 2
        + usize::from(q.min_duration_nanos.is_some())
        + usize::from(q.max_duration_nanos.is_some())
}

fn better(a: Option<SearchQuery>, b: Option<SearchQuery>) -> Option<SearchQuery> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if weight(&b) > weight(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn required(e: &SpansetExpr) -> Option<SearchQuery> {
    match e {
        SpansetExpr::Filter(None) => None,
        SpansetExpr::Filter(Some(cond)) => {
            let mut q = SearchQuery::default();
            conjuncts(cond, &mut q);
            Some(q)
        }
        SpansetExpr::Pipeline(p) => required(&p.source),
        SpansetExpr::Op { op, lhs, rhs } => match op {
            // Either side may be empty.
            SpansetOp::Or => None,
            // Only the right side must hold spans.
            SpansetOp::NotChild
            | SpansetOp::NotParent
            | SpansetOp::NotDescendant
            | SpansetOp::NotAncestor
            | SpansetOp::NotSibling => required(rhs),
            // Both sides must hold spans.
            _ => better(required(lhs), required(rhs)),
        },
    }
}

/// Adds to `q` what the `&&`-joined parts of `cond` state that a search query can.
fn conjuncts(cond: &Field, q: &mut SearchQuery) {
    let Field::Binary { op, lhs, rhs, .. } = cond else {
        return;
    };
    if *op == BinOp::And {
        conjuncts(lhs, q);
        conjuncts(rhs, q);
        return;
    }
    let (field, op, value) = match (&**lhs, &**rhs) {
        (f, Field::Static(v)) => (f, *op, v),
        (Field::Static(v), f) => (f, flip(*op), v),
        _ => return,
    };
    match (field, op, value) {
        // The resource's service (a span attribute of that name would win for `.service.name`,
        // which the tag below covers).
        (Field::Attribute(Scope::Resource, k), BinOp::Eq, Static::Str(v))
            if k == "service.name" =>
        {
            q.service = Some(v.clone());
        }
        (Field::Intrinsic(Intrinsic::Name), BinOp::Eq, Static::Str(v)) => {
            q.operation = Some(v.clone());
        }
        (Field::Intrinsic(Intrinsic::Kind), BinOp::Eq, Static::Kind(k)) => {
            q.span_kind = Some(*k);
        }
        (Field::Intrinsic(Intrinsic::Status), BinOp::Eq, Static::Status(StatusCode::Error)) => {
            q.tags.push(("error".into(), "true".into()));
        }
        (Field::Intrinsic(Intrinsic::Duration), op, Static::Duration(d)) if *d >= 0 => {
            let d = *d as u64;
            match op {
                BinOp::Gt => q.min_duration_nanos = Some(d.saturating_add(1)),
                BinOp::Gte => q.min_duration_nanos = Some(d),
                BinOp::Lt if d > 0 => q.max_duration_nanos = Some(d - 1),
                BinOp::Lte => q.max_duration_nanos = Some(d),
                _ => {}
            }
        }
        (
            Field::Attribute(Scope::Any | Scope::Span | Scope::Resource | Scope::Event, k),
            BinOp::Eq,
            v,
        ) => {
            let text = match v {
                Static::Str(s) => s.clone(),
                Static::Int(i) => i.to_string(),
                Static::Bool(b) => b.to_string(),
                _ => return,
            };
            q.tags.push((k.clone(), text));
        }
        _ => {}
    }
}

/// The comparison with its sides swapped (`1 < x` is `x > 1`).
fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Lte => BinOp::Gte,
        BinOp::Gt => BinOp::Lt,
        BinOp::Gte => BinOp::Lte,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stitch_model::SpanKind;

    fn plan(q: &str) -> Option<SearchQuery> {
        prefilter(&super::super::parse::parse(q).unwrap().0)
    }

    #[test]
    fn plans_state_what_every_match_needs_and_nothing_more() {
        let q = plan(r#"{ resource.service.name = "db" && name = "SELECT" && duration > 1s }"#)
            .unwrap();
        assert_eq!(q.service.as_deref(), Some("db"));
        assert_eq!(q.operation.as_deref(), Some("SELECT"));
        assert_eq!(q.min_duration_nanos, Some(1_000_000_001));
        let q = plan(r#"{ span.http.status_code >= 500 } >> { resource.service.name = "db" && kind = client }"#)
            .unwrap();
        assert_eq!(
            (q.service.as_deref(), q.span_kind),
            (Some("db"), Some(SpanKind::Client))
        );
        let q = plan(r#"{ .service.name = "db" }"#).unwrap();
        assert_eq!(q.tags, vec![("service.name".to_owned(), "db".to_owned())]);
        let q = plan(r#"{ status = error && span.user = "u1" } | count() > 1"#).unwrap();
        assert_eq!(
            q.tags,
            vec![
                ("error".to_owned(), "true".to_owned()),
                ("user".to_owned(), "u1".to_owned())
            ]
        );
        assert_eq!(
            plan("{ 500 = span.code }").unwrap().tags,
            vec![("code".to_owned(), "500".to_owned())]
        );
        // Nothing every match needs.
        assert!(plan(r#"{ name = "a" } || { name = "b" }"#).is_none());
        assert!(plan(r#"{ name = "a" || name = "b" }"#).is_none());
        assert!(plan(r#"{ name != "a" }"#).is_none());
        assert!(plan(r#"{ name =~ "a.*" }"#).is_none());
        assert!(plan("{ }").is_none());
        assert_eq!(
            plan(r#"{ name = "a" } !> { kind = server }"#)
                .unwrap()
                .span_kind,
            Some(SpanKind::Server),
            "a negated operator needs only its right side"
        );
    }
}
