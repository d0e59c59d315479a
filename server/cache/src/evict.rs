//! Making room: index-slot eviction when a key's candidate buckets are full,
//! segment eviction when the value log is full, and the active expiry sweep.
//!
//! Segment eviction takes a SEALED segment (sampled near a moving clock hand:
//! fully expired or empty first, else the oldest) and, holding each item's
//! home lock in turn, drops it or, if it was read since it was written
//! (frequency bits > 0), moves it to the front of the same segment with a
//! lower frequency. The compacted segment becomes the evicting writer's new
//! active segment: FIFO with frequency-based retention, an approximate LFU,
//! with no second segment needed. At most half of a victim is kept, so each
//! eviction frees at least half a segment.

use std::sync::atomic::{fence, Ordering};

use crate::handle::CacheHandle;
use crate::index::{candidate_slots, Entry, KeyHash, FREQ_MAX};
use crate::layout::SEGMENT_SIZE;
use crate::segment::{Seg, State};
use crate::stats::HandleCounters;
use crate::store::Cache;
use crate::writer::{item_len_at, Writer};

/// Claims a slot for `entry` (a new key): an empty candidate, else the least
/// frequently used candidate whose home bucket is held by this transaction
/// (`held`) or can be try-locked. Never blocks, so it cannot deadlock.
pub(crate) fn claim_slot(
    w: &mut Writer,
    cache: &Cache,
    h: KeyHash,
    entry: Entry,
    held: &[(u64, u64)],
) -> Option<usize> {
    let geo = cache.geo();
    for slot in candidate_slots(geo, h) {
        if cache
            .region
            .u64_at(slot)
            .compare_exchange(0, entry.0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Some(slot);
        }
    }
    for freq in 0..=FREQ_MAX {
        for slot in candidate_slots(geo, h) {
            let victim = Entry(cache.region.u64_at(slot).load(Ordering::Acquire));
            if victim.is_empty() || victim.freq() != freq {
                continue;
            }
            if replace_victim(w, cache, slot, victim, entry, held) {
                return Some(slot);
            }
        }
    }
    None
}

/// Replaces the entry at `slot` (another key) with `entry`, under the victim's home lock.
fn replace_victim(
    w: &mut Writer,
    cache: &Cache,
    slot: usize,
    victim: Entry,
    entry: Entry,
    held: &[(u64, u64)],
) -> bool {
    let home_of = |e: Entry| {
        cache
            .item_at(e, 0)
            .map(|item| KeyHash::of(item.key).home(cache.geo()))
    };
    let Some(home) = home_of(victim) else {
        return false;
    };
    if held.iter().any(|&(h, _)| h == home) {
        // A bucket this transaction holds may contain its own keys, which
        // must not be evicted under it; other candidates will do.
        return false;
    }
    let locks = cache.locks();
    let Some(v) = locks.try_lock(home) else {
        return false;
    };
    // Under the victim's lock its item is stable: re-check it is still there
    // and still hashes to the bucket we locked.
    let word = cache.region.u64_at(slot);
    let ok = Entry(word.load(Ordering::Acquire)).location() == victim.location()
        && home_of(victim) == Some(home)
        && word
            .compare_exchange(
                word.load(Ordering::Relaxed),
                entry.0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
    if ok {
        w.unlinked(cache, victim);
        if crate::index::is_overflow(cache.geo(), slot) {
            locks.adjust_overflow(home, -1);
        }
    }
    locks.unlock(home, v);
    if ok {
        w.add_keys(cache, -1);
        HandleCounters::bump(&w.counters(cache).evictions, 1);
    }
    ok
}

/// Picks a SEALED segment to evict and marks it EVICTING.
pub(crate) fn pick_victim<'c>(cache: &'c Cache, now: u64) -> Option<Seg<'c>> {
    let n = cache.geo().segments as u64;
    for _ in 0..4 {
        let start = cache.evict_hand.fetch_add(16, Ordering::Relaxed);
        let mut best: Option<(u64, Seg<'c>)> = None;
        for i in 0..n.min(32) {
            let seg = cache.seg(((start + i) % n) as u32);
            if seg.state() != Some(State::Sealed) {
                continue;
            }
            if seg.live().load(Ordering::Relaxed) == 0 || seg.is_expired(now) {
                best = Some((0, seg));
                break;
            }
            let created = seg.created_ms().load(Ordering::Relaxed);
            if best.as_ref().is_none_or(|(c, _)| created < *c) {
                best = Some((created, seg));
            }
        }
        if let Some((_, seg)) = best {
            if seg.transition(State::Sealed, State::Evicting) {
                return Some(seg);
            }
        }
    }
    (0..n)
        .map(|id| cache.seg(id as u32))
        .find(|seg| seg.transition(State::Sealed, State::Evicting))
}

