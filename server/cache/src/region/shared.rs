//! Byte-wise atomic memcpy over the shared mapping: the semantics of C++
//! P1478's `atomic_load_per_byte_memcpy` / `atomic_store_per_byte_memcpy`,
//! which optimistic (seqlock) readers need. A reader may copy bytes that a
//! writer is changing at that moment (a reused or compacted segment); the
//! copy is then garbage, which the seqlock discards, but never a data race.
//!
//! Every Rust-level access to item bytes is a Relaxed atomic load or store of a whole,
//! aligned 8-byte word, never a byte access: Rust forbids racing atomic
//! accesses of different sizes to overlapping memory when one is a write, and
//! items are byte-packed, so a byte-wide store at one item's edge could race
//! a word-wide load of its neighbour. Instead:
//! * reads load every word that covers the range and keep the bytes in it;
//! * writes store whole words, merging the edge words with their current
//!   contents. That load-merge-store is not an atomic read-modify-write; it
//!   is sound because a segment has one writer at a time (its owner: an
//!   active segment's writer, a chunk's allocator, an evictor), so the
//!   neighbouring bytes of an edge word cannot change under the merge.
//! * ranges of 4 KiB or more (big values in and out) are copied by the CPU's
//!   string copy in an `asm!` block (`copy_string`): the hardware's byte
//!   accesses, each atomic, opaque to the compiler; no Rust-level access.
//!
//! ORDERING: all of these accesses are Relaxed. They are ordered by the
//! protocol around them: an item's bytes are stored before its index entry
//! (Release) and read after loading the entry (Acquire); a reader validates
//! with `fence(Acquire)` + version re-load, and whoever overwrites bytes
//! that a stale reader may see issues `fence(Release)` first (free-list pop,
//! compaction), so reading a new byte implies seeing the new version.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::ptr;

use super::Region;
use crate::sync::AtomicU64;
use crate::sync::Ordering::Relaxed;

/// Bytes copied per step when shared bytes pass through a stack buffer.
const BLOCK: usize = 512;

/// Ranges at least this long are copied in and out with one string copy
/// (`copy_string`); shorter ones a word at a time.
#[cfg_attr(any(loom, not(target_arch = "x86_64")), allow(dead_code))]
const BULK_MIN: usize = 4096;

/// A range of bytes in the shared mapping, read only by copying.
///
/// Another thread may change these bytes at any moment; what a copy returns
/// is a guess until the caller validates it (the cache's reads do so before
/// returning anything). Invariant: `off..off + len` lies in the region, and
/// so does every aligned word that covers it (the region's length is a
/// multiple of 8).
#[derive(Clone, Copy)]
pub struct SharedBytes<'a> {
    region: &'a Region,
    off: usize,
    len: usize,
}

