//! Segments of the value log: their headers, states and the free list.
//!
//! A segment is SEGMENT_SIZE bytes that one writer fills front to back
//! (ACTIVE), then SEALED; eviction and expiry reclaim whole segments
//! (EVICTING, then FREE). Values too big for one segment are stored in CHUNK
//! segments owned by the item that names them.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use crate::layout::{Geometry, H_FREE_HEAD, SEGMENT_HEADER_BYTES, SEGMENT_SIZE};
use crate::region::Region;

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
    pub fn new(region: &'a Region, geo: &Geometry, id: u32) -> Seg<'a> {
        debug_assert!(id < geo.segments);
        Seg {
            region,
            hdr: geo.seghdr_off + id as usize * SEGMENT_HEADER_BYTES,
            id,
            data: geo.segdata_off + id as usize * SEGMENT_SIZE,
        }
    }
    pub fn state_word(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr)
    }
    pub fn state(&self) -> Option<State> {
        State::from_u32(self.state_word().load(Ordering::Acquire))
    }
    pub fn set_state(&self, s: State) {
        self.state_word().store(s as u32, Ordering::Release);
    }
    pub fn transition(&self, from: State, to: State) -> bool {
        self.state_word()
            .compare_exchange(from as u32, to as u32, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
    pub fn class(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 4)
    }
    /// Bytes of complete items (stored after the item bytes, Release).
    pub fn write_off(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 8)
    }
    /// Items of this segment that the index points at.
    pub fn live(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 12)
    }
    fn next_free(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 16)
    }
    pub fn flags(&self) -> &'a AtomicU32 {
        self.region.u32_at(self.hdr + 20)
    }
    pub fn created_ms(&self) -> &'a AtomicU64 {
        self.region.u64_at(self.hdr + 24)
    }
    /// Latest expiry of any item in the segment (u64::MAX: some item never
    /// expires, so the segment never expires as a whole).
    pub fn max_expire(&self) -> &'a AtomicU64 {
        self.region.u64_at(self.hdr + 32)
    }
    /// Complete bytes of this segment from item offset `off` to its end.
    pub fn bytes_from(&self, off: usize) -> &'a [u8] {
        self.region
            .bytes(self.data + off, SEGMENT_SIZE.saturating_sub(off))
            .unwrap_or(&[])
    }
    pub fn reset(&self, state: State, class: usize, now_ms: u64) {
        self.class().store(class as u32, Ordering::Relaxed);
        self.write_off().store(0, Ordering::Relaxed);
        self.live().store(0, Ordering::Relaxed);
        self.flags().store(0, Ordering::Relaxed);
        self.created_ms().store(now_ms, Ordering::Relaxed);
        self.max_expire()
            .store(if class == 0 { u64::MAX } else { 1 }, Ordering::Relaxed);
        self.set_state(state);
    }
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.max_expire().load(Ordering::Relaxed) <= now_ms
    }
}

/// The lock-free free list: a Treiber stack whose head packs an ABA tag.
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
        let mut cur = head.load(Ordering::Acquire);
        loop {
            let top = (cur & 0xFFFF_FFFF) as u32;
            if top == 0 {
                return None;
            }
            let seg = Seg::new(self.region, self.geo, top - 1);
            let next = seg.next_free().load(Ordering::Relaxed) as u64;
            let new = ((cur >> 32).wrapping_add(1) << 32) | next;
            match head.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    // ORDERING: every removal of an index entry into this
                    // segment happened before it was pushed (Release) and so
                    // before this pop (Acquire); this fence orders those
                    // version bumps before our writes into the segment, so a
                    // reader that sees a reused byte fails validation.
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
        let mut cur = head.load(Ordering::Relaxed);
        loop {
            seg.next_free()
                .store((cur & 0xFFFF_FFFF) as u32, Ordering::Relaxed);
            let new = ((cur >> 32).wrapping_add(1) << 32) | (seg.id as u64 + 1);
            match head.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Rebuilds the list from segment states (attach after a crash; single-threaded).
    pub fn rebuild(&self) -> u32 {
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
