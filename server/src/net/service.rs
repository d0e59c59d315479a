//! The production [`Service`]: the command layer's sessions running against
//! this thread's cache handle.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Progress, Service};
use crate::command::{ConnInfo, Session};
use crate::state::{ServerState, ThreadCtx, ThreadStats};

pub struct CommandService {
    state: Arc<ServerState>,
    ctx: ThreadCtx,
}

impl CommandService {
    /// Takes a cache writer handle for thread `index`.
    pub fn new(
        state: &Arc<ServerState>,
        index: usize,
        stats: Arc<ThreadStats>,
    ) -> Result<CommandService, String> {
        let cache = state.cache.handle().map_err(|e| e.to_string())?;
        Ok(CommandService {
            state: state.clone(),
            ctx: ThreadCtx {
                index,
                cache,
                stats,
                plugins: state.plugins.client(index),
                loads: state.readthrough.thread(index),
            },
        })
    }
}

impl Service for CommandService {
    type Session = Session;

    fn open(&mut self, id: u64, peer: SocketAddr, local: SocketAddr) -> Session {
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
        self.ctx.loads.tick();
        self.ctx.cache.maintain();
        self.state.tick();
    }

    fn shutdown_requested(&self) -> bool {
        self.state.shutdown.is_requested()
    }

    fn maxclients(&self) -> usize {
        self.state.maxclients()
    }

    /// The plugin reply eventfds, then the read-through inbox's.
    fn wake_fds(&self) -> Vec<std::os::fd::RawFd> {
        let mut fds = self.ctx.plugins.wake_fds();
        fds.extend(self.ctx.loads.wake_fd());
        fds
    }

    fn on_wake(&mut self, index: usize) {
        if index < self.ctx.plugins.lane_count() {
            self.ctx.plugins.on_wake(index);
        } else {
            self.ctx.loads.on_wake();
        }
    }

    fn park(&mut self, session: &mut Session, waker: u64) {
        session.park(&mut self.ctx, waker);
    }

    fn poll_async(&mut self, now: std::time::Instant) {
        self.ctx.plugins.poll(now);
        self.ctx.loads.poll();
        while let Some((plugin, payload)) = self.ctx.plugins.take_invalidation() {
            self.ctx
                .loads
                .invalidate(&mut self.ctx.cache, plugin, &payload);
        }
    }

    /// Finished waits of parked clients first, then plugin completions;
    /// this thread's read-through loads are settled on the way.
    fn next_completion(&mut self) -> Option<crate::plugin::Completion> {
        let c = &mut self.ctx;
        loop {
            if let Some(done) = c.loads.next_completion() {
                return Some(done);
            }
            let done = c.plugins.next_completion()?;
            if done.waker != crate::readthrough::LOAD_WAKER {
                return Some(done);
            }
            c.loads.on_load_done(&mut c.cache, &mut c.plugins, done);
        }
    }

    fn next_deadline(&self) -> Option<std::time::Instant> {
        self.ctx.plugins.next_deadline()
    }

    fn resume(
        &mut self,
        session: &mut Session,
        done: crate::plugin::Completion,
        out: &mut Vec<u8>,
    ) {
        session.resume(&mut self.ctx, done, out);
    }
}