/// What a sweep kept at the front of a segment it compacted.
#[derive(Default)]
struct Kept {
    bytes: usize,
    items: u32,
    /// Latest expiry among the kept items (u64::MAX if one has no TTL).
    max_expire: u64,
}

impl Writer {
    /// Frees one segment without keeping anything; false when nothing can be evicted.
    pub fn evict_one(&mut self, cache: &Cache) -> bool {
        match pick_victim(cache, self.now) {
            Some(seg) => {
                self.evict_segment(cache, seg);
                true
            }
            None => false,
        }
    }

    /// Empties an EVICTING segment and returns it to the free list.
    pub fn evict_segment(&mut self, cache: &Cache, seg: Seg<'_>) {
        if self.sweep(cache, seg, false).is_some() {
            cache.free_list().push(seg);
        }
        self.free_collected(cache);
    }

    /// Compacts an EVICTING segment in place: frequently read items move to
    /// its front, the rest leave the index; it becomes this writer's active
    /// segment for `class`. None if the segment could not be parsed.
    pub fn compact<'c>(&mut self, cache: &'c Cache, seg: Seg<'c>, class: usize) -> Option<Seg<'c>> {
        let kept = self.sweep(cache, seg, true);
        self.free_collected(cache);
        let kept = kept?;
        seg.class().store(class as u32, Ordering::Relaxed);
        seg.created_ms().store(self.now, Ordering::Relaxed);
        seg.flags().store(0, Ordering::Relaxed);
        let never = class == 0 || kept.max_expire == u64::MAX;
        seg.max_expire().store(
            if never {
                u64::MAX
            } else {
                kept.max_expire.max(1)
            },
            Ordering::Relaxed,
        );
        seg.write_off().store(kept.bytes as u32, Ordering::Release);
        seg.set_state(State::Active);
        Some(seg)
    }

    /// Walks every item of an EVICTING segment under its home lock: expired
    /// and unread items leave the index; with `retain`, items read since they
    /// were written (frequency bits > 0) move to the front, up to half of
    /// the segment. None when an item cannot be parsed (the segment is
    /// then left out of use rather than reused under live entries).
    fn sweep(&mut self, cache: &Cache, seg: Seg<'_>, retain: bool) -> Option<Kept> {
        let whole = seg.is_expired(self.now);
        let end = seg.write_off().load(Ordering::Acquire) as usize;
        let mut kept = Kept::default();
        let mut off = 0usize;
        // Without retention every processed item leaves, so `live` counts only
        // items still ahead and reaching 0 ends the walk early. With
        // retention, writers may concurrently drop kept items, so `live`
        // says nothing about what is ahead: walk to the end.
        while off < end && (retain || seg.live().load(Ordering::Relaxed) > 0) {
            let Some(len) = item_len_at(&seg, off, end) else {
                tracing::error!(
                    segment = seg.id,
                    off,
                    "unparsable item while evicting; segment left out of use"
                );
                return None;
            };
            self.evict_item(cache, seg, off, len, whole || !retain, &mut kept);
            off += len;
        }
        if seg.live().load(Ordering::Relaxed) > kept.items {
            // Entries still point into the segment but the walk did not meet
            // their items (a crash mid-compaction left bytes it cannot walk):
            // never reuse memory that live entries name.
            tracing::error!(
                segment = seg.id,
                "segment walk missed live items; segment left out of use"
            );
            return None;
        }
        Some(kept)
    }

