//! The file's geometry: where the header, writer slots, bucket locks, index
//! levels, segment headers and segments lie. Everything is an offset from the
//! start of the file, so the file can be mapped at any address.
//!
//! ```text
//! 0        header (4 KiB): magic, layout version, geometry (checksummed),
//!          generation, clean flag, free-list head
//! 4096     writer slots: MAX_WRITERS x 256 B (key counters, active
//!          segments, per-namespace key counters)
//! journals MAX_WRITERS x JOURNAL_BYTES: each writer's intent journal
//!          (journal.rs), what a multi-key write is doing, for recovery
//! index    levels of 64-byte buckets, sizes 1/2, 1/4, ... of all slots; a
//!          level-0 bucket is its keys' home: a seqlock word and 7 entries,
//!          deeper buckets hold 8 entries
//! summary  occupancy summary (occupancy.rs): a u8 entry count per 8
//!          buckets (8 per word), then one bit per such word (63 per word)
//! seghdr   one 64-byte header per segment
//! segments SEGMENT_SIZE bytes each, 4 KiB aligned
//! ```

use crate::region::Region;
use crate::sync::Ordering;

pub const MAGIC: u64 = u64::from_le_bytes(*b"CITADEL1");
/// Bumped whenever anything in this file's layout or in the item format changes.
pub const LAYOUT_VERSION: u32 = 7;
/// The older layouts a file may have that this build upgrades in place on
/// open (`Geometry::upgrade_header`): 6 differs from 7 only in the writer
/// slots' per-namespace counters (`W_NS_KEYS`, `W_NS_EXPIRES`), 5 also in
/// the index lock words (no deepest-overflow-level field); recovery's
/// recount rebuilds both, so an upgrade keeps the cache warm.
pub const UPGRADES_FROM: std::ops::RangeInclusive<u32> = 5..=6;
pub const HEADER_BYTES: usize = 4096;
#[cfg(not(fuzzing))]
pub const MAX_WRITERS: usize = 64;
#[cfg(fuzzing)]
pub const MAX_WRITERS: usize = 4;
pub const WRITER_SLOT_BYTES: usize = 256;
/// One writer's intent journal (journal.rs): a 64-byte header, then
/// 16-byte records, one per key a multi-key write changes (252 of them).
/// Pages no write ever journaled into stay unallocated in a sparse file.
#[cfg(not(fuzzing))]
pub const JOURNAL_BYTES: usize = 4096;
/// Fuzz builds keep the journals small enough for their tiny files.
#[cfg(fuzzing)]
pub const JOURNAL_BYTES: usize = 256;
#[cfg(not(fuzzing))]
pub const SEGMENT_SIZE: usize = 1 << 20;
/// Fuzz builds use tiny segments and files so that one execution (copy an
/// image, attach, recover, read everything) takes microseconds.
#[cfg(fuzzing)]
pub const SEGMENT_SIZE: usize = 4 << 10;
pub const SEGMENT_HEADER_BYTES: usize = 64;
pub const BUCKET_SLOTS: usize = 8;
pub const LEVELS: usize = 5;
/// Share of all index slots in each level, in 32nds: 24, 4, 2, 1, 1. A large
/// home level keeps most keys at home (one index line per hit and per miss)
/// until the index is nearly full; the small deeper levels absorb overflow.
const LEVEL_32NDS: [u64; LEVELS] = [24, 4, 2, 1, 1];
/// Index sizing: one slot per this many bytes of the file. Sized so that
/// 16-byte keys with 32-byte values fill the index and the value store at
/// about the same time (see ARCHITECTURE.md, "Memory per item").
pub const BYTES_PER_SLOT: u64 = 52;
#[cfg(not(fuzzing))]
pub const MIN_MEMORY: u64 = 8 << 20;
#[cfg(fuzzing)]
pub const MIN_MEMORY: u64 = 32 << 10;

/// Occupancy summary (occupancy.rs): one u8 entry count per group of this
/// many consecutive buckets (at most 64 entries), eight counts per word.
pub const BUCKETS_PER_GROUP: u64 = 8;
pub const BUCKETS_PER_FINE_WORD: u64 = 8 * BUCKETS_PER_GROUP;
/// One "maybe occupied" bit per count word, 63 per word: bit 63 is the
/// clearing flag.
pub const FINE_WORDS_PER_COARSE: u64 = 63;

