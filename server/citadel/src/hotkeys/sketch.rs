//! One core's ring-bucket counters: a key's hash picks one counter in each
//! of [`ROWS`] rows; each counter exists once per time slice of a ring of
//! [`SLICES`], and a running sum per counter covers the whole window. The
//! owning core is the only writer (a relaxed load and store, no locked
//! instruction); any thread may read (HOTKEYS, OBJECT FREQ).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Independent rows; a key's count is the smallest of its counters (a
/// count-min sketch: collisions only ever over-count).
pub const ROWS: usize = 2;
/// Counters per row (a power of two).
pub const BUCKETS: usize = 4096;
/// Time slices in the window's ring.
pub const SLICES: usize = 10;

pub struct CoreSketch {
    /// Per counter, the sum over the ring (`ROWS * BUCKETS`).
    window: Box<[AtomicU32]>,
    /// Per slice, per counter (`SLICES * ROWS * BUCKETS`).
    slices: Box<[AtomicU32]>,
    /// The slice number (see `HotKeys::slice_at`) the ring's newest slice
    /// counts; `u64::MAX` before the first count.
    newest: AtomicU64,
}

impl Default for CoreSketch {
    fn default() -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU32::new(0)).collect();
        CoreSketch {
            window: zeros(ROWS * BUCKETS),
            slices: zeros(SLICES * ROWS * BUCKETS),
            newest: AtomicU64::new(u64::MAX),
        }
    }
}

/// The counter of `hash` in `row`.
#[inline]
fn bucket(hash: u64, row: usize) -> usize {
    let bits = (hash >> (row * 32)) as usize;
    row * BUCKETS + (bits & (BUCKETS - 1))
}

/// Single-writer increment: the owner is the only thread that stores.
#[inline]
fn bump(counter: &AtomicU32) -> u32 {
    let v = counter.load(Relaxed).saturating_add(1);
    counter.store(v, Relaxed);
    v
}

impl CoreSketch {
    /// Owner only: counts one sample of `hash` in slice `now` (advancing
    /// the ring first); returns the key's windowed estimate and whether the
    /// ring advanced (the caller then refreshes its top list).
    pub fn add(&self, hash: u64, now: u64) -> (u32, bool) {
        let advanced = self.advance(now);
        let slice = (now as usize % SLICES) * ROWS * BUCKETS;
        let mut estimate = u32::MAX;
        for row in 0..ROWS {
            let b = bucket(hash, row);
            bump(&self.slices[slice + b]);
            estimate = estimate.min(bump(&self.window[b]));
        }
        (estimate, advanced)
    }

    /// Owner only: drops the slices that fell out of the window by `now`.
    fn advance(&self, now: u64) -> bool {
        let newest = self.newest.load(Relaxed);
        if newest == now {
            return false;
        }
        let stale = if newest == u64::MAX || now < newest {
            SLICES as u64 // first use, or the window setting changed
        } else {
            (now - newest).min(SLICES as u64)
        };
        if stale == SLICES as u64 {
            // The whole window is stale: start over.
            self.slices.iter().for_each(|c| c.store(0, Relaxed));
            self.window.iter().for_each(|c| c.store(0, Relaxed));
        } else {
            // The slices now reused held the counts that left the window.
            for step in 1..=stale {
                let s = (newest.wrapping_add(step) as usize % SLICES) * ROWS * BUCKETS;
                for b in 0..ROWS * BUCKETS {
                    let dropped = self.slices[s + b].load(Relaxed);
                    if dropped != 0 {
                        self.slices[s + b].store(0, Relaxed);
                        let w = &self.window[b];
                        w.store(w.load(Relaxed).saturating_sub(dropped), Relaxed);
                    }
                }
            }
        }
        self.newest.store(now, Relaxed);
        true
    }

    /// Any thread: `hash`'s windowed count as of slice `now` (0 once the
    /// owner has counted nothing for a whole window).
    pub fn estimate(&self, hash: u64, now: u64) -> u32 {
        let newest = self.newest.load(Relaxed);
        if newest == u64::MAX || now >= newest + SLICES as u64 {
            return 0;
        }
        (0..ROWS)
            .map(|row| self.window[bucket(hash, row)].load(Relaxed))
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fall_out_of_the_window() {
        let s = CoreSketch::default();
        for _ in 0..5 {
            s.add(42, 100);
        }
        assert_eq!(s.estimate(42, 100), 5);
        s.add(42, 103);
        assert_eq!(s.estimate(42, 103), 6);
        // Slice 100 leaves the ring when slice 110 starts.
        s.add(7, 110);
        assert_eq!(s.estimate(42, 110), 1);
        assert_eq!(s.estimate(42, 113 + SLICES as u64), 0);
        s.add(7, 200);
        assert_eq!(s.estimate(42, 200), 0);
        assert_eq!(s.estimate(7, 200), 1);
    }
}
