//! The gate of a pipeline stage's input ring: how the host moves new calls
//! off a downstream instance (to upgrade it) while its upstream stage, a
//! separate process that picks the ring itself, keeps writing.
//!
//! Header words (`layout.rs`): `closed` (host), `writing`, `calls` and the
//! open-call table (the producer). The producer opens a call in a ring
//! before its first record there ([`Producer::open_call`]: its id goes into
//! a free slot of the table) and ends it after its last
//! ([`Producer::end_call`]); every record of one call goes to the ring it
//! was opened in, so a call's records stay in order even when the ring
//! closes meanwhile. The host closes the ring ([`Ring::close`]); once
//! [`Ring::is_drained`] holds, no record can reach it again until it is
//! opened, and every record in it has been committed.
//!
//! The table is the route decision in shared memory: a producer killed in
//! the middle of a call and started again finds the calls it held open
//! ([`Producer::open_call_ids`]) and sends their remaining records to the
//! same ring, even a closed one, so no call is split across two consumers
//! (the old instance of an upgrade and the new one). Attaching keeps the
//! table and sets `calls` to its occupied slots, so a drain waits through
//! the producer's restart. A producer stopped for good holds nothing: the
//! host releases its calls ([`Ring::release_calls`]).
//!
//! The hand-over is the two-sided one of the server's instance claim
//! (`InstanceStatus::try_enter` / `deactivate` in the supervisor):
//!
//! ```text
//! producer                         host
//! writing = 1                     closed = 1
//! fence              (SeqCst)      fence               (SeqCst)
//! closed?                          writing == 0?       (Acquire)
//! open: slot = id, calls += 1      calls == 0?         (Acquire)
//! writing = 0        (Release)     head == commit?     (Acquire)
//! ... records ...
//! slot = 0, calls -= 1 (Release, after the call's last record is published)
//! ```
//!
//! Either the producer sees the ring closed, or the host sees it writing
//! or sees the call it opened (the `writing = 0` store releases the
//! increment), never neither: the two fences are ordered one way or the
//! other. Fences rather than SeqCst accesses, so that the loom model
//! (`tests/loom_ring.rs`, which treats SeqCst accesses as AcqRel) checks
//! the hand-over; on x86-64 the code is the same `mfence` either way.

use super::layout::OPEN_CALL_SLOTS;
use super::producer::Producer;
use super::Ring;
use crate::sync::{fence, Ordering};

/// What [`Producer::open_call`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenCall {
    /// The call is open here: its records go here until it ends.
    Opened,
    /// The host closed the ring: open the call in another.
    Closed,
    /// Every slot of the open-call table holds a call: end one first.
    TableFull,
}

impl Ring {
    /// Host: no new call may open here from now on.
    pub fn close(&self) {
        // ORDERING: the store, then a SeqCst fence paired with the one in
        // `open_call` (see the module comment).
        self.closed().store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
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
    /// nothing more will arrive and nothing is left to serve. Calls of a
    /// producer that crashed still count: its restart continues them here.
    pub fn is_drained(&self) -> bool {
        // ORDERING: the SeqCst fence pairs with `open_call`'s (module
        // comment: `close` fenced after its store too); the Acquire loads
        // see the increment released by `writing = 0`, and the records
        // published before a call's Release `end_call`.
        fence(Ordering::SeqCst);
        self.writing().load(Ordering::Acquire) == 0
            && self.calls().load(Ordering::Acquire) == 0
            && self.head().load(Ordering::Acquire) == self.commit().load(Ordering::Acquire)
    }

    /// Calls the producer holds open here (PLUGIN INFO, tests).
    pub fn open_calls(&self) -> u64 {
        // ORDERING: Relaxed; a statistic.
        self.calls().load(Ordering::Relaxed)
    }

    /// Host: the producer process has stopped for good (it will not be
    /// restarted): the calls it held open here will not continue, so they
    /// no longer hold up a drain, and a producer started later holds none.
    /// Only while no producer is attached.
    pub fn release_calls(&self) {
        for n in 0..OPEN_CALL_SLOTS {
            // ORDERING: Relaxed; published by the Release stores below.
            self.open_call_slot(n).store(0, Ordering::Relaxed);
        }
        // ORDERING: Release, as the producer's `end_call`.
        self.writing().store(0, Ordering::Release);
        self.calls().store(0, Ordering::Release);
    }

    /// Producer, on attach: a previous producer may have died anywhere in
    /// `open_call` or `end_call`; the table says which calls are open, so
    /// `calls` is set to its occupied slots and `writing` cleared.
    pub(crate) fn adopt_calls(&self) {
        let held = (0..OPEN_CALL_SLOTS)
            // ORDERING: Relaxed; the previous producer is gone (its stores
            // reached memory before its exit was seen).
            .filter(|&n| self.open_call_slot(n).load(Ordering::Relaxed) != 0)
            .count();
        // ORDERING: Release, as `end_call`: the host's Acquire in
        // `is_drained` sees the records published before.
        self.calls().store(held as u64, Ordering::Release);
        self.writing().store(0, Ordering::Release);
    }
}

impl Producer {
    /// Opens call `id` (a server call id, never 0) in this ring unless the
    /// host has closed it or the table is full; every record of the call
    /// then goes here, and `end_call` follows its last.
    pub fn open_call(&self, id: u64) -> OpenCall {
        debug_assert_ne!(id, 0, "0 marks a free slot");
        let ring = self.ring();
        // ORDERING: the store, a SeqCst fence, then the load, paired with
        // the host's `close` and `is_drained` (module comment).
        ring.writing().store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let open = ring.closed().load(Ordering::Relaxed) == 0;
        // ORDERING: Relaxed; only this producer writes the table.
        let free =
            (0..OPEN_CALL_SLOTS).find(|&n| ring.open_call_slot(n).load(Ordering::Relaxed) == 0);
        let outcome = match (open, free) {
            (false, _) => OpenCall::Closed,
            (true, None) => OpenCall::TableFull,
            (true, Some(n)) => {
                // ORDERING: Relaxed; released by the `writing` store below.
                // Only this producer writes the table and `calls`.
                ring.open_call_slot(n).store(id, Ordering::Relaxed);
                let calls = ring.calls().load(Ordering::Relaxed);
                ring.calls().store(calls + 1, Ordering::Relaxed);
                OpenCall::Opened
            }
        };
        // ORDERING: Release publishes the increment to the host's Acquire.
        ring.writing().store(0, Ordering::Release);
        outcome
    }

