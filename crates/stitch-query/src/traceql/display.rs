//! Writing parsed TraceQL back as text (names in answers, and the form the web UI builds).

use super::ast::*;

fn static_text(s: &Static) -> String {
    match s {
        Static::Str(v) => format!("{v:?}"),
        Static::Int(v) => v.to_string(),
        Static::Float(v) => {
            let t = v.to_string();
            if t.contains('.') { t } else { format!("{t}.0") }
        }
        Static::Bool(v) => v.to_string(),
        Static::Duration(d) => duration(*d),
        Static::Status(s) => match s {
            stitch_model::StatusCode::Ok => "ok".into(),
            stitch_model::StatusCode::Error => "error".into(),
            stitch_model::StatusCode::Unset => "unset".into(),
        },
        Static::Kind(k) => k.as_str().to_ascii_lowercase(),
        Static::Nil => "nil".into(),
    }
}

/// A duration in the largest unit that writes it whole.
pub fn duration(nanos: i64) -> String {
    for (unit, per) in [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos != 0 && nanos % per == 0 {
            return format!("{}{unit}", nanos / per);
        }
    }
    format!("{nanos}ns")
}

/// An attribute name as written after its scope, quoted when it needs to be.
fn attribute_name(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && !name
            .chars()
            .any(|c| c.is_whitespace() || "{}()=~!<>&|,\"^".contains(c));
    if !plain {
        format!("{name:?}")
    } else {
        name.to_owned()
    }
}

/// A field expression as TraceQL text (fully parenthesised below the top).
pub fn field(f: &Field) -> String {
    match f {
        Field::Static(s) => static_text(s),
        Field::Intrinsic(i) => i.name().to_owned(),
        Field::Attribute(scope, name) => format!("{}{}", scope.prefix(), attribute_name(name)),
        Field::Binary { op, lhs, rhs, .. } => {
            format!("{} {} {}", operand(lhs), op.symbol(), operand(rhs))
        }
        Field::Not(x) => format!("!{}", operand(x)),
        Field::Neg(x) => format!("-{}", operand(x)),
    }
}

fn operand(f: &Field) -> String {
    match f {
        Field::Binary { .. } => format!("({})", field(f)),
        _ => field(f),
    }
}

fn spanset_op(op: SpansetOp) -> &'static str {
    match op {
        SpansetOp::And => "&&",
        SpansetOp::Or => "||",
        SpansetOp::Child => ">",
        SpansetOp::Parent => "<",
        SpansetOp::Descendant => ">>",
        SpansetOp::Ancestor => "<<",
        SpansetOp::Sibling => "~",
        SpansetOp::NotChild => "!>",
        SpansetOp::NotParent => "!<",
        SpansetOp::NotDescendant => "!>>",
        SpansetOp::NotAncestor => "!<<",
        SpansetOp::NotSibling => "!~",
        SpansetOp::UnionChild => "&>",
        SpansetOp::UnionParent => "&<",
        SpansetOp::UnionDescendant => "&>>",
        SpansetOp::UnionAncestor => "&<<",
        SpansetOp::UnionSibling => "&~",
    }
}

fn spanset(e: &SpansetExpr) -> String {
    match e {
        SpansetExpr::Filter(None) => "{ }".into(),
        SpansetExpr::Filter(Some(f)) => format!("{{ {} }}", field(f)),
        SpansetExpr::Op { op, lhs, rhs } => {
            format!("({} {} {})", spanset(lhs), spanset_op(*op), spanset(rhs))
        }
        SpansetExpr::Pipeline(p) => format!("({})", pipeline(p)),
    }
}

fn scalar(s: &Scalar) -> String {
    match s {
        Scalar::Static(v) => static_text(v),
        Scalar::Aggregate(AggregateKind::Count, _) => "count()".into(),
        Scalar::Aggregate(kind, f) => {
            let name = match kind {
                AggregateKind::Avg => "avg",
                AggregateKind::Min => "min",
                AggregateKind::Max => "max",
                AggregateKind::Sum => "sum",
                AggregateKind::Count => "count",
            };
            format!("{name}({})", f.as_ref().map(field).unwrap_or_default())
        }
        Scalar::Binary { op, lhs, rhs } => {
            format!("({} {} {})", scalar(lhs), op.symbol(), scalar(rhs))
        }
    }
}

fn fields(fs: &[Field]) -> String {
    fs.iter().map(field).collect::<Vec<_>>().join(", ")
}

/// A whole query as TraceQL text.
pub fn pipeline(p: &Pipeline) -> String {
    let mut out = spanset(&p.source);
    for stage in &p.stages {
        out.push_str(" | ");
        out.push_str(&match stage {
            Stage::Spanset(e) => spanset(e),
            Stage::ScalarFilter { op, lhs, rhs } => {
                format!("{} {} {}", scalar(lhs), op.symbol(), scalar(rhs))
            }
            Stage::By(fs) => format!("by({})", fields(fs)),
            Stage::Select(fs) => format!("select({})", fields(fs)),
            Stage::Coalesce => "coalesce()".into(),
        });
    }
    out
}
