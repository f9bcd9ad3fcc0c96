//! Immutable blocks: Parquet files of spans sorted by trace id, with a bloom filter and a
//! row-group index for lookups by trace id.
//!
//! A block is a directory in the object store, `blocks/<block id>/`:
//!
//! ```text
//! data.parquet   one row per span, sorted by (trace_id, start_unix_nano), zstd-compressed,
//!                row groups of at most ROW_GROUP_ROWS rows, pages of at most PAGE_ROWS rows,
//!                with the offset index (page locations) written
//! bloom.bin      "STBLOOM1" k:u32le m_bits:u64le bits[m_bits/8]   (trace ids)
//! meta.json      BlockMeta; written last, so a block without it is incomplete and ignored
//! ```
//!
//! Columns of `data.parquet`:
//!
//! | column | type | content |
//! |---|---|---|
//! | trace_id | FixedSizeBinary(16) | |
//! | span_id | FixedSizeBinary(8) | |
//! | parent_span_id | FixedSizeBinary(8), nullable | null for a root span |
//! | service | Utf8 | `service.name` of the resource |
//! | name | Utf8 | span name |
//! | kind | Int32 | OTLP span kind number |
//! | start_unix_nano | Int64 | |
//! | duration_nano | Int64 | |
//! | status_code | Int32 | OTLP status code number |
//! | status_message | Utf8 | |
//! | resource | Binary | OTLP `ResourceSpans` protobuf holding only the resource and its schema URL |
//! | scope | Binary | OTLP `ScopeSpans` protobuf holding only the scope and its schema URL |
//! | extra | Binary | OTLP `Span` protobuf holding the remaining fields: attributes, events, links, trace state, flags, dropped counts |
//!
//! The resource and scope columns repeat the same bytes for every span of a process, which the
//! Parquet dictionary encoding stores once per row group.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, FixedSizeBinaryBuilder, Int32Builder, Int64Builder, StringBuilder,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, FixedSizeBinaryArray, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use opentelemetry_proto::tonic::trace::v1 as pt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection, RowSelector};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use prost::Message;
use serde::{Deserialize, Serialize};
use stitch_model::{
    Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanId, SpanKind, SpanRef, Status,
    StatusCode, Trace, TraceId,
};

use crate::StoreError;
use crate::head::Head;
use stitch_query::{Operation, SearchQuery};

pub const ROW_GROUP_ROWS: usize = 32 * 1024;
/// Rows per data page. A lookup by trace id decodes only the pages that can hold the trace, so
/// this bounds the work of a lookup; `meta.json` keeps the first trace id of every page.
pub const PAGE_ROWS: usize = 1024;
const BLOOM_MAGIC: &[u8; 8] = b"STBLOOM1";
const FORMAT_VERSION: u32 = 1;

/// The description of a block, stored as `meta.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockMeta {
    pub format_version: u32,
    pub block_id: String,
    pub span_count: u64,
    pub trace_count: u64,
    /// Earliest span start in the block (Unix nanoseconds).
    pub min_start: u64,
    /// Latest span start in the block.
    pub max_start: u64,
    /// Latest span end in the block; retention deletes a block once this is old enough.
    pub max_end: u64,
    /// The head this block was written from was active while WAL segments up to this one
    /// were written: every span that went into a head while a segment `<= wal_through` was
    /// active (directly, or as a trace kept by the tail sampler) is in this or an earlier block.
    /// Spans of such segments still undecided by the tail sampler are not (see `wal.rs`).
    pub wal_through: u64,
    /// The oldest WAL segment holding a span of this block (with tail sampling, kept traces
    /// can reach back before the head's first segment). Absent in blocks written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_source_segment: Option<u64>,
    pub data_bytes: u64,
    /// Per row group: the first and last trace id (hex) and the number of rows.
    pub row_groups: Vec<RowGroupRange>,
    /// service → (operation, span kind number)
    pub services: BTreeMap<String, Vec<(String, i32)>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RowGroupRange {
    pub first: String,
    pub last: String,
    pub rows: u64,
    /// The trace id (hex) of the first row of each page of PAGE_ROWS rows.
    pub pages: Vec<String>,
}