    /// Ends call `id`, opened here with `open_call`, after its last record
    /// is published (a call not open here: nothing to do).
    pub fn end_call(&self, id: u64) {
        let ring = self.ring();
        // ORDERING: Relaxed; only this producer writes the table.
        let slot = (0..OPEN_CALL_SLOTS)
            .map(|n| ring.open_call_slot(n))
            .find(|s| id != 0 && s.load(Ordering::Relaxed) == id);
        let Some(slot) = slot else {
            return;
        };
        slot.store(0, Ordering::Relaxed);
        // ORDERING: Release, so the host that sees the count drop sees the
        // call's records published (their head store came before).
        let calls = ring.calls();
        let n = calls.load(Ordering::Relaxed);
        calls.store(n.saturating_sub(1), Ordering::Release);
    }

    /// The calls open here. Just after `attach`: those a previous producer
    /// of this ring opened and did not end, which this one continues here.
    pub fn open_call_ids(&self) -> Vec<u64> {
        (0..OPEN_CALL_SLOTS)
            // ORDERING: Relaxed; only producers write the table, one at a time.
            .map(|n| self.ring().open_call_slot(n).load(Ordering::Relaxed))
            .filter(|&id| id != 0)
            .collect()
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
        assert_eq!(producer.open_call(1), OpenCall::Opened);
        producer.send(&Envelope::request(1), b"frame").unwrap();
        ring.close();
        assert_eq!(
            producer.open_call(2),
            OpenCall::Closed,
            "closed: no new call"
        );
        assert!(!ring.is_drained(), "one call still open");
        // The open call's last record still goes here.
        producer.send(&Envelope::request(1), b"end").unwrap();
        producer.end_call(1);
        producer.end_call(1);
        assert_eq!(ring.open_calls(), 0, "ending twice counts once");
        assert!(!ring.is_drained(), "records not yet committed");
        let mut end = 0;
        while let Some(r) = consumer.read().unwrap() {
            end = r.end();
        }
        consumer.commit_to(end).unwrap();
        assert!(ring.is_drained());
        ring.open();
        assert_eq!(producer.open_call(3), OpenCall::Opened);
    }

    #[test]
    fn a_restarted_producer_continues_the_calls_its_predecessor_held_open() {
        let ring = Ring::create_memfd("gate-restart", 4096).unwrap();
        let first = Producer::attach(ring.clone(), EventFd::new().unwrap());
        for id in [7, 8, 9] {
            assert_eq!(first.open_call(id), OpenCall::Opened);
        }
        first.end_call(8);
        ring.close();
        // Killed mid-call: a crash between the slot and the count is
        // repaired on attach (the table says what is open).
        ring.calls().store(5, Ordering::Relaxed);
        ring.writing().store(1, Ordering::Relaxed);
        drop(first);
        assert!(!ring.is_drained());
        let again = Producer::attach(ring.clone(), EventFd::new().unwrap());
        assert_eq!(again.open_call_ids(), [7, 9]);
        assert_eq!(ring.open_calls(), 2);
        assert!(
            !ring.is_drained(),
            "its restart still owes calls 7 and 9 here"
        );
        again.end_call(7);
        again.end_call(9);
        assert!(ring.is_drained());
    }

    #[test]
    fn a_full_table_opens_no_call_and_a_released_ring_holds_none() {
        let ring = Ring::create_memfd("gate-full", 4096).unwrap();
        let producer = Producer::attach(ring.clone(), EventFd::new().unwrap());
        for id in 1..=OPEN_CALL_SLOTS as u64 {
            assert_eq!(producer.open_call(id), OpenCall::Opened);
        }
        assert_eq!(producer.open_call(100), OpenCall::TableFull);
        assert_eq!(ring.open_calls(), OPEN_CALL_SLOTS as u64);
        producer.end_call(3);
        assert_eq!(producer.open_call(100), OpenCall::Opened, "a freed slot");
        drop(producer);
        // Its producer stopped for good: the drain no longer waits.
        ring.close();
        assert!(!ring.is_drained());
        ring.release_calls();
        assert!(ring.is_drained());
        let later = Producer::attach(ring.clone(), EventFd::new().unwrap());
        assert!(later.open_call_ids().is_empty());
    }
}
