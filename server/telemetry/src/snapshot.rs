//! A region's numbers copied out at one moment: what `/metrics` and
//! `citadel-top` render.

use crate::layout::{Layer, LATENCY_BUCKETS};

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
