//! The bloom filter over a block's trace ids (`bloom.bin`).

use stitch_model::TraceId;

const BLOOM_MAGIC: &[u8; 8] = b"STBLOOM1";
const BITS_PER_ID: usize = 20;
const K: u32 = 14;

/// A bloom filter over trace ids. Trace ids are random, so their bytes serve as hashes.
#[derive(Clone, Debug)]
pub struct Bloom {
    k: u32,
    bits: Vec<u64>,
}

impl Bloom {
    /// A filter sized for `n` ids at about 0.007% false positives (20 bits per id, 14 probes).
    /// A lookup checks every block's filter, and each false positive costs a page read: at
    /// 400 blocks, 1% (9.6 bits, as earlier blocks have) meant four wasted
    /// reads per lookup; this rate means one in 40 lookups.
    pub fn with_capacity(n: usize) -> Bloom {
        let words = (n.max(1) * BITS_PER_ID).div_ceil(64);
        Bloom {
            k: K,
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

    /// Bytes of the filter's bits.
    pub fn bytes(&self) -> usize {
        self.bits.len() * 8
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
        assert!(false_positives < 10, "{false_positives} false positives");
    }

    #[test]
    fn malformed_bloom_bytes_are_rejected() {
        assert!(Bloom::decode(b"nonsense").is_none());
        let mut bytes = Bloom::with_capacity(10).encode();
        bytes.pop();
        assert!(Bloom::decode(&bytes).is_none());
    }
}