/// One piece of a value being written: bytes of the caller's, or bytes
/// copied from the cache itself (APPEND, SETRANGE, COPY, RENAME).
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    Local(&'a [u8]),
    Shared(SharedBytes<'a>),
}

impl Region {
    /// The bytes at `off..off + len`, or None when out of bounds.
    #[inline]
    pub fn shared(&self, off: usize, len: usize) -> Option<SharedBytes<'_>> {
        let end = off.checked_add(len)?;
        (end <= self.len()).then_some(SharedBytes {
            region: self,
            off,
            len,
        })
    }

    /// Stores `src` at `off` with whole-word atomic stores.
    ///
    /// The caller must be the only writer of the words covering the range:
    /// an unpublished part of its own active or chunk segment, or a segment
    /// it is compacting (see the module comment). Breaking that rule
    /// corrupts items (which reads detect or discard) but is never UB.
    #[inline]
    pub fn store_bytes(&self, off: usize, src: &[u8]) {
        if src.is_empty() {
            return;
        }
        let first = off & !7;
        let lo = off - first;
        let words = self.words(first, (lo + src.len()).div_ceil(8));
        if src.len() < 8 {
            // Loaded whole (overlapping loads, no byte loop) and merged
            // into the one or two words it spans: an in-place edit's
            // elements and selector byte are a few bytes each.
            let bits = load_le_short(src);
            let mask = (1u64 << (8 * src.len())) - 1;
            merge_le(&words[0], bits << (8 * lo), mask << (8 * lo));
            if lo + src.len() > 8 {
                let shift = 8 * (8 - lo);
                merge_le(&words[1], bits >> shift, mask >> shift);
            }
            return;
        }
        // At least 8 bytes: each edge word is merged from a whole 8-byte
        // load of `src` (a shift and a mask, no byte loop).
        let (mut pos, mut i) = (0, 0);
        if lo != 0 {
            pos = 8 - lo;
            let head = u64::from_le_bytes(src[..8].try_into().expect("8 bytes"));
            merge_le(&words[0], head << (8 * lo), !0 << (8 * lo));
            i = 1;
        }
        let full = (src.len() - pos) / 8;
        for (word, bytes) in words[i..i + full].iter().zip(src[pos..].chunks_exact(8)) {
            let v = u64::from_ne_bytes(bytes.try_into().expect("8 bytes"));
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            word.store(v, Relaxed);
        }
        pos += 8 * full;
        let n = src.len() - pos;
        if n > 0 {
            let tail = u64::from_le_bytes(src[src.len() - 8..].try_into().expect("8 bytes"));
            merge_le(&words[i + full], tail >> (8 * (8 - n)), !0 >> (8 * (8 - n)));
        }
    }

    /// Stores `src` at `off` like `store_bytes`, for bytes no valid read can
    /// reach yet: the value area of an item not yet published, or a chunk
    /// segment its item does not list yet. From `BULK_MIN` bytes on, the
    /// aligned middle is one string copy (`copy_string`) instead of a store
    /// per word: the word loop was 21% of a 256 KiB SET's server CPU. The
    /// edge words are merged as `store_bytes` does.
    ///
    /// ORDERING: the copy happens before the Release store that makes the
    /// bytes reachable (the item's index entry), which pairs with the
    /// Acquire load of that entry by every reader that uses them. A stale
    /// reader still copying the bytes that lived here before the segment
    /// was reused may overlap the copy; what it copies is discarded by its
    /// version check (the reuser's `fence(Release)` pairs with
    /// `read_validate`'s `fence(Acquire)`), as with the word stores.
    #[inline]
    pub fn store_unpublished(&self, off: usize, src: &[u8]) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        if src.len() >= BULK_MIN {
            let first = off.next_multiple_of(8);
            let end = (off + src.len()) & !7;
            self.store_bytes(off, &src[..first - off]);
            let words = self.words(first, (end - first) / 8);
            // SAFETY: `words` covers `first..end` of the mapping (bounds
            // checked by `words`) and `src[first - off..end - off]` is
            // exactly as long; a caller's slice never lies in the mapping
            // (no `&[u8]` into it exists), so they do not overlap.
            unsafe {
                copy_string(
                    src.as_ptr().add(first - off),
                    words.as_ptr().cast::<u8>().cast_mut(),
                    end - first,
                );
            }
            self.store_bytes(end, &src[end - off..]);
            return;
        }
        self.store_bytes(off, src);
    }

    /// Stores an item assembled word-aligned with its destination: `buf`
    /// holds it from byte `off % 8` on, `len` bytes, so each word is one
    /// load from `buf` and one store, with no shifting. Only the first
    /// word is merged (its low bytes end the item before); the last word
    /// is stored whole: the bytes after the item up to the next word
    /// boundary are the unreserved rest of the caller's own active segment
    /// (segments are word-aligned and a whole number of words), which no
    /// valid read reaches and the caller's next item overwrites.
    /// Same ownership rule as `store_bytes`.
    #[inline]
    pub fn store_aligned_item(&self, off: usize, buf: &[u8], len: usize) {
        let first = off & !7;
        let lo = off - first;
        let n = (lo + len).div_ceil(8);
        let words = self.words(first, n);
        // One bounds check for the whole copy, not one per word.
        let src = &buf[..8 * n];
        let mut from = src
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
        let mut to = words.iter();
        if lo != 0 {
            if let (Some(w), Some(bits)) = (to.next(), from.next()) {
                merge_le(w, bits, !0 << (8 * lo));
            }
        }
        for (w, bits) in to.zip(from) {
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            w.store(bits.to_le(), Relaxed);
        }
    }

    /// Moves `len` bytes from `from` down to `to` (`to <= from`; the ranges
    /// may overlap), as compaction does. Same ownership rule as `store_bytes`.
    pub fn move_down(&self, from: usize, to: usize, len: usize) {
        assert!(to <= from, "move_down moves towards the front");
        let src = self.shared(from, len).expect("move source in bounds");
        // Front to back, one block at a time: each block is read before it
        // is stored, and a store at `to + i` (<= `from + i`) never reaches
        // source bytes not yet read (edge merges rewrite them unchanged).
        let mut at = to;
        src.for_each_block(|block| {
            self.store_bytes(at, block);
            at += block.len();
        });
    }
}

