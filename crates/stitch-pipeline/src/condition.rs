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

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum TokKind {
    Word(String),
    Str(String),
    Num(f64),
    /// Nanoseconds.
    Dur(f64),
    Op(Op),
    LParen,
    RParen,
    LBracket,
    RBracket,
    AndAnd,
    OrOr,
    Bang,
}

impl TokKind {
    fn describe(&self) -> String {
        match self {
            TokKind::Word(w) => format!("`{w}`"),
            TokKind::Str(s) => format!("string {s:?}"),
            TokKind::Num(n) => format!("number {n}"),
            TokKind::Dur(_) => "a duration".to_owned(),
            TokKind::Op(op) => format!("`{}`", op.text()),
            TokKind::LParen => "`(`".to_owned(),
            TokKind::RParen => "`)`".to_owned(),
            TokKind::LBracket => "`[`".to_owned(),
            TokKind::RBracket => "`]`".to_owned(),
            TokKind::AndAnd => "`&&`".to_owned(),
            TokKind::OrOr => "`||`".to_owned(),
            TokKind::Bang => "`!`".to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
struct Tok {
    kind: TokKind,
    start: usize,
}

fn column_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].chars().count() + 1
}

fn lex_error(source: &str, offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        column: column_of(source, offset),
        message: message.into(),
    }
}

fn lex(source: &str) -> Result<Vec<Tok>, ParseError> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = source[i..].chars().next().expect("in bounds");
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let two = source.get(i..i + 2).unwrap_or("");
        let (kind, len) = match (c, two) {
            (_, "==") => (TokKind::Op(Op::Eq), 2),
            (_, "!=") => (TokKind::Op(Op::Ne), 2),
            (_, "<=") => (TokKind::Op(Op::Le), 2),
            (_, ">=") => (TokKind::Op(Op::Ge), 2),
            (_, "=~") => (TokKind::Op(Op::Match), 2),
            (_, "!~") => (TokKind::Op(Op::NotMatch), 2),
            (_, "&&") => (TokKind::AndAnd, 2),
            (_, "||") => (TokKind::OrOr, 2),
            ('=', _) => (TokKind::Op(Op::Eq), 1),
            ('<', _) => (TokKind::Op(Op::Lt), 1),
            ('>', _) => (TokKind::Op(Op::Gt), 1),
            ('!', _) => (TokKind::Bang, 1),
            ('(', _) => (TokKind::LParen, 1),
            (')', _) => (TokKind::RParen, 1),
            ('[', _) => (TokKind::LBracket, 1),
            (']', _) => (TokKind::RBracket, 1),
            ('"', _) | ('\'', _) => {
                let quote = c;
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    let Some(ch) = source[j..].chars().next() else {
                        return Err(lex_error(
                            source,
                            start,
                            "this string is not closed; add the closing quote",
                        ));
                    };
                    j += ch.len_utf8();
                    if ch == quote {
                        break;
                    }
                    if ch == '\\' {
                        let Some(esc) = source[j..].chars().next() else {
                            return Err(lex_error(source, j, "unfinished escape at the end"));
                        };
                        j += esc.len_utf8();
                        text.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            '\\' => '\\',
                            '"' => '"',
                            '\'' => '\'',
                            other => {
                                return Err(lex_error(
                                    source,
                                    j - other.len_utf8() - 1,
                                    format!("unknown escape `\\{other}`; use \\\" \\\\ \\n or \\t"),
                                ));
                            }
                        });
                    } else {
                        text.push(ch);
                    }
                }
                (TokKind::Str(text), j - i)
            }
            (c, _)
                if c.is_ascii_digit()
                    || (c == '-' && source[i + 1..].starts_with(|d: char| d.is_ascii_digit())) =>
            {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                    j += 1;
                }
                let number = &source[i..j];
                let value: f64 = number
                    .parse()
                    .map_err(|_| lex_error(source, start, format!("`{number}` is not a number")))?;
                let mut k = j;
                while k < bytes.len() {
                    let ch = source[k..].chars().next().expect("in bounds");
                    if ch.is_alphabetic() {
                        k += ch.len_utf8();
                    } else {
                        break;
                    }
                }
                if k > j {
                    let unit = &source[j..k];
                    let Some(per) = stitch_model::duration_unit_nanos(unit) else {
                        return Err(lex_error(
                            source,
                            j,
                            format!("`{unit}` is not a duration unit; use ns, us, ms, s, m or h"),
                        ));
                    };
                    (TokKind::Dur(value * per as f64), k - i)
                } else {
                    (TokKind::Num(value), j - i)
                }
            }
            (c, _) if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while j < bytes.len() {
                    let ch = source[j..].chars().next().expect("in bounds");
                    if ch.is_alphanumeric() || ch == '_' || ch == '.' {
                        j += ch.len_utf8();
                    } else {
                        break;
                    }
                }
                (TokKind::Word(source[i..j].to_owned()), j - i)
            }
            (other, _) => {
                return Err(lex_error(
                    source,
                    start,
                    format!("unexpected character `{other}`"),
                ));
            }
        };
        out.push(Tok { kind, start });
        i += len;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Tok>,
    pos: usize,
}

