//! The server's side of plugin calls: a per-thread [`PluginClient`] over
//! that thread's ring pairs (request ids, deadlines, the in-flight limit,
//! replies). Plugin processes, the core plan and the shared registry are
//! the supervisor's (`citadel_supervisor`).

mod attention;
mod calls;
mod client;
mod invalidate;
mod outcome;
mod place;
mod replies;
mod route;
mod stranded;

use std::sync::{Arc, OnceLock};

use citadel_supervisor::Hub;

pub use client::{PluginClient, PluginId, PluginReply, RequestId};
pub use invalidate::for_each_invalidated;
pub use outcome::{CallError, Outcome, PipelineOutput};
pub use replies::Partial;

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
    pub fn client<C: Copy>(&self, thread: usize) -> PluginClient<C> {
        PluginClient::new(thread, self.hub.get().cloned())
    }
}