/// Copies `n` bytes with the CPU's string copy (`rep movsb`: fast-string
/// microcode that moves whole cache lines and writes cold lines without
/// reading them first; memcpy uses it for these sizes too). An `asm!` block
/// is opaque to the compiler: the copy is the hardware's byte loads and
/// stores, each single-copy atomic on x86-64, which is the per-byte atomic
/// memcpy (C++ P1478) that a seqlock's racing copies need, so no Rust-level
/// non-atomic access to the mapping is made. A racing access sees some mix
/// of old and new bytes, which the version check discards.
///
/// # Safety
/// `src` must be valid for `n` reads and `dst` for `n` writes; they must
/// not overlap.
#[cfg(all(target_arch = "x86_64", not(loom)))]
#[inline]
unsafe fn copy_string(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: the caller's contract covers the ranges `rep movsb` reads
    // and writes (rcx bytes from rsi to rdi, forwards: the ABI guarantees
    // the direction flag is clear); it touches no stack and no flags.
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags)
        );
    }
}

/// Copies `n <= 8` bytes with a loop the compiler keeps inline (a
/// variable-length copy would be a memcpy call).
///
/// # Safety
/// `src` must be valid for `n` reads and `dst` for `n` writes; they must
/// not overlap.
#[inline]
unsafe fn copy_few(src: *const u8, dst: *mut u8, n: usize) {
    for i in 0..n {
        // SAFETY: `i < n`, in bounds of both by the caller's contract.
        unsafe { *dst.add(i) = *src.add(i) };
    }
}

/// `src` (shorter than 8 bytes) as a little-endian number: byte k in
/// bits 8k..8k+8. Two loads that may overlap (the bytes they share are
/// the same), so no loop over the bytes.
#[inline]
fn load_le_short(src: &[u8]) -> u64 {
    let n = src.len();
    if n >= 4 {
        let head = u32::from_le_bytes([src[0], src[1], src[2], src[3]]);
        let tail = u32::from_le_bytes([src[n - 4], src[n - 3], src[n - 2], src[n - 1]]);
        u64::from(head) | u64::from(tail) << (8 * (n - 4))
    } else if n >= 2 {
        let head = u16::from_le_bytes([src[0], src[1]]);
        let tail = u16::from_le_bytes([src[n - 2], src[n - 1]]);
        u64::from(head) | u64::from(tail) << (8 * (n - 2))
    } else {
        src.first().map_or(0, |&b| u64::from(b))
    }
}

/// Replaces the bytes of `word` that `mask` selects with those of `bits`
/// (both little-endian: byte k is bits 8k..8k+8), keeping the others (sole
/// writer: see `Region::store_bytes`).
#[inline]
fn merge_le(word: &AtomicU64, bits: u64, mask: u64) {
    // ORDERING: Relaxed load and store: we are the word's only writer; the
    // protocol orders them (module comment).
    let old = u64::from_le(word.load(Relaxed));
    word.store(((old & !mask) | (bits & mask)).to_le(), Relaxed);
}

