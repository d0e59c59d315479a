//! One record as the consumer sees it: the envelope (copied out of ring
//! memory when it was read), and the payload, borrowed in place or copied.

use super::Ring;
use crate::envelope::{Envelope, RecordHeader, HEADER_LEN};
use crate::sync::Ordering;

/// One record in ring memory, readable until the next commit (which needs
/// the consumer mutably, so it cannot happen while a `Record` lives).
#[derive(Debug)]
pub struct Record<'a> {
    ring: &'a Ring,
    index: usize,
    header: RecordHeader,
    len: usize,
    end: u64,
}

impl<'a> Record<'a> {
    /// `index`: data offset of the header; `header`: its bytes as read;
    /// `len`: the payload length, already checked to fit the data area.
    pub(crate) fn new(
        ring: &'a Ring,
        index: usize,
        header: [u8; HEADER_LEN],
        len: usize,
        end: u64,
    ) -> Self {
        Self {
            ring,
            index,
            header: RecordHeader(header),
            len,
            end,
        }
    }

    /// The envelope as it was read (the attempt count before `mark_delivery`).
    pub fn envelope(&self) -> Envelope {
        Envelope::from_header(&self.header)
    }

    /// Payload bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The payload, in place in ring memory (no copy). Sound while the
    /// producer keeps the SPSC protocol (it never writes a published,
    /// uncommitted record); for a ring whose producer is not trusted use
    /// [`Record::copy_payload`] (see the trust boundary in [`crate::ring`]).
    pub fn payload(&self) -> &'a [u8] {
        // SAFETY: `read` checked that the record lies inside the data area
        // and inside [commit, head); the producer does not write there until
        // we commit past it, and committing needs the consumer mutably while
        // this borrows it.
        unsafe { self.ring.data(self.index + HEADER_LEN, self.len) }
    }

    /// Appends the payload to `out` with atomic 8-byte loads: defined
    /// behaviour even if the producer writes the record concurrently (the
    /// bytes may then be garbage, never out of bounds or a torn length).
    pub fn copy_payload_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let words = self.len.div_ceil(8);
        out.reserve(words * 8);
        for w in 0..words {
            // SAFETY: the record (header and payload padded to 8 bytes) lies
            // inside the data area (checked by `read`); the payload starts
            // 8-aligned (8-aligned header of 32 bytes); we only load.
            let word = unsafe { self.ring.word_at(self.index + HEADER_LEN + 8 * w) };
            out.extend_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        out.truncate(start + self.len);
    }

    /// The payload, copied with [`Record::copy_payload_into`].
    pub fn copy_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len.next_multiple_of(8));
        self.copy_payload_into(&mut out);
        out
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
        let n = attempt.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        // ORDERING: Relaxed; a statistic.
        self.ring
            .counter(super::Counter::Delivered)
            .fetch_add(1, Ordering::Relaxed);
        n
    }
}
