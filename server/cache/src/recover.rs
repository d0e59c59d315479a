//! Attaching an existing file: a clean attach seals what the last owner's
//! writers left active; after a crash, recovery rebuilds every derived
//! structure from the index and trusts nothing it cannot check.
//!
//! Recovery runs single-threaded before the cache is shared, so every
//! atomic access in this file is Relaxed except where noted.

use crate::cache::Cache;
use crate::edit::check_matches;
use crate::index::{all_slot_offs, candidate_slots, is_overflow, level_of, Entry, KeyHash};
use crate::journal::Replayed;
use crate::layout::{
    BUCKETS_PER_GROUP, MAX_WRITERS, SEGMENT_SIZE, W_EXPIRES, W_KEYS, W_NS_EXPIRES, W_NS_KEYS,
};
use crate::namespace::{self, MAX_NAMESPACES};
use crate::segment::{State, FLAG_SUSPECT, TTL_CLASSES};
use crate::sync::Ordering;

/// What recovery learned about one entry's item.
struct Recovered {
    home: u64,
    has_ttl: bool,
    /// A page of a big collection: not a key (owned.rs).
    page: bool,
    /// Its key's namespace.
    ns: u8,
}

/// Keys and keys with a TTL, in all and per namespace: what the writer
/// slots' counters add up to.
#[derive(Default)]
struct Census {
    keys: u64,
    expires: u64,
    ns_keys: [u64; MAX_NAMESPACES],
    ns_expires: [u64; MAX_NAMESPACES],
}

impl Census {
    fn count(&mut self, r: &Recovered) {
        self.expires += u64::from(r.has_ttl);
        self.keys += u64::from(!r.page);
        if let Some(lane) = namespace::counter_lane(r.ns) {
            self.ns_expires[lane] += u64::from(r.has_ttl);
            self.ns_keys[lane] += u64::from(!r.page);
        }
    }
}

impl Cache {
    /// Clean attach: O(writers + segments), independent of the key count.
    pub(crate) fn reattach_clean(&self) -> u64 {
        for slot in 0..MAX_WRITERS {
            self.release_actives(slot);
        }
        self.reset_journals();
        0
    }

    /// Seals whatever active segments a writer slot recorded.
    pub(crate) fn release_actives(&self, slot: usize) {
        for class in 0..TTL_CLASSES {
            let word = self.active_word(slot, class);
            // ORDERING: AcqRel pairs with the Release store in
            // `Writer::set_active` (the handle that recorded the segment).
            let id = word.swap(0, Ordering::AcqRel);
            if id != 0 && id <= self.geo.segments {
                self.seg(id - 1).transition(State::Active, State::Sealed);
            }
        }
    }

    /// Recovery after a crash. Finishes or undoes interrupted multi-key
    /// writes (journal.rs), clears locks a dead writer held, seals its
    /// segments, and rebuilds counts (and the occupancy summary) from the index, dropping every entry that
    /// does not point at a complete, matching item in one of its key's
    /// slots (and every second entry for one key or one chunk). Items in
    /// segments that were live are marked suspect: their checks are
    /// verified when read.
    pub(crate) fn recover(&self) -> (u64, Replayed) {
        // First finish or undo the multi-key writes caught midway: this
        // only stores entries; everything below validates and recounts them.
        let replayed = self.replay_journals();
        let stuck = self.locks().reset_all();
        self.occupancy().reset();
        self.reset_segments();
        let mut owned = vec![false; self.geo.segments as usize];
        let (mut census, mut dropped) = (Census::default(), 0u64);
        for off in all_slot_offs(&self.geo) {
            let word = self.region.u64_at(off);
            // ORDERING: Relaxed: single-threaded (module comment).
            let entry = Entry(word.load(Ordering::Relaxed));
            if entry.is_empty() {
                continue;
            }
            match self.recovered_item(entry, off, &mut owned) {
                Some(r) => {
                    census.count(&r);
                    if is_overflow(&self.geo, off) {
                        self.locks()
                            .adjust_overflow(r.home, 1, level_of(&self.geo, off));
                    }
                    self.occupancy().recount(off);
                    // ORDERING: Relaxed: single-threaded.
                    self.seg(entry.seg()).live().fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    // ORDERING: Relaxed: single-threaded.
                    word.store(0, Ordering::Relaxed);
                    dropped += 1;
                }
            }
        }
        for id in 0..self.geo.segments {
            let seg = self.seg(id);
            if seg.state() == Some(State::Chunk) && !owned[id as usize] {
                seg.set_state(State::Free);
            }
        }
        self.reset_writer_slots(&census);
        let keys = census.keys;
        let free = self.free_list().rebuild();
        // Readers in other processes (`CacheReader`) may have read entries
        // this recovery dropped: invalidate their reads.
        self.locks().bump_all();
        tracing::warn!(
            keys,
            dropped,
            stuck_locks = stuck,
            free_segments = free,
            writes_rolled_back = replayed.rolled_back,
            writes_rolled_forward = replayed.rolled_forward,
            "cache recovered after an unclean shutdown"
        );
        (dropped, replayed)
    }

