//! Atomic read-modify-write over one or more keys.
//!
//! 1. Note each distinct home bucket's version, look the keys up (optimistic).
//! 2. Run the closure; its puts are written into this thread's segments now
//!    (allocation and eviction happen here, with no lock held).
//! 3. Lock the home buckets in ascending order with CAS(version read ->
//!    locked): success proves nothing changed since step 1; on failure, drop
//!    the unpublished items and start again.
//! 4. Claim index slots for new keys (undoable), then apply replacements and
//!    deletions (cannot fail), unlock (version + 2), free chunk segments.

use std::sync::atomic::Ordering;

use crate::error::WriteError;
use crate::handle::{CacheHandle, Changes, Op, Scratch};
use crate::index::{is_overflow, Entry, KeyHash};
use crate::item::ItemRef;
use crate::stats::HandleCounters;
use crate::store::Cache;
use crate::writer::Writer;

/// Gives up after this many conflicting attempts (only under pathological contention).
const MAX_ATTEMPTS: usize = 100_000;

impl CacheHandle {
    /// Atomic read-modify-write over several keys (MSETNX, RENAME, INCR, APPEND ...).
    /// `f` sees the current items (None: absent or expired) and records writes in
    /// `Changes`; they are applied atomically with respect to other writers of
    /// these keys. `f` may run more than once and must not have side effects
    /// other than through `Changes` and its return value.
    pub fn update<R>(
        &mut self,
        keys: &[&[u8]],
        mut f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes) -> R,
    ) -> Result<R, WriteError> {
        let CacheHandle { cache, w, scratch } = self;
        let cache: &Cache = cache;
        prepare(cache, keys, scratch);
        // Reuse the allocation of the items vector across calls (in-place collect).
        let mut items: Vec<Option<ItemRef<'_>>> = std::mem::take(&mut scratch.items)
            .into_iter()
            .map(|_| None)
            .collect();
        let mut result = Err(WriteError::OutOfMemory { len: 0 });
        for _ in 0..MAX_ATTEMPTS {
            snapshot(cache, w.now, keys, scratch, &mut items);
            scratch.ops.clear();
            scratch.ops.resize(keys.len(), Op::Keep);
            let mut changes = Changes {
                w,
                cache,
                keys,
                hashes: &scratch.hashes,
                canon: &scratch.canon,
                ops: &mut scratch.ops,
            };
            let r = f(&items, &mut changes);
            if scratch.ops.iter().all(|op| *op == Op::Keep) && !scratch.expired.contains(&true) {
                // Nothing to write: validating the snapshot is enough.
                let locks = cache.locks();
                if scratch
                    .homes
                    .iter()
                    .all(|&(home, v)| locks.read_validate(home, v))
                {
                    result = Ok(r);
                    break;
                }
                continue;
            }
            if !lock_homes(cache, &scratch.homes) {
                discard_all(w, cache, &scratch.ops);
                continue;
            }
            if !claim_slots(w, cache, scratch) {
                unlock_homes(cache, &scratch.homes);
                discard_all(w, cache, &scratch.ops);
                std::hint::spin_loop();
                continue;
            }
            apply(w, cache, scratch);
            unlock_homes(cache, &scratch.homes);
            w.free_collected(cache);
            w.seal_pending(cache);
            result = Ok(r);
            break;
        }
        items.clear();
        scratch.items = items.into_iter().map(|_| None).collect();
        result
    }
}

/// Hashes, canonical indices (duplicate keys share one), sorted distinct homes.
fn prepare(cache: &Cache, keys: &[&[u8]], s: &mut Scratch) {
    s.hashes.clear();
    s.canon.clear();
    s.homes.clear();
    for (i, key) in keys.iter().enumerate() {
        let h = KeyHash::of(key);
        let first = (0..i)
            .find(|&j| s.hashes[j].0 == h.0 && keys[j] == *key)
            .unwrap_or(i);
        s.hashes.push(h);
        s.canon.push(first);
        s.homes.push((h.home(cache.geo()), 0));
    }
    s.homes.sort_unstable();
    s.homes.dedup_by_key(|(home, _)| *home);
}

/// Records each home's version, then looks every key up.
fn snapshot<'c>(
    cache: &'c Cache,
    now: u64,
    keys: &[&[u8]],
    s: &mut Scratch,
    items: &mut Vec<Option<ItemRef<'c>>>,
) {
    let locks = cache.locks();
    for (home, v) in s.homes.iter_mut() {
        *v = locks.read_begin(*home);
    }
    items.clear();
    s.found.clear();
    s.expired.clear();
    for (i, key) in keys.iter().enumerate() {
        let home = s.hashes[i].home(cache.geo());
        let version = s
            .homes
            .iter()
            .find(|(h, _)| *h == home)
            .map_or(0, |(_, v)| *v);
        let found = cache.find(s.hashes[i], key, version);
        let expired = matches!(&found, Some((_, _, item)) if item.is_expired(now));
        s.found.push(found.as_ref().map(|(slot, e, _)| (*slot, *e)));
        s.expired.push(expired);
        // Expired items and negative markers are absent to the closure (a
        // put still replaces the marker in its slot).
        items.push(
            found
                .filter(|(_, _, item)| !expired && !item.is_negative())
                .map(|(_, _, item)| item),
        );
    }
    // Every item carries its home bucket's version for the caller's CAS needs.
    for (i, item) in items.iter_mut().enumerate() {
        if let Some(item) = item {
            let home = s.hashes[i].home(cache.geo());
            item.version = s
                .homes
                .iter()
                .find(|(h, _)| *h == home)
                .map(|(_, v)| *v)
                .unwrap_or(0);
        }
    }
}

