//! What operators look at while the server runs: per-thread command
//! statistics (INFO commandstats / errorstats / latencystats), the slow
//! log, the latency monitor and CLIENT PAUSE's process-wide state (MONITOR
//! has its own registry, `crate::monitor`). The commands that read them are in `command/`; each
//! thread's counters live in its `stats::ThreadStats`.
//!
//! The hot path pays one or two Relaxed loads per command here: the
//! thresholds are mirrored from the settings into atomics
//! ([`Introspection::refresh`]) so no command reads the settings store.

pub mod calls;
pub mod latency;
pub mod nested;
pub mod pause;
pub mod slowlog;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use citadel_settings::{server as setting, Store};

/// Process-wide introspection state (one in `ServerState`).
#[derive(Debug, Default)]
pub struct Introspection {
    /// `slowlog-log-slower-than` in µs (negative: off).
    slowlog_slower_than_us: AtomicI64,
    /// `slowlog-max-len`.
    slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` in ms (0: off).
    latency_threshold_ms: AtomicU64,
    /// Slow log entry ids, global across threads (as Redis's are).
    slowlog_ids: AtomicU64,
    /// LATENCY's events.
    pub latency: latency::Monitor,
    /// CLIENT PAUSE.
    pub pause: pause::Pause,
}

impl Introspection {
    /// Mirrors the live settings (start-up and after CONFIG SET).
    pub fn refresh(&self, settings: &Store) {
        let slower = settings.get(&setting::SLOWLOG_LOG_SLOWER_THAN);
        self.slowlog_slower_than_us.store(slower, Relaxed);
        let max_len = settings.get(&setting::SLOWLOG_MAX_LEN);
        self.slowlog_max_len.store(max_len, Relaxed);
        let latency = settings.get(&setting::LATENCY_MONITOR_THRESHOLD);
        self.latency_threshold_ms.store(latency, Relaxed);
    }

    /// Whether a command that ran `micros` belongs in the slow log.
    #[inline]
    pub fn is_slow(&self, micros: u64) -> bool {
        let limit = self.slowlog_slower_than_us.load(Relaxed);
        limit >= 0 && micros >= limit as u64
    }

    /// The slow log's threshold in microseconds, when it logs at all.
    #[inline]
    pub fn slowlog_threshold_us(&self) -> Option<u64> {
        u64::try_from(self.slowlog_slower_than_us.load(Relaxed)).ok()
    }

    pub fn slowlog_max_len(&self) -> usize {
        self.slowlog_max_len.load(Relaxed) as usize
    }

    /// The next slow log entry id.
    pub fn next_slowlog_id(&self) -> u64 {
        self.slowlog_ids.fetch_add(1, Relaxed)
    }

    /// The latency monitor's threshold in ms, when it is on.
    #[inline]
    pub fn latency_threshold_ms(&self) -> Option<u64> {
        match self.latency_threshold_ms.load(Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }
}
