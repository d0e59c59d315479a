//! The thread of one inline instance: pins itself, calls the module's
//! serve function over fresh duplicates of the ring descriptors, and
//! starts it again after the restart backoff when it returns unasked.

use std::ffi::{c_char, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_proto::handshake::{Handshake, OutputSpec, PairSpec, RingSource};
use citadel_proto::inline_abi::{ServeArgs, SERVE_OK};

use super::super::shared::{InstanceState, PluginShared};
use super::super::sys;
use super::{Module, Stop};

/// A serve call that lived this long was healthy: the next failure
/// restarts it after the initial backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// Room for the module's error text.
const ERROR_LEN: usize = 1024;

/// What the serving thread owns.
pub(super) struct Serving {
    pub(super) shared: Arc<PluginShared>,
    pub(super) index: usize,
    pub(super) environment: Vec<(String, String)>,
    pub(super) pairs: Vec<PairSpec>,
    pub(super) module: Arc<Module>,
    pub(super) stop: Arc<Stop>,
}

impl Serving {
    pub(super) fn run(self) {
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