fn lock_homes(cache: &Cache, homes: &[(u64, u64)]) -> bool {
    let locks = cache.locks();
    for (n, &(home, v)) in homes.iter().enumerate() {
        if !locks.lock_at(home, v) {
            for &(home, v) in &homes[..n] {
                locks.unlock(home, v);
            }
            return false;
        }
    }
    true
}

fn unlock_homes(cache: &Cache, homes: &[(u64, u64)]) {
    let locks = cache.locks();
    for &(home, v) in homes {
        locks.unlock(home, v);
    }
}

fn discard_all(w: &mut Writer, cache: &Cache, ops: &[Op]) {
    for op in ops {
        if let Op::Put { seg, off, .. } = *op {
            w.discard(cache, seg, off);
        }
    }
}

/// Gives every new key a slot; on failure releases the slots claimed so far.
fn claim_slots(w: &mut Writer, cache: &Cache, s: &mut Scratch) -> bool {
    s.claimed.clear();
    for i in 0..s.ops.len() {
        let Op::Put { seg, off, .. } = s.ops[i] else {
            continue;
        };
        if s.found[i].is_some() {
            continue;
        }
        let entry = Entry::new(s.hashes[i].tag(), seg, off, 0);
        match crate::evict::claim_slot(w, cache, s.hashes[i], entry, &s.homes) {
            Some(slot) => {
                s.found[i] = Some((slot, Entry::EMPTY));
                s.claimed.push(i);
                count_overflow(cache, s.hashes[i], slot, 1);
            }
            None => {
                for &j in &s.claimed {
                    let (slot, _) = s.found[j].take().expect("claimed");
                    cache.region.u64_at(slot).store(0, Ordering::Release);
                    count_overflow(cache, s.hashes[j], slot, -1);
                }
                return false;
            }
        }
    }
    true
}

/// Publishes puts and deletions; the homes are locked and the slots claimed.
fn apply(w: &mut Writer, cache: &Cache, s: &mut Scratch) {
    let mut delta = 0i64;
    let mut expirations = 0u64;
    for i in 0..s.ops.len() {
        let Some((slot, old)) = s.found[i] else {
            continue;
        };
        let word = cache.region.u64_at(slot);
        match s.ops[i] {
            Op::Put { seg, off, ttl } => {
                let new = Entry::new(s.hashes[i].tag(), seg, off, 0);
                if old.is_empty() {
                    word.store(new.0, Ordering::Release);
                    delta += 1;
                } else {
                    // Readers may bump the frequency bits meanwhile; keep them.
                    let mut cur = word.load(Ordering::Relaxed);
                    while let Err(now) = word.compare_exchange_weak(
                        cur,
                        new.with_freq(Entry(cur).freq()).0,
                        Ordering::Release,
                        Ordering::Relaxed,
                    ) {
                        cur = now;
                    }
                    w.unlinked(cache, old);
                    if s.expired[i] {
                        expirations += 1;
                    }
                }
                cache.seg(seg).live().fetch_add(1, Ordering::Relaxed);
                if ttl {
                    w.add_to(cache, crate::store::W_EXPIRES, 1);
                }
            }
            Op::Delete | Op::Keep
                if !old.is_empty() && (s.ops[i] == Op::Delete || s.expired[i]) =>
            {
                word.store(0, Ordering::Release);
                count_overflow(cache, s.hashes[i], slot, -1);
                w.unlinked(cache, old);
                delta -= 1;
                if s.expired[i] {
                    expirations += 1;
                }
            }
            _ => {}
        }
        // A duplicate key index shares the canonical one's slot: apply once.
        s.found[i] = None;
        for j in i + 1..s.ops.len() {
            if s.canon[j] == i {
                s.found[j] = None;
            }
        }
    }
    w.add_keys(cache, delta);
    if expirations > 0 {
        HandleCounters::bump(&w.counters(cache).expirations, expirations);
    }
}

/// Keeps the home bucket's count of keys stored outside it (home locked).
pub(crate) fn count_overflow(cache: &Cache, h: KeyHash, slot: usize, delta: i64) {
    if is_overflow(cache.geo(), slot) {
        cache.locks().adjust_overflow(h.home(cache.geo()), delta);
    }
}
