//! The hot-key cache in front of the state column family.
//!
//! Invariant: every entry holds the value of its key in the database as of the last
//! completed block write (or `None` when the key is absent there). The writer keeps this
//! by bracketing each block write with [`StateCache::begin_write`] / [`StateCache::end_write`]
//! (a sequence counter, odd while a write is in flight) and updating the cached keys it
//! writes in between. A reader that missed the cache and read the database may insert what it read
//! only if the counter is even and unchanged since before its read, checked under the
//! shard's lock: otherwise its value might predate a write that already updated the cache.
//!
//! Eviction is a clock approximation: a hit marks an entry, and a full shard evicts the
//! first unmarked entry among a few, unmarking those it passes.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

const SHARDS: usize = 64;
/// Entries an eviction looks at before it takes one regardless of its mark.
const EVICTION_SCAN: usize = 8;

struct Entry {
    value: Option<Vec<u8>>,
    referenced: AtomicBool,
}

#[derive(Default)]
struct Shard {
    map: RwLock<HashMap<Box<[u8]>, Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Hits and misses since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
}

pub(crate) struct StateCache {
    shards: Box<[Shard]>,
    shard_capacity: usize,
    hasher: RandomState,
    sequence: AtomicU64,
}

impl StateCache {
    pub fn new(capacity: usize) -> Self {
        StateCache {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            shard_capacity: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
            sequence: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> &Shard {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        &self.shards[index]
    }

    /// `Some(value)` on a hit, where `value` is `None` for a key known to be absent.
    #[allow(clippy::option_option)]
    pub fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let shard = self.shard(key);
        let map = shard.map.read();
        match map.get(key) {
            Some(entry) => {
                if !entry.referenced.load(Ordering::Relaxed) {
                    entry.referenced.store(true, Ordering::Relaxed);
                }
                shard.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry.value.clone())
            }
            None => {
                shard.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The sequence to pass to [`StateCache::insert_read`] for a database read that
    /// starts now.
    pub fn read_sequence(&self) -> u64 {
        self.sequence.load(Ordering::SeqCst)
    }

    /// Caches a value read from the database, unless a block write began since
    /// `sequence` was taken (see the module note).
    pub fn insert_read(&self, key: &[u8], value: Option<Vec<u8>>, sequence: u64) {
        if sequence % 2 == 1 || self.shard_capacity == 0 {
            return;
        }
        let shard = self.shard(key);
        let mut map = shard.map.write();
        if self.sequence.load(Ordering::SeqCst) != sequence || map.contains_key(key) {
            return;
        }
        self.make_room(&mut map);
        map.insert(key.into(), entry(value));
    }

    pub fn begin_write(&self) {
        let before = self.sequence.fetch_add(1, Ordering::SeqCst);
        debug_assert_eq!(before % 2, 0, "block writes do not overlap");
    }

    pub fn end_write(&self) {
        self.sequence.fetch_add(1, Ordering::SeqCst);
    }

    /// Brings a cached key up to date with a block write; only between `begin_write`
    /// and `end_write`. Keys not cached stay out: inserting every key of a large block
    /// would cost the commit more than the next reads of those keys save.
    pub fn update(&self, key: &[u8], value: Option<&[u8]>) {
        if self.shard_capacity == 0 {
            return;
        }
        let shard = self.shard(key);
        let mut map = shard.map.write();
        if let Some(existing) = map.get_mut(key) {
            match (&mut existing.value, value) {
                (Some(old), Some(new)) => {
                    old.clear();
                    old.extend_from_slice(new);
                }
                (slot, new) => *slot = new.map(<[u8]>::to_vec),
            }
        }
    }

    /// Forgets every entry; only between `begin_write` and `end_write`, for a write that
    /// replaces state wholesale (aborting a restore).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.map.write().clear();
        }
    }

    fn make_room(&self, map: &mut HashMap<Box<[u8]>, Entry>) {
        if map.len() < self.shard_capacity {
            return;
        }
        let mut victim = None;
        for (key, entry) in map.iter().take(EVICTION_SCAN) {
            if entry.referenced.swap(false, Ordering::Relaxed) {
                victim.get_or_insert_with(|| key.clone());
            } else {
                victim = Some(key.clone());
                break;
            }
        }
        if let Some(key) = victim {
            map.remove(&key);
        }
    }

    pub fn stats(&self) -> CacheStats {
        let mut stats = CacheStats::default();
        for shard in self.shards.iter() {
            stats.hits += shard.hits.load(Ordering::Relaxed);
            stats.misses += shard.misses.load(Ordering::Relaxed);
            stats.entries += shard.map.read().len() as u64;
        }
        stats
    }
}

fn entry(value: Option<Vec<u8>>) -> Entry {
    Entry {
        value,
        referenced: AtomicBool::new(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_and_negative_entries() {
        let cache = StateCache::new(1024);
        assert_eq!(cache.get(b"a"), None);
        let seq = cache.read_sequence();
        cache.insert_read(b"a", Some(b"1".to_vec()), seq);
        cache.insert_read(b"b", None, seq);
        assert_eq!(cache.get(b"a"), Some(Some(b"1".to_vec())));
        assert_eq!(cache.get(b"b"), Some(None));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 1, 2));
    }

    #[test]
    fn a_read_that_overlaps_a_write_is_not_cached() {
        let cache = StateCache::new(1024);
        let before = cache.read_sequence();
        cache.insert_read(b"k", Some(b"old".to_vec()), before);
        let before = cache.read_sequence();
        cache.begin_write();
        cache.update(b"k", Some(b"new"));
        cache.update(b"j", Some(b"new"));
        cache.end_write();
        // The reader's value predates the write: it must not replace or shadow it.
        cache.insert_read(b"k", Some(b"old".to_vec()), before);
        cache.insert_read(b"j", Some(b"old".to_vec()), before);
        assert_eq!(cache.get(b"k"), Some(Some(b"new".to_vec())));
        assert_eq!(cache.get(b"j"), None);

        cache.begin_write();
        let during = cache.read_sequence();
        cache.end_write();
        cache.insert_read(b"j", Some(b"x".to_vec()), during);
        assert_eq!(cache.get(b"j"), None);
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = StateCache::new(SHARDS * 4);
        for i in 0u32..10_000 {
            cache.insert_read(&i.to_le_bytes(), Some(b"v".to_vec()), cache.read_sequence());
        }
        assert!(cache.stats().entries <= (SHARDS * 4) as u64);
        // The most recent insert is always present.
        assert_eq!(
            cache.get(&9_999u32.to_le_bytes()),
            Some(Some(b"v".to_vec()))
        );
    }
}
