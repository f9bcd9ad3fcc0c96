//! Attribute values.

/// An attribute value: the OTLP `AnyValue` union.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum AnyValue {
    /// No value (OTLP allows an `AnyValue` with no field set).
    #[default]
    Empty,
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AnyValue>),
    KvList(Vec<KeyValue>),
}

impl AnyValue {
    /// The value rendered as text for display and for tag matching: strings verbatim, numbers
    /// and booleans in their usual form, bytes as hex, arrays and maps as compact JSON-like
    /// text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out, false);
        out
    }

    fn write_text(&self, out: &mut String, quoted: bool) {
        use std::fmt::Write;
        match self {
            AnyValue::Empty => out.push_str(if quoted { "null" } else { "" }),
            AnyValue::String(s) if quoted => {
                let _ = write!(out, "{s:?}");
            }
            AnyValue::String(s) => out.push_str(s),
            AnyValue::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            AnyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            AnyValue::Double(d) => {
                let _ = write!(out, "{d}");
            }
            AnyValue::Bytes(b) => {
                for byte in b {
                    let _ = write!(out, "{byte:02x}");
                }
            }
            AnyValue::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_text(out, true);
                }
                out.push(']');
            }
            AnyValue::KvList(kvs) => {
                out.push('{');
                for (i, kv) in kvs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{:?}:", kv.key);
                    kv.value.write_text(out, true);
                }
                out.push('}');
            }
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            AnyValue::String(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for AnyValue {
    fn from(s: &str) -> Self {
        AnyValue::String(s.to_owned())
    }
}

impl From<String> for AnyValue {
    fn from(s: String) -> Self {
        AnyValue::String(s)
    }
}

impl From<i64> for AnyValue {
    fn from(v: i64) -> Self {
        AnyValue::Int(v)
    }
}

impl From<bool> for AnyValue {
    fn from(v: bool) -> Self {
        AnyValue::Bool(v)
    }
}

impl From<f64> for AnyValue {
    fn from(v: f64) -> Self {
        AnyValue::Double(v)
    }
}

/// A named attribute.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct KeyValue {
    pub key: String,
    pub value: AnyValue,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: impl Into<AnyValue>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The value of the first attribute named `key`.
pub fn find_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_text() {
        assert_eq!(AnyValue::from("x").to_text(), "x");
        assert_eq!(AnyValue::Int(-3).to_text(), "-3");
        assert_eq!(AnyValue::Bytes(vec![0xab, 0x01]).to_text(), "ab01");
        let nested = AnyValue::KvList(vec![KeyValue::new(
            "a",
            AnyValue::Array(vec![AnyValue::from("s"), AnyValue::Bool(true)]),
        )]);
        assert_eq!(nested.to_text(), r#"{"a":["s",true]}"#);
    }
}
