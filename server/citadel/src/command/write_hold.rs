//! A transaction that keeps conflicting: a script or an EXEC that reads a
//! key clients on other cores keep writing conflicts at each commit and
//! ran again forever (a script reading a counter that another core
//! INCRs: 228 runs in 30 s, never committed), its core busy and its other
//! clients waiting. After `HOLD_AFTER` conflicting runs it holds every
//! client's writes, as `CLIENT PAUSE WRITE` holds them (`pause_gate`: the
//! connection parks, its command unconsumed), until it has committed or
//! failed; its next run then meets no other command's write. Reads go
//! on. Writes that no command makes (a read-through load landing, the
//! active expiry) can still conflict with it, rarely. One transaction
//! holds writes at a time; another that keeps conflicting meanwhile runs
//! again as before.

use std::sync::Arc;

use super::context::Ctx;
use crate::state::ServerState;
use crate::wait::Mail;

/// Conflicting runs after which a transaction holds every client's writes.
const HOLD_AFTER: u32 = 4;

/// A transaction's hold of every client's writes, if it took one:
/// released (and every thread woken to run what it held) when dropped.
pub(super) struct WriteHold {
    state: Option<Arc<ServerState>>,
}

impl WriteHold {
    pub fn none() -> WriteHold {
        WriteHold { state: None }
    }

    /// After `conflicts` conflicting runs: holds every client's writes
    /// from the next run on (unless another transaction holds them).
    pub fn after_conflict(&mut self, ctx: &mut Ctx<'_>, conflicts: u32) {
        if self.state.is_some() || conflicts < HOLD_AFTER {
            return;
        }
        if ctx.state.introspect.pause.hold_writes() {
            ctx.thread.stats.write_hold_taken();
            tracing::debug!(conflicts, "a transaction holds every client's writes");
            self.state = Some(ctx.state.clone());
        }
    }
}

impl Drop for WriteHold {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            state.introspect.pause.release_writes();
            // Loops asleep with clients held wake up to release them.
            for thread in 0..state.threads {
                state.inboxes.send(thread, Mail::Unpause);
            }
        }
    }
}
