//! Read-through counters (relaxed atomics, all threads) and the INFO
//! `readthrough` section.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::ReadThrough;

#[derive(Debug, Default)]
pub struct Stats {
    /// Load requests sent to loaders (restarts included).
    pub loads: AtomicU64,
    /// Misses that joined a load already in flight (single-flight).
    pub joined: AtomicU64,
    /// Loads that found a value / found none.
    pub loaded: AtomicU64,
    pub absent: AtomicU64,
    /// Clients answered from a finished load.
    pub served: AtomicU64,
    /// GETs answered nil from a negative-cache marker.
    pub negative_hits: AtomicU64,
    /// Clients served a stale value because the origin failed.
    pub stale_served: AtomicU64,
    /// Loads that failed (unavailable, timeout, origin error).
    pub origin_errors: AtomicU64,
    /// Misses failed at once: breaker open or too many loads in flight.
    pub failed_fast: AtomicU64,
    /// Keys invalidated, and loads redone because of an invalidation.
    pub invalidations: AtomicU64,
    pub restarted: AtomicU64,
    pub resyncs: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// INFO readthrough.
pub fn info_section(out: &mut String, rt: Option<&ReadThrough>) {
    let Some(rt) = rt else {
        let _ = write!(out, "keyspaces:0\r\n");
        return;
    };
    let s = &rt.stats;
    let _ = write!(out, "keyspaces:{}\r\n", rt.keyspaces.iter().count());
    for (k, v) in [
        ("loads", &s.loads),
        ("loads_found", &s.loaded),
        ("loads_absent", &s.absent),
        ("load_joins", &s.joined),
        ("clients_served_by_loads", &s.served),
        ("negative_hits", &s.negative_hits),
        ("stale_served", &s.stale_served),
        ("origin_errors", &s.origin_errors),
        ("failed_fast", &s.failed_fast),
        ("invalidations", &s.invalidations),
        ("loads_restarted", &s.restarted),
        ("resyncs", &s.resyncs),
    ] {
        let _ = write!(out, "{k}:{}\r\n", v.load(Relaxed));
    }
    let _ = write!(out, "loads_in_flight:{}\r\n", rt.flights.count());
    for b in &rt.breakers {
        let _ = write!(
            out,
            "loader_{}:breaker={},in_flight={},trips={}\r\n",
            b.name,
            b.breaker.state_name(),
            b.breaker.in_flight(),
            b.breaker.trips.load(Relaxed)
        );
    }
}
