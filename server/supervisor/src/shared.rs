//! What every thread (and the supervisor) knows about one plugin: its
//! configuration, cores, per-instance process status and call statistics.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};

use super::config::PluginConfig;
use super::stats::CallStats;

/// Life cycle of one plugin process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InstanceState {
    Starting = 0,
    Running = 1,
    /// Crashed; restarting after the backoff delay.
    Backoff = 2,
    /// Hot upgrade: the old process is finishing its request.
    Reloading = 3,
    /// Graceful stop: finishing in-flight work before exiting.
    Stopping = 4,
    Stopped = 5,
}

impl InstanceState {
    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Running => "running",
            InstanceState::Backoff => "backoff",
            InstanceState::Reloading => "reloading",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => InstanceState::Starting,
            1 => InstanceState::Running,
            2 => InstanceState::Backoff,
            3 => InstanceState::Reloading,
            4 => InstanceState::Stopping,
            _ => InstanceState::Stopped,
        }
    }
}

/// One plugin process, as the supervisor reports it.
#[derive(Debug, Default)]
pub struct InstanceStatus {
    /// 0 while no process runs.
    pub pid: AtomicU32,
    state: AtomicU8,
    /// Unexpected exits (crashes, kills) so far.
    pub restarts: AtomicU64,
    /// Hot upgrades so far.
    pub reloads: AtomicU64,
}

impl InstanceStatus {
    pub fn state(&self) -> InstanceState {
        InstanceState::from_u8(self.state.load(Relaxed))
    }

    pub fn set_state(&self, s: InstanceState) {
        self.state.store(s as u8, Relaxed);
    }
}

pub struct PluginShared {
    pub config: PluginConfig,
    /// CPUs its processes are pinned to; empty = not pinned.
    pub cores: Vec<usize>,
    pub instances: Vec<InstanceStatus>,
    pub stats: CallStats,
    /// Uncommitted request bytes in each server thread's rings (updated by
    /// that thread every maintenance tick).
    pub ring_bytes: Vec<AtomicU64>,
}

impl PluginShared {
    pub fn new(config: PluginConfig, cores: Vec<usize>, threads: usize) -> PluginShared {
        PluginShared {
            instances: (0..config.instances)
                .map(|_| InstanceStatus::default())
                .collect(),
            config,
            cores,
            stats: CallStats::default(),
            ring_bytes: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn restarts(&self) -> u64 {
        self.instances
            .iter()
            .map(|i| i.restarts.load(Relaxed))
            .sum()
    }

    pub fn reloads(&self) -> u64 {
        self.instances.iter().map(|i| i.reloads.load(Relaxed)).sum()
    }

    pub fn ring_depth(&self) -> u64 {
        self.ring_bytes.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// Per-instance states, comma-separated ("running" for one instance).
    pub fn states(&self) -> String {
        join(self.instances.iter().map(|i| i.state().name().to_string()))
    }

    pub fn pids(&self) -> String {
        join(
            self.instances
                .iter()
                .map(|i| i.pid.load(Relaxed).to_string()),
        )
    }

    pub fn cores_text(&self) -> String {
        if self.cores.is_empty() {
            return "shared".into();
        }
        join(self.cores.iter().map(|c| c.to_string()))
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(",")
}
