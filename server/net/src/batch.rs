//! How many completions a turn's `io_uring_enter` waits for.
//!
//! At pipeline 1 a busy core serving many connections got one or two
//! requests per turn: every turn paid an enter, a wakeup and the service's
//! per-turn work for them. Where the kernel has `min_wait` (Linux 6.12,
//! IORING_FEAT_MIN_TIMEOUT) a turn instead waits for as many recvs as the
//! last turn reaped (up to `MOST_RECVS`), for at most `MIN_WAIT_US`; after
//! that any completion ends the wait. With DEFER_TASKRUN the kernel does not
//! even wake the thread before that many are due. So under load the
//! requests come a few per turn, and a lone client (one recv per turn)
//! waits for nothing more than before; a request waits at most
//! `MIN_WAIT_US` for its turn to start.
//!
//! Only while many connections are active (`MANY_ACTIVE` sent something
//! during the last maintenance tick): a few connections' requests do not
//! come in batches, and waiting for a second one cost 4 lockstep clients
//! 14% of their throughput and 48 µs of p99 (-c 4, pipeline 1). With
//! fewer, a turn waits for any one completion, as it always did.
//!
//! The sends a turn submits complete inside that same enter (their socket
//! has room) and count towards the wait, so the turn waits for them plus
//! the recvs. A send that may not complete inline (big, or the rest of one
//! the socket could not take whole) would then leave the wait one
//! completion short and its rest unsent until `MIN_WAIT_US`: a turn with
//! one waits, unbounded as before, for any completion beyond its other
//! sends.

use std::time::Duration;

/// Most a turn waits for more recvs than it has: about a loopback round
/// trip between two cores, so it gathers a few requests under load. At
/// pipeline 1 (redis-benchmark, 50 connections, SCHED_FIFO, quietest run)
/// 25 µs gave Citadel 0.83x Redis's CPU per op, 30 µs 0.81-0.82x, 40 µs
/// 0.78-0.79x, with p99 latency 0.96-1.02x, 1.00-1.04x (the old build's
/// 1.04x) and 1.06-1.08x Redis's (ARCHITECTURE.md, "Batched waits"): 30
/// is the longest that leaves p99 where it was.
const MIN_WAIT_US: u32 = 30;
/// Most recvs a turn waits for (8, 16 and 32 measured the same: the
/// bound, not the count, ends a wait under load).
const MOST_RECVS: u32 = 16;
/// Connections active in the last tick for turns to wait for more than
/// one recv.
const MANY_ACTIVE: u32 = 16;
/// Largest send counted on to complete inline.
const INLINE_SEND: u32 = 64 << 10;

pub(super) struct WaitBatch {
    /// The kernel bounds a wait for several completions (min_wait).
    bounded: bool,
    /// Sends queued since the last reap that complete inline.
    sends: u32,
    /// ... and whether one that may not was queued too.
    uncertain: bool,
    /// Recv completions the last turn reaped.
    recvs: u32,
    /// The maintenance tick (never 0: a new connection's `recv_tick`).
    tick: u32,
    /// Connections that received in this tick, and in the last one.
    active: u32,
    active_last: u32,
}

impl WaitBatch {
    pub(super) fn new(min_wait_supported: bool) -> WaitBatch {
        WaitBatch {
            bounded: min_wait_supported,
            sends: 0,
            uncertain: false,
            recvs: 1,
            tick: 1,
            active: 0,
            active_last: 0,
        }
    }

    /// A recv completed for the connection whose `recv_tick` this is.
    pub(super) fn received(&mut self, recv_tick: &mut u32) {
        if *recv_tick != self.tick {
            *recv_tick = self.tick;
            self.active += 1;
        }
    }

    /// A maintenance tick: the count of active connections starts over.
    pub(super) fn ticked(&mut self) {
        (self.active_last, self.active) = (self.active, 0);
        self.tick = self.tick.wrapping_add(1).max(1);
    }

    /// A send of `len` bytes was queued; `continues`: it is the rest of
    /// one the socket did not take whole.
    pub(super) fn sent(&mut self, len: u32, continues: bool) {
        if continues || len > INLINE_SEND {
            self.uncertain = true;
        } else {
            self.sends = self.sends.saturating_add(1);
        }
    }

