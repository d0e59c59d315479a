//! The consumer side: reads records in place, increments attempt counters,
//! and commits (frees) what it is done with.
//!
//! The consumer keeps two cursors. The *read* cursor is private and volatile:
//! it is where the next `read` starts. The *commit* cursor lives in shared
//! memory and is durable: the producer may reuse space only up to it. A
//! consumer that attaches (or re-attaches after a crash) starts reading at the
//! commit cursor, so every record it had read but not committed is delivered
//! again (at-least-once).
//!
//! Everything read from ring memory is checked before it is used: the head
//! cursor must lie within a capacity of the commit cursor, a record's length
//! must keep it inside the data area and before head, padding must run to
//! the end of the data area. A ring that fails a check answers
//! [`ReadError::Corrupt`]; no bytes outside the data area are ever touched,
//! whatever the producer wrote.

use std::cell::Cell;

use super::layout::{record_len, PAD_MARKER, RECORD_ALIGN};
use super::record::Record;
use super::{EventFd, Ring};
use crate::envelope::HEADER_LEN;
use crate::sync::Ordering;

/// Why a record could not be read: the ring holds bytes no producer writes.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("corrupt record at ring position {pos}: {reason}")]
    Corrupt { pos: u64, reason: &'static str },
}

/// Why a commit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("commit to {pos} is outside the read window [{committed}, {read}]")]
    OutOfRange { pos: u64, committed: u64, read: u64 },
}

/// The single consumer of a ring.
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
    wake: EventFd,
    read: Cell<u64>,
    head: Cell<u64>,
    committed: u64,
}

impl Consumer {
    /// Attaches as the ring's consumer; `wake` is the eventfd producers ring.
    /// Reading resumes at the durable commit cursor.
    pub fn attach(ring: Ring, wake: EventFd) -> Self {
        // ORDERING: Acquire pairs with the previous consumer's Release commit
        // (a no-op across processes that never ran concurrently, but cheap).
        let committed = ring.commit().load(Ordering::Acquire);
        ring.attaches(true).fetch_add(1, Ordering::Relaxed);
        Self {
            ring,
            wake,
            read: Cell::new(committed),
            head: Cell::new(committed),
            committed,
        }
    }

    /// Records that the handlers spent `nanos` on `records` records of
    /// this ring (the busy counter, and each record's share in the latency
    /// histogram): statistics for the server's pipeline advice.
    pub fn record_handled(&self, records: u64, nanos: u64) {
        use super::Counter;
        // ORDERING: Relaxed; statistics.
        self.ring
            .counter(Counter::BusyNs)
            .fetch_add(nanos, Ordering::Relaxed);
        let bucket = super::latency_bucket(nanos / records.max(1));
        self.ring
            .counter(Counter::Latency(bucket))
            .fetch_add(records, Ordering::Relaxed);
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    #[cfg(not(loom))]
    pub(crate) fn eventfd(&self) -> &EventFd {
        &self.wake
    }

    /// True if a record (or padding) is published past the read cursor (or
    /// the head cursor is corrupt: `read` then says so).
    pub fn has_unread(&self) -> bool {
        self.read.get() != self.head.get() || self.refresh_head()
    }

    fn refresh_head(&self) -> bool {
        // ORDERING: Acquire pairs with the producer's Release store of head:
        // every byte of every record before it is visible to us.
        let head = self.ring.head().load(Ordering::Acquire);
        self.head.set(head);
        head != self.read.get()
    }

    /// Reads the next record at the read cursor and advances the cursor, or
    /// returns `None` if nothing is published. The record stays in the ring
    /// (and is delivered again after a restart) until it is committed.
    pub fn read(&self) -> Result<Option<Record<'_>>, ReadError> {
        loop {
            let pos = self.read.get();
            if pos == self.head.get() && !self.refresh_head() {
                return Ok(None);
            }
            let corrupt = |reason| ReadError::Corrupt { pos, reason };
            // Positions wrap modulo 2^64 (only corrupt cursors get there).
            let published = self.head.get().wrapping_sub(self.committed);
            let consumed = pos.wrapping_sub(self.committed);
            if published > self.ring.capacity() || published < consumed {
                return Err(corrupt("head cursor outside the ring window"));
            }
            let avail = published - consumed;
            let index = self.ring.index(pos);
            let to_end = self.ring.capacity() as usize - index;
            if avail < RECORD_ALIGN as u64 || index % RECORD_ALIGN != 0 {
                return Err(corrupt("misaligned or truncated record"));
            }
            // SAFETY: index is 8-aligned and below capacity, so the word is
            // inside the data area; we are the consumer and only load it.
            let first = unsafe { self.ring.word_at(index) }
                .load(Ordering::Relaxed)
                .to_ne_bytes();
            let len = u32::from_le_bytes([first[0], first[1], first[2], first[3]]);
            if len == PAD_MARKER {
                if avail < to_end as u64 {
                    return Err(corrupt("padding runs past head"));
                }
                self.read.set(pos.wrapping_add(to_end as u64));
                continue;
            }
            let rec = record_len(len as usize);
            if rec > to_end || rec as u64 > avail {
                return Err(corrupt("record length past the ring end or head"));
            }
            let mut header = [0u8; HEADER_LEN];
            header[..8].copy_from_slice(&first);
            for (i, chunk) in header.chunks_exact_mut(8).enumerate().skip(1) {
                // SAFETY: [index, index + rec) is inside the data area
                // (checked against to_end) and rec >= HEADER_LEN; 8-aligned.
                let word = unsafe { self.ring.word_at(index + 8 * i) };
                chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
            }
            let end = pos.wrapping_add(rec as u64);
            self.read.set(end);
            return Ok(Some(Record::new(
                &self.ring,
                index,
                header,
                len as usize,
                end,
            )));
        }
    }

    /// Releases everything up to ring position `pos` (a record's `end()`, at
    /// most the read cursor) to the producer. Durable: a restarted consumer
    /// starts there.
    pub fn commit_to(&mut self, pos: u64) -> Result<(), CommitError> {
        let read = self.read.get();
        let offset = pos.wrapping_sub(self.committed);
        if offset > read.wrapping_sub(self.committed) {
            return Err(CommitError::OutOfRange {
                pos,
                committed: self.committed,
                read,
            });
        }
        self.publish_commit(pos);
        Ok(())
    }

    /// Releases everything read so far.
    pub fn commit_read(&mut self) {
        self.publish_commit(self.read.get());
    }

    fn publish_commit(&mut self, pos: u64) {
        if pos != self.committed {
            self.committed = pos;
            // ORDERING: Release orders our reads of the records before the
            // producer's Acquire load of commit, after which it overwrites them.
            self.ring.commit().store(pos, Ordering::Release);
        }
    }

    /// Moves the read cursor back to the commit cursor, so uncommitted
    /// records are read again (what a restart does).
    pub fn rewind(&mut self) {
        self.read.set(self.committed);
    }

    pub fn read_position(&self) -> u64 {
        self.read.get()
    }

    pub fn committed_position(&self) -> u64 {
        self.committed
    }

    /// Clears pending doorbell rings without blocking, for a consumer that
    /// waits on the eventfd in its own event loop (an io_uring poll) after
    /// [`super::prepare_park_all`]; returns how many there were.
    pub fn drain_doorbell(&self) -> std::io::Result<u64> {
        self.wake.drain()
    }
}
