//! The production `citadel_net::Service`: the command layer's sessions
//! running against this thread's context (cache handle, plugin client,
//! read-through loads, parked connections).

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use citadel_net::{Endpoint, Progress, Service, Waiter};

use crate::command::{ConnInfo, Session};
use crate::pipeline::ThreadPipelines;
use crate::readthrough::ThreadLoads;
use crate::state::ServerState;
use crate::stats::ThreadStats;
use crate::thread::ThreadCtx;
use crate::wait::Completion;

pub struct CommandService {
    state: Arc<ServerState>,
    ctx: ThreadCtx,
}

impl CommandService {
    /// Takes a cache writer handle and the plugin rings of thread `index`.
    pub fn new(state: &Arc<ServerState>, index: usize) -> Result<CommandService, String> {
        let cache = state.cache.handle().map_err(|e| e.to_string())?;
        let stats: Arc<ThreadStats> = state.thread_stats[index].clone();
        let loads = ThreadLoads::new(index, state.readthrough.get().cloned());
        let ctx = ThreadCtx::new(
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
        );
        Ok(CommandService {
            state: state.clone(),
            ctx,
        })
    }
}

impl Service for CommandService {
    type Session = Session;
    type Completion = Completion;

    fn open(&mut self, id: u64, peer: Endpoint, local: Endpoint) -> Session {
        Session::new(
            &self.state,
            ConnInfo {
                id,
                peer,
                local,
                thread: self.ctx.index,
            },
        )
    }

    fn process(&mut self, session: &mut Session, input: &[u8], out: &mut Vec<u8>) -> Progress {
        session.process(&mut self.ctx, input, out)
    }

    fn is_killed(&self, session: &Session) -> bool {
        session.is_killed()
    }

    fn turn(&mut self, now_ms: u64) {
        self.ctx.cache.set_clock(now_ms);
    }

    fn tick(&mut self) {
        self.ctx.plugins.tick();
        self.ctx.cache.maintain();
        self.state.tick();
    }

    fn shutdown_requested(&self) -> bool {
        self.state.shutdown.is_requested()
    }

    fn maxclients(&self) -> usize {
        self.state.maxclients()
    }

    fn wake_fds(&self) -> Vec<RawFd> {
        self.ctx.wake_fds()
    }

    fn on_wake(&mut self, index: usize) {
        self.ctx.on_wake(index);
    }

    fn park(&mut self, session: &mut Session, waiter: Waiter) {
        match session.pending_key() {
            Some(key) => self.ctx.park(key, waiter),
            None => tracing::warn!("a session parked with nothing pending"),
        }
    }

    fn poll(&mut self, now: Instant, ready: &mut Vec<(Waiter, Completion)>) {
        self.ctx.poll(now, ready);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.ctx.plugins.next_deadline()
    }

    fn resume(&mut self, session: &mut Session, done: Completion, out: &mut Vec<u8>) {
        session.resume(&mut self.ctx, done, out);
    }
}
