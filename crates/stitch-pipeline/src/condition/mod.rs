//! Stitch's filter language for the `condition` policy.
//!
//! ```text
//! duration > 1s or status = error or (service = "payment" and attr["http.status_code"] >= 500)
//! ```
//!
//! # Grammar
//!
//! ```text
//! expr       = or
//! or         = and { ("or" | "||") and }
//! and        = unary { ("and" | "&&") unary }
//! unary      = ("not" | "!") unary | primary
//! primary    = "(" expr ")" | "true" | "false" | comparison
//! comparison = field op value | field "exists"
//! field      = "duration" | "span_count"                       (trace fields)
//!            | "service" | "name" | "kind" | "status" | "span.duration"
//!            | "attr" "[" string "]" | "resource" "[" string "]" (span fields)
//! op         = "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "=~" | "!~"
//! value      = string | number | duration | "true" | "false" | word
//! duration   = number unit     (unit: ns us µs ms s m h; e.g. 1s, 250ms, 1.5s)
//! string     = '"' ... '"'     (escapes \" \\ \n \t)
//! word       = a bare word such as error, ok, unset, server, client
//! ```
//!
//! Keywords are case-insensitive. `=~` and `!~` take a regular expression (unanchored, Rust
//! `regex` syntax).
//!
//! # Fields
//!
//! | field | level | compares with |
//! |---|---|---|
//! | `duration` | trace: latest end − earliest start | duration, `< <= > >= = !=` |
//! | `span_count` | trace | integer |
//! | `service` | span: its resource's `service.name` | string, `= != =~ !~` |
//! | `name` | span name (operation) | string |
//! | `kind` | span kind | `server client producer consumer internal unspecified` |
//! | `status` | span status | `error ok unset` |
//! | `span.duration` | the span's own duration | duration |
//! | `attr["k"]` | span attribute `k`, else resource attribute `k` | string, number or bool |
//! | `resource["k"]` | resource attribute `k` | string, number or bool |
//!
//! # Meaning on a whole trace
//!
//! A condition is true for a trace when:
//!
//! * trace fields are compared once;
//! * a comparison on a span field is true if **any** span matches;
//! * span comparisons joined by `and` must hold **on the same span**:
//!   `service = "payment" and attr["http.status_code"] >= 500` needs one payment span with a
//!   5xx code;
//! * `or` and `not` outside such a group act on the whole trace: `not status = error` means no
//!   span has an error. Inside an `and` group, `not` and `or` apply to that one span:
//!   `service = "cart" and not status = ok` is a cart span whose status is not OK.
//!
//! A comparison with an attribute the span lacks is false (also with `!=`); use
//! `attr["k"] exists` to test presence. Numbers compare with integer and double attributes;
//! `=`/`!=` with a string compare the attribute's text.

use std::fmt;

use regex::Regex;
use stitch_model::{AnyValue, SpanKind, StatusCode, find_attribute};

use crate::span::{SpanNeeds, SpanView};

mod lex;
mod parse;
#[cfg(test)]
mod tests;

use lex::*;
use parse::*;

/// Where and why an expression does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the expression.
    pub offset: usize,
    /// 1-based column (in characters).
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The expression with a caret under the error, for terminals.
    pub fn render(&self, source: &str) -> String {
        format!(
            "{source}\n{}^ {}",
            " ".repeat(self.column.saturating_sub(1)),
            self.message
        )
    }
}

/// A parsed condition.
#[derive(Clone, Debug)]
pub struct Condition {
    expr: Expr,
    source: String,
}

#[derive(Clone, Debug)]
enum Expr {
    Const(bool),
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Cmp),
}

#[derive(Clone, Debug)]
struct Cmp {
    field: Field,
    test: Test,
}

#[derive(Clone, Debug, PartialEq)]
enum Field {
    Duration,
    SpanCount,
    Service,
    Name,
    Kind,
    Status,
    SpanDuration,
    Attr(String),
    Resource(String),
}

impl Field {
    fn is_trace_level(&self) -> bool {
        matches!(self, Field::Duration | Field::SpanCount)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Match => "=~",
            Op::NotMatch => "!~",
        }
    }

    fn order(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
            Op::Match | Op::NotMatch => false,
        }
    }
}

#[derive(Clone, Debug)]
enum Test {
    /// Numeric comparison (durations in nanoseconds).
    Num(Op, f64),
    Str(Op, String),
    Regex(Regex, bool),
    Bool(Op, bool),
    Status(Op, StatusCode),
    Kind(Op, SpanKind),
    Exists,
}

