//! Making room: index-slot eviction when a key's candidate buckets are full,
//! segment eviction when the value log is full, and the active expiry sweep.
//!
//! Segment eviction takes a SEALED segment (sampled near a moving clock hand:
//! fully expired or empty first, else the oldest) and, holding each item's
//! home lock in turn, drops it or, if it was read since it was written
//! (frequency bits > 0), moves it to the front of the same segment with a
//! lower frequency. The compacted segment becomes the evicting writer's new
//! active segment: FIFO with frequency-based retention, an approximate LFU,
//! with no second segment needed. At most half of a victim is kept for
//! its reads, so each eviction frees at least half a segment.
//!
//! The eviction policy (policy.rs) may protect items: under a volatile
//! policy those without a TTL, under noeviction every unexpired one. A
//! protected item is kept like a read one, whatever the room, so a victim
//! full of them frees nothing, and the writer that needed room fails after
//! a bounded number of victims (alloc.rs, put.rs) with OutOfMemory.
//!
//! A big collection's pages (owned.rs) go only with the whole collection:
//! a page stays while its root is kept, an orphan is dropped, and
//! otherwise the root is evicted before the page.

use crate::cache::Cache;
use crate::changes::KeyChange;
use crate::index::{candidate_slots, Entry, KeyHash};
use crate::layout::SEGMENT_SIZE;
use crate::policy::EvictionPolicy;
use crate::region::SharedBytes;
use crate::segment::{Seg, State, FLAG_SUSPECT};
use crate::sync::{fence, AtomicU64, Ordering};
use crate::writer::{Dropped, Writer};

mod pages;
mod slot;
mod victim;
use pages::{orphan_page, OwnerLock};
pub(crate) use slot::claim_slot;
pub(crate) use victim::pick_victim;

/// What a sweep kept at the front of a segment it compacted.
#[derive(Default)]
struct Kept {
    bytes: usize,
    items: u32,
    /// Latest expiry among the kept items (u64::MAX if one has no TTL).
    max_expire: u64,
    /// Earliest expiry among the kept items with a TTL.
    min_expire: Option<u64>,
}

impl Kept {
    /// Counts a kept item of `len` bytes expiring at `expire_at`.
    fn add(&mut self, len: usize, expire_at: Option<u64>) {
        self.bytes += len;
        self.items += 1;
        self.max_expire = self.max_expire.max(expire_at.unwrap_or(u64::MAX));
        if let Some(at) = expire_at {
            self.min_expire = Some(self.min_expire.map_or(at, |min| min.min(at)));
        }
    }
}

/// What a sweep keeps of the items it walks (the others leave the index).
#[derive(Clone, Copy)]
struct Retain {
    /// Items read since they were written, up to half the segment.
    read: bool,
    /// Unexpired items the policy may not evict (all of them: pages and
    /// large items too).
    protect: Option<EvictionPolicy>,
}

impl Retain {
    const NOTHING: Retain = Retain {
        read: false,
        protect: None,
    };

    /// Keeps what `policy` protects, plus read items when `read`.
    fn by(policy: EvictionPolicy, read: bool) -> Retain {
        Retain {
            read,
            protect: policy.protects_some().then_some(policy),
        }
    }

    /// Whether an unexpired item (`has_ttl`: with an expiry) must stay.
    fn protects(self, has_ttl: bool) -> bool {
        self.protect.is_some_and(|p| !p.may_evict(has_ttl))
    }
}

impl Writer {
    /// Frees one segment, keeping only what the policy protects; false
    /// when nothing can be evicted.
    pub fn evict_one(&mut self, cache: &Cache) -> bool {
        match pick_victim(cache, self.now) {
            Some(seg) => {
                let retain = Retain::by(cache.eviction_policy(), false);
                self.empty_segment(cache, seg, retain);
                true
            }
            None => false,
        }
    }