/// A bloom filter over trace ids. Trace ids are random, so their bytes serve as hashes.
#[derive(Clone, Debug)]
pub struct Bloom {
    k: u32,
    bits: Vec<u64>,
}

impl Bloom {
    /// A filter sized for `n` ids at about a 1% false-positive rate.
    pub fn with_capacity(n: usize) -> Bloom {
        let m = ((n.max(1) as f64) * 9.6).ceil() as usize;
        let words = m.div_ceil(64).max(1);
        Bloom {
            k: 7,
            bits: vec![0; words],
        }
    }

    fn positions(&self, id: &TraceId) -> impl Iterator<Item = usize> + '_ {
        let (hi, lo) = id.halves();
        let m = (self.bits.len() * 64) as u64;
        let h1 = lo ^ hi.rotate_left(17);
        let h2 = hi.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..self.k as u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    pub fn insert(&mut self, id: &TraceId) {
        let ps: Vec<usize> = self.positions(id).collect();
        for p in ps {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    pub fn may_contain(&self, id: &TraceId) -> bool {
        self.positions(id)
            .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.bits.len() * 8);
        out.extend_from_slice(BLOOM_MAGIC);
        out.extend_from_slice(&self.k.to_le_bytes());
        out.extend_from_slice(&((self.bits.len() * 64) as u64).to_le_bytes());
        for w in &self.bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Bloom> {
        let rest = bytes.strip_prefix(BLOOM_MAGIC)?;
        let k = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let m = u64::from_le_bytes(rest.get(4..12)?.try_into().ok()?) as usize;
        let body = rest.get(12..)?;
        if !m.is_multiple_of(64) || body.len() != m / 8 || k == 0 || k > 32 || m == 0 {
            return None;
        }
        let bits = body
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Some(Bloom { k, bits })
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
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
    ]))
}

pub fn encode_resource(r: &Resource) -> Vec<u8> {
    pt::ResourceSpans {
        resource: Some(stitch_wire::otlp::resource_to_proto(r)),
        schema_url: r.schema_url.clone(),
        scope_spans: Vec::new(),
    }
    .encode_to_vec()
}

pub fn encode_scope(s: &Scope) -> Vec<u8> {
    pt::ScopeSpans {
        scope: Some(stitch_wire::otlp::scope_to_proto(s)),
        schema_url: s.schema_url.clone(),
        spans: Vec::new(),
    }
    .encode_to_vec()
}

fn encode_extra(span: &Span) -> Vec<u8> {
    let mut p = stitch_wire::otlp::span_to_proto(span);
    // These fields have their own columns.
    p.trace_id.clear();
    p.span_id.clear();
    p.parent_span_id.clear();
    p.name.clear();
    p.kind = 0;
    p.start_time_unix_nano = 0;
    p.end_time_unix_nano = 0;
    p.status = None;
    p.encode_to_vec()
}

fn corrupt(block: &str, reason: impl Into<String>) -> StoreError {
    StoreError::CorruptBlock {
        block: block.to_owned(),
        reason: reason.into(),
    }
}

fn decode_resource(block: &str, bytes: &[u8]) -> Result<Resource, StoreError> {
    let rs = pt::ResourceSpans::decode(bytes)
        .map_err(|e| corrupt(block, format!("resource column: {e}")))?;
    Ok(stitch_wire::otlp::resource_from_proto(
        rs.resource.unwrap_or_default(),
        rs.schema_url,
    ))
}

fn decode_scope(block: &str, bytes: &[u8]) -> Result<Scope, StoreError> {
    let ss =
        pt::ScopeSpans::decode(bytes).map_err(|e| corrupt(block, format!("scope column: {e}")))?;
    Ok(stitch_wire::otlp::scope_from_proto(
        ss.scope.unwrap_or_default(),
        ss.schema_url,
    ))
}

