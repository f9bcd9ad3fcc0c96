//! Rows of `data.parquet` in both directions: the schema, the attribute column, and turning
//! read columns back into model spans.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, BinaryArray, BooleanArray, FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray, StructArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use opentelemetry_proto::tonic::common::v1 as pc;
use opentelemetry_proto::tonic::trace::v1 as pt;
use prost::Message;
use stitch_model::{
    AnyValue, KeyValue, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind, Status,
    StatusCode,
};
use stitch_query::SearchQuery;

use super::dedicated;
use super::{corrupt, decode_resource, decode_scope};
use crate::StoreError;

/// The fields of one attribute in the `attributes` column (format version 2).
pub fn attribute_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("str", DataType::Utf8, true),
        Field::new("int", DataType::Int64, true),
        Field::new("double", DataType::Float64, true),
        Field::new("bool", DataType::Boolean, true),
        Field::new("other", DataType::Binary, true),
    ])
}

/// The schema of `data.parquet` in `version`, with these dedicated attribute columns.
pub fn schema(version: u32, dedicated: &dedicated::Layout) -> SchemaRef {
    let mut fields = vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::FixedSizeBinary(8), false),
        Field::new("parent_span_id", DataType::FixedSizeBinary(8), true),
        Field::new("service", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Int32, false),
        Field::new("start_unix_nano", DataType::Int64, false),
        Field::new("duration_nano", DataType::Int64, false),
        Field::new("status_code", DataType::Int32, false),
        Field::new("status_message", DataType::Utf8, false),
        Field::new("resource", DataType::Binary, false),
        Field::new("scope", DataType::Binary, false),
        Field::new("extra", DataType::Binary, false),
    ];
    if version >= 2 {
        fields.push(Field::new(
            "attributes",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(attribute_fields()),
                false,
            ))),
            false,
        ));
        fields.extend(dedicated.fields());
    }
    Arc::new(Schema::new(fields))
}

/// What a search reads of the attributes.
#[derive(Clone, Debug, Default)]
pub struct AttributeRead {
    /// The `resource` column.
    pub resource: bool,
    /// The `attributes` list.
    pub list: bool,
    /// These dedicated columns (by key).
    pub dedicated: Vec<String>,
    /// The `extra` column (events).
    pub events: bool,
}

/// The columns a search needs: the plain ones always, and what `read` names of the rest (in
/// version 1 attributes are inside `extra`).
pub fn search_columns(version: u32, read: &AttributeRead) -> Vec<String> {
    let mut cols: Vec<String> = [
        "trace_id",
        "service",
        "name",
        "kind",
        "start_unix_nano",
        "duration_nano",
        "status_code",
    ]
    .map(String::from)
    .to_vec();
    if read.resource {
        cols.push("resource".into());
    }
    if version >= 2 {
        if read.list {
            cols.push("attributes".into());
        }
        cols.extend(read.dedicated.iter().map(|k| dedicated::column_name(k)));
    }
    if read.events || (version < 2 && (read.list || read.resource)) {
        cols.push("extra".into());
    }
    cols
}

/// The protobuf of what has no column of its own (attributes too in version 1).
pub fn encode_extra(span: &Span, version: u32) -> Vec<u8> {
    let mut p = stitch_wire::otlp::span_to_proto(span);
    p.trace_id.clear();
    p.span_id.clear();
    p.parent_span_id.clear();
    p.name.clear();
    p.kind = 0;
    p.start_time_unix_nano = 0;
    p.end_time_unix_nano = 0;
    p.status = None;
    if version >= 2 {
        p.attributes.clear();
    }
    p.encode_to_vec()
}

/// The encoding of a value in the `other` field: an OTLP `AnyValue`.
pub fn encode_other(v: &AnyValue) -> Vec<u8> {
    stitch_wire::otlp::any_value_to_proto(v).encode_to_vec()
}

/// The columns of a read batch; those a read did not project are `None`.
pub struct Columns<'a> {
    pub trace_id: &'a FixedSizeBinaryArray,
    pub service: &'a StringArray,
    pub name: &'a StringArray,
    pub kind: &'a Int32Array,
    pub start: &'a Int64Array,
    pub duration: &'a Int64Array,
    pub status_code: &'a Int32Array,
    span_id: Option<&'a FixedSizeBinaryArray>,
    parent: Option<&'a FixedSizeBinaryArray>,
    status_message: Option<&'a StringArray>,
    resource: Option<&'a BinaryArray>,
    scope: Option<&'a BinaryArray>,
    extra: Option<&'a BinaryArray>,
    attributes: Option<Attributes<'a>>,
    /// The dedicated attribute columns read, by key.
    dedicated: HashMap<&'a str, dedicated::Column<'a>>,
}

