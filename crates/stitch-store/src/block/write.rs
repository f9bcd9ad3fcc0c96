//! Writing a frozen head as a block (format version 2): `data.parquet`, the trace-id bloom
//! filter, the row-group index and the meta.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int32Builder,
    Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use stitch_model::{AnyValue, KeyValue, Resource, Scope, Span};

use super::dedicated;
use super::index::{BlockIndex, GroupBuilder, Term};
use super::rows::{attribute_fields, encode_extra, encode_other, schema};
use super::{
    BlockMeta, Bloom, FORMAT_VERSION, PAGE_ROWS, ROW_GROUP_ROWS, RowGroupRange, encode_resource,
    encode_scope,
};
use crate::StoreError;
use crate::head::Head;

/// The files of a block, built in memory.
pub struct BuiltBlock {
    pub meta: BlockMeta,
    pub bloom: Bloom,
    /// `index.bin`, decoded.
    pub index: BlockIndex,
    /// `data.parquet`.
    pub data: Vec<u8>,
}

/// The `attributes` column of one row group under construction: one builder per field and
/// the list offsets.
struct AttributeColumns {
    offsets: Vec<i32>,
    key: StringBuilder,
    str: StringBuilder,
    int: Int64Builder,
    double: Float64Builder,
    bool: BooleanBuilder,
    other: BinaryBuilder,
}

impl AttributeColumns {
    fn with_capacity(rows: usize) -> AttributeColumns {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        AttributeColumns {
            offsets,
            key: StringBuilder::new(),
            str: StringBuilder::new(),
            int: Int64Builder::new(),
            double: Float64Builder::new(),
            bool: BooleanBuilder::new(),
            other: BinaryBuilder::new(),
        }
    }

    /// Adds one row: the attributes of one span, those `dedicated` takes as placeholders.
    fn push(&mut self, attrs: &[KeyValue], dedicated: &mut dedicated::Builders) {
        for kv in attrs {
            self.key.append_value(&kv.key);
            let (mut s, mut i, mut d, mut b, mut o) = (None, None, None, None, None);
            match &kv.value {
                _ if dedicated.take(&kv.key, &kv.value) => {}
                AnyValue::String(v) => s = Some(v.as_str()),
                AnyValue::Int(v) => i = Some(*v),
                AnyValue::Double(v) => d = Some(*v),
                AnyValue::Bool(v) => b = Some(*v),
                other => o = Some(encode_other(other)),
            }
            self.str.append_option(s);
            self.int.append_option(i);
            self.double.append_option(d);
            self.bool.append_option(b);
            self.other.append_option(o);
        }
        let end = self.offsets.last().copied().unwrap_or(0) + attrs.len() as i32;
        self.offsets.push(end);
        dedicated.end_row();
    }

    fn finish(mut self) -> ArrayRef {
        let fields = attribute_fields();
        let children: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(self.str.finish()),
            Arc::new(self.int.finish()),
            Arc::new(self.double.finish()),
            Arc::new(self.bool.finish()),
            Arc::new(self.other.finish()),
        ];
        let values = StructArray::new(fields.clone(), children, None);
        Arc::new(ListArray::new(
            Arc::new(Field::new("item", DataType::Struct(fields), false)),
            OffsetBuffer::new(self.offsets.into()),
            Arc::new(values),
            None,
        ))
    }
}