/// Serialises a frozen head into block files. Returns the meta, the bloom filter and the
/// Parquet bytes. Pure CPU work: the caller stores the bytes.
pub fn build_block(
    head: &Head,
    block_id: &str,
    wal_through: u64,
) -> Result<(BlockMeta, Bloom, Vec<u8>), StoreError> {
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
        row_groups: Vec::new(),
        services: BTreeMap::new(),
    };

    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_write_batch_size(PAGE_ROWS)
        .build();
    let schema = schema();
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
            extra.append_value(encode_extra(s));

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
        let columns: Vec<ArrayRef> = vec![
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
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
            StoreError::CorruptBlock {
                block: block_id.to_owned(),
                reason: format!("building record batch: {e}"),
            }
        })?;
        writer.write(&batch).map_err(parquet_err)?;
        writer.flush().map_err(parquet_err)?;
        meta.row_groups.push(RowGroupRange {
            first: chunk[0].span.trace_id.to_hex(),
            last: chunk[n - 1].span.trace_id.to_hex(),
            rows: n as u64,
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
    Ok((meta, bloom, data))
}

pub fn block_dir(block_id: &str) -> ObjectPath {
    ObjectPath::from(format!("blocks/{block_id}"))
}

/// A block that is complete in the object store, with what is kept of it in memory.
pub struct BlockHandle {
    pub meta: BlockMeta,
    pub bloom: Bloom,
    row_group_ranges: Vec<(TraceId, TraceId)>,
    /// Per row group, the first trace id of each page.
    page_firsts: Vec<Vec<TraceId>>,
    store: Arc<dyn ObjectStore>,
    parquet_meta: tokio::sync::OnceCell<ArrowReaderMetadata>,
}

impl BlockHandle {
    pub fn new(
        meta: BlockMeta,
        bloom: Bloom,
        store: Arc<dyn ObjectStore>,
    ) -> Result<BlockHandle, StoreError> {
        let mut row_group_ranges = Vec::with_capacity(meta.row_groups.len());
        let mut page_firsts = Vec::with_capacity(meta.row_groups.len());
        let parse = |hex: &str| {
            TraceId::from_hex(hex)
                .map_err(|e| corrupt(&meta.block_id, format!("row group index: {e}")))
        };
        for rg in &meta.row_groups {
            row_group_ranges.push((parse(&rg.first)?, parse(&rg.last)?));
            let pages = rg
                .pages
                .iter()
                .map(|p| parse(p))
                .collect::<Result<Vec<_>, _>>()?;
            if pages.len() != (rg.rows as usize).div_ceil(PAGE_ROWS) {
                return Err(corrupt(
                    &meta.block_id,
                    "page index does not match row count",
                ));
            }
            page_firsts.push(pages);
        }
        Ok(BlockHandle {
            meta,
            bloom,
            row_group_ranges,
            page_firsts,
            store,
            parquet_meta: tokio::sync::OnceCell::new(),
        })
    }

    /// Loads a complete block's meta and bloom filter from the object store.
    pub async fn load(
        store: Arc<dyn ObjectStore>,
        block_id: &str,
    ) -> Result<BlockHandle, StoreError> {
        let dir = block_dir(block_id);
        let get = |name: &'static str| {
            let store = store.clone();
            let path = dir.clone().join(name);
            async move {
                let err = |e| StoreError::Object {
                    path: path.to_string(),
                    source: e,
                };
                store
                    .get(&path)
                    .await
                    .map_err(err)?
                    .bytes()
                    .await
                    .map_err(err)
            }
        };
        let meta_bytes = get("meta.json").await?;
        let meta: BlockMeta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| corrupt(block_id, format!("meta.json: {e}")))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(corrupt(
                block_id,
                format!("unsupported format version {}", meta.format_version),
            ));
        }
        let bloom = Bloom::decode(&get("bloom.bin").await?)
            .ok_or_else(|| corrupt(block_id, "bloom.bin is malformed"))?;
        BlockHandle::new(meta, bloom, store)
    }

    fn data_path(&self) -> ObjectPath {
        block_dir(&self.meta.block_id).join("data.parquet")
    }

    fn reader(&self) -> BlockFile {
        BlockFile {
            store: self.store.clone(),
            path: self.data_path(),
            size: self.meta.data_bytes,
        }
    }

    async fn parquet_meta(&self) -> Result<&ArrowReaderMetadata, StoreError> {
        self.parquet_meta
            .get_or_try_init(|| async {
                let mut reader = self.reader();
                let options =
                    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
                ArrowReaderMetadata::load_async(&mut reader, options)
                    .await
                    .map_err(|e| StoreError::Parquet {
                        block: self.meta.block_id.clone(),
                        source: e,
                    })
            })
            .await
    }

    /// Reads the given row groups (all when `None`) as record batches.
    async fn read_row_groups(
        &self,
        row_groups: Option<Vec<usize>>,
        selection: Option<RowSelection>,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let md = self.parquet_meta().await?.clone();
        let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(self.reader(), md)
            .with_batch_size(8192);
        if let Some(rgs) = row_groups {
            builder = builder.with_row_groups(rgs);
        }
        if let Some(sel) = selection {
            builder = builder.with_row_selection(sel);
        }
        let perr = |e| StoreError::Parquet {
            block: self.meta.block_id.clone(),
            source: e,
        };
        let stream = builder.build().map_err(perr)?;
        stream.try_collect().await.map_err(perr)
    }

    /// The spans of one trace in this block, appended to `into`.
    pub async fn collect_trace(&self, id: TraceId, into: &mut Trace) -> Result<(), StoreError> {
        if !self.bloom.may_contain(&id) {
            return Ok(());
        }
        let rgs: Vec<usize> = self
            .row_group_ranges
            .iter()
            .enumerate()
            .filter(|(_, (first, last))| *first <= id && id <= *last)
            .map(|(i, _)| i)
            .collect();
        if rgs.is_empty() {
            return Ok(());
        }
        // Within each row group, select only the pages whose trace-id range can hold `id`.
        let mut selectors = Vec::new();
        for &rg in &rgs {
            let firsts = &self.page_firsts[rg];
            let rows = self.meta.row_groups[rg].rows as usize;
            for (p, first) in firsts.iter().enumerate() {
                let page_rows = PAGE_ROWS.min(rows - p * PAGE_ROWS);
                let next_first = firsts.get(p + 1);
                let may_hold = *first <= id && next_first.is_none_or(|n| *n >= id);
                selectors.push(if may_hold {
                    RowSelector::select(page_rows)
                } else {
                    RowSelector::skip(page_rows)
                });
            }
        }
        let selection = RowSelection::from(selectors);
        let mut decoder = RowDecoder::new(&self.meta.block_id);
        for batch in self.read_row_groups(Some(rgs), Some(selection)).await? {
            let cols = Columns::of(&self.meta.block_id, &batch)?;
            for row in 0..batch.num_rows() {
                if cols.trace_id.value(row) == id.0 {
                    decoder.push(&cols, row)?;
                }
            }
        }
        into.extend(decoder.finish());
        Ok(())
    }

    /// Adds the traces with a span matching `query` to `hits` (see [`Head::search`]).
    pub async fn search(
        &self,
        query: &SearchQuery,
        hits: &mut HashMap<TraceId, u64>,
    ) -> Result<(), StoreError> {
        if !query.overlaps_time(self.meta.min_start, self.meta.max_start) {
            return Ok(());
        }
        if let Some(service) = &query.service {
            match self.meta.services.get(service) {
                None => return Ok(()),
                Some(ops) => {
                    if let Some(op) = &query.operation
                        && !ops.iter().any(|(n, _)| n == op)
                    {
                        return Ok(());
                    }
                }
            }
        }
        let block = &self.meta.block_id;
        for batch in self.read_row_groups(None, None).await? {
            let cols = Columns::of(block, &batch)?;
            for row in 0..batch.num_rows() {
                if !cols.cheap_match(query, row) {
                    continue;
                }
                if !query.tags.is_empty() {
                    let mut d = RowDecoder::new(block);
                    let (resource, scope, span) = d.decode_row(&cols, row)?;
                    if !query.matches(&SpanRef {
                        resource: &resource,
                        scope: &scope,
                        span: &span,
                    }) {
                        continue;
                    }
                }
                let id = TraceId(cols.trace_id.value(row).try_into().expect("16 bytes"));
                let start = cols.start.value(row) as u64;
                let slot = hits.entry(id).or_insert(start);
                *slot = (*slot).max(start);
            }
        }
        Ok(())
    }

    /// Operations in this block, as (service, operation).
    pub fn operations(&self) -> impl Iterator<Item = (&str, Operation)> {
        self.meta.services.iter().flat_map(|(svc, ops)| {
            ops.iter().map(move |(name, kind)| {
                (
                    svc.as_str(),
                    Operation {
                        name: name.clone(),
                        kind: SpanKind::from_i32(*kind).unwrap_or_default(),
                    },
                )
            })
        })
    }
}