/// The `attributes` column, taken apart.
struct Attributes<'a> {
    list: &'a ListArray,
    key: &'a StringArray,
    str: &'a StringArray,
    int: &'a Int64Array,
    double: &'a Float64Array,
    bool: &'a BooleanArray,
    other: &'a BinaryArray,
}

impl<'a> Attributes<'a> {
    fn of(block: &str, list: &'a ListArray) -> Result<Attributes<'a>, StoreError> {
        let s: &StructArray = list
            .values()
            .as_any()
            .downcast_ref()
            .ok_or_else(|| corrupt(block, "attributes column is not a list of structs"))?;
        fn field<'b, T: 'static>(
            block: &str,
            s: &'b StructArray,
            name: &str,
        ) -> Result<&'b T, StoreError> {
            s.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<T>())
                .ok_or_else(|| {
                    corrupt(
                        block,
                        format!("attribute field {name} is missing or mistyped"),
                    )
                })
        }
        Ok(Attributes {
            list,
            key: field(block, s, "key")?,
            str: field(block, s, "str")?,
            int: field(block, s, "int")?,
            double: field(block, s, "double")?,
            bool: field(block, s, "bool")?,
            other: field(block, s, "other")?,
        })
    }

    fn range(&self, row: usize) -> std::ops::Range<usize> {
        let offsets = self.list.value_offsets();
        offsets[row] as usize..offsets[row + 1] as usize
    }

    /// The value of the attribute at `i`; `None` for a placeholder (the value is in its
    /// dedicated column).
    fn value(&self, block: &str, i: usize) -> Result<Option<AnyValue>, StoreError> {
        Ok(Some(if !self.str.is_null(i) {
            AnyValue::String(self.str.value(i).to_owned())
        } else if !self.int.is_null(i) {
            AnyValue::Int(self.int.value(i))
        } else if !self.double.is_null(i) {
            AnyValue::Double(self.double.value(i))
        } else if !self.bool.is_null(i) {
            AnyValue::Bool(self.bool.value(i))
        } else if !self.other.is_null(i) {
            let v = pc::AnyValue::decode(self.other.value(i))
                .map_err(|e| corrupt(block, format!("attribute value: {e}")))?;
            stitch_wire::otlp::any_value_from_proto(v)
        } else {
            return Ok(None);
        }))
    }

    /// Whether the attribute at `i` has key `key` and a value that reads as `text`.
    fn is(&self, i: usize, key: &str, text: &str) -> bool {
        if self.key.value(i) != key {
            return false;
        }
        if !self.str.is_null(i) {
            self.str.value(i) == text
        } else if !self.int.is_null(i) {
            self.int.value(i).to_string() == text
        } else if !self.bool.is_null(i) {
            self.bool.value(i).to_string() == text
        } else if !self.double.is_null(i) {
            AnyValue::Double(self.double.value(i)).to_text() == text
        } else if !self.other.is_null(i) {
            pc::AnyValue::decode(self.other.value(i))
                .is_ok_and(|v| stitch_wire::otlp::any_value_from_proto(v).to_text() == text)
        } else {
            // A placeholder: the value is in the dedicated column.
            false
        }
    }
}

