//! Iteration: SCAN cursors, RANDOMKEY and FLUSHALL.
//!
//! A SCAN cursor is a global index slot number. A key never changes slot
//! while it exists (overwrites and eviction retention update the slot in
//! place), so every key present for a whole scan is visited at least once,
//! as Redis guarantees.

use crate::handle::CacheHandle;
use crate::index::{all_slot_offs, slot_off, Entry, KeyHash};
use crate::item::ItemRef;
use crate::sync::Ordering;

impl CacheHandle {
    /// Visits index slots from `cursor` until about `count` live keys were
    /// seen (or 10x`count` slots), calling `f` once per live key with the key's
    /// home bucket locked; returns the next cursor (0 when the scan is complete).
    pub fn scan(&mut self, cursor: u64, count: usize, mut f: impl FnMut(&ItemRef<'_>)) -> u64 {
        let total = self.cache.geo().total_slots();
        let (mut slot, mut seen) = (cursor, 0usize);
        let budget = count.max(1) as u64 * 10;
        let end = cursor.saturating_add(budget).min(total);
        while slot < end && seen < count.max(1) {
            if self.visit_slot(slot, &mut f) {
                seen += 1;
            }
            slot += 1;
        }
        if slot >= total {
            0
        } else {
            slot
        }
    }

    /// Calls `f` on the live, unexpired key in global slot `slot`, if any.
    fn visit_slot(&mut self, slot: u64, f: &mut impl FnMut(&ItemRef<'_>)) -> bool {
        let cache = &*self.cache;
        let Some(off) = slot_off(cache.geo(), slot) else {
            return false;
        };
        let word = cache.region.u64_at(off);
        // ORDERING: Acquire pairs with the Release that published the entry:
        // we parse its item (optimistically, to find its home).
        let e = Entry(word.load(Ordering::Acquire));
        if e.is_empty() {
            return false;
        }
        let Some(item) = cache.item_at(e, 0) else {
            return false;
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
                let live = !item.is_expired(self.w.now) && !item.is_negative();
                if live {
                    f(&item);
                }
                live
            }
            _ => false,
        };
        locks.unlock(home, v);
        visited
    }

    /// Appends a random live key to `out`; false if the cache is empty.
    pub fn random_key(&mut self, out: &mut Vec<u8>) -> bool {
        if self.cache.is_empty() {
            return false;
        }
        let total = self.cache.geo().total_slots();
        let start = self.w.next_random() % total;
        let mut found = false;
        // Random probes first, then a bounded linear walk (sparse caches).
        for i in 0..total.min(4096 + 64) {
            let slot = if i < 64 {
                self.w.next_random() % total
            } else {
                (start + i) % total
            };
            if self.visit_slot(slot, &mut |item: &ItemRef<'_>| item.key().append_to(out)) {
                found = true;
                break;
            }
        }
        if !found {
            let mut cursor = 0;
            loop {
                cursor = self.scan(cursor, 1, |item| {
                    if !found {
                        item.key().append_to(out);
                        found = true;
                    }
                });
                if found || cursor == 0 {
                    break;
                }
            }
        }
        found
    }

    /// Removes every key (O(index size), like Redis's FLUSHALL).
    pub fn flush_all(&mut self) {
        let cache = self.cache.clone();
        let mut key = std::mem::take(&mut self.scratch.key);
        for off in all_slot_offs(cache.geo()) {
            key.clear();
            if self.key_at(off, &mut key) {
                // Unconditionally: negative markers, which `delete` treats
                // as absent, go too.
                let _ = self.update(&[&key], |_, ch| ch.delete(0));
            }
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
