//! Dedicated attribute columns: the span attributes of the common semantic conventions (HTTP,
//! URL, database, RPC, messaging) each have a column of their own in `data.parquet`, so a
//! search on one of them reads one narrow column instead of every attribute of every span.
//!
//! A span attribute goes to its key's column when the value has the column's type (text or
//! integer) and it is the first attribute of that key on the span; its entry in the
//! `attributes` list stays, in its place, with the key and no value (a *placeholder*), so the
//! span reads back with its attributes in their original order. Any other attribute with a
//! dedicated key (another type, a repeat) stays in the list with its value, and the row
//! group's `list_dedicated` bit for that key says so in `meta.json`: a search reads the list
//! only for the keys and row groups where that bit is set.
//!
//! A block has columns only for the keys its spans use (`meta.json` lists them, `dedicated`):
//! every column costs a page header and index entry per page even when empty. Blocks written
//! before dedicated columns existed have neither the columns nor placeholders; their
//! `meta.json` lists no dedicated keys, and everything is read from the list.

use std::collections::HashMap;
use std::sync::LazyLock;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{Array, ArrayRef, Int64Array, StringArray};
use arrow_schema::{DataType, Field};
use serde::{Deserialize, Serialize};
use stitch_model::{AnyValue, KeyValue};

/// The value type of a dedicated column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Str,
    Int,
}

/// The span attribute keys that get dedicated columns when a block's spans use them, in column
/// order. At most 64 (a row group's `list_dedicated` is a 64-bit mask over a block's keys).
pub const KEYS: &[(&str, ValueType)] = &[
    ("http.request.method", ValueType::Str),
    ("http.route", ValueType::Str),
    ("http.response.status_code", ValueType::Int),
    ("url.full", ValueType::Str),
    ("url.path", ValueType::Str),
    ("url.scheme", ValueType::Str),
    ("server.address", ValueType::Str),
    ("server.port", ValueType::Int),
    ("http.method", ValueType::Str),
    ("http.status_code", ValueType::Int),
    ("http.url", ValueType::Str),
    ("http.target", ValueType::Str),
    ("db.system", ValueType::Str),
    ("db.system.name", ValueType::Str),
    ("db.namespace", ValueType::Str),
    ("db.operation.name", ValueType::Str),
    ("db.query.text", ValueType::Str),
    ("db.statement", ValueType::Str),
    ("rpc.system", ValueType::Str),
    ("rpc.service", ValueType::Str),
    ("rpc.method", ValueType::Str),
    ("rpc.grpc.status_code", ValueType::Int),
    ("messaging.system", ValueType::Str),
    ("messaging.operation.type", ValueType::Str),
    ("messaging.destination.name", ValueType::Str),
    ("peer.service", ValueType::Str),
    ("error.type", ValueType::Str),
];

const _: () = assert!(KEYS.len() <= 64);

static POSITIONS: LazyLock<HashMap<&'static str, usize>> =
    LazyLock::new(|| KEYS.iter().enumerate().map(|(i, (k, _))| (*k, i)).collect());

/// The position of `key` in [`KEYS`].
pub fn position(key: &str) -> Option<usize> {
    POSITIONS.get(key).copied()
}

/// The Parquet column of a dedicated key.
pub fn column_name(key: &str) -> String {
    format!("{COLUMN_PREFIX}{key}")
}

const COLUMN_PREFIX: &str = "span.";

/// The key of a dedicated column, from its name.
pub fn key_of_column(name: &str) -> Option<&str> {
    name.strip_prefix(COLUMN_PREFIX)
}

fn fits(t: ValueType, v: &AnyValue) -> bool {
    matches!(
        (t, v),
        (ValueType::Str, AnyValue::String(_)) | (ValueType::Int, AnyValue::Int(_))
    )
}

/// The dedicated columns of one block: the keys of [`KEYS`] its spans use with the column's
/// type, in [`KEYS`] order.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    keys: Vec<(&'static str, ValueType)>,
    /// Per position in [`KEYS`], the position in `keys`.
    local: Vec<Option<usize>>,
}

impl Layout {
    /// The layout for a block of these attribute lists.
    pub fn for_attributes<'a>(lists: impl Iterator<Item = &'a [KeyValue]>) -> Layout {
        let mut used = vec![false; KEYS.len()];
        for attrs in lists {
            for kv in attrs {
                if let Some(i) = position(&kv.key)
                    && fits(KEYS[i].1, &kv.value)
                {
                    used[i] = true;
                }
            }
        }
        let mut layout = Layout {
            keys: Vec::new(),
            local: vec![None; KEYS.len()],
        };
        for (i, key) in KEYS.iter().enumerate() {
            if used[i] {
                layout.local[i] = Some(layout.keys.len());
                layout.keys.push(*key);
            }
        }
        layout
    }

    /// The keys, in column order (as `meta.json` lists them).
    pub fn keys(&self) -> Vec<String> {
        self.keys.iter().map(|(k, _)| (*k).to_owned()).collect()
    }

    /// The Arrow fields of the columns, in order.
    pub fn fields(&self) -> Vec<Field> {
        self.keys
            .iter()
            .map(|(key, t)| {
                let dt = match t {
                    ValueType::Str => DataType::Utf8,
                    ValueType::Int => DataType::Int64,
                };
                Field::new(column_name(key), dt, true)
            })
            .collect()
    }

    fn column_of(&self, key: &str) -> Option<usize> {
        position(key).and_then(|i| self.local[i])
    }
}

