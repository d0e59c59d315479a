//! The ring's memory layout and the typed view of it every side shares.
//!
//! ```text
//! offset  size  field (all little-endian, all offsets from the region start)
//! 0       8     magic  "CITRING1"
//! 8       4     layout version (LAYOUT_VERSION)
//! 12      4     data offset (DATA_OFFSET)
//! 16      8     capacity: data bytes, a power of two
//! 24      8     consumer attaches (incremented each time a consumer attaches)
//! 32      8     producer attaches
//! 128     8     head: bytes ever published by the producer      (producer's line)
//! 256     8     commit: bytes ever released by the consumer     (consumer's line)
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
//! had not committed. The Python SDK mirrors these constants
//! (`plugins/python/citadel_plugin/ring.py`).
//!
//! [`RecordHeader`]: crate::envelope::RecordHeader

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::envelope::HEADER_LEN;
use crate::shm::{ShmError, ShmRegion};

pub const MAGIC: u64 = u64::from_le_bytes(*b"CITRING1");
pub const LAYOUT_VERSION: u32 = 1;
pub const OFF_MAGIC: usize = 0;
pub const OFF_VERSION: usize = 8;
pub const OFF_DATA_OFFSET: usize = 12;
pub const OFF_CAPACITY: usize = 16;
pub const OFF_CONSUMER_ATTACHES: usize = 24;
pub const OFF_PRODUCER_ATTACHES: usize = 32;
pub const OFF_HEAD: usize = 128;
pub const OFF_COMMIT: usize = 256;
pub const OFF_SLEEPING: usize = 384;
pub const DATA_OFFSET: usize = 512;
/// Records start and end on this alignment.
pub const RECORD_ALIGN: usize = 8;
/// `len` of a padding record: skip to the start of the data area.
pub const PAD_MARKER: u32 = u32::MAX;
/// Smallest data area accepted.
pub const MIN_CAPACITY: u64 = 4096;

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
    #[error(transparent)]
    Shm(#[from] ShmError),
}

/// A validated ring in a mapped region. Cheap to clone (the mapping is shared).
#[derive(Clone, Debug)]
pub struct Ring {
    region: Arc<ShmRegion>,
    capacity: u64,
}

impl Ring {
    /// Region size needed for a ring with `capacity` data bytes.
    pub fn region_len(capacity: u64) -> u64 {
        DATA_OFFSET as u64 + capacity
    }

    /// Creates a fresh ring in a new memfd.
    pub fn create_memfd(name: &str, capacity: u64) -> Result<Self, LayoutError> {
        check_capacity(capacity)?;
        let region = ShmRegion::create_memfd(name, Self::region_len(capacity))?;
        Self::init(Arc::new(region), capacity)
    }

    /// Writes a fresh header into `region` (which must be zeroed, e.g. just
    /// created) and returns the ring. The magic is written last (Release), so
    /// an attacher that sees it sees the whole header.
    pub fn init(region: Arc<ShmRegion>, capacity: u64) -> Result<Self, LayoutError> {
        check_capacity(capacity)?;
        check_geometry(&region, capacity, DATA_OFFSET as u32)?;
        let ring = Self { region, capacity };
        ring.u32_at(OFF_VERSION)
            .store(LAYOUT_VERSION, Ordering::Relaxed);
        ring.u32_at(OFF_DATA_OFFSET)
            .store(DATA_OFFSET as u32, Ordering::Relaxed);
        ring.u64_at(OFF_CAPACITY).store(capacity, Ordering::Relaxed);
        for off in [
            OFF_CONSUMER_ATTACHES,
            OFF_PRODUCER_ATTACHES,
            OFF_HEAD,
            OFF_COMMIT,
        ] {
            ring.u64_at(off).store(0, Ordering::Relaxed);
        }
        ring.u32_at(OFF_SLEEPING).store(0, Ordering::Relaxed);
        // ORDERING: Release publishes the fields above to an attacher that
        // loads the magic with Acquire.
        ring.u64_at(OFF_MAGIC).store(MAGIC, Ordering::Release);
        Ok(ring)
    }

