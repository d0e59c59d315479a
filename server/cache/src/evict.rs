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
//!
//! A big collection's pages (owned.rs) go only with the whole collection:
//! a page stays while its root is kept, an orphan is dropped, and
//! otherwise the root is evicted before the page.

use crate::cache::Cache;
use crate::changes::KeyChange;
use crate::index::{bucket_off, candidate_slots, Entry, KeyHash, FREQ_MAX};
use crate::layout::SEGMENT_SIZE;
use crate::layout::{slots_per_bucket, BUCKET_SLOTS, LEVELS};
use crate::segment::{Seg, State, FLAG_SUSPECT};
use crate::sync::{fence, AtomicU64, Ordering};
use crate::writer::Writer;

mod pages;
use pages::{orphan_page, OwnerLock};

/// Claims a slot for `entry` (a new key): an empty candidate, else the least
/// frequently used candidate whose home bucket is held by this transaction
/// (`held`) or can be try-locked. Never blocks, so it cannot deadlock.
/// The empty slot (nearly every claim) is taken inline; evicting a
/// candidate is out of line.
#[inline]
pub(crate) fn claim_slot(
    w: &mut Writer,
    cache: &Cache,
    h: KeyHash,
    entry: Entry,
    held: &[(u64, u64)],
) -> Option<usize> {
    if let Some(slot) = claim_empty(cache, h, entry) {
        return Some(slot);
    }
    claim_victim(w, cache, h, entry, held)
}

