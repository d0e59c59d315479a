//! The live memory cap's state (memory_cap.rs uses it): the segments
//! allowed in use and the count of free ones. A leaf, so that `Cache`
//! can hold it.

use std::sync::atomic::{AtomicU32, Ordering};

/// No cap: every segment of the file may be in use.
const UNCAPPED: u32 = u32::MAX;

/// Process-local: only the process holding the file's flock writes it.
pub(crate) struct SegmentBudget {
    /// Segments allowed in use; `UNCAPPED` when the whole file may be.
    cap: AtomicU32,
    /// Segments on the free list (a hint while pushes and pops race).
    free: AtomicU32,
}

impl Default for SegmentBudget {
    fn default() -> Self {
        SegmentBudget {
            cap: AtomicU32::new(UNCAPPED),
            free: AtomicU32::new(0),
        }
    }
}

impl SegmentBudget {
    /// The cap in segments, None when uncapped.
    pub(crate) fn cap(&self) -> Option<u32> {
        // ORDERING: Relaxed: a limit writers read as a hint; no data
        // depends on it.
        let cap = self.cap.load(Ordering::Relaxed);
        (cap != UNCAPPED).then_some(cap)
    }

    /// Sets the cap (None lifts it); returns the previous one.
    pub(crate) fn set_cap(&self, cap: Option<u32>) -> Option<u32> {
        // ORDERING: Relaxed: as `cap`.
        let before = self.cap.swap(cap.unwrap_or(UNCAPPED), Ordering::Relaxed);
        (before != UNCAPPED).then_some(before)
    }

    pub(crate) fn free(&self) -> u32 {
        // ORDERING: Relaxed: a count, read as a hint.
        self.free.load(Ordering::Relaxed)
    }

    pub(crate) fn set_free(&self, free: u32) {
        // ORDERING: Relaxed: set before any handle exists.
        self.free.store(free, Ordering::Relaxed);
    }

    /// One segment left the free list.
    pub(crate) fn taken(&self) {
        // ORDERING: Relaxed: a count.
        self.free.fetch_sub(1, Ordering::Relaxed);
    }

    /// One segment went back on the free list.
    pub(crate) fn returned(&self) {
        // ORDERING: Relaxed: a count.
        self.free.fetch_add(1, Ordering::Relaxed);
    }
}
