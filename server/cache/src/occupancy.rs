//! The index's occupancy summary: lets SCAN jump over empty regions.
//!
//! Buckets are numbered globally (level 0 first; the levels lie back to
//! back). Every group of 8 buckets has a u8 count of its non-empty entries
//! (at most 64), eight counts per *count word* (64 buckets, 4 KiB of
//! index); every count word has a *maybe-occupied bit*, 63 per *bit word*,
//! whose bit 63 is the clearing flag. 1 GiB of file: 320 KiB of counts and
//! 5 KiB of bits (0.03%).
//!
//! * A writer that claims an empty slot (0 -> entry: a store at home, a
//!   CAS deeper; home locked) adds one to the group's count, then makes
//!   sure the bit is set; a writer that
//!   empties a slot (home locked) subtracts one. Each count changes under
//!   the home lock of the key whose entry changed, after its claim and before
//!   its removal, so a count never goes below zero (no borrow into a
//!   neighbour) and never above 64 (no carry).
//! * Only scans clear bits (`try_clear`), when they find a count word all
//!   zero: flag and clear the bit in one CAS, re-read the count word with a
//!   read-modify-write, put the bit back if it is non-zero, drop the flag.
//!   A scan treats a flagged bit word as all set.
//! * Why a scan never skips a key present for its whole run: the key's
//!   insert (count increment, then the bit check) happened before the scan,
//!   so the scan reads a count that includes it. It reads the bit set, or
//!   flagged, or cleared by a clearer whose CAS comes after the inserter's
//!   bit check. Such a clearer's count re-read comes after the increment:
//!   were it before, its Release would synchronise with the increment's
//!   Acquire and the inserter's check would have seen the cleared bit (and
//!   set it). So the clearer saw the key's count and put the bit back.
//!   `tests/loom_occupancy.rs` checks this with loom.
//! * The summary is derived state: crash recovery recounts it.

use crate::layout::{Geometry, BUCKETS_PER_FINE_WORD, BUCKETS_PER_GROUP, FINE_WORDS_PER_COARSE};
use crate::region::Region;
use crate::sync::{AtomicU64, Ordering};

const CLEARING: u64 = 1 << 63;

/// The summary words of one mapping.
pub struct Occupancy<'a> {
    pub region: &'a Region,
    pub geo: &'a Geometry,
}

impl<'a> Occupancy<'a> {
    /// Global bucket number of the entry slot at byte offset `off`.
    #[inline]
    pub fn bucket_of(&self, off: usize) -> u64 {
        ((off - self.geo.level_off[0]) / 64) as u64
    }

