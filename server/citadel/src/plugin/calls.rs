//! What a thread's plugin client keeps per call and per pipeline (shared by
//! the sending side, `client.rs`, and the reply reader, `replies.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use citadel_supervisor::{PipelineShared, PluginShared};

use super::outcome::{CallError, Outcome};
use super::route::{self, Ending};

/// Index of a plugin in this server's configuration order.
pub type PluginId = usize;

/// A call's id: unique per server (the thread is in the top 16 bits); it
/// is the envelope id the plugin answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// A finished call, for whoever made it.
#[derive(Debug)]
pub struct PluginReply<C> {
    pub caller: C,
    pub request: RequestId,
    pub plugin: PluginId,
    pub outcome: Outcome,
}

/// One pipeline on this thread: its deadlines (its own timeout).
pub(super) struct ThreadPipeline {
    pub(super) shared: Arc<PipelineShared>,
    pub(super) first: PluginId,
    pub(super) deadlines: VecDeque<(Instant, u64)>,
}

pub(super) struct Pending<C> {
    pub(super) sent: Instant,
    pub(super) caller: C,
    pub(super) waiting: Waiting,
    /// The plugin instance (lane) a plugin call went to (its statistics
    /// and balancing count it); None for pipeline calls.
    pub(super) instance: Option<usize>,
    /// Its record's position in that instance's request ring (plugin
    /// calls): whether the instance ever took it (`stranded.rs`).
    pub(super) at: u64,
}

/// What a pending call is waiting for.
#[derive(Debug)]
pub enum Waiting {
    /// One reply.
    Plugin,
    /// A pipeline's results, by frame index, then its `End`.
    Pipeline {
        pipeline: usize,
        results: BTreeMap<u32, Vec<u8>>,
    },
}

impl<C> Pending<C> {
    /// Ends call `id` of `plugin` without a reply from it: counted against
    /// its instance (a plugin call; `shared` its plugin) as `how`, answered
    /// to its caller with `error`.
    pub(super) fn fail(
        self,
        id: u64,
        plugin: PluginId,
        shared: Option<&PluginShared>,
        how: Ending,
        error: CallError,
        now: Instant,
    ) -> PluginReply<C> {
        if let (Some(shared), Some(instance)) = (shared, self.instance) {
            let elapsed = now.saturating_duration_since(self.sent);
            route::finished(shared, instance, elapsed, how);
        }
        PluginReply {
            caller: self.caller,
            request: RequestId(id),
            plugin,
            outcome: Outcome::Failed(error),
        }
    }
}

impl Waiting {
    pub fn pipeline(pipeline: usize) -> Self {
        Waiting::Pipeline {
            pipeline,
            results: BTreeMap::new(),
        }
    }
}
