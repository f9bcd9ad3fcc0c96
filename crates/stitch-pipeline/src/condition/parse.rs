//! The condition language's parser: tokens to an expression, with the column of any error.

use super::*;

pub(super) struct Parser<'a> {
    pub(super) source: &'a str,
    pub(super) tokens: Vec<Tok>,
    pub(super) pos: usize,
}

pub(super) fn is_kw(t: &TokKind, kw: &str) -> bool {
    matches!(t, TokKind::Word(w) if w.eq_ignore_ascii_case(kw))
}

impl Parser<'_> {
    pub(super) fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    pub(super) fn end_offset(&self) -> usize {
        self.source.len()
    }

    pub(super) fn error_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        lex_error(self.source, offset, message)
    }

    pub(super) fn error_here(&self, message: impl Into<String>) -> ParseError {
        let offset = self.peek().map(|t| t.start).unwrap_or(self.end_offset());
        self.error_at(offset, message)
    }

    pub(super) fn found(&self) -> String {
        self.peek()
            .map(|t| t.kind.describe())
            .unwrap_or_else(|| "the end".to_owned())
    }

    pub(super) fn expr(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn and(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(t) if is_kw(&t.kind, "not") || t.kind == TokKind::Bang => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            _ => self.primary(),
        }
    }

    pub(super) fn primary(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn bracket_key(&mut self, what: &str) -> Result<String, ParseError> {
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

    pub(super) fn comparison(&mut self) -> Result<Expr, ParseError> {
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