    fn fine(&self, word: u64) -> &'a AtomicU64 {
        self.region.u64_at(self.geo.summary_off + 8 * word as usize)
    }

    fn coarse(&self, word: u64) -> &'a AtomicU64 {
        let at = self.geo.fine_words() + word / FINE_WORDS_PER_COARSE;
        self.region.u64_at(self.geo.summary_off + 8 * at as usize)
    }

    /// The count word of `bucket` and the unit of its group's count there.
    fn count_of(&self, bucket: u64) -> (u64, u64) {
        let word = bucket / BUCKETS_PER_FINE_WORD;
        let group = (bucket % BUCKETS_PER_FINE_WORD) / BUCKETS_PER_GROUP;
        (word, 1 << (8 * group))
    }

    /// An empty slot at `off` now holds an entry (its key's home is locked).
    #[inline]
    pub fn claimed(&self, off: usize) {
        let (word, one) = self.count_of(self.bucket_of(off));
        // ORDERING: Acquire pairs with the Release count re-read of
        // `try_clear`: if that re-read came first (missing this increment),
        // its bit clear happens before our bit check below, which then sees
        // the bit clear or flagged and sets it. (Scans need no Release: a
        // key inserted before a scan began is ordered before it by the
        // client's round trip.)
        self.fine(word).fetch_add(one, Ordering::Acquire);
        let bit = 1u64 << (word % FINE_WORDS_PER_COARSE);
        let coarse = self.coarse(word);
        // ORDERING: Relaxed: coherence with the clearer's CAS, which the
        // Acquire above orders before this load, is all that is needed.
        let cur = coarse.load(Ordering::Relaxed);
        // A flagged word with our bit set is a clearer of another count
        // word (one clearer at a time per bit word): it leaves our bit be.
        if cur & bit == 0 {
            // ORDERING: Relaxed: a read-modify-write, so it lands after the
            // value just loaded; a clearer in progress keeps it (its last
            // steps are read-modify-writes too).
            coarse.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// The slot at `off` was emptied (its key's home is locked).
    pub fn cleared(&self, off: usize) {
        let (word, one) = self.count_of(self.bucket_of(off));
        // ORDERING: Relaxed: a scan may skip a key being removed; as a
        // read-modify-write it continues the release sequence of a
        // clearer's re-read, which `claimed` relies on.
        self.fine(word).fetch_sub(one, Ordering::Relaxed);
    }

    /// The first group start at or after `bucket` (a group start) whose
    /// group may hold entries, or `total_buckets` when none does. Reading a
    /// summary word costs 1 from `budget`; when it runs out, returns where
    /// it got to. Clears the bits of count words it finds all zero.
    pub fn next_occupied(&self, mut bucket: u64, budget: &mut u64) -> u64 {
        let total = self.geo.total_buckets();
        let mut coarse_at = u64::MAX;
        let mut bits = 0u64;
        while bucket < total && *budget > 0 {
            let word = bucket / BUCKETS_PER_FINE_WORD;
            if word / FINE_WORDS_PER_COARSE != coarse_at {
                coarse_at = word / FINE_WORDS_PER_COARSE;
                *budget -= 1;
                // ORDERING: Relaxed: a key inserted before this scan began
                // set its bit before that (through the client's round trip);
                // coherence makes this load see it or a later value.
                let cur = self.coarse(word).load(Ordering::Relaxed);
                bits = if cur & CLEARING != 0 { !0 } else { cur };
            }
            let from = word % FINE_WORDS_PER_COARSE;
            let ahead = (bits & !CLEARING) >> from;
            if ahead == 0 {
                bucket = (coarse_at + 1) * FINE_WORDS_PER_COARSE * BUCKETS_PER_FINE_WORD;
                continue;
            }
            let skip = ahead.trailing_zeros() as u64;
            if skip > 0 {
                bucket = (word + skip) * BUCKETS_PER_FINE_WORD;
                continue;
            }
            *budget -= 1;
            // ORDERING: Relaxed, as the bit word: an earlier insert's
            // increment is seen by coherence.
            let counts = self.fine(word).load(Ordering::Relaxed);
            let group = (bucket % BUCKETS_PER_FINE_WORD) / BUCKETS_PER_GROUP;
            let rest = counts >> (8 * group);
            if rest != 0 {
                return (word * BUCKETS_PER_FINE_WORD + BUCKETS_PER_GROUP * group)
                    + BUCKETS_PER_GROUP * (rest.trailing_zeros() / 8) as u64;
            }
            if counts == 0 {
                self.try_clear(word);
            }
            bucket = (word + 1) * BUCKETS_PER_FINE_WORD;
        }
        bucket.min(total)
    }

    /// Clears the bit of count word `word` if the word is still all zero
    /// (see the module comment). Only scans call it.
    pub fn try_clear(&self, word: u64) {
        let bit = 1u64 << (word % FINE_WORDS_PER_COARSE);
        let coarse = self.coarse(word);
        // ORDERING: Relaxed: a guess for the CAS.
        let cur = coarse.load(Ordering::Relaxed);
        if cur & CLEARING != 0 || cur & bit == 0 {
            return;
        }
        // ORDERING: Relaxed: the Release re-read below publishes this clear
        // to inserters; Relaxed on failure: leave the bit for a later scan.
        if coarse
            .compare_exchange(
                cur,
                (cur & !bit) | CLEARING,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        // ORDERING: Release pairs with the Acquire increment in `claimed`:
        // a read-modify-write reads the latest count; an increment after it
        // sees our clear and sets the bit itself.
        let counts = self.fine(word).fetch_add(0, Ordering::Release);
        if counts != 0 {
            // ORDERING: Relaxed: the bit word's modification order is all
            // that matters (scans treat it as all set while flagged).
            coarse.fetch_or(bit, Ordering::Relaxed);
        }
        // ORDERING: Relaxed, as above.
        coarse.fetch_and(!CLEARING, Ordering::Relaxed);
    }

    /// Counts the entry at `off` (recovery, single-threaded).
    pub fn recount(&self, off: usize) {
        let (word, one) = self.count_of(self.bucket_of(off));
        // ORDERING: Relaxed: recovery runs single-threaded.
        self.fine(word).fetch_add(one, Ordering::Relaxed);
        let bit = 1u64 << (word % FINE_WORDS_PER_COARSE);
        // ORDERING: Relaxed, as above.
        self.coarse(word).fetch_or(bit, Ordering::Relaxed);
    }

    /// Zeroes the summary (recovery, before recounting with `count`).
    pub fn reset(&self) {
        let words = self.geo.fine_words() + self.geo.coarse_words();
        for i in 0..words as usize {
            // ORDERING: Relaxed: recovery runs single-threaded, before the
            // cache is shared.
            self.region
                .u64_at(self.geo.summary_off + 8 * i)
                .store(0, Ordering::Relaxed);
        }
    }

    /// The entry count of the group holding `bucket`, and whether its count
    /// word's bit is set with no clearing in progress (audits and models of
    /// a quiescent cache).
    pub fn group_state(&self, bucket: u64) -> (u64, bool) {
        let (word, one) = self.count_of(bucket);
        // ORDERING: Relaxed: the cache is quiescent.
        let count = (self.fine(word).load(Ordering::Relaxed) / one) & 0xFF;
        // ORDERING: Relaxed, as above.
        let bits = self.coarse(word).load(Ordering::Relaxed);
        let bit = 1u64 << (word % FINE_WORDS_PER_COARSE);
        (count, bits & bit != 0 && bits & CLEARING == 0)
    }
}
