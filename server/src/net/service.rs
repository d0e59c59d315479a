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
        self.ctx.cache.maintain();
        self.state.tick();
    }

    fn shutdown_requested(&self) -> bool {
        self.state.shutdown.is_requested()
    }

    fn maxclients(&self) -> usize {
        self.state.maxclients()
    }
}
