//! The TraceQL parser: tokens to [`Pipeline`], with the type checks that need no data.
//!
//! Precedence, loosest first (as Tempo's grammar has it): `|`; `&&` and `||` (equal, left to
//! right); comparisons, regex matches and the structural operators; `+ -`; prefix `!`;
//! `* / %`; `^` (right to left).

use stitch_model::{SpanKind, StatusCode};

use super::QueryError;
use super::ast::*;
use super::lex::{Tok, Token, lex};

/// Parses a whole query: a spanset pipeline, and for a metrics query the metrics stage that
/// ends it (with its position).
pub fn parse(text: &str) -> Result<(Pipeline, Option<(usize, Metrics)>), QueryError> {
    let mut p = Parser {
        toks: lex(text)?,
        i: 0,
    };
    if p.peek() == &Tok::Eof {
        return Err(p.error_here("the query is empty: start with a spanset filter such as `{ }`"));
    }
    let (pipeline, metrics) = p.query()?;
    if p.peek() == &Tok::Word("with".into()) {
        p.hint()?;
    }
    if p.peek() != &Tok::Eof {
        return Err(p.expected("`|`, a spanset operator or the end of the query"));
    }
    Ok((pipeline, metrics))
}

/// The hints `with(...)` takes.
pub const HINTS: [&str; 5] = [
    "most_recent",
    "sample",
    "span_sample",
    "trace_sample",
    "exemplars",
];

/// The names of the metrics functions.
pub const METRICS_FUNCTIONS: [&str; 8] = [
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "avg_over_time",
    "quantile_over_time",
    "histogram_over_time",
];

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

const AGGREGATES: [(&str, AggregateKind); 5] = [
    ("count", AggregateKind::Count),
    ("avg", AggregateKind::Avg),
    ("min", AggregateKind::Min),
    ("max", AggregateKind::Max),
    ("sum", AggregateKind::Sum),
];

fn spanset_op(tok: &Tok) -> Option<(SpansetOp, u8)> {
    Some(match tok {
        Tok::And => (SpansetOp::And, 1),
        Tok::Or => (SpansetOp::Or, 1),
        Tok::Gt => (SpansetOp::Child, 2),
        Tok::Lt => (SpansetOp::Parent, 2),
        Tok::Desc => (SpansetOp::Descendant, 2),
        Tok::Anc => (SpansetOp::Ancestor, 2),
        Tok::Tilde => (SpansetOp::Sibling, 2),
        Tok::NotChild => (SpansetOp::NotChild, 2),
        Tok::NotParent => (SpansetOp::NotParent, 2),
        Tok::NotDesc => (SpansetOp::NotDescendant, 2),
        Tok::NotAnc => (SpansetOp::NotAncestor, 2),
        // `!~` is a regex mismatch inside `{ }` and "not sibling" between spansets.
        Tok::Nre => (SpansetOp::NotSibling, 2),
        Tok::UnionChild => (SpansetOp::UnionChild, 2),
        Tok::UnionParent => (SpansetOp::UnionParent, 2),
        Tok::UnionDesc => (SpansetOp::UnionDescendant, 2),
        Tok::UnionAnc => (SpansetOp::UnionAncestor, 2),
        Tok::UnionSibling => (SpansetOp::UnionSibling, 2),
        _ => return None,
    })
}

/// Binary operators of field expressions, with their precedence.
fn field_op(tok: &Tok) -> Option<(BinOp, u8)> {
    Some(match tok {
        Tok::Or => (BinOp::Or, 1),
        Tok::And => (BinOp::And, 1),
        Tok::Eq => (BinOp::Eq, 2),
        Tok::Neq => (BinOp::Neq, 2),
        Tok::Lt => (BinOp::Lt, 2),
        Tok::Lte => (BinOp::Lte, 2),
        Tok::Gt => (BinOp::Gt, 2),
        Tok::Gte => (BinOp::Gte, 2),
        Tok::Re => (BinOp::Re, 2),
        Tok::Nre => (BinOp::Nre, 2),
        Tok::Add => (BinOp::Add, 3),
        Tok::Sub => (BinOp::Sub, 3),
        Tok::Mul => (BinOp::Mul, 5),
        Tok::Div => (BinOp::Div, 5),
        Tok::Mod => (BinOp::Mod, 5),
        Tok::Pow => (BinOp::Pow, 6),
        _ => return None,
    })
}

const PREC_NOT: u8 = 4;