fn is_kw(t: &TokKind, kw: &str) -> bool {
    matches!(t, TokKind::Word(w) if w.eq_ignore_ascii_case(kw))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn end_offset(&self) -> usize {
        self.source.len()
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        lex_error(self.source, offset, message)
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        let offset = self.peek().map(|t| t.start).unwrap_or(self.end_offset());
        self.error_at(offset, message)
    }

    fn found(&self) -> String {
        self.peek()
            .map(|t| t.kind.describe())
            .unwrap_or_else(|| "the end".to_owned())
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.and()?];
        while let Some(t) = self.peek() {
            if is_kw(&t.kind, "or") || t.kind == TokKind::OrOr {
                self.pos += 1;
                items.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.unary()?];
        while let Some(t) = self.peek() {
            if is_kw(&t.kind, "and") || t.kind == TokKind::AndAnd {
                self.pos += 1;
                items.push(self.unary()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(t) if is_kw(&t.kind, "not") || t.kind == TokKind::Bang => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.error_here(
                "expected a condition such as `status = error` or `duration > 1s`, found the end",
            ));
        };
        match &t.kind {
            TokKind::LParen => {
                self.pos += 1;
                let e = self.expr()?;
                match self.peek() {
                    Some(Tok {
                        kind: TokKind::RParen,
                        ..
                    }) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    _ => Err(self.error_here(format!(
                        "expected `)` to close the `(` at column {}, found {}",
                        column_of(self.source, t.start),
                        self.found()
                    ))),
                }
            }
            TokKind::Word(w) if w.eq_ignore_ascii_case("true") => {
                self.pos += 1;
                Ok(Expr::Const(true))
            }
            TokKind::Word(w) if w.eq_ignore_ascii_case("false") => {
                self.pos += 1;
                Ok(Expr::Const(false))
            }
            TokKind::Word(_) => self.comparison(),
            other => Err(self.error_at(
                t.start,
                format!(
                    "expected a field such as `status`, `duration` or `attr[\"key\"]`, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn bracket_key(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok {
                kind: TokKind::LBracket,
                ..
            }) => self.pos += 1,
            _ => {
                return Err(self.error_here(format!(
                    "expected `[` after `{what}`, as in {what}[\"http.route\"], found {}",
                    self.found()
                )));
            }
        }
        let key = match self.peek() {
            Some(Tok {
                kind: TokKind::Str(s),
                ..
            }) => s.clone(),
            _ => {
                return Err(self.error_here(format!(
                    "expected a quoted key inside `{what}[...]`, found {}",
                    self.found()
                )));
            }
        };
        self.pos += 1;
        match self.peek() {
            Some(Tok {
                kind: TokKind::RBracket,
                ..
            }) => self.pos += 1,
            _ => {
                return Err(self.error_here(format!("expected `]`, found {}", self.found())));
            }
        }
        Ok(key)
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let t = self.peek().cloned().expect("caller checked");
        let TokKind::Word(word) = &t.kind else {
            unreachable!("caller checked")
        };
        self.pos += 1;
        let field = match word.to_ascii_lowercase().as_str() {
            "duration" | "trace.duration" => Field::Duration,
            "span_count" => Field::SpanCount,
            "service" | "service.name" => Field::Service,
            "name" | "operation" | "span.name" => Field::Name,
            "kind" | "span.kind" => Field::Kind,
            "status" | "span.status" => Field::Status,
            "span.duration" => Field::SpanDuration,
            "attr" | "attribute" | "span.attr" => Field::Attr(self.bracket_key(word)?),
            "resource" => Field::Resource(self.bracket_key(word)?),
            _ => {
                return Err(self.error_at(
                    t.start,
                    format!(
                        "unknown field `{word}`; fields are duration, span_count, service, name, kind, status, span.duration, attr[\"key\"], resource[\"key\"]"
                    ),
                ));
            }
        };
        // `exists`
        if let Some(exists_at) = self
            .peek()
            .filter(|n| is_kw(&n.kind, "exists"))
            .map(|n| n.start)
        {
            self.pos += 1;
            return match field {
                Field::Attr(_) | Field::Resource(_) => Ok(Expr::Cmp(Cmp {
                    field,
                    test: Test::Exists,
                })),
                _ => Err(self.error_at(
                    exists_at,
                    format!("`exists` applies to attr[...] and resource[...], not to `{word}`"),
                )),
            };
        }
        let op = match self.peek() {
            Some(Tok {
                kind: TokKind::Op(op),
                ..
            }) => *op,
            _ => {
                return Err(self.error_here(format!(
                    "expected a comparison (= != < <= > >= =~ !~) after `{word}`, found {}",
                    self.found()
                )));
            }
        };
        let op_start = self.peek().expect("just matched").start;
        self.pos += 1;
        let Some(value) = self.peek().cloned() else {
            return Err(self.error_here(format!(
                "expected a value after `{}`, found the end",
                op.text()
            )));
        };
        self.pos += 1;
        let bad_value = |p: &Parser, what: &str| {
            Err(p.error_at(
                value.start,
                format!(
                    "`{word}` compares with {what}, found {}",
                    value.kind.describe()
                ),
            ))
        };
        let string_only_op = |p: &Parser| -> Result<(), ParseError> {
            if matches!(op, Op::Eq | Op::Ne) {
                Ok(())
            } else {
                Err(p.error_at(
                    op_start,
                    format!("`{word}` supports only `=` and `!=`, not `{}`", op.text()),
                ))
            }
        };
        let test = match &field {
            Field::Duration | Field::SpanDuration => {
                if matches!(op, Op::Match | Op::NotMatch) {
                    return Err(self.error_at(
                        op_start,
                        format!("`{word}` cannot be matched with a regular expression"),
                    ));
                }
                match value.kind {
                    TokKind::Dur(n) => Test::Num(op, n),
                    TokKind::Num(_) => {
                        return Err(self.error_at(
                            value.start,
                            "a duration needs a unit, e.g. `1s`, `250ms` or `1.5s`",
                        ));
                    }
                    _ => return bad_value(self, "a duration such as `1s` or `250ms`"),
                }
            }
            Field::SpanCount => {
                if matches!(op, Op::Match | Op::NotMatch) {
                    return Err(self.error_at(
                        op_start,
                        "`span_count` cannot be matched with a regular expression",
                    ));
                }
                match value.kind {
                    TokKind::Num(n) => Test::Num(op, n),
                    _ => return bad_value(self, "a number"),
                }
            }
            Field::Service | Field::Name => match (&value.kind, op) {
                (TokKind::Str(s), Op::Match | Op::NotMatch) => Test::Regex(
                    Regex::new(s).map_err(|e| {
                        self.error_at(value.start, format!("not a valid regular expression: {e}"))
                    })?,
                    op == Op::NotMatch,
                ),
                (TokKind::Str(s), _) => Test::Str(op, s.clone()),
                (TokKind::Word(w), _) => {
                    return Err(self.error_at(
                        value.start,
                        format!("put the {word} in quotes: {word} {} \"{w}\"", op.text()),
                    ));
                }
                _ => return bad_value(self, "a quoted string"),
            },
            Field::Status => {
                string_only_op(self)?;
                let text = match &value.kind {
                    TokKind::Word(w) | TokKind::Str(w) => w.to_ascii_lowercase(),
                    _ => return bad_value(self, "error, ok or unset"),
                };
                let code = match text.as_str() {
                    "error" => StatusCode::Error,
                    "ok" => StatusCode::Ok,
                    "unset" => StatusCode::Unset,
                    _ => return bad_value(self, "error, ok or unset"),
                };
                Test::Status(op, code)
            }
            Field::Kind => {
                string_only_op(self)?;
                let kind = match &value.kind {
                    TokKind::Word(w) | TokKind::Str(w) => {
                        SpanKind::parse(w).filter(|_| !w.is_empty())
                    }
                    _ => None,
                };
                match kind {
                    Some(k) => Test::Kind(op, k),
                    None => {
                        return bad_value(
                            self,
                            "server, client, producer, consumer, internal or unspecified",
                        );
                    }
                }
            }
            Field::Attr(_) | Field::Resource(_) => match (&value.kind, op) {
                (TokKind::Str(s), Op::Match | Op::NotMatch) => Test::Regex(
                    Regex::new(s).map_err(|e| {
                        self.error_at(value.start, format!("not a valid regular expression: {e}"))
                    })?,
                    op == Op::NotMatch,
                ),
                (_, Op::Match | Op::NotMatch) => {
                    return Err(self.error_at(
                        value.start,
                        "`=~` and `!~` take a quoted regular expression",
                    ));
                }
                (TokKind::Str(s), _) => Test::Str(op, s.clone()),
                (TokKind::Num(n), _) => Test::Num(op, *n),
                (TokKind::Dur(n), _) => Test::Num(op, *n),
                (TokKind::Word(w), Op::Eq | Op::Ne) if w.eq_ignore_ascii_case("true") => {
                    Test::Bool(op, true)
                }
                (TokKind::Word(w), Op::Eq | Op::Ne) if w.eq_ignore_ascii_case("false") => {
                    Test::Bool(op, false)
                }
                (TokKind::Word(w), _) => {
                    return Err(
                        self.error_at(value.start, format!("put text values in quotes: \"{w}\""))
                    );
                }
                _ => return bad_value(self, "a string, number or true/false"),
            },
        };
        Ok(Expr::Cmp(Cmp { field, test }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stitch_model::{KeyValue, SpanId};

    struct T {
        duration: u64,
        spans: Vec<(String, String, StatusCode, Vec<KeyValue>)>,
    }

    impl TraceFacts for T {
        fn duration_nanos(&self) -> u64 {
            self.duration
        }
        fn span_count(&self) -> u64 {
            self.spans.len() as u64
        }
        fn any_span(&self, f: &mut dyn FnMut(&SpanView<'_>) -> bool) -> bool {
            self.spans.iter().any(|(service, name, status, attrs)| {
                f(&SpanView {
                    span_id: SpanId([1; 8]),
                    is_root: false,
                    service,
                    name,
                    kind: SpanKind::Server,
                    start_unix_nano: 0,
                    end_unix_nano: 10,
                    status: *status,
                    trace_state: "",
                    flags: 1,
                    attributes: attrs,
                    resource_attributes: &[],
                })
            })
        }
    }

    fn trace(duration_ms: u64, spans: &[(&str, StatusCode, Option<i64>)]) -> T {
        T {
            duration: duration_ms * 1_000_000,
            spans: spans
                .iter()
                .map(|(svc, st, code)| {
                    (
                        svc.to_string(),
                        "op".to_string(),
                        *st,
                        code.map(|c| vec![KeyValue::new("http.status_code", c)])
                            .unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }

    fn eval(src: &str, t: &T) -> bool {
        Condition::parse(src).unwrap().matches(t)
    }

    const EXAMPLE: &str = r#"duration > 1s or status = error or (service = "payment" and attr["http.status_code"] >= 500)"#;

    #[test]
    fn the_example_condition_keeps_slow_failed_and_payment_5xx_traces() {
        use StatusCode::*;
        assert!(eval(EXAMPLE, &trace(1500, &[("web", Ok, None)])));
        assert!(eval(
            EXAMPLE,
            &trace(10, &[("web", Ok, None), ("db", Error, None)])
        ));
        assert!(eval(
            EXAMPLE,
            &trace(10, &[("web", Ok, None), ("payment", Unset, Some(503))])
        ));
        assert!(!eval(
            EXAMPLE,
            &trace(10, &[("web", Ok, Some(503)), ("payment", Unset, Some(200))])
        ));
        assert!(!eval(EXAMPLE, &trace(999, &[("web", Ok, None)])));
    }

    #[test]
    fn and_binds_span_predicates_to_the_same_span_while_or_and_not_act_on_the_trace() {
        use StatusCode::*;
        let t = trace(10, &[("cart", Ok, None), ("db", Error, None)]);
        assert!(!eval(r#"service = "cart" and status = error"#, &t));
        assert!(eval(r#"service = "db" and status = error"#, &t));
        assert!(!eval("not status = error", &t));
        assert!(eval(r#"service = "cart" and not status = error"#, &t));
        assert!(eval(
            r#"(service = "cart" or service = "x") and status = ok"#,
            &t
        ));
        assert!(eval("duration < 20ms and span_count = 2", &t));
        assert!(eval(r#"duration < 20ms and service =~ "^d""#, &t));
        assert!(!eval(r#"duration > 20ms and service =~ "^d""#, &t));
        assert!(eval(r#"attr["http.status_code"] exists or true"#, &t));
        assert!(!eval(r#"attr["http.status_code"] exists"#, &t));
        assert!(!eval(r#"attr["missing"] != "x""#, &t));
        assert!(eval(r#"status = error && !(service = "cart")"#, &t));
    }

    #[test]
    fn parse_errors_name_the_column() {
        let cases: &[(&str, usize, &str)] = &[
            ("duration > ", 12, "expected a value after `>`"),
            ("duration > 5", 12, "a duration needs a unit"),
            (
                "status = broken",
                10,
                "`status` compares with error, ok or unset",
            ),
            ("latency > 1s", 1, "unknown field `latency`"),
            (r#"service = payment"#, 11, "put the service in quotes"),
            (
                r#"(status = error"#,
                16,
                "expected `)` to close the `(` at column 1",
            ),
            (r#"attr[http.route] = "x""#, 6, "expected a quoted key"),
            (r#"name =~ "(""#, 9, "not a valid regular expression"),
            (
                "status = error service",
                16,
                "unexpected `service` after a complete condition",
            ),
            (
                "duration > 3parsecs",
                13,
                "`parsecs` is not a duration unit",
            ),
            (r#"service = "open"#, 11, "this string is not closed"),
            ("status > ok", 8, "supports only `=` and `!=`"),
            ("", 1, "expected a condition"),
        ];
        for (src, column, message) in cases {
            let err = Condition::parse(src).unwrap_err();
            assert_eq!(err.column, *column, "{src}: {err}");
            assert!(err.message.contains(message), "{src}: {err}");
        }
        let err = Condition::parse("duration > 5").unwrap_err();
        assert_eq!(
            err.render("duration > 5"),
            "duration > 5\n           ^ a duration needs a unit, e.g. `1s`, `250ms` or `1.5s`"
        );
    }
}