/// What a condition is evaluated against.
pub trait TraceFacts {
    fn duration_nanos(&self) -> u64;
    fn span_count(&self) -> u64;
    /// Calls `f` on spans until it returns true; returns whether it did.
    fn any_span(&self, f: &mut dyn FnMut(&SpanView<'_>) -> bool) -> bool;
}

impl Condition {
    /// Parses an expression; errors name the column.
    pub fn parse(source: &str) -> Result<Condition, ParseError> {
        let tokens = lex(source)?;
        let mut p = Parser {
            source,
            tokens,
            pos: 0,
        };
        let expr = p.expr()?;
        if let Some(t) = p.peek() {
            return Err(p.error_at(
                t.start,
                format!(
                    "unexpected {} after a complete condition; join conditions with `and` or `or`",
                    t.kind.describe()
                ),
            ));
        }
        Ok(Condition {
            expr,
            source: source.to_owned(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates on a whole trace with the semantics in the module docs.
    pub fn matches(&self, trace: &dyn TraceFacts) -> bool {
        eval_trace(&self.expr, trace)
    }

    /// Adds the span fields this condition reads to `needs`.
    pub fn span_needs(&self, needs: &mut SpanNeeds) {
        fn walk(e: &Expr, needs: &mut SpanNeeds) {
            match e {
                Expr::Const(_) => {}
                Expr::Or(xs) | Expr::And(xs) => xs.iter().for_each(|x| walk(x, needs)),
                Expr::Not(x) => walk(x, needs),
                Expr::Cmp(c) => match &c.field {
                    Field::Name => needs.name = true,
                    Field::Attr(key) | Field::Resource(key) => {
                        needs.attributes.insert(key.clone());
                    }
                    Field::Duration
                    | Field::SpanCount
                    | Field::Service
                    | Field::Kind
                    | Field::Status
                    | Field::SpanDuration => {}
                },
            }
        }
        walk(&self.expr, needs)
    }
}

fn has_span_field(e: &Expr) -> bool {
    match e {
        Expr::Const(_) => false,
        Expr::Or(xs) | Expr::And(xs) => xs.iter().any(has_span_field),
        Expr::Not(x) => has_span_field(x),
        Expr::Cmp(c) => !c.field.is_trace_level(),
    }
}

fn eval_trace(e: &Expr, t: &dyn TraceFacts) -> bool {
    match e {
        Expr::Const(b) => *b,
        Expr::Or(xs) => xs.iter().any(|x| eval_trace(x, t)),
        Expr::Not(x) => !eval_trace(x, t),
        Expr::Cmp(c) if c.field.is_trace_level() => eval_cmp(c, t, None),
        Expr::Cmp(c) => t.any_span(&mut |s| eval_cmp(c, t, Some(s))),
        Expr::And(xs) => {
            if xs.iter().any(has_span_field) {
                // One span must satisfy the whole group; trace-level parts first as a cheap
                // filter.
                xs.iter()
                    .filter(|x| !has_span_field(x))
                    .all(|x| eval_trace(x, t))
                    && t.any_span(&mut |s| {
                        xs.iter()
                            .filter(|x| has_span_field(x))
                            .all(|x| eval_span(x, t, s))
                    })
            } else {
                xs.iter().all(|x| eval_trace(x, t))
            }
        }
    }
}

fn eval_span(e: &Expr, t: &dyn TraceFacts, s: &SpanView<'_>) -> bool {
    match e {
        Expr::Const(b) => *b,
        Expr::Or(xs) => xs.iter().any(|x| eval_span(x, t, s)),
        Expr::And(xs) => xs.iter().all(|x| eval_span(x, t, s)),
        Expr::Not(x) => !eval_span(x, t, s),
        Expr::Cmp(c) => eval_cmp(c, t, Some(s)),
    }
}

fn eval_cmp(c: &Cmp, t: &dyn TraceFacts, s: Option<&SpanView<'_>>) -> bool {
    match (&c.field, s) {
        (Field::Duration, _) => num_test(&c.test, t.duration_nanos() as f64),
        (Field::SpanCount, _) => num_test(&c.test, t.span_count() as f64),
        (_, None) => false,
        (Field::SpanDuration, Some(s)) => num_test(&c.test, s.duration_nanos() as f64),
        (Field::Service, Some(s)) => str_test(&c.test, s.service),
        (Field::Name, Some(s)) => str_test(&c.test, s.name),
        (Field::Status, Some(s)) => match c.test {
            Test::Status(op, code) => (s.status == code) == (op == Op::Eq),
            _ => false,
        },
        (Field::Kind, Some(s)) => match c.test {
            Test::Kind(op, kind) => (s.kind == kind) == (op == Op::Eq),
            _ => false,
        },
        (Field::Attr(key), Some(s)) => value_test(&c.test, s.attribute(key)),
        (Field::Resource(key), Some(s)) => {
            value_test(&c.test, find_attribute(s.resource_attributes, key))
        }
    }
}

fn num_test(test: &Test, v: f64) -> bool {
    match test {
        Test::Num(op, x) => v.partial_cmp(x).is_some_and(|o| op.order(o)),
        _ => false,
    }
}

fn str_test(test: &Test, v: &str) -> bool {
    match test {
        Test::Str(op, x) => op.order(v.cmp(x.as_str())),
        Test::Regex(re, negate) => re.is_match(v) != *negate,
        Test::Exists => true,
        _ => false,
    }
}

fn value_test(test: &Test, v: Option<&AnyValue>) -> bool {
    let Some(v) = v else { return false };
    match test {
        Test::Exists => true,
        Test::Num(op, x) => {
            let n = match v {
                AnyValue::Int(i) => *i as f64,
                AnyValue::Double(d) => *d,
                AnyValue::String(s) => match s.trim().parse::<f64>() {
                    Ok(n) => n,
                    Err(_) => return false,
                },
                _ => return false,
            };
            n.partial_cmp(x).is_some_and(|o| op.order(o))
        }
        Test::Bool(op, b) => match v {
            AnyValue::Bool(x) => (x == b) == (*op == Op::Eq),
            AnyValue::String(s) => match s.as_str() {
                "true" => *b == (*op == Op::Eq),
                "false" => *b != (*op == Op::Eq),
                _ => false,
            },
            _ => false,
        },
        Test::Str(op, x) => match v {
            AnyValue::String(s) => op.order(s.as_str().cmp(x.as_str())),
            other => op.order(other.to_text().as_str().cmp(x.as_str())),
        },
        Test::Regex(re, negate) => match v {
            AnyValue::String(s) => re.is_match(s) != *negate,
            other => re.is_match(&other.to_text()) != *negate,
        },
        Test::Status(..) | Test::Kind(..) => false,
    }
}
