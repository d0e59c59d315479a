//! The multi-level hash index: entry words, key hashing, bucket seqlocks.
//!
//! A key hashes to one 64-byte bucket in each of `LEVELS` levels of
//! decreasing size; it lives in exactly one slot of one of them (no chains, at
//! most LEVELS cache lines per lookup). Its level-0 bucket is its *home*: word
//! 0 of the home bucket is the seqlock that serialises every writer of the key
//! and lets readers validate optimistic reads, so a lookup that finds its key
//! at home touches one index cache line. The lock word also counts the keys of
//! this home that live in deeper levels; while it is zero a lookup stops after
//! the home bucket (a miss costs one line, not LEVELS). While it is not, a
//! lookup stops after the deepest level such a key was placed in since the
//! count was last zero (nearly always level 1: a miss costs two lines).
//!
//! Lock word: `overflow:16 | deepest:3 | version:44 | locked:1`.
//!
//! Memory ordering (the points the protocol rests on):
//! * writer: lock = CAS(v -> v|1, Acquire); entry stores (Release); unlock =
//!   store(v+2, Release).
//! * reader: v = load(Acquire) (retry while odd); entry loads (Acquire); item
//!   reads; fence(Acquire); load(Relaxed) == v, else retry.
//! * memory reuse: a segment is reused only after every entry pointing into it
//!   was removed under its home lock; the reuser issues fence(Release) after
//!   taking the segment off the free list (Acquire) and before writing into
//!   it. So a reader that saw any reused byte also sees the bumped version.

use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

use crate::layout::{slots_per_bucket, Geometry, BUCKET_SLOTS, LEVELS, SEGMENT_SIZE};
use crate::region::{Region, SharedBytes};
use crate::sync::{fence, AtomicU64, Ordering};

pub(crate) const TAG_SHIFT: u32 = 48;
const FREQ_SHIFT: u32 = 45;
pub const FREQ_MAX: u8 = 7;
const SEG_SHIFT: u32 = 20;
const SEG_MASK: u64 = (1 << 25) - 1;
const OFF_MASK: u64 = (SEGMENT_SIZE as u64) - 1;
const FREQ_MASK: u64 = (FREQ_MAX as u64) << FREQ_SHIFT;
/// Most segments an entry can address.
pub const MAX_SEGMENTS: u64 = SEG_MASK - 1;

/// One index slot: `tag:16 | freq:3 | segment+1:25 | offset:20`. Zero is empty.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Entry(pub u64);

impl Entry {
    pub const EMPTY: Entry = Entry(0);

