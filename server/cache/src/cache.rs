//! `Cache`: the shared state every handle works on and its accessors; the
//! optimistic item lookup that reads and writes build on is in lookup.rs.

use std::path::PathBuf;

use crate::index::{is_overflow, level_of, Entry, KeyHash, Locks};
use crate::item::ItemRef;
use crate::layout::{Geometry, WRITER_SLOT_BYTES, W_ACTIVE};
use crate::lookup::Items;
use crate::occupancy::Occupancy;
use crate::policy::{EvictionPolicy, PolicyCell};
use crate::region::Region;
use crate::segment::{FreeList, Seg};
use crate::stats::Counters;
use crate::sync::{AtomicU32, AtomicU64};

pub struct Cache {
    pub(crate) region: Region,
    pub(crate) geo: Geometry,
    pub(crate) counters: Counters,
    pub(crate) max_value_size: u64,
    /// True when this attach recovered from a crash: some segments are
    /// suspect and their items' checks are verified on read.
    pub(crate) recovered: bool,
    /// Clock hand of the segment eviction sampler (process-local).
    pub(crate) evict_hand: std::sync::atomic::AtomicU64,
    /// What eviction may drop (process-local: set by the server).
    pub(crate) policy: PolicyCell,
    /// The live memory cap and the free segment count (memory_cap.rs;
    /// process-local).
    pub(crate) budget: crate::segment_budget::SegmentBudget,
    /// Until when (unix ms) expired items are hidden but not removed
    /// (`hold_expiry_until`; process-local: set by the server).
    pub(crate) expiry_held_until: std::sync::atomic::AtomicU64,
    /// Writer slots taken by live handles of this process.
    pub(crate) slots_taken: std::sync::atomic::AtomicU64,
    pub(crate) path: PathBuf,
    /// Whether the file's filesystem gives its mapping huge pages.
    pub(crate) huge_pages: crate::region::HugePages,
    /// Holds the exclusive flock for as long as the cache is open.
    pub(crate) _file: std::fs::File,
}

impl Cache {
    /// The eviction policy in effect.
    #[inline]
    pub fn eviction_policy(&self) -> EvictionPolicy {
        self.policy.get()
    }

    /// Changes what eviction may drop, live: writes from now on decide by
    /// `policy` (a segment being evicted finishes under the old one).
    pub fn set_eviction_policy(&self, policy: EvictionPolicy) {
        self.policy.set(policy);
    }

    /// Holds expiry until `until_ms` (unix ms; 0 ends the hold): until
    /// then an expired item reads as absent but stays stored, and upkeep
    /// neither expires keys nor reclaims expired segments, so the data set
    /// does not change (CLIENT PAUSE WRITE, as Redis pauses expiry). A
    /// write to such a key replaces it as before.
    pub fn hold_expiry_until(&self, until_ms: u64) {
        // ORDERING: Relaxed: a hint read at each removal; no data depends
        // on it (a removal racing the hold's start is one that came first).
        self.expiry_held_until
            .store(until_ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether expiry is held at `now_ms`.
    #[inline]
    pub fn expiry_held(&self, now_ms: u64) -> bool {
        // ORDERING: Relaxed: as `hold_expiry_until`.
        self.expiry_held_until
            .load(std::sync::atomic::Ordering::Relaxed)
            > now_ms
    }

    pub(crate) fn locks(&self) -> Locks<'_> {
        Locks {
            region: &self.region,
            geo: &self.geo,
        }
    }
    pub(crate) fn occupancy(&self) -> Occupancy<'_> {
        Occupancy {
            region: &self.region,
            geo: &self.geo,
        }
    }
    pub(crate) fn free_list(&self) -> FreeList<'_> {
        FreeList {
            region: &self.region,
            geo: &self.geo,
        }
    }
    pub(crate) fn seg(&self, id: u32) -> Seg<'_> {
        Seg::new(&self.region, &self.geo, id)
    }
    pub(crate) fn geo(&self) -> &Geometry {
        &self.geo
    }
    pub(crate) fn writer_word(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.region
            .u64_at(self.geo.writers_off + slot * WRITER_SLOT_BYTES + field)
    }

    /// A 32-bit counter of writer slot `slot` at byte `field`.
    #[inline]
    pub(crate) fn writer_u32(&self, slot: usize, field: usize) -> &AtomicU32 {
        self.region
            .u32_at(self.geo.writers_off + slot * WRITER_SLOT_BYTES + field)
    }
    pub(crate) fn active_word(&self, slot: usize, class: usize) -> &AtomicU32 {
        self.region
            .u32_at(self.geo.writers_off + slot * WRITER_SLOT_BYTES + W_ACTIVE + 4 * class)
    }

    /// Keeps the home bucket's count of keys stored outside it (home locked).
    /// Inlined: most claims are at home, and that test is all they need.
    #[inline]
    pub(crate) fn count_overflow(&self, h: KeyHash, slot: usize, delta: i64) {
        if is_overflow(&self.geo, slot) {
            self.locks()
                .adjust_overflow(h.home(&self.geo), delta, level_of(&self.geo, slot));
        }
    }

    /// The lookup view of this cache's mapping (lookup.rs).
    #[inline]
    pub(crate) fn items(&self) -> Items<'_> {
        Items {
            region: &self.region,
            geo: &self.geo,
            verify_suspect: self.recovered,
        }
    }

    /// Parses the item an entry points at (see `Items::item_at`).
    #[inline]
    pub(crate) fn item_at(&self, e: Entry, version: u64) -> Option<ItemRef<'_>> {
        self.items().item_at(e, version)
    }

    /// Length of the item at `off` of a segment being evicted (see
    /// `Items::item_len_at`).
    pub(crate) fn item_len_at(&self, seg: Seg<'_>, off: usize) -> Option<usize> {
        self.items().item_len_at(seg, off)
    }

    /// Finds `key` among its candidate slots (see `Items::find`). Always
    /// inlined: every write's lookup, and LLVM's choice moved with the
    /// crate's codegen-unit split (a call per write when it fell out).
    #[inline(always)]
    pub(crate) fn find(
        &self,
        h: KeyHash,
        key: &[u8],
        version: u64,
    ) -> Option<(usize, Entry, ItemRef<'_>)> {
        self.items().find(h, key, version)
    }
}
