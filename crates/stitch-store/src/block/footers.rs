//! The Parquet footers (with their page indexes) that reads loaded, kept within a byte budget.
//!
//! A read of a block needs its footer: the row groups, column chunks and page locations that
//! let it fetch only the pages that can hold a trace. Loading it costs two reads of the file,
//! so it is kept; but a footer takes about 0.4 MB for a block of 250K spans, and a store
//! written at 65K spans/s for a day holds over 20,000 blocks. The cache keeps the footers used
//! most recently up to [`crate::StoreConfig::footer_cache_bytes`] and drops the least recently
//! used beyond it; a block read again after that loads its footer again.

use std::collections::HashMap;

use parking_lot::Mutex;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

/// Footers by block id, within a budget of bytes. Cheap to share: readers hold a clone of the
/// entry (its parts are reference-counted), so dropping an entry never pulls it from a read.
#[derive(Debug)]
pub struct FooterCache {
    budget: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    bytes: usize,
    /// Advances on every use; an entry's `used` tells how recently it was used.
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    meta: ArrowReaderMetadata,
    bytes: usize,
    used: u64,
}

/// What the cache holds, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FooterUsage {
    pub bytes: u64,
    pub blocks: u64,
}

impl FooterCache {
    /// A cache of at most `budget` bytes (0 keeps nothing).
    pub fn new(budget: usize) -> FooterCache {
        FooterCache {
            budget,
            state: Mutex::new(State::default()),
        }
    }

    /// The footer of `block`, when kept.
    pub fn get(&self, block: &str) -> Option<ArrowReaderMetadata> {
        let mut state = self.state.lock();
        state.clock += 1;
        let now = state.clock;
        let entry = state.entries.get_mut(block)?;
        entry.used = now;
        Some(entry.meta.clone())
    }

    /// Keeps the footer of `block`, dropping the least recently used ones beyond the budget.
    /// A footer larger than the whole budget is not kept.
    pub fn insert(&self, block: &str, meta: ArrowReaderMetadata) {
        let bytes = meta.metadata().memory_size();
        if bytes > self.budget {
            return;
        }
        let mut state = self.state.lock();
        state.clock += 1;
        let used = state.clock;
        if let Some(old) = state
            .entries
            .insert(block.to_owned(), Entry { meta, bytes, used })
        {
            state.bytes -= old.bytes;
        }
        state.bytes += bytes;
        while state.bytes > self.budget {
            // Linear in the entries kept (hundreds): cheaper than the footer load that
            // brought us here.
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            if let Some(e) = state.entries.remove(&oldest) {
                state.bytes -= e.bytes;
            }
        }
    }

    /// Forgets the footer of a deleted block.
    pub fn remove(&self, block: &str) {
        let mut state = self.state.lock();
        if let Some(e) = state.entries.remove(block) {
            state.bytes -= e.bytes;
        }
    }

    pub fn usage(&self) -> FooterUsage {
        let state = self.state.lock();
        FooterUsage {
            bytes: state.bytes as u64,
            blocks: state.entries.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use bytes::Bytes;
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ArrowReaderOptions;

    use super::*;

    /// The footer of a one-column Parquet file with `row_groups` row groups.
    fn footer(row_groups: usize) -> ArrowReaderMetadata {
        let column = Arc::new(Int64Array::from_iter_values(0..10));
        let batch = RecordBatch::try_from_iter([("n", column as _)]).unwrap();
        let mut file = Vec::new();
        let mut w = ArrowWriter::try_new(&mut file, batch.schema(), None).unwrap();
        for _ in 0..row_groups {
            w.write(&batch).unwrap();
            w.flush().unwrap();
        }
        w.close().unwrap();
        ArrowReaderMetadata::load(&Bytes::from(file), ArrowReaderOptions::new()).unwrap()
    }

    #[test]
    fn the_least_recently_used_footers_go_first_once_over_the_budget() {
        let one = footer(1).metadata().memory_size();
        // Room for three footers of one row group, not four.
        let cache = FooterCache::new(3 * one + one / 2);
        for id in ["a", "b", "c"] {
            cache.insert(id, footer(1));
        }
        assert_eq!(cache.usage().blocks, 3);
        // "a" is used again, so "b" is now the least recently used.
        assert!(cache.get("a").is_some());
        cache.insert("d", footer(1));
        assert!(cache.get("b").is_none(), "b was used least recently");
        for id in ["a", "c", "d"] {
            assert!(cache.get(id).is_some(), "{id} is kept");
        }
        let usage = cache.usage();
        assert_eq!((usage.blocks, usage.bytes), (3, 3 * one as u64));
        assert!(usage.bytes <= (3 * one + one / 2) as u64);
    }

    #[test]
    fn a_footer_replaced_or_removed_is_counted_once_and_one_over_the_budget_is_not_kept() {
        let one = footer(1).metadata().memory_size();
        let cache = FooterCache::new(10 * one);
        cache.insert("a", footer(1));
        cache.insert("a", footer(1));
        assert_eq!(cache.usage().bytes, one as u64);
        cache.remove("a");
        assert_eq!(cache.usage(), FooterUsage::default());
        // A footer of many row groups is larger than the whole budget: not kept.
        let big = footer(200);
        assert!(big.metadata().memory_size() > 10 * one);
        cache.insert("big", big);
        assert!(cache.get("big").is_none());
        let none = FooterCache::new(0);
        none.insert("a", footer(1));
        assert_eq!(none.usage(), FooterUsage::default());
    }
}
