//! TraceQL tokens: what the text of a query is cut into, each with the character position it
//! starts at (for error messages).

use super::QueryError;
use super::ast::Scope;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Pipe,
    // Comparison and arithmetic.
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Re,
    Nre,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Not,
    And,
    Or,
    // Structural (also `>` and `<`, which are `Gt` and `Lt`).
    Desc,
    Anc,
    Tilde,
    NotChild,
    NotParent,
    NotDesc,
    NotAnc,
    UnionChild,
    UnionParent,
    UnionDesc,
    UnionAnc,
    UnionSibling,
    // Values.
    Str(String),
    Int(i64),
    Float(f64),
    /// Nanoseconds.
    Duration(i64),
    /// A keyword or intrinsic name: `name`, `status`, `true`, `span:duration`, `count`, ...
    Word(String),
    /// A scoped or unscoped attribute: `span.http.method`, `.foo`, `resource."a b"`.
    Attribute(Scope, String),
    Eof,
}

impl Tok {
    /// How the token is written, for messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Pipe => "`|`".into(),
            Tok::Str(s) => format!("the string {s:?}"),
            Tok::Int(i) => format!("the number {i}"),
            Tok::Float(f) => format!("the number {f}"),
            Tok::Duration(_) => "a duration".into(),
            Tok::Word(w) => format!("`{w}`"),
            Tok::Attribute(scope, name) => format!("the attribute `{}{name}`", scope.prefix()),
            Tok::Eof => "the end of the query".into(),
            op => format!("`{}`", op.operator().unwrap_or("?")),
        }
    }

    /// The text of an operator token.
    pub fn operator(&self) -> Option<&'static str> {
        Some(match self {
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            Tok::Not => "!",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Desc => ">>",
            Tok::Anc => "<<",
            Tok::Tilde => "~",
            Tok::NotChild => "!>",
            Tok::NotParent => "!<",
            Tok::NotDesc => "!>>",
            Tok::NotAnc => "!<<",
            Tok::UnionChild => "&>",
            Tok::UnionParent => "&<",
            Tok::UnionDesc => "&>>",
            Tok::UnionAnc => "&<<",
            Tok::UnionSibling => "&~",
            _ => return None,
        })
    }
}

/// A token and the character position where it starts.
#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// Characters that end an attribute name (besides whitespace). Arithmetic signs do not:
/// `span.a-b` is one name, so `span.a - 1` needs its spaces.
fn ends_attribute(c: char) -> bool {
    c.is_whitespace() || "{}()=~!<>&|,\"^".contains(c)
}

/// Characters an unquoted attribute name may start with.
fn starts_attribute(c: char) -> bool {
    c.is_ascii_alphabetic() || "_@#$%*+?:;'`".contains(c)
}