    /// Seals this writer's active segments whose items have all left the
    /// index (deleted, unlinked, expired or overwritten) and frees them, so
    /// memory in use drops once the last key of a small data set goes,
    /// instead of when its segment fills. Upkeep calls it; a segment with
    /// an unpublished item (the write in progress) stays.
    pub fn free_emptied_actives(&mut self, cache: &Cache) {
        for class in 0..self.active.len() {
            let id_plus_one = self.active[class];
            if id_plus_one == 0 || self.dirty & (1 << class) != 0 {
                continue;
            }
            let seg = cache.seg(id_plus_one - 1);
            // ORDERING: Relaxed: this writer's own segment's write offset.
            let written = seg.write_off().load(Ordering::Relaxed) > 0;
            if !written || seg.live_items() != 0 {
                continue;
            }
            self.set_active(cache, class, 0);
            self.seal_or_free(cache, seg);
        }
    }

    /// Seals a full or retired ACTIVE segment of this writer that holds
    /// nothing unpublished, and frees it at once when none of its items
    /// is in the index any more (nothing to evict: it need not wait to be
    /// picked as a victim).
    pub fn seal_or_free(&mut self, cache: &Cache, seg: Seg<'_>) {
        if seg.transition(State::Active, State::Sealed)
            && seg.live_items() == 0
            && seg.transition(State::Sealed, State::Evicting)
        {
            self.evict_segment(cache, seg);
        }
    }

    /// Empties an EVICTING segment (fully expired or dead: nothing is kept)
    /// and returns it to the free list.
    pub fn evict_segment(&mut self, cache: &Cache, seg: Seg<'_>) {
        self.empty_segment(cache, seg, Retain::NOTHING);
    }

    /// Sweeps an EVICTING segment: to the free list when it kept nothing,
    /// else (items the policy protects) sealed again with them at its front.
    fn empty_segment(&mut self, cache: &Cache, seg: Seg<'_>, retain: Retain) {
        let kept = self.sweep(cache, seg, retain);
        match kept {
            Some(kept) if kept.items == 0 => cache.push_free(seg),
            Some(kept) => {
                reopen(seg, &kept, 0, self.now);
                seg.set_state(State::Sealed);
            }
            None => {}
        }
        self.free_collected(cache);
    }

    /// Compacts an EVICTING segment in place: frequently read items and
    /// those the policy protects move to its front, the rest leave the
    /// index; it becomes this writer's active segment for `class`. None if
    /// the segment could not be parsed.
    pub fn compact<'c>(&mut self, cache: &'c Cache, seg: Seg<'c>, class: usize) -> Option<Seg<'c>> {
        // A segment that was live during a crash may hold bytes the walk
        // cannot parse as the items they are (torn or corrupt): moving kept
        // items forward could overwrite live items the walk never met
        // before the walk learns that it missed them. Keep nothing there,
        // whatever the policy.
        // ORDERING: Relaxed: set by recovery before the cache was shared.
        let suspect = seg.flags().load(Ordering::Relaxed) & FLAG_SUSPECT != 0;
        let retain = if suspect {
            Retain::NOTHING
        } else {
            Retain::by(cache.eviction_policy(), true)
        };
        let kept = self.sweep(cache, seg, retain);
        self.free_collected(cache);
        reopen(seg, &kept?, class, self.now);
        seg.set_state(State::Active);
        Some(seg)
    }

