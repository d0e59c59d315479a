//! The production `citadel_net::Service`: each connection's session (RESP
//! on the main door, the FlatBuffers RPC on [`RPC_DOOR`]) running against
//! this thread's context (cache handle, plugin client, read-through loads,
//! parked connections).

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use citadel_net::{Door, Endpoint, Progress, Refused, Service, Waiter};

use crate::command::{self, ConnInfo, Session};
use crate::pipeline::ThreadPipelines;
use crate::readthrough::ThreadLoads;
use crate::rpc::{RpcSession, ShmClients, ShmLane};
use crate::state::ServerState;
use crate::stats::ThreadStats;
use crate::thread::ThreadCtx;
use crate::wait::Completion;

/// Pages of dropped big collections deleted per loop turn (each a small
/// update): bounded work between network completions.
const RECLAIM_PAGES_PER_TURN: usize = 64;

/// The door (`NetConfig::doors[0]`) whose connections speak the RPC.
pub const RPC_DOOR: Door = Door(1);

/// A connection's protocol session, boxed (both are hundreds of bytes and
/// differ in size; the box is followed once per input, not per command).
pub enum Conn {
    Resp(Box<Session>),
    Rpc(Box<RpcSession>),
}

pub struct CommandService {
    state: Arc<ServerState>,
    ctx: ThreadCtx,
    /// This thread's shared-memory RPC clients (served in `poll`).
    shm: ShmClients,
    /// Wake fds of `ctx` come first; the shm doorbell (if any) after them.
    ctx_wakes: usize,
}

impl CommandService {
    /// Takes a cache writer handle and the plugin rings of thread `index`.
    /// `shm`: this thread's lane of the shared-memory transport, if served.
    pub fn new(
        state: &Arc<ServerState>,
        index: usize,
        shm: Option<ShmLane>,
    ) -> Result<CommandService, String> {
        let cache = state.cache.handle().map_err(|e| e.to_string())?;
        let stats: Arc<ThreadStats> = state.thread_stats[index].clone();
        let loads = ThreadLoads::new(index, state.readthrough.get().cloned());
        let mut ctx = ThreadCtx::new(
            index,
            cache,
            stats,
            state.plugins.client(index),
            loads,
            ThreadPipelines::new(
                index,
                state.pipeline_flights.clone(),
                state.pipeline_spool.clone(),
            ),
            state.inboxes.clone(),
            state.pubsub.clone(),
            state.monitors.clone(),
        );
        ctx.cluster = state
            .cluster
            .get()
            .map(|node| citadel_cluster::ThreadView::new(node.state.clone()));
        ctx.overload = Some(crate::overload::ThreadOverload::new(
            state.overload.clone(),
            index,
        ));
        let output_limit = state
            .settings
            .get(&citadel_settings::server::CLIENT_OUTPUT_LIMIT)
            .bytes() as usize;
        Ok(CommandService {
            state: state.clone(),
            ctx_wakes: ctx.wake_fds().len(),
            ctx,
            shm: ShmClients::new(state, index, shm, output_limit),
        })
    }
}

impl Service for CommandService {
    type Session = Conn;
    type Completion = Completion;

    fn open(&mut self, id: u64, peer: Endpoint, local: Endpoint, door: Door) -> Conn {
        let info = ConnInfo {
            id,
            peer,
            local,
            thread: self.ctx.index,
        };
        let open = self.ctx.overload.as_mut().map(|o| o.connection_opened());
        if door == RPC_DOOR {
            Conn::Rpc(Box::new(RpcSession::new(&self.state, info).counted(open)))
        } else {
            let greeting = crate::command::busy_greeting::take(id);
            let session = Session::new(&self.state, info).greeted(greeting);
            Conn::Resp(Box::new(session.counted(open)))
        }
    }

    fn process(&mut self, session: &mut Conn, input: &[u8], out: &mut Vec<u8>) -> Progress {
        // A handler that panicked (its connection closed) left its key
        // hint set (`fast_path::other`): none may outlive its input.
        self.ctx.cache.clear_key_hint();
        match session {
            Conn::Resp(s) => s.process(&mut self.ctx, input, out),
            Conn::Rpc(s) => s.process(&mut self.ctx, input, out),
        }
    }

