//! The plugin supervisor: creates every (server thread, plugin instance)
//! ring pair, starts each plugin process pinned to its cores (or, for
//! `placement = "inline"`, loads its module and serves it on pinned threads
//! of the server: `inline`), watches it
//! (pidfd) and restarts it with exponential backoff after a crash, replaces
//! it on `PLUGIN RELOAD` or SIGHUP (overlapped upgrade: the new process
//! starts in a spare slot of its version and takes new calls once attached
//! while the old one finishes what it holds; an inline module's new thread
//! likewise: one upgrade queue for both, `upgrade.rs`), grows and shrinks elastic
//! plugins (`elastic.rs`), and drains every plugin at shutdown. The rings
//! outlive the processes, so nothing in them is lost.
//!
//! It also owns what every server thread reads about the plugins: the
//! [`Hub`] (per-plugin shared state, the core plan, each thread's ring pairs
//! until that thread takes them, the control channel to the supervisor
//! thread) and the call statistics. The server's per-thread calling side
//! (request ids, deadlines, replies) is `citadel_server::plugin`.

pub mod config;
pub mod cores;
mod elastic;
mod gray;
mod hub;
mod inline;
mod inputs;
pub mod numa;
pub mod pipeline;
mod pool;
mod process;
mod scale_rule;
mod shared;
mod stats;
mod sys;
mod upgrade;
mod versions;
mod watch;

pub use config::{find_executable, find_program, PluginConfig, PluginConfigError, VersionConfig};
pub use cores::{CorePlan, CorePlanError};
pub use hub::{Control, Hub, PipelineShared, ReloadError, StageRate, ThreadLanes};
pub use numa::{NumaError, NumaPlan, NumaTopology};
pub use pipeline::{PipelineConfig, Topology};
pub use shared::{InstanceState, InstanceStatus, PluginShared};
pub use stats::{quantile_of, CallStats, Latency};
pub use versions::{Traffic, VersionShared, WeightError};

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use citadel_proto::{Backing, EventFd, HostPair};
use signal_hook::consts::SIGHUP;
use signal_hook::iterator::{Handle, Signals};

use citadel_settings::plugin_placement::Placement;
use inline::InlineInstance;
use process::Instance;

/// True once the server is shutting down (no more restarts).
pub type StopFlag = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("plugin {plugin:?}: cannot create its rings: {source}")]
    Rings {
        plugin: String,
        source: citadel_proto::host::HostError,
    },
    #[error("plugin {plugin:?}: cannot start {program}: {source}")]
    Spawn {
        plugin: String,
        program: String,
        source: std::io::Error,
    },
    #[error("plugin {plugin:?}: {source}")]
    Inline {
        plugin: String,
        source: inline::ModuleError,
    },
    #[error("plugin supervisor: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Supervisor {
    hub: Arc<Hub>,
    thread: Option<JoinHandle<()>>,
    sighup: Option<(Handle, JoinHandle<()>)>,
}

