//! Immutable blocks: Parquet files of spans sorted by trace id, with a bloom filter and a
//! row-group index for lookups by trace id, and (from format version 2) an index that lets a
//! search skip row groups without reading them.
//!
//! A block is a directory in the object store, `blocks/<block id>/`:
//!
//! ```text
//! data.parquet   one row per span, sorted by (trace_id, start_unix_nano), zstd-compressed,
//!                row groups of at most ROW_GROUP_ROWS rows, pages of at most PAGE_ROWS rows,
//!                with the offset index (page locations) written
//! bloom.bin      "STBLOOM1" k:u32le m_bits:u64le bits[m_bits/8]   (trace ids)
//! index.bin      version 2 only: per row group, time and duration bounds, the error count and
//!                a bloom filter of the terms its spans hold (see `index.rs`)
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
//! | extra | Binary | OTLP `Span` protobuf holding the remaining fields: events, links, trace state, flags, dropped counts; in version 1 also the attributes |
//! | attributes | List(Struct(key Utf8, str Utf8?, int Int64?, double Float64?, bool Boolean?, other Binary?)) | version 2: the span's attributes in order; exactly one value field is set, `other` holding an OTLP `AnyValue` protobuf for bytes, arrays, maps and empty values; none is set for a placeholder whose value is in the key's dedicated column |
//! | `span.<key>` | Utf8 or Int64, nullable | version 2, blocks whose `meta.json` lists `dedicated` keys: one column per common semantic-convention span attribute (`http.route`, `http.response.status_code`, `db.system`, ...; [`dedicated`]) |
//!
//! The resource and scope columns repeat the same bytes for every span of a process, which the
//! Parquet dictionary encoding stores once per row group; attribute keys and repeated values
//! are dictionary-encoded the same way. With attributes in their own column, a search reads and
//! compares them without decoding span protobufs.
//!
//! # Versions
//!
//! `meta.json` says which version a block was written in (`format_version`). Version 1 blocks
//! (no `attributes` column, no `index.bin`) stay readable: every row group is a candidate and
//! attributes are read from `extra`. New blocks are written in version 2. A fixture block of
//! version 1 is read back by `tests/format_v1.rs`.
//!
//! Within version 2, blocks written since dedicated attribute columns exist list their keys in
//! `meta.json` (`dedicated`) and mark per row group which of those keys also have values in
//! the list (`list_dedicated`); earlier version 2 blocks have neither and keep every attribute
//! in the list. Both read the same way, since a reader takes a placeholder's value from the
//! column of that name (`tests/formats.rs` reads a kept block of the earlier layout).

mod bloom;
pub mod dedicated;
mod footers;
pub mod index;
mod objects;
mod read;
mod rows;
mod write;

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::trace::v1 as pt;
use prost::Message;
use serde::{Deserialize, Serialize};
use stitch_model::{Resource, Scope};

use crate::StoreError;

pub use bloom::Bloom;
pub use footers::{FooterCache, FooterUsage};
pub use objects::{block_dir, delete_block, list_blocks, put_block};
pub use read::BlockHandle;
pub use write::{BuiltBlock, build_block};

pub const ROW_GROUP_ROWS: usize = 32 * 1024;
/// Rows per data page. A lookup by trace id decodes only the pages that can hold the trace, so
/// this bounds the work of a lookup; `meta.json` keeps the first trace id of every page.
pub const PAGE_ROWS: usize = 1024;
/// The version blocks are written in.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version still read.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

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
    /// Size of `index.bin` (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_bytes: Option<u64>,
    /// The span attribute keys with a dedicated column, in column order ([`dedicated`]); empty
    /// in blocks written before dedicated columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dedicated: Vec<String>,
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
    /// Bit `i`: the `attributes` list holds a value for `dedicated[i]` in this row group (an
    /// attribute of that key that did not go to its column).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub list_dedicated: u64,
    /// The trace id (hex) of the first row of each page of PAGE_ROWS rows.
    pub pages: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
