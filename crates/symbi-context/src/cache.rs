//! The bounded context cache (`[context] context_cache_size`): recent retrieval results,
//! weighed by their approximate size in bytes, least recently used evicted first. Each
//! collection has a generation number that every write bumps, so a cached result is never
//! served after the data it came from changed.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

struct Entry<V> {
    value: Arc<V>,
    bytes: usize,
    tick: u64,
}

struct Inner<V> {
    map: HashMap<String, Entry<V>>,
    order: BTreeMap<u64, String>,
    generations: HashMap<String, u64>,
    bytes: usize,
    tick: u64,
    hits: u64,
    misses: u64,
}

/// A byte-bounded LRU cache keyed by collection and query.
pub struct QueryCache<V> {
    capacity: usize,
    inner: Mutex<Inner<V>>,
}

/// Hit and size figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries.
    pub entries: usize,
    /// Approximate bytes held.
    pub bytes: usize,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
}

impl<V> QueryCache<V> {
    /// A cache holding at most `capacity` bytes (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: BTreeMap::new(),
                generations: HashMap::new(),
                bytes: 0,
                tick: 0,
                hits: 0,
                misses: 0,
            }),
        }
    }

    fn full_key(inner: &Inner<V>, collection: &str, key: &str) -> String {
        let generation = inner.generations.get(collection).copied().unwrap_or(0);
        format!("{collection}\u{0}{generation}\u{0}{key}")
    }

    /// The cached value for `key` in `collection`, if present and current.
    pub fn get(&self, collection: &str, key: &str) -> Option<Arc<V>> {
        let mut g = self.inner.lock();
        let k = Self::full_key(&g, collection, key);
        g.tick += 1;
        let tick = g.tick;
        let inner = &mut *g;
        match inner.map.get_mut(&k) {
            Some(e) => {
                inner.order.remove(&e.tick);
                e.tick = tick;
                inner.order.insert(tick, k);
                inner.hits += 1;
                Some(e.value.clone())
            }
            None => {
                inner.misses += 1;
                None
            }
        }
    }

    /// Stores a value of about `bytes` bytes; evicts least recently used entries to stay
    /// within the capacity. A value larger than the whole cache is not stored.
    pub fn put(&self, collection: &str, key: &str, value: V, bytes: usize) -> Arc<V> {
        let value = Arc::new(value);
        if bytes > self.capacity {
            return value;
        }
        let mut g = self.inner.lock();
        let k = Self::full_key(&g, collection, key);
        g.tick += 1;
        let tick = g.tick;
        let inner = &mut *g;
        if let Some(old) = inner.map.remove(&k) {
            inner.order.remove(&old.tick);
            inner.bytes -= old.bytes;
        }
        while inner.bytes + bytes > self.capacity {
            let Some((_, victim)) = inner.order.pop_first() else {
                break;
            };
            if let Some(e) = inner.map.remove(&victim) {
                inner.bytes -= e.bytes;
            }
        }
        inner.bytes += bytes;
        inner.order.insert(tick, k.clone());
        inner.map.insert(
            k,
            Entry {
                value: value.clone(),
                bytes,
                tick,
            },
        );
        value
    }

    /// Marks everything cached for `collection` stale (called on every write to it).
    pub fn invalidate(&self, collection: &str) {
        let mut g = self.inner.lock();
        *g.generations.entry(collection.to_string()).or_insert(0) += 1;
        let prefix = format!("{collection}\u{0}");
        let stale: Vec<(String, u64)> = g
            .map
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, e)| (k.clone(), e.tick))
            .collect();
        for (k, tick) in stale {
            g.order.remove(&tick);
            if let Some(e) = g.map.remove(&k) {
                g.bytes -= e.bytes;
            }
        }
    }

    /// Current figures.
    pub fn stats(&self) -> CacheStats {
        let g = self.inner.lock();
        CacheStats {
            entries: g.map.len(),
            bytes: g.bytes,
            hits: g.hits,
            misses: g.misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_the_byte_budget() {
        let c = QueryCache::new(100);
        c.put("k", "a", 1, 40);
        c.put("k", "b", 2, 40);
        assert_eq!(c.get("k", "a").as_deref(), Some(&1)); // a is now the most recent
        c.put("k", "c", 3, 40); // evicts b
        assert!(c.get("k", "b").is_none());
        assert_eq!(c.get("k", "a").as_deref(), Some(&1));
        assert_eq!(c.get("k", "c").as_deref(), Some(&3));
        assert!(c.stats().bytes <= 100);
        c.put("k", "huge", 9, 1000);
        assert!(
            c.get("k", "huge").is_none(),
            "larger than the cache: not stored"
        );
    }

    #[test]
    fn writes_invalidate_a_collection_only() {
        let c = QueryCache::new(1000);
        c.put("x", "q", 1, 10);
        c.put("y", "q", 2, 10);
        c.invalidate("x");
        assert!(c.get("x", "q").is_none());
        assert_eq!(c.get("y", "q").as_deref(), Some(&2));
        assert_eq!(c.stats().entries, 1);
    }
}
