//! Observability settings (top-level keys, a part of the server table):
//! the stats region file and the Prometheus endpoint.

use std::path::PathBuf;

crate::settings_part! {
    first: crate::cluster::SETTINGS.len();

    STATS_FILE: Option<PathBuf> = {
        name: "stats-file",
        value_name: "PATH",
        help: "Shared-memory stats region read by citadel-top and /metrics [default: <cache-file>.stats]",
        doc: "The stats region: a small memory-mapped file the server threads count \
              into (commands and latency per core, shed counts, hot keys, a copy of \
              INFO each second), read live by citadel-top and the /metrics endpoint \
              without asking the server. Counters survive a restart as long as the \
              file does (it is recreated when its layout or the thread count \
              changes). Default: the cache file's path plus .stats.",
        example: "/dev/shm/citadel-6379.cache.stats",
    }
    METRICS_PORT: Option<u16> = {
        name: "metrics-port",
        value_name: "PORT",
        help: "Serve Prometheus metrics over HTTP on this port (GET /metrics) [default: none]",
        doc: "TCP port of the Prometheus endpoint, on the bind address: GET /metrics \
              answers text format 0.0.4 rendered from the stats region (command \
              calls and latency histograms, per-core load and queueing delay, shed \
              counts, hot keys, and every numeric INFO field). Served by its own \
              thread, off the server threads. Default: none (no endpoint).",
        example: "9121",
        check: |p| if *p == Some(0) { Err("must be 1-65535".into()) } else { Ok(()) },
    }
}