fn scalar_op(tok: &Tok) -> Option<(BinOp, u8)> {
    match field_op(tok)? {
        (op, p) if op.is_arithmetic() => Some((op, p)),
        _ => None,
    }
}

fn comparison(tok: &Tok) -> Option<BinOp> {
    match field_op(tok)? {
        (op, _) if op.is_comparison() => Some(op),
        _ => None,
    }
}

/// The type of a field expression, as far as it is known without data.
pub fn type_of(f: &Field) -> Type {
    match f {
        Field::Static(s) => s.value_type(),
        Field::Intrinsic(i) => i.value_type(),
        Field::Attribute(..) => Type::Unknown,
        Field::Binary { op, lhs, rhs, .. } => {
            if !op.is_arithmetic() {
                return Type::Bool;
            }
            match (type_of(lhs), type_of(rhs)) {
                (Type::Duration, _) | (_, Type::Duration) => Type::Duration,
                (Type::Number, Type::Number) => Type::Number,
                _ => Type::Unknown,
            }
        }
        Field::Not(_) => Type::Bool,
        Field::Neg(x) => type_of(x),
    }
}

fn is_numeric(t: Type) -> bool {
    matches!(t, Type::Number | Type::Duration | Type::Unknown)
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.toks[(self.i + ahead).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }

    /// Takes the token at the cursor (past the end, [`Tok::Eof`] again); `self.i -= 1` puts it
    /// back.
    fn next(&mut self) -> Token {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        self.i += 1;
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.next();
            true
        } else {
            false
        }
    }

    fn error_here(&self, message: impl Into<String>) -> QueryError {
        QueryError::new(self.pos(), message)
    }

    fn expected(&self, what: &str) -> QueryError {
        self.error_here(format!("expected {what}, found {}", self.peek().describe()))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), QueryError> {
        if self.eat(&tok) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, QueryError> {
        let source = self.spanset_expr(0)?;
        let mut stages = Vec::new();
        while self.eat(&Tok::Pipe) {
            if self.at_metrics_function() {
                return Err(self.error_here(
                    "a metrics function ends the whole query; it cannot stand inside parentheses",
                ));
            }
            stages.push(self.stage()?);
        }
        Ok(Pipeline { source, stages })
    }

    /// The outermost pipeline, which may end in a metrics stage.
    fn query(&mut self) -> Result<(Pipeline, Option<(usize, Metrics)>), QueryError> {
        let source = self.spanset_expr(0)?;
        let mut stages = Vec::new();
        while self.eat(&Tok::Pipe) {
            if self.at_metrics_function() {
                let at = self.pos();
                let metrics = self.metrics()?;
                return Ok((Pipeline { source, stages }, Some((at, metrics))));
            }
            stages.push(self.stage()?);
        }
        Ok((Pipeline { source, stages }, None))
    }

    fn at_metrics_function(&self) -> bool {
        matches!(self.peek(), Tok::Word(w) if METRICS_FUNCTIONS.contains(&w.as_str()))
    }

    /// `rate() by (...) | topk(5)` and the like.
    fn metrics(&mut self) -> Result<Metrics, QueryError> {
        let token = self.next();
        let Tok::Word(name) = token.tok else {
            unreachable!("checked by at_metrics_function");
        };
        let func = match name.as_str() {
            "rate" => {
                self.empty_parens(token.pos, "rate")?;
                MetricsFn::Rate
            }
            "count_over_time" => {
                self.empty_parens(token.pos, "count_over_time")?;
                MetricsFn::CountOverTime
            }
            "quantile_over_time" => {
                self.expect(Tok::LParen, "`(` after `quantile_over_time`")?;
                let field = self.numeric_field("quantile_over_time")?;
                let mut qs = Vec::new();
                while self.eat(&Tok::Comma) {
                    let at = self.pos();
                    let q = match self.next().tok {
                        Tok::Float(f) => f,
                        Tok::Int(i) => i as f64,
                        _ => {
                            self.i -= 1;
                            return Err(self.expected("a quantile such as `0.9`"));
                        }
                    };
                    if !(0.0..=1.0).contains(&q) {
                        return Err(QueryError::new(
                            at,
                            format!("a quantile is between 0 and 1, found {q}"),
                        ));
                    }
                    qs.push(q);
                }
                if qs.is_empty() {
                    return Err(self.expected("`,` and at least one quantile such as `0.9`"));
                }
                self.expect(Tok::RParen, "`,` or `)`")?;
                MetricsFn::QuantileOverTime(field, qs)
            }
            other => {
                self.expect(Tok::LParen, &format!("`(` after `{other}`"))?;
                let field = self.numeric_field(other)?;
                self.expect(Tok::RParen, "`)`")?;
                match other {
                    "min_over_time" => MetricsFn::MinOverTime(field),
                    "max_over_time" => MetricsFn::MaxOverTime(field),
                    "sum_over_time" => MetricsFn::SumOverTime(field),
                    "avg_over_time" => MetricsFn::AvgOverTime(field),
                    _ => MetricsFn::HistogramOverTime(field),
                }
            }
        };
        let by = if self.peek() == &Tok::Word("by".into()) {
            self.next();
            self.field_list("by")?
        } else {
            Vec::new()
        };
        let mut keep = None;
        while self.eat(&Tok::Pipe) {
            let at = self.pos();
            let top = match self.next().tok {
                Tok::Word(w) if w == "topk" => true,
                Tok::Word(w) if w == "bottomk" => false,
                _ => {
                    self.i -= 1;
                    return Err(self.expected("`topk(n)` or `bottomk(n)` after a metrics function"));
                }
            };
            self.expect(Tok::LParen, "`(`")?;
            let n = match self.next().tok {
                Tok::Int(n) if n > 0 => n as usize,
                _ => {
                    self.i -= 1;
                    return Err(self.expected("a positive whole number"));
                }
            };
            self.expect(Tok::RParen, "`)`")?;
            if keep.is_some() {
                return Err(QueryError::new(
                    at,
                    "only one `topk` or `bottomk` is supported",
                ));
            }
            keep = Some((top, n));
        }
        Ok(Metrics { func, by, keep })
    }

    /// The field a metrics function reads: one with a number or duration value.
    fn numeric_field(&mut self, function: &str) -> Result<Field, QueryError> {
        let at = self.pos();
        let field = self.field_expr(0)?;
        match type_of(&field) {
            t if is_numeric(t) || t == Type::Unknown => Ok(field),
            t => Err(QueryError::new(
                at,
                format!(
                    "`{function}` needs a number or a duration such as `duration`, found {}",
                    t.describe()
                ),
            )),
        }
    }

    fn spanset_expr(&mut self, min: u8) -> Result<SpansetExpr, QueryError> {
        let mut lhs = self.spanset_primary()?;
        while let Some((op, prec)) = spanset_op(self.peek()) {
            if prec < min {
                break;
            }
            self.next();
            let rhs = self.spanset_expr(prec + 1)?;
            lhs = SpansetExpr::Op {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    fn spanset_primary(&mut self) -> Result<SpansetExpr, QueryError> {
        match self.peek() {
            Tok::LBrace => {
                self.next();
                if self.eat(&Tok::RBrace) {
                    return Ok(SpansetExpr::Filter(None));
                }
                let start = self.pos();
                let cond = self.field_expr(0)?;
                match type_of(&cond) {
                    Type::Bool | Type::Unknown => {}
                    t => {
                        return Err(QueryError::new(
                            start,
                            format!(
                                "a spanset filter needs a condition such as `name = \"x\"`, found {}",
                                t.describe()
                            ),
                        ));
                    }
                }
                self.expect(Tok::RBrace, "`}` or an operator")?;
                Ok(SpansetExpr::Filter(Some(cond)))
            }
            Tok::LParen => {
                self.next();
                let inner = self.pipeline()?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(if inner.stages.is_empty() {
                    inner.source
                } else {
                    SpansetExpr::Pipeline(Box::new(inner))
                })
            }
            _ => Err(self.expected("a spanset filter such as `{ name = \"x\" }`")),
        }
    }

    fn stage(&mut self) -> Result<Stage, QueryError> {
        match self.peek().clone() {
            Tok::Word(w) if w == "by" => {
                self.next();
                Ok(Stage::By(self.field_list("by")?))
            }
            Tok::Word(w) if w == "select" => {
                self.next();
                Ok(Stage::Select(self.field_list("select")?))
            }
            Tok::Word(w) if w == "coalesce" => {
                let at = self.next().pos;
                self.empty_parens(at, "coalesce")?;
                Ok(Stage::Coalesce)
            }
            Tok::LBrace => Ok(Stage::Spanset(self.spanset_expr(0)?)),
            Tok::LParen if self.parens_open_a_spanset() => {
                Ok(Stage::Spanset(self.spanset_expr(0)?))
            }
            _ => self.scalar_filter(),
        }
    }

    /// Whether the `(`s at the cursor open a spanset expression (rather than a scalar one).
    fn parens_open_a_spanset(&self) -> bool {
        let mut k = 0;
        while self.peek_at(k) == &Tok::LParen {
            k += 1;
        }
        self.peek_at(k) == &Tok::LBrace
    }

    fn field_list(&mut self, what: &str) -> Result<Vec<Field>, QueryError> {
        self.expect(Tok::LParen, &format!("`(` after `{what}`"))?;
        let mut fields = vec![self.field_expr(0)?];
        while self.eat(&Tok::Comma) {
            fields.push(self.field_expr(0)?);
        }
        self.expect(Tok::RParen, "`,` or `)`")?;
        Ok(fields)
    }

    fn scalar_filter(&mut self) -> Result<Stage, QueryError> {
        let start = self.pos();
        let lhs = self.scalar_expr(0)?;
        let at = self.pos();
        let Some(op) = comparison(self.peek()) else {
            return Err(self.expected("a comparison such as `> 2` after the aggregate"));
        };
        self.next();
        let rhs = self.scalar_expr(0)?;
        if !has_aggregate(&lhs) && !has_aggregate(&rhs) {
            return Err(QueryError::new(
                start,
                "a pipeline comparison needs an aggregate: count(), avg(...), min(...), max(...) or sum(...)",
            ));
        }
        let (lt, rt) = (scalar_type(&lhs), scalar_type(&rhs));
        if lt != rt && lt != Type::Unknown && rt != Type::Unknown {
            return Err(QueryError::new(
                at,
                format!("cannot compare {} with {}", lt.describe(), rt.describe()),
            ));
        }
        Ok(Stage::ScalarFilter { op, lhs, rhs })
    }

    fn scalar_expr(&mut self, min: u8) -> Result<Scalar, QueryError> {
        let mut lhs = self.scalar_primary()?;
        while let Some((op, prec)) = scalar_op(self.peek()) {
            if prec < min {
                break;
            }
            self.next();
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.scalar_expr(next_min)?;
            lhs = Scalar::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    fn scalar_primary(&mut self) -> Result<Scalar, QueryError> {
        let t = self.next();
        match t.tok {
            Tok::LParen => {
                let inner = self.scalar_expr(0)?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::Int(n) => Ok(Scalar::Static(Static::Int(n))),
            Tok::Float(f) => Ok(Scalar::Static(Static::Float(f))),
            Tok::Duration(d) => Ok(Scalar::Static(Static::Duration(d))),
            Tok::Sub => match self.next().tok {
                Tok::Int(n) => Ok(Scalar::Static(Static::Int(-n))),
                Tok::Float(f) => Ok(Scalar::Static(Static::Float(-f))),
                Tok::Duration(d) => Ok(Scalar::Static(Static::Duration(-d))),
                _ => Err(QueryError::new(t.pos, "`-` must be followed by a number")),
            },
            Tok::Word(w) => {
                let Some(&(_, kind)) = AGGREGATES.iter().find(|(n, _)| *n == w) else {
                    return Err(QueryError::new(
                        t.pos,
                        format!(
                            "expected `by`, `select`, `coalesce`, a spanset filter or an aggregate (count, avg, min, max, sum), found `{w}`"
                        ),
                    ));
                };
                if kind == AggregateKind::Count {
                    self.empty_parens(t.pos, "count")?;
                    return Ok(Scalar::Aggregate(kind, None));
                }
                self.expect(Tok::LParen, &format!("`(` after `{w}`"))?;
                let at = self.pos();
                let field = self.field_expr(0)?;
                let t = type_of(&field);
                if !is_numeric(t) {
                    return Err(QueryError::new(
                        at,
                        format!("`{w}` needs a number or a duration, found {}", t.describe()),
                    ));
                }
                self.expect(Tok::RParen, "`)`")?;
                Ok(Scalar::Aggregate(kind, Some(field)))
            }
            _ => {
                self.i -= 1;
                Err(self.expected("a pipeline stage: a spanset filter, an aggregate comparison, `by(...)`, `select(...)` or `coalesce()`"))
            }
        }
    }

    fn field_expr(&mut self, min: u8) -> Result<Field, QueryError> {
        let mut lhs = self.field_prefix()?;
        while let Some((op, prec)) = field_op(self.peek()) {
            if prec < min {
                break;
            }
            let at = self.pos();
            self.next();
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs_pos = self.pos();
            let rhs = self.field_expr(next_min)?;
            lhs = binary(op, lhs, rhs, at, rhs_pos)?;
        }
        Ok(lhs)
    }

    fn field_prefix(&mut self) -> Result<Field, QueryError> {
        let t = self.next();
        match t.tok {
            Tok::Not => {
                let at = self.pos();
                let x = self.field_expr(PREC_NOT)?;
                match type_of(&x) {
                    Type::Bool | Type::Unknown => Ok(Field::Not(Box::new(x))),
                    other => Err(QueryError::new(
                        at,
                        format!("`!` negates a condition, found {}", other.describe()),
                    )),
                }
            }
            Tok::Sub => {
                let at = self.pos();
                let x = self.field_expr(PREC_NOT)?;
                if !is_numeric(type_of(&x)) {
                    return Err(QueryError::new(
                        at,
                        format!("`-` needs a number, found {}", type_of(&x).describe()),
                    ));
                }
                Ok(match x {
                    Field::Static(Static::Int(n)) => Field::Static(Static::Int(-n)),
                    Field::Static(Static::Float(f)) => Field::Static(Static::Float(-f)),
                    Field::Static(Static::Duration(d)) => Field::Static(Static::Duration(-d)),
                    x => Field::Neg(Box::new(x)),
                })
            }
            Tok::LParen => {
                let inner = self.field_expr(0)?;
                self.expect(Tok::RParen, "`)` or an operator")?;
                Ok(inner)
            }
            Tok::Str(s) => Ok(Field::Static(Static::Str(s))),
            Tok::Int(n) => Ok(Field::Static(Static::Int(n))),
            Tok::Float(f) => Ok(Field::Static(Static::Float(f))),
            Tok::Duration(d) => Ok(Field::Static(Static::Duration(d))),
            Tok::Attribute(scope, name) => Ok(Field::Attribute(scope, name)),
            Tok::Word(w) => word(&w).ok_or_else(|| {
                QueryError::new(
                    t.pos,
                    format!(
                        "unknown name `{w}`: an attribute is written `span.{w}`, `resource.{w}` or `.{w}`"
                    ),
                )
            }),
            _ => {
                self.i -= 1;
                Err(self.expected("a value, an attribute or an intrinsic such as `duration`"))
            }
        }
    }

    /// `()` written right after `word` (at `at`), as TraceQL spells `count()` and `coalesce()`.
    fn empty_parens(&mut self, at: usize, word: &str) -> Result<(), QueryError> {
        let open = at + word.len();
        let adjacent = self.peek() == &Tok::LParen
            && self.pos() == open
            && self.peek_at(1) == &Tok::RParen
            && self.toks[(self.i + 1).min(self.toks.len() - 1)].pos == open + 1;
        if !adjacent {
            return Err(QueryError::new(
                self.pos(),
                format!("expected `()` right after `{word}`: it is written `{word}()`"),
            ));
        }
        self.next();
        self.next();
        Ok(())
    }

    /// `with(name = value, ...)`: [`HINTS`] such as `most_recent=true`, `sample=true` or
    /// `exemplars=true`. They are accepted and change nothing: answers are always the most
    /// recent traces, metrics are computed from every matching span, exemplars always come.
    fn hint(&mut self) -> Result<(), QueryError> {
        self.next();
        self.expect(Tok::LParen, "`(` after `with`")?;
        loop {
            let name = match self.next().tok {
                Tok::Word(w) if HINTS.contains(&w.as_str()) => w,
                _ => {
                    self.i -= 1;
                    return Err(self.expected(&format!("a hint: one of {}", HINTS.join(", "))));
                }
            };
            self.expect(Tok::Eq, "`=`")?;
            // The sampling hints also take a fraction; the others are switches.
            let fraction = name.ends_with("sample");
            match self.next().tok {
                Tok::Word(w) if w == "true" || w == "false" => {}
                Tok::Int(_) | Tok::Float(_) if fraction => {}
                _ => {
                    self.i -= 1;
                    return Err(self.expected(if fraction {
                        "`true`, `false` or a fraction"
                    } else {
                        "`true` or `false`"
                    }));
                }
            }
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(Tok::RParen, "`,` or `)`")
    }
}

/// A keyword or intrinsic as a field.
fn word(w: &str) -> Option<Field> {
    let s = |v| Some(Field::Static(v));
    match w {
        "true" => s(Static::Bool(true)),
        "false" => s(Static::Bool(false)),
        "nil" => s(Static::Nil),
        "ok" => s(Static::Status(StatusCode::Ok)),
        "error" => s(Static::Status(StatusCode::Error)),
        "unset" => s(Static::Status(StatusCode::Unset)),
        "unspecified" => s(Static::Kind(SpanKind::Unspecified)),
        "internal" => s(Static::Kind(SpanKind::Internal)),
        "server" => s(Static::Kind(SpanKind::Server)),
        "client" => s(Static::Kind(SpanKind::Client)),
        "producer" => s(Static::Kind(SpanKind::Producer)),
        "consumer" => s(Static::Kind(SpanKind::Consumer)),
        _ => Intrinsic::from_word(w).map(Field::Intrinsic),
    }
}

/// Builds a binary field expression, checking what can be checked without data.
fn binary(
    op: BinOp,
    lhs: Field,
    rhs: Field,
    at: usize,
    rhs_pos: usize,
) -> Result<Field, QueryError> {
    let (lt, rt) = (type_of(&lhs), type_of(&rhs));
    let sym = op.symbol();
    let mismatch = |detail: String| Err(QueryError::new(at, format!("`{sym}`: {detail}")));
    let mut regex = None;
    match op {
        BinOp::And | BinOp::Or => {
            for t in [lt, rt] {
                if !matches!(t, Type::Bool | Type::Unknown) {
                    return mismatch(format!("joins conditions, found {}", t.describe()));
                }
            }
        }
        BinOp::Re | BinOp::Nre => {
            if !matches!(lt, Type::String | Type::Unknown) {
                return mismatch(format!("matches strings, found {}", lt.describe()));
            }
            let Field::Static(Static::Str(pattern)) = &rhs else {
                return Err(QueryError::new(
                    rhs_pos,
                    format!("`{sym}` needs a regular expression in quotes on its right"),
                ));
            };
            regex = Some(regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                QueryError::new(rhs_pos, format!("invalid regular expression: {e}"))
            })?);
        }
        op if op.is_comparison() => {
            let known = |t: Type| !matches!(t, Type::Unknown);
            if (lt == Type::Nil || rt == Type::Nil) && !matches!(op, BinOp::Eq | BinOp::Neq) {
                return mismatch("only `=` and `!=` compare with nil".into());
            }
            let ordered = matches!(op, BinOp::Lt | BinOp::Lte | BinOp::Gt | BinOp::Gte);
            for t in [lt, rt] {
                if ordered && matches!(t, Type::Status | Type::Kind | Type::Bool) {
                    return mismatch(format!("cannot order {}", t.describe()));
                }
            }
            if known(lt) && known(rt) && lt != rt && lt != Type::Nil && rt != Type::Nil {
                return mismatch(format!(
                    "cannot compare {} with {}",
                    lt.describe(),
                    rt.describe()
                ));
            }
        }
        _ => {
            for t in [lt, rt] {
                if !is_numeric(t) {
                    return mismatch(format!(
                        "needs numbers or durations, found {}",
                        t.describe()
                    ));
                }
            }
            if lt == Type::Duration
                && rt == Type::Duration
                && !matches!(op, BinOp::Add | BinOp::Sub)
            {
                return mismatch("durations can only be added or subtracted".into());
            }
        }
    }
    Ok(Field::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        regex,
    })
}

fn has_aggregate(s: &Scalar) -> bool {
    match s {
        Scalar::Aggregate(..) => true,
        Scalar::Static(_) => false,
        Scalar::Binary { lhs, rhs, .. } => has_aggregate(lhs) || has_aggregate(rhs),
    }
}

fn scalar_type(s: &Scalar) -> Type {
    match s {
        Scalar::Aggregate(AggregateKind::Count, _) => Type::Number,
        Scalar::Aggregate(_, Some(f)) => match type_of(f) {
            Type::Duration => Type::Duration,
            Type::Number => Type::Number,
            _ => Type::Unknown,
        },
        Scalar::Aggregate(_, None) => Type::Unknown,
        Scalar::Static(s) => s.value_type(),
        Scalar::Binary { lhs, rhs, .. } => match (scalar_type(lhs), scalar_type(rhs)) {
            (Type::Duration, _) | (_, Type::Duration) => Type::Duration,
            (Type::Number, Type::Number) => Type::Number,
            _ => Type::Unknown,
        },
    }
}
