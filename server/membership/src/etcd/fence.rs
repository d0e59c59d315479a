//! When to renew the lease, and from when this node must act as if it had
//! lost it.
//!
//! etcd starts a lease's TTL anew when it handles a grant or keep-alive,
//! which is after this node sent the request. So if the last request etcd
//! answered left here at `sent`, no other node can see the lease expire
//! before `sent + ttl` (etcd's periodic expiry check and a leader change
//! only make expiry later). The node fences itself at
//! `sent + ttl - margin`, the margin (a fifth of the TTL) covering the
//! rate difference between its clock and etcd's and the time the node
//! takes to stop serving. All times are the local monotonic clock.

use std::time::{Duration, Instant};

pub struct LeaseClock {
    ttl: Duration,
    /// When the last request etcd answered (grant or keep-alive) was sent.
    renewed_at: Instant,
}

impl LeaseClock {
    /// The clock of a lease of `ttl` granted by a request sent at `sent`.
    pub fn new(ttl: Duration, sent: Instant) -> LeaseClock {
        LeaseClock {
            ttl,
            renewed_at: sent,
        }
    }

    /// A keep-alive sent at `sent` was answered with `ttl`.
    pub fn renewed(&mut self, sent: Instant, ttl: Duration) {
        self.renewed_at = self.renewed_at.max(sent);
        self.ttl = ttl;
    }

    /// When the last request etcd answered was sent.
    pub fn renewed_at(&self) -> Instant {
        self.renewed_at
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often keep-alives are sent: three tries per TTL.
    pub fn interval(&self) -> Duration {
        self.ttl / 3
    }

    /// How soon a failed keep-alive is tried again.
    pub fn retry(&self) -> Duration {
        self.ttl / 10
    }

    /// The next regular keep-alive.
    pub fn next_renewal(&self) -> Instant {
        self.renewed_at + self.interval()
    }

    /// From this instant the lease may be gone for all this node can tell:
    /// it must stop serving.
    pub fn fence_at(&self) -> Instant {
        self.renewed_at + self.ttl - margin(self.ttl)
    }
}

/// What the node keeps between fencing itself and the earliest expiry
/// anyone else can see.
pub fn margin(ttl: Duration) -> Duration {
    ttl / 5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_comes_before_the_earliest_expiry_and_renewals_push_it() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let mut clock = LeaseClock::new(ttl, t0);
        assert_eq!(clock.fence_at(), t0 + Duration::from_secs(4));
        assert!(clock.next_renewal() < clock.fence_at());
        assert!(
            clock.next_renewal() + clock.interval() < clock.fence_at(),
            "two tries before fencing"
        );
        clock.renewed(t0 + Duration::from_secs(2), ttl);
        assert_eq!(clock.fence_at(), t0 + Duration::from_secs(6));
        // A late answer to an older request does not move the anchor back.
        clock.renewed(t0 + Duration::from_secs(1), ttl);
        assert_eq!(clock.fence_at(), t0 + Duration::from_secs(6));
    }
}
