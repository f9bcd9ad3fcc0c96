//! Values a TraceQL expression computes, and how they compare and combine.

use std::borrow::Cow;
use std::cmp::Ordering;

use stitch_model::{AnyValue, SpanKind, StatusCode};

use super::ast::{BinOp, Static};

#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// Absent: an attribute the span does not have, a root the trace does not have.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    /// Nanoseconds.
    Duration(i64),
    Status(StatusCode),
    Kind(SpanKind),
}

impl<'a> Value<'a> {
    pub fn from_static(s: &'a Static) -> Value<'a> {
        match s {
            Static::Str(v) => Value::Str(Cow::Borrowed(v)),
            Static::Int(v) => Value::Int(*v),
            Static::Float(v) => Value::Float(*v),
            Static::Bool(v) => Value::Bool(*v),
            Static::Duration(v) => Value::Duration(*v),
            Static::Status(v) => Value::Status(*v),
            Static::Kind(v) => Value::Kind(*v),
            Static::Nil => Value::Nil,
        }
    }

    /// An attribute's value; arrays, maps and bytes compare as their text.
    pub fn from_attribute(v: &'a AnyValue) -> Value<'a> {
        match v {
            AnyValue::String(s) => Value::Str(Cow::Borrowed(s)),
            AnyValue::Int(i) => Value::Int(*i),
            AnyValue::Double(d) => Value::Float(*d),
            AnyValue::Bool(b) => Value::Bool(*b),
            other => Value::Str(Cow::Owned(other.to_text())),
        }
    }

    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    /// The value as text, for grouping and for answers.
    pub fn to_text(&self) -> String {
        match self {
            Value::Nil => "nil".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s.to_string(),
            Value::Duration(d) => format!("{d}ns"),
            Value::Status(s) => match s {
                StatusCode::Ok => "ok".into(),
                StatusCode::Error => "error".into(),
                StatusCode::Unset => "unset".into(),
            },
            Value::Kind(k) => k.as_str().to_ascii_lowercase(),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// How two values order, when they can be compared at all (same kind, or two numbers).
fn order(a: &Value<'_>, b: &Value<'_>) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// A comparison. Against `nil`, `=` asks "absent" and `!=` asks "present"; any other
/// comparison with an absent value, or between values of different kinds, is false.
pub fn compare(op: BinOp, a: &Value<'_>, b: &Value<'_>) -> bool {
    if matches!(a, Value::Nil) || matches!(b, Value::Nil) {
        let both = matches!(a, Value::Nil) && matches!(b, Value::Nil);
        return match op {
            BinOp::Eq => both,
            BinOp::Neq => !both,
            _ => false,
        };
    }
    match (a, b) {
        (Value::Status(x), Value::Status(y)) => return equality(op, x == y),
        (Value::Kind(x), Value::Kind(y)) => return equality(op, x == y),
        _ => {}
    }
    let Some(o) = order(a, b) else {
        // Of different kinds (or unordered): never equal, and `!=` only between comparable
        // kinds, so that `span.x != "a"` does not select spans whose `x` is a number.
        return false;
    };
    match op {
        BinOp::Eq => o == Ordering::Equal,
        BinOp::Neq => o != Ordering::Equal,
        BinOp::Lt => o == Ordering::Less,
        BinOp::Lte => o != Ordering::Greater,
        BinOp::Gt => o == Ordering::Greater,
        BinOp::Gte => o != Ordering::Less,
        _ => false,
    }
}

/// `=` and `!=` for values that have no order.
fn equality(op: BinOp, equal: bool) -> bool {
    match op {
        BinOp::Eq => equal,
        BinOp::Neq => !equal,
        _ => false,
    }
}

/// Arithmetic; `Nil` where it does not apply (a string, a missing value, division by zero).
pub fn arithmetic<'a>(op: BinOp, a: &Value<'_>, b: &Value<'_>) -> Value<'a> {
    use Value::*;
    match (a, b) {
        (Duration(x), Duration(y)) => match op {
            BinOp::Add => x.checked_add(*y).map_or(Nil, Duration),
            BinOp::Sub => x.checked_sub(*y).map_or(Nil, Duration),
            _ => Nil,
        },
        (Duration(d), n) | (n, Duration(d)) if n.as_f64().is_some() => {
            let n = n.as_f64().unwrap_or(0.0);
            let d = *d as f64;
            let r = match op {
                BinOp::Mul => d * n,
                BinOp::Div if matches!(a, Duration(_)) && n != 0.0 => d / n,
                _ => return Nil,
            };
            if r.is_finite() {
                Duration(r.round() as i64)
            } else {
                Nil
            }
        }
        (Int(x), Int(y)) if op != BinOp::Div && op != BinOp::Pow => match op {
            BinOp::Add => x.checked_add(*y).map_or(Nil, Int),
            BinOp::Sub => x.checked_sub(*y).map_or(Nil, Int),
            BinOp::Mul => x.checked_mul(*y).map_or(Nil, Int),
            BinOp::Mod => x.checked_rem(*y).map_or(Nil, Int),
            _ => Nil,
        },
        _ => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Nil;
            };
            let r = match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Mod => x % y,
                BinOp::Pow => x.powf(y),
                _ => return Nil,
            };
            if r.is_finite() { Float(r) } else { Nil }
        }
    }
}

pub fn negate<'a>(v: &Value<'_>) -> Value<'a> {
    match v {
        Value::Int(i) => i.checked_neg().map_or(Value::Nil, Value::Int),
        Value::Float(f) => Value::Float(-f),
        Value::Duration(d) => d.checked_neg().map_or(Value::Nil, Value::Duration),
        _ => Value::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value<'_> {
        Value::Str(Cow::Borrowed(v))
    }

