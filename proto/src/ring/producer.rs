//! The producer side: reserves records in place, lets the caller write the
//! payload straight into ring memory, and publishes with one Release store.

use std::io;

use super::layout::{record_len, PAD_MARKER, RECORD_ALIGN};
use super::{EventFd, Ring};
use crate::envelope::{Envelope, HEADER_LEN};
use crate::sync::{fence, Ordering};

/// Why a record could not be reserved. Never blocks: a full ring says so at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    #[error("ring full: {needed} bytes needed, {free} free")]
    Full { needed: usize, free: u64 },
    #[error("payload of {len} bytes exceeds the ring's maximum of {max}")]
    TooLarge { len: usize, max: usize },
}

/// Why the consumer could not be woken.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("writing the consumer's eventfd: {0}")]
    Eventfd(#[from] io::Error),
}

/// Why `send` failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Reserve(#[from] ReserveError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// The delivery count a record taken back by its producer carries
/// ([`Producer::withdraw`]); a consumer's increment past it stays far
/// above any attempt limit.
pub const WITHDRAWN: u16 = 0x8000;

/// The single producer of a ring.
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
    wake: EventFd,
    head: u64,
    commit_cache: u64,
    /// The last reserve found the ring full (counted once per episode).
    was_full: bool,
}

/// Space reserved for one record. Write the payload, then `commit`. Dropping
/// it without committing publishes nothing.
#[derive(Debug)]
pub struct Grant<'a> {
    producer: &'a mut Producer,
    /// Ring position of the record (after any padding).
    pos: u64,
    reserved: usize,
    len: usize,
}

