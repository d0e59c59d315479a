//! A ring in a mapped shared-memory region: the typed view of the layout
//! (`layout.rs`) that producers and consumers share. Under `--cfg loom` the
//! model in `model.rs` takes its place.

use std::sync::atomic::AtomicU16;
use std::sync::Arc;

use super::layout::{
    check_capacity, check_geometry, LayoutError, DATA_OFFSET, LAYOUT_VERSION, MAGIC, OFF_BUSY_NS,
    OFF_CALLS, OFF_CAPACITY, OFF_CLOSED, OFF_COMMIT, OFF_CONSUMER_ATTACHES, OFF_DATA_OFFSET,
    OFF_DELIVERED, OFF_EMPTY_COUNT, OFF_FULL_COUNT, OFF_HEAD, OFF_LATENCY, OFF_MAGIC,
    OFF_OPEN_CALLS, OFF_PRODUCER_ATTACHES, OFF_SLEEPING, OFF_VERSION, OFF_WRITING, OPEN_CALL_SLOTS,
};
use super::{Counter, RingCounters, LATENCY_BUCKETS};
use crate::shm::{ShmError, ShmRegion};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// A validated ring in a mapped region. Cheap to clone (the mapping is shared).
#[derive(Clone, Debug)]
pub struct Ring {
    region: Arc<ShmRegion>,
    capacity: u64,
}

impl Ring {
    /// Region size needed for a ring with `capacity` data bytes.
    pub fn region_len(capacity: u64) -> u64 {
        super::layout::region_len(capacity)
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
            OFF_FULL_COUNT,
            OFF_EMPTY_COUNT,
            OFF_DELIVERED,
            OFF_BUSY_NS,
            OFF_HEAD,
            OFF_CALLS,
            OFF_COMMIT,
        ] {
            ring.u64_at(off).store(0, Ordering::Relaxed);
        }
        for n in 0..LATENCY_BUCKETS {
            ring.u64_at(OFF_LATENCY + 8 * n).store(0, Ordering::Relaxed);
        }
        for n in 0..OPEN_CALL_SLOTS {
            ring.open_call_slot(n).store(0, Ordering::Relaxed);
        }
        for off in [OFF_SLEEPING, OFF_CLOSED, OFF_WRITING] {
            ring.u32_at(off).store(0, Ordering::Relaxed);
        }
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
        super::layout::max_payload(self.capacity)
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

    pub(crate) fn closed(&self) -> &AtomicU32 {
        self.u32_at(OFF_CLOSED)
    }

    pub(crate) fn writing(&self) -> &AtomicU32 {
        self.u32_at(OFF_WRITING)
    }

    pub(crate) fn calls(&self) -> &AtomicU64 {
        self.u64_at(OFF_CALLS)
    }

    /// Slot `n` (< `OPEN_CALL_SLOTS`) of the open-call table.
    pub(crate) fn open_call_slot(&self, n: usize) -> &AtomicU64 {
        self.u64_at(OFF_OPEN_CALLS + 8 * n.min(OPEN_CALL_SLOTS - 1))
    }

    pub(crate) fn attaches(&self, consumer: bool) -> &AtomicU64 {
        self.u64_at(if consumer {
            OFF_CONSUMER_ATTACHES
        } else {
            OFF_PRODUCER_ATTACHES
        })
    }

    pub(crate) fn counter(&self, counter: Counter) -> &AtomicU64 {
        self.u64_at(match counter {
            Counter::Full => OFF_FULL_COUNT,
            Counter::Empty => OFF_EMPTY_COUNT,
            Counter::Delivered => OFF_DELIVERED,
            Counter::BusyNs => OFF_BUSY_NS,
            Counter::Latency(n) => OFF_LATENCY + 8 * n.min(LATENCY_BUCKETS - 1),
        })
    }

    /// How often the producer found this ring full and the consumer found
    /// it empty (and parked): a pipeline stage's bottleneck signal.
    pub fn stalls(&self) -> (u64, u64) {
        let c = self.counters();
        (c.full, c.empty)
    }

    /// How many times a consumer has attached (a new plugin process
    /// attaches once): the supervisor waits for it to grow before it
    /// sends a fresh process calls.
    pub fn consumer_attaches(&self) -> u64 {
        // ORDERING: Relaxed; a readiness hint (the ring protocol itself
        // keeps records safe whenever the consumer attaches).
        self.attaches(true).load(Ordering::Relaxed)
    }

    /// Bytes published and not yet committed: the ring's queue depth.
    pub fn depth(&self) -> u64 {
        // ORDERING: Relaxed; a statistic (a torn pair only misreports it).
        let head = self.head().load(Ordering::Relaxed);
        let commit = self.commit().load(Ordering::Relaxed);
        head.saturating_sub(commit)
    }

    /// Every statistics counter (Relaxed loads: statistics only).
    pub fn counters(&self) -> RingCounters {
        // ORDERING: Relaxed; statistics only.
        let get = |s| self.counter(s).load(Ordering::Relaxed);
        RingCounters {
            full: get(Counter::Full),
            empty: get(Counter::Empty),
            delivered: get(Counter::Delivered),
            busy_ns: get(Counter::BusyNs),
            latency: std::array::from_fn(|n| get(Counter::Latency(n))),
        }
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
    /// writes these bytes: the caller is the consumer, the bytes lie in
    /// `[commit, head)` as last loaded with Acquire, and the producer keeps
    /// the protocol (it writes only outside that window).
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

    /// The 8 data bytes at `index` as an atomic word: reading it is defined
    /// even while a misbehaving producer writes the same bytes.
    ///
    /// # Safety
    ///
    /// `index` is 8-aligned and `index + 8 <= capacity`, and the caller is
    /// the ring's consumer (it only loads the word; see the trust boundary
    /// in the module documentation of `ring`).
    pub(crate) unsafe fn word_at(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index % 8 == 0 && index + 8 <= self.capacity as usize);
        // SAFETY: DATA_OFFSET (512) and the page-aligned mapping make an
        // 8-aligned data index 8-aligned in memory; in bounds by the caller;
        // AtomicU64 has the layout of u64.
        unsafe { &*(self.region.as_ptr().add(DATA_OFFSET + index) as *const AtomicU64) }
    }

    /// The `attempt` field of the record header at data offset `index`.
    ///
    /// # Safety
    ///
    /// A published record header starts at `index` (so `index` is 8-aligned
    /// and `index + HEADER_LEN <= capacity`), and the caller is its consumer
    /// (or its producer, reading it before the record is committed).
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
