//! What command handlers work with: the context of one command ([`Ctx`]),
//! the connection's command state ([`ConnState`]) and what a parked
//! connection waits for ([`Pending`]). Below every handler module.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use citadel_resp::Reply;

use super::error::CmdError;
use super::load_plan::Plan;
use crate::clients::ClientShared;
use crate::forward::ForwardId;
use crate::migrate::MigrateId;
use crate::pipeline::PipelineWaitId;
use crate::plugin::{Outcome, PluginId, RequestId};
use crate::readthrough::LoadWaitId;
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::WaitKey;

/// What a handler gets: shared state, its thread's cache handle, the
/// connection and the reply encoder.
pub struct Ctx<'a> {
    pub state: &'a Arc<ServerState>,
    pub thread: &'a mut ThreadCtx,
    pub conn: &'a mut ConnState,
    pub out: Reply<'a>,
}

impl Ctx<'_> {
    /// For a CLUSTER subcommand only peer nodes send (their connections
    /// said CLUSTER NOPROXY first): Redis's error outside cluster mode, or
    /// `refusal` for any other connection (a client's typo).
    pub fn peers_only(&self, refusal: &'static str) -> Result<(), CmdError> {
        if self.thread.cluster.is_none() {
            return Err(CmdError::ClusterDisabled);
        }
        if !self.conn.no_proxy {
            return Err(CmdError::Static(refusal));
        }
        Ok(())
    }
}

/// Per-connection command state handlers may change.
pub struct ConnState {
    pub client: Arc<ClientShared>,
    pub resp3: bool,
    pub authed: bool,
    /// Its ACL user (`default` until AUTH), checked per command.
    pub acl: crate::acl::Seat,
    /// The selected database (SELECT; the cache handle's namespace is
    /// `databases::namespace_of` it while its commands run).
    pub db: u8,
    /// Close after this batch's replies are flushed (QUIT, SHUTDOWN, self-kill).
    pub close: bool,
    /// Reusable buffer for commands that gather keys (SCAN, KEYS, RANDOMKEY).
    pub scratch: Vec<u8>,
    pub scratch_spans: Vec<std::ops::Range<usize>>,
    /// The operation this connection waits for (see `pending`).
    pub pending: Option<Pending>,
    /// Pub/Sub subscriptions of every kind (RESP2 subscribe mode while > 0).
    pub subscriptions: usize,
    /// The Pub/Sub registry knows this connection's waiter.
    pub pubsub_attached: bool,
    /// In MONITOR mode (see `monitor.rs`).
    pub monitor: bool,
    /// The monitor registry knows this connection's waiter.
    pub monitor_attached: bool,
    /// MULTI's queue and WATCH's keys.
    pub tx: super::queue::TxState,
    /// CLIENT TRACKING is on for this connection (`command/tracking.rs`).
    pub tracking: Option<ConnTracking>,
    /// The tracking registry knows this connection's waiter.
    pub tracking_attached: bool,
    /// Keys a tracking client's read waits to load: remembered again once
    /// the loaded value is stored (its store invalidated them).
    pub tracking_after_load: Vec<Vec<u8>>,
    /// CLIENT REPLY: whether replies are sent.
    pub reply_mode: ReplyMode,
    /// CLIENT NO-TOUCH: its commands count no accesses for eviction.
    pub no_touch: bool,
    /// CLUSTER NOPROXY: answer -MOVED, never forward (a peer's
    /// forwarding connection: a request is forwarded at most once).
    pub no_proxy: bool,
    /// The handler runs as the local piece of a split command (proxy
    /// mode), whose reply is merged at once: it must not wait (no warm
    /// hand-off).
    pub cannot_wait: bool,
    /// The command about to run again had its keys handed off already
    /// (warm hand-off, `handoff.rs`): it runs now, without a second one.
    pub handed_off: bool,
    /// A blocking command's registration while it waits (`blocking.rs`).
    pub blocked: Option<crate::blocking::BlockState>,
    /// Its priority and quota group under the overload rules.
    pub overload: crate::overload::ClientClass,
    /// Bytes of the input the running pass reads from: the running
    /// command, those before it in the same input and those after. Its
    /// own CLIENT LIST/INFO line shows them as `qbuf`, as Redis shows its
    /// query buffer (trimmed only once the input is run).
    pub pass_input: usize,
}

