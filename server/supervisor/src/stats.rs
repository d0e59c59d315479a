//! Counters and a latency histogram per plugin, written by every server
//! thread with relaxed atomics and read by PLUGIN INFO / INFO plugins.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Sub-buckets per power of two: latencies are kept to within 12.5%.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets up to 2^40 µs (about 12 days).
const BUCKETS: usize = ((40 - SUB_BITS as usize) + 1) * SUB as usize;

#[derive(Debug, Default)]
pub struct CallStats {
    /// Calls sent and not yet answered (replied, failed or timed out).
    pub in_flight: AtomicU64,
    /// Replies received (successful or not).
    pub processed: AtomicU64,
    /// Error and poison replies.
    pub errors: AtomicU64,
    pub poisoned: AtomicU64,
    pub timeouts: AtomicU64,
    /// Calls refused at once: ring full or max-inflight reached.
    pub rejected: AtomicU64,
    /// Replies to requests no longer waited for (duplicates, late replies).
    pub dropped: AtomicU64,
    pub latency: Latency,
}

/// A log-linear histogram of call latencies in microseconds.
#[derive(Debug)]
pub struct Latency {
    buckets: Box<[AtomicU64]>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let us = us.min((1 << 40) - 1);
    let e = 63 - us.leading_zeros();
    let sub = (us >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The upper bound (µs) of bucket `i`.
fn bucket_top(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let e = i / SUB + u64::from(SUB_BITS) - 1;
    let sub = i % SUB;
    ((SUB + sub + 1) << (e - u64::from(SUB_BITS))) - 1
}

impl Latency {
    pub fn record(&self, d: Duration) {
        self.buckets[bucket(d.as_micros() as u64)].fetch_add(1, Relaxed);
    }

    /// The latency (µs) below which fraction `q` of the recorded calls fall.
    pub fn quantile(&self, q: f64) -> u64 {
        quantile_of(&self.counts(), q)
    }

    /// The count of every bucket (differences of two give a window's
    /// histogram, see [`quantile_of`]).
    pub fn counts(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Relaxed)).collect()
    }
}

/// The latency (µs) below which fraction `q` of the calls counted in
/// `counts` (a [`Latency::counts`], or a difference of two) fall.
pub fn quantile_of(counts: &[u64], q: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return bucket_top(i);
        }
    }
    bucket_top(BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS);
            assert!(bucket_top(b) >= us, "{us} -> {b} top {}", bucket_top(b));
            assert!(bucket_top(b) <= us + us / 8 + 1, "{us}");
            last = b;
        }
    }

    #[test]
    fn quantiles() {
        let l = Latency::default();
        for us in 1..=100 {
            l.record(Duration::from_micros(us));
        }
        let p50 = l.quantile(0.5);
        let p99 = l.quantile(0.99);
        assert!((50..=57).contains(&p50), "{p50}");
        assert!((99..=112).contains(&p99), "{p99}");
    }
}