/// Entry slots per bucket in `level`: the home level keeps its seqlock in word 0.
#[inline]
pub const fn slots_per_bucket(level: usize) -> usize {
    if level == 0 {
        BUCKET_SLOTS - 1
    } else {
        BUCKET_SLOTS
    }
}

// Header field offsets. Static fields (covered by the checksum) first.
pub const H_MAGIC: usize = 0;
pub const H_VERSION: usize = 8; // u32, then u32 checksum at 12
pub const H_CHECKSUM: usize = 12;
pub const H_FILE_SIZE: usize = 16;
pub const H_SEGMENTS: usize = 24;
pub const H_BUCKETS: usize = 32; // LEVELS x u64
pub const H_STATIC_END: usize = H_BUCKETS + 8 * LEVELS;
// Dynamic fields, each on its own cache line where contended.
pub const H_GENERATION: usize = 128;
pub const H_CLEAN: usize = 136;
pub const H_FREE_HEAD: usize = 192;
/// The logical database -> namespace table and the namespaces written
/// (namespace.rs); zero in a new file and in files from before them.
pub const H_DB_TABLE: usize = 256;
pub const H_NAMESPACES_USED: usize = 264;

// Offsets inside one writer slot: persistent counters (one writer each),
// then the active segment id + 1 per TTL class (u32 each), then the keys
// and the keys with a TTL of each namespace but 0 (u32 each, indexed by
// namespace, wrapping: a writer's share may be negative; the sum over the
// writers is exact while the cache holds fewer than 2^31 keys, and
// namespace 0's is the total less the others', see `Cache::namespace_len`).
pub const W_KEYS: usize = 8;
pub const W_EXPIRES: usize = 16;
pub const W_ACTIVE: usize = 64;
pub const W_NS_KEYS: usize = 128;
pub const W_NS_EXPIRES: usize = W_NS_KEYS + 4 * MAX_NAMESPACES;
/// Namespaces the header's table can map (logical databases).
pub const MAX_NAMESPACES: usize = 16;
const _: () = assert!(W_NS_EXPIRES + 4 * MAX_NAMESPACES <= WRITER_SLOT_BYTES);

/// Sizes and offsets of every region, derived from the file size alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    pub file_size: u64,
    pub segments: u32,
    /// Buckets per level.
    pub buckets: [u64; LEVELS],
    pub writers_off: usize,
    /// Writer `w`'s intent journal is at `journals_off + w * JOURNAL_BYTES`.
    pub journals_off: usize,
    /// Offset of each level's first bucket.
    pub level_off: [usize; LEVELS],
    /// Occupancy summary: `fine_words` count words, then the bit words.
    pub summary_off: usize,
    pub seghdr_off: usize,
    pub segdata_off: usize,
}

