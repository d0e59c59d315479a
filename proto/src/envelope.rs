//! The envelope every ring record carries: request id, kind, deadline,
//! attempt count, status and payload format. On the wire it is the
//! FlatBuffers struct `citadel.ring.RecordHeader` (`proto/schema/envelope.fbs`):
//! 32 fixed bytes in front of the payload, read and patched in place.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::generated::ring::{Format, Kind, RecordHeader};

/// Bytes of the record header in front of every payload.
pub const HEADER_LEN: usize = std::mem::size_of::<RecordHeader>();
const _: () = assert!(HEADER_LEN == 32);

/// Status of a reply whose handler succeeded.
pub const STATUS_OK: u32 = 0;
/// Status of an `Abandoned` record: the request exhausted its attempts.
pub const STATUS_POISON: u32 = 1;
/// Status of an `Error` reply produced because the handler failed (panicked).
pub const STATUS_HANDLER_FAILED: u32 = 2;
/// Status of an `Error` reply for a request whose deadline had passed.
pub const STATUS_DEADLINE: u32 = 3;

/// The envelope of one record, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub id: u64,
    pub kind: Kind,
    pub format: Format,
    /// Unix milliseconds after which the answer is useless; 0 = none.
    pub deadline_ms: u64,
    /// Deliveries so far. The producer writes 0; the consumer increments it
    /// in ring memory each time it delivers the record to a handler.
    pub attempt: u16,
    pub status: u32,
}

impl Envelope {
    /// A raw-bytes request with no deadline.
    pub fn request(id: u64) -> Self {
        Self {
            id,
            kind: Kind::Request,
            format: Format::Raw,
            deadline_ms: 0,
            attempt: 0,
            status: STATUS_OK,
        }
    }

    /// A successful raw-bytes reply to request `id`.
    pub fn reply(id: u64) -> Self {
        Self {
            kind: Kind::Reply,
            ..Self::request(id)
        }
    }

    pub fn with_kind(self, kind: Kind) -> Self {
        Self { kind, ..self }
    }

    pub fn with_format(self, format: Format) -> Self {
        Self { format, ..self }
    }

    pub fn with_status(self, status: u32) -> Self {
        Self { status, ..self }
    }

    /// Deadline `ttl` from now.
    pub fn with_deadline_in(self, ttl: Duration) -> Self {
        Self {
            deadline_ms: unix_ms() + ttl.as_millis() as u64,
            ..self
        }
    }

    /// True if the deadline is set and has passed at `now_ms`.
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.deadline_ms != 0 && now_ms > self.deadline_ms
    }

    /// The on-ring header for this envelope and a payload of `len` bytes.
    pub fn to_header(&self, len: u32) -> RecordHeader {
        RecordHeader::new(
            len,
            self.kind,
            self.format,
            self.attempt,
            self.id,
            self.deadline_ms,
            self.status,
            0,
        )
    }

    pub fn from_header(h: &RecordHeader) -> Self {
        Self {
            id: h.id(),
            kind: h.kind(),
            format: h.format(),
            deadline_ms: h.deadline_ms(),
            attempt: h.attempt(),
            status: h.status(),
        }
    }
}

/// Milliseconds since the Unix epoch, the clock deadlines use.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_has_the_documented_layout() {
        let env = Envelope {
            attempt: 2,
            status: 7,
            ..Envelope::request(0x0102_0304_0506_0708)
        }
        .with_format(Format::FlatBuffer)
        .with_kind(Kind::Invalidation);
        let h = env.to_header(5);
        assert_eq!(Envelope::from_header(&h), env);
        assert_eq!(&h.0[0..4], &5u32.to_le_bytes());
        assert_eq!(h.0[4], Kind::Invalidation.0);
        assert_eq!(h.0[5], Format::FlatBuffer.0);
        assert_eq!(&h.0[6..8], &2u16.to_le_bytes());
        assert_eq!(&h.0[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&h.0[24..28], &7u32.to_le_bytes());
    }

    #[test]
    fn deadlines_expire() {
        let env = Envelope::request(1);
        assert!(!env.expired_at(u64::MAX), "0 means no deadline");
        let env = Envelope {
            deadline_ms: 100,
            ..env
        };
        assert!(env.expired_at(101));
        assert!(!env.expired_at(100));
    }
}