/// The dedicated columns of one row group under construction.
pub struct Builders<'l> {
    layout: &'l Layout,
    columns: Vec<Builder>,
    /// The values of the current row, by column.
    row: Vec<Option<AnyValue>>,
    /// Bit `i`: the list holds a value for the block's `i`-th dedicated key in this row group.
    pub list_dedicated: u64,
}

enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
}

impl<'l> Builders<'l> {
    pub fn new(layout: &'l Layout) -> Builders<'l> {
        Builders {
            layout,
            columns: layout
                .keys
                .iter()
                .map(|(_, t)| match t {
                    ValueType::Str => Builder::Str(StringBuilder::new()),
                    ValueType::Int => Builder::Int(Int64Builder::new()),
                })
                .collect(),
            row: vec![None; layout.keys.len()],
            list_dedicated: 0,
        }
    }

    /// Whether the attribute `key = value` of the current row goes to its dedicated column (then
    /// it is taken, and the list gets a placeholder). Attributes of a dedicated key the list
    /// keeps with their value are noted in [`Builders::list_dedicated`].
    pub fn take(&mut self, key: &str, value: &AnyValue) -> bool {
        let Some(i) = self.layout.column_of(key) else {
            return false;
        };
        if self.row[i].is_none() && fits(self.layout.keys[i].1, value) {
            self.row[i] = Some(value.clone());
            true
        } else {
            self.list_dedicated |= 1 << i;
            false
        }
    }

    /// Ends the current row: every column gets its value or a null.
    pub fn end_row(&mut self) {
        for (b, v) in self.columns.iter_mut().zip(self.row.iter_mut()) {
            match (b, v.take()) {
                (Builder::Str(b), Some(AnyValue::String(s))) => b.append_value(s),
                (Builder::Int(b), Some(AnyValue::Int(i))) => b.append_value(i),
                (Builder::Str(b), _) => b.append_null(),
                (Builder::Int(b), _) => b.append_null(),
            }
        }
    }

    pub fn finish(self) -> Vec<ArrayRef> {
        self.columns
            .into_iter()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Str(mut b) => std::sync::Arc::new(b.finish()),
                    Builder::Int(mut b) => std::sync::Arc::new(b.finish()),
                }
            })
            .collect()
    }
}

/// A dedicated column as read.
#[derive(Clone, Copy)]
pub enum Column<'a> {
    Str(&'a StringArray),
    Int(&'a Int64Array),
}

impl Column<'_> {
    /// The value of `row`, if the row has one in this column.
    pub fn value(&self, row: usize) -> Option<AnyValue> {
        match self {
            Column::Str(a) => (!a.is_null(row)).then(|| AnyValue::String(a.value(row).to_owned())),
            Column::Int(a) => (!a.is_null(row)).then(|| AnyValue::Int(a.value(row))),
        }
    }

    /// Whether `row` has a value here that reads as `text` (as searches compare values);
    /// `int` is [`int_spelled`]`(text)`, worked out once per search rather than per row.
    pub fn is(&self, row: usize, text: &str, int: Option<i64>) -> bool {
        match self {
            Column::Str(a) => !a.is_null(row) && a.value(row) == text,
            Column::Int(a) => !a.is_null(row) && int == Some(a.value(row)),
        }
    }
}

/// The integer whose text is exactly `text` (`"500"`, not `"0500"` or `"+500"`), as an
/// integer attribute reads when a search compares it.
pub fn int_spelled(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|i| i.to_string().len() == text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_has_columns_for_the_keys_its_spans_use_with_the_column_type() {
        let spans = [
            vec![
                KeyValue::new("server.port", "80"),
                KeyValue::new("http.route", "/a"),
                KeyValue::new("app.user", "u1"),
            ],
            vec![KeyValue::new("db.system", "redis")],
        ];
        let layout = Layout::for_attributes(spans.iter().map(Vec::as_slice));
        assert_eq!(layout.keys(), ["http.route", "db.system"]);
        assert_eq!(layout.fields()[0].name(), "span.http.route", "named by key");
    }

    #[test]
    fn the_first_attribute_of_a_key_with_the_column_type_is_taken() {
        let layout = Layout::for_attributes(
            [vec![
                KeyValue::new("http.route", "/"),
                KeyValue::new("server.port", 80i64),
            ]]
            .iter()
            .map(Vec::as_slice),
        );
        let mut b = Builders::new(&layout);
        assert!(b.take("http.route", &AnyValue::String("/cart".into())));
        assert!(!b.take("http.route", &AnyValue::String("/again".into())));
        assert!(!b.take("server.port", &AnyValue::String("80".into())));
        assert!(!b.take("app.user", &AnyValue::String("u1".into())));
        b.end_row();
        assert!(b.take("http.route", &AnyValue::String("/next".into())));
        b.end_row();
        let (route, port) = (0, 1);
        assert_eq!(b.list_dedicated, (1 << route) | (1 << port));
        let cols = b.finish();
        let routes = cols[route].as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((routes.value(0), routes.value(1)), ("/cart", "/next"));
        assert!(cols[port].is_null(0));
    }

    #[test]
    fn integers_match_only_their_own_spelling() {
        let a = Int64Array::from(vec![Some(500), None, Some(-3)]);
        let c = Column::Int(&a);
        let is = |row, text| c.is(row, text, int_spelled(text));
        assert!(is(0, "500"));
        assert!(!is(0, "0500") && !is(0, "+500") && !is(0, "500.0"));
        assert!(!is(1, "500"));
        assert!(is(2, "-3"));
    }
}