    /// Validates the header of an existing ring (created by another process
    /// or by an earlier run) and returns it. Cursors are left as they are.
    pub fn attach(region: Arc<ShmRegion>) -> Result<Self, LayoutError> {
        if region.len() < DATA_OFFSET {
            return Err(ShmError::TooSmall {
                actual: region.len() as u64,
                needed: DATA_OFFSET as u64,
            }
            .into());
        }
        let probe = Self {
            region,
            capacity: 0,
        };
        // ORDERING: Acquire pairs with the Release store of the magic in `init`.
        let magic = probe.u64_at(OFF_MAGIC).load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(LayoutError::BadMagic(magic));
        }
        let found = probe.u32_at(OFF_VERSION).load(Ordering::Relaxed);
        if found != LAYOUT_VERSION {
            return Err(LayoutError::Version { found });
        }
        let capacity = probe.u64_at(OFF_CAPACITY).load(Ordering::Relaxed);
        let data_offset = probe.u32_at(OFF_DATA_OFFSET).load(Ordering::Relaxed);
        check_capacity(capacity)?;
        check_geometry(&probe.region, capacity, data_offset)?;
        Ok(Self {
            region: probe.region,
            capacity,
        })
    }

    /// Data bytes in the ring.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Largest payload a single record may carry: a record of at most half
    /// the ring always fits into an empty ring, wherever the cursor is.
    pub fn max_payload(&self) -> usize {
        (self.capacity / 2) as usize - HEADER_LEN
    }

    pub fn region(&self) -> &Arc<ShmRegion> {
        &self.region
    }

    pub(crate) fn head(&self) -> &AtomicU64 {
        self.u64_at(OFF_HEAD)
    }

    pub(crate) fn commit(&self) -> &AtomicU64 {
        self.u64_at(OFF_COMMIT)
    }

    pub(crate) fn sleeping(&self) -> &AtomicU32 {
        self.u32_at(OFF_SLEEPING)
    }

    pub(crate) fn attaches(&self, consumer: bool) -> &AtomicU64 {
        self.u64_at(if consumer {
            OFF_CONSUMER_ATTACHES
        } else {
            OFF_PRODUCER_ATTACHES
        })
    }

    /// Data-area offset of a cursor position.
    pub(crate) fn index(&self, pos: u64) -> usize {
        (pos & (self.capacity - 1)) as usize
    }

    /// Bytes `[index, index + len)` of the data area.
    ///
    /// # Safety
    ///
    /// `index + len <= capacity`, and for the lifetime of the slice no one
    /// writes these bytes: the caller is the consumer and the bytes lie in
    /// `[commit, head)` as last loaded with Acquire (the producer writes only
    /// outside that window).
    pub(crate) unsafe fn data(&self, index: usize, len: usize) -> &[u8] {
        debug_assert!(index + len <= self.capacity as usize);
        // SAFETY: in bounds of the mapping (DATA_OFFSET + capacity <= region
        // length, checked at init/attach); no concurrent writer (caller).
        unsafe { std::slice::from_raw_parts(self.region.as_ptr().add(DATA_OFFSET + index), len) }
    }

    /// Mutable bytes `[index, index + len)` of the data area.
    ///
    /// # Safety
    ///
    /// `index + len <= capacity`; the caller is the ring's only producer, the
    /// bytes lie in the free window `[head, commit + capacity)` (commit loaded
    /// with Acquire, so the consumer is done with them), and no other slice of
    /// them is alive.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn data_mut(&self, index: usize, len: usize) -> &mut [u8] {
        debug_assert!(index + len <= self.capacity as usize);
        // SAFETY: in bounds (see `data`); exclusive by the caller's contract.
        unsafe {
            std::slice::from_raw_parts_mut(self.region.as_ptr().add(DATA_OFFSET + index), len)
        }
    }

    /// The `attempt` field of the record header at data offset `index`.
    ///
    /// # Safety
    ///
    /// A published record header starts at `index` (so `index` is 8-aligned
    /// and `index + HEADER_LEN <= capacity`), and the caller is its consumer.
    pub(crate) unsafe fn attempt_at(&self, index: usize) -> &AtomicU16 {
        // SAFETY: offset 6 of an 8-aligned header in a page-aligned mapping
        // is 2-aligned and in bounds; AtomicU16 has the layout of u16.
        unsafe { &*(self.region.as_ptr().add(DATA_OFFSET + index + 6) as *const AtomicU16) }
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % 8 == 0 && off + 8 <= DATA_OFFSET);
        // SAFETY: every caller passes one of the 8-aligned header offsets
        // above, inside the region (len >= DATA_OFFSET, checked before a
        // Ring exists); the mapping is page-aligned and lives as long as
        // `self`; all access to these words is atomic.
        unsafe { &*(self.region.as_ptr().add(off) as *const AtomicU64) }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 4 == 0 && off + 4 <= DATA_OFFSET);
        // SAFETY: as for `u64_at`, with 4-aligned offsets.
        unsafe { &*(self.region.as_ptr().add(off) as *const AtomicU32) }
    }
}

fn check_capacity(capacity: u64) -> Result<(), LayoutError> {
    if capacity.is_power_of_two() && (MIN_CAPACITY..(1 << 32)).contains(&capacity) {
        Ok(())
    } else {
        Err(LayoutError::BadCapacity(capacity))
    }
}

fn check_geometry(region: &ShmRegion, capacity: u64, data_offset: u32) -> Result<(), LayoutError> {
    if data_offset as usize != DATA_OFFSET || (region.len() as u64) < Ring::region_len(capacity) {
        return Err(LayoutError::Geometry {
            capacity,
            data_offset,
            region_len: region.len(),
        });
    }
    Ok(())
}