impl<'a> SharedBytes<'a> {
    /// Where the bytes start in the mapping.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.off
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes at `range` (relative to these), or None when out of range.
    #[inline]
    pub fn get(&self, range: Range<usize>) -> Option<SharedBytes<'a>> {
        (range.start <= range.end && range.end <= self.len).then_some(SharedBytes {
            region: self.region,
            off: self.off + range.start,
            len: range.end - range.start,
        })
    }

    /// The first `N` bytes (`N` at most 40), read as whole words into a
    /// stack buffer: a fixed-size read (a root's stamp) without the byte
    /// loops of `copy_to`'s ragged edges. None when shorter than `N`.
    #[inline]
    pub fn head<const N: usize>(&self) -> Option<[u8; N]> {
        if self.len < N || N > 40 {
            return None;
        }
        let first = self.off & !7;
        let lo = self.off - first;
        // (The edge words are read whole, as `copy_out` reads them.)
        let words = self.region.words(first, (lo + N).div_ceil(8));
        let mut buf = [0u8; 48];
        for (to, word) in buf.chunks_exact_mut(8).zip(words) {
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            to.copy_from_slice(&word.load(Relaxed).to_ne_bytes());
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&buf[lo..lo + N]);
        Some(out)
    }

    /// Copies the bytes into `dst`, which must be exactly as long.
    #[inline]
    pub fn copy_to(&self, dst: &mut [u8]) {
        assert_eq!(
            dst.len(),
            self.len,
            "copy_to needs a buffer of equal length"
        );
        // SAFETY: `dst` is valid for `self.len` bytes of writes.
        unsafe { self.copy_out(dst.as_mut_ptr()) }
    }

    /// Appends the bytes to `out` (copied straight into its spare capacity,
    /// with whole-word loads, or one string copy from `BULK_MIN` bytes on:
    /// the reply path's one copy of a value; the word loop was twice the
    /// kernel's send copy of a 1 MiB GET).
    #[inline]
    pub fn append_to(&self, out: &mut Vec<u8>) {
        // Up to 8 bytes past the value may be written (then overwritten or
        // left beyond the length): reserve them.
        out.reserve(self.len + 8);
        let filled = out.len();
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        if self.len >= BULK_MIN {
            self.append_bulk(out, filled);
            return;
        }
        // SAFETY: `reserve` made room for `self.len + 8` more bytes after
        // `filled`; `copy_out_wide` initialises the first `self.len` of them
        // before `set_len`.
        unsafe {
            self.copy_out_wide(out.as_mut_ptr().add(filled));
            out.set_len(filled + self.len);
        }
    }

    /// `append_to`'s string copy of a big range to `out[filled..]`, out of
    /// line: the small-value reply path stays as short as it was.
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    #[inline(never)]
    fn append_bulk(&self, out: &mut Vec<u8>, filled: usize) {
        assert!(out.capacity() - filled >= self.len, "room was reserved");
        let first = self.off & !7;
        let words = self
            .region
            .words(first, (self.off - first + self.len).div_ceil(8));
        // SAFETY: the words cover `off..off + len` of the mapping (bounds
        // checked by `words`); `out` has room for `len` bytes after `filled`
        // (asserted), which the copy initialises before `set_len`. A Vec
        // never lies in the mapping: no overlap.
        unsafe {
            let src = words.as_ptr().cast::<u8>().add(self.off - first);
            copy_string(src, out.as_mut_ptr().add(filled), self.len);
            out.set_len(filled + self.len);
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.append_to(&mut v);
        v
    }

    /// Copies the bytes into the front of `buf` if they fit (a number to
    /// parse, say); None when they are longer than `buf`.
    #[inline]
    pub fn copy_if_fits<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let dst = buf.get_mut(..self.len)?;
        self.copy_to(dst);
        Some(dst)
    }

    /// Calls `f` on consecutive copies of the bytes, up to `BLOCK` at a time
    /// (hashing or moving large ranges without allocating).
    pub fn for_each_block(&self, mut f: impl FnMut(&[u8])) {
        self.try_blocks(|_, block| {
            f(block);
            true
        });
    }

    /// Calls `f` on each aligned word covering the bytes, read little-endian
    /// (the word's byte i is its bits 8i..8i+8), with the bytes outside the
    /// range zeroed: a fold that needs no copy (counting set
    /// bits). Whole-word Relaxed loads only, as every read here (module
    /// comment); the result is a guess until the caller validates it.
    #[inline]
    pub fn for_each_word(&self, mut f: impl FnMut(u64)) {
        self.try_each_word(0, |word| {
            f(word);
            true
        });
    }

    /// The first byte of the range that is not `skip`, with its offset in
    /// the range: BITPOS's search, from whole-word loads (as
    /// `for_each_word`), stopping at the word that holds it.
    #[inline]
    pub fn first_byte_not(&self, skip: u8) -> Option<(usize, u8)> {
        let lo = self.off & 7;
        let (mut word_at, mut found) = (0usize, None);
        self.try_each_word(u64::from_ne_bytes([skip; 8]), |word| {
            if word == 0 {
                word_at += 8;
                return true;
            }
            let byte = word.trailing_zeros() as usize / 8;
            found = Some((word_at + byte - lo, (word >> (8 * byte)) as u8 ^ skip));
            false
        });
        found
    }

    /// `for_each_word` with each word XORed with `flip` before the bytes
    /// outside the range are zeroed (a search for a byte other than
    /// `skip` looks for a non-zero word), stopping when `f` returns false;
    /// returns whether it went through every word.
    #[inline]
    fn try_each_word(&self, flip: u64, mut f: impl FnMut(u64) -> bool) -> bool {
        if self.len == 0 {
            return true;
        }
        let first = self.off & !7;
        let lo = self.off - first;
        let words = self.region.words(first, (lo + self.len).div_ceil(8));
        // Bytes of the last word that lie in the range: 1..=8.
        let hi = (lo + self.len - 1) % 8 + 1;
        let (head_mask, tail_mask) = ((!0u64) << (8 * lo), (!0u64) >> (8 * (8 - hi)));
        let le = |w: &AtomicU64| {
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            u64::from_le(w.load(Relaxed)) ^ flip
        };
        let Some((last, rest)) = words.split_last() else {
            return true;
        };
        match rest.split_first() {
            None => f(le(last) & head_mask & tail_mask),
            Some((head, middle)) => {
                f(le(head) & head_mask)
                    && middle.iter().all(|word| f(le(word)))
                    && f(le(last) & tail_mask)
            }
        }
    }

    /// Like `for_each_block`, with each block's position; stops (returning
    /// false) when `f` returns false.
    fn try_blocks(&self, mut f: impl FnMut(usize, &[u8]) -> bool) -> bool {
        let mut buf = [MaybeUninit::<u8>::uninit(); BLOCK];
        let mut done = 0;
        while done < self.len {
            let n = (self.len - done).min(BLOCK);
            let part = SharedBytes {
                off: self.off + done,
                len: n,
                ..*self
            };
            // SAFETY: `buf` holds BLOCK >= n bytes; `copy_out` initialises
            // the first n, which is all the slice covers.
            let block = unsafe {
                part.copy_out(buf.as_mut_ptr().cast());
                std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n)
            };
            if !f(done, block) {
                return false;
            }
            done += n;
        }
        true
    }

    /// Copies the whole words covering these bytes into `buf`; returns where
    /// the bytes lie in it. The fast way to copy a short, unaligned range
    /// (an item header, a list root's head): fixed-size word copies, no
    /// byte loops. `buf` must hold the range and 7 bytes more (panics
    /// otherwise).
    #[inline(always)]
    pub fn copy_covering<const N: usize>(&self, buf: &mut [u8; N]) -> Range<usize> {
        let first = self.off & !7;
        let lo = self.off - first;
        // The whole buffer's words when the mapping has them: a copy of
        // constant length, unrolled without a branch per word (an item
        // header on every lookup). The words past the range are in the
        // mapping and only read. (The loom model maps only declared words.)
        #[cfg(not(loom))]
        if N.is_multiple_of(8) && first + N <= self.region.len() {
            assert!(lo + self.len <= N, "{} bytes do not fit {N}", self.len);
            let words = self.region.words(first, N / 8);
            for (word, out) in words.iter().zip(buf.chunks_exact_mut(8)) {
                // ORDERING: Relaxed: ordered by the protocol (module comment).
                out.copy_from_slice(&word.load(Relaxed).to_ne_bytes());
            }
            return lo..lo + self.len;
        }
        let words = self.region.words(first, (lo + self.len).div_ceil(8));
        assert!(words.len() * 8 <= N, "{} bytes do not fit {N}", self.len);
        for (word, out) in words.iter().zip(buf.chunks_exact_mut(8)) {
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            out.copy_from_slice(&word.load(Relaxed).to_ne_bytes());
        }
        lo..lo + self.len
    }

    /// Copies the bytes to `dst` with whole-word atomic loads.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `self.len` bytes.
    #[inline]
    unsafe fn copy_out(&self, dst: *mut u8) {
        if self.len == 0 {
            return;
        }
        let first = self.off & !7;
        let lo = self.off - first;
        let words = self.region.words(first, (lo + self.len).div_ceil(8));
        let (mut pos, mut i) = (0, 0);
        if lo != 0 || self.len < 8 {
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            let bytes = words[0].load(Relaxed).to_ne_bytes();
            pos = (8 - lo).min(self.len);
            // SAFETY: `pos <= self.len` bytes fit at `dst`; `bytes` holds
            // `lo + pos <= 8` bytes.
            unsafe { copy_few(bytes.as_ptr().add(lo), dst, pos) };
            i = 1;
        }
        let full = (self.len - pos) / 8;
        for word in &words[i..i + full] {
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            // SAFETY: `pos + 8 <= self.len` (`full` words fit after `pos`),
            // so the write stays inside `dst`; unaligned writes are allowed.
            unsafe { ptr::write_unaligned(dst.add(pos).cast::<u64>(), word.load(Relaxed)) };
            pos += 8;
        }
        if pos < self.len {
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            let bytes = words[i + full].load(Relaxed).to_ne_bytes();
            // SAFETY: the last `self.len - pos < 8` bytes of `dst` remain.
            unsafe { copy_few(bytes.as_ptr(), dst.add(pos), self.len - pos) };
        }
    }

    /// Copies the bytes to `dst` with whole-word atomic loads and whole-word
    /// (unaligned) stores: no byte loops or memcpy calls at the edges, at
    /// the price of writing up to 8 bytes past the end of the copy.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `self.len + 8` bytes.
    #[inline]
    unsafe fn copy_out_wide(&self, dst: *mut u8) {
        if self.len == 0 {
            return;
        }
        let first = self.off & !7;
        let lo = self.off - first;
        let words = self.region.words(first, (lo + self.len).div_ceil(8));
        // ORDERING: Relaxed: ordered by the protocol (module comment).
        // Little-endian: shifting drops the `lo` bytes before the range.
        let head = words[0].load(Relaxed).to_le() >> (8 * lo);
        // SAFETY: 8 bytes fit at `dst` (`len + 8` are writable).
        unsafe { ptr::write_unaligned(dst.cast::<u64>(), head.to_le()) };
        let mut pos = 8 - lo;
        for word in &words[1..] {
            // ORDERING: Relaxed: ordered by the protocol (module comment).
            let w = word.load(Relaxed);
            // SAFETY: `pos < self.len` here (a covering word starts before
            // the range's end), so `pos + 8 <= self.len + 8` bytes fit.
            unsafe { ptr::write_unaligned(dst.add(pos).cast::<u64>(), w) };
            pos += 8;
        }
    }

    pub(crate) fn region(&self) -> &'a Region {
        self.region
    }
}

