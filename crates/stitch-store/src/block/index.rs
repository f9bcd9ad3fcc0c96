//! `index.bin` (format version 2): per row group, what a search needs to skip it unread.
//!
//! ```text
//! index  := "STIDX002" groups:u32le group{groups}
//! group  := min_start:u64le max_start:u64le min_duration:u64le max_duration:u64le
//!           errors:u32le k:u8 words:u32le bits:u64le{words}
//! ```
//!
//! The bloom filter of a group holds a hash of every term its spans hold: the service name,
//! the span name, each span and resource attribute, and each event attribute, a key with its
//! value written as text ([`stitch_model::AnyValue::to_text`], so `500` and `"500"` are one term,
//! as searches compare them). A term's hash starts from its tag byte (`v` service, `n` name,
//! `a` span or resource attribute, `e` event attribute) times 0x9e3779b97f4a7c15; each of the
//! key and the value is mixed in eight bytes at a time (little endian, the last word padded
//! with zeros, then the part's length), a word `w` as `h = (h rotl 23 ^ w) · 0x517cc1b727220a95`;
//! the result goes through SplitMix64's finaliser. Bit positions are `(h + i·(h rotl 32 | 1))
//! mod m` for `i < k`. Filters are sized for about 0.001% false positives (24 bits per distinct
//! term, k = 16): a day of 100M spans has about 3,000 row groups, and each false positive costs
//! the read of one (at 0.05%, with 16 bits and k = 11 as earlier blocks have,
//! a rare value led to 20 such reads there); the filters cost about 0.15 byte per span.
//!
//! A query skips a group whose time range it does not overlap, whose durations it excludes,
//! or whose filter lacks one of the terms every match must hold.

use stitch_model::{AnyValue, KeyValue};
use stitch_query::SearchQuery;

const MAGIC: &[u8; 8] = b"STIDX002";
const BITS_PER_TERM: usize = 24;
const K: u8 = 16;

