//! Counters of one server thread, readable by INFO from any thread:
//! the loop's own (`citadel_net::LoopStats`) and the commands it ran.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use citadel_net::LoopStats;

#[derive(Debug, Default)]
pub struct ThreadStats {
    /// Commands run (single writer: the thread's loop).
    pub commands: AtomicU64,
    /// Connections, bytes, busy time, panics: the network loop's counters.
    pub net: Arc<LoopStats>,
}

impl ThreadStats {
    /// CONFIG RESETSTAT: the counters INFO resets (not gauges such as
    /// connections, nor busy time, which rates are derived from).
    pub fn reset(&self) {
        for c in [
            &self.commands,
            &self.net.accepted,
            &self.net.rejected,
            &self.net.bytes_in,
            &self.net.bytes_out,
        ] {
            c.store(0, Relaxed);
        }
    }
}