/// Reads byte ranges of a block's Parquet file from the object store, so a lookup fetches only
/// the footer and the row groups it needs.
struct BlockFile {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    size: u64,
}

impl AsyncFileReader for BlockFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let size = self.size;
            let mut reader = ParquetMetaDataReader::new();
            if let Some(o) = options {
                reader = reader
                    .with_column_index_policy(o.column_index_policy())
                    .with_offset_index_policy(o.offset_index_policy());
            }
            let md = reader.load_and_finish(self, size).await?;
            Ok(Arc::new(md))
        })
    }
}

struct Columns<'a> {
    trace_id: &'a FixedSizeBinaryArray,
    span_id: &'a FixedSizeBinaryArray,
    parent: &'a FixedSizeBinaryArray,
    service: &'a StringArray,
    name: &'a StringArray,
    kind: &'a Int32Array,
    start: &'a Int64Array,
    duration: &'a Int64Array,
    status_code: &'a Int32Array,
    status_message: &'a StringArray,
    resource: &'a BinaryArray,
    scope: &'a BinaryArray,
    extra: &'a BinaryArray,
}

impl<'a> Columns<'a> {
    fn of(block: &str, batch: &'a RecordBatch) -> Result<Columns<'a>, StoreError> {
        fn col<'b, T: 'static>(
            block: &str,
            batch: &'b RecordBatch,
            name: &str,
        ) -> Result<&'b T, StoreError> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<T>())
                .ok_or_else(|| corrupt(block, format!("column {name} is missing or mistyped")))
        }
        Ok(Columns {
            trace_id: col(block, batch, "trace_id")?,
            span_id: col(block, batch, "span_id")?,
            parent: col(block, batch, "parent_span_id")?,
            service: col(block, batch, "service")?,
            name: col(block, batch, "name")?,
            kind: col(block, batch, "kind")?,
            start: col(block, batch, "start_unix_nano")?,
            duration: col(block, batch, "duration_nano")?,
            status_code: col(block, batch, "status_code")?,
            status_message: col(block, batch, "status_message")?,
            resource: col(block, batch, "resource")?,
            scope: col(block, batch, "scope")?,
            extra: col(block, batch, "extra")?,
        })
    }

