//! What eviction may drop: the engine's side of `maxmemory-policy`. The
//! server maps Redis's eight names onto these four (ARCHITECTURE, "TTL and
//! eviction"); every policy still reclaims expired items and dead bytes.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(u8)]
pub enum EvictionPolicy {
    /// Any item may go: FIFO segment eviction with frequency-based
    /// retention, least frequently used index candidate first.
    #[default]
    AllKeys = 0,
    /// Only items with a TTL may go; the others are kept by compaction.
    /// Victim segments: those holding only TTL items first, then the oldest.
    Volatile = 1,
    /// As `Volatile`, victim segments by earliest latest expiry.
    VolatileTtl = 2,
    /// Nothing but expired items goes: a write that finds no room fails
    /// with `WriteError::OutOfMemory`.
    NoEviction = 3,
}

impl EvictionPolicy {
    fn from_u8(v: u8) -> EvictionPolicy {
        match v {
            1 => EvictionPolicy::Volatile,
            2 => EvictionPolicy::VolatileTtl,
            3 => EvictionPolicy::NoEviction,
            _ => EvictionPolicy::AllKeys,
        }
    }

    /// Whether an unexpired item (`has_ttl`: it has an expiry) may be evicted.
    #[inline]
    pub fn may_evict(self, has_ttl: bool) -> bool {
        match self {
            EvictionPolicy::AllKeys => true,
            EvictionPolicy::Volatile | EvictionPolicy::VolatileTtl => has_ttl,
            EvictionPolicy::NoEviction => false,
        }
    }

    /// Whether some unexpired items are protected from eviction.
    #[inline]
    pub fn protects_some(self) -> bool {
        self != EvictionPolicy::AllKeys
    }
}

/// The policy in effect, process-local (the server sets it from its
/// live setting; other processes never evict).
#[derive(Default)]
pub(crate) struct PolicyCell(AtomicU8);

impl PolicyCell {
    #[inline]
    pub fn get(&self) -> EvictionPolicy {
        // ORDERING: Relaxed: a setting; a writer that sees the old policy
        // for a moment decides as it would have just before the change.
        EvictionPolicy::from_u8(self.0.load(Ordering::Relaxed))
    }
    pub fn set(&self, policy: EvictionPolicy) {
        // ORDERING: Relaxed, as `get`.
        self.0.store(policy as u8, Ordering::Relaxed);
    }
}