    pub fn new(tag: u16, seg: u32, off: u32, freq: u8) -> Entry {
        Entry(
            (tag as u64) << TAG_SHIFT
                | (freq.min(FREQ_MAX) as u64) << FREQ_SHIFT
                | ((seg as u64 + 1) & SEG_MASK) << SEG_SHIFT
                | (off as u64 & OFF_MASK),
        )
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn tag(self) -> u16 {
        (self.0 >> TAG_SHIFT) as u16
    }
    pub fn freq(self) -> u8 {
        ((self.0 & FREQ_MASK) >> FREQ_SHIFT) as u8
    }
    pub fn seg(self) -> u32 {
        (((self.0 >> SEG_SHIFT) & SEG_MASK) as u32).wrapping_sub(1)
    }
    pub fn off(self) -> u32 {
        (self.0 & OFF_MASK) as u32
    }
    /// The entry without its frequency bits: what identifies the item.
    pub fn location(self) -> u64 {
        self.0 & !FREQ_MASK
    }
    pub fn with_freq(self, freq: u8) -> Entry {
        Entry(self.location() | (freq.min(FREQ_MAX) as u64) << FREQ_SHIFT)
    }
}

/// A key's 64-bit xxh3 hash and what is derived from it. Made only by
/// the cache, from the key's bytes (`CacheHandle::prefetch_key`): a caller
/// that looks a key up more than once hashes it once, and can pass no
/// other number for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHash(pub(crate) u64);

impl From<KeyHash> for u64 {
    fn from(h: KeyHash) -> u64 {
        h.0
    }
}

const LEVEL_SALT: [u64; LEVELS] = [
    0,
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x27D4_EB2F_1656_67C5,
];

impl KeyHash {
    /// Always inlined: the first step of every lookup, and LLVM left it
    /// out of `update_one` once that grew by the in-place edit's branch.
    #[inline(always)]
    pub fn of(key: &[u8]) -> KeyHash {
        KeyHash(xxhash_rust::xxh3::xxh3_64(key))
    }
    /// The hash of a key stored in the cache (equal to `of` of its bytes).
    pub fn of_shared(key: SharedBytes<'_>) -> KeyHash {
        KeyHash(hash_shared(key, 0))
    }
    #[inline]
    pub fn tag(self) -> u16 {
        (self.0 >> TAG_SHIFT) as u16
    }
    /// Bucket of this key in `level` (fast range reduction of mixed bits).
    #[inline]
    pub fn bucket(self, level: usize, geo: &Geometry) -> u64 {
        // Level 0 uses the low half (the tag is the top 16 bits); deeper
        // levels remix all 64 bits so keys sharing a home bucket spread out.
        let bits = if level == 0 {
            self.0 & 0xFFFF_FFFF
        } else {
            (self.0 ^ LEVEL_SALT[level]).wrapping_mul(0xFF51_AFD7_ED55_8CCD) >> 32
        };
        (bits * geo.buckets[level]) >> 32
    }
    #[inline]
    pub fn home(self, geo: &Geometry) -> u64 {
        self.bucket(0, geo)
    }
}

/// xxh3-64 of shared bytes with `seed`, equal to `xxh3_64_with_seed` of a
/// copy: one-shot for short ranges, streamed block by block otherwise.
pub fn hash_shared(bytes: SharedBytes<'_>, seed: u64) -> u64 {
    let mut buf = [0u8; 128];
    if let Some(local) = bytes.copy_if_fits(&mut buf) {
        return xxh3_64_with_seed(local, seed);
    }
    hash_pieces([bytes], seed)
}

/// xxh3-64 with `seed` of the concatenation of `pieces` (a value stored in
/// chunks), streamed block by block: no copy of the whole.
pub fn hash_pieces<'a>(pieces: impl IntoIterator<Item = SharedBytes<'a>>, seed: u64) -> u64 {
    let mut h = Xxh3::with_seed(seed);
    for piece in pieces {
        piece.for_each_block(|block| h.update(block));
    }
    h.digest()
}

/// Byte offset of the first slot of `key`'s bucket in `level`.
#[inline]
pub fn bucket_off(geo: &Geometry, level: usize, bucket: u64) -> usize {
    geo.level_off[level] + bucket as usize * BUCKET_SLOTS * 8
}

/// Byte offsets of the entry slots of `key`'s bucket in `level`.
#[inline]
pub fn level_slots(geo: &Geometry, level: usize, h: KeyHash) -> impl Iterator<Item = usize> {
    let base = bucket_off(geo, level, h.bucket(level, geo));
    (BUCKET_SLOTS - slots_per_bucket(level)..BUCKET_SLOTS).map(move |i| base + 8 * i)
}

/// The slots a key may occupy, in probe order.
pub fn candidate_slots(geo: &Geometry, h: KeyHash) -> impl Iterator<Item = usize> + '_ {
    (0..LEVELS).flat_map(move |level| level_slots(geo, level, h))
}

/// True when the slot at `off` is outside its key's home bucket.
#[inline]
pub fn is_overflow(geo: &Geometry, off: usize) -> bool {
    off >= geo.level_off[1]
}

/// Byte offsets of every slot, in global slot order (cheaper than
/// `slot_off` of each number, for whole-index walks).
pub fn all_slot_offs(geo: &Geometry) -> impl Iterator<Item = usize> + '_ {
    (0..LEVELS).flat_map(move |level| {
        (0..geo.buckets[level]).flat_map(move |b| {
            let base = bucket_off(geo, level, b);
            (BUCKET_SLOTS - slots_per_bucket(level)..BUCKET_SLOTS).map(move |i| base + 8 * i)
        })
    })
}

