//! The server's side of plugin calls: a per-thread [`PluginClient`] over
//! that thread's ring pairs, the process-wide [`Hub`] (shared state, core
//! plan, supervisor control) and call statistics. The supervisor (process
//! management) lives in `crate::supervisor`.

mod client;
mod hub;
mod invalidate;
mod outcome;
mod shared;
mod stats;

use std::sync::{Arc, OnceLock};

pub use client::{PluginClient, PluginId};
pub use hub::{Control, Hub, ReloadError, ThreadLanes};
pub use invalidate::{apply_invalidation, for_each_invalidated};
pub use outcome::{CallError, Completion, Outcome, NO_WAKER};
pub use shared::{InstanceState, InstanceStatus, PluginShared};
pub use stats::{CallStats, Latency};

/// The plugin hook in `ServerState`: empty until `main` installs the hub.
#[derive(Default)]
pub struct Plugins {
    hub: OnceLock<Arc<Hub>>,
}

impl Plugins {
    /// Installs the hub (once, before the server threads start).
    pub fn install(&self, hub: Arc<Hub>) {
        if self.hub.set(hub).is_err() {
            tracing::warn!("plugin hub installed twice; keeping the first");
        }
    }

    pub fn hub(&self) -> Option<&Arc<Hub>> {
        self.hub.get()
    }

    /// The client of server thread `thread` (no plugins when none are configured).
    pub fn client(&self, thread: usize) -> PluginClient {
        PluginClient::new(thread, self.hub.get().cloned())
    }
}