impl Producer {
    /// Attaches as the ring's producer; `wake` is the consumer's eventfd.
    /// A restarted producer continues after the last published record.
    pub fn attach(ring: Ring, wake: EventFd) -> Self {
        // ORDERING: we are the only writer of head; Acquire makes a previous
        // producer process's writes (same memory) ordered before ours.
        let head = ring.head().load(Ordering::Acquire);
        // Records start 8-aligned. A head that is not (another process wrote
        // it) is moved up to the next boundary: the producer never writes at
        // a misaligned data offset (a padding marker there could run past
        // the data area), and the consumer reports the gap as corrupt.
        let head = head.wrapping_add(RECORD_ALIGN as u64 - 1) & !(RECORD_ALIGN as u64 - 1);
        let commit_cache = ring.commit().load(Ordering::Acquire);
        ring.attaches(false).fetch_add(1, Ordering::Relaxed);
        // The calls a previous producer (now gone) opened here stay open:
        // this one continues them here (the gate, `gate.rs`).
        ring.adopt_calls();
        Self {
            ring,
            wake,
            head,
            commit_cache,
            was_full: false,
        }
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Bytes published and not yet committed by the consumer (the whole
    /// capacity if the commit cursor in shared memory is corrupt).
    pub fn in_flight(&mut self) -> u64 {
        self.refresh_commit();
        self.ring.capacity() - self.free()
    }

    /// Free bytes as of the last commit cursor loaded. Positions wrap
    /// modulo 2^64 (only a corrupt cursor gets near that); a commit cursor
    /// ahead of head or more than a capacity behind it (a consumer that does
    /// not keep the protocol) leaves no space, so the producer never writes
    /// over records it cannot account for.
    fn free(&self) -> u64 {
        let used = self.head.wrapping_sub(self.commit_cache);
        self.ring.capacity().saturating_sub(used)
    }

    fn refresh_commit(&mut self) {
        // ORDERING: Acquire pairs with the consumer's Release commit: it has
        // finished reading every byte before the commit cursor.
        self.commit_cache = self.ring.commit().load(Ordering::Acquire);
    }

    /// True when the record this producer published at ring position `pos`
    /// ([`Grant::position`]) is still uncommitted and no consumer has taken
    /// it yet (its delivery count is 0): a consumer stuck in a handler will
    /// not reach it, so its caller can be answered now.
    pub fn undelivered(&mut self, pos: u64) -> bool {
        self.refresh_commit();
        // Published and uncommitted: in [commit, head). Outside it the bytes
        // may hold a newer record (or none).
        if pos.wrapping_sub(self.commit_cache) >= self.head.wrapping_sub(self.commit_cache) {
            return false;
        }
        // SAFETY: a record this producer published starts at `pos` (8-aligned,
        // its header inside the data area); it is uncommitted, and only this
        // producer writes records, so it is not overwritten while we read;
        // the consumer writes the attempt field only atomically.
        let attempt = unsafe { self.ring.attempt_at(self.ring.index(pos)) };
        // ORDERING: SeqCst pairs with the consumer's SeqCst increment
        // (`Record::mark_delivery`), made before its handler runs.
        attempt.load(Ordering::SeqCst) == 0
    }

    /// Takes back the record this producer published at `pos` if no
    /// consumer has taken it yet (its delivery count is 0): marks it
    /// [`WITHDRAWN`] and returns its envelope and payload, so the caller
    /// can send it elsewhere. The mark is a compare-and-swap against the
    /// consumer's delivery increment, so exactly one side gets the record;
    /// a consumer that meets it later counts a delivery past any attempt
    /// limit and abandons it (its answer carries the mark, and the id's
    /// new record is answered on its own).
    pub fn withdraw(&mut self, pos: u64) -> Option<(Envelope, Vec<u8>)> {
        self.refresh_commit();
        if pos.wrapping_sub(self.commit_cache) >= self.head.wrapping_sub(self.commit_cache) {
            return None;
        }
        let index = self.ring.index(pos);
        // SAFETY: as in `undelivered`: our published, uncommitted record
        // starts at `index`; the consumer writes its attempt only atomically.
        let attempt = unsafe { self.ring.attempt_at(index) };
        // ORDERING: SeqCst compare-and-swap, paired with the consumer's
        // SeqCst increment (`Record::mark_delivery`): one of them sees 0.
        attempt
            .compare_exchange(0, WITHDRAWN, Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        let mut header = [0u8; HEADER_LEN];
        for (i, chunk) in header.chunks_exact_mut(8).enumerate() {
            // SAFETY: the header lies in the data area (8-aligned, we wrote
            // it); loaded atomically as the consumer may mark it meanwhile.
            let word = unsafe { self.ring.word_at(index + 8 * i) };
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let record = super::Record::new(&self.ring, index, header, len, 0);
        let envelope = Envelope {
            attempt: 0,
            ..record.envelope()
        };
        Some((envelope, record.copy_payload()))
    }

    /// Reserves a record with room for `len` payload bytes.
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, ReserveError> {
        let max = self.ring.max_payload();
        if len > max {
            return Err(ReserveError::TooLarge { len, max });
        }
        let rec = record_len(len);
        let cap = self.ring.capacity();
        let index = self.ring.index(self.head);
        let to_end = cap as usize - index;
        let pad = if rec > to_end { to_end } else { 0 };
        let needed = pad + rec;
        if self.free() < needed as u64 {
            self.refresh_commit();
            let free = self.free();
            if free < needed as u64 {
                if !self.was_full {
                    self.was_full = true;
                    // ORDERING: Relaxed; a statistic.
                    self.ring
                        .counter(super::Counter::Full)
                        .fetch_add(1, Ordering::Relaxed);
                }
                return Err(ReserveError::Full { needed, free });
            }
        }
        self.was_full = false;
        if pad > 0 {
            // SAFETY: we are the only producer; [index, index + 4) is inside
            // the data area (index is 8-aligned, to_end >= 8) and inside the
            // free window (needed bytes are free, checked above).
            let marker = unsafe { self.ring.data_mut(index, 4) };
            marker.copy_from_slice(&PAD_MARKER.to_le_bytes());
        }
        let pos = self.head.wrapping_add(pad as u64);
        Ok(Grant {
            producer: self,
            pos,
            reserved: len,
            len,
        })
    }

    /// Copies `payload` into a new record and publishes it (and wakes the
    /// consumer if it sleeps).
    pub fn send(&mut self, envelope: &Envelope, payload: &[u8]) -> Result<(), SendError> {
        let mut grant = self.reserve(payload.len())?;
        grant.payload_mut().copy_from_slice(payload);
        grant.commit(envelope)?;
        Ok(())
    }

    /// Wakes the consumer if it is parked. Returns whether it wrote the eventfd.
    /// `Grant::commit` calls this; after `commit_quiet` batches, call it once.
    pub fn notify(&self) -> Result<bool, NotifyError> {
        // ORDERING: the SeqCst fence orders our earlier Release store of head
        // before the load of `sleeping` (store-buffering pattern, see wake.rs).
        fence(Ordering::SeqCst);
        if self.ring.sleeping().load(Ordering::Relaxed) != 0 {
            self.wake.signal()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn publish(&mut self, new_head: u64) {
        self.head = new_head;
        // ORDERING: Release: the padding marker, header and payload written
        // before are visible to a consumer that loads head with Acquire.
        self.ring.head().store(new_head, Ordering::Release);
    }
}

impl<'a> Grant<'a> {
    /// The reserved payload bytes, in ring memory (contents unspecified).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let index = self.producer.ring.index(self.pos);
        // SAFETY: reserve() checked that [index, index + record_len(reserved))
        // is inside the data area and free; only this grant (which borrows
        // the producer mutably) hands out slices of it.
        let bytes = unsafe {
            self.producer
                .ring
                .data_mut(index + HEADER_LEN, self.reserved)
        };
        bytes
    }

    /// Ring position of the record (for [`Producer::undelivered`]).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Publishes only the first `len` payload bytes (len <= reserved), so a
    /// caller can reserve an upper bound and use less.
    pub fn truncate(&mut self, len: usize) {
        self.len = len.min(self.reserved);
    }

    /// Writes the envelope and publishes the record, then wakes the consumer
    /// if it is parked.
    pub fn commit(self, envelope: &Envelope) -> Result<(), NotifyError> {
        let producer = self.commit_quiet(envelope);
        producer.notify().map(drop)
    }

    /// Publishes without waking the consumer (batching: call
    /// [`Producer::notify`] after the last record of a batch).
    pub fn commit_quiet(self, envelope: &Envelope) -> &'a Producer {
        let header = envelope.to_header(self.len as u32);
        let index = self.producer.ring.index(self.pos);
        // SAFETY: the header bytes belong to this grant's reserved record (see
        // payload_mut); the payload slice handed out before is no longer alive
        // (`self` is consumed).
        let dst = unsafe { self.producer.ring.data_mut(index, HEADER_LEN) };
        dst.copy_from_slice(&header.0);
        let end = self.pos.wrapping_add(record_len(self.len) as u64);
        self.producer.publish(end);
        self.producer
    }
}
