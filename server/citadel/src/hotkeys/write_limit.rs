//! The per-key write rate limit (`hotkeys-write-limit`): writes a second
//! per key, over all cores, in a shared hash-indexed table. Each counter
//! packs the second it counts (high 32 bits) and its count (low 32 bits),
//! so a new second restarts it without a sweep. Two rows, the smaller
//! count wins: a key is limited by another's writes only if it collides
//! with heavy writers in both.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const ROWS: usize = 2;
const BUCKETS: usize = 8192;

pub struct WriteLimit {
    /// Writes a second per key; 0: off.
    limit: AtomicU64,
    counters: Box<[AtomicU64]>,
}

impl Default for WriteLimit {
    fn default() -> Self {
        WriteLimit {
            limit: AtomicU64::new(0),
            counters: (0..ROWS * BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl WriteLimit {
    pub fn set_limit(&self, per_sec: u64) {
        self.limit.store(per_sec, Relaxed);
    }

    /// The limit in writes a second, None when off (one relaxed load: what
    /// every write pays while it is off).
    #[inline]
    pub fn limit(&self) -> Option<u64> {
        match self.limit.load(Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Counts one write of `hash` in second `now`; false when the key
    /// already took `limit` writes this second (the write is refused and
    /// not counted).
    pub fn admit(&self, hash: u64, now: u32, limit: u64) -> bool {
        let taken = (0..ROWS)
            .map(|row| self.count(row, hash, now))
            .min()
            .unwrap_or(0);
        if taken >= limit {
            return false;
        }
        for row in 0..ROWS {
            let counter = &self.counters[slot(row, hash)];
            let mut seen = counter.load(Relaxed);
            loop {
                let next = if (seen >> 32) as u32 == now {
                    seen + 1
                } else {
                    (u64::from(now) << 32) | 1
                };
                match counter.compare_exchange_weak(seen, next, Relaxed, Relaxed) {
                    Ok(_) => break,
                    Err(actual) => seen = actual,
                }
            }
        }
        true
    }

    fn count(&self, row: usize, hash: u64, now: u32) -> u64 {
        let packed = self.counters[slot(row, hash)].load(Relaxed);
        if (packed >> 32) as u32 == now {
            packed & u64::from(u32::MAX)
        } else {
            0
        }
    }
}

fn slot(row: usize, hash: u64) -> usize {
    row * BUCKETS + ((hash >> (row * 32)) as usize & (BUCKETS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_second() {
        let w = WriteLimit::default();
        assert!((0..3).all(|_| w.admit(9, 100, 3)));
        assert!(!w.admit(9, 100, 3));
        assert!(w.admit(10, 100, 3), "another key has its own count");
        assert!(w.admit(9, 101, 3), "a new second starts over");
    }
}
