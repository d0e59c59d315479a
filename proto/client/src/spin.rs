//! How long a caller waiting for its reply reads the shared-memory reply
//! ring itself before it sleeps: a budget learnt from what spinning gets.
//!
//! Spinning pays when a core is free for it: the reply then arrives within
//! a few µs and costs no wake-up. On a host whose cores are all busy (the
//! server's thread among them) a spinning caller delays the very reply it
//! waits for. So each spin that ends with the reply restores the budget
//! to [`MAX`] and each that ends without it halves it; once it falls to
//! zero, every [`PROBE_EVERY`]th call spins the full [`MAX`] again to see
//! whether things changed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The longest spin, in µs: a cache operation's round trip with the
/// server attentive, not a slow call's.
pub(crate) const MAX: u32 = 30;
/// Below this the budget is zero (a spin shorter than a round trip only
/// burns CPU).
const MIN: u32 = 2;
pub(crate) const PROBE_EVERY: u32 = 64;

#[derive(Debug)]
pub(crate) struct SpinBudget {
    micros: AtomicU32,
    calls: AtomicU32,
}

impl SpinBudget {
    pub(crate) fn new() -> Self {
        Self {
            micros: AtomicU32::new(MAX),
            calls: AtomicU32::new(0),
        }
    }

    /// How long this call may spin.
    pub(crate) fn next(&self) -> Duration {
        // ORDERING: Relaxed throughout; a heuristic, racing updates only
        // make it learn a little slower.
        let micros = self.micros.load(Ordering::Relaxed);
        if micros > 0 {
            return Duration::from_micros(micros.into());
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        if n % PROBE_EVERY == PROBE_EVERY - 1 {
            Duration::from_micros(MAX.into())
        } else {
            Duration::ZERO
        }
    }

    /// What a spin got: the reply (`true`) or nothing before its budget ran out.
    pub(crate) fn record(&self, got_reply: bool) {
        let micros = self.micros.load(Ordering::Relaxed);
        // A hit restores the whole budget: a budget grown back from zero
        // step by step stays shorter than a round trip for long and keeps
        // missing.
        let next = if got_reply {
            MAX
        } else if micros / 2 < MIN {
            0
        } else {
            micros / 2
        };
        self.micros.store(next, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_stop_the_spinning_and_a_probe_that_hits_restarts_it() {
        let budget = SpinBudget::new();
        assert_eq!(budget.next(), Duration::from_micros(MAX.into()));
        for _ in 0..5 {
            budget.record(false);
        }
        let spins = (0..PROBE_EVERY).filter(|_| budget.next() > Duration::ZERO);
        assert_eq!(spins.count(), 1, "one probe per {PROBE_EVERY} calls");
        budget.record(true);
        assert_eq!(budget.next(), Duration::from_micros(MAX.into()));
        budget.record(false);
        assert_eq!(budget.next(), Duration::from_micros((MAX / 2).into()));
    }
}
