//! Reading blocks: the handle kept per block (meta, bloom filter, row-group index), lookups by
//! trace id (only the pages that can hold the trace) and searches (only the row groups and
//! columns a query needs).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use stitch_model::{SpanKind, SpanRef, Trace, TraceId};
use stitch_query::{Operation, SearchQuery};

use super::footers::FooterCache;
use super::index::BlockIndex;
use super::objects::block_dir;
use super::rows::{AttributeRead, Columns, RowDecoder, TagMatcher, search_columns};
use super::{BlockMeta, Bloom, FORMAT_VERSION, OLDEST_FORMAT_VERSION, PAGE_ROWS, corrupt};
use crate::StoreError;

/// A block that is complete in the object store, with what is kept of it in memory.
pub struct BlockHandle {
    pub meta: BlockMeta,
    pub bloom: Bloom,
    /// The row-group index (format version 2; `None` for version 1 blocks).
    index: Option<BlockIndex>,
    row_group_ranges: Vec<(TraceId, TraceId)>,
    /// Per row group, the first trace id of each page.
    page_firsts: Vec<Vec<TraceId>>,
    store: Arc<dyn ObjectStore>,
    /// Where the Parquet footer is kept between reads.
    footers: Arc<FooterCache>,
}

impl BlockHandle {
    pub fn new(
        meta: BlockMeta,
        bloom: Bloom,
        index: Option<BlockIndex>,
        store: Arc<dyn ObjectStore>,
        footers: Arc<FooterCache>,
    ) -> Result<BlockHandle, StoreError> {
        if let Some(ix) = &index
            && ix.groups.len() != meta.row_groups.len()
        {
            return Err(corrupt(
                &meta.block_id,
                "index.bin does not describe every row group",
            ));
        }
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
            index,
            row_group_ranges,
            page_firsts,
            store,
            footers,
        })
    }

    /// Loads a complete block's meta and bloom filter from the object store.
    pub async fn load(
        store: Arc<dyn ObjectStore>,
        footers: Arc<FooterCache>,
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
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&meta.format_version) {
            return Err(corrupt(
                block_id,
                format!(
                    "unsupported format version {} (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})",
                    meta.format_version
                ),
            ));
        }
        let bloom = Bloom::decode(&get("bloom.bin").await?)
            .ok_or_else(|| corrupt(block_id, "bloom.bin is malformed"))?;
        let index = if meta.format_version >= 2 {
            Some(
                BlockIndex::decode(&get("index.bin").await?)
                    .ok_or_else(|| corrupt(block_id, "index.bin is malformed"))?,
            )
        } else {
            None
        };
        BlockHandle::new(meta, bloom, index, store, footers)
    }

    /// Bytes this handle holds in memory: its trace-id bloom filter, row-group index and page
    /// boundaries (the Parquet footer is in the [`FooterCache`]).
    pub fn resident_bytes(&self) -> usize {
        let pages: usize = self.page_firsts.iter().map(|p| p.len()).sum();
        self.bloom.bytes()
            + self
                .index
                .as_ref()
                .map_or(0, |ix| ix.groups.iter().map(|g| g.bytes()).sum())
            + pages * (2 * std::mem::size_of::<TraceId>() + 32)
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

    /// Loads the Parquet footer into the cache unless it is there; returns its size.
    pub async fn warm(&self) -> Result<usize, StoreError> {
        Ok(self.parquet_meta().await?.metadata().memory_size())
    }

    /// The Parquet footer with its page index, from the cache or loaded (and then kept).
    async fn parquet_meta(&self) -> Result<ArrowReaderMetadata, StoreError> {
        if let Some(meta) = self.footers.get(&self.meta.block_id) {
            return Ok(meta);
        }
        let mut reader = self.reader();
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let meta = ArrowReaderMetadata::load_async(&mut reader, options)
            .await
            .map_err(|e| StoreError::Parquet {
                block: self.meta.block_id.clone(),
                source: e,
            })?;
        self.footers.insert(&self.meta.block_id, meta.clone());
        Ok(meta)
    }

    /// Reads the given row groups (all when `None`) as record batches, with only the named
    /// columns when `columns` is given.
    async fn read_row_groups(
        &self,
        row_groups: Option<Vec<usize>>,
        selection: Option<RowSelection>,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let md = self.parquet_meta().await?;
        let mask = columns.map(|names| {
            let arrow = md.schema();
            let roots = names.iter().filter_map(|n| arrow.index_of(n).ok());
            ProjectionMask::roots(md.parquet_schema(), roots)
        });
        let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(self.reader(), md)
            .with_batch_size(8192);
        if let Some(mask) = mask {
            builder = builder.with_projection(mask);
        }
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

    /// The spans of the traces `ids` (sorted, without repeats) held in this block, appended to
    /// their entries of `into`. The block is read once for all of them: only the row groups and
    /// pages whose trace-id ranges can hold one of the ids that pass the bloom filter.
    pub async fn collect_traces(
        &self,
        ids: &[TraceId],
        into: &mut HashMap<TraceId, Trace>,
    ) -> Result<(), StoreError> {
        debug_assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids sorted, no repeats"
        );
        let wanted: Vec<TraceId> = ids
            .iter()
            .copied()
            .filter(|id| self.bloom.may_contain(id))
            .collect();
        // Whether one of the wanted ids lies in `[first, last]` (`last` unbounded when `None`).
        let any_in = |first: TraceId, last: Option<TraceId>| {
            let i = wanted.partition_point(|id| *id < first);
            wanted
                .get(i)
                .is_some_and(|id| last.is_none_or(|l| *id <= l))
        };
        let rgs: Vec<usize> = self
            .row_group_ranges
            .iter()
            .enumerate()
            .filter(|(_, (first, last))| any_in(*first, Some(*last)))
            .map(|(i, _)| i)
            .collect();
        if rgs.is_empty() {
            return Ok(());
        }
        // Within each row group, select only the pages whose trace-id range can hold an id.
        let mut selectors = Vec::new();
        for &rg in &rgs {
            let firsts = &self.page_firsts[rg];
            let rows = self.meta.row_groups[rg].rows as usize;
            for (p, first) in firsts.iter().enumerate() {
                let page_rows = PAGE_ROWS.min(rows - p * PAGE_ROWS);
                selectors.push(if any_in(*first, firsts.get(p + 1).copied()) {
                    RowSelector::select(page_rows)
                } else {
                    RowSelector::skip(page_rows)
                });
            }
        }
        let selection = RowSelection::from(selectors);
        let mut decoders: HashMap<TraceId, RowDecoder> = HashMap::new();
        for batch in self
            .read_row_groups(Some(rgs), Some(selection), None)
            .await?
        {
            let cols = Columns::of(&self.meta.block_id, &batch)?;
            for row in 0..batch.num_rows() {
                let bytes = cols.trace_id.value(row);
                if let Ok(i) = wanted.binary_search_by(|w| w.0.as_slice().cmp(bytes)) {
                    decoders
                        .entry(wanted[i])
                        .or_insert_with(|| RowDecoder::new(&self.meta.block_id))
                        .push(&cols, row)?;
                }
            }
        }
        for (id, decoder) in decoders {
            into.entry(id)
                .or_insert_with(|| Trace::new(id))
                .extend(decoder.finish());
        }
        Ok(())
    }

    /// Adds the traces with a span matching `query` to `hits` (see [`crate::head::Head::search`]). Reads
    /// only the row groups the index does not rule out (version 2), and only the columns the
    /// query needs.
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
        let version = self.meta.format_version;
        let tags = !query.tags.is_empty();
        // Which row groups can match, and whether the tags may be attributes (then the
        // attribute and resource columns are read) or event attributes (then the span
        // protobufs too); a tag the filters rule out as an attribute can still match a field
        // (`error=true`, `span.kind`).
        let (row_groups, attributes, events) = match &self.index {
            Some(ix) => {
                let rgs: Vec<usize> = (0..ix.groups.len())
                    .filter(|&rg| ix.groups[rg].may_match(query))
                    .collect();
                if rgs.is_empty() {
                    return Ok(());
                }
                let attributes = tags
                    && rgs
                        .iter()
                        .any(|&rg| ix.groups[rg].attributes_may_match(query));
                let events = tags && rgs.iter().any(|&rg| ix.groups[rg].events_may_match(query));
                (Some(rgs), attributes, events)
            }
            None => (None, tags, tags),
        };
        let read = if attributes {
            self.attribute_read(query, row_groups.as_deref(), events)
        } else {
            AttributeRead {
                events,
                ..Default::default()
            }
        };
        // Version 1 keeps attributes inside the span protobuf: a tag needs every column.
        let columns = (version >= 2 || !tags).then(|| search_columns(version, &read));
        let columns: Option<Vec<&str>> = columns
            .as_ref()
            .map(|c| c.iter().map(String::as_str).collect());
        let mut matcher = TagMatcher::new(block, query);
        for batch in self
            .read_row_groups(row_groups, None, columns.as_deref())
            .await?
        {
            let cols = Columns::of(block, &batch)?;
            for row in 0..batch.num_rows() {
                if !cols.cheap_match(query, row) {
                    continue;
                }
                if tags {
                    let hit = if version >= 2 {
                        matcher.matches(&cols, row, query, events)?
                    } else {
                        let mut d = RowDecoder::new(block);
                        let (resource, scope, span) = d.decode_row(&cols, row)?;
                        query.matches(&SpanRef {
                            resource: &resource,
                            scope: &scope,
                            span: &span,
                        })
                    };
                    if !hit {
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

    /// The attribute columns a search for the tags of `q` reads in `row_groups` (all when
    /// `None`): a tag with a dedicated column reads that column, and the list only where a
    /// row group's list holds values of that key; any other tag reads the list. The resources
    /// are read for every tag.
    fn attribute_read(
        &self,
        q: &SearchQuery,
        row_groups: Option<&[usize]>,
        events: bool,
    ) -> AttributeRead {
        let mut read = AttributeRead {
            resource: true,
            events,
            ..Default::default()
        };
        let groups = &self.meta.row_groups;
        for (key, _) in &q.tags {
            match self.meta.dedicated.iter().position(|k| k == key) {
                Some(bit) => {
                    if !read.dedicated.contains(key) {
                        read.dedicated.push(key.clone());
                    }
                    let in_list = |rg: usize| groups[rg].list_dedicated & (1 << bit) != 0;
                    read.list |= match row_groups {
                        Some(rgs) => rgs.iter().any(|&rg| in_list(rg)),
                        None => (0..groups.len()).any(in_list),
                    };
                }
                None => read.list = true,
            }
        }
        read
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
