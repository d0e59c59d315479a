//! Token-bucket quotas (`overload-quotas`), shared by every core: each
//! bucket is one atomic word, the GCRA form of a token bucket (the
//! "theoretical arrival time" of the next request): taking a token is one
//! compare-and-swap, refilling is implicit in the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The burst a bucket allows: this fraction of a second of its rate.
const BURST_PER_SECOND: u64 = 20;

/// One rate limit: `rate` requests per second, `rate / 20` (at least 1) of
/// burst.
#[derive(Debug)]
pub struct Bucket {
    /// Nanoseconds per request.
    step_ns: u64,
    /// How far ahead of now the arrival time may run (the burst).
    burst_ns: u64,
    /// Theoretical arrival time, in ns since the process epoch.
    tat_ns: AtomicU64,
    pub rate: u64,
}

impl Bucket {
    pub fn new(rate: u64) -> Bucket {
        let step_ns = 1_000_000_000 / rate.max(1);
        let burst = (rate / BURST_PER_SECOND).max(1);
        Bucket {
            step_ns,
            burst_ns: step_ns * burst,
            tat_ns: AtomicU64::new(0),
            rate,
        }
    }

    /// Takes a token; false when the bucket is empty.
    pub fn take(&self) -> bool {
        let now = now_ns();
        // ORDERING: Relaxed: the word is the whole state; the CAS orders
        // the updates among themselves.
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            // The burst's last token is the one `step` before the limit.
            if start - now > self.burst_ns - self.step_ns {
                return false;
            }
            match self.tat_ns.compare_exchange_weak(
                tat,
                start + self.step_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

/// Monotonic nanoseconds since the first call.
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let b = Bucket::new(100);
        // 100/s with a burst of 5: five pass at once, the sixth waits.
        let passed = (0..10).filter(|_| b.take()).count();
        assert_eq!(passed, 5);
    }
}
