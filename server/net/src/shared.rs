//! State shared by every thread's loop.

use std::sync::atomic::{AtomicBool, AtomicUsize};

pub struct Shared {
    /// Connected clients across all threads (for maxclients).
    pub clients: AtomicUsize,
    pub client_output_limit: usize,
    pub max_input: usize,
    /// At shutdown: how long clients (parked ones too) may take to get
    /// their replies before they are closed.
    pub drain_wait: std::time::Duration,
    /// Set when a thread failed: every loop shuts down.
    pub stop: AtomicBool,
    /// Connections per address, the accept rate.
    pub limits: super::admit::ConnectionLimits,
    /// Every thread's heartbeat and listeners, for a stalled one's peers.
    pub relief: super::peer_watch::Relief,
}
