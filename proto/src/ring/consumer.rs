//! The consumer side: reads records in place, increments attempt counters,
//! and commits (frees) what it is done with.
//!
//! The consumer keeps two cursors. The *read* cursor is private and volatile:
//! it is where the next `read` starts. The *commit* cursor lives in shared
//! memory and is durable: the producer may reuse space only up to it. A
//! consumer that attaches (or re-attaches after a crash) starts reading at the
//! commit cursor, so every record it had read but not committed is delivered
//! again (at-least-once).

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::layout::{record_len, Ring, PAD_MARKER};
use super::wake::{self, EventFd, SpinPolicy, WaitError, Wakeup};
use crate::envelope::{Envelope, RecordHeader, HEADER_LEN};

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

/// One record, borrowed in place from ring memory until the next commit.
#[derive(Debug)]
pub struct Record<'a> {
    ring: &'a Ring,
    index: usize,
    header: RecordHeader,
    payload: &'a [u8],
    end: u64,
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

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    pub(crate) fn eventfd(&self) -> &EventFd {
        &self.wake
    }

    /// True if a record (or padding) is published past the read cursor.
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
            let avail = self.head.get() - pos;
            let index = self.ring.index(pos);
            let to_end = self.ring.capacity() as usize - index;
            let corrupt = |reason| ReadError::Corrupt { pos, reason };
            if avail < 4 || index % 8 != 0 {
                return Err(corrupt("misaligned or truncated record"));
            }
            // SAFETY: [index, index + 4) is inside the data area (index is
            // 8-aligned below capacity) and inside [commit, head), which the
            // producer does not write.
            let len_bytes = unsafe { self.ring.data(index, 4) };
            let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes"));
            if len == PAD_MARKER {
                if avail < to_end as u64 {
                    return Err(corrupt("padding runs past head"));
                }
                self.read.set(pos + to_end as u64);
                continue;
            }
            let rec = record_len(len as usize);
            if rec > to_end || rec as u64 > avail {
                return Err(corrupt("record length past the ring end or head"));
            }
            // SAFETY: [index, index + rec) is inside the data area (checked
            // against to_end) and inside [pos, head) (checked against avail),
            // which the producer does not write until we commit past it; the
            // slice borrows `self`, and commits need `&mut self`.
            let bytes = unsafe { self.ring.data(index, rec) };
            let mut header = RecordHeader::default();
            header.0.copy_from_slice(&bytes[..HEADER_LEN]);
            let payload = &bytes[HEADER_LEN..HEADER_LEN + len as usize];
            let end = pos + rec as u64;
            self.read.set(end);
            return Ok(Some(Record {
                ring: &self.ring,
                index,
                header,
                payload,
                end,
            }));
        }
    }

    /// Releases everything up to ring position `pos` (a record's `end()`, at
    /// most the read cursor) to the producer. Durable: a restarted consumer
    /// starts there.
    pub fn commit_to(&mut self, pos: u64) -> Result<(), CommitError> {
        let read = self.read.get();
        if pos < self.committed || pos > read {
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

    /// For a consumer that waits on the eventfd in its own event loop (e.g.
    /// an io_uring poll) instead of [`Consumer::wait`]: keeps the ring's
    /// sleeping flag set, so the producer rings the eventfd after every
    /// publish (or batch), and the loop never misses a record.
    pub fn wake_on_every_publish(&self) {
        // ORDERING: SeqCst, as in `wait_any`; the flag is never cleared.
        self.ring.sleeping().store(1, Ordering::SeqCst);
    }

    /// Clears pending doorbell rings without blocking (see
    /// [`Consumer::wake_on_every_publish`]); returns how many there were.
    pub fn drain_doorbell(&self) -> std::io::Result<u64> {
        self.wake.drain()
    }

    /// Waits for records: spins per `policy`, then parks on the eventfd.
    pub fn wait(&self, policy: SpinPolicy, timeout: Option<Duration>) -> Result<Wakeup, WaitError> {
        wake::wait_any(&[self], &[], policy, timeout)
    }
}

impl<'a> Record<'a> {
    /// The envelope as it was read (the attempt count before `mark_delivery`).
    pub fn envelope(&self) -> Envelope {
        Envelope::from_header(&self.header)
    }

    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Ring position just past this record (argument to `commit_to`).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Counts one more delivery of this record in ring memory and returns the
    /// new count. Call it before handing the record to code that may crash:
    /// the count survives the consumer process.
    pub fn mark_delivery(&self) -> u16 {
        // SAFETY: a published header starts at `index` (read() checked it) and
        // we are its consumer.
        let attempt = unsafe { self.ring.attempt_at(self.index) };
        // ORDERING: SeqCst read-modify-write: the increment is in shared
        // memory before anything that follows it in program order (e.g. a
        // handler that kills the process). No other side writes this field.
        attempt.fetch_add(1, Ordering::SeqCst).wrapping_add(1)
    }
}