impl<'a> Columns<'a> {
    pub fn of(block: &str, batch: &'a RecordBatch) -> Result<Columns<'a>, StoreError> {
        fn col<'b, T: 'static>(
            block: &str,
            batch: &'b RecordBatch,
            name: &str,
        ) -> Result<&'b T, StoreError> {
            opt(block, batch, name)?
                .ok_or_else(|| corrupt(block, format!("column {name} is missing")))
        }
        fn opt<'b, T: 'static>(
            block: &str,
            batch: &'b RecordBatch,
            name: &str,
        ) -> Result<Option<&'b T>, StoreError> {
            match batch.column_by_name(name) {
                None => Ok(None),
                Some(c) => c
                    .as_any()
                    .downcast_ref::<T>()
                    .map(Some)
                    .ok_or_else(|| corrupt(block, format!("column {name} is mistyped"))),
            }
        }
        let attributes = match batch.column_by_name("attributes") {
            None => None,
            Some(c) => Some(Attributes::of(
                block,
                c.as_list_opt::<i32>()
                    .ok_or_else(|| corrupt(block, "column attributes is mistyped"))?,
            )?),
        };
        let mut dedicated = HashMap::new();
        for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
            let Some(key) = dedicated::key_of_column(field.name()) else {
                continue;
            };
            let any = column.as_any();
            let c = if let Some(a) = any.downcast_ref() {
                dedicated::Column::Str(a)
            } else if let Some(a) = any.downcast_ref() {
                dedicated::Column::Int(a)
            } else {
                return Err(corrupt(
                    block,
                    format!("column {} is mistyped", field.name()),
                ));
            };
            dedicated.insert(key, c);
        }
        Ok(Columns {
            dedicated,
            trace_id: col(block, batch, "trace_id")?,
            service: col(block, batch, "service")?,
            name: col(block, batch, "name")?,
            kind: col(block, batch, "kind")?,
            start: col(block, batch, "start_unix_nano")?,
            duration: col(block, batch, "duration_nano")?,
            status_code: col(block, batch, "status_code")?,
            span_id: opt(block, batch, "span_id")?,
            parent: opt(block, batch, "parent_span_id")?,
            status_message: opt(block, batch, "status_message")?,
            resource: opt(block, batch, "resource")?,
            scope: opt(block, batch, "scope")?,
            extra: opt(block, batch, "extra")?,
            attributes,
        })
    }

    /// Every condition of `query` that the plain columns can decide.
    pub fn cheap_match(&self, q: &SearchQuery, row: usize) -> bool {
        if q.service
            .as_deref()
            .is_some_and(|s| self.service.value(row) != s)
            || q.operation
                .as_deref()
                .is_some_and(|o| self.name.value(row) != o)
            || q.span_kind
                .is_some_and(|k| self.kind.value(row) != k.as_i32())
        {
            return false;
        }
        let d = self.duration.value(row) as u64;
        let s = self.start.value(row) as u64;
        !(q.min_duration_nanos.is_some_and(|m| d < m)
            || q.max_duration_nanos.is_some_and(|m| d > m)
            || q.start_unix_nanos.is_some_and(|t| s < t)
            || q.end_unix_nanos.is_some_and(|t| s > t))
    }
}

/// Matches the tags of searches against rows (format version 2), decoding each resource once
/// and span protobufs only for the events when a tag may be an event attribute.
pub struct TagMatcher<'b> {
    block: &'b str,
    resources: HashMap<Vec<u8>, Arc<Resource>>,
    /// Per tag of the query, the integer its value spells (for integer dedicated columns).
    ints: Vec<Option<i64>>,
}

impl<'b> TagMatcher<'b> {
    /// A matcher for the tags of `q`.
    pub fn new(block: &'b str, q: &SearchQuery) -> TagMatcher<'b> {
        TagMatcher {
            block,
            resources: HashMap::new(),
            ints: q
                .tags
                .iter()
                .map(|(_, v)| dedicated::int_spelled(v))
                .collect(),
        }
    }

    /// Whether every tag of `q` holds for `row`: span attributes and resource attributes
    /// when their columns were read (the caller leaves them out when the row group's filter
    /// rules every tag out as an attribute), events when `events`, and the two tags that read
    /// fields, `error=true` and `span.kind`.
    pub fn matches(
        &mut self,
        cols: &Columns<'_>,
        row: usize,
        q: &SearchQuery,
        events: bool,
    ) -> Result<bool, StoreError> {
        let attrs = cols.attributes.as_ref();
        let resource = match cols.resource {
            Some(r) => {
                let bytes = r.value(row);
                Some(match self.resources.get(bytes) {
                    Some(r) => r.clone(),
                    None => {
                        let r = Arc::new(decode_resource(self.block, bytes)?);
                        self.resources.insert(bytes.to_vec(), r.clone());
                        r
                    }
                })
            }
            None => None,
        };
        let mut event_attrs: Option<Vec<Vec<KeyValue>>> = None;
        for (i, (key, text)) in q.tags.iter().enumerate() {
            if key == "error"
                && text == "true"
                && cols.status_code.value(row) == StatusCode::Error.as_i32()
            {
                continue;
            }
            if key == "span.kind"
                && SpanKind::from_i32(cols.kind.value(row)).is_some_and(|k| k.as_str() == text)
            {
                continue;
            }
            if cols
                .dedicated
                .get(key.as_str())
                .is_some_and(|c| c.is(row, text, self.ints[i]))
            {
                continue;
            }
            if attrs.is_some_and(|a| a.range(row).any(|i| a.is(i, key, text))) {
                continue;
            }
            let in_list = |list: &[KeyValue]| {
                list.iter()
                    .any(|kv| kv.key == *key && kv.value.to_text() == *text)
            };
            if resource.as_ref().is_some_and(|r| in_list(&r.attributes)) {
                continue;
            }
            if events {
                if event_attrs.is_none() {
                    let extra = cols
                        .extra
                        .ok_or_else(|| corrupt(self.block, "extra column was not read"))?;
                    let p = pt::Span::decode(extra.value(row))
                        .map_err(|e| corrupt(self.block, format!("extra column: {e}")))?;
                    event_attrs = Some(
                        p.events
                            .into_iter()
                            .map(|e| stitch_wire::otlp::key_values_from_proto(e.attributes))
                            .collect(),
                    );
                }
                if event_attrs
                    .as_ref()
                    .is_some_and(|evs| evs.iter().any(|a| in_list(a)))
                {
                    continue;
                }
            }
            return Ok(false);
        }
        Ok(true)
    }
}

/// Turns rows back into model spans, sharing decoded resources and scopes.
pub struct RowDecoder<'b> {
    block: &'b str,
    resources: HashMap<Vec<u8>, Arc<Resource>>,
    scopes: HashMap<Vec<u8>, Arc<Scope>>,
    out: Vec<ResourceSpans>,
}

