//! Inline plugin instances: a plugin with `placement = "inline"` runs each
//! instance as a thread of the server, pinned to the plugin's cores (never
//! a server thread's), that calls the module's serve function. That
//! function runs the SDK's ordinary serve loop over the same ring pairs a
//! process would attach to: the server threads call an inline plugin
//! exactly as they call a process, and the rings' sleeping flags keep
//! eventfd writes to the times a side is parked.
//!
//! A handler panic is answered as an error inside the module (the SDK's
//! serve loop); a serve call that returns (an error, or a panic outside a
//! handler) is started again after the restart backoff, on the rings where
//! its uncommitted requests wait. An abort or memory corruption in the
//! module takes the server down: that is the price of no process hop.
//!
//! Stopping asks the serve call to finish what it holds and return; one
//! that has not returned within the plugin's `stop-timeout-ms` (a handler
//! stuck in a loop or a blocking call: a thread cannot be killed) is left
//! running *detached*: it takes no calls, PLUGIN INFO counts it
//! (`detached`) and the log says so, and its slot (whose rings it still
//! holds) serves again only once that thread has returned.
//!
//! Reload (PLUGIN RELOAD, SIGHUP) loads and checks the new module first; a
//! module that fails keeps the old one serving. Every plugin, a pipeline
//! stage too, has a spare slot per version: the new module starts there
//! and takes the new calls while the old thread drains (`upgrade`; a later
//! stage's inputs are gated, `super::inputs`). A version at weight
//! 0 is drained (no new calls, then none in flight) and its threads
//! stopped, and started again when it has weight (`reconcile`).

mod module;
mod serving;
mod upgrade;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::Release};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use citadel_proto::handshake::{self, PairSpec};
use citadel_proto::inline_abi::{ARGS_SEPARATOR, ENV_ARGS};
use citadel_proto::EventFd;

pub use module::{Module, ModuleError};
pub use upgrade::InlineUpgrades;

use super::inputs::StageInputs;
use super::shared::{InstanceState, InstanceStatus, PluginShared};
use serving::Serving;

/// How often a blocking stop looks whether the thread has returned.
const STOP_POLL: Duration = Duration::from_millis(5);

/// How the server stops a serve call: the flag the module reads every loop
/// turn, and the eventfd that wakes it when parked.
struct Stop {
    flag: AtomicBool,
    bell: EventFd,
}

impl Stop {
    fn request(&self) {
        // ORDERING: Release, then the eventfd write: a parked module wakes
        // and sees the flag; a running one sees it at its next turn.
        self.flag.store(true, Release);
        if let Err(e) = self.bell.signal() {
            tracing::warn!("waking an inline plugin to stop: {e}");
        }
    }

    fn requested(&self) -> bool {
        // ORDERING: a flag only, nothing is published through it.
        self.flag.load(Relaxed)
    }
}

/// A serving thread and how to stop it.
struct Serve {
    stop: Arc<Stop>,
    thread: JoinHandle<()>,
}

/// One inline instance: its rings (as a process would be told them), its
/// settings, and the thread serving them.
pub struct InlineInstance {
    pub shared: Arc<PluginShared>,
    pub plugin: usize,
    pub index: usize,
    pairs: Vec<PairSpec>,
    /// Its rings' gate when the stage before feeds them.
    inputs: StageInputs,
    running: Option<Serve>,
    /// Asked to stop, not returned yet, and when it is given up on.
    stopping: Option<(Serve, Instant)>,
    /// Given up on (see the module comment): it still holds the rings.
    detached: Option<Serve>,
    /// Stopped because its version has weight 0.
    parked: bool,
    /// To start once the detached thread returns (a reload found the old
    /// module stuck).
    relaunch: bool,
    /// Draining for an overlapped upgrade (`upgrade`): not to be given
    /// calls again.
    retiring: bool,
    /// Since when it drains because its version has weight 0.
    weightless_since: Option<Instant>,
}

impl InlineInstance {
    /// Instance `index` of plugin `plugin`, serving `pairs` (with their
    /// pipeline `outputs`, as for a process).
    pub fn new(
        shared: Arc<PluginShared>,
        plugin: usize,
        index: usize,
        pairs: &[&citadel_proto::HostPair],
        outputs: &[Vec<&citadel_proto::HostPair>],
        inputs: StageInputs,
    ) -> InlineInstance {
        let pairs = citadel_proto::host::pair_specs(pairs, outputs);
        InlineInstance {
            shared,
            plugin,
            index,
            pairs,
            inputs,
            running: None,
            stopping: None,
            detached: None,
            parked: false,
            relaunch: false,
            retiring: false,
            weightless_since: None,
        }
    }

