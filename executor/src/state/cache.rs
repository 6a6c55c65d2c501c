//! [`HotKeys`]: a bounded cache of recently used state rows.
//!
//! Two generations: lookups and writes land in the young one; when it is
//! full, it becomes the old one and the previous old one is dropped. A key
//! found in the old generation moves back to the young. So at most twice
//! the capacity is held, and keys used at least once per generation stay.
//! It also remembers keys known to be absent, which is what a stream of
//! new keys asks about most.

use std::collections::HashMap;

/// A stored row, or `None` for a key known to have no row.
pub type CachedRow = Option<Vec<u8>>;

pub struct HotKeys {
    capacity: usize,
    young: HashMap<Vec<u8>, CachedRow>,
    old: HashMap<Vec<u8>, CachedRow>,
}

impl HotKeys {
    /// A cache holding about `capacity` (at most twice that) keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }

    /// The cached row of `key`: `None` if the cache does not know it.
    pub fn get(&mut self, key: &[u8]) -> Option<CachedRow> {
        if let Some(row) = self.young.get(key) {
            return Some(row.clone());
        }
        let (key, row) = self.old.remove_entry(key)?;
        self.put(key, row.clone());
        Some(row)
    }

    /// Records what the store holds for `key`.
    pub fn put(&mut self, key: Vec<u8>, row: CachedRow) {
        if self.capacity == 0 {
            return;
        }
        if self.young.len() >= self.capacity && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, row);
    }

    /// Forgets everything (the store changed under the cache).
    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_in_use_and_drops_cold_ones() {
        let mut cache = HotKeys::new(2);
        cache.put(b"a".to_vec(), Some(b"1".to_vec()));
        cache.put(b"b".to_vec(), None);
        assert_eq!(cache.get(b"b"), Some(None));
        // "c" starts a new generation; "a" and "b" are old.
        cache.put(b"c".to_vec(), Some(b"3".to_vec()));
        assert_eq!(cache.get(b"a"), Some(Some(b"1".to_vec())));
        // Another turn drops "b", unused since its generation ended.
        cache.put(b"d".to_vec(), None);
        cache.put(b"e".to_vec(), None);
        assert_eq!(cache.get(b"b"), None);
        assert_eq!(cache.get(b"d"), Some(None));
        cache.clear();
        assert_eq!(cache.get(b"d"), None);
    }
}
