//! The ring's memory layout: offsets, record sizes and the checks every
//! side applies ([`Ring`](super::Ring) is the typed view of a mapped one).
//!
//! ```text
//! offset  size  field (all little-endian, all offsets from the region start)
//! 0       8     magic  "CITRING1"
//! 8       4     layout version (LAYOUT_VERSION)
//! 12      4     data offset (DATA_OFFSET)
//! 16      8     capacity: data bytes, a power of two
//! 24      8     consumer attaches (incremented each time a consumer attaches)
//! 32      8     producer attaches
//! 40      8     full count: times the producer found the ring full
//! 48      8     empty count: times the consumer parked with nothing to read
//! 56      8     delivered: records handed to the consumer's handler
//! 64      8     busy: nanoseconds the consumer's handlers spent on them
//! 72      4     closed: 1 while the host takes the consumer out of service
//!               (a pipeline stage's input: the upstream opens no new call here)
//! 128     8     head: bytes ever published by the producer      (producer's line)
//! 136     4     writing: 1 while the producer opens a call here (the gate)
//! 144     8     calls: calls the producer opened here and has not ended
//! 160     96    open calls: 12 call ids (0: a free slot), the calls counted
//!               in `calls`; a restarted producer continues them here
//! 256     8     commit: bytes ever released by the consumer     (consumer's line)
//! 264     112   14 latency buckets: records by handler time (consumer's line)
//! 384     4     sleeping: 1 while the consumer is parked        (its own line)
//! 512     ...   data: `capacity` bytes of records
//! ```
//!
//! Cursors are monotonic byte positions; `pos & (capacity - 1)` is the data
//! offset. Lines are 128 bytes apart so adjacent-line prefetch does not make
//! the two sides share one. A record is a 32-byte [`RecordHeader`] followed
//! by its payload, padded to 8 bytes; a record never straddles the end of
//! the data area: the producer writes a header whose `len` is
//! [`PAD_MARKER`] and wraps. Space is free up to `commit`, not up to the
//! consumer's read position, so a restarted consumer finds every record it
//! had not committed. `closed`, `writing`, `calls` and the open calls are
//! the gate of a pipeline stage's input ring (`gate.rs`): how the host
//! hands new calls to another instance and knows when no record can reach
//! this one any more. The Python SDK mirrors these constants
//! (`plugins/python/citadel_plugin/ring.py`).
//!
//! [`RecordHeader`]: crate::envelope::RecordHeader

use crate::envelope::HEADER_LEN;
#[cfg(not(loom))]
use crate::shm::{ShmError, ShmRegion};

pub const MAGIC: u64 = u64::from_le_bytes(*b"CITRING1");
/// 2: the gate words (`closed`, `writing`, `calls`).
pub const LAYOUT_VERSION: u32 = 2;
pub const OFF_MAGIC: usize = 0;
pub const OFF_VERSION: usize = 8;
pub const OFF_DATA_OFFSET: usize = 12;
pub const OFF_CAPACITY: usize = 16;
pub const OFF_CONSUMER_ATTACHES: usize = 24;
pub const OFF_PRODUCER_ATTACHES: usize = 32;
pub const OFF_FULL_COUNT: usize = 40;
pub const OFF_EMPTY_COUNT: usize = 48;
pub const OFF_DELIVERED: usize = 56;
pub const OFF_BUSY_NS: usize = 64;
pub const OFF_CLOSED: usize = 72;
pub const OFF_HEAD: usize = 128;
pub const OFF_WRITING: usize = 136;
pub const OFF_CALLS: usize = 144;
pub const OFF_OPEN_CALLS: usize = 160;
/// Slots of the open-call table (the rest of the producer's line).
pub const OPEN_CALL_SLOTS: usize = 12;
pub const OFF_COMMIT: usize = 256;
pub const OFF_LATENCY: usize = 264;
pub const OFF_SLEEPING: usize = 384;
pub const DATA_OFFSET: usize = 512;
/// Records start and end on this alignment.
pub const RECORD_ALIGN: usize = 8;
/// `len` of a padding record: skip to the start of the data area.
pub const PAD_MARKER: u32 = u32::MAX;
/// Smallest data area accepted.
pub const MIN_CAPACITY: u64 = 4096;

/// Region size needed for a ring with `capacity` data bytes.
pub fn region_len(capacity: u64) -> u64 {
    DATA_OFFSET as u64 + capacity
}

/// Largest payload a single record may carry in a ring of `capacity` data
/// bytes: a record of at most half the ring always fits into an empty ring,
/// wherever the cursor is.
pub fn max_payload(capacity: u64) -> usize {
    (capacity / 2) as usize - HEADER_LEN
}

/// Bytes a record with `payload_len` payload bytes occupies.
pub fn record_len(payload_len: usize) -> usize {
    HEADER_LEN + payload_len.next_multiple_of(RECORD_ALIGN)
}

/// Why a region cannot hold (or does not hold) a ring.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("ring capacity {0} is not a power of two >= {MIN_CAPACITY} and < 2^32")]
    BadCapacity(u64),
    #[error("bad ring magic {0:#x} (not a Citadel ring, or not initialised yet)")]
    BadMagic(u64),
    #[error("ring layout version {found}, this build speaks {LAYOUT_VERSION}")]
    Version { found: u32 },
    #[error(
        "ring header claims {capacity} data bytes at offset {data_offset}, region has {region_len}"
    )]
    Geometry {
        capacity: u64,
        data_offset: u32,
        region_len: usize,
    },
    #[cfg(not(loom))]
    #[error(transparent)]
    Shm(#[from] ShmError),
}

#[cfg(not(loom))]
pub(crate) fn check_capacity(capacity: u64) -> Result<(), LayoutError> {
    if capacity.is_power_of_two() && (MIN_CAPACITY..(1 << 32)).contains(&capacity) {
        Ok(())
    } else {
        Err(LayoutError::BadCapacity(capacity))
    }
}

/// The region must hold the header and `capacity` data bytes at `DATA_OFFSET`.
#[cfg(not(loom))]
pub(crate) fn check_geometry(
    region: &ShmRegion,
    capacity: u64,
    data_offset: u32,
) -> Result<(), LayoutError> {
    if data_offset as usize != DATA_OFFSET || (region.len() as u64) < region_len(capacity) {
        return Err(LayoutError::Geometry {
            capacity,
            data_offset,
            region_len: region.len(),
        });
    }
    Ok(())
}
