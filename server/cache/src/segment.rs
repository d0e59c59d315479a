//! Segments of the value log: their headers, states and the free list.
//!
//! A segment is SEGMENT_SIZE bytes that one writer fills front to back
//! (ACTIVE), then SEALED; eviction and expiry reclaim whole segments
//! (EVICTING, then FREE). Values too big for one segment are stored in CHUNK
//! segments owned by the item that names them.

use crate::layout::{Geometry, H_FREE_HEAD, SEGMENT_HEADER_BYTES, SEGMENT_SIZE};
use crate::region::Region;
use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum State {
    Free = 0,
    Active = 1,
    Sealed = 2,
    Chunk = 3,
    Evicting = 4,
}

impl State {
    pub fn from_u32(v: u32) -> Option<State> {
        Some(match v {
            0 => State::Free,
            1 => State::Active,
            2 => State::Sealed,
            3 => State::Chunk,
            4 => State::Evicting,
            _ => return None,
        })
    }
}

/// Segment flag: items must have their check verified before being served
/// (the segment was live when the previous owner crashed).
pub const FLAG_SUSPECT: u32 = 1;

/// TTL classes: 0 = no TTL, then remaining TTL up to 4^c seconds.
pub const TTL_CLASSES: usize = 11;

#[inline]
pub fn ttl_class(expire_at: Option<u64>, now_ms: u64) -> usize {
    match expire_at {
        None => 0,
        Some(at) => {
            let secs = at.saturating_sub(now_ms).div_ceil(1000).max(1);
            let log4 = (64 - (secs - 1).leading_zeros()).div_ceil(2) as usize;
            (1 + log4).min(TTL_CLASSES - 1)
        }
    }
}

/// Accessors for one segment's header and data.
#[derive(Clone, Copy)]
pub struct Seg<'a> {
    region: &'a Region,
    hdr: usize,
    pub id: u32,
    pub data: usize,
}

