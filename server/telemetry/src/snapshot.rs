//! A region's numbers copied out at one moment: what `/metrics` and
//! `citadel-top` render.

use crate::layout::{bound_of, Layer, LATENCY_BUCKETS, PLUGIN_BUCKETS};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The server that last opened the region, when, and its last write.
    pub writer_pid: u64,
    pub started_ms: u64,
    pub heartbeat_ms: u64,
    /// Restarts that kept the counters.
    pub reopens: u64,
    /// One per server thread (the shared slot is in the totals only).
    pub cores: Vec<CoreTotals>,
    /// Commands that ran at least once, summed over cores.
    pub commands: Vec<CommandTotals>,
    /// Non-zero shed counts, summed over cores.
    pub shed: Vec<ShedCount>,
    pub hot_keys: Vec<HotKey>,
    /// The plugins of the region's table, in table order.
    pub plugins: Vec<PluginTotals>,
    /// (plugin, version) pairs the writer had no room for.
    pub plugins_unlisted: u64,
    /// The server's last INFO text (every section), as published.
    pub info: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreTotals {
    pub commands: u64,
    pub nanos: u64,
    pub failed: u64,
    pub queue_delay_nanos: u64,
    pub cpu_budget_permille: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandTotals {
    pub name: String,
    pub calls: u64,
    pub nanos: u64,
    pub failed: u64,
    /// Calls per latency bucket (not cumulative; see `layout`).
    pub buckets: [u64; LATENCY_BUCKETS],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShedCount {
    pub layer: Layer,
    pub reason: String,
    pub priority: u8,
    /// The name the server gave the priority ("" if none).
    pub priority_name: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HotKey {
    pub key: Vec<u8>,
    /// Accesses per second over the detector's window.
    pub rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginTotals {
    pub name: String,
    /// Calls refused before a version was chosen (ring full, in-flight limit).
    pub refused: u64,
    pub versions: Vec<VersionTotals>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionTotals {
    pub name: String,
    /// Calls that ended with a reply (the buckets' sum; errors included).
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub in_flight: u64,
    pub nanos: u64,
    /// Calls per latency bucket (not cumulative; see `layout`).
    pub buckets: [u64; PLUGIN_BUCKETS],
}

impl VersionTotals {
    /// The upper bound (ns) of the bucket where fraction `q` of the calls
    /// fall (a power of two µs, so within 2× above); `None` when there were
    /// none, `Some(u64::MAX)` when it is the last, open bucket.
    pub fn quantile_nanos(&self, q: f64) -> Option<u64> {
        quantile_of(&self.buckets, q)
    }
}

impl PluginTotals {
    /// Every version's buckets added up.
    pub fn buckets(&self) -> [u64; PLUGIN_BUCKETS] {
        let mut out = [0; PLUGIN_BUCKETS];
        for v in &self.versions {
            out.iter_mut().zip(&v.buckets).for_each(|(o, b)| *o += b);
        }
        out
    }
}

/// See `VersionTotals::quantile_nanos`.
pub fn quantile_of(buckets: &[u64], q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    let b = buckets.iter().position(|n| {
        seen += n;
        seen >= rank
    })?;
    Some(bound_of(b, buckets.len()).unwrap_or(u64::MAX))
}

impl Snapshot {
    /// A field of the INFO snapshot (`key:value` lines).
    pub fn info_field(&self, key: &str) -> Option<&str> {
        self.info.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k == key).then_some(v.trim_end())
        })
    }

    pub fn total_shed(&self) -> u64 {
        self.shed.iter().map(|s| s.count).sum()
    }
}