fn starts_name(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Operators, longest first.
const OPERATORS: &[(&str, Tok)] = &[
    ("!>>", Tok::NotDesc),
    ("!<<", Tok::NotAnc),
    ("&>>", Tok::UnionDesc),
    ("&<<", Tok::UnionAnc),
    ("&&", Tok::And),
    ("||", Tok::Or),
    (">>", Tok::Desc),
    ("<<", Tok::Anc),
    (">=", Tok::Gte),
    ("<=", Tok::Lte),
    ("!=", Tok::Neq),
    ("=~", Tok::Re),
    ("!~", Tok::Nre),
    ("!>", Tok::NotChild),
    ("!<", Tok::NotParent),
    ("&>", Tok::UnionChild),
    ("&<", Tok::UnionParent),
    ("&~", Tok::UnionSibling),
    ("=", Tok::Eq),
    ("<", Tok::Lt),
    (">", Tok::Gt),
    ("~", Tok::Tilde),
    ("!", Tok::Not),
    ("+", Tok::Add),
    ("-", Tok::Sub),
    ("*", Tok::Mul),
    ("/", Tok::Div),
    ("%", Tok::Mod),
    ("^", Tok::Pow),
    ("|", Tok::Pipe),
    ("{", Tok::LBrace),
    ("}", Tok::RBrace),
    ("(", Tok::LParen),
    (")", Tok::RParen),
    (",", Tok::Comma),
];

/// Cuts `text` into tokens, ending with [`Tok::Eof`].
pub fn lex(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    'next: while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Comments: `// ...` to the end of the line, `/* ... */`.
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            let start = i;
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            if i >= chars.len() {
                return Err(QueryError::new(start, "a `/*` comment is never closed"));
            }
            i += 2;
            continue;
        }
        let pos = i;
        if c == '"' || c == '`' {
            let (s, next) = string(&chars, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
            i = next;
            continue;
        }
        if c.is_ascii_digit() {
            let (tok, next) = number(&chars, i)?;
            out.push(Token { tok, pos });
            i = next;
            continue;
        }
        // An unscoped attribute: `.name` where a value may stand.
        if c == '.' {
            let (name, next) = attribute_name(&chars, i + 1, pos)?;
            out.push(Token {
                tok: Tok::Attribute(Scope::Any, name),
                pos,
            });
            i = next;
            continue;
        }
        if starts_name(c) {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            // `scope.attribute`
            if chars.get(j) == Some(&'.')
                && let Some(scope) = Scope::from_word(&word)
            {
                let (name, next) = attribute_name(&chars, j + 1, pos)?;
                out.push(Token {
                    tok: Tok::Attribute(scope, name),
                    pos,
                });
                i = next;
                continue;
            }
            // `scope:intrinsic`
            if chars.get(j) == Some(&':') && chars.get(j + 1).is_some_and(|c| starts_name(*c)) {
                let mut k = j + 1;
                while k < chars.len() && (chars[k].is_ascii_alphanumeric() || chars[k] == '_') {
                    k += 1;
                }
                let word: String = chars[i..k].iter().collect();
                out.push(Token {
                    tok: Tok::Word(word),
                    pos,
                });
                i = k;
                continue;
            }
            out.push(Token {
                tok: Tok::Word(word),
                pos,
            });
            i = j;
            continue;
        }
        for (text, tok) in OPERATORS {
            let len = text.chars().count();
            if chars.len() >= i + len && chars[i..i + len].iter().copied().eq(text.chars()) {
                out.push(Token {
                    tok: tok.clone(),
                    pos,
                });
                i += len;
                continue 'next;
            }
        }
        return Err(QueryError::new(pos, format!("unexpected character {c:?}")));
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: chars.len(),
    });
    Ok(out)
}

/// A string starting at `chars[i]` (`"` with escapes, or a raw `` ` `` string); returns it and
/// the index after its closing quote.
fn string(chars: &[char], i: usize) -> Result<(String, usize), QueryError> {
    let quote = chars[i];
    let mut s = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        let c = chars[j];
        if c == quote {
            return Ok((s, j + 1));
        }
        if c == '\\' && quote == '"' {
            let Some(&e) = chars.get(j + 1) else { break };
            s.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                '"' => '"',
                other => {
                    return Err(QueryError::new(
                        j,
                        format!("unknown escape `\\{other}` in a string"),
                    ));
                }
            });
            j += 2;
            continue;
        }
        s.push(c);
        j += 1;
    }
    Err(QueryError::new(i, "a string is never closed"))
}

