//! A dependency-free source of random identifiers.
//!
//! The standard library's `RandomState` is keyed from the operating system's random source
//! (once per thread, then advanced for every instance). Hashing a process-wide counter and the
//! clock with a fresh `RandomState` gives SipHash output under a secret random key: uniform
//! and unpredictable enough for trace identifiers, which is all this crate needs. It is not a
//! cryptographic generator.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// 64 random bits.
pub(crate) fn next_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.finish()
}
