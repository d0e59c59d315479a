//! The process-wide plugin registry: shared per-plugin state, the core
//! plan, each server thread's ring pairs until that thread takes them, and
//! the control channel to the supervisor thread.

use std::sync::{mpsc, Arc, Mutex};

use citadel_proto::{EventFd, HostPair};

use super::config::find_executable;
use super::shared::PluginShared;

/// Requests to the supervisor thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Hot upgrade of one plugin (by index), or of all.
    Reload(Option<usize>),
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

pub struct Hub {
    pub plugins: Vec<Arc<PluginShared>>,
    /// `server=0 echo=1`, see `supervisor::cores`.
    pub core_plan: String,
    lanes: Mutex<Vec<Option<ThreadLanes>>>,
    control: Mutex<mpsc::Sender<Control>>,
    doorbell: EventFd,
}

impl Hub {
    pub fn new(
        plugins: Vec<Arc<PluginShared>>,
        core_plan: String,
        lanes: Vec<ThreadLanes>,
        control: mpsc::Sender<Control>,
        doorbell: EventFd,
    ) -> Hub {
        Hub {
            plugins,
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

    /// Hot upgrade of plugin `index` (None: all), after checking that the
    /// executable (possibly replaced on disk) can still be started.
    pub fn reload(&self, index: Option<usize>) -> Result<(), ReloadError> {
        for p in &self.plugins {
            if index.is_some_and(|i| !std::ptr::eq(p.as_ref(), self.plugins[i].as_ref())) {
                continue;
            }
            find_executable(&p.config.program).map_err(|reason| ReloadError::Executable {
                name: p.config.name.clone(),
                reason,
            })?;
        }
        if self.send(Control::Reload(index)) {
            Ok(())
        } else {
            Err(ReloadError::NotRunning)
        }
    }
}