impl PartialEq<[u8]> for SharedBytes<'_> {
    /// Compares a copy of the bytes with `other` (a guess, as every read).
    fn eq(&self, other: &[u8]) -> bool {
        self.len == other.len()
            && self.try_blocks(|at, block| block == &other[at..at + block.len()])
    }
}

impl PartialEq<&[u8]> for SharedBytes<'_> {
    fn eq(&self, other: &&[u8]) -> bool {
        *self == **other
    }
}

impl std::fmt::Debug for SharedBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBytes({:?})", self.to_vec())
    }
}

impl Part<'_> {
    pub fn len(&self) -> usize {
        match self {
            Part::Local(b) => b.len(),
            Part::Shared(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> From<&'a [u8]> for Part<'a> {
    fn from(b: &'a [u8]) -> Part<'a> {
        Part::Local(b)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Part<'a> {
    fn from(b: &'a [u8; N]) -> Part<'a> {
        Part::Local(b)
    }
}

impl<'a> From<&'a Vec<u8>> for Part<'a> {
    fn from(b: &'a Vec<u8>) -> Part<'a> {
        Part::Local(b)
    }
}

impl<'a> From<SharedBytes<'a>> for Part<'a> {
    fn from(s: SharedBytes<'a>) -> Part<'a> {
        Part::Shared(s)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Region;

    const LEN: usize = 64;

    /// A region over a fresh LEN-byte file.
    fn mapped() -> Region {
        let file = tempfile::tempfile().unwrap();
        file.set_len(LEN as u64).unwrap();
        Region::map(&file, LEN).unwrap()
    }

    /// Every offset within a word and every length up to five words: the
    /// stored bytes land where they belong and the edge words' other bytes
    /// are kept (the whole-word edge merges' shifts and masks).
    #[test]
    fn store_bytes_keeps_the_edges() {
        let region = mapped();
        let fill = [0xa5u8; LEN];
        for off in 0..16 {
            for len in 0..=40 {
                region.store_bytes(0, &fill);
                let src: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7) + 1).collect();
                region.store_bytes(off, &src);
                let mut got = [0u8; LEN];
                region.shared(0, LEN).unwrap().copy_to(&mut got);
                let mut want = fill;
                want[off..off + len].copy_from_slice(&src);
                assert_eq!(got, want, "off {off} len {len}");
            }
        }
    }

    /// An item assembled word-aligned with its destination lands where it
    /// belongs and keeps the bytes before it (the item before's), whatever
    /// its offset in its first word and its length; the bytes after it, up
    /// to the next word boundary, are the writer's free space and may change.
    #[test]
    fn store_aligned_item_keeps_what_comes_before() {
        let region = mapped();
        let fill = [0xa5u8; LEN];
        for off in 0..16 {
            for len in 1..=40 {
                region.store_bytes(0, &fill);
                let src: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7) + 1).collect();
                let mut buf = [0u8; 48];
                buf[off % 8..off % 8 + len].copy_from_slice(&src);
                region.store_aligned_item(off, &buf, len);
                let mut got = [0u8; LEN];
                region.shared(0, LEN).unwrap().copy_to(&mut got);
                assert_eq!(&got[..off], &fill[..off], "off {off} len {len}");
                assert_eq!(&got[off..off + len], &src[..], "off {off} len {len}");
                let word_end = (off + len).next_multiple_of(8);
                assert_eq!(&got[word_end..], &fill[word_end..], "off {off} len {len}");
            }
        }
    }

    /// Each word, the bytes outside the range zeroed, whatever the range's
    /// offset in its first word and its length: the words' bytes, in order,
    /// are the range's with zeros around it.
    #[test]
    fn for_each_word_masks_the_edges() {
        let region = mapped();
        let all: Vec<u8> = (0..LEN as u8).map(|b| b.wrapping_mul(37) | 1).collect();
        region.store_bytes(0, &all);
        for off in 0..16 {
            for len in 0..=40 {
                let mut got = Vec::new();
                region
                    .shared(off, len)
                    .unwrap()
                    .for_each_word(|w| got.extend_from_slice(&w.to_le_bytes()));
                let first = off & !7;
                if len == 0 {
                    assert!(got.is_empty(), "off {off}");
                    continue;
                }
                let mut want = vec![0u8; got.len()];
                want[off - first..off - first + len].copy_from_slice(&all[off..off + len]);
                assert_eq!(got, want, "off {off} len {len}");
                assert_eq!(
                    got.len(),
                    (off - first + len).div_ceil(8) * 8,
                    "off {off} len {len}"
                );
            }
        }
    }

    /// The first byte that is not `skip`, wherever the range starts in its
    /// word, however long it is and wherever that byte lies (or none): the
    /// same as a byte-by-byte search, never a byte outside the range.
    #[test]
    fn first_byte_not_finds_what_a_byte_search_finds() {
        let region = mapped();
        for skip in [0x00u8, 0xff] {
            for odd in 0..LEN {
                let mut all = [skip; LEN];
                // One other byte, at `odd`: found inside the range, never
                // outside it (in the edge words too).
                all[odd] = skip ^ 0x10;
                region.store_bytes(0, &all);
                for off in 0..16 {
                    for len in 0..=40 {
                        let got = region.shared(off, len).unwrap().first_byte_not(skip);
                        let want = all[off..off + len]
                            .iter()
                            .position(|&b| b != skip)
                            .map(|i| (i, all[off + i]));
                        assert_eq!(got, want, "skip {skip:#x} odd {odd} off {off} len {len}");
                    }
                }
            }
        }
    }
}
