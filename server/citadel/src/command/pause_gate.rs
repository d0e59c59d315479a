//! CLIENT PAUSE timeout [WRITE|ALL] / UNPAUSE, and the gate every command
//! passes: while a pause holds a command, its connection parks on
//! `WaitKey::Pause` with the command unconsumed (`session.rs`); the
//! thread's poll releases it when the pause ends (deadline or UNPAUSE,
//! which wakes every thread), and the command then runs from the buffered
//! input. As in Redis, the pausing client is held too.

use std::time::{Duration, Instant};

use citadel_net::Waiter;

use super::args::Args;
use super::context::{ConnState, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::{self, CommandDef};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::{Completion, Mail};

/// Whether a pause holds this command now. One Relaxed load when no pause
/// is in effect.
#[inline]
pub fn holds(state: &ServerState, thread: &ThreadCtx, conn: &ConnState, args: Args<'_>) -> bool {
    let pause = &state.introspect.pause;
    let now = thread.cache.now_ms();
    if pause.holds(now, true).is_none() {
        return false;
    }
    // Refused before any pause, as in Redis: an unknown command, or one
    // with the wrong number of arguments, is answered at once.
    let Some((_, def)) = table::lookup(args.get(0)) else {
        return false;
    };
    if !def.arity_ok(args.len()) {
        return false;
    }
    pause
        .holds(now, may_write(state, conn, def, args))
        .is_some()
}

/// Whether a WRITE pause holds the command: what Redis 7.0.15 counts as
/// "may replicate" (writes, PFCOUNT, PUBLISH, SPUBLISH, a script that may
/// write), or an EXEC whose queue holds such a command.
fn may_write(state: &ServerState, conn: &ConnState, def: &CommandDef, args: Args<'_>) -> bool {
    if def.name == "exec" {
        return (0..conn.tx.len()).any(|i| {
            let (_, def, args) = conn.tx.command(i);
            command_may_write(state, def, args)
        });
    }
    command_may_write(state, def, args)
}

fn command_may_write(state: &ServerState, def: &CommandDef, args: Args<'_>) -> bool {
    if def.may_replicate() {
        return true;
    }
    match def.name {
        "eval" | "eval_ro" => script_may_write(Some(args.get(1)), def.name),
        "evalsha" | "evalsha_ro" => {
            let sha = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
            script_may_write(state.scripts.script(&sha).as_deref(), def.name)
        }
        "fcall" | "fcall_ro" => {
            let name = String::from_utf8_lossy(args.get(1));
            match state.scripts.functions().function(&name) {
                Some((_, meta)) => !meta.has_flag("no-writes"),
                // Unknown: as the command's own flags say (it will fail).
                None => def.name == "fcall",
            }
        }
        _ => def.has_flag("write"),
    }
}

/// A script's writes, as Redis judges them before running it: a shebang's
/// flags decide (no `no-writes`: it writes); without a shebang (or one
/// that does not parse, or an unknown script) EVAL and EVALSHA may write
/// and their `_RO` forms do not.
fn script_may_write(body: Option<&[u8]>, name: &str) -> bool {
    match body.map(crate::script::script_flags) {
        Some(Ok(flags)) if flags.shebang => !flags.no_writes,
        _ => !name.ends_with("_ro"),
    }
}

/// How often a thread with clients held by a transaction's write hold
/// looks whether it ended.
const HELD_WRITES_LOOK_MS: u64 = 50;

/// Releases this thread's held clients once no pause holds them.
pub fn release_paused(
    state: &ServerState,
    thread: &mut ThreadCtx,
    ready: &mut Vec<(Waiter, Completion)>,
) {
    let pause = &state.introspect.pause;
    if pause.until(citadel_cache::unix_millis()).is_some() || pause.writes_held() {
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
    let pause = &state.introspect.pause;
    let until = match pause.until(now_ms) {
        Some(until) => until,
        // Held by a transaction: its end mails every thread; look again
        // now and then all the same (one that ended by a panic).
        None if pause.writes_held() => now_ms + HELD_WRITES_LOOK_MS,
        None => now_ms,
    };
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
    let now = citadel_cache::unix_millis();
    let pause = &ctx.state.introspect.pause;
    pause.pause(now.saturating_add(timeout as u64), all);
    // As in Redis, keys do not expire while writes are paused: they read
    // as absent but are not deleted (nor counted in expired_keys) until
    // the pause ends.
    ctx.state
        .cache
        .hold_expiry_until(pause.until(now).unwrap_or(0));
    ctx.out.ok();
    Ok(())
}

pub fn unpause(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.state.introspect.pause.unpause();
    ctx.state.cache.hold_expiry_until(0);
    // Loops asleep until the old deadline wake up to release their clients.
    for thread in 0..ctx.state.threads {
        ctx.thread.inboxes.send(thread, Mail::Unpause);
    }
    ctx.out.ok();
    Ok(())
}
