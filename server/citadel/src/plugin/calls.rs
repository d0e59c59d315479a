//! What a thread's plugin client keeps per call and per pipeline (shared by
//! the sending side, `client.rs`, and the reply reader, `replies.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use citadel_supervisor::PipelineShared;

use super::outcome::Outcome;

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

impl Waiting {
    pub fn pipeline(pipeline: usize) -> Self {
        Waiting::Pipeline {
            pipeline,
            results: BTreeMap::new(),
        }
    }
}