fn align(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

impl Geometry {
    /// Lays out a file of at most `max_memory` bytes.
    pub fn for_memory(max_memory: u64) -> Option<Geometry> {
        if max_memory < MIN_MEMORY {
            return None;
        }
        let slots = max_memory / BYTES_PER_SLOT;
        let mut buckets = [0u64; LEVELS];
        for (b, share) in buckets.iter_mut().zip(LEVEL_32NDS) {
            *b = (slots * share / 32 / BUCKET_SLOTS as u64).max(1);
        }
        let fixed = Self::place(buckets, 0, max_memory).segdata_off as u64;
        let segments =
            (max_memory.checked_sub(fixed)? / (SEGMENT_SIZE + SEGMENT_HEADER_BYTES) as u64) as u32;
        if segments < 4 {
            return None;
        }
        Some(Self::place(buckets, segments, max_memory))
    }

    /// Recomputes the geometry recorded in an existing header.
    pub fn from_parts(file_size: u64, segments: u32, buckets: [u64; LEVELS]) -> Geometry {
        Self::place(buckets, segments, file_size)
    }

    fn place(buckets: [u64; LEVELS], segments: u32, file_size: u64) -> Geometry {
        let writers_off = HEADER_BYTES;
        let journals_off = align(writers_off + MAX_WRITERS * WRITER_SLOT_BYTES, 64);
        let mut off = align(journals_off + MAX_WRITERS * JOURNAL_BYTES, 64);
        let mut level_off = [0usize; LEVELS];
        for (lo, b) in level_off.iter_mut().zip(buckets) {
            *lo = off;
            off += b as usize * BUCKET_SLOTS * 8;
        }
        let summary_off = align(off, 64);
        let total_buckets: u64 = buckets.iter().sum();
        let fine = total_buckets.div_ceil(BUCKETS_PER_FINE_WORD);
        let summary_words = fine + fine.div_ceil(FINE_WORDS_PER_COARSE);
        let seghdr_off = align(summary_off + 8 * summary_words as usize, 64);
        let segdata_off = align(seghdr_off + segments as usize * SEGMENT_HEADER_BYTES, 4096);
        Geometry {
            file_size,
            segments,
            buckets,
            writers_off,
            journals_off,
            level_off,
            summary_off,
            seghdr_off,
            segdata_off,
        }
    }

    /// Bytes the layout really uses (never more than the configured limit).
    pub fn used_size(&self) -> u64 {
        (self.segdata_off + self.segments as usize * SEGMENT_SIZE) as u64
    }

    pub fn index_bytes(&self) -> u64 {
        (self.summary_off - self.level_off[0]) as u64
    }

    /// Buckets of every level together (levels are laid out back to back,
    /// so a bucket's global number is its offset from level 0 over 64).
    pub fn total_buckets(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Count words of the occupancy summary (then come the bit words).
    pub fn fine_words(&self) -> u64 {
        self.total_buckets().div_ceil(BUCKETS_PER_FINE_WORD)
    }

    pub fn coarse_words(&self) -> u64 {
        self.fine_words().div_ceil(FINE_WORDS_PER_COARSE)
    }

    /// Entry slots in `level` (a level-0 bucket gives one word to its lock).
    pub fn level_slots(&self, level: usize) -> u64 {
        self.buckets[level] * slots_per_bucket(level) as u64
    }

    pub fn total_slots(&self) -> u64 {
        (0..LEVELS).map(|l| self.level_slots(l)).sum()
    }

    /// Writes the static header fields and their checksum.
    pub fn write_header(&self, region: &Region) {
        // ORDERING: Relaxed: the static fields are published by the Release
        // store of the magic below.
        region
            .u64_at(H_FILE_SIZE)
            .store(self.file_size, Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        region
            .u64_at(H_SEGMENTS)
            .store(self.segments as u64, Ordering::Relaxed);
        for (i, b) in self.buckets.iter().enumerate() {
            // ORDERING: Relaxed, as above.
            region
                .u64_at(H_BUCKETS + 8 * i)
                .store(*b, Ordering::Relaxed);
        }
        stamp_version(region);
        // The magic goes last: a file torn while being created has no magic
        // and is reported as corrupt instead of being attached.
        // ORDERING: Release pairs with the Acquire load of the magic in
        // `read_header`: the fields above are visible to whoever sees it.
        region.u64_at(H_MAGIC).store(MAGIC, Ordering::Release);
    }

    /// Reads the static header; Err says what is wrong.
    /// Upgrades the header of a file of a layout in [`UPGRADES_FROM`] to this
    /// one, before it is read: marks the file unclean first (so the
    /// recovery that rebuilds the lock words runs, on this open or, if this
    /// process dies first, the next), then writes the version and the
    /// header's checksum. Anything else (another version, a bad magic or
    /// checksum) is left for `read_header` to report. The version it was,
    /// when upgraded.
    pub fn upgrade_header(region: &Region) -> Option<u32> {
        if region.len() < HEADER_BYTES {
            return None;
        }
        // ORDERING: Relaxed: single-threaded (attaching, under the flock).
        let magic = region.u64_at(H_MAGIC).load(Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        let version = region.u32_at(H_VERSION).load(Ordering::Relaxed);
        // ORDERING: Relaxed, as above.
        let checksum = region.u32_at(H_CHECKSUM).load(Ordering::Relaxed);
        if magic != MAGIC
            || !UPGRADES_FROM.contains(&version)
            || checksum != static_checksum(region)
        {
            return None;
        }
        // ORDERING: Release: the unclean mark is stored before the new
        // version (pairs with the Acquire load of H_CLEAN on attach).
        region.u64_at(H_CLEAN).store(0, Ordering::Release);
        stamp_version(region);
        Some(version)
    }

    pub fn read_header(region: &Region) -> Result<Geometry, HeaderProblem> {
        if region.len() < HEADER_BYTES {
            return Err(HeaderProblem::NotCache("file too short for a header"));
        }
        // ORDERING: Acquire pairs with the Release store of the magic in
        // `write_header` (in practice the file comes from another process,
        // ordered by the flock and mmap system calls).
        if region.u64_at(H_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(HeaderProblem::NotCache("bad magic"));
        }
        // ORDERING: Relaxed: ordered after the magic's Acquire load.
        let version = region.u32_at(H_VERSION).load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(HeaderProblem::Version(version));
        }
        // ORDERING: Relaxed, as the version.
        if region.u32_at(H_CHECKSUM).load(Ordering::Relaxed) != static_checksum(region) {
            return Err(HeaderProblem::Corrupt("header checksum mismatch".into()));
        }
        // ORDERING: Relaxed, as the version.
        let file_size = region.u64_at(H_FILE_SIZE).load(Ordering::Relaxed);
        // ORDERING: Relaxed, as the version.
        let segments = region.u64_at(H_SEGMENTS).load(Ordering::Relaxed);
        let mut buckets = [0u64; LEVELS];
        for (i, b) in buckets.iter_mut().enumerate() {
            // ORDERING: Relaxed, as the version.
            *b = region.u64_at(H_BUCKETS + 8 * i).load(Ordering::Relaxed);
        }
        // Every size is checked before anything is computed from it: a
        // corrupt (but checksummed) header must not overflow the arithmetic.
        let fits = |n: u64| n <= region.len() as u64;
        if !fits(segments)
            || segments > u32::MAX as u64
            || !buckets.iter().all(|&b| b > 0 && fits(b))
        {
            return Err(HeaderProblem::Corrupt("geometry exceeds the file".into()));
        }
        let geo = Geometry::from_parts(file_size, segments as u32, buckets);
        if geo.used_size() > region.len() as u64 {
            return Err(HeaderProblem::Corrupt("geometry exceeds the file".into()));
        }
        Ok(geo)
    }
}

#[derive(Debug)]
pub enum HeaderProblem {
    /// No cache header at all (too short, bad magic).
    NotCache(&'static str),
    Version(u32),
    Corrupt(String),
}

/// Writes this build's layout version and the checksum of the static
/// header fields (which cover it).
fn stamp_version(region: &Region) {
    // ORDERING: Relaxed: single-threaded (creating or attaching the file,
    // under the flock); published by the magic's Release store on creation.
    region
        .u32_at(H_VERSION)
        .store(LAYOUT_VERSION, Ordering::Relaxed);
    // ORDERING: Relaxed, as above.
    region
        .u32_at(H_CHECKSUM)
        .store(static_checksum(region), Ordering::Relaxed);
}

pub(crate) fn static_checksum(region: &Region) -> u32 {
    let mut bytes = [0u8; 4 + H_STATIC_END - H_FILE_SIZE];
    // ORDERING: Relaxed: single-threaded (creating or attaching the file).
    let version = region.u32_at(H_VERSION).load(Ordering::Relaxed);
    bytes[..4].copy_from_slice(&version.to_le_bytes());
    for (i, off) in (H_FILE_SIZE..H_STATIC_END).step_by(8).enumerate() {
        // ORDERING: Relaxed, as above.
        let word = region.u64_at(off).load(Ordering::Relaxed);
        bytes[4 + 8 * i..12 + 8 * i].copy_from_slice(&word.to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_64(&bytes) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_fits_the_limit() {
        for mb in [8u64, 64, 100, 1024, 4096] {
            let g = Geometry::for_memory(mb << 20).unwrap();
            assert!(g.used_size() <= mb << 20, "{mb} MiB: {g:?}");
            assert!(g.segments >= 4);
        }
        assert!(Geometry::for_memory(1 << 20).is_none());
    }
}