/// Global slot number (SCAN cursor) -> byte offset, None past the end.
pub fn slot_off(geo: &Geometry, mut slot: u64) -> Option<usize> {
    for level in 0..LEVELS {
        let n = geo.level_slots(level);
        if slot < n {
            let per = slots_per_bucket(level) as u64;
            let (bucket, i) = (slot / per, slot % per + (BUCKET_SLOTS as u64 - per));
            return Some(bucket_off(geo, level, bucket) + 8 * i as usize);
        }
        slot -= n;
    }
    None
}

/// The global bucket number (levels in order) holding SCAN slot `slot`,
/// and the slot number just past that bucket; None past the end.
pub fn bucket_of_slot(geo: &Geometry, mut slot: u64) -> Option<(u64, u64)> {
    let (mut bucket_base, mut slot_base) = (0, 0);
    for level in 0..LEVELS {
        let n = geo.level_slots(level);
        if slot < n {
            let per = slots_per_bucket(level) as u64;
            let bucket = slot / per;
            return Some((bucket_base + bucket, slot_base + (bucket + 1) * per));
        }
        slot -= n;
        slot_base += n;
        bucket_base += geo.buckets[level];
    }
    None
}

/// The first SCAN slot of global bucket `bucket` (total slots past the end).
pub fn first_slot_of_bucket(geo: &Geometry, mut bucket: u64) -> u64 {
    let mut slot_base = 0;
    for level in 0..LEVELS {
        if bucket < geo.buckets[level] {
            return slot_base + bucket * slots_per_bucket(level) as u64;
        }
        bucket -= geo.buckets[level];
        slot_base += geo.level_slots(level);
    }
    slot_base
}

const OVERFLOW_SHIFT: u32 = 48;
const OVERFLOW_MAX: u64 = 0xFFFF;
const DEEPEST_SHIFT: u32 = 45;
const VERSION_MASK: u64 = (1 << DEEPEST_SHIFT) - 1;

/// Keys of this home stored outside it, from a lock word.
#[inline]
pub fn overflow_of(lock_word: u64) -> u64 {
    lock_word >> OVERFLOW_SHIFT
}

/// How many levels, from the home down, a lookup of this home's keys
/// probes: the home alone while none overflowed, else down to the deepest
/// level one was placed in (every level if that is not recorded).
#[inline]
pub fn probe_levels(lock_word: u64) -> usize {
    if overflow_of(lock_word) == 0 {
        return 1;
    }
    match (lock_word >> DEEPEST_SHIFT) as usize & 7 {
        0 => LEVELS,
        deepest => (deepest + 1).min(LEVELS),
    }
}

/// The index level of the slot at byte offset `off`.
#[inline]
pub fn level_of(geo: &Geometry, off: usize) -> usize {
    (1..LEVELS)
        .rev()
        .find(|&l| off >= geo.level_off[l])
        .unwrap_or(0)
}

/// The version after the one in lock word `v`, unlocked (the overflow
/// count is not included).
#[inline]
fn next_version(v: u64) -> u64 {
    ((v & VERSION_MASK) + 2) & (VERSION_MASK & !1)
}

/// The bucket seqlocks (one per home bucket).
pub struct Locks<'a> {
    pub region: &'a Region,
    pub geo: &'a Geometry,
}