    fn evict_item(
        &mut self,
        cache: &Cache,
        seg: Seg<'_>,
        off: usize,
        len: usize,
        drop_all: bool,
        kept: &mut Kept,
    ) {
        // The segment is EVICTING: only this sweep writes it.
        let Some(item) = cache.item_at(Entry::new(0, seg.id, off as u32, 0), 0) else {
            return;
        };
        let h = KeyHash::of(item.key);
        let target = Entry::new(h.tag(), seg.id, off as u32, 0).location();
        let locks = cache.locks();
        let home = h.home(cache.geo());
        let points_here =
            |s: &usize| Entry(cache.region.u64_at(*s).load(Ordering::Acquire)).location() == target;
        // Most items of an old segment are dead: confirm that optimistically,
        // without writing the lock's cache line.
        let v = locks.read_begin(home);
        if !candidate_slots(cache.geo(), h).any(|s| points_here(&s)) && locks.read_validate(home, v)
        {
            return;
        }
        let v = locks.lock(home);
        let Some(slot) = candidate_slots(cache.geo(), h)
            .find(|&s| Entry(cache.region.u64_at(s).load(Ordering::Relaxed)).location() == target)
        else {
            locks.unlock(home, v);
            return;
        };
        let word = cache.region.u64_at(slot);
        let e = Entry(word.load(Ordering::Relaxed));
        let expired = drop_all && seg.is_expired(self.now) || item.is_expired(self.now);
        let keep = !drop_all
            && !expired
            && e.freq() > 0
            && !item.header.is_large()
            && kept.bytes + len <= SEGMENT_SIZE / 2;
        if keep {
            let dest = kept.bytes;
            if dest != off {
                // ORDERING: the unlocks of the items that lived at `dest`
                // happen before these bytes change (see Region::move_within).
                fence(Ordering::Release);
                // SAFETY: dest..dest+len held only items already unlinked or
                // moved under their home locks in this sweep; we hold this
                // item's home lock, so its readers wait or retry.
                unsafe {
                    cache
                        .region
                        .move_within(seg.data + off, seg.data + dest, len)
                };
            }
            let moved = Entry::new(h.tag(), seg.id, dest as u32, 0);
            let mut cur = e.0;
            while let Err(now) = word.compare_exchange_weak(
                cur,
                moved.with_freq(Entry(cur).freq().saturating_sub(1)).0,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                cur = now;
            }
            kept.bytes += len;
            kept.items += 1;
            kept.max_expire = kept.max_expire.max(item.expire_at().unwrap_or(u64::MAX));
            locks.unlock(home, v);
            return;
        }
        word.store(0, Ordering::Release);
        crate::update::count_overflow(cache, h, slot, -1);
        self.unlinked(cache, e);
        locks.unlock(home, v);
        self.count_removed(cache, expired);
    }
}

impl CacheHandle {
    /// Background upkeep, bounded work: reclaims up to 64 segments' worth of
    /// fully expired or fully dead segments. Call every ~100 ms per thread.
    /// Returns the keys it expired.
    pub fn maintain(&mut self) -> u64 {
        let CacheHandle { cache, w, .. } = self;
        let n = cache.geo().segments as u64;
        let before = w.counters(cache).expirations.load(Ordering::Relaxed);
        for _ in 0..n.min(64) {
            let seg = cache.seg((w.sweep_cursor % n) as u32);
            w.sweep_cursor = w.sweep_cursor.wrapping_add(1);
            let reclaimable = seg.is_expired(w.now) || seg.live().load(Ordering::Relaxed) == 0;
            if seg.state() == Some(State::Sealed)
                && reclaimable
                && seg.transition(State::Sealed, State::Evicting)
            {
                w.evict_segment(cache, seg);
            }
        }
        w.counters(cache).expirations.load(Ordering::Relaxed) - before
    }
}
