//! A live cap on the memory in use below the file's size (`CONFIG SET
//! maxmemory`, or a start with a smaller maxmemory than the file was made
//! for), and the count of free segments that checks it.
//!
//! The file cannot shrink while it is mapped, and its index is sized for
//! the whole file, so the cap counts what `used_memory` counts: the index
//! plus the segments in use. Writers take a free segment only while fewer
//! than the cap are in use; past it they evict instead, and `maintain`
//! evicts a few segments per call while over it (after the cap is
//! lowered), as Redis evicts down to a lowered maxmemory.
//!
//! The count of free segments is process-local: only this process writes
//! the file (it holds the flock), and every push and pop of the free list
//! goes through `push_free` / `pop_free` here. It is set from the segment
//! states when the file is attached.

use crate::cache::Cache;
use crate::layout::SEGMENT_SIZE;
use crate::segment::{Seg, State};

impl Cache {
    /// Caps the memory in use (index plus segments) at `bytes`; at or
    /// above the file's size the cap is lifted. Returns the cap in effect
    /// (None: the whole file), rounded down to whole segments.
    pub fn set_memory_cap(&self, bytes: u64) -> Option<u64> {
        let cap = (bytes < self.geo.used_size()).then(|| {
            let values = bytes.saturating_sub(self.geo.segdata_off as u64);
            (values / SEGMENT_SIZE as u64) as u32
        });
        let before = self.budget.set_cap(cap);
        if let Some(cap) = cap.filter(|&c| Some(c) != before && c < self.segments_in_use()) {
            tracing::info!(
                cap_segments = cap,
                in_use = self.segments_in_use(),
                "memory cap below the segments in use: evicting down to it"
            );
        }
        self.memory_cap()
    }

    /// The maxmemory the file was made for (the most a cap may be).
    pub fn file_size(&self) -> u64 {
        self.geo.file_size
    }

    /// The cap in bytes (index plus the segments it allows); None when
    /// the whole file may be used.
    pub fn memory_cap(&self) -> Option<u64> {
        self.cap_segments()
            .map(|cap| self.geo.segdata_off as u64 + cap as u64 * SEGMENT_SIZE as u64)
    }

    /// Segments allowed in use, None when uncapped.
    pub(crate) fn cap_segments(&self) -> Option<u32> {
        self.budget.cap().map(|cap| cap.min(self.geo.segments))
    }

    /// Segments not on the free list (active, sealed, being evicted, or
    /// left out of use).
    pub(crate) fn segments_in_use(&self) -> u32 {
        self.geo.segments.saturating_sub(self.budget.free())
    }

    /// How many segments in use are above the cap.
    pub(crate) fn segments_over_cap(&self) -> u32 {
        self.cap_segments()
            .map_or(0, |cap| self.segments_in_use().saturating_sub(cap))
    }

    /// Takes a segment off the free list.
    pub(crate) fn pop_free(&self) -> Option<Seg<'_>> {
        let seg = self.free_list().pop()?;
        self.budget.taken();
        Some(seg)
    }

    /// Returns a segment to the free list.
    pub(crate) fn push_free(&self, seg: Seg<'_>) {
        self.free_list().push(seg);
        self.budget.returned();
    }

    /// Sets the free count from the segment states (on attach, before any
    /// handle exists).
    pub(crate) fn count_free_segments(&self) {
        self.budget.set_free(self.free_segments_by_state());
    }

    /// Segments whose state is free: a walk of every segment header (the
    /// truth the count follows; INFO reports it).
    pub(crate) fn free_segments_by_state(&self) -> u32 {
        (0..self.geo.segments)
            .filter(|&id| self.seg(id).state() == Some(State::Free))
            .count() as u32
    }
}