/// A term of a row group, hashed for its filter.
#[derive(Clone, Copy, Debug)]
pub enum Term<'a> {
    Service(&'a str),
    Name(&'a str),
    /// A span or resource attribute: key and value as text.
    Attribute(&'a str, &'a str),
    /// An event attribute: key and value as text.
    EventAttribute(&'a str, &'a str),
}

/// The hash of a term (see the module docs).
pub fn term_hash(term: Term<'_>) -> u64 {
    let (tag, key, value) = match term {
        Term::Service(v) => (b'v', "", v),
        Term::Name(v) => (b'n', "", v),
        Term::Attribute(k, v) => (b'a', k, v),
        Term::EventAttribute(k, v) => (b'e', k, v),
    };
    let mut h = u64::from(tag).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for part in [key.as_bytes(), value.as_bytes()] {
        let mut chunks = part.chunks_exact(8);
        for c in &mut chunks {
            h = mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        // The length ends each part, so that ("ab", "c") and ("a", "bc") differ.
        h = mix(mix(h, u64::from_le_bytes(last)), part.len() as u64);
    }
    // SplitMix64's finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(23) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// What is known of one row group without reading it.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupIndex {
    pub min_start: u64,
    pub max_start: u64,
    pub min_duration: u64,
    pub max_duration: u64,
    /// Spans with status ERROR.
    pub errors: u32,
    k: u8,
    bits: Vec<u64>,
}

impl GroupIndex {
    /// Bytes of the group's term filter.
    pub fn bytes(&self) -> usize {
        self.bits.len() * 8
    }

    fn positions(&self, h: u64) -> impl Iterator<Item = usize> + '_ {
        let m = (self.bits.len() * 64) as u64;
        let step = h.rotate_left(32) | 1;
        (0..u64::from(self.k)).map(move |i| (h.wrapping_add(i.wrapping_mul(step)) % m) as usize)
    }

    /// Whether the group may hold a span with this term (false: it certainly does not).
    pub fn may_hold(&self, term: Term<'_>) -> bool {
        if self.bits.is_empty() {
            return false;
        }
        let h = term_hash(term);
        self.positions(h)
            .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }

    /// Whether a span of the group may satisfy every condition of `q`.
    pub fn may_match(&self, q: &SearchQuery) -> bool {
        if !q.overlaps_time(self.min_start, self.max_start)
            || q.min_duration_nanos.is_some_and(|d| d > self.max_duration)
            || q.max_duration_nanos.is_some_and(|d| d < self.min_duration)
        {
            return false;
        }
        if q.service
            .as_deref()
            .is_some_and(|s| !self.may_hold(Term::Service(s)))
            || q.operation
                .as_deref()
                .is_some_and(|n| !self.may_hold(Term::Name(n)))
        {
            return false;
        }
        q.tags.iter().all(|(k, v)| self.tag_may_match(k, v))
    }

    fn tag_may_match(&self, key: &str, value: &str) -> bool {
        // The tags `SearchQuery::matches` reads from fields rather than attributes.
        if key == "span.kind" {
            return true;
        }
        if key == "error" && value == "true" && self.errors > 0 {
            return true;
        }
        self.may_hold(Term::Attribute(key, value))
            || self.may_hold(Term::EventAttribute(key, value))
    }

    /// Whether one of the tags of `q` may be a span or resource attribute in this group (then
    /// a search must read the attributes).
    pub fn attributes_may_match(&self, q: &SearchQuery) -> bool {
        q.tags
            .iter()
            .any(|(k, v)| self.may_hold(Term::Attribute(k, v)))
    }

    /// Whether one of the tags of `q` may be an event attribute of a span of this group (then
    /// a search must read the events too).
    pub fn events_may_match(&self, q: &SearchQuery) -> bool {
        q.tags
            .iter()
            .any(|(k, v)| self.may_hold(Term::EventAttribute(k, v)))
    }
}

/// Collects the terms and bounds of one row group as its spans are written.
#[derive(Default)]
pub struct GroupBuilder {
    /// Term hashes, with repeats (sorted and deduplicated once, at the end).
    terms: Vec<u64>,
    min_start: u64,
    max_start: u64,
    min_duration: u64,
    max_duration: u64,
    errors: u32,
    spans: u64,
}

impl GroupBuilder {
    pub fn add(&mut self, term: Term<'_>) {
        self.terms.push(term_hash(term));
    }

    /// Adds the terms of `attrs` as span or resource attributes.
    pub fn add_attributes(&mut self, attrs: &[KeyValue]) {
        for kv in attrs {
            with_text(&kv.value, |t| self.add(Term::Attribute(&kv.key, t)));
        }
    }

    pub fn add_event_attributes(&mut self, attrs: &[KeyValue]) {
        for kv in attrs {
            with_text(&kv.value, |t| self.add(Term::EventAttribute(&kv.key, t)));
        }
    }

    pub fn add_span(&mut self, start: u64, duration: u64, error: bool) {
        if self.spans == 0 {
            self.min_start = start;
            self.max_start = start;
            self.min_duration = duration;
            self.max_duration = duration;
        }
        self.spans += 1;
        self.min_start = self.min_start.min(start);
        self.max_start = self.max_start.max(start);
        self.min_duration = self.min_duration.min(duration);
        self.max_duration = self.max_duration.max(duration);
        self.errors += u32::from(error);
    }

    pub fn finish(mut self) -> GroupIndex {
        self.terms.sort_unstable();
        self.terms.dedup();
        let m = (self.terms.len().max(1) * BITS_PER_TERM).div_ceil(64) * 64;
        let mut g = GroupIndex {
            min_start: self.min_start,
            max_start: self.max_start,
            min_duration: self.min_duration,
            max_duration: self.max_duration,
            errors: self.errors,
            k: K,
            bits: vec![0; m / 64],
        };
        for h in self.terms {
            let ps: Vec<usize> = g.positions(h).collect();
            for p in ps {
                g.bits[p / 64] |= 1 << (p % 64);
            }
        }
        g
    }
}

/// A value as the text searches compare it by; integers and booleans without allocating.
fn with_text<R>(v: &AnyValue, f: impl FnOnce(&str) -> R) -> R {
    match v {
        AnyValue::String(s) => f(s),
        AnyValue::Bool(b) => f(if *b { "true" } else { "false" }),
        AnyValue::Int(i) => {
            let mut buf = [0u8; 20];
            let mut at = buf.len();
            let mut n = i.unsigned_abs();
            loop {
                at -= 1;
                buf[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            let digits = std::str::from_utf8(&buf[at..]).expect("ASCII digits");
            if *i < 0 {
                f(&format!("-{digits}"))
            } else {
                f(digits)
            }
        }
        other => f(&other.to_text()),
    }
}

/// The index of a whole block: one entry per row group, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockIndex {
    pub groups: Vec<GroupIndex>,
}

impl BlockIndex {
    pub fn encode(&self) -> Vec<u8> {
        let words: usize = self.groups.iter().map(|g| g.bits.len()).sum();
        let mut out = Vec::with_capacity(12 + self.groups.len() * 41 + words * 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.groups.len() as u32).to_le_bytes());
        for g in &self.groups {
            for v in [g.min_start, g.max_start, g.min_duration, g.max_duration] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&g.errors.to_le_bytes());
            out.push(g.k);
            out.extend_from_slice(&(g.bits.len() as u32).to_le_bytes());
            for w in &g.bits {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// Decodes `index.bin`; `None` when it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<BlockIndex> {
        let mut rest = bytes.strip_prefix(MAGIC)?;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let mut groups = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let min_start = u64_of(take(8)?);
            let max_start = u64_of(take(8)?);
            let min_duration = u64_of(take(8)?);
            let max_duration = u64_of(take(8)?);
            let errors = u32::from_le_bytes(take(4)?.try_into().ok()?);
            let k = take(1)?[0];
            let words = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            if k == 0 || k > 32 {
                return None;
            }
            let bits = take(words.checked_mul(8)?)?
                .chunks_exact(8)
                .map(u64_of)
                .collect();
            groups.push(GroupIndex {
                min_start,
                max_start,
                min_duration,
                max_duration,
                errors,
                k,
                bits,
            });
        }
        rest.is_empty().then_some(BlockIndex { groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupIndex {
        let mut b = GroupBuilder::default();
        b.add(Term::Service("checkout"));
        b.add(Term::Name("GET /cart"));
        b.add_attributes(&[KeyValue::new("http.response.status_code", 500i64)]);
        b.add_event_attributes(&[KeyValue::new("exception.type", "Timeout")]);
        b.add_span(100, 5, false);
        b.add_span(200, 50, true);
        b.finish()
    }

    #[test]
    fn a_group_may_match_exactly_the_queries_its_terms_and_bounds_allow() {
        let g = group();
        let q = |f: &dyn Fn(&mut SearchQuery)| {
            let mut q = SearchQuery {
                limit: 1,
                ..Default::default()
            };
            f(&mut q);
            g.may_match(&q)
        };
        assert!(q(&|_| {}));
        assert!(q(&|q| q.service = Some("checkout".into())));
        assert!(!q(&|q| q.service = Some("cart".into())));
        assert!(q(&|q| q.operation = Some("GET /cart".into())));
        assert!(q(
            &|q| q.tags = vec![("http.response.status_code".into(), "500".into())]
        ));
        assert!(!q(
            &|q| q.tags = vec![("http.response.status_code".into(), "404".into())]
        ));
        assert!(q(
            &|q| q.tags = vec![("exception.type".into(), "Timeout".into())]
        ));
        assert!(q(&|q| q.tags = vec![("error".into(), "true".into())]));
        assert!(q(&|q| q.tags = vec![("span.kind".into(), "server".into())]));
        assert!(!q(&|q| q.min_duration_nanos = Some(51)));
        assert!(q(&|q| q.min_duration_nanos = Some(50)));
        assert!(!q(&|q| q.max_duration_nanos = Some(4)));
        assert!(!q(&|q| q.start_unix_nanos = Some(201)));
        assert!(!q(&|q| q.end_unix_nanos = Some(99)));
        let with_event = SearchQuery {
            tags: vec![("exception.type".into(), "Timeout".into())],
            ..Default::default()
        };
        assert!(g.events_may_match(&with_event));
    }

    #[test]
    fn the_index_round_trips_and_refuses_malformed_bytes() {
        let index = BlockIndex {
            groups: vec![group(), GroupBuilder::default().finish()],
        };
        let bytes = index.encode();
        assert_eq!(BlockIndex::decode(&bytes), Some(index));
        assert!(BlockIndex::decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(BlockIndex::decode(b"STIDX001").is_none());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(BlockIndex::decode(&extra).is_none());
    }

    #[test]
    fn term_hashes_are_stable_across_builds() {
        // Part of the format: these values must never change.
        assert_eq!(
            term_hash(Term::Service("checkout")),
            term_hash(Term::Service("checkout"))
        );
        assert_ne!(term_hash(Term::Service("a")), term_hash(Term::Name("a")));
        assert_ne!(
            term_hash(Term::Attribute("ab", "c")),
            term_hash(Term::Attribute("a", "bc"))
        );
        assert_eq!(term_hash(Term::Attribute("k", "v")), 0xb839_6b0f_ca54_bfca);
        let mut b = GroupBuilder::default();
        b.add_attributes(&[KeyValue::new("n", -1234i64), KeyValue::new("b", false)]);
        assert_eq!(
            b.terms,
            vec![
                term_hash(Term::Attribute("n", "-1234")),
                term_hash(Term::Attribute("b", "false"))
            ]
        );
    }
}
