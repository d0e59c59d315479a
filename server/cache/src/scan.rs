//! Iteration: SCAN cursors and FLUSHALL (RANDOMKEY: random_key.rs).
//!
//! A SCAN cursor is a global index slot number. A key never changes slot
//! while it exists (overwrites and eviction retention update the slot in
//! place), so every key present for a whole scan is visited at least once,
//! as Redis guarantees.
//!
//! A call does bounded work: about 10 x COUNT index cache lines, where a
//! bucket walked or a key visited costs one line and a word of the
//! occupancy summary (occupancy.rs) an eighth. At each group of 8 buckets
//! the summary says whether the group may hold entries; empty groups, and
//! whole runs of them, are skipped, so a scan of an almost empty index
//! takes a few calls (a 1 GiB cache with 16 keys: 3 calls of COUNT 10).
//!
//! All of it sees the handle's namespace only (namespace.rs): another
//! namespace's key is passed over like a dead entry, and the `ItemRef`
//! handed out carries the user's key, without the namespace.

use crate::handle::CacheHandle;
use crate::index::{bucket_of_slot, first_slot_of_bucket, slot_off, Entry, KeyHash};
use crate::item::ItemRef;
use crate::layout::BUCKETS_PER_GROUP;
use crate::namespace;
use crate::sync::Ordering;

/// Scan work units: a summary word costs 1, an index line (a bucket walked,
/// a key visited) `LINE`.
const LINE: u64 = 8;
/// Work per key of COUNT, in units.
const WORK_PER_COUNT: u64 = 10 * LINE;

/// What `visit_slot` found.
#[derive(PartialEq, Eq)]
pub(crate) enum Visit {
    Empty,
    /// An entry that is not a live key (expired, a negative marker, a
    /// collection's page, moving).
    Dead,
    Live,
}

