//! Recording: a handle on one core slot of the region. Every method is a
//! relaxed load and store (the slot's one writer, a server thread) or a
//! relaxed `fetch_add` (the shared slot): no lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::layout::*;
use crate::words::Mapping;

/// A shed reason's slot, from [`Region::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reason(pub(crate) usize);

/// Where one thread records (see the crate docs for who calls what).
pub struct SlotStats {
    map: Arc<Mapping>,
    geometry: Geometry,
    /// First word of the slot.
    base: usize,
    /// True for the shared slot: adds are atomic read-modify-writes.
    shared: bool,
}

impl std::fmt::Debug for SlotStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotStats({}, shared={})", self.base, self.shared)
    }
}

impl SlotStats {
    pub(crate) fn new(
        map: Arc<Mapping>,
        geometry: Geometry,
        core: usize,
        shared: bool,
    ) -> SlotStats {
        let at = geometry.offsets();
        SlotStats {
            base: at.cores + core * at.core_stride,
            map,
            geometry,
            shared,
        }
    }

    #[inline]
    fn word(&self, i: usize) -> &AtomicU64 {
        &self.map.words()[self.base + i]
    }

    #[inline]
    fn add(&self, i: usize, n: u64) {
        let w = self.word(i);
        if self.shared {
            w.fetch_add(n, Relaxed);
        } else {
            // The slot's only writer: no lock prefix needed.
            w.store(w.load(Relaxed).wrapping_add(n), Relaxed);
        }
    }

    /// Command slot `cmd` ran for `nanos`; `failed`: it answered an error.
    /// Two adds (three when it failed); out-of-range slots are ignored.
    #[inline]
    pub fn command(&self, cmd: usize, nanos: u64, failed: bool) {
        self.commands(cmd, 1, nanos, u64::from(failed), latency_bucket(nanos));
    }

    /// `calls` runs of command slot `cmd` took `nanos` in all, each in
    /// latency bucket `bucket` (`latency_bucket`); `failed` of them
    /// answered an error. Out-of-range slots and buckets are ignored.
    #[inline]
    pub fn commands(&self, cmd: usize, calls: u64, nanos: u64, failed: u64, bucket: usize) {
        if cmd >= self.geometry.commands || bucket >= LATENCY_BUCKETS {
            return;
        }
        let base = SLOT_COMMANDS + cmd * COMMAND_WORDS;
        self.add(base, nanos);
        self.add(base + 2 + bucket, calls);
        if failed > 0 {
            self.add(base + 1, failed);
        }
    }

    /// One request shed by `layer` for `reason`, at `priority` (0 is the
    /// highest; values past the last slot count in the last).
    #[inline]
    pub fn shed(&self, layer: Layer, reason: Reason, priority: u8) {
        let p = usize::from(priority).min(PRIORITIES - 1);
        self.add(self.geometry.shed_word(layer, reason.0, p), 1);
    }

    /// Sets one of this core's gauges (queueing delay, CPU budget).
    #[inline]
    pub fn set_gauge(&self, gauge: CoreGauge, value: u64) {
        self.word(SLOT_GAUGES + gauge as usize)
            .store(value, Relaxed);
    }
}