    #[test]
    fn comparisons_follow_kinds_and_nil() {
        assert!(compare(BinOp::Eq, &Value::Int(500), &Value::Float(500.0)));
        assert!(compare(BinOp::Gt, &Value::Duration(2), &Value::Duration(1)));
        assert!(!compare(BinOp::Gt, &Value::Duration(2), &Value::Int(1)));
        assert!(compare(BinOp::Lt, &s("a"), &s("b")));
        assert!(
            !compare(BinOp::Neq, &s("a"), &Value::Int(1)),
            "different kinds"
        );
        assert!(compare(BinOp::Eq, &Value::Nil, &Value::Nil));
        assert!(compare(BinOp::Neq, &s("x"), &Value::Nil));
        assert!(!compare(BinOp::Gt, &Value::Nil, &Value::Int(1)));
        assert!(compare(
            BinOp::Eq,
            &Value::Status(StatusCode::Error),
            &Value::Status(StatusCode::Error)
        ));
        assert!(!compare(
            BinOp::Lt,
            &Value::Kind(SpanKind::Client),
            &Value::Kind(SpanKind::Server)
        ));
    }

    #[test]
    fn arithmetic_keeps_durations_and_refuses_nonsense() {
        assert_eq!(
            arithmetic(BinOp::Add, &Value::Duration(5), &Value::Duration(7)),
            Value::Duration(12)
        );
        assert_eq!(
            arithmetic(BinOp::Mul, &Value::Int(3), &Value::Duration(7)),
            Value::Duration(21)
        );
        assert_eq!(
            arithmetic(BinOp::Div, &Value::Duration(10), &Value::Int(4)),
            Value::Duration(3)
        );
        assert_eq!(
            arithmetic(BinOp::Div, &Value::Int(1), &Value::Int(4)),
            Value::Float(0.25)
        );
        assert_eq!(
            arithmetic(BinOp::Add, &Value::Int(i64::MAX), &Value::Int(1)),
            Value::Nil
        );
        assert_eq!(
            arithmetic(BinOp::Div, &Value::Int(1), &Value::Int(0)),
            Value::Nil
        );
        assert_eq!(arithmetic(BinOp::Add, &s("a"), &Value::Int(1)), Value::Nil);
    }
}