/// `claim_slot` when every candidate is taken: evicts the least frequently
/// used one it can lock.
#[inline(never)]
fn claim_victim(
    w: &mut Writer,
    cache: &Cache,
    h: KeyHash,
    entry: Entry,
    held: &[(u64, u64)],
) -> Option<usize> {
    let geo = cache.geo();
    for freq in 0..=FREQ_MAX {
        for slot in candidate_slots(geo, h) {
            // ORDERING: Acquire pairs with the Release that published the
            // victim's entry: we parse its item next (to find its home).
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

/// Claims an empty candidate slot for `entry`, in probe order; the
/// caller holds the key's home lock. A slot of the home bucket is only
/// ever filled or emptied under that lock (every key that may live there
/// has this home; readers' frequency bumps CAS only an entry they saw, so
/// never an empty slot): one seen empty is ours, and a plain store claims
/// it (a CAS is a locked instruction, which waits for the item's stores
/// to drain). A deeper bucket's slots are shared with other homes'
/// keys: there only one seen empty is tried with a CAS, which settles
/// races (at 1M keys most home slots are taken, and a failing CAS costs
/// as much as a store). A bucket's eight words take one bounds check.
#[inline]
fn claim_empty(cache: &Cache, h: KeyHash, entry: Entry) -> Option<usize> {
    let geo = cache.geo();
    for level in 0..LEVELS {
        let base = bucket_off(geo, level, h.bucket(level, geo));
        let words = cache.region.bucket_at(base);
        // The home's word 0 is its lock, not an entry.
        let first = BUCKET_SLOTS - slots_per_bucket(level);
        for (word, i) in words[first..].iter().zip(first..) {
            // ORDERING: Relaxed: at home the lock (Acquire) ordered this
            // load after every store of the slot; deeper, only a guess
            // that the CAS decides.
            if word.load(Ordering::Relaxed) == 0 && fill_empty(word, entry, level == 0) {
                let slot = base + 8 * i;
                cache.occupancy().claimed(slot);
                return Some(slot);
            }
        }
    }
    None
}

/// Stores `entry` into the empty slot `word`: a plain store in the home
/// bucket (the slot is the lock holder's), a CAS deeper (false: another
/// home's key took it first).
#[inline(always)]
fn fill_empty(word: &AtomicU64, entry: Entry, at_home: bool) -> bool {
    if at_home {
        // ORDERING: Release publishes our item's bytes to readers that
        // load the entry with Acquire (`Cache::find`), and heads the
        // release sequence that readers' frequency bumps continue.
        word.store(entry.0, Ordering::Release);
        return true;
    }
    // ORDERING: Release on success, as the store above; Relaxed on
    // failure: the slot was just taken, the caller tries the next.
    word.compare_exchange(0, entry.0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
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
            .map(|item| KeyHash::of_shared(item.key).home(cache.geo()))
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
    // ORDERING: Acquire, as above; the home lock (Acquire) already orders
    // this after the victim's last change under that lock.
    let cur = word.load(Ordering::Acquire);
    let stable = Entry(cur).location() == victim.location() && home_of(victim) == Some(home);
    let page = stable && cache.item_at(victim, 0).is_some_and(|item| item.is_page());
    // A live page goes only with its whole collection: its root first
    // (try-locks only: this transaction holds its homes).
    let owner_lock = OwnerLock::Try {
        held,
        victim: (home, v),
    };
    let orphaned = !page
        || cache
            .item_at(victim, 0)
            .is_some_and(|item| orphan_page(w, cache, item.key, owner_lock));
    // ORDERING: AcqRel: Release publishes our item (as in the first loop);
    // Acquire orders a reader's concurrent frequency bump (a Relaxed RMW in
    // the entry's release sequence) before our unlink. Relaxed on failure:
    // a reader bumped the frequency meanwhile; another candidate will do.
    let ok = stable
        && orphaned
        && word
            .compare_exchange(cur, entry.0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
    if ok {
        if w.changes.enabled {
            if let Some(item) = cache.item_at(victim, 0) {
                // Its home is locked: the victim's bytes are stable.
                w.changes.record_shared(item.key, KeyChange::Evicted);
            }
        }
        w.dropped(cache, victim);
        if crate::index::is_overflow(cache.geo(), slot) {
            locks.adjust_overflow(home, -1, 0);
        }
    }
    locks.unlock(home, v);
    if ok {
        w.count_removed(cache, false, page);
    }
    ok
}

/// Picks a SEALED segment to evict and marks it EVICTING.
pub(crate) fn pick_victim<'c>(cache: &'c Cache, now: u64) -> Option<Seg<'c>> {
    let n = cache.geo().segments as u64;
    for _ in 0..4 {
        // ORDERING: Relaxed: a process-local clock hand; any value will do.
        let start = cache.evict_hand.fetch_add(16, Ordering::Relaxed);
        let mut best: Option<(u64, Seg<'c>)> = None;
        for i in 0..n.min(32) {
            let seg = cache.seg(((start + i) % n) as u32);
            if seg.state() != Some(State::Sealed) {
                continue;
            }
            // ORDERING: Relaxed: a hint for choosing; the sweep re-reads
            // `live` with Acquire before relying on it.
            if seg.live().load(Ordering::Relaxed) == 0 || seg.is_expired(now) {
                best = Some((0, seg));
                break;
            }
            // ORDERING: Relaxed: a hint for choosing the oldest.
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
        // A segment that was live during a crash may hold bytes the walk
        // cannot parse as the items they are (torn or corrupt): moving kept
        // items forward could overwrite live items the walk never met
        // before the walk learns that it missed them. Keep nothing there.
        // ORDERING: Relaxed: set by recovery before the cache was shared.
        let suspect = seg.flags().load(Ordering::Relaxed) & FLAG_SUSPECT != 0;
        let kept = self.sweep(cache, seg, !suspect);
        self.free_collected(cache);
        let kept = kept?;
        // ORDERING: Relaxed for these header fields: we own the EVICTING
        // segment; `set_state` below publishes them (Release).
        seg.class().store(class as u32, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        seg.created_ms().store(self.now, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        seg.flags().store(0, Ordering::Relaxed);
        let never = class == 0 || kept.max_expire == u64::MAX;
        // ORDERING: Relaxed, as above.
        seg.max_expire().store(
            if never {
                u64::MAX
            } else {
                kept.max_expire.max(1)
            },
            Ordering::Relaxed,
        );
        // ORDERING: Release, as `Writer::commit`: the kept items' moved
        // bytes come first.
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
        // ORDERING: Acquire pairs with the Release of `Writer::commit` (the
        // items' bytes); the Sealed -> Evicting transition already acquired it.
        let end = seg.write_off().load(Ordering::Acquire) as usize;
        let mut kept = Kept::default();
        let mut off = 0usize;
        // Without retention every processed item leaves, so `live` counts only
        // items still ahead and reaching 0 ends the walk early. With
        // retention, writers may concurrently drop kept items, so `live`
        // says nothing about what is ahead: walk to the end.
        while off < end && (retain || seg.live_items() > 0) {
            let Some(len) = cache.item_len_at(seg, off).filter(|&l| off + l <= end) else {
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
        if seg.live_items() > kept.items {
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
        let h = KeyHash::of_shared(item.key);
        let target = Entry::new(h.tag(), seg.id, off as u32, 0).location();
        let locks = cache.locks();
        let home = h.home(cache.geo());
        // ORDERING: Acquire, as readers load entries (`Cache::find`): with
        // `read_validate` it makes an unlink by another writer (its home
        // lock) happen before our reuse of these bytes.
        let points_here =
            |s: &usize| Entry(cache.region.u64_at(*s).load(Ordering::Acquire)).location() == target;
        // Most items of an old segment are dead: confirm that optimistically,
        // without writing the lock's cache line.
        let v = locks.read_begin(home);
        if !candidate_slots(cache.geo(), h).any(|s| points_here(&s)) && locks.read_validate(home, v)
        {
            return;
        }
        let page = item.is_page();
        // A page stays while its root is kept (read since written) and
        // there is room; otherwise its whole collection goes, root first,
        // so no root ever outlives one of its pages (owned.rs).
        let keep_page = page && {
            let room = kept.bytes + len <= SEGMENT_SIZE / 2 && !item.header.is_large();
            let owner = self.page_owner_freq(cache, item.key);
            let keep = !drop_all && room && owner.is_some_and(|freq| freq > 0);
            if owner.is_some() && !keep {
                orphan_page(self, cache, item.key, OwnerLock::Wait);
            }
            keep
        };
        let v = locks.lock(home);
        let Some(slot) = candidate_slots(cache.geo(), h).find(points_here) else {
            locks.unlock(home, v);
            return;
        };
        let word = cache.region.u64_at(slot);
        // ORDERING: Relaxed: under the home lock (Acquire) the entry only
        // changes by readers' frequency bumps, which the CAS below handles.
        let e = Entry(word.load(Ordering::Relaxed));
        let expired = drop_all && seg.is_expired(self.now) || item.is_expired(self.now);
        let keep = if page {
            keep_page
        } else {
            !drop_all
                && !expired
                && e.freq() > 0
                && !item.header.is_large()
                && kept.bytes + len <= SEGMENT_SIZE / 2
        };
        if keep {
            let moved = Entry::new(h.tag(), seg.id, kept.bytes as u32, 0);
            move_to_front(cache, seg, (off, kept.bytes, len), moved, word);
            kept.bytes += len;
            kept.items += 1;
            kept.max_expire = kept.max_expire.max(item.expire_at().unwrap_or(u64::MAX));
            locks.unlock(home, v);
            return;
        }
        // ORDERING: Release, as every entry store (readers load with Acquire).
        word.store(0, Ordering::Release);
        cache.occupancy().cleared(slot);
        cache.count_overflow(h, slot, -1);
        self.dropped(cache, e);
        let change = if expired {
            KeyChange::Expired
        } else {
            KeyChange::Evicted
        };
        self.changes.record_shared(item.key, change);
        locks.unlock(home, v);
        self.count_removed(cache, expired, page);
    }
}

/// Moves a kept item (home locked) from `off` to `dest` at the front of its
/// compacting segment and repoints its entry `word` at `moved`, one
/// frequency step lower.
fn move_to_front(
    cache: &Cache,
    seg: Seg<'_>,
    (off, dest, len): (usize, usize, usize),
    moved: Entry,
    word: &AtomicU64,
) {
    if dest != off {
        // ORDERING: Release fence, pairing with the Acquire fence in
        // `Locks::read_validate`: the home locks of every item that lived
        // at `dest` (taken by us in this sweep, or by the writers that
        // unlinked them, acquired through `live_items` or the entries) and
        // of this item happen before the moved bytes, so a reader that sees
        // one of them sees a changed version.
        fence(Ordering::Release);
        // dest..dest+len held only items already unlinked or moved under
        // their home locks; we hold this item's home lock.
        cache.region.move_down(seg.data + off, seg.data + dest, len);
    }
    // ORDERING: Relaxed: a guess for the CAS, which validates it.
    let mut cur = word.load(Ordering::Relaxed);
    // ORDERING: Release publishes the moved bytes to readers that load the
    // entry with Acquire; Relaxed on failure (a reader's frequency bump):
    // retry with the value seen.
    while let Err(now) = word.compare_exchange_weak(
        cur,
        moved.with_freq(Entry(cur).freq().saturating_sub(1)).0,
        Ordering::Release,
        Ordering::Relaxed,
    ) {
        cur = now;
    }
}