    /// A turn took every completion off the queue (sends queued from now
    /// on complete into an empty one).
    pub(super) fn taken(&mut self) {
        (self.sends, self.uncertain) = (0, false);
    }

    /// ... and `recvs` of them were recvs.
    pub(super) fn reaped(&mut self, recvs: u32) {
        self.recvs = recvs.clamp(1, MOST_RECVS);
    }

    /// Completions to wait for, for at most `timeout`, and, when more than
    /// one, the bound on waiting for them all (µs) after which any one will
    /// do (none when `timeout` comes first: it bounds the wait then).
    /// `holding`: the core holds connections it refused (it is shedding):
    /// it has more work than it can do, and a wait for more recvs would
    /// only leave it idle (goodput at 3x fell from 82% to 53% of peak with
    /// it).
    pub(super) fn want(&self, timeout: Duration, holding: bool) -> (usize, Option<u32>) {
        if !self.bounded || self.active_last < MANY_ACTIVE || holding {
            return (1, None);
        }
        if self.uncertain {
            return (self.sends as usize + 1, None);
        }
        let want = self.sends.saturating_add(self.recvs) as usize;
        if want <= 1 || timeout <= Duration::from_micros(MIN_WAIT_US.into()) {
            return (want.max(1), None);
        }
        (want, Some(MIN_WAIT_US))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_millis(100);

    /// A batch whose last tick saw `n` connections receive.
    fn with_active(n: u32) -> WaitBatch {
        let mut b = WaitBatch::new(true);
        let mut ticks = vec![0; n as usize];
        for t in &mut ticks {
            b.received(t);
            b.received(t);
        }
        b.ticked();
        b
    }

    #[test]
    fn waits_for_its_sends_and_the_last_turns_recvs() {
        let mut b = with_active(MANY_ACTIVE);
        assert_eq!(b.want(LONG, false), (1, None));
        b.sent(5, false);
        b.sent(5, false);
        assert_eq!(b.want(LONG, false), (3, Some(MIN_WAIT_US)));
        b.taken();
        b.reaped(5);
        assert_eq!(b.want(LONG, false), (5, Some(MIN_WAIT_US)));
        b.sent(5, false);
        assert_eq!(b.want(LONG, false), (6, Some(MIN_WAIT_US)));
        b.taken();
        b.reaped(0);
        assert_eq!(b.want(LONG, false), (1, None));
        b.reaped(1000);
        assert_eq!(
            b.want(LONG, false),
            (MOST_RECVS as usize, Some(MIN_WAIT_US))
        );
        // A core holding refused connections waits for any one completion.
        assert_eq!(b.want(LONG, true), (1, None));
    }

    #[test]
    fn a_send_that_may_not_complete_inline_ends_the_wait_unbounded() {
        let mut b = with_active(MANY_ACTIVE);
        b.reaped(8);
        b.sent(5, false);
        b.sent(INLINE_SEND + 1, false);
        assert_eq!(b.want(LONG, false), (2, None));
        b.taken();
        b.sent(5, true);
        assert_eq!(b.want(LONG, false), (1, None));
        b.taken();
        assert_eq!(b.want(LONG, false), (8, Some(MIN_WAIT_US)));
    }

    #[test]
    fn a_nearer_deadline_bounds_the_wait_itself() {
        let mut b = with_active(MANY_ACTIVE);
        b.reaped(4);
        let near = Duration::from_micros(MIN_WAIT_US.into());
        assert_eq!(b.want(near, false), (4, None));
    }

    #[test]
    fn few_active_connections_wait_for_one_completion() {
        let mut b = with_active(MANY_ACTIVE - 1);
        b.sent(5, false);
        b.reaped(4);
        assert_eq!(b.want(LONG, false), (1, None));
        // A tick with nobody receiving ends batching too.
        let mut b = with_active(MANY_ACTIVE);
        b.reaped(4);
        assert_eq!(b.want(LONG, false), (4, Some(MIN_WAIT_US)));
        b.ticked();
        assert_eq!(b.want(LONG, false), (1, None));
    }

    #[test]
    fn without_min_wait_one_completion_ends_the_wait() {
        let mut b = WaitBatch::new(false);
        b.sent(5, false);
        b.reaped(7);
        b.sent(5, false);
        assert_eq!(b.want(LONG, false), (1, None));
    }
}
