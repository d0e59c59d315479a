//! CLIENT PAUSE timeout [WRITE|ALL] / UNPAUSE, and the gate every command
//! passes: while a pause holds a command, its connection parks on
//! `WaitKey::Pause` with the command unconsumed (`session.rs`); the
//! thread's poll releases it when the pause ends (deadline or UNPAUSE,
//! which wakes every thread), and the command then runs from the buffered
//! input. As in Redis, the pausing client is held too.

use std::time::{Duration, Instant};

use citadel_net::Waiter;

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::table;
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::{Completion, Mail};

/// Whether a pause holds this command now. One Relaxed load when no pause
/// is in effect.
#[inline]
pub fn holds(state: &ServerState, thread: &ThreadCtx, args: Args<'_>) -> bool {
    let pause = &state.introspect.pause;
    let now = thread.cache.now_ms();
    if pause.holds(now, true).is_none() {
        return false;
    }
    pause.holds(now, may_write(args.get(0))).is_some()
}

/// Commands a WRITE pause holds: writes, and PUBLISH (as Redis).
fn may_write(name: &[u8]) -> bool {
    match table::lookup(name) {
        Some((_, def)) => def.has_flag("write") || def.name == "publish" || def.name == "spublish",
        None => false,
    }
}

/// Releases this thread's held clients once no pause holds them.
pub fn release_paused(
    state: &ServerState,
    thread: &mut ThreadCtx,
    ready: &mut Vec<(Waiter, Completion)>,
) {
    if state
        .introspect
        .pause
        .until(citadel_cache::unix_millis())
        .is_some()
    {
        return;
    }
    for client in std::mem::take(&mut thread.paused) {
        thread.waits.finish(Completion::Unpaused { client });
    }
    thread.waits.drain_into(ready);
}

/// When this thread's loop must wake to release its held clients.
pub fn pause_deadline(state: &ServerState, thread: &ThreadCtx) -> Option<Instant> {
    if thread.paused.is_empty() {
        return None;
    }
    let now_ms = citadel_cache::unix_millis();
    let until = state.introspect.pause.until(now_ms).unwrap_or(now_ms);
    Some(Instant::now() + Duration::from_millis(until - now_ms))
}

pub fn pause(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let timeout = args
        .int(2)
        .map_err(|_| CmdError::Static("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::Static("ERR timeout is negative"));
    }
    let all = match args.len() {
        3 => true,
        4 if args.is(3, "all") => true,
        4 if args.is(3, "write") => false,
        _ => return Err(CmdError::Syntax),
    };
    let until = citadel_cache::unix_millis().saturating_add(timeout as u64);
    ctx.state.introspect.pause.pause(until, all);
    ctx.out.ok();
    Ok(())
}

pub fn unpause(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.state.introspect.pause.unpause();
    // Loops asleep until the old deadline wake up to release their clients.
    for thread in 0..ctx.state.threads {
        ctx.thread.inboxes.send(thread, Mail::Unpause);
    }
    ctx.out.ok();
    Ok(())
}