    /// Every condition of `query` that the plain columns can decide.
    fn cheap_match(&self, q: &SearchQuery, row: usize) -> bool {
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

/// Turns rows back into model spans, sharing decoded resources and scopes.
struct RowDecoder<'b> {
    block: &'b str,
    resources: HashMap<Vec<u8>, Arc<Resource>>,
    scopes: HashMap<Vec<u8>, Arc<Scope>>,
    out: Vec<ResourceSpans>,
}

impl<'b> RowDecoder<'b> {
    fn new(block: &'b str) -> Self {
        RowDecoder {
            block,
            resources: HashMap::new(),
            scopes: HashMap::new(),
            out: Vec::new(),
        }
    }

    fn decode_row(
        &mut self,
        cols: &Columns<'_>,
        row: usize,
    ) -> Result<(Arc<Resource>, Arc<Scope>, Span), StoreError> {
        let block = self.block;
        let rbytes = cols.resource.value(row);
        let resource = match self.resources.get(rbytes) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new(decode_resource(block, rbytes)?);
                self.resources.insert(rbytes.to_vec(), r.clone());
                r
            }
        };
        let sbytes = cols.scope.value(row);
        let scope = match self.scopes.get(sbytes) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(decode_scope(block, sbytes)?);
                self.scopes.insert(sbytes.to_vec(), s.clone());
                s
            }
        };
        let mut proto = pt::Span::decode(cols.extra.value(row))
            .map_err(|e| corrupt(block, format!("extra column: {e}")))?;
        let start = cols.start.value(row) as u64;
        proto.trace_id = cols.trace_id.value(row).to_vec();
        proto.span_id = cols.span_id.value(row).to_vec();
        let mut span = stitch_wire::otlp::span_from_proto(proto)
            .map_err(|e| corrupt(block, format!("span row {row}: {e}")))?;
        span.parent_span_id = if cols.parent.is_null(row) {
            None
        } else {
            Some(SpanId(cols.parent.value(row).try_into().expect("8 bytes")))
        };
        span.name = cols.name.value(row).to_owned();
        span.kind = SpanKind::from_i32(cols.kind.value(row)).unwrap_or_default();
        span.start_time_unix_nano = start;
        span.end_time_unix_nano = start + cols.duration.value(row) as u64;
        span.status = Status {
            code: StatusCode::from_i32(cols.status_code.value(row)).unwrap_or_default(),
            message: cols.status_message.value(row).to_owned(),
        };
        Ok((resource, scope, span))
    }

    fn push(&mut self, cols: &Columns<'_>, row: usize) -> Result<(), StoreError> {
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

    fn finish(self) -> Vec<ResourceSpans> {
        self.out
    }
}

