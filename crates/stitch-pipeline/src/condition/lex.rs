//! The condition language's tokens.

use super::*;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokKind {
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
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Tok {
    pub(super) kind: TokKind,
    pub(super) start: usize,
}

pub(super) fn column_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].chars().count() + 1
}

pub(super) fn lex_error(source: &str, offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        column: column_of(source, offset),
        message: message.into(),
    }
}

pub(super) fn lex(source: &str) -> Result<Vec<Tok>, ParseError> {
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