impl<'a> Locks<'a> {
    /// The lock word of `home` (a reader that begins and validates on the
    /// same word takes it once: `read_begin_on`, `read_validate_on`).
    #[inline]
    pub fn word(&self, home: u64) -> &'a AtomicU64 {
        self.region.u64_at(bucket_off(self.geo, 0, home))
    }

    /// Starts an optimistic read: the current even version.
    #[inline]
    pub fn read_begin(&self, home: u64) -> u64 {
        Self::read_begin_on(self.word(home))
    }

    /// One attempt at `read_begin`: None while the bucket is locked (a
    /// reader in another process bounds its wait: the holder may be dead).
    #[inline]
    pub fn try_read_begin(&self, home: u64) -> Option<u64> {
        Self::try_read_begin_on(self.word(home))
    }

    /// `read_begin` on a home's lock word (`word`).
    #[inline]
    pub fn read_begin_on(word: &AtomicU64) -> u64 {
        loop {
            if let Some(v) = Self::try_read_begin_on(word) {
                return v;
            }
            std::hint::spin_loop();
        }
    }

    #[inline]
    fn try_read_begin_on(word: &AtomicU64) -> Option<u64> {
        // ORDERING: Acquire pairs with the Release store in `unlock` (and
        // in `bump_all`): everything the last writer did under the lock
        // (entries, items, overflow count) is visible to the reads that
        // follow.
        let v = word.load(Ordering::Acquire);
        (v & 1 == 0).then_some(v)
    }

    /// True when nothing changed the bucket since `read_begin` returned `v`.
    #[inline]
    pub fn read_validate(&self, home: u64, v: u64) -> bool {
        Self::read_validate_on(self.word(home), v)
    }

    /// `read_validate` on a home's lock word (`word`).
    #[inline]
    pub fn read_validate_on(word: &AtomicU64, v: u64) -> bool {
        // ORDERING: Acquire fence: keeps the item reads above from moving
        // below the version load, and pairs with the Release fences of a
        // segment's reuser (`FreeList::pop`) and of compaction
        // (`Writer::keep_item`): a reader that read any byte written after
        // such a fence also sees the version bumps that preceded it.
        fence(Ordering::Acquire);
        // ORDERING: Relaxed: ordered by the fence above.
        word.load(Ordering::Relaxed) == v
    }

    /// Locks the bucket only if it is still at version `v` (that doubles as
    /// validating every read made under `v`).
    #[inline]
    pub fn lock_at(&self, home: u64, v: u64) -> bool {
        // ORDERING: Acquire on success pairs with the Release store in
        // `unlock` (the previous holder's writes happen before ours); a
        // reader that sees an entry we store after this (Release) also sees
        // the locked version. Relaxed on failure: we only retry.
        self.word(home)
            .compare_exchange(v, v | 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    pub fn lock(&self, home: u64) -> u64 {
        loop {
            let v = self.read_begin(home);
            if self.lock_at(home, v) {
                return v;
            }
        }
    }

    pub fn try_lock(&self, home: u64) -> Option<u64> {
        // ORDERING: Relaxed: only a guess of the version; `lock_at` acquires.
        let v = self.word(home).load(Ordering::Relaxed);
        (v & 1 == 0 && self.lock_at(home, v)).then_some(v)
    }

    /// Releases a lock taken at version `v`; the version moves on by one
    /// (+2 on the word) and the overflow count keeps its current value.
    #[inline]
    pub fn unlock(&self, home: u64, v: u64) {
        let w = self.word(home);
        // ORDERING: Relaxed: we hold the lock, so only we write the word.
        let overflow = w.load(Ordering::Relaxed) & !VERSION_MASK;
        // ORDERING: Release pairs with the Acquire in `read_begin` and
        // `lock_at`: our writes under the lock happen before theirs.
        w.store(overflow | next_version(v), Ordering::Release);
    }

    /// Adds `delta` to the count of this home's keys stored outside it, one
    /// of which (when adding) was placed in `level`. The deepest level
    /// only grows while the count is not zero, so it covers every key of
    /// the home outside it; a saturated count stays (recovery recounts):
    /// an undercount would hide keys, an overcount costs only probes. The
    /// caller holds the lock (readers see the change with the unlock).
    #[inline]
    pub fn adjust_overflow(&self, home: u64, delta: i64, level: usize) {
        let w = self.word(home);
        // ORDERING: Relaxed: we hold the lock, so only we write the word.
        let cur = w.load(Ordering::Relaxed);
        let count = match overflow_of(cur) {
            OVERFLOW_MAX => OVERFLOW_MAX,
            n => (n as i64 + delta).clamp(0, OVERFLOW_MAX as i64) as u64,
        };
        let deepest = match count {
            0 => 0,
            _ if delta > 0 => ((cur >> DEEPEST_SHIFT) & 7).max(level as u64),
            _ => (cur >> DEEPEST_SHIFT) & 7,
        };
        // ORDERING: Relaxed: published by the Release store in `unlock`.
        w.store(
            (cur & VERSION_MASK) | deepest << DEEPEST_SHIFT | count << OVERFLOW_SHIFT,
            Ordering::Relaxed,
        );
    }

    /// Moves every home's version on (recovery's last step, after it
    /// changed the index without taking locks): a reader in another
    /// process whose read or `ValueView` spans the recovery fails its
    /// validation instead of trusting entries recovery dropped.
    pub fn bump_all(&self) {
        for home in 0..self.geo.buckets[0] {
            let w = self.word(home);
            // ORDERING: Relaxed: recovery runs single-threaded in its process.
            let v = w.load(Ordering::Relaxed);
            // ORDERING: Release pairs with the Acquire of `try_read_begin`
            // in other processes: a reader that sees the new version sees
            // the recovered index (and suspect flags) too.
            w.store((v & !VERSION_MASK) | next_version(v), Ordering::Release);
        }
    }

    /// Clears locks left held by a crashed writer and zeroes the overflow
    /// counts, which recovery recomputes (attach after a crash only).
    pub fn reset_all(&self) -> u64 {
        let mut stuck = 0;
        for home in 0..self.geo.buckets[0] {
            let w = self.word(home);
            // ORDERING: Relaxed: recovery runs single-threaded, before the
            // cache is shared.
            let v = w.load(Ordering::Relaxed);
            stuck += v & 1;
            // ORDERING: Relaxed, as above.
            w.store(next_version(v), Ordering::Relaxed);
        }
        stuck
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trips() {
        let e = Entry::new(0xBEEF, 12345, (SEGMENT_SIZE - 1) as u32, 5);
        assert_eq!(
            (e.tag(), e.seg(), e.off(), e.freq()),
            (0xBEEF, 12345, (SEGMENT_SIZE - 1) as u32, 5)
        );
        assert!(!Entry::new(0, 0, 0, 0).is_empty());
        assert_eq!(e.with_freq(0).location(), e.location());
    }

    #[test]
    fn slots_cover_every_level() {
        let geo = Geometry::for_memory(64 << 20).unwrap();
        let total = geo.total_slots();
        assert!(slot_off(&geo, total - 1).is_some());
        assert!(slot_off(&geo, total).is_none());
        assert_eq!(
            candidate_slots(&geo, KeyHash::of(b"k")).count(),
            LEVELS * BUCKET_SLOTS - 1
        );
        let mut offs: Vec<usize> = (0..total).map(|s| slot_off(&geo, s).unwrap()).collect();
        assert!(all_slot_offs(&geo).eq(offs.iter().copied()), "same order");
        offs.sort_unstable();
        offs.dedup();
        assert_eq!(
            offs.len() as u64,
            total,
            "slot numbers map to distinct words"
        );
        for slot in [0, 6, 7, total / 2, total - 1] {
            let (bucket, end) = bucket_of_slot(&geo, slot).unwrap();
            let off = slot_off(&geo, slot).unwrap();
            assert_eq!(bucket as usize, (off - geo.level_off[0]) / 64);
            assert!(first_slot_of_bucket(&geo, bucket) <= slot && slot < end);
            assert_eq!(first_slot_of_bucket(&geo, bucket + 1), end);
        }
        assert!(bucket_of_slot(&geo, total).is_none());
        assert_eq!(first_slot_of_bucket(&geo, geo.total_buckets()), total);
        let lock_word =
            |o: &usize| *o < geo.level_off[1] && (o - geo.level_off[0]).is_multiple_of(64);
        assert!(!offs.iter().any(lock_word), "no slot is a lock word");
    }
}
