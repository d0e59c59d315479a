//! Counters. Each handle writes only its own cache-line-sized block, so
//! counting costs no shared-line traffic; readers sum the blocks.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::layout::MAX_WRITERS;

#[derive(Default)]
#[repr(align(64))]
pub struct HandleCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
    pub expirations: AtomicU64,
    /// Pages of big collections deleted because their root went (owned.rs).
    pub reclaimed_pages: AtomicU64,
    /// Pages this handle has queued for reclaim and not yet looked at.
    pub reclaim_pending: AtomicU64,
    /// Dropped roots of big collections whose pages were all deleted in
    /// the background (Redis's `lazyfreed_objects`).
    pub lazyfreed_roots: AtomicU64,
    /// Dropped roots this handle has queued with pages still to hand out
    /// (Redis's `lazyfree_pending_objects`).
    pub reclaim_pending_roots: AtomicU64,
    /// Multi-key writes too big for the journal (update.rs).
    pub journal_overflows: AtomicU64,
}

impl HandleCounters {
    /// Single-writer increment: a plain load and store, no locked instruction.
    #[inline]
    pub fn bump(counter: &AtomicU64, by: u64) {
        // ORDERING: Relaxed load and store: one writer per counter (its
        // handle); readers only sum statistics.
        counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
    }

    /// Single-writer store of a gauge.
    #[inline]
    pub fn set(counter: &AtomicU64, value: u64) {
        // ORDERING: Relaxed: one writer per counter; readers only sum.
        counter.store(value, Ordering::Relaxed);
    }
}

pub struct Counters {
    pub per_handle: Box<[HandleCounters]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            per_handle: (0..MAX_WRITERS)
                .map(|_| HandleCounters::default())
                .collect(),
        }
    }
}

impl Counters {
    pub fn sum(&self, pick: impl Fn(&HandleCounters) -> &AtomicU64) -> u64 {
        self.per_handle
            .iter()
            // ORDERING: Relaxed: statistics, no data depends on them.
            .map(|c| pick(c).load(Ordering::Relaxed))
            .sum()
    }
}

/// A snapshot for INFO.
#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    pub file_bytes: u64,
    /// Index plus segments in use.
    pub used_bytes: u64,
    pub index_bytes: u64,
    pub keys: u64,
    pub keys_with_ttl: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expirations: u64,
    /// Pages of big collections deleted after their root went.
    pub reclaimed_pages: u64,
    /// Pages queued for deletion, not yet looked at.
    pub reclaim_pending: u64,
    /// Dropped big collections whose pages were all deleted in the
    /// background.
    pub lazyfreed_roots: u64,
    /// Dropped big collections with pages still queued for deletion.
    pub reclaim_pending_roots: u64,
    /// Multi-key writes that changed more keys than a writer's journal
    /// holds: atomic to readers, but a crash could leave them half done.
    pub journal_overflows: u64,
    /// (used slots, total slots) per index level, estimated from up to 4,096
    /// sampled buckets per level (so a nearly empty cache may show 0 used).
    pub level_fill: Vec<(u64, u64)>,
    /// The live cap on `used_bytes` (memory_cap.rs), whole segments; None
    /// when the whole file may be used.
    pub memory_cap: Option<u64>,
    pub segments_total: u64,
    pub segments_free: u64,
    pub generation: u64,
}