    /// Seals segments a dead writer had active or was evicting, frees
    /// segments in unknown states, marks live ones suspect, zeroes counts.
    fn reset_segments(&self) {
        for id in 0..self.geo.segments {
            let seg = self.seg(id);
            match seg.state() {
                Some(State::Active) | Some(State::Evicting) => seg.set_state(State::Sealed),
                None => seg.set_state(State::Free),
                _ => {}
            }
            if matches!(seg.state(), Some(State::Sealed) | Some(State::Chunk)) {
                // ORDERING: Relaxed: single-threaded.
                seg.flags().fetch_or(FLAG_SUSPECT, Ordering::Relaxed);
            }
            // A corrupt write offset must not send a sweep past the segment.
            // ORDERING: Relaxed: single-threaded.
            let end = seg.write_off().load(Ordering::Relaxed);
            // ORDERING: Relaxed: single-threaded.
            seg.write_off()
                .store(end.min(SEGMENT_SIZE as u32), Ordering::Relaxed);
            // ORDERING: Relaxed: single-threaded; recounted from the index.
            seg.live().store(0, Ordering::Relaxed);
        }
    }

    /// Forgets active segments and sets the persistent counters to the
    /// recounted totals (all in slot 0).
    fn reset_writer_slots(&self, census: &Census) {
        for slot in 0..MAX_WRITERS {
            for class in 0..TTL_CLASSES {
                // ORDERING: Relaxed: single-threaded.
                self.active_word(slot, class).store(0, Ordering::Relaxed);
            }
            let first = slot == 0;
            for (field, total) in [(W_KEYS, census.keys), (W_EXPIRES, census.expires)] {
                // ORDERING: Relaxed: single-threaded.
                self.writer_word(slot, field)
                    .store(if first { total } else { 0 }, Ordering::Relaxed);
            }
            for ns in 1..MAX_NAMESPACES {
                let counts = [
                    (W_NS_KEYS, census.ns_keys),
                    (W_NS_EXPIRES, census.ns_expires),
                ];
                for (field, totals) in counts {
                    // Wrapping past 2^32 keys: `namespace_counts` then walks.
                    let total = if first { totals[ns] as u32 } else { 0 };
                    // ORDERING: Relaxed: single-threaded.
                    self.writer_u32(slot, field + 4 * ns)
                        .store(total, Ordering::Relaxed);
                }
            }
        }
    }

    /// The item of a recovered entry in slot `off`, or None if it is torn,
    /// misplaced (not in one of its key's slots), a second entry for its key,
    /// or names a chunk that is not a chunk or already has an owner (marked
    /// in `owned` on success).
    fn recovered_item(&self, entry: Entry, off: usize, owned: &mut [bool]) -> Option<Recovered> {
        if entry.seg() >= self.geo.segments {
            return None;
        }
        let seg = self.seg(entry.seg());
        // ORDERING: Relaxed: single-threaded.
        let end = seg.write_off().load(Ordering::Relaxed) as usize;
        if seg.state() != Some(State::Sealed) || entry.off() as usize >= end {
            return None;
        }
        let item = self.item_at(entry, 0)?;
        if entry.off() as usize + item.header.total_len() > end {
            return None;
        }
        let hash = KeyHash::of_shared(item.key);
        if hash.tag() != entry.tag() || !check_matches(&item, hash.0) {
            return None;
        }
        if self.first_slot_of(hash, &item.key.to_vec()) != Some(off) {
            return None;
        }
        let chunks: Vec<u32> = item.chunk_ids().collect();
        let free_chunk = |id: &u32| {
            *id < self.geo.segments
                && !owned[*id as usize]
                && self.seg(*id).state() == Some(State::Chunk)
        };
        let mut distinct = chunks.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != chunks.len() || !chunks.iter().all(free_chunk) {
            return None;
        }
        for &id in &chunks {
            owned[id as usize] = true;
        }
        Some(Recovered {
            home: hash.home(&self.geo),
            has_ttl: item.expire_at().is_some(),
            page: item.is_page(),
            ns: namespace::split_shared(item.key).0,
        })
    }