    /// Leaves this slot free: the spare of an overlapped upgrade.
    pub fn park_spare(&mut self) {
        self.inputs.close();
        self.status().set_state(InstanceState::Stopped);
    }

    /// It serves calls and is not on its way out.
    fn is_live(&self) -> bool {
        self.running.is_some() && !self.retiring && self.status().is_active()
    }

    /// No thread holds its rings, it takes no calls, and it is not one of
    /// a version at weight 0 (started again when the version has weight).
    fn is_free(&self) -> bool {
        self.running.is_none()
            && self.stopping.is_none()
            && self.detached.is_none()
            && !self.retiring
            && !self.parked
            && !self.status().is_active()
    }

    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// Loads this instance's module (its version's), checking its ABI.
    pub fn load(&self) -> Result<Module, ModuleError> {
        let cfg = &self.shared.config;
        Module::load(&cfg.versions[cfg.version_of(self.index)].program)
    }

    /// Starts serving through `module` on a new pinned thread; it takes
    /// calls from now on.
    pub fn start(&mut self, module: Module) -> std::io::Result<()> {
        let stop = Arc::new(Stop {
            flag: AtomicBool::new(false),
            bell: EventFd::new()?,
        });
        let serving = Serving {
            shared: self.shared.clone(),
            index: self.index,
            environment: self.environment(),
            pairs: self.pairs.clone(),
            module: Arc::new(module),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("inline-{}-{}", self.name(), self.index))
            .spawn(move || serving.run())?;
        self.running = Some(Serve { stop, thread });
        self.inputs.open();
        self.status().activate();
        Ok(())
    }

    /// Asks the serve call to finish what it holds and return (no wait).
    /// Calls sent meanwhile wait in the rings (for a reload's new module).
    pub fn request_stop(&mut self, now: Instant) {
        if let Some(serve) = self.running.take() {
            // Before the request: the thread sets "stopped" as it returns.
            self.status().set_state(InstanceState::Stopping);
            serve.stop.request();
            self.stopping = Some((serve, now + self.shared.config.stop_timeout));
        }
    }

    /// Moves a stop on: true once no serve call of this instance is left
    /// stopping (returned, or detached past the stop timeout).
    pub fn stop_settled(&mut self, now: Instant) -> bool {
        if self
            .detached
            .as_ref()
            .is_some_and(|d| d.thread.is_finished())
        {
            tracing::info!(plugin = %self.name(), instance = self.index, "detached inline plugin thread returned at last; the slot serves again");
            self.detached = None;
        }
        let Some((serve, give_up)) = &self.stopping else {
            return true;
        };
        if serve.thread.is_finished() {
            let (serve, _) = self.stopping.take().expect("checked above");
            if serve.thread.join().is_err() {
                tracing::error!(plugin = %self.name(), instance = self.index, "inline plugin thread panicked");
            }
            self.status().set_state(InstanceState::Stopped);
            return true;
        }
        if now < *give_up {
            return false;
        }
        let (serve, _) = self.stopping.take().expect("checked above");
        let ms = self.shared.config.stop_timeout.as_millis() as u64;
        tracing::error!(plugin = %self.name(), instance = self.index, stop_timeout_ms = ms, "inline plugin did not return within its stop timeout (a stuck handler; a thread cannot be killed): left running detached, no calls go to it");
        self.status().set_state(InstanceState::Detached);
        self.shared.detach(self.index);
        self.shared.note_change(format!(
            "instance {} detached: its handler did not return within {ms} ms",
            self.index
        ));
        self.detached = Some(serve);
        true
    }

    /// Stops the serve call: waits until it returned, or its stop timeout
    /// passed (it is then left detached).
    pub fn stop(&mut self) {
        self.request_stop(Instant::now());
        while !self.stop_settled(Instant::now()) {
            std::thread::sleep(STOP_POLL);
        }
    }

