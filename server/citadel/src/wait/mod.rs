//! One way to wait. A connection waits on at most one pending operation
//! at a time (`command::Pending`, the continuation that writes its reply);
//! each kind of operation finishes with one typed [`Completion`], addressed
//! by a [`WaitKey`]. Per thread:
//!
//! * operations finish in this thread's poll (`thread::ThreadCtx::poll`):
//!   plugin replies read from the reply rings, read-through loads settled
//!   here, and [`Mail`] other threads delivered to this thread's [`Inbox`]
//!   (a lock-free queue whose eventfd the thread's io_uring polls);
//! * [`ThreadWaits`] maps each key to the connection parked on it (the
//!   event loop's `Waiter`) and hands `(waiter, completion)` to the loop,
//!   which resumes the connection.
//!
//! A new kind of wait (a blocked BLPOP, a forwarded request) is one variant
//! here (`WaitKey`, `Completion`, and `Mail` if another thread finishes it)
//! plus its continuation in `command::Pending`.

mod inbox;
mod invalidated;
mod parked;

use std::sync::Arc;

pub use inbox::{Inbox, Inboxes, Mail};
pub use invalidated::Invalidated;
pub use parked::{Target, ThreadWaits};

use crate::forward::{ForwardId, PartResult};
use crate::migrate::{MigrateId, MigrateOutcome};
use crate::pipeline::{PipelineResult, PipelineWaitId};
use crate::plugin::{Outcome, PluginId, RequestId};
use crate::pubsub::Message;
use crate::readthrough::{LoadResult, LoadWaitId};

/// Who made a plugin call, so its reply goes to the right place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A client command (PLUGIN CALL ...): the reply completes its wait.
    Client,
    /// A read-through load: the reply settles the load.
    ReadThrough,
    /// A pipeline call this thread leads: the reply settles the flight of
    /// result key `key` (every waiter on any thread gets the result);
    /// `spooled`: its DATA input went through a spool file, removed then.
    Pipeline {
        pipeline: usize,
        key: u128,
        spooled: bool,
    },
}

/// What a parked connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitKey {
    Plugin(RequestId),
    Loads(LoadWaitId),
    Pipeline(PipelineWaitId),
    /// A subscriber's messages (client id): never parked on, delivered
    /// to the connection's waiter as they come (see `crate::pubsub`).
    Pubsub(u64),
    /// A client held by CLIENT PAUSE (client id) until the pause ends.
    Pause(u64),
    /// A monitor's lines (client id): like `Pubsub`, never parked on.
    Monitor(u64),
    /// A request forwarded to other nodes (proxy mode, `crate::forward`).
    Forward(ForwardId),
    /// A client (id) blocked on keys (BLPOP ...; `crate::blocking`).
    Blocked(u64),
    /// An outbound MIGRATE (`crate::migrate`).
    Migrate(MigrateId),
}

/// A finished operation, as the continuation of the command that waited
/// for it needs it.
#[derive(Debug)]
pub enum Completion {
    /// A plugin call's reply, error or timeout.
    Plugin {
        request: RequestId,
        plugin: PluginId,
        outcome: Outcome,
    },
    /// Every load a command waited for, one result per key slot (`None`
    /// for a slot that needed no load).
    Loads {
        wait: LoadWaitId,
        results: Vec<Option<LoadResult>>,
    },
    /// A pipeline call's result (led here or by another thread).
    Pipeline {
        wait: PipelineWaitId,
        result: PipelineResult,
    },
    /// One frame's result of a pipeline call still running: progress, not
    /// the end of the wait (only waiters that stream get it).
    PipelinePartial {
        wait: PipelineWaitId,
        index: u32,
        json: Arc<[u8]>,
    },
    /// A published message for a subscriber: written out as a push, it
    /// neither needs nor ends a wait.
    Message {
        client: u64,
        message: Arc<Message>,
        pattern: Option<Arc<[u8]>>,
    },
    /// The pause that held a client (id) ended: its command runs now.
    Unpaused { client: u64 },
    /// A client-side caching invalidation for a client (id) that tracks
    /// keys or receives another's (REDIRECT). A push like `Message`.
    Invalidate { client: u64, what: Invalidated },
    /// A command's MONITOR line for a monitor (client id): written out as
    /// is (see `crate::monitor`); like a message, it ends no wait.
    Monitor { client: u64, line: Arc<[u8]> },
    /// A forwarded request's replies, one result per part (proxy mode).
    Forward {
        id: ForwardId,
        results: Vec<PartResult>,
    },
    /// A blocked client (id) looks again: a key it waits for was written,
    /// or its timeout passed. Its command runs again from the input.
    Unblocked { client: u64 },
    /// An outbound MIGRATE's outcome: the keys restored, and its reply.
    Migrate {
        id: MigrateId,
        outcome: MigrateOutcome,
    },
}

impl Completion {
    pub fn key(&self) -> WaitKey {
        match self {
            Completion::Plugin { request, .. } => WaitKey::Plugin(*request),
            Completion::Loads { wait, .. } => WaitKey::Loads(*wait),
            Completion::Pipeline { wait, .. } | Completion::PipelinePartial { wait, .. } => {
                WaitKey::Pipeline(*wait)
            }
            Completion::Message { client, .. } | Completion::Invalidate { client, .. } => {
                WaitKey::Pubsub(*client)
            }
            Completion::Unpaused { client } => WaitKey::Pause(*client),
            Completion::Monitor { client, .. } => WaitKey::Monitor(*client),
            Completion::Forward { id, .. } => WaitKey::Forward(*id),
            Completion::Unblocked { client } => WaitKey::Blocked(*client),
            Completion::Migrate { id, .. } => WaitKey::Migrate(*id),
        }
    }

    /// True for progress that leaves the wait in place.
    pub fn is_partial(&self) -> bool {
        matches!(self, Completion::PipelinePartial { .. })
    }

    /// True for output that comes unasked (a subscriber's message, a
    /// monitor's line): it neither needs nor ends a wait.
    pub fn is_push(&self) -> bool {
        matches!(
            self,
            Completion::Message { .. } | Completion::Monitor { .. }
        )
    }
}

/// Shared by the threads: every thread's inbox.
pub type SharedInboxes = Arc<Inboxes>;