/// A number or a duration starting at `chars[i]`.
fn number(chars: &[char], i: usize) -> Result<(Tok, usize), QueryError> {
    let mut j = i;
    while j < chars.len() && chars[j].is_ascii_digit() {
        j += 1;
    }
    let mut float = false;
    if chars.get(j) == Some(&'.') && chars.get(j + 1).is_some_and(|c| c.is_ascii_digit()) {
        float = true;
        j += 1;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
    }
    let digits: String = chars[i..j].iter().collect();
    let mut k = j;
    while k < chars.len() && (chars[k].is_alphabetic()) {
        k += 1;
    }
    let unit: String = chars[j..k].iter().collect();
    if unit.is_empty() {
        let tok = if float {
            Tok::Float(digits.parse().map_err(|_| bad_number(i, &digits))?)
        } else {
            match digits.parse() {
                Ok(n) => Tok::Int(n),
                Err(_) => return Err(bad_number(i, &digits)),
            }
        };
        return Ok((tok, j));
    }
    let Some(per_unit) = stitch_model::duration_unit_nanos(&unit) else {
        return Err(QueryError::new(
            j,
            format!("unknown duration unit {unit:?}: use ns, us, ms, s, m or h"),
        ));
    };
    let value: f64 = digits.parse().map_err(|_| bad_number(i, &digits))?;
    let nanos = value * per_unit as f64;
    if !nanos.is_finite() || nanos > i64::MAX as f64 {
        return Err(QueryError::new(i, "the duration is too long"));
    }
    Ok((Tok::Duration(nanos.round() as i64), k))
}

fn bad_number(pos: usize, digits: &str) -> QueryError {
    QueryError::new(pos, format!("the number {digits} is too large"))
}

/// An attribute name starting at `chars[i]`: quoted, or running to a character that ends it.
fn attribute_name(chars: &[char], i: usize, start: usize) -> Result<(String, usize), QueryError> {
    if chars.get(i) == Some(&'"') {
        let (name, next) = string(chars, i)?;
        if name.is_empty() {
            return Err(QueryError::new(start, "an attribute name is empty"));
        }
        return Ok((name, next));
    }
    if !chars.get(i).is_some_and(|&c| starts_attribute(c)) {
        return Err(QueryError::new(
            start,
            "expected an attribute name after `.`: a letter, `_` or a quoted name",
        ));
    }
    let mut j = i;
    while j < chars.len() && !ends_attribute(chars[j]) {
        j += 1;
    }
    Ok((chars[i..j].iter().collect(), j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        lex(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn attributes_intrinsics_and_operators_are_told_apart() {
        assert_eq!(
            toks(
                r#"{ span.http.status_code >= 500 && .db-name =~ "a.*" } >> { resource."k 1" != nil }"#
            ),
            vec![
                Tok::LBrace,
                Tok::Attribute(Scope::Span, "http.status_code".into()),
                Tok::Gte,
                Tok::Int(500),
                Tok::And,
                Tok::Attribute(Scope::Any, "db-name".into()),
                Tok::Re,
                Tok::Str("a.*".into()),
                Tok::RBrace,
                Tok::Desc,
                Tok::LBrace,
                Tok::Attribute(Scope::Resource, "k 1".into()),
                Tok::Neq,
                Tok::Word("nil".into()),
                Tok::RBrace,
                Tok::Eof,
            ]
        );
        assert_eq!(
            toks("trace:duration > 1.5s &>> !<< span:id"),
            vec![
                Tok::Word("trace:duration".into()),
                Tok::Gt,
                Tok::Duration(1_500_000_000),
                Tok::UnionDesc,
                Tok::NotAnc,
                Tok::Word("span:id".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn durations_numbers_strings_and_comments() {
        assert_eq!(
            toks("10ms 3us 2µs 4ns 1m 2h 7 7.25 `raw\\n` \"a\\\"b\" // note\n /* more */ 1"),
            vec![
                Tok::Duration(10_000_000),
                Tok::Duration(3_000),
                Tok::Duration(2_000),
                Tok::Duration(4),
                Tok::Duration(60_000_000_000),
                Tok::Duration(7_200_000_000_000),
                Tok::Int(7),
                Tok::Float(7.25),
                Tok::Str("raw\\n".into()),
                Tok::Str("a\"b".into()),
                Tok::Int(1),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn lexical_errors_say_where() {
        let e = lex(r#"{ name = "open }"#).unwrap_err();
        assert_eq!(
            (e.position, e.message.as_str()),
            (9, "a string is never closed")
        );
        let e = lex("{ duration > 5days }").unwrap_err();
        assert_eq!(e.position, 14);
        assert!(e.message.contains("unknown duration unit"), "{e}");
        assert_eq!(lex("{ # }").unwrap_err().position, 2);
    }
}