    /// Hot upgrade: the new module is loaded and checked first (a bad one
    /// leaves the old serving), then replaces the old on the same rings.
    pub fn reload(&mut self) {
        let module = match self.load() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(plugin = %self.name(), instance = self.index, "reload refused, the running module keeps serving: {e}");
                return;
            }
        };
        self.status().set_state(InstanceState::Reloading);
        self.stop();
        if self.detached.is_some() {
            tracing::error!(plugin = %self.name(), instance = self.index, "reload: the old module is still in a handler; this instance stays out of service until it returns");
            self.relaunch = true;
            return;
        }
        self.status().reloads.fetch_add(1, Relaxed);
        self.start_with(module);
    }

    fn start_with(&mut self, module: Module) {
        if let Err(e) = self.start(module) {
            tracing::error!(plugin = %self.name(), instance = self.index, "cannot start the inline plugin's thread: {e}");
            self.status().set_state(InstanceState::Stopped);
        }
    }

    fn status(&self) -> &InstanceStatus {
        &self.shared.instances[self.index]
    }

    /// What a process would find in its environment, minus the rings
    /// (added per serve call, with descriptors of its own).
    fn environment(&self) -> Vec<(String, String)> {
        let cfg = &self.shared.config;
        let version = &cfg.versions[cfg.version_of(self.index)];
        let mut env: Vec<(String, String)> = cfg.env.iter().chain(&version.env).cloned().collect();
        env.push((handshake::ENV_VERSION.into(), version.name.clone()));
        let args = if version.args.is_empty() {
            &cfg.args
        } else {
            &version.args
        };
        let joined = args.join(&ARGS_SEPARATOR.to_string());
        env.push((ENV_ARGS.into(), joined));
        let instance = self.index % cfg.per_version.max(1);
        env.push((handshake::ENV_INSTANCE.into(), instance.to_string()));
        env
    }

    /// Keeps this instance in line with its version's weight: at 0 it is
    /// drained (no new calls, then none in flight, or the stop timeout
    /// passed: a stuck handler is then asked to stop and detached like on
    /// a reload) and stopped; given weight again (or
    /// its detached thread returned, after a reload) it starts. Returns
    /// true while it is on its way out.
    fn reconcile(&mut self, now: Instant) -> bool {
        if self.retiring {
            // The upgrade moves it on.
            return false;
        }
        if !self.stop_settled(now) {
            return true;
        }
        let cfg = &self.shared.config;
        let version = &self.shared.traffic.versions[cfg.version_of(self.index)];
        if version.weight.load(Relaxed) > 0 {
            self.weightless_since = None;
            if (self.parked || self.relaunch) && self.detached.is_none() {
                tracing::info!(plugin = %self.name(), version = %version.name, instance = self.index, "starting the inline instance again");
                match self.load() {
                    Ok(module) => {
                        (self.parked, self.relaunch) = (false, false);
                        self.start_with(module);
                    }
                    Err(e) => tracing::error!(plugin = %self.name(), instance = self.index, "{e}"),
                }
            } else if self.running.is_some() && !self.status().is_active() {
                // Given weight again while it was draining.
                self.status().activate();
            }
            return false;
        }
        if self.parked || self.running.is_none() {
            return false;
        }
        let since = *self.weightless_since.get_or_insert(now);
        let held = self.status().deactivate();
        if held > 0 && now < since + cfg.stop_timeout {
            return true;
        }
        self.weightless_since = None;
        if held > 0 {
            tracing::warn!(plugin = %self.name(), version = %version.name, instance = self.index, in_flight = held, "version at weight 0: calls still in flight at the stop timeout; stopping the thread anyway");
        }
        tracing::info!(plugin = %self.name(), version = %version.name, instance = self.index, "version drained at weight 0; stopping it");
        self.parked = true;
        self.request_stop(now);
        !self.stop_settled(now)
    }
}

impl Drop for InlineInstance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops every instance: all are asked at once, then each is waited for
/// (at most its stop timeout).
pub fn stop_all(instances: &mut [InlineInstance]) {
    let now = Instant::now();
    for i in instances.iter_mut() {
        i.request_stop(now);
    }
    for i in instances.iter_mut() {
        i.stop();
    }
}

/// Drains and stops the instances of versions at weight 0, starts those
/// given weight again, and moves stops on; true while some are on their
/// way out (the supervisor then polls).
pub fn reconcile(instances: &mut [InlineInstance], now: Instant) -> bool {
    let mut busy = false;
    for inst in instances.iter_mut() {
        busy |= inst.reconcile(now);
    }
    busy
}
