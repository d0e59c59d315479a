//! RANDOMKEY: a random live key of the handle's namespace.
//!
//! Every namespace shares one index, so a namespace that holds a small
//! share of the keys (database 1's few keys beside database 0's million)
//! is rarely hit by random probes. Four steps, cheapest first:
//!
//! 1. An empty namespace answers at once (its counters,
//!    `Cache::namespace_counts`).
//! 2. The keys a walk found last time, while they are provably all of the
//!    namespace's: as many as its counter says, each still live. Then one
//!    is picked uniformly, at the cost of a lookup per key (at most
//!    [`SPARSE_KEYS`]).
//! 3. Random probes, then a bounded window from a random slot: a
//!    namespace holding a fair share of the keys stops here.
//! 4. A walk of the index from a random slot, which reads only each
//!    entry's item's namespace prefix (no lock, no hash) and verifies
//!    its own namespace's keys under their locks (`visit_slot`); it keeps
//!    up to [`SPARSE_KEYS`] + 1 keys and picks one of them. A walk that
//!    went round whole found the namespace's every key: step 2 reuses
//!    them. (The unlocked read may see an item a compaction is moving
//!    and pass over it: a key is then missed by this walk only, and the
//!    count no longer matches, so step 2 walks again.)

use crate::handle::CacheHandle;
use crate::index::{slot_off, Entry};
use crate::item::ItemRef;
use crate::namespace;
use crate::scan::Visit;
use crate::sparse_keys::SparseKeys;
use crate::sync::Ordering;

/// Most keys a walk keeps of a sparse namespace (and step 2 checks).
const SPARSE_KEYS: usize = 64;
/// Random probes, then slots of the window after them.
const PROBES: u64 = 64;
const WINDOW: u64 = 4096;
/// Slots whose items a walk loads at once.
const WALK_BATCH: u64 = 64;

impl CacheHandle {
    /// Appends a random live key of the handle's namespace to `out`; false
    /// if it has none.
    pub fn random_key(&mut self, out: &mut Vec<u8>) -> bool {
        let counted = self.cache.namespace_counts(self.ns).map(|(keys, _)| keys);
        let empty = match counted {
            Some(keys) => keys == 0,
            None => self.cache.is_empty(),
        };
        if empty {
            return false;
        }
        if let Some(keys) = counted {
            if self.pick_known_key(keys, out) {
                return true;
            }
        }
        self.probe_for_key(out) || self.walk_for_key(out)
    }

    /// Step 2: one of the keys the last walk found, when they are still
    /// the namespace's `counted` keys, every one live.
    fn pick_known_key(&mut self, counted: u64, out: &mut Vec<u8>) -> bool {
        let mut sparse = std::mem::take(&mut self.sparse_keys);
        let usable = sparse.complete
            && sparse.ns == self.ns
            && sparse.keys.len() as u64 == counted
            && sparse
                .keys
                .iter()
                .all(|key| self.peek(key, |_| ()).is_some());
        if usable {
            let key = &sparse.keys[(self.w.next_random() % counted) as usize];
            out.extend_from_slice(key);
        } else {
            sparse.complete = false;
        }
        self.sparse_keys = sparse;
        usable
    }

    /// Step 3: random probes, then a window of slots from a random one.
    fn probe_for_key(&mut self, out: &mut Vec<u8>) -> bool {
        let total = self.cache.geo().total_slots();
        let start = self.w.next_random() % total;
        for i in 0..total.min(PROBES + WINDOW) {
            let slot = if i < PROBES {
                self.w.next_random() % total
            } else {
                (start + i) % total
            };
            let append = &mut |item: &ItemRef<'_>| item.key().append_to(out);
            if self.visit_slot(slot, append) == Visit::Live {
                return true;
            }
        }
        false
    }

    /// Step 4: a walk of the whole index from a random slot, keeping up
    /// to `SPARSE_KEYS` + 1 of the namespace's keys; one of them is
    /// answered.
    fn walk_for_key(&mut self, out: &mut Vec<u8>) -> bool {
        let total = self.cache.geo().total_slots();
        let start = self.w.next_random() % total;
        let mut found: Vec<Vec<u8>> = Vec::new();
        let mut walked = 0;
        while walked < total && found.len() <= SPARSE_KEYS {
            // The items of a batch of slots are loaded in parallel (each
            // a cache miss somewhere in the file), then looked at.
            let batch = (walked..total.min(walked + WALK_BATCH)).map(|i| (start + i) % total);
            for slot in batch.clone() {
                self.prefetch_item_of(slot);
            }
            for slot in batch {
                if self.may_hold_own_key(slot) {
                    self.visit_slot(slot, &mut |item| found.push(item.key().to_vec()));
                }
            }
            walked = total.min(walked + WALK_BATCH);
        }
        let Some(pick) = (!found.is_empty()).then(|| self.w.next_random() as usize % found.len())
        else {
            return false;
        };
        out.extend_from_slice(&found[pick]);
        self.sparse_keys = SparseKeys {
            ns: self.ns,
            complete: found.len() <= SPARSE_KEYS,
            keys: found,
        };
        true
    }

    /// Starts loading the item slot `slot`'s entry names, if any.
    fn prefetch_item_of(&self, slot: u64) {
        let cache = &*self.cache;
        if let Some(e) = self.entry_at(slot) {
            if e.seg() < cache.geo().segments {
                cache
                    .region
                    .prefetch_item(cache.seg(e.seg()).data + e.off() as usize);
            }
        }
    }

    /// The entry in slot `slot`; None when empty.
    fn entry_at(&self, slot: u64) -> Option<Entry> {
        let cache = &*self.cache;
        let off = slot_off(cache.geo(), slot)?;
        // ORDERING: Acquire pairs with the Release that published the
        // entry: its item's bytes are read next.
        let e = Entry(cache.region.u64_at(off).load(Ordering::Acquire));
        (!e.is_empty()).then_some(e)
    }

    /// Whether slot `slot`'s entry may be a key of the handle's namespace:
    /// its item's namespace prefix, read without its lock (a hint:
    /// `visit_slot` verifies under the lock).
    fn may_hold_own_key(&self, slot: u64) -> bool {
        self.entry_at(slot).is_some_and(|e| {
            (self.cache.item_at(e, 0))
                .is_some_and(|item| namespace::split_shared(item.key).0 == self.ns)
        })
    }
}
