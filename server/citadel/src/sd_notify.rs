//! systemd's service notification protocol (sd_notify(3)), without
//! libsystemd: datagrams of `KEY=value` lines to the Unix socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`).
//!
//! With `Type=notify` the server sends `READY=1` once every thread
//! listens, `STOPPING=1` when a shutdown begins, and, when the unit sets
//! `WatchdogSec=` (`$WATCHDOG_USEC`), `WATCHDOG=1` from its own thread,
//! never a server core's, as long as every server thread keeps turning its
//! loop: a thread stuck for the whole watchdog period stops the pings, and
//! systemd restarts the service. Without `$NOTIFY_SOCKET` nothing is sent.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use citadel_net::LoopStats;

/// The connection to systemd's notification socket.
pub struct SystemdNotify {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// `$WATCHDOG_USEC`, when it is meant for this process.
    watchdog: Option<Duration>,
    stopping_sent: AtomicBool,
}

impl SystemdNotify {
    /// The socket `$NOTIFY_SOCKET` names, or `None` when it is unset
    /// (not started by systemd with `Type=notify`). Takes the variables
    /// out of the environment, as sd_notify's `unset_environment` does, so
    /// plugin processes do not inherit them; call it before starting any
    /// thread (changing the environment races with threads reading it).
    pub fn from_env() -> io::Result<Option<SystemdNotify>> {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let watchdog = watchdog_from_env();
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            std::env::remove_var(var);
        }
        let name = name.to_string_lossy().into_owned();
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name.as_bytes())?
            }
            None => SocketAddr::from_pathname(&name)?,
        };
        Ok(Some(SystemdNotify {
            socket: UnixDatagram::unbound()?,
            addr,
            watchdog,
            stopping_sent: AtomicBool::new(false),
        }))
    }

    /// Sends one notification (lines of `KEY=value`). A lost notification
    /// is logged, not fatal: the server serves either way.
    pub fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            tracing::warn!("sd_notify {:?}: {e}", message.lines().next().unwrap_or(""));
        }
    }

    /// Every listener is up.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
    }

    /// A shutdown began (sent once).
    pub fn stopping(&self) {
        // ORDERING: Relaxed: only makes the message once; nothing is published.
        if !self.stopping_sent.swap(true, Ordering::Relaxed) {
            self.send("STOPPING=1\nSTATUS=shutting down");
        }
    }

    /// The watchdog period systemd expects pings within, if any.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// `$WATCHDOG_USEC`, unless `$WATCHDOG_PID` names another process.
fn watchdog_from_env() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The notifier's thread: `STOPPING=1` as soon as a shutdown is requested,
/// and the watchdog's pings while `alive` says every server thread moves.
pub struct NotifyThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// How often the thread looks for a shutdown when there is no watchdog.
const STOP_POLL: Duration = Duration::from_millis(200);

impl NotifyThread {
    /// Starts the thread. `stopping` says a shutdown was requested;
    /// `alive` is asked before each ping whether every server thread made
    /// progress since the last ping (a stuck one stops the pings).
    pub fn start(
        notify: Arc<SystemdNotify>,
        stopping: impl Fn() -> bool + Send + 'static,
        mut alive: impl FnMut() -> bool + Send + 'static,
    ) -> io::Result<NotifyThread> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        // Three checks per period: a ping is never more than a third late.
        let period = notify
            .watchdog()
            .map_or(STOP_POLL, |w| (w / 3).min(STOP_POLL));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("citadel-sd-notify".into())
                .spawn(move || {
                    let (lock, wake) = &*stop;
                    let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                    while !*stopped {
                        if stopping() {
                            notify.stopping();
                            return;
                        }
                        if notify.watchdog().is_some() && alive() {
                            notify.send("WATCHDOG=1");
                        }
                        stopped = wake
                            .wait_timeout(stopped, period)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                })?
        };
        Ok(NotifyThread {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for NotifyThread {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An `alive` check for [`NotifyThread::start`]: true when every server
/// thread's loop ticked since the last time this returned true.
pub fn loops_turning(loops: Vec<Arc<LoopStats>>) -> impl FnMut() -> bool {
    let mut seen: Option<Vec<u64>> = None;
    move || {
        // ORDERING: Relaxed: standalone counters; only their movement counts.
        let now: Vec<u64> = loops
            .iter()
            .map(|l| l.ticks.load(Ordering::Relaxed))
            .collect();
        let moved = seen
            .as_ref()
            .is_none_or(|seen| now.iter().zip(seen).all(|(n, s)| n > s));
        if moved {
            seen = Some(now);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_only_when_every_loop_ticked() {
        let a = Arc::new(LoopStats::default());
        let b = Arc::new(LoopStats::default());
        let mut alive = loops_turning(vec![a.clone(), b.clone()]);
        assert!(alive(), "the first check has nothing to compare with");
        a.ticks.fetch_add(1, Ordering::Relaxed);
        assert!(!alive(), "b is stuck");
        b.ticks.fetch_add(1, Ordering::Relaxed);
        assert!(alive());
        assert!(!alive(), "neither moved since the last ping");
    }
}