    fn prefetch<'a>(&mut self, inputs: impl Iterator<Item = (&'a Conn, &'a [u8])>) {
        let ctx = &self.ctx;
        let keys = inputs.filter_map(|(session, input)| match session {
            Conn::Resp(s) if !s.sheds_all(ctx) => command::lone_key(input),
            _ => None,
        });
        command::prefetch_across(ctx, keys);
    }

    fn hold(&mut self, session: &mut Conn) -> Option<std::time::Duration> {
        let Conn::Resp(s) = session else {
            return None;
        };
        s.hold(self.ctx.overload.as_ref().and_then(|o| o.refusal_hold()))
    }

    fn holding(&self) -> bool {
        self.ctx.overload.as_ref().is_some_and(|o| o.shedding())
    }

    fn input_held(&mut self, session: &mut Conn, len: usize, spare: usize) {
        if let Conn::Resp(s) = session {
            s.input_held(len, spare);
        }
    }

    fn is_killed(&self, session: &Conn) -> bool {
        match session {
            Conn::Resp(s) => s.is_killed(),
            Conn::Rpc(s) => s.is_killed(),
        }
    }

    fn stall_plain(&self, session: &Conn) -> bool {
        match session {
            Conn::Resp(s) => s.stall_plain(),
            Conn::Rpc(_) => false,
        }
    }

    fn drop_parked_at_eof(&self, session: &Conn) -> bool {
        match session {
            Conn::Resp(s) => s.owes_nothing_once_gone(),
            Conn::Rpc(_) => false,
        }
    }

    fn settles_after_close(&self, session: &Conn) -> bool {
        match session {
            // Its keys the target restored are deleted, whoever waits.
            Conn::Resp(s) => s.is_migrating(),
            Conn::Rpc(_) => false,
        }
    }

    fn owes_replies(&self, session: &Conn) -> bool {
        match session {
            Conn::Resp(_) => false,
            Conn::Rpc(s) => s.owes_replies(),
        }
    }

    fn turn(&mut self, now_ms: u64) {
        crate::command::busy_greeting::next_turn();
        self.state.gate.enter(self.ctx.index);
        self.ctx.cache.set_clock(now_ms);
        let wanted = self.state.key_changes_wanted();
        self.ctx.cache.record_changes(wanted);
        if let Some(o) = self.ctx.overload.as_mut() {
            o.turn_started();
        }
    }

    fn rest(&mut self) {
        // The turn's BCAST invalidations, one message per prefix (Redis
        // sends them before it sleeps).
        if !self.ctx.bcast.is_empty() {
            let ctx = &mut self.ctx;
            self.state.tracking.broadcast(&mut ctx.bcast, &ctx.inboxes);
        }
        if let Some(o) = self.ctx.overload.as_mut() {
            o.turn_ended();
        }
        self.state.gate.leave(self.ctx.index);
    }

    fn tick(&mut self) {
        if let Some(o) = self.ctx.overload.as_mut() {
            o.tick();
        }
        self.ctx.plugins.tick();
        self.ctx.cache.maintain();
        if self.state.tracking.active() {
            let max = &citadel_settings::server::TRACKING_TABLE_MAX_KEYS;
            let max = self.state.settings.get(max);
            self.state.tracking.limit(max, &self.ctx.inboxes);
        }
        self.state.tick();
    }

    fn shutdown_requested(&self) -> bool {
        self.state.shutdown.is_requested()
    }

    fn maxclients(&self) -> usize {
        self.state.maxclients()
    }

    fn max_per_address(&self) -> usize {
        let limit = &citadel_settings::overload::MAXCLIENTS_PER_ADDRESS;
        self.state.settings.get(limit)
    }

    fn accept_rate(&self) -> u64 {
        self.state
            .settings
            .get(&citadel_settings::overload::ACCEPT_RATE)
    }

    fn refused(&mut self, why: Refused) {
        use crate::overload::{Rank, Reason};
        let reason = match why {
            Refused::MaxClients => Reason::MaxClients,
            Refused::PerAddress => Reason::PerAddress,
            Refused::AcceptRate => Reason::AcceptRate,
        };
        self.state.overload.stats.count(reason, Rank::UNRANKED);
    }

    fn wake_fds(&self) -> Vec<RawFd> {
        let mut fds = self.ctx.wake_fds();
        fds.extend(self.shm.doorbell());
        fds
    }

    fn on_wake(&mut self, index: usize) {
        if index < self.ctx_wakes {
            self.ctx.on_wake(index);
        } else {
            self.shm.on_doorbell();
        }
    }

    fn park(&mut self, session: &mut Conn, waiter: Waiter) {
        match session {
            Conn::Resp(s) => {
                // Parked on an operation, and/or a new subscriber whose
                // messages go to this connection (both, at times).
                if s.wants_waiter() {
                    s.attach(&self.ctx, waiter);
                }
                if let Some(key) = s.pending_key() {
                    self.ctx.park(key, waiter);
                }
            }
            Conn::Rpc(s) => s.park(&mut self.ctx, waiter),
        }
    }

    fn poll(&mut self, now: Instant, ready: &mut Vec<(Waiter, Completion)>) {
        self.ctx.poll(now, ready);
        // Pages of dropped big collections, a few per turn: a huge DEL
        // never stalls the thread, yet finishes within seconds.
        if self.ctx.cache.reclaim_pending() {
            self.ctx.cache.reclaim_step(RECLAIM_PAGES_PER_TURN);
        }
        self.shm.poll(&mut self.ctx);
        // Changes made off the command path (expiry sweep, RPC requests).
        crate::command::flush_key_events(&self.state, &mut self.ctx, None, None);
        if !self.ctx.paused.is_empty() {
            command::release_paused(&self.state, &mut self.ctx, ready);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.ctx.cache.reclaim_pending() {
            // More pages to reclaim: the next turn must not wait.
            return Some(Instant::now());
        }
        let plugins = self.ctx.plugins.next_deadline();
        let pause = command::pause_deadline(&self.state, &self.ctx);
        let blocked = self.ctx.block_deadline();
        [plugins, self.shm.next_deadline(), pause, blocked]
            .into_iter()
            .flatten()
            .min()
    }

    fn is_push(&self, done: &Completion) -> bool {
        done.is_push()
    }

    fn resume(&mut self, session: &mut Conn, done: Completion, out: &mut Vec<u8>) {
        self.ctx.cache.clear_key_hint();
        match session {
            Conn::Resp(s) => s.resume(&mut self.ctx, done, out),
            Conn::Rpc(s) => s.resume(&mut self.ctx, done, out),
        }
    }
}
