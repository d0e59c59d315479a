//! The active expiry scan: keys whose TTL ran out in segments still in
//! use. The whole-segment sweep (`CacheHandle::maintain`) frees a sealed
//! segment once its last item expired; until then, and in a writer's
//! active segment, an expired key would leave only when something read it:
//! DBSIZE and INFO keyspace would go on counting it and no `expired`
//! keyspace event would fire (Redis expires such keys within about a
//! second by sampling its table of keys with a TTL).
//!
//! The scan walks the segments whose earliest expiry (`Seg::min_expire`)
//! passed far enough into the spread of their expiries that about a
//! tenth of their items may have expired (`Seg::expiry_due`), a bounded
//! number of item headers per call, and expires each
//! expired item the index still points at, as a read of the key would: its
//! home locked, the entry dropped, the change log told (keyspace
//! notifications), the key counted as expired. Once it walked a sealed
//! segment it raises that segment's `min_expire` to the earliest expiry
//! still ahead, so a segment of long TTLs is not walked again until one of
//! them may have run out.
//!
//! A segment may be evicted and reused under the walk: what it reads is a
//! hint (a parse that fails ends the segment's walk), and nothing is
//! removed unless, under the key's home lock, the key's entry points at
//! the item and the item, read again there, has expired.

use crate::cache::Cache;
use crate::expire_cursor::ScanPos;
use crate::index::{Entry, KeyHash};
use crate::region::SharedBytes;
use crate::segment::{Seg, State};
use crate::sync::Ordering;
use crate::writer::Writer;

/// Item headers one call reads at most.
pub(crate) const ITEMS_PER_CALL: usize = 2048;
/// Segment headers one call looks at most (most are skipped by their
/// `min_expire` at two loads each).
const SEGMENTS_PER_CALL: u32 = 1024;

/// What one call did.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ScanStep {
    /// Item headers read.
    pub items: usize,
    /// Keys expired.
    pub expired: u64,
}

impl Writer {
    /// One bounded step of the scan (up to `ITEMS_PER_CALL` items).
    pub(crate) fn expire_scan(&mut self, cache: &Cache) -> ScanStep {
        let n = cache.geo().segments;
        let mut step = ScanStep::default();
        let mut looked = 0;
        while step.items < ITEMS_PER_CALL && looked < SEGMENTS_PER_CALL.min(n) {
            let seg = cache.seg(self.expire.at.seg % n);
            let entered = self.expire.at.off != 0;
            let due = entered || seg.expiry_due(self.now);
            if due && !self.walk_segment(cache, seg, &mut step) {
                return step; // out of budget inside the segment
            }
            self.expire.at = ScanPos::entering((self.expire.at.seg % n + 1) % n);
            looked += 1;
        }
        step
    }

    /// Walks `seg` from the cursor; false when the budget ran out first
    /// (the cursor then says where to go on).
    fn walk_segment(&mut self, cache: &Cache, seg: Seg<'_>, step: &mut ScanStep) -> bool {
        let state = seg.state();
        if !matches!(state, Some(State::Active | State::Sealed)) {
            return true;
        }
        // ORDERING: Relaxed: a hint (see the module's comment).
        let created = seg.created_ms().load(Ordering::Relaxed);
        if self.expire.at.off == 0 || created != self.expire.at.created {
            self.expire.at.off = 0;
            self.expire.at.created = created;
            // ORDERING: Relaxed, as above.
            self.expire.at.hint = seg.min_expire().load(Ordering::Relaxed);
            self.expire.at.ahead = u64::MAX;
        }
        // ORDERING: Acquire pairs with the Release of `Writer::commit`:
        // the items below it are complete.
        let end = seg.write_off().load(Ordering::Acquire) as usize;
        let mut off = self.expire.at.off;
        while off < end {
            if step.items >= ITEMS_PER_CALL {
                self.expire.at.off = off;
                return false;
            }
            step.items += 1;
            let at = Entry::new(0, seg.id, off as u32, 0);
            let Some(item) = cache.item_at(at, 0) else {
                return true; // reused under us, or torn: leave it
            };
            let len = item.header.total_len();
            if len == 0 || off + len > end {
                return true;
            }
            match item.expire_at() {
                Some(t) if t <= self.now => {
                    step.expired += u64::from(self.expire_item(cache, item.key, at));
                }
                Some(t) => self.expire.at.ahead = self.expire.at.ahead.min(t),
                None => {}
            }
            off += len;
        }
        self.raise_hint(seg, state);
        true
    }

    /// A sealed segment walked whole gets no new items: nothing in it
    /// expires before the earliest expiry still ahead.
    fn raise_hint(&self, seg: Seg<'_>, state: Option<State>) {
        let c = self.expire.at;
        // ORDERING: Relaxed: a hint (see the module's comment).
        let same = seg.created_ms().load(Ordering::Relaxed) == c.created;
        if state == Some(State::Sealed) && same && c.ahead > c.hint {
            // ORDERING: Relaxed: a hint; the CAS fails if the segment was
            // reopened (its new `min_expire` stored) since the walk began.
            let _ = seg.min_expire().compare_exchange(
                c.hint,
                c.ahead,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Expires the item at `at` (of key `key`, as read there) if the index
    /// still points at it and, read again under its home lock, it has
    /// expired.
    fn expire_item(&mut self, cache: &Cache, key: SharedBytes<'_>, at: Entry) -> bool {
        let mut copy = std::mem::take(&mut self.expire.key);
        copy.clear();
        key.append_to(&mut copy);
        let expired = self.expire_key(cache, &copy, at);
        self.expire.key = copy;
        expired
    }

    /// Expires `key` if its entry points at `at` (location only) and its
    /// item there has expired.
    fn expire_key(&mut self, cache: &Cache, key: &[u8], at: Entry) -> bool {
        let h = KeyHash::of(key);
        let target = Entry::new(h.tag(), at.seg(), at.off(), 0).location();
        let locks = cache.locks();
        let home = h.home(cache.geo());
        // Most expired items of a live segment were overwritten or deleted
        // since: a lookup (no lock) says whether the key is still this item.
        let v = locks.read_begin(home);
        match cache.find(h, key, v) {
            Some((_, e, _)) if e.location() == target => {}
            _ if locks.read_validate(home, v) => return false,
            _ => {} // raced a writer: look under the lock
        }
        // Under the lock the entry `find` loads is the slot's (readers only
        // bump its frequency bits), and its item neither changes nor goes.
        let v = locks.lock(home);
        let found = cache
            .find(h, key, v)
            .filter(|(_, e, item)| e.location() == target && item.is_expired(self.now))
            .map(|(slot, e, item)| (slot, e, item.key));
        let Some((slot, e, stored_key)) = found else {
            locks.unlock(home, v);
            return false;
        };
        let dropped = self.unlink_locked(cache, (h, slot, e), stored_key, true);
        locks.unlock(home, v);
        self.count_removed(cache, true, dropped);
        self.free_collected(cache);
        true
    }
}
