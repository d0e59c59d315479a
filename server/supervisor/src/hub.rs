//! The process-wide plugin registry: shared per-plugin state, the core
//! plan, each server thread's ring pairs until that thread takes them, and
//! the control channel to the supervisor thread.

use std::sync::{mpsc, Arc, Mutex};

use citadel_proto::{EventFd, HostPair};

use super::config::find_program;
use super::pipeline::{PipelineConfig, Topology};
use super::shared::PluginShared;
use super::stats::CallStats;
use super::versions::{Traffic, WeightError};

/// Requests to the supervisor thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Hot upgrade of one plugin (by index), or of all.
    Reload(Option<usize>),
    /// Some version's weight changed: start or drain processes to match.
    Weights,
    /// Drain and stop every plugin, then end the supervisor thread.
    Shutdown,
}

/// Ring pairs of one server thread: `[plugin][instance]`.
pub type ThreadLanes = Vec<Vec<HostPair>>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReloadError {
    #[error("cannot reload plugin {name:?}: {reason}")]
    Executable { name: String, reason: String },
    #[error("the plugin supervisor is not running")]
    NotRunning,
}

/// What every thread knows about one pipeline: its configuration and
/// call statistics (per stage figures are read from the rings).
#[derive(Debug)]
pub struct PipelineShared {
    pub config: PipelineConfig,
    /// Calls sent to the first stage (cache misses that led a flight).
    pub stats: CallStats,
    /// Calls answered from the result cache.
    pub cache_hits: std::sync::atomic::AtomicU64,
    /// Calls that joined an identical call in progress.
    pub joined: std::sync::atomic::AtomicU64,
    /// Frames whose results reached the server.
    pub frames: std::sync::atomic::AtomicU64,
    /// Per stage: the last look at its records-delivered counter (when,
    /// how many) and the rate between the two last looks (PIPELINE INFO).
    pub stage_rates: Mutex<Vec<StageRate>>,
}

/// Records per second of one stage, between two looks at least a second
/// apart.
#[derive(Debug, Clone, Copy)]
pub struct StageRate {
    pub at: std::time::Instant,
    pub records: u64,
    pub per_sec: f64,
}

impl StageRate {
    /// Takes a new look (`records` now); returns the current rate.
    pub fn observe(&mut self, records: u64) -> f64 {
        let elapsed = self.at.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            self.per_sec = records.saturating_sub(self.records) as f64 / elapsed;
            self.at = std::time::Instant::now();
            self.records = records;
        }
        self.per_sec
    }
}

impl PipelineShared {
    pub fn new(config: PipelineConfig) -> Self {
        Self {
            stats: CallStats::default(),
            cache_hits: Default::default(),
            joined: Default::default(),
            frames: Default::default(),
            stage_rates: Mutex::new(
                config
                    .stages
                    .iter()
                    .map(|_| StageRate {
                        at: std::time::Instant::now(),
                        records: 0,
                        per_sec: 0.0,
                    })
                    .collect(),
            ),
            config,
        }
    }
}

pub struct Hub {
    pub plugins: Vec<Arc<PluginShared>>,
    pub pipelines: Vec<Arc<PipelineShared>>,
    /// How the plugins are chained (ring pairs per thread, stages).
    pub topology: Topology,
    /// Every plugin's request rings (all threads), for their counters and
    /// depth (PIPELINE INFO); the rings are shared memory, so these views
    /// see what the producers and consumers write.
    pub input_rings: Vec<Vec<citadel_proto::Ring>>,
    /// `server=0 echo=1`, see `supervisor::cores`.
    pub core_plan: String,
    lanes: Mutex<Vec<Option<ThreadLanes>>>,
    control: Mutex<mpsc::Sender<Control>>,
    doorbell: EventFd,
}

impl Hub {
    pub fn new(
        plugins: Vec<Arc<PluginShared>>,
        pipelines: Vec<Arc<PipelineShared>>,
        topology: Topology,
        core_plan: String,
        lanes: Vec<ThreadLanes>,
        control: mpsc::Sender<Control>,
        doorbell: EventFd,
    ) -> Hub {
        let input_rings = (0..plugins.len())
            .map(|p| {
                lanes
                    .iter()
                    .flat_map(|t| t[p].iter().map(|pair| pair.requests.ring().clone()))
                    .collect()
            })
            .collect();
        Hub {
            plugins,
            pipelines,
            topology,
            input_rings,
            core_plan,
            lanes: Mutex::new(lanes.into_iter().map(Some).collect()),
            control: Mutex::new(control),
            doorbell,
        }
    }

    /// Index of the plugin called `name` (case-insensitive).
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        self.plugins
            .iter()
            .position(|p| p.config.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Index of the pipeline called `name` (case-insensitive).
    pub fn find_pipeline(&self, name: &[u8]) -> Option<usize> {
        self.pipelines
            .iter()
            .position(|p| p.config.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Server thread `thread`'s ring pairs (once; later calls get none).
    pub fn take_lanes(&self, thread: usize) -> ThreadLanes {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .get_mut(thread)
            .and_then(Option::take)
            .unwrap_or_default()
    }

    /// Sends a request to the supervisor thread and wakes it.
    pub fn send(&self, c: Control) -> bool {
        let sent = self
            .control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(c)
            .is_ok();
        if sent {
            if let Err(e) = self.doorbell.signal() {
                tracing::warn!("waking the plugin supervisor: {e}");
            }
        }
        sent
    }

    /// Changes plugin `index`'s version weights (`change` is one of
    /// `Traffic`'s operations), then has the supervisor start or drain
    /// the versions' processes to match.
    pub fn change_weights(
        &self,
        index: usize,
        change: impl FnOnce(&Traffic) -> Result<(), WeightError>,
    ) -> Result<(), WeightError> {
        change(&self.plugins[index].traffic)?;
        tracing::info!(plugin = %self.plugins[index].config.name, weights = ?self.plugins[index].traffic.weights(), "version weights changed");
        self.send(Control::Weights);
        Ok(())
    }

    /// Hot upgrade of plugin `index` (None: all), after checking that the
    /// executable (possibly replaced on disk) can still be started.
    pub fn reload(&self, index: Option<usize>) -> Result<(), ReloadError> {
        for p in &self.plugins {
            if index.is_some_and(|i| !std::ptr::eq(p.as_ref(), self.plugins[i].as_ref())) {
                continue;
            }
            for v in &p.config.versions {
                find_program(p.config.placement, &v.program).map_err(|reason| {
                    ReloadError::Executable {
                        name: p.config.name.clone(),
                        reason,
                    }
                })?;
            }
        }
        if self.send(Control::Reload(index)) {
            Ok(())
        } else {
            Err(ReloadError::NotRunning)
        }
    }
}