    /// The first of `key`'s candidate slots (probe order) whose entry
    /// points at an item with this key: the one lookups find.
    fn first_slot_of(&self, hash: KeyHash, key: &[u8]) -> Option<usize> {
        candidate_slots(&self.geo, hash).find(|&slot| {
            // ORDERING: Relaxed: single-threaded.
            let e = Entry(self.region.u64_at(slot).load(Ordering::Relaxed));
            !e.is_empty()
                && e.tag() == hash.tag()
                && self.item_at(e, 0).is_some_and(|item| item.key == key)
        })
    }
}

impl Cache {
    /// Checks the index against the key count (tests and fuzzing; the cache
    /// must be quiescent): every entry names a well-formed item in one of
    /// its key's slots that a lookup of that key finds.
    #[doc(hidden)]
    pub fn audit(&self) -> Result<(), String> {
        let mut entries = 0;
        let mut per_namespace = [(0u64, 0u64); MAX_NAMESPACES];
        for off in all_slot_offs(&self.geo) {
            // ORDERING: Relaxed: the cache is quiescent.
            let e = Entry(self.region.u64_at(off).load(Ordering::Relaxed));
            if e.is_empty() {
                continue;
            }
            let item = self
                .item_at(e, 0)
                .ok_or(format!("slot at {off}: {e:?} names no item"))?;
            entries += u64::from(!item.is_page());
            let key = item.key.to_vec();
            // Namespace 0's counts are what no lane counts.
            let lane = namespace::counter_lane(namespace::split(&key).0).unwrap_or(0);
            per_namespace[lane].0 += u64::from(!item.is_page());
            per_namespace[lane].1 += u64::from(item.expire_at().is_some());
            let h = KeyHash::of(&key);
            let home = h.home(&self.geo);
            let v = self.locks().read_begin(home);
            match self.find(h, &key, v) {
                Some((found, _, _)) if found == off => {}
                other => {
                    return Err(format!(
                        "slot at {off} ({e:?}, key {key:?}) is not what a lookup finds: {:?}",
                        other.map(|(o, e, _)| (o, e))
                    ))
                }
            }
        }
        if entries != self.len() {
            return Err(format!("{entries} keys, {} counted", self.len()));
        }
        for (ns, &found) in per_namespace.iter().enumerate() {
            let counted = self.namespace_counts(ns as u8);
            if counted != Some(found) {
                return Err(format!(
                    "namespace {ns}: {found:?} (keys, with a TTL) found, {counted:?} counted"
                ));
            }
        }
        self.audit_occupancy()
    }

    /// Every group's summary count equals its entries, and a group with
    /// entries has its bit set (the cache must be quiescent).
    fn audit_occupancy(&self) -> Result<(), String> {
        let occupancy = self.occupancy();
        let mut counts = vec![0u64; self.geo.total_buckets().div_ceil(BUCKETS_PER_GROUP) as usize];
        for off in all_slot_offs(&self.geo) {
            // ORDERING: Relaxed: the cache is quiescent.
            if self.region.u64_at(off).load(Ordering::Relaxed) != 0 {
                counts[(occupancy.bucket_of(off) / BUCKETS_PER_GROUP) as usize] += 1;
            }
        }
        for (group, &n) in counts.iter().enumerate() {
            let (count, bit) = occupancy.group_state(group as u64 * BUCKETS_PER_GROUP);
            if count != n || (n > 0 && !bit) {
                return Err(format!(
                    "group {group}: {n} entries, summary says {count} (bit {bit})"
                ));
            }
        }
        Ok(())
    }
}
