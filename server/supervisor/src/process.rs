//! One plugin process: how it is started (the handshake command, pinned and
//! in its own process group), watched (pidfd), stopped and restarted.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_proto::{handshake, stage_command, HostPair, Ring};

use super::inputs::StageInputs;
use super::shared::{InstanceState, InstanceStatus, PluginShared};
use super::sys;

/// A plugin process that lived this long is considered healthy again:
/// its next crash restarts it after the initial backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// What the supervisor wants of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Run,
    /// Replace the process (hot upgrade): restart at once when it exits.
    Reload,
    Stop,
}

/// An instance's request rings' counters, summed over its rings.
#[derive(Debug, Clone, Copy, Default)]
pub struct RingLoad {
    /// Times the producer found a ring full.
    pub full: u64,
    /// Records handed to the handler.
    pub delivered: u64,
    /// Nanoseconds the handler spent on them.
    pub busy_ns: u64,
}

/// Where a slot is beyond its process state (see `pool.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Serving (active), or parked (not running, inactive).
    Steady,
    /// Started; takes calls once attached to its rings.
    Warming { since: Instant, why: String },
    /// Takes no new calls; stopped once none is in flight.
    Retiring { since: Instant, why: String },
}

pub struct Instance {
    pub shared: Arc<PluginShared>,
    /// Which plugin (config order) and which of its instances.
    pub plugin: usize,
    pub index: usize,
    cmd: Command,
    child: Option<Child>,
    pidfd: Option<OwnedFd>,
    pub intent: Intent,
    started: Instant,
    backoff: Duration,
    pub restart_at: Option<Instant>,
    pub kill_at: Option<Instant>,
    /// The request rings it consumes (every server thread's).
    rings: Vec<Ring>,
    /// Each ring's consumer attaches when it was last started: it is
    /// ready once every ring's count has grown.
    attaches_at_start: Vec<u64>,
    /// A spare core it was given (elastic growth), pinned after start.
    pub core: Option<usize>,
    pub phase: Phase,
    /// Its rings' gate when the stage before feeds them (`inputs.rs`).
    pub inputs: StageInputs,
    /// The next stage's request rings it writes (a pipeline stage's).
    pub outputs: Vec<Ring>,
}

/// The command that starts instance `instance` (which `pairs` belong to);
/// spawned again after every exit, it re-attaches to the same ring memory.
/// It runs its version's executable, arguments and environment.
pub fn command(
    shared: &PluginShared,
    instance: usize,
    pairs: &[&HostPair],
    outputs: &[Vec<&HostPair>],
) -> Command {
    let cfg = &shared.config;
    let version = &cfg.versions[cfg.version_of(instance)];
    let mut cmd = stage_command(&version.program, pairs, outputs, cfg.max_attempts);
    let args = if version.args.is_empty() {
        &cfg.args
    } else {
        &version.args
    };
    cmd.args(args)
        .envs(cfg.env.iter().chain(&version.env).map(|(k, v)| (k, v)))
        .env(handshake::ENV_VERSION, &version.name)
        .env(
            handshake::ENV_INSTANCE,
            (instance % cfg.per_version.max(1)).to_string(),
        )
        .stdin(Stdio::null())
        // Its own process group: a Ctrl-C aimed at the server does not hit
        // the plugins; the server drains and stops them itself.
        .process_group(0);
    if !shared.cores.is_empty() {
        sys::pin_in_child(&mut cmd, &shared.cores);
    }
    cmd
}