impl Supervisor {
    /// Creates the rings of `threads` server threads, starts every plugin
    /// and the supervisor thread. Fails if a plugin cannot be started.
    pub fn start(
        configs: &[PluginConfig],
        pipelines: &[PipelineConfig],
        plan: &CorePlan,
        threads: usize,
        stopping: StopFlag,
    ) -> Result<Supervisor, SupervisorError> {
        let configs = &config::with_spare_slots(configs);
        let shared: Vec<Arc<PluginShared>> = configs
            .iter()
            .zip(&plan.plugins)
            .map(|(c, cores)| Arc::new(PluginShared::new(c.clone(), cores.clone(), threads)))
            .collect();
        let topology = Topology::new(configs, pipelines);
        let mut lanes: Vec<ThreadLanes> = Vec::with_capacity(threads);
        for t in 0..threads {
            let mut per_plugin = Vec::with_capacity(configs.len());
            for (p, c) in configs.iter().enumerate() {
                let pairs = (0..topology.pairs[p])
                    .map(|x| create_pair(c, x, t))
                    .collect::<Result<Vec<_>, SupervisorError>>()?;
                per_plugin.push(pairs);
            }
            lanes.push(per_plugin);
        }
        let mut instances = Vec::new();
        let mut inline = Vec::new();
        for (p, s) in shared.iter().enumerate() {
            let stage = pipelines.iter().any(|q| q.stages.contains(&p));
            for i in 0..s.config.instances {
                let mut pairs: Vec<&HostPair> = Vec::new();
                let mut outputs: Vec<Vec<&HostPair>> = Vec::new();
                for t in &lanes {
                    for x in topology.served_by(p, i) {
                        pairs.push(&t[p][x]);
                        let next = topology.downstream[p];
                        outputs.push(
                            topology
                                .outputs_of(p, x)
                                .into_iter()
                                .filter_map(|y| next.map(|d| &t[d][y]))
                                .collect(),
                        );
                    }
                }
                if s.config.placement == Placement::Inline {
                    let inputs = stage_inputs(&pairs, stage);
                    let mut inst = InlineInstance::new(s.clone(), p, i, &pairs, &outputs, inputs);
                    if !s.config.starts_running(i) {
                        inst.park_spare();
                        inline.push(inst);
                        continue;
                    }
                    let module = inst.load().map_err(|source| SupervisorError::Inline {
                        plugin: s.config.name.clone(),
                        source,
                    })?;
                    inst.start(module)?;
                    inline.push(inst);
                    continue;
                }
                let cmd = process::command(s, i, &pairs, &outputs);
                let rings = pairs.iter().map(|h| h.requests.ring().clone()).collect();
                let mut inst = Instance::new(s.clone(), p, i, cmd, rings);
                inst.inputs = stage_inputs(&pairs, stage);
                inst.outputs = outputs
                    .iter()
                    .flatten()
                    .map(|h| h.requests.ring().clone())
                    .collect();
                if !s.config.starts_running(i) {
                    inst.park();
                    instances.push(inst);
                    continue;
                }
                inst.spawn().map_err(|source| SupervisorError::Spawn {
                    plugin: s.config.name.clone(),
                    program: s.config.program.display().to_string(),
                    source,
                })?;
                instances.push(inst);
            }
        }
        // Server cores no server thread runs on (fewer threads than
        // cores): elastic plugins with automatic cores grow onto them.
        let spare = pool::SpareCores(plan.server.iter().skip(threads).copied().collect());
        let (tx, rx) = mpsc::channel();
        let doorbell = EventFd::new()?;
        let pipelines = pipelines
            .iter()
            .map(|c| Arc::new(PipelineShared::new(c.clone())))
            .collect();
        let hub = Arc::new(Hub::new(
            shared,
            pipelines,
            topology,
            plan.describe(),
            lanes,
            tx,
            doorbell.try_clone()?,
        ));
        let thread = std::thread::Builder::new()
            .name("citadel-plugins".into())
            .spawn(move || watch::run(instances, inline, rx, doorbell, stopping, spare))?;
        let sighup = if configs.is_empty() {
            None
        } else {
            Some(watch_sighup(hub.clone())?)
        };
        Ok(Supervisor {
            hub,
            thread: Some(thread),
            sighup,
        })
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Graceful stop: every plugin gets SIGTERM, finishes its in-flight
    /// work and exits (SIGKILL after its stop timeout); returns when all
    /// have exited.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some((handle, thread)) = self.sighup.take() {
            handle.close();
            let _ = thread.join();
        }
        if let Some(thread) = self.thread.take() {
            self.hub.send(Control::Shutdown);
            let _ = thread.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ring pair `x` of plugin `c` for server thread `t`.
fn create_pair(c: &PluginConfig, x: usize, t: usize) -> Result<HostPair, SupervisorError> {
    let name = format!("{}-{x}-{t}", c.name);
    let cap = c.ring_capacity;
    let pair = HostPair::create(&name, cap, cap, &Backing::Memfd).map_err(|source| {
        SupervisorError::Rings {
            plugin: c.name.clone(),
            source,
        }
    })?;
    // The reply ring's sleeping flag is the server thread's to set: it
    // parks on it only when its loop is about to block (plugin/attention.rs
    // in the server), so a plugin writes the eventfd only then.
    Ok(pair)
}

/// The request rings of `pairs` as a pipeline stage's inputs (none for a
/// plugin that is no stage).
fn stage_inputs(pairs: &[&HostPair], stage: bool) -> inputs::StageInputs {
    let rings = pairs.iter().map(|h| h.requests.ring().clone()).collect();
    inputs::StageInputs::new(rings, stage)
}

/// SIGHUP reloads every plugin (hot upgrade).
fn watch_sighup(hub: Arc<Hub>) -> std::io::Result<(Handle, JoinHandle<()>)> {
    let mut signals = Signals::new([SIGHUP])?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("citadel-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                tracing::info!("SIGHUP: reloading every plugin");
                if let Err(e) = hub.reload(None) {
                    tracing::error!("{e}");
                }
            }
        })?;
    Ok((handle, thread))
}