impl<'a> Seg<'a> {
    #[inline]
    pub fn new(region: &'a Region, geo: &Geometry, id: u32) -> Seg<'a> {
        debug_assert!(id < geo.segments);
        Seg {
            region,
            hdr: geo.seghdr_off + id as usize * SEGMENT_HEADER_BYTES,
            id,
            data: geo.segdata_off + id as usize * SEGMENT_SIZE,
        }
    }
    #[inline]
    pub fn state_word(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr)
    }
    pub fn state(&self) -> Option<State> {
        // ORDERING: Acquire pairs with the Release of `set_state` and
        // `transition`: what the last owner wrote before handing the
        // segment on (its header fields, its items) is visible.
        State::from_u32(self.state_word().load(Ordering::Acquire))
    }
    pub fn set_state(&self, s: State) {
        // ORDERING: Release pairs with the Acquire in `state` and
        // `transition`: publishes this owner's writes with the new state.
        self.state_word().store(s as u32, Ordering::Release);
    }
    pub fn transition(&self, from: State, to: State) -> bool {
        // ORDERING: AcqRel: acquires the previous owner's writes (its
        // Release) and releases ours to the next one. Sealing (Active ->
        // Sealed) and evicting (Sealed -> Evicting) hand a segment over.
        // Relaxed on failure: nothing is read.
        self.state_word()
            .compare_exchange(from as u32, to as u32, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
    #[inline]
    pub fn class(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 4)
    }
    /// Bytes of complete items (stored after the item bytes, Release).
    #[inline]
    pub fn write_off(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 8)
    }
    /// Items of this segment that the index points at.
    #[inline]
    pub fn live(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 12)
    }
    #[inline]
    fn next_free(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 16)
    }
    #[inline]
    pub fn flags(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 20)
    }
    #[inline]
    pub fn created_ms(&self) -> &'a AtomicU64 {
        self.region.u64_at(self.hdr + 24)
    }
    /// Latest expiry of any item in the segment (u64::MAX: some item never
    /// expires, so the segment never expires as a whole).
    #[inline]
    pub fn max_expire(&self) -> &'a AtomicU64 {
        self.region.u64_at(self.hdr + 32)
    }
    /// No item of the segment expires before this (u64::MAX: none has a
    /// TTL). Its writer lowers it as it appends (`Writer::commit`); the
    /// expiry scan raises it once it walked a sealed segment
    /// (expire_scan.rs). Bytes a file of an older build left zero here
    /// only make the scan walk the segment once.
    #[inline]
    pub fn min_expire(&self) -> &'a AtomicU64 {
        self.region.u64_at(self.hdr + 40)
    }
    /// Whether the expiry scan should walk the segment at `now_ms`: an
    /// item may have expired and, judging by the spread of the segment's
    /// expiries, about a tenth of them may have (or all, or the spread is
    /// unknown). Like Redis's active expiry, which stops sampling while
    /// under a tenth of its sample has expired, it leaves a few expired
    /// keys to their next read rather than walk a segment for one.
    pub fn expiry_due(&self, now_ms: u64) -> bool {
        // ORDERING: Relaxed: hints; what the scan then reads is ordered by
        // the Acquire load of `write_off`.
        let min = self.min_expire().load(Ordering::Relaxed);
        if min > now_ms {
            return false;
        }
        // ORDERING: Relaxed, as above.
        let max = self.max_expire().load(Ordering::Relaxed);
        max <= now_ms || max == u64::MAX || (now_ms - min) * 10 >= max - min
    }
    /// Counts an item of this segment that left the index; its home lock
    /// is held.
    pub fn unlink_one(&self) {
        // ORDERING: Release, and every change of `live` is a read-modify-
        // write (a release sequence), so an evictor that reads 0 with
        // Acquire (`live_items`) synchronises with every unlink: the home
        // locks taken for them (version bumps) happen before it frees the
        // segment, which the reuse fence relies on.
        self.live().fetch_sub(1, Ordering::Release);
    }
    /// Items still in the index (Acquire: see `unlink_one`).
    pub fn live_items(&self) -> u32 {
        // ORDERING: Acquire pairs with the Release of `unlink_one`.
        self.live().load(Ordering::Acquire)
    }
    /// Prepares a segment taken off the free list (only its new owner
    /// touches it until `set_state` publishes it).
    pub fn reset(&self, state: State, class: usize, now_ms: u64) {
        // ORDERING: Relaxed for these header fields: published with the
        // Release of `set_state` below.
        self.class().store(class as u32, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        self.write_off().store(0, Ordering::Relaxed);
        // ORDERING: Relaxed, as above (no item of the segment is indexed).
        self.live().store(0, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        self.flags().store(0, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        self.created_ms().store(now_ms, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        self.max_expire()
            .store(if class == 0 { u64::MAX } else { 1 }, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        self.min_expire().store(u64::MAX, Ordering::Relaxed);
        self.set_state(state);
    }
    pub fn is_expired(&self, now_ms: u64) -> bool {
        // ORDERING: Relaxed: a hint for victim choice and sweeps; an evictor
        // reads it after the Sealed -> Evicting `transition`, which acquired
        // the owner's last store.
        self.max_expire().load(Ordering::Relaxed) <= now_ms
    }
}

/// The lock-free free list: a Treiber stack whose head packs an ABA tag
/// (`tag:32 | top segment id + 1:32`; the tag grows on every change).
pub struct FreeList<'a> {
    pub region: &'a Region,
    pub geo: &'a Geometry,
}

impl<'a> FreeList<'a> {
    fn head(&self) -> &'a AtomicU64 {
        self.region.u64_at(H_FREE_HEAD)
    }

    pub fn pop(&self) -> Option<Seg<'a>> {
        let head = self.head();
        // ORDERING: Acquire pairs with the Release CAS in `push`: the
        // pusher's `next_free` store and everything before the push.
        let mut cur = head.load(Ordering::Acquire);
        loop {
            let top = (cur & 0xFFFF_FFFF) as u32;
            if top == 0 || top > self.geo.segments {
                // Empty, or a corrupt head (checked again by recovery).
                return None;
            }
            let seg = Seg::new(self.region, self.geo, top - 1);
            // ORDERING: Relaxed: ordered after the Acquire load of the head
            // that named this segment. If another thread popped it meanwhile
            // the value may be stale, but then the head's tag moved on and
            // the CAS below fails.
            let next = seg.next_free().load(Ordering::Relaxed) as u64;
            let new = ((cur >> 32).wrapping_add(1) << 32) | next;
            // ORDERING: AcqRel on success: Acquire pairs with the pusher's
            // Release CAS; Release keeps our `next_free` read ordered
            // before a later push of this segment can rewrite it. Acquire on
            // failure: we read the new top's `next_free` next.
            match head.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    // ORDERING: every removal of an index entry into this
                    // segment (a home lock, a version bump) happened before
                    // it was pushed (Release) and so before this pop
                    // (Acquire); this Release fence orders them before our
                    // writes into the segment, and pairs with the Acquire
                    // fence in `Locks::read_validate`: a reader that sees a
                    // reused byte also sees a bumped version, and retries.
                    fence(Ordering::Release);
                    return Some(seg);
                }
                Err(now) => cur = now,
            }
        }
    }

    pub fn push(&self, seg: Seg<'a>) {
        seg.set_state(State::Free);
        let head = self.head();
        // ORDERING: Relaxed: only a guess; the CAS below validates it.
        let mut cur = head.load(Ordering::Relaxed);
        loop {
            // ORDERING: Relaxed: published by the Release CAS below.
            seg.next_free()
                .store((cur & 0xFFFF_FFFF) as u32, Ordering::Relaxed);
            let new = ((cur >> 32).wrapping_add(1) << 32) | (seg.id as u64 + 1);
            // ORDERING: Release pairs with the Acquire load/CAS in `pop`:
            // our `next_free` store and all we did with the segment (the
            // unlinks of its items) happen before its next owner's writes.
            // Relaxed on failure: we only retry with the new head.
            match head.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Rebuilds the list from segment states (attach after a crash; single-threaded).
    pub fn rebuild(&self) -> u32 {
        // ORDERING: Relaxed: recovery runs single-threaded.
        self.head().store(0, Ordering::Relaxed);
        let mut free = 0;
        for id in (0..self.geo.segments).rev() {
            let seg = Seg::new(self.region, self.geo, id);
            if seg.state() == Some(State::Free) || seg.state().is_none() {
                self.push(seg);
                free += 1;
            }
        }
        free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_classes_grow_by_four() {
        assert_eq!(ttl_class(None, 0), 0);
        assert_eq!(ttl_class(Some(500), 0), 1);
        assert!(ttl_class(Some(10_000), 0) < ttl_class(Some(100_000), 0));
        assert_eq!(ttl_class(Some(u64::MAX), 0), TTL_CLASSES - 1);
    }
}