/// The connection's side of its tracking (what every read checks).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnTracking {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    /// CLIENT CACHING YES/NO, for the next command only.
    pub caching: Option<bool>,
    /// `caching` was set by the command that just ran (keep it one more).
    pub caching_fresh: bool,
    /// The running script called a read-only command: its declared keys
    /// are remembered once it ends, as Redis does.
    pub script_read: bool,
}

/// CLIENT REPLY ON | OFF | SKIP (applied in `observe.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// CLIENT REPLY SKIP just ran: no reply to it nor to the next command.
    Skip,
    /// The next command's reply is dropped.
    SkipNext,
}

impl ConnState {
    pub fn set_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
        self.client
            .resp
            .store(if resp3 { 3 } else { 2 }, Ordering::Relaxed);
    }
}

/// Writes the reply of a command parked on a plugin call once it finished.
pub type ResumeFn = fn(&mut Ctx<'_>, PluginId, Outcome) -> super::error::CmdResult;

/// What a parked connection waits for, and how its reply is written then
/// (the continuations are in `pending.rs`).
pub enum Pending {
    /// A plugin call (PLUGIN CALL and any command built on a plugin).
    Plugin {
        request: RequestId,
        plugin: PluginId,
        then: ResumeFn,
    },
    /// Read-through loads of a GET / MGET / GETEX; `plan` renders the reply.
    Loads { wait: LoadWaitId, plan: Box<Plan> },
    /// A PIPELINE CALL (led by this connection or joined).
    Pipeline { wait: PipelineWaitId },
    /// Held by CLIENT PAUSE; the held command was not consumed and runs
    /// when the connection resumes.
    Paused { client: u64 },
    /// A request forwarded to other nodes (proxy mode); `plan` merges
    /// their replies (`command/proxy.rs`).
    Forward {
        id: ForwardId,
        plan: Box<super::proxy_merge::Merge>,
    },
    /// Keys a command reads, missing here, read from their slots'
    /// previous owners (warm hand-off, `command/handoff.rs`); restored
    /// here, then the command, not consumed, runs again.
    Handoff {
        id: ForwardId,
        wait: Box<super::load_plan::HandoffPlan>,
    },
    /// A blocking command (BLPOP ...) waits for its keys; it was not
    /// consumed and runs again when the connection resumes
    /// (`command/blocking.rs`).
    Blocked { client: u64 },
    /// An outbound MIGRATE (`command/migrate.rs`): `plan` deletes the
    /// keys the target restored, if unchanged, and writes the reply.
    Migrate {
        id: MigrateId,
        plan: Box<super::migrate_plan::MigratePlan>,
    },
}

impl Pending {
    /// The operation the connection is parked on.
    pub fn key(&self) -> WaitKey {
        match self {
            Pending::Plugin { request, .. } => WaitKey::Plugin(*request),
            Pending::Loads { wait, .. } => WaitKey::Loads(*wait),
            Pending::Pipeline { wait } => WaitKey::Pipeline(*wait),
            Pending::Paused { client } => WaitKey::Pause(*client),
            Pending::Blocked { client } => WaitKey::Blocked(*client),
            Pending::Migrate { id, .. } => WaitKey::Migrate(*id),
            Pending::Forward { id, .. } | Pending::Handoff { id, .. } => WaitKey::Forward(*id),
        }
    }
}

/// HELP replies: an array of status lines.
pub fn reply_lines(out: &mut Reply<'_>, lines: &[&str]) {
    out.array(lines.len());
    for l in lines {
        out.simple(l.as_bytes());
    }
}
