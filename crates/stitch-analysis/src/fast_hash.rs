//! A fast, non-cryptographic hasher for the maps the analysis builds per trace (span names and
//! service names as keys, hundreds of thousands of lookups for a large trace).
//!
//! The standard library's SipHash resists collision attacks at several times the cost per
//! byte. Here each 8-byte word is mixed in with a folded 64×64→128-bit multiply, from a state
//! seeded once per process at random: a sender that chooses its span ids or names cannot aim
//! them at one bucket without knowing the seed.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, FastState>;

/// A `HashSet` with [`FastHasher`].
pub(crate) type FastSet<T> = HashSet<T, FastState>;

/// An odd 64-bit constant with well-spread bits (from the golden ratio).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Clone, Copy)]
pub(crate) struct FastHasher {
    state: u64,
}

/// The process's seed: random bits from the standard library's per-process hasher keys.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(K))
}

/// Builds [`FastHasher`]s from the process's seed, read once per map.
#[derive(Clone, Copy)]
pub(crate) struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        FastState { seed: seed() }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { state: self.seed }
    }
}

impl FastHasher {
    /// Folded multiply: the 128-bit product's halves xored, so every input bit reaches
    /// every output bit.
    #[inline]
    fn mix(&mut self, word: u64) {
        let m = u128::from(self.state ^ word) * u128::from(K);
        self.state = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(last));
        }
        // The length keeps "ab" and "ab\0" apart.
        self.mix(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash(v: impl Hash) -> u64 {
        FastState::default().hash_one(v)
    }

    #[test]
    fn distinct_keys_rarely_collide() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000u32 {
            assert!(
                seen.insert(hash(format!("GET /items/{i}"))),
                "collision at {i}"
            );
        }
        assert_ne!(hash("ab"), hash("ab\0"));
        assert_ne!(hash(("a", "bc")), hash(("ab", "c")));
    }

    #[test]
    fn the_low_bits_that_pick_a_bucket_spread_for_sequential_ids() {
        // Span ids that count up (as some SDKs make them) fill 1,024 buckets about evenly.
        let mut buckets = [0u32; 1024];
        for i in 0..100_000u64 {
            buckets[(hash(i.to_be_bytes()) & 1023) as usize] += 1;
        }
        let (min, max) = (buckets.iter().min().unwrap(), buckets.iter().max().unwrap());
        assert!(*min > 50 && *max < 160, "bucket loads from {min} to {max}");
    }

    #[test]
    fn a_map_with_it_behaves_like_any_map() {
        let mut m: FastMap<(&str, &str), u32> = FastMap::default();
        *m.entry(("svc", "op")).or_default() += 1;
        *m.entry(("svc", "op")).or_default() += 1;
        *m.entry(("svc", "other")).or_default() += 1;
        assert_eq!(m[&("svc", "op")], 2);
        assert_eq!(m.len(), 2);
    }
}
