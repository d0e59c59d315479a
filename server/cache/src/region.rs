//! The mapped file and the only place that turns offsets into memory.
//!
//! Every other module addresses the file by byte offset; this module owns the
//! mapping and hands out atomics and byte slices after checking bounds.
//! Concurrency rules (who may write which range, and how readers validate) are
//! enforced by the callers: see ARCHITECTURE.md, "Cache engine".

use std::fs::File;
use std::sync::atomic::{AtomicU32, AtomicU64};

use memmap2::MmapMut;

pub struct Region {
    map: MmapMut,
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is shared memory that every thread accesses through
// atomics or through ranges whose ownership the cache protocol guarantees
// (a writer owns the unpublished tail of its active segment; readers validate
// optimistic copies with the bucket seqlock).
unsafe impl Send for Region {}
// SAFETY: as above; no method hands out `&mut` to shared state.
unsafe impl Sync for Region {}

impl Region {
    pub fn map(file: &File, len: usize) -> std::io::Result<Region> {
        // SAFETY: the file is locked exclusively by this process (flock in
        // store.rs), so no other process truncates it while it is mapped.
        let mut map = unsafe { MmapMut::map_mut(file)? };
        if map.len() < len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "cache file is shorter than its header says",
            ));
        }
        // Random index and item accesses walk the page table on every miss
        // with 4 KiB pages; ask for huge pages. Honoured where the file's
        // filesystem allows it (tmpfs with huge=within_size/advise, or
        // shmem_enabled=advise); elsewhere it is a harmless no-op.
        #[cfg(target_os = "linux")]
        if let Err(e) = map.advise(memmap2::Advice::HugePage) {
            tracing::debug!(error = %e, "madvise(MADV_HUGEPAGE) refused");
        }
        let base = map.as_mut_ptr();
        Ok(Region { map, base, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn flush(&self) -> std::io::Result<()> {
        self.map.flush()
    }

    /// An atomic u64 at `off` (8-byte aligned, in bounds).
    #[inline]
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off + 8 <= self.len,
            "u64 offset {off}"
        );
        // SAFETY: in bounds and aligned (checked above); the mapping lives as
        // long as `self`, and AtomicU64 has the layout of u64.
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    /// The eight words of the 64-byte bucket at `off` (one bounds check for
    /// the whole probe of a bucket).
    #[inline]
    pub fn bucket_at(&self, off: usize) -> &[AtomicU64; 8] {
        assert!(
            off.is_multiple_of(64) && off + 64 <= self.len,
            "bucket offset {off}"
        );
        // SAFETY: in bounds and 64-byte aligned (checked above); [AtomicU64; 8]
        // has the layout of [u64; 8].
        unsafe { &*(self.base.add(off) as *const [AtomicU64; 8]) }
    }

    /// An atomic u32 at `off` (4-byte aligned, in bounds).
    #[inline]
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.len,
            "u32 offset {off}"
        );
        // SAFETY: in bounds and aligned (checked above).
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }

    /// Bytes at `off..off+len`, or None when out of bounds.
    ///
    /// The bytes may be overwritten concurrently by a writer that reclaimed
    /// them; callers treat what they read as a guess until the bucket seqlock
    /// validates it, and never act on an unvalidated read. Any bit pattern is
    /// a valid `u8`, so a torn read yields wrong bytes, never invalid values.
    #[inline]
    pub fn bytes(&self, off: usize, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: in bounds (checked above); lifetime tied to the mapping.
        Some(unsafe { std::slice::from_raw_parts(self.base.add(off), len) })
    }

    /// Hints the CPU to start loading the cache line at `off` (no effect
    /// if out of bounds). Used to overlap the misses of a pipelined batch.
    #[inline]
    pub fn prefetch(&self, off: usize) {
        if off < self.len {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the address is inside the mapping; a prefetch never
            // faults and has no architectural effect.
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    self.base.add(off) as *const i8,
                    std::arch::x86_64::_MM_HINT_T0,
                )
            };
        }
    }

    /// Moves `len` bytes from `from` to `to` inside the mapping (the ranges
    /// may overlap).
    ///
    /// # Safety
    /// The caller owns the destination range (a segment it is compacting,
    /// whose items there were all unlinked or moved under their home locks)
    /// and has issued `fence(Release)` after those unlocks, so a reader that
    /// sees a moved byte also sees the bumped version.
    #[inline]
    pub unsafe fn move_within(&self, from: usize, to: usize, len: usize) {
        assert!(from.max(to) + len <= self.len, "move past the mapping");
        // SAFETY: both ranges are in bounds (checked above); `copy` allows
        // overlap; the caller owns the destination.
        unsafe { std::ptr::copy(self.base.add(from), self.base.add(to), len) }
    }

    /// Copies `src` to `off`.
    ///
    /// # Safety
    /// The caller must own `off..off+src.len()`: an unpublished part of a
    /// segment it holds (its active segment, a chunk segment it allocated, or
    /// header fields only it writes). Readers that may still be looking at
    /// reused memory are protected by the seqlock protocol, not by this call.
    #[inline]
    pub unsafe fn write(&self, off: usize, src: &[u8]) {
        assert!(off + src.len() <= self.len, "write past the mapping");
        // SAFETY: in bounds (checked above); the caller owns the range.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(off), src.len()) }
    }
}