/// Serialises a frozen head into block files. Pure CPU work: the caller stores the bytes.
pub fn build_block(
    head: &Head,
    block_id: &str,
    wal_through: u64,
) -> Result<BuiltBlock, StoreError> {
    struct Row<'a> {
        resource: &'a Arc<Resource>,
        scope: &'a Arc<Scope>,
        span: &'a Span,
    }
    let mut rows: Vec<Row<'_>> = Vec::with_capacity(head.span_count);
    for t in head.traces.values() {
        for rs in &t.fragments {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    rows.push(Row {
                        resource: &rs.resource,
                        scope: &ss.scope,
                        span,
                    });
                }
            }
        }
    }
    rows.sort_by_key(|r| (r.span.trace_id, r.span.start_time_unix_nano, r.span.span_id));

    let mut resource_cache: HashMap<*const Resource, Vec<u8>> = HashMap::new();
    let mut scope_cache: HashMap<*const Scope, Vec<u8>> = HashMap::new();
    let mut bloom = Bloom::with_capacity(head.traces.len());
    let mut index = BlockIndex::default();
    let mut services: BTreeMap<String, BTreeSet<(String, i32)>> = BTreeMap::new();
    let mut meta = BlockMeta {
        format_version: FORMAT_VERSION,
        block_id: block_id.to_owned(),
        span_count: rows.len() as u64,
        trace_count: head.traces.len() as u64,
        min_start: u64::MAX,
        max_start: 0,
        max_end: 0,
        wal_through,
        min_source_segment: (head.min_source != u64::MAX).then_some(head.min_source),
        data_bytes: 0,
        index_bytes: None,
        dedicated: Vec::new(),
        row_groups: Vec::new(),
        services: BTreeMap::new(),
    };

    let layout =
        dedicated::Layout::for_attributes(rows.iter().map(|r| r.span.attributes.as_slice()));
    meta.dedicated = layout.keys();
    // No Parquet statistics: searches skip data with `index.bin` and `meta.json`, never with
    // them, and the minimum and maximum of every column chunk (whole resource protobufs, long
    // URLs and statements among them) would sit in the footer kept in memory for reads.
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_write_batch_size(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    let schema = schema(FORMAT_VERSION, &layout);
    let parquet_err = |e| StoreError::Parquet {
        block: block_id.to_owned(),
        source: e,
    };
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(parquet_err)?;

    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        let n = chunk.len();
        let mut trace_id = FixedSizeBinaryBuilder::with_capacity(n, 16);
        let mut span_id = FixedSizeBinaryBuilder::with_capacity(n, 8);
        let mut parent = FixedSizeBinaryBuilder::with_capacity(n, 8);
        let mut service = StringBuilder::new();
        let mut name = StringBuilder::new();
        let mut kind = Int32Builder::with_capacity(n);
        let mut start = Int64Builder::with_capacity(n);
        let mut duration = Int64Builder::with_capacity(n);
        let mut status_code = Int32Builder::with_capacity(n);
        let mut status_message = StringBuilder::new();
        let mut resource = BinaryBuilder::new();
        let mut scope = BinaryBuilder::new();
        let mut extra = BinaryBuilder::new();
        let mut attributes = AttributeColumns::with_capacity(n);
        let mut dedicated = dedicated::Builders::new(&layout);
        let mut group = GroupBuilder::default();
        // Resources whose attributes are in the group's terms (each batch has its own).
        let mut resources_seen: HashSet<*const Resource> = HashSet::new();
        for row in chunk {
            let s = row.span;
            let append_err = |e| StoreError::CorruptBlock {
                block: block_id.to_owned(),
                reason: format!("building column: {e}"),
            };
            trace_id.append_value(s.trace_id.0).map_err(append_err)?;
            span_id.append_value(s.span_id.0).map_err(append_err)?;
            match s.parent_span_id {
                Some(p) => parent.append_value(p.0).map_err(append_err)?,
                None => parent.append_null(),
            }
            let svc = row.resource.service_name();
            service.append_value(svc);
            name.append_value(&s.name);
            kind.append_value(s.kind.as_i32());
            start.append_value(s.start_time_unix_nano as i64);
            duration.append_value(s.duration_nanos() as i64);
            status_code.append_value(s.status.code.as_i32());
            status_message.append_value(&s.status.message);
            resource.append_value(
                resource_cache
                    .entry(Arc::as_ptr(row.resource))
                    .or_insert_with(|| encode_resource(row.resource)),
            );
            scope.append_value(
                scope_cache
                    .entry(Arc::as_ptr(row.scope))
                    .or_insert_with(|| encode_scope(row.scope)),
            );
            extra.append_value(encode_extra(s, FORMAT_VERSION));
            attributes.push(&s.attributes, &mut dedicated);

            group.add_span(s.start_time_unix_nano, s.duration_nanos(), s.is_error());
            group.add(Term::Service(svc));
            group.add(Term::Name(&s.name));
            group.add_attributes(&s.attributes);
            for e in &s.events {
                group.add_event_attributes(&e.attributes);
            }
            if resources_seen.insert(Arc::as_ptr(row.resource)) {
                group.add_attributes(&row.resource.attributes);
            }

            bloom.insert(&s.trace_id);
            meta.min_start = meta.min_start.min(s.start_time_unix_nano);
            meta.max_start = meta.max_start.max(s.start_time_unix_nano);
            meta.max_end = meta.max_end.max(s.end_time_unix_nano);
            match services.get_mut(svc) {
                Some(ops) => {
                    if !ops
                        .iter()
                        .any(|(n, k)| n == &s.name && *k == s.kind.as_i32())
                    {
                        ops.insert((s.name.clone(), s.kind.as_i32()));
                    }
                }
                None => {
                    services.insert(
                        svc.to_owned(),
                        BTreeSet::from([(s.name.clone(), s.kind.as_i32())]),
                    );
                }
            }
        }
        let list_dedicated = dedicated.list_dedicated;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(trace_id.finish()),
            Arc::new(span_id.finish()),
            Arc::new(parent.finish()),
            Arc::new(service.finish()),
            Arc::new(name.finish()),
            Arc::new(kind.finish()),
            Arc::new(start.finish()),
            Arc::new(duration.finish()),
            Arc::new(status_code.finish()),
            Arc::new(status_message.finish()),
            Arc::new(resource.finish()),
            Arc::new(scope.finish()),
            Arc::new(extra.finish()),
            attributes.finish(),
        ];
        columns.extend(dedicated.finish());
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
            StoreError::CorruptBlock {
                block: block_id.to_owned(),
                reason: format!("building record batch: {e}"),
            }
        })?;
        writer.write(&batch).map_err(parquet_err)?;
        writer.flush().map_err(parquet_err)?;
        index.groups.push(group.finish());
        meta.row_groups.push(RowGroupRange {
            first: chunk[0].span.trace_id.to_hex(),
            last: chunk[n - 1].span.trace_id.to_hex(),
            rows: n as u64,
            list_dedicated,
            pages: chunk
                .chunks(PAGE_ROWS)
                .map(|page| page[0].span.trace_id.to_hex())
                .collect(),
        });
    }
    let data = writer.into_inner().map_err(parquet_err)?;
    meta.data_bytes = data.len() as u64;
    if meta.min_start == u64::MAX {
        meta.min_start = 0;
    }
    meta.services = services
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect();
    meta.index_bytes = Some(index.encode().len() as u64);
    Ok(BuiltBlock {
        meta,
        bloom,
        index,
        data,
    })
}