impl<'b> RowDecoder<'b> {
    pub fn new(block: &'b str) -> Self {
        RowDecoder {
            block,
            resources: HashMap::new(),
            scopes: HashMap::new(),
            out: Vec::new(),
        }
    }

    pub fn decode_row(
        &mut self,
        cols: &Columns<'_>,
        row: usize,
    ) -> Result<(Arc<Resource>, Arc<Scope>, Span), StoreError> {
        let block = self.block;
        let missing = |name: &str| corrupt(block, format!("column {name} was not read"));
        let rbytes = cols.resource.ok_or_else(|| missing("resource"))?.value(row);
        let resource = match self.resources.get(rbytes) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new(decode_resource(block, rbytes)?);
                self.resources.insert(rbytes.to_vec(), r.clone());
                r
            }
        };
        let sbytes = cols.scope.ok_or_else(|| missing("scope"))?.value(row);
        let scope = match self.scopes.get(sbytes) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(decode_scope(block, sbytes)?);
                self.scopes.insert(sbytes.to_vec(), s.clone());
                s
            }
        };
        let extra = cols.extra.ok_or_else(|| missing("extra"))?;
        let mut proto = pt::Span::decode(extra.value(row))
            .map_err(|e| corrupt(block, format!("extra column: {e}")))?;
        let start = cols.start.value(row) as u64;
        proto.trace_id = cols.trace_id.value(row).to_vec();
        proto.span_id = cols
            .span_id
            .ok_or_else(|| missing("span_id"))?
            .value(row)
            .to_vec();
        let mut span = stitch_wire::otlp::span_from_proto(proto)
            .map_err(|e| corrupt(block, format!("span row {row}: {e}")))?;
        if let Some(attrs) = &cols.attributes {
            span.attributes = attrs
                .range(row)
                .map(|i| {
                    let key = attrs.key.value(i);
                    let value = match attrs.value(block, i)? {
                        Some(v) => v,
                        None => cols
                            .dedicated
                            .get(key)
                            .and_then(|c| c.value(row))
                            .ok_or_else(|| {
                                corrupt(block, format!("attribute {key} of row {row} has no value"))
                            })?,
                    };
                    Ok(KeyValue {
                        key: key.to_owned(),
                        value,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
        }
        let parent = cols.parent.ok_or_else(|| missing("parent_span_id"))?;
        span.parent_span_id = if parent.is_null(row) {
            None
        } else {
            Some(SpanId(parent.value(row).try_into().expect("8 bytes")))
        };
        span.name = cols.name.value(row).to_owned();
        span.kind = SpanKind::from_i32(cols.kind.value(row)).unwrap_or_default();
        span.start_time_unix_nano = start;
        span.end_time_unix_nano = start + cols.duration.value(row) as u64;
        span.status = Status {
            code: StatusCode::from_i32(cols.status_code.value(row)).unwrap_or_default(),
            message: cols
                .status_message
                .ok_or_else(|| missing("status_message"))?
                .value(row)
                .to_owned(),
        };
        Ok((resource, scope, span))
    }

    pub fn push(&mut self, cols: &Columns<'_>, row: usize) -> Result<(), StoreError> {
        let (resource, scope, span) = self.decode_row(cols, row)?;
        let same_rs = self
            .out
            .last()
            .is_some_and(|rs| Arc::ptr_eq(&rs.resource, &resource));
        if !same_rs {
            self.out.push(ResourceSpans {
                resource,
                scope_spans: Vec::new(),
            });
        }
        let rs = self.out.last_mut().expect("pushed above");
        let same_ss = rs
            .scope_spans
            .last()
            .is_some_and(|ss| Arc::ptr_eq(&ss.scope, &scope));
        if !same_ss {
            rs.scope_spans.push(ScopeSpans {
                scope,
                spans: Vec::new(),
            });
        }
        rs.scope_spans
            .last_mut()
            .expect("pushed above")
            .spans
            .push(span);
        Ok(())
    }

    pub fn finish(self) -> Vec<ResourceSpans> {
        self.out
    }
}