    /// Walks every item of an EVICTING segment under its home lock: expired
    /// items and those `retain` does not keep leave the index; kept ones
    /// move to the front. None when an item cannot be parsed (the segment
    /// is then left out of use rather than reused under live entries).
    fn sweep(&mut self, cache: &Cache, seg: Seg<'_>, retain: Retain) -> Option<Kept> {
        let whole = seg.is_expired(self.now);
        let retain = if whole { Retain::NOTHING } else { retain };
        let keeps_any = retain.read || retain.protect.is_some();
        // ORDERING: Acquire pairs with the Release of `Writer::commit` (the
        // items' bytes); the Sealed -> Evicting transition already acquired it.
        let end = seg.write_off().load(Ordering::Acquire) as usize;
        let mut kept = Kept::default();
        let mut off = 0usize;
        // Without retention every processed item leaves, so `live` counts only
        // items still ahead and reaching 0 ends the walk early. With
        // retention, writers may concurrently drop kept items, so `live`
        // says nothing about what is ahead: walk to the end.
        while off < end && (keeps_any || seg.live_items() > 0) {
            let Some(len) = cache.item_len_at(seg, off).filter(|&l| off + l <= end) else {
                tracing::error!(
                    segment = seg.id,
                    off,
                    "unparsable item while evicting; segment left out of use"
                );
                return None;
            };
            self.evict_item(cache, seg, (off, len), (whole, retain), &mut kept);
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
        (off, len): (usize, usize),
        (whole, retain): (bool, Retain),
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
        let protected = !whole && retain.protects(item.expire_at().is_some());
        if protected && !page && kept.bytes == off && !item.is_expired(self.now) {
            // It stays where it is: nothing to write, so no lock either. A
            // full segment of them is walked without bumping a version,
            // so a writer whose update failed for want of room does not
            // see its own keys change and retry into the same walk.
            kept.add(len, item.expire_at());
            return;
        }
        let room = kept.bytes + len <= SEGMENT_SIZE / 2 && !item.header.is_large();
        // A page stays while its root is kept (protected, or read since
        // written and there is room); otherwise its whole collection goes,
        // root first, so no root ever outlives one of its pages (owned.rs).
        let keep_page = page && {
            let owner = self.page_owner_use(cache, item.key);
            let keep = owner
                .is_some_and(|o| retain.protects(o.has_ttl) || (retain.read && room && o.freq > 0));
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
        let expired = whole || item.is_expired(self.now);
        let keep = if page {
            keep_page
        } else {
            !expired
                && (retain.protects(item.expire_at().is_some())
                    || (retain.read && e.freq() > 0 && room))
        };
        if keep {
            let moved = Entry::new(h.tag(), seg.id, kept.bytes as u32, 0);
            move_to_front(cache, seg, (off, kept.bytes, len), moved, word);
            kept.add(len, item.expire_at());
            locks.unlock(home, v);
            return;
        }
        let dropped = self.unlink_locked(cache, (h, slot, e), item.key, expired);
        locks.unlock(home, v);
        self.count_removed(cache, expired, dropped);
    }

    /// Takes the entry `e` of `key` (hashed `h`) out of `slot`, its home
    /// locked by the caller, who unlocks it and then counts the removal
    /// (`count_removed`): the item left by expiry or eviction, and the
    /// change log says which.
    pub(crate) fn unlink_locked(
        &mut self,
        cache: &Cache,
        (h, slot, e): (KeyHash, usize, Entry),
        key: SharedBytes<'_>,
        expired: bool,
    ) -> Dropped {
        // ORDERING: Release, as every entry store (readers load with Acquire).
        cache.region.u64_at(slot).store(0, Ordering::Release);
        cache.occupancy().cleared(slot);
        cache.count_overflow(h, slot, -1);
        let dropped = self.dropped(cache, e);
        let change = if expired {
            KeyChange::Expired
        } else {
            KeyChange::Evicted
        };
        self.changes.record_shared(key, change);
        dropped
    }
}

/// Sets the header of a swept segment (EVICTING: ours) for reuse as a
/// `class` segment holding the `kept` items at its front; the caller
/// publishes it with its next state (Release).
fn reopen(seg: Seg<'_>, kept: &Kept, class: usize, now: u64) {
    // ORDERING: Relaxed for these header fields: we own the EVICTING
    // segment; the caller's `set_state` publishes them (Release).
    seg.class().store(class as u32, Ordering::Relaxed);
    // ORDERING: Relaxed, as above.
    seg.created_ms().store(now, Ordering::Relaxed);
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
    // ORDERING: Relaxed, as above.
    seg.min_expire()
        .store(kept.min_expire.unwrap_or(u64::MAX), Ordering::Relaxed);
    // ORDERING: Release, as `Writer::commit`: the kept items' moved
    // bytes come first.
    seg.write_off().store(kept.bytes as u32, Ordering::Release);
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
