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
//! Reload (PLUGIN RELOAD, SIGHUP) loads and checks the new module first; a
//! module that fails keeps the old one serving. Then the old serve call is
//! stopped (it finishes and commits what it holds) and the new one starts
//! on the same rings, where calls sent meanwhile wait.

mod module;

use std::ffi::{c_char, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::Release};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use citadel_proto::handshake::{self, Handshake, OutputSpec, PairSpec, RingSource};
use citadel_proto::inline_abi::{ServeArgs, ARGS_SEPARATOR, ENV_ARGS, SERVE_OK};
use citadel_proto::EventFd;

pub use module::{Module, ModuleError};

use super::shared::{InstanceState, InstanceStatus, PluginShared};
use super::sys;

/// A serve call that lived this long was healthy: the next failure
/// restarts it after the initial backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// Room for the module's error text.
const ERROR_LEN: usize = 1024;

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

/// One inline instance: its rings (as a process would be told them), its
/// settings, and the thread serving them.
pub struct InlineInstance {
    pub shared: Arc<PluginShared>,
    pub plugin: usize,
    pub index: usize,
    pairs: Vec<PairSpec>,
    running: Option<(Arc<Stop>, JoinHandle<()>)>,
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
    ) -> InlineInstance {
        let pairs = citadel_proto::host::pair_specs(pairs, outputs);
        InlineInstance {
            shared,
            plugin,
            index,
            pairs,
            running: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// Loads this instance's module (its version's), checking its ABI.
    pub fn load(&self) -> Result<Module, ModuleError> {
        let cfg = &self.shared.config;
        Module::load(&cfg.versions[cfg.version_of(self.index)].program)
    }

    /// Starts serving through `module` on a new pinned thread.
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
        self.running = Some((stop, thread));
        Ok(())
    }

    /// Asks the serve call to finish what it holds and return (no wait).
    pub fn request_stop(&self) {
        if let Some((stop, _)) = &self.running {
            stop.request();
        }
    }

    /// Stops the serve call and waits until it returned.
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.request();
            if thread.join().is_err() {
                tracing::error!(plugin = %self.name(), instance = self.index, "inline plugin thread panicked");
            }
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
        self.status().reloads.fetch_add(1, Relaxed);
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
}

impl Drop for InlineInstance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops every instance: all are asked at once, then each is waited for.
pub fn stop_all(instances: &mut [InlineInstance]) {
    for i in instances.iter() {
        i.request_stop();
    }
    for i in instances.iter_mut() {
        i.stop();
    }
}

/// What the serving thread owns.
struct Serving {
    shared: Arc<PluginShared>,
    index: usize,
    environment: Vec<(String, String)>,
    pairs: Vec<PairSpec>,
    module: Arc<Module>,
    stop: Arc<Stop>,
}

impl Serving {
    fn run(self) {
        let cfg = &self.shared.config;
        let status = &self.shared.instances[self.index];
        if !self.shared.cores.is_empty() {
            if let Err(e) = sys::pin_this_thread(&self.shared.cores) {
                tracing::warn!(plugin = %cfg.name, "pinning the inline plugin's thread: {e}");
            }
        }
        status.pid.store(sys::thread_id(), Relaxed);
        let mut backoff = cfg.backoff;
        loop {
            status.set_state(InstanceState::Running);
            tracing::info!(plugin = %cfg.name, instance = self.index, module = %self.module.path.display(), cores = %self.shared.cores_text(), "inline plugin serving");
            let started = Instant::now();
            let result = self.serve_once();
            if self.stop.requested() {
                break;
            }
            match result {
                Ok(()) => {
                    tracing::warn!(plugin = %cfg.name, "inline plugin returned without being stopped; restarting")
                }
                Err(e) => {
                    tracing::error!(plugin = %cfg.name, instance = self.index, restart_in_ms = backoff.as_millis() as u64, "inline plugin failed: {e}")
                }
            }
            if started.elapsed() >= HEALTHY_AFTER {
                backoff = cfg.backoff;
            }
            status.restarts.fetch_add(1, Relaxed);
            status.set_state(InstanceState::Backoff);
            if self.sleep_unless_stopped(backoff) {
                break;
            }
            backoff = (backoff * 2).min(cfg.backoff_max);
        }
        status.pid.store(0, Relaxed);
        status.set_state(InstanceState::Stopped);
        tracing::info!(plugin = %cfg.name, instance = self.index, "inline plugin stopped");
    }