impl Instance {
    pub fn new(
        shared: Arc<PluginShared>,
        plugin: usize,
        index: usize,
        cmd: Command,
        rings: Vec<Ring>,
    ) -> Instance {
        let backoff = shared.config.backoff;
        Instance {
            attaches_at_start: vec![0; rings.len()],
            rings,
            core: None,
            phase: Phase::Steady,
            inputs: StageInputs::default(),
            outputs: Vec::new(),
            shared,
            plugin,
            index,
            cmd,
            child: None,
            pidfd: None,
            intent: Intent::Run,
            started: Instant::now(),
            backoff,
            restart_at: None,
            kill_at: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    pub fn status(&self) -> &InstanceStatus {
        &self.shared.instances[self.index]
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// True when its exit can be noticed without polling (pidfd).
    pub fn watched(&self) -> bool {
        self.child.is_none() || self.pidfd.is_some()
    }

    /// A slot that does not run yet (spare, or above an elastic MIN).
    pub fn park(&mut self) {
        self.inputs.close();
        self.intent = Intent::Stop;
        self.status().set_state(InstanceState::Stopped);
    }

    /// True once the process it runs has attached to every one of its
    /// request rings (it can take calls without waiting for its start).
    pub fn is_attached(&self) -> bool {
        self.is_running()
            && self
                .rings
                .iter()
                .zip(&self.attaches_at_start)
                .all(|(r, at)| r.consumer_attaches() > *at)
    }

    /// Its request rings' counters summed.
    pub fn ring_load(&self) -> RingLoad {
        self.rings.iter().fold(RingLoad::default(), |l, r| {
            let c = r.counters();
            RingLoad {
                full: l.full + c.full,
                delivered: l.delivered + c.delivered,
                busy_ns: l.busy_ns + c.busy_ns,
            }
        })
    }

    pub fn spawn(&mut self) -> std::io::Result<()> {
        self.status().set_state(InstanceState::Starting);
        self.attaches_at_start = self.rings.iter().map(Ring::consumer_attaches).collect();
        let child = self.cmd.spawn()?;
        let pid = child.id();
        if let Some(core) = self.core {
            // Its own spare core (it started on the plugin's cores, never
            // on a server thread's).
            if let Err(e) = sys::set_affinity(pid, &[core]) {
                tracing::warn!(plugin = %self.name(), core, "pinning to a spare core: {e}");
            }
        }
        self.pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::debug!("pidfd_open: {e}; polling the plugin process instead");
                None
            }
        };
        self.child = Some(child);
        self.started = Instant::now();
        self.restart_at = None;
        self.kill_at = None;
        self.intent = Intent::Run;
        self.status().pid.store(pid, Relaxed);
        self.status().set_state(InstanceState::Running);
        tracing::info!(plugin = %self.name(), instance = self.index, pid, cores = %self.shared.cores_text(), "plugin started");
        Ok(())
    }

    /// Asks the process to finish its current work and exit (SIGTERM), with
    /// SIGKILL after the stop timeout.
    pub fn terminate(&mut self, intent: Intent, now: Instant) {
        self.intent = intent;
        let state = match intent {
            Intent::Reload => InstanceState::Reloading,
            _ => InstanceState::Stopping,
        };
        let Some(child) = &self.child else {
            // Not running (backoff): a reload starts it now, a stop ends it.
            self.restart_at = (intent == Intent::Reload).then_some(now);
            if intent == Intent::Stop {
                self.stopped_for_good();
            }
            return;
        };
        self.status().set_state(state);
        if let Err(e) = sys::terminate(child.id()) {
            tracing::warn!(plugin = %self.name(), "SIGTERM: {e}");
        }
        self.kill_at = Some(now + self.shared.config.stop_timeout);
    }

    /// SIGKILL (the stop timeout passed).
    pub fn kill(&mut self) {
        let name = self.shared.config.name.clone();
        if let Some(child) = &mut self.child {
            tracing::warn!(plugin = %name, pid = child.id(), "plugin did not stop in time; killing it");
            let _ = child.kill();
        }
        self.kill_at = None;
    }

    /// The exit status, if the process has exited (reaping it).
    pub fn try_reap(&mut self) -> Option<ExitStatus> {
        let status = match self.child.as_mut()?.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(plugin = %self.name(), "waiting for the plugin: {e}");
                return None;
            }
        };
        self.child = None;
        self.pidfd = None;
        self.kill_at = None;
        self.status().pid.store(0, Relaxed);
        Some(status)
    }

    /// Decides what follows an exit; `stopping`: the server is shutting down.
    pub fn exited(&mut self, status: ExitStatus, stopping: bool, now: Instant) {
        let name = self.shared.config.name.clone();
        match self.intent {
            Intent::Reload if !stopping => {
                tracing::info!(plugin = %name, %status, "old plugin process finished; starting the new one");
                self.status().reloads.fetch_add(1, Relaxed);
                self.backoff = self.shared.config.backoff;
                self.restart_at = Some(now);
            }
            Intent::Run if !stopping => {
                if self.started.elapsed() >= HEALTHY_AFTER {
                    self.backoff = self.shared.config.backoff;
                }
                tracing::warn!(plugin = %name, %status, restart_in_ms = self.backoff.as_millis() as u64, "plugin exited unexpectedly; restarting");
                self.status().restarts.fetch_add(1, Relaxed);
                self.status().set_state(InstanceState::Backoff);
                self.restart_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(self.shared.config.backoff_max);
            }
            _ => {
                tracing::info!(plugin = %name, %status, "plugin stopped");
                self.restart_at = None;
                self.stopped_for_good();
            }
        }
    }

    /// No process runs in the slot and none is restarted: the calls it
    /// held open in the next stage's rings will not continue there (a
    /// crashed one's do: its restart takes them back, `gate.rs`), so they
    /// no longer hold up that stage's drain.
    fn stopped_for_good(&mut self) {
        self.status().set_state(InstanceState::Stopped);
        let held: u64 = self.outputs.iter().map(Ring::open_calls).sum();
        if held > 0 {
            tracing::info!(plugin = %self.name(), instance = self.index, calls = held, "releasing the calls it held open in the next stage's rings");
        }
        self.outputs.iter().for_each(Ring::release_calls);
    }

    /// Restarts if its backoff has passed; a failed start is retried later.
    pub fn restart_due(&mut self, now: Instant) {
        if self.restart_at.is_none_or(|t| t > now) || self.child.is_some() {
            return;
        }
        if let Err(e) = self.spawn() {
            tracing::error!(plugin = %self.name(), "cannot start plugin: {e}");
            self.status().set_state(InstanceState::Backoff);
            self.restart_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(self.shared.config.backoff_max);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
