//! The ring and doorbell as the loom models see them (`--cfg loom` only):
//! cursors and the sleeping flag are loom atomics, the data area is plain
//! memory whose every 8-byte word is guarded by a loom `UnsafeCell`, so an
//! access to record bytes that is not ordered after the last conflicting
//! one (e.g. the producer reusing space the consumer has not committed) is
//! reported as a causality violation. Producer, consumer and parking code
//! are the production modules, compiled against this type.

use std::cell::UnsafeCell as StdUnsafeCell;
use std::sync::atomic::{AtomicU16, AtomicU64 as StdU64};

use loom::cell::UnsafeCell;
use loom::sync::Arc;

use super::layout::{max_payload, LayoutError};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

#[derive(Debug)]
struct Shared {
    head: AtomicU64,
    commit: AtomicU64,
    sleeping: AtomicU32,
    closed: AtomicU32,
    writing: AtomicU32,
    calls: AtomicU64,
    open_calls: [AtomicU64; super::layout::OPEN_CALL_SLOTS],
    attaches: [AtomicU64; 2],
    counters: [AtomicU64; 4 + super::LATENCY_BUCKETS],
    /// The data area, 8-aligned.
    bytes: StdUnsafeCell<Box<[u64]>>,
    /// One access tracker per 8-byte word of `bytes`.
    words: Box<[UnsafeCell<()>]>,
}

// SAFETY: `bytes` is only reached through `Ring::data`/`data_mut`/`word_at`,
// whose callers keep the SPSC protocol (and loom checks that they do).
unsafe impl Sync for Shared {}

/// A ring in loom-tracked memory. Any power-of-two capacity of at least 64
/// bytes (models use tiny rings to keep the state space small).
#[derive(Clone, Debug)]
pub struct Ring {
    shared: Arc<Shared>,
    capacity: u64,
}

impl Ring {
    /// A fresh, empty ring.
    pub fn new_model(capacity: u64) -> Result<Self, LayoutError> {
        if !capacity.is_power_of_two() || capacity < 64 {
            return Err(LayoutError::BadCapacity(capacity));
        }
        let words = (capacity / 8) as usize;
        let shared = Shared {
            head: AtomicU64::new(0),
            commit: AtomicU64::new(0),
            sleeping: AtomicU32::new(0),
            closed: AtomicU32::new(0),
            writing: AtomicU32::new(0),
            calls: AtomicU64::new(0),
            open_calls: std::array::from_fn(|_| AtomicU64::new(0)),
            attaches: [AtomicU64::new(0), AtomicU64::new(0)],
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            bytes: StdUnsafeCell::new(vec![0u64; words].into_boxed_slice()),
            words: (0..words).map(|_| UnsafeCell::new(())).collect(),
        };
        Ok(Self {
            shared: Arc::new(shared),
            capacity,
        })
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn max_payload(&self) -> usize {
        max_payload(self.capacity)
    }

    pub(crate) fn head(&self) -> &AtomicU64 {
        &self.shared.head
    }

    pub(crate) fn commit(&self) -> &AtomicU64 {
        &self.shared.commit
    }

    pub(crate) fn sleeping(&self) -> &AtomicU32 {
        &self.shared.sleeping
    }

    pub(crate) fn closed(&self) -> &AtomicU32 {
        &self.shared.closed
    }

    pub(crate) fn writing(&self) -> &AtomicU32 {
        &self.shared.writing
    }

    pub(crate) fn calls(&self) -> &AtomicU64 {
        &self.shared.calls
    }

    pub(crate) fn open_call_slot(&self, n: usize) -> &AtomicU64 {
        &self.shared.open_calls[n.min(super::layout::OPEN_CALL_SLOTS - 1)]
    }

    pub(crate) fn attaches(&self, consumer: bool) -> &AtomicU64 {
        &self.shared.attaches[usize::from(consumer)]
    }

    pub(crate) fn counter(&self, counter: super::Counter) -> &AtomicU64 {
        use super::Counter::*;
        let n = match counter {
            Full => 0,
            Empty => 1,
            Delivered => 2,
            BusyNs => 3,
            Latency(n) => 4 + n.min(super::LATENCY_BUCKETS - 1),
        };
        &self.shared.counters[n]
    }

    pub(crate) fn index(&self, pos: u64) -> usize {
        (pos & (self.capacity - 1)) as usize
    }

    fn base(&self) -> *mut u8 {
        // SAFETY: a pointer to the boxed slice; no reference is formed.
        unsafe { (*self.shared.bytes.get()).as_mut_ptr().cast() }
    }

    fn track(&self, index: usize, len: usize, write: bool) {
        assert!(
            index + len <= self.capacity as usize,
            "out of the data area"
        );
        for w in index / 8..(index + len).div_ceil(8) {
            if write {
                self.shared.words[w].with_mut(|_| ());
            } else {
                self.shared.words[w].with(|_| ());
            }
        }
    }

    /// # Safety
    ///
    /// As `memory::Ring::data` (loom checks the ordering part).
    pub(crate) unsafe fn data(&self, index: usize, len: usize) -> &[u8] {
        self.track(index, len, false);
        // SAFETY: in bounds (tracked above); no concurrent writer (caller).
        unsafe { std::slice::from_raw_parts(self.base().add(index), len) }
    }

    /// # Safety
    ///
    /// As `memory::Ring::data_mut` (loom checks the ordering part).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn data_mut(&self, index: usize, len: usize) -> &mut [u8] {
        self.track(index, len, true);
        // SAFETY: in bounds (tracked above); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.base().add(index), len) }
    }

    /// # Safety
    ///
    /// As `memory::Ring::word_at`.
    pub(crate) unsafe fn word_at(&self, index: usize) -> &StdU64 {
        assert!(index % 8 == 0);
        self.track(index, 8, false);
        // SAFETY: 8-aligned (a u64 slice) and in bounds (tracked above).
        unsafe { &*(self.base().add(index) as *const StdU64) }
    }

    /// # Safety
    ///
    /// As `memory::Ring::attempt_at`; counted as a write of the header word.
    pub(crate) unsafe fn attempt_at(&self, index: usize) -> &AtomicU16 {
        self.track(index, 8, true);
        // SAFETY: 2-aligned and in bounds (tracked above).
        unsafe { &*(self.base().add(index + 6) as *const AtomicU16) }
    }
}

/// The doorbell as a counter of rings (loom cannot block in `poll`).
#[derive(Debug)]
pub struct EventFd(Arc<AtomicU64>);

impl EventFd {
    pub fn new_model() -> Self {
        Self(Arc::new(AtomicU64::new(0)))
    }

    pub fn signal(&self) -> std::io::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    pub fn drain(&self) -> std::io::Result<u64> {
        Ok(self.0.swap(0, Ordering::SeqCst))
    }

    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self(Arc::clone(&self.0)))
    }

    /// Rings not yet drained.
    pub fn pending(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
