//! The memory-mapped cache file: bounds-checked atomics at byte offsets.

use std::fs::File;

use memmap2::{Mmap, MmapMut};

use crate::sync::{AtomicU32, AtomicU64};

/// The mapping: writable for the owning server process, read-only
/// (`PROT_READ`) for a `CacheReader` in another process.
enum Mapping {
    ReadWrite(MmapMut),
    ReadOnly(#[allow(dead_code)] Mmap),
}

/// How strictly a mapping's pages are kept on its NUMA node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryPolicy {
    /// MPOL_BIND: only that node's memory.
    Bind,
    /// MPOL_PREFERRED: that node while it has free memory, then others.
    Preferred,
}

pub struct Region {
    map: Mapping,
    base: *mut u8,
    /// Mapped bytes, rounded down to whole 8-byte words: every word that
    /// covers an in-bounds byte is itself in bounds (see `SharedBytes`).
    len: usize,
}

// SAFETY: the mapping is shared memory that every thread accesses only
// through atomics (words, and byte ranges copied word by word in shared.rs);
// the raw base pointer is never handed out.
unsafe impl Send for Region {}
// SAFETY: as above; no method hands out a non-atomic reference to the mapping.
unsafe impl Sync for Region {}

impl Region {
    pub fn map(file: &File, len: usize) -> std::io::Result<Region> {
        // SAFETY: the file is locked exclusively by this process (flock in
        // store.rs), so no other process truncates it while it is mapped.
        let mut map = unsafe { MmapMut::map_mut(file)? };
        check_len(map.len(), len)?;
        #[cfg(target_os = "linux")]
        advise_huge(map.advise(memmap2::Advice::HugePage));
        let base = map.as_mut_ptr();
        Ok(Region {
            map: Mapping::ReadWrite(map),
            base,
            len: len & !7,
        })
    }