/// Writes a block's files to the object store; `meta.json` goes last. `before_put(name,
/// bytes)` is asked before each file and may fail the write.
pub async fn put_block(
    store: &Arc<dyn ObjectStore>,
    meta: &BlockMeta,
    bloom: &Bloom,
    data: Vec<u8>,
    before_put: impl Fn(&str, u64) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let dir = block_dir(&meta.block_id);
    let put = |name: &str, bytes: Vec<u8>| {
        let path = dir.clone().join(name);
        let store = store.clone();
        let allowed = before_put(name, bytes.len() as u64);
        async move {
            allowed?;
            store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| StoreError::Object {
                    path: path.to_string(),
                    source: e,
                })
                .map(|_| ())
        }
    };
    put("data.parquet", data).await?;
    put("bloom.bin", bloom.encode()).await?;
    let meta_json = serde_json::to_vec_pretty(meta).expect("block meta serialises");
    put("meta.json", meta_json).await
}

/// Deletes every object of a block, `meta.json` first so a half-deleted block is never read.
pub async fn delete_block(store: &Arc<dyn ObjectStore>, block_id: &str) -> Result<(), StoreError> {
    let dir = block_dir(block_id);
    for name in ["meta.json", "bloom.bin", "data.parquet"] {
        let path = dir.clone().join(name);
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(StoreError::Object {
                    path: path.to_string(),
                    source: e,
                });
            }
        }
    }
    Ok(())
}

/// The ids of every block directory that has a `meta.json`.
pub async fn list_blocks(store: &Arc<dyn ObjectStore>) -> Result<Vec<String>, StoreError> {
    let prefix = ObjectPath::from("blocks");
    let objects: Vec<_> =
        store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| StoreError::Object {
                path: prefix.to_string(),
                source: e,
            })?;
    let mut ids: Vec<String> = objects
        .iter()
        .filter_map(|o| {
            let parts: Vec<_> = o.location.parts().collect();
            (parts.len() == 3 && parts[2].as_ref() == "meta.json")
                .then(|| parts[1].as_ref().to_owned())
        })
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloom_filter_has_no_false_negatives_and_few_false_positives() {
        let ids: Vec<TraceId> = (1..=10_000u64)
            .map(|i| TraceId::from_halves(i.wrapping_mul(0x9e3779b97f4a7c15), i * 7919))
            .collect();
        let mut bloom = Bloom::with_capacity(ids.len());
        for id in &ids {
            bloom.insert(id);
        }
        let decoded = Bloom::decode(&bloom.encode()).unwrap();
        assert!(ids.iter().all(|id| decoded.may_contain(id)));
        let false_positives = (1..=10_000u64)
            .map(|i| TraceId::from_halves(i.wrapping_mul(0xabcdef12345), !i))
            .filter(|id| decoded.may_contain(id))
            .count();
        assert!(false_positives < 300, "{false_positives} false positives");
    }

    #[test]
    fn malformed_bloom_bytes_are_rejected() {
        assert!(Bloom::decode(b"nonsense").is_none());
        let mut bytes = Bloom::with_capacity(10).encode();
        bytes.pop();
        assert!(Bloom::decode(&bytes).is_none());
    }
}