    /// Sleeps `d`, or less if a stop is requested (then returns true).
    fn sleep_unless_stopped(&self, d: Duration) -> bool {
        let fds = [self.stop.bell.as_fd()];
        let woke = citadel_proto::ring::wait_any(
            &[],
            &fds,
            citadel_proto::SpinPolicy::PARK_AT_ONCE,
            Some(d),
        );
        matches!(woke, Ok(citadel_proto::Wakeup::Extra(_))) || self.stop.requested()
    }

    /// One call of the module's serve function, with fresh duplicates of
    /// every descriptor (the module owns and closes them).
    fn serve_once(&self) -> Result<(), String> {
        let pairs = self
            .pairs
            .iter()
            .map(duplicate_pair)
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| format!("duplicating the ring descriptors: {e}"))?;
        let handshake = Handshake {
            pairs: pairs.iter().map(|(spec, _)| spec.clone()).collect(),
            max_attempts: self.shared.config.max_attempts,
        };
        let text: String = handshake
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(self.environment.iter().cloned())
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let environment =
            CString::new(text.replace('\0', "")).map_err(|e| format!("environment: {e}"))?;
        // From here the module owns the duplicates.
        for (_, fds) in pairs {
            fds.into_iter().for_each(|fd| {
                let _ = fd.into_raw_fd();
            });
        }
        let mut error = vec![0 as c_char; ERROR_LEN];
        let args = ServeArgs {
            environment: environment.as_ptr(),
            stop_flag: &self.stop.flag,
            stop_fd: self.stop.bell.as_fd().as_raw_fd(),
            error: error.as_mut_ptr(),
            error_len: error.len(),
        };
        let serve = self.module.serve_fn();
        // SAFETY: the module's ABI tag was checked at load (`Module::load`),
        // so `serve` has this ABI's signature. `args` and everything it
        // points at (the environment, the stop flag and eventfd, the error
        // buffer) live on this frame or in `self` until it returns, and the
        // module stays loaded (`self.module`) for the whole call.
        let code = unsafe { serve(&args) };
        if code == SERVE_OK {
            return Ok(());
        }
        // SAFETY: the module NUL-terminates what it writes; the buffer was
        // zeroed, so it is NUL-terminated in any case.
        let why = unsafe { std::ffi::CStr::from_ptr(error.as_ptr()) };
        Err(format!("code {code}: {}", why.to_string_lossy()))
    }
}

/// A pair spec whose descriptors are fresh duplicates, with their owners.
fn duplicate_pair(spec: &PairSpec) -> std::io::Result<(PairSpec, Vec<OwnedFd>)> {
    let mut owned = Vec::new();
    let mut dup = |fd: RawFd| -> std::io::Result<RawFd> {
        // SAFETY: `fd` is one of a ring pair's descriptors, which the
        // supervisor's `HostPair`s keep open while the server runs.
        let copy = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        let raw = copy.as_raw_fd();
        owned.push(copy);
        Ok(raw)
    };
    let mut source = |s: &RingSource| -> std::io::Result<RingSource> {
        Ok(match s {
            RingSource::Fd(fd) => RingSource::Fd(dup(*fd)?),
            RingSource::Path(p) => RingSource::Path(p.clone()),
        })
    };
    let requests = source(&spec.requests)?;
    let replies = source(&spec.replies)?;
    let mut outputs = Vec::with_capacity(spec.outputs.len());
    for o in &spec.outputs {
        let ring = source(&o.ring)?;
        outputs.push(OutputSpec { ring, eventfd: 0 });
    }
    let request_eventfd = dup(spec.request_eventfd)?;
    let reply_eventfd = dup(spec.reply_eventfd)?;
    for (out, o) in outputs.iter_mut().zip(&spec.outputs) {
        out.eventfd = dup(o.eventfd)?;
    }
    Ok((
        PairSpec {
            requests,
            replies,
            request_eventfd,
            reply_eventfd,
            outputs,
        },
        owned,
    ))
}
