//! A bounded least-recently-used map on a slab with an intrusive list: one allocation for the
//! nodes, one hash map from key to slot, no per-entry allocation.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    prev: u32,
    next: u32,
}

/// A map that holds at most `capacity` entries and forgets the least recently used one to
/// make room. Capacity 0 holds nothing.
pub struct Lru<K, V> {
    map: HashMap<K, u32>,
    nodes: Vec<Node<K, V>>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub fn new(capacity: usize) -> Lru<K, V> {
        assert!(capacity < NIL as usize, "LRU capacity too large");
        Lru {
            map: HashMap::new(),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Approximate bytes held (slab plus map), for metrics.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node<K, V>>()
            + self.map.capacity() * (std::mem::size_of::<(K, u32)>() + 1)
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old;
        }
        if old != NIL {
            self.nodes[old as usize].prev = i;
        } else {
            self.tail = i;
        }
        self.head = i;
    }

    /// The value for `key`, marking it most recently used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = *self.map.get(key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(&self.nodes[i as usize].value)
    }

    /// The value for `key` without changing recency.
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key).map(|&i| &self.nodes[i as usize].value)
    }

    /// Inserts or replaces; returns the key that was evicted to make room, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<K> {
        if self.capacity == 0 {
            return None;
        }
        if let Some(&i) = self.map.get(&key) {
            self.nodes[i as usize].value = value;
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return None;
        }
        if self.nodes.len() < self.capacity {
            let i = self.nodes.len() as u32;
            self.nodes.push(Node {
                key: key.clone(),
                value,
                prev: NIL,
                next: NIL,
            });
            self.map.insert(key, i);
            self.push_front(i);
            return None;
        }
        // Reuse the least recently used slot.
        let i = self.tail;
        self.unlink(i);
        let node = &mut self.nodes[i as usize];
        let evicted = std::mem::replace(&mut node.key, key.clone());
        node.value = value;
        self.map.remove(&evicted);
        self.map.insert(key, i);
        self.push_front(i);
        Some(evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_entry_is_evicted_first() {
        let mut lru = Lru::new(2);
        assert_eq!(lru.insert(1, "a"), None);
        assert_eq!(lru.insert(2, "b"), None);
        assert_eq!(lru.get(&1), Some(&"a"));
        assert_eq!(lru.insert(3, "c"), Some(2));
        assert_eq!(lru.peek(&2), None);
        assert_eq!(lru.get(&1), Some(&"a"));
        assert_eq!(lru.insert(4, "d"), Some(3));
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.insert(4, "e"), None);
        assert_eq!(lru.peek(&4), Some(&"e"));
    }

    #[test]
    fn zero_capacity_holds_nothing() {
        let mut lru = Lru::new(0);
        assert_eq!(lru.insert(1, ()), None);
        assert!(lru.get(&1).is_none());
        assert_eq!(lru.len(), 0);
    }
}