    /// Maps `file` (opened read-only) shared with `PROT_READ`, for a reader
    /// in another process than the file's owner. Such a region is only ever
    /// read: every access a reader makes is an atomic *load* (the seqlock
    /// read protocol, `SharedBytes` copies); a store or read-modify-write
    /// would fault (SIGSEGV) rather than change the file.
    pub fn map_read_only(file: &File, len: usize) -> std::io::Result<Region> {
        // SAFETY: another process (the server) writes the file while it is
        // mapped here; that is sound because no `&[u8]` into the mapping is
        // ever made (the `Mmap` is never dereferenced): every access goes
        // through atomics. The file is never truncated while in use (the
        // server only grows a new, empty file; `--fresh` unlinks and
        // recreates it, which leaves this mapping's pages alive).
        let map = unsafe { Mmap::map(file)? };
        check_len(map.len(), len)?;
        #[cfg(target_os = "linux")]
        advise_huge(map.advise(memmap2::Advice::HugePage));
        // The pointer is typed `*mut` only to share the accessors below; the
        // pages are PROT_READ. Atomic loads (the only accesses a reader
        // makes) of 4 and 8 bytes are plain load instructions, which the
        // `std::sync::atomic` docs ("Atomic accesses to read-only memory")
        // allow on read-only memory.
        let base = map.as_ptr().cast_mut();
        Ok(Region {
            map: Mapping::ReadOnly(map),
            base,
            len: len & !7,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Sets the NUMA memory policy of the whole mapping to `node`
    /// (mbind(2)). For a tmpfs or hugetlbfs file (`/dev/shm`) the policy is
    /// the file's shared policy: every page faulted from now on, by any
    /// process mapping it, comes from that node. Pages already faulted and
    /// mapped only by this process are migrated (MPOL_MF_MOVE); pages of an
    /// earlier run not yet touched stay where they are. A disk file's page
    /// cache ignores the policy (its pages follow the faulting thread's
    /// policy: local to the server threads once they are pinned to the node).
    pub fn bind_to_node(&self, node: usize, policy: MemoryPolicy) -> std::io::Result<()> {
        const MPOL_MF_MOVE: libc::c_ulong = 1 << 1;
        let mode = match policy {
            MemoryPolicy::Bind => libc::MPOL_BIND,
            MemoryPolicy::Preferred => libc::MPOL_PREFERRED,
        };
        let mut mask = vec![0 as libc::c_ulong; node / libc::c_ulong::BITS as usize + 1];
        mask[node / libc::c_ulong::BITS as usize] |= 1 << (node % libc::c_ulong::BITS as usize);
        // The kernel reads `maxnode - 1` bits of the mask.
        let maxnode = mask.len() as libc::c_ulong * libc::c_ulong::BITS as libc::c_ulong + 1;
        let Mapping::ReadWrite(map) = &self.map else {
            return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        };
        // SAFETY: mbind only changes the memory policy of (and may migrate
        // pages within) our own mapping `[base, base + len)`, which stays
        // mapped while `self` lives; migration keeps the contents and
        // addresses. `mask` is a live array of `mask.len()` words, which
        // covers the `maxnode - 1` bits the kernel reads.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_mbind,
                map.as_ptr(),
                map.len(),
                mode,
                mask.as_ptr(),
                maxnode,
                MPOL_MF_MOVE,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn flush(&self) -> std::io::Result<()> {
        match &self.map {
            Mapping::ReadWrite(map) => map.flush(),
            Mapping::ReadOnly(_) => Ok(()),
        }
    }

    /// An atomic u64 at `off` (8-byte aligned, in bounds).
    #[inline]
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off + 8 <= self.len,
            "u64 offset {off}"
        );
        // SAFETY: in bounds and aligned (checked above); the mapping lives as
        // long as `self`, AtomicU64 has the layout of u64, and the memory is
        // only ever accessed atomically.
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    /// The `n` consecutive words from `off` (8-byte aligned, in bounds): one
    /// bounds check for a whole byte copy.
    #[inline]
    pub fn words(&self, off: usize, n: usize) -> &[AtomicU64] {
        assert!(
            off.is_multiple_of(8) && off <= self.len && n <= (self.len - off) / 8,
            "words {off}+{n}"
        );
        // SAFETY: in bounds and aligned (checked above); AtomicU64 has the
        // layout of u64, and the memory is only ever accessed atomically.
        unsafe { std::slice::from_raw_parts(self.base.add(off) as *const AtomicU64, n) }
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

    /// An atomic u32 at `off` (4-byte aligned, in bounds). Words read as u32
    /// are never accessed as u64 (no mixed-size accesses).
    #[inline]
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.len,
            "u32 offset {off}"
        );
        // SAFETY: in bounds and aligned (checked above).
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }

    /// Hints the CPU to start loading the cache line at `off` (no effect
    /// if out of bounds). Used to overlap the misses of a pipelined batch.
    #[inline]
    pub fn prefetch(&self, off: usize) {
        #[cfg(target_arch = "x86_64")]
        self.prefetch_with::<{ std::arch::x86_64::_MM_HINT_T0 }>(off);
    }

    /// Starts loading the lines of a small item at `off`: its first line
    /// and, unless the item starts a line, the next. An item starts
    /// anywhere in a line, so a lookup's copy of its head (and a short
    /// value) crosses into the next line about half the time; with only
    /// the first line loaded, that second line was the miss left.
    #[inline]
    pub fn prefetch_item(&self, off: usize) {
        self.prefetch(off);
        if !off.is_multiple_of(64) {
            self.prefetch(off + 63);
        }
    }

    /// Loads the line at `off` to be written (owned by this core), so the
    /// stores that come later do not wait for it. A page not yet mapped
    /// is skipped: a prefetch never faults.
    #[inline]
    pub fn prefetch_write(&self, off: usize) {
        #[cfg(target_arch = "x86_64")]
        self.prefetch_with::<{ std::arch::x86_64::_MM_HINT_ET0 }>(off);
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn prefetch_with<const HINT: i32>(&self, off: usize) {
        if off < self.len {
            // SAFETY: the address is inside the mapping; a prefetch never
            // faults and has no architectural effect.
            unsafe { std::arch::x86_64::_mm_prefetch::<HINT>(self.base.add(off) as *const i8) };
        }
    }
}

fn check_len(mapped: usize, len: usize) -> std::io::Result<()> {
    if mapped < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "cache file is shorter than its header says",
        ));
    }
    Ok(())
}

/// Random index and item accesses walk the page table on every miss with
/// 4 KiB pages, so mappings ask for huge pages. Honoured where the file's
/// filesystem allows it (tmpfs with huge=within_size/advise, or
/// shmem_enabled=advise); elsewhere it is a harmless no-op.
#[cfg(target_os = "linux")]
fn advise_huge(result: std::io::Result<()>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "madvise(MADV_HUGEPAGE) refused");
    }
}
