//! Process-wide server state shared by every core's loop and every session.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use citadel_cache::{Cache, CacheHandle};

/// Runtime settings the command layer needs (built from the config by `main`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub port: u16,
    pub threads: usize,
    pub requirepass: Option<String>,
    pub maxclients: usize,
    /// Largest bulk string a client may send (the cache's max value size + slack).
    pub proto_max_bulk_len: usize,
    /// Per-client output buffer limit in bytes; past it the client is dropped.
    pub client_output_limit: usize,
    pub config_file: Option<String>,
}

/// Graceful-shutdown flag: set by SIGTERM/SIGINT or SHUTDOWN; every loop
/// checks it at least every maintenance tick (~100 ms).
#[derive(Debug, Default)]
pub struct Shutdown {
    requested: AtomicBool,
}

impl Shutdown {
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
    }
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}

/// Counters of one server thread, readable by INFO from any thread.
#[derive(Debug, Default)]
pub struct ThreadStats {
    pub commands: AtomicU64,
    pub connections: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Nanoseconds spent processing (not waiting in io_uring_enter).
    pub busy_ns: AtomicU64,
    pub cpu: AtomicU64,
}

/// What one core's loop owns and lends to every session it runs.
pub struct ThreadCtx {
    pub index: usize,
    pub cache: CacheHandle,
    pub stats: Arc<ThreadStats>,
}

pub struct ServerState {
    pub cache: Arc<Cache>,
    pub settings: Settings,
    pub shutdown: Shutdown,
    pub started: Instant,
    pub threads: Vec<Arc<ThreadStats>>,
}
