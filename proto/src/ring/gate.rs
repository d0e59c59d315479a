//! The gate of a pipeline stage's input ring: how the host moves new calls
//! off a downstream instance (to upgrade it) while its upstream stage, a
//! separate process that picks the ring itself, keeps writing.
//!
//! Three header words (`layout.rs`): `closed` (host), `writing` and
//! `calls` (the producer). The producer opens a call in a ring before its
//! first record there ([`Producer::open_call`]) and ends it after its last
//! ([`Producer::end_call`]); every record of one call goes to the ring it
//! was opened in, so a call's records stay in order even when the ring
//! closes meanwhile. The host closes the ring ([`Ring::close`]); once
//! [`Ring::is_drained`] holds, no record can reach it again until it is
//! opened, and every record in it has been committed.
//!
//! The hand-over is the two-sided one of the server's instance claim
//! (`InstanceStatus::try_enter` / `deactivate` in the supervisor):
//!
//! ```text
//! producer                         host
//! writing = 1        (SeqCst)      closed = 1          (SeqCst)
//! closed?            (SeqCst)      writing == 0?       (SeqCst)
//! open: calls += 1                 calls == 0?         (Acquire)
//! writing = 0        (Release)     head == commit?     (Acquire)
//! ... records ...
//! calls -= 1         (Release, after the call's last record is published)
//! ```
//!
//! Either the producer sees the ring closed, or the host sees it writing
//! or sees the call it opened (the `writing = 0` store releases the
//! increment), never neither.

use super::producer::Producer;
use super::Ring;
use crate::sync::Ordering;

impl Ring {
    /// Host: no new call may open here from now on.
    pub fn close(&self) {
        // ORDERING: SeqCst, paired with `open_call` (see the module comment).
        self.closed().store(1, Ordering::SeqCst);
    }

    /// Host: new calls may open here.
    pub fn open(&self) {
        // ORDERING: SeqCst, as `close` (no pairing needed to open; uniform).
        self.closed().store(0, Ordering::SeqCst);
    }

    pub fn is_open(&self) -> bool {
        // ORDERING: Relaxed; a hint for choosing (`open_call` decides).
        self.closed().load(Ordering::Relaxed) == 0
    }

    /// Host, after `close`: true when no call is open or opening here and
    /// every published record has been committed by the consumer, so
    /// nothing more will arrive and nothing is left to serve. Calls held by
    /// a producer process that has exited do not count: nothing of them
    /// will come from it (a restarted one holds none open here, as its
    /// attach says), so a drain does not wait out its timeout for them.
    pub fn is_drained(&self) -> bool {
        // ORDERING: SeqCst pairs with `open_call` (module comment); the
        // Acquire loads see the increment released by `writing = 0`, and
        // the records published before a call's Release `end_call`.
        let quiet =
            self.writing().load(Ordering::SeqCst) == 0 && self.calls().load(Ordering::Acquire) == 0;
        (quiet || self.producer_gone())
            && self.head().load(Ordering::Acquire) == self.commit().load(Ordering::Acquire)
    }

    /// Calls the producer holds open here (PLUGIN INFO, tests).
    pub fn open_calls(&self) -> u64 {
        // ORDERING: Relaxed; a statistic.
        self.calls().load(Ordering::Relaxed)
    }
}

impl Producer {
    /// Opens a call in this ring unless the host has closed it; every
    /// record of the call then goes here, and `end_call` follows its last.
    pub fn open_call(&self) -> bool {
        let ring = self.ring();
        // ORDERING: SeqCst store then SeqCst load, paired with the host's
        // `close` and `is_drained` (module comment).
        ring.writing().store(1, Ordering::SeqCst);
        let open = ring.closed().load(Ordering::SeqCst) == 0;
        if open {
            // ORDERING: Relaxed; released by the `writing` store below.
            // Only this producer writes `calls`.
            let calls = ring.calls().load(Ordering::Relaxed);
            ring.calls().store(calls + 1, Ordering::Relaxed);
        }
        // ORDERING: Release publishes the increment to the host's Acquire.
        ring.writing().store(0, Ordering::Release);
        open
    }

    /// Ends a call opened with `open_call`, after its last record is
    /// published.
    pub fn end_call(&self) {
        let calls = self.ring().calls();
        // ORDERING: Release, so the host that sees the count drop sees the
        // call's records published (their head store came before).
        let n = calls.load(Ordering::Relaxed);
        calls.store(n.saturating_sub(1), Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::ring::{Consumer, EventFd};

    #[test]
    fn a_closed_ring_takes_no_new_call_and_drains_once_the_open_ones_end() {
        let ring = Ring::create_memfd("gate", 4096).unwrap();
        let mut producer = Producer::attach(ring.clone(), EventFd::new().unwrap());
        let mut consumer = Consumer::attach(ring.clone(), EventFd::new().unwrap());
        assert!(ring.is_open() && ring.is_drained());
        assert!(producer.open_call());
        producer.send(&Envelope::request(1), b"frame").unwrap();
        ring.close();
        assert!(!producer.open_call(), "closed: no new call");
        assert!(!ring.is_drained(), "one call still open");
        // The open call's last record still goes here.
        producer.send(&Envelope::request(1), b"end").unwrap();
        producer.end_call();
        assert_eq!(ring.open_calls(), 0);
        assert!(!ring.is_drained(), "records not yet committed");
        let mut end = 0;
        while let Some(r) = consumer.read().unwrap() {
            end = r.end();
        }
        consumer.commit_to(end).unwrap();
        assert!(ring.is_drained());
        ring.open();
        assert!(producer.open_call());
        // A producer that attaches again holds nothing open.
        let _again = Producer::attach(ring.clone(), EventFd::new().unwrap());
        assert_eq!(ring.open_calls(), 0);
    }

    #[test]
    fn calls_held_by_a_producer_that_exited_do_not_hold_up_the_drain() {
        let ring = Ring::create_memfd("gate-gone", 4096).unwrap();
        let producer = Producer::attach(ring.clone(), EventFd::new().unwrap());
        assert_eq!(
            ring.producer_pid().load(Ordering::Relaxed),
            std::process::id()
        );
        assert!(producer.open_call());
        ring.close();
        assert!(!ring.is_drained(), "its producer (this process) is alive");
        // A producer process that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        ring.producer_pid().store(pid, Ordering::Relaxed);
        assert_eq!(ring.open_calls(), 1);
        assert!(ring.is_drained(), "nothing more comes from a gone producer");
        ring.producer_pid().store(0, Ordering::Relaxed);
        assert!(!ring.is_drained(), "pid unknown (an older producer): wait");
    }
}
