//! Counters of one loop, written only by its thread and readable by any
//! (INFO, metrics). Relaxed atomics: each is a standalone statistic.

use std::sync::atomic::AtomicU64;

#[derive(Debug, Default)]
pub struct LoopStats {
    /// Connections open now.
    pub connections: AtomicU64,
    pub accepted: AtomicU64,
    /// Refused past maxclients.
    pub rejected: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Recvs made straight into a connection's input buffer (the rest of
    /// a big bulk), not through the provided buffers.
    pub direct_recvs: AtomicU64,
    /// Connections held with their refusals under overload (hold.rs).
    pub holds: AtomicU64,
    /// Nanoseconds spent processing (not waiting in io_uring_enter).
    pub busy_ns: AtomicU64,
    /// The CPU the thread is pinned to.
    pub cpu: AtomicU64,
    /// Connections closed because serving them panicked.
    pub panics: AtomicU64,
    /// Maintenance ticks run (~every 100 ms while the loop turns): a
    /// watchdog that sees it advance knows the thread is not stuck.
    pub ticks: AtomicU64,
    /// Connections accepted from a stalled peer thread's listener
    /// (relief.rs).
    pub relieved: AtomicU64,
}