impl CacheHandle {
    /// Visits index slots from `cursor` until `count` live keys were seen
    /// (or about 10 x `count` index lines were read), skipping groups the
    /// occupancy summary shows empty, calling `f` once per live key with the
    /// key's home bucket locked; returns the next cursor (0 when the scan is
    /// complete).
    pub fn scan(&mut self, cursor: u64, count: usize, mut f: impl FnMut(&ItemRef<'_>)) -> u64 {
        let cache = self.cache.clone();
        let geo = cache.geo();
        let total = geo.total_slots();
        let count = count.max(1);
        let mut budget = count as u64 * WORK_PER_COUNT;
        let (mut slot, mut seen) = (cursor, 0usize);
        while slot < total && seen < count && budget > 0 {
            let Some((bucket, end)) = bucket_of_slot(geo, slot) else {
                break;
            };
            if bucket % BUCKETS_PER_GROUP == 0 && slot == first_slot_of_bucket(geo, bucket) {
                let next = cache.occupancy().next_occupied(bucket, &mut budget);
                if next != bucket {
                    slot = first_slot_of_bucket(geo, next);
                    continue;
                }
            }
            budget = budget.saturating_sub(LINE);
            while slot < end && seen < count {
                match self.visit_slot(slot, &mut f) {
                    Visit::Empty => {}
                    Visit::Dead => budget = budget.saturating_sub(LINE),
                    Visit::Live => {
                        budget = budget.saturating_sub(LINE);
                        seen += 1;
                    }
                }
                slot += 1;
            }
        }
        if slot >= total {
            0
        } else {
            slot
        }
    }

    /// Calls `f` on the live, unexpired key of the handle's namespace in
    /// global slot `slot`, if any (its `ItemRef` with the user's key).
    pub(crate) fn visit_slot(&mut self, slot: u64, f: &mut impl FnMut(&ItemRef<'_>)) -> Visit {
        let cache = &*self.cache;
        let Some(off) = slot_off(cache.geo(), slot) else {
            return Visit::Empty;
        };
        let word = cache.region.u64_at(off);
        // ORDERING: Acquire pairs with the Release that published the entry:
        // we parse its item (optimistically, to find its home).
        let e = Entry(word.load(Ordering::Acquire));
        if e.is_empty() {
            return Visit::Empty;
        }
        let Some(item) = cache.item_at(e, 0) else {
            return Visit::Dead;
        };
        let h = KeyHash::of_shared(item.key);
        let locks = cache.locks();
        let home = h.home(cache.geo());
        let v = locks.lock(home);
        // Under the lock the entry is stable; re-read it and its item.
        // ORDERING: Acquire, as above (the lock already orders it after the
        // last writer's store).
        let e = Entry(word.load(Ordering::Acquire));
        let visited = match cache.item_at(e, v) {
            Some(item)
                if !e.is_empty() && KeyHash::of_shared(item.key).home(cache.geo()) == home =>
            {
                // Pages of big collections are not keys (owned.rs).
                let (ns, user_key_at) = namespace::split_shared(item.key);
                let user_key = item.key.get(user_key_at..item.key.len());
                match user_key {
                    Some(user_key)
                        if ns == self.ns
                            && !(item.is_expired(self.w.now)
                                || item.is_negative()
                                || item.is_page()) =>
                    {
                        f(&ItemRef {
                            key: user_key,
                            ..item
                        });
                        Visit::Live
                    }
                    _ => Visit::Dead,
                }
            }
            _ => Visit::Dead,
        };
        locks.unlock(home, v);
        visited
    }

    /// FLUSHALL: removes every key of every namespace.
    pub fn flush_all(&mut self) {
        self.flush(None);
        self.cache.clear_namespaces_used();
    }

    /// FLUSHDB: removes every key of the handle's namespace.
    pub fn flush_namespace(&mut self) {
        self.flush(Some(self.ns));
    }

    /// The number of keys in the handle's namespace (DBSIZE): the
    /// namespace's counters (`Cache::namespace_counts`); a walk of the
    /// index only when they cannot say.
    pub fn namespace_len(&mut self) -> u64 {
        if let Some((keys, _)) = self.cache.namespace_counts(self.ns) {
            return keys;
        }
        let (mut cursor, mut keys) = (0, 0u64);
        loop {
            cursor = self.scan(cursor, 4096, |_| keys += 1);
            if cursor == 0 {
                return keys;
            }
        }
    }

    /// Removes every key (of namespace `only`, if given). Only the groups of buckets the occupancy summary
    /// shows may hold entries are walked (a group whose count is zero has
    /// no entry: every claim of a slot counts before it is published, see
    /// occupancy.rs), so the work follows what is stored, not the index's
    /// size: the whole index of an empty 1 GiB cache took ~38 ms. Each key
    /// goes as before, by its own journaled delete.
    fn flush(&mut self, only: Option<u8>) {
        let cache = self.cache.clone();
        let geo = cache.geo();
        let total = geo.total_buckets();
        let mut key = std::mem::take(&mut self.scratch.key);
        let mut group = 0;
        loop {
            let mut budget = u64::MAX;
            group = cache.occupancy().next_occupied(group, &mut budget);
            if group >= total {
                break;
            }
            let first = first_slot_of_bucket(geo, group);
            let end = first_slot_of_bucket(geo, (group + BUCKETS_PER_GROUP).min(total));
            for off in (first..end).filter_map(|slot| slot_off(geo, slot)) {
                key.clear();
                let in_scope = |key: &[u8]| only.is_none_or(|ns| namespace::split(key).0 == ns);
                if self.key_at(off, &mut key) && in_scope(&key) {
                    // Unconditionally: negative markers, which `delete`
                    // treats as absent, go too.
                    let _ = self.update_stored(&[&key], |_, ch| ch.delete(0));
                }
            }
            group += BUCKETS_PER_GROUP;
        }
        self.scratch.key = key;
        self.maintain();
    }

    /// Copies the key in the slot at `off` (expired or not) into `key`.
    fn key_at(&mut self, off: usize, key: &mut Vec<u8>) -> bool {
        let cache = &*self.cache;
        // ORDERING: Acquire, as in `visit_slot`: we copy the item's key.
        let e = Entry(cache.region.u64_at(off).load(Ordering::Acquire));
        if e.is_empty() {
            return false;
        }
        match cache.item_at(e, 0) {
            Some(item) => {
                item.key().append_to(key);
                true
            }
            None => false,
        }
    }
}
