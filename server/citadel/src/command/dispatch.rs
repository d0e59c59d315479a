//! Runs one parsed command: lookup, subcommand resolution, arity and auth
//! checks in Redis's order, then the handler (or, between MULTI and EXEC,
//! the queue); errors become replies here. What it did ([`Ran`]) feeds the
//! statistics, the slow log and the latency monitor (`observe.rs`), then
//! CLIENT REPLY's mode applies; the keys it changed become keyspace events.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use super::args::Args;
use super::context::{ConnState, Ctx, Pending};
use super::error::{reply_error, reply_unknown_command, reply_unknown_subcommand, CmdError};
use super::key_events;
use super::observe::{self, Ran};
use super::proxy::{self, Taken};
use super::table::{self, CommandDef};
use citadel_resp::Reply;

use crate::state::ServerState;
use crate::thread::ThreadCtx;

pub fn run(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    args: Args<'_>,
    out: &mut Vec<u8>,
) {
    if thread.cache.in_txn() {
        // Only a panic in the middle of an EXEC leaves one open.
        thread.cache.txn_abort();
        thread.drop_attempt_effects();
        thread.nested_calls.retry_from(0);
    }
    // Checked per command: a client may have started tracking on another
    // core an instant ago, and this command's changes must reach it.
    thread.cache.record_changes(state.key_changes_wanted());
    let mark = out.len();
    // A blocked command runs again when woken; as in Redis, only its first
    // run (the one that blocked, or served at once) is counted and shown.
    let rerun = conn.blocked.is_some();
    let handed_off = std::mem::take(&mut conn.handed_off);
    let ran = check_and_run(state, thread, conn, args, out, handed_off);
    // Parked for a warm hand-off: nothing ran; it runs again (and counts) then.
    let parked = matches!(conn.pending, Some(Pending::Handoff { .. }));
    if thread.cache.has_changes() {
        let command = match ran {
            Ran::Executed { cmd, .. } => Some((cmd, args)),
            _ => None,
        };
        key_events::flush(state, thread, Some(conn.client.id), command);
    }
    super::blocking::signal_written(state, thread);
    if let (Some(_), Ran::Executed { def, failed, .. }) = (conn.tracking, &ran) {
        super::tracking::remember_reads(state, thread, conn, def, args, *failed);
    }
    thread.cache.set_change_tag(key_events::NO_COMMAND);
    let blocked = matches!(conn.pending, Some(Pending::Blocked { .. }));
    if !rerun && !parked {
        observe::after(state, thread, conn, args, ran, out, mark);
    } else if let (
        true,
        Ran::Executed {
            cmd,
            def,
            nanos,
            failed,
        },
    ) = (rerun && !blocked, ran)
    {
        // Woken and done: not a second call (an error makes it a failed
        // one), and its slow log entry.
        let error = failed.then_some(&out[mark..]);
        observe::finished_after_block(state, thread, conn, (cmd, def, args), nanos, error);
    }
}

/// The command (or subcommand) `args` name: (global index, definition);
/// None when there is none, Redis's error replied.
#[inline]
pub(super) fn resolve(
    reply: &mut Reply<'_>,
    args: Args<'_>,
) -> Option<(usize, &'static CommandDef)> {
    let name = args.get(0);
    let Some((idx, def)) = table::lookup(name) else {
        reply_unknown_command(reply, name, args.from(1).iter());
        return None;
    };
    if def.subcommands.is_empty() || args.len() < 2 {
        return Some((idx, def));
    }
    let found = table::lookup_sub(def, args.get(1));
    if found.is_none() {
        reply_unknown_subcommand(reply, def.name, args.get(1));
    }
    found
}

fn check_and_run(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    args: Args<'_>,
    out: &mut Vec<u8>,
    handed_off: bool,
) -> Ran {
    let mut reply = Reply::new(out, conn.resp3);
    let Some((idx, def)) = resolve(&mut reply, args) else {
        conn.tx.dirty |= conn.tx.in_multi;
        return Ran::Unknown;
    };
    let refusal = if !def.arity_ok(args.len()) {
        Some(CmdError::Arity(def.name))
    } else if !conn.authed && !def.has_flag("no_auth") && state.auth_required() {
        Some(CmdError::NoAuth)
    } else if let Some(e) = super::acl_check::refuse(state, conn, idx, def, args) {
        Some(e)
    } else if conn.tx.in_multi && def.has_flag("no_multi") {
        Some(CmdError::Static(
            "ERR Command not allowed inside a transaction",
        ))
    } else if conn.subscriptions > 0 || conn.monitor {
        // Tested here first: both refusals are for those modes only, and
        // this runs for every command.
        super::pubsub::refuse_in_subscribe_mode(conn, def.name)
            .or_else(|| super::monitor::refuse_keyspace(conn, def))
    } else {
        None
    };
    // Cluster mode: keyed commands run (or queue) only on their slot's node.
    let mut refusal = refusal.or_else(|| {
        let view = thread.cluster.as_mut()?;
        super::redirect::check(view, def, args).err()
    });
    // Proxy mode: another node's command is forwarded (in MULTI: queued,
    // and EXEC forwards the transaction).
    let elsewhere = matches!(refusal, Some(CmdError::Moved { .. } | CmdError::CrossSlot));
    if elsewhere && proxy::enabled(state) {
        if conn.tx.in_multi {
            let moved = matches!(refusal, Some(CmdError::Moved { .. }));
            if moved && proxy::forwardable(def) && !conn.no_proxy {
                refusal = None;
            }
        } else if let Some(e) = refusal.take() {
            match proxy::take(state, thread, conn, (idx, def, args), e, handed_off) {
                Taken::Parked => {
                    return Ran::Executed {
                        cmd: idx,
                        def,
                        nanos: 0,
                        failed: false,
                    }
                }
                // Nothing to record: it is when it runs again.
                Taken::HandingOff => return Ran::Queued,
                Taken::RunHere => {}
                Taken::Refuse(e) => refusal = Some(e),
            }
        }
    }
    // A blocked command woken to run again was admitted when it blocked
    // (one run again after a warm hand-off, when it parked).
    if refusal.is_none() && conn.blocked.is_none() && !handed_off {
        refusal = super::admission::check(thread, conn, idx, def, args);
    }
    if let Some(e) = refusal {
        reply_error(&mut reply, &e);
        conn.tx.dirty |= conn.tx.in_multi;
        return Ran::Rejected(idx);
    }
    if state.scripts.busy.any_running()
        && !def.has_flag("allow_busy")
        && busy_keys(state, thread, def, args)
    {
        reply_error(&mut reply, &CmdError::Static("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."));
        return Ran::Rejected(idx);
    }
    conn.client.last_cmd.store(idx as u32, Ordering::Relaxed);
    if conn.tx.in_multi && !runs_in_multi(def) {
        conn.tx.queue(idx, def, args);
        reply.simple(b"QUEUED");
        return Ran::Queued;
    }
    // Cluster mode: keys it reads that just moved here are first read from
    // their previous owner (warm hand-off); it runs again once they are.
    if thread.cluster.is_some()
        && conn.blocked.is_none()
        && !handed_off
        && super::handoff::park(state, thread, conn, def, args)
    {
        // Nothing to record (`run` skips it): it is when it runs again.
        return Ran::Queued;
    }
    if state.monitors.active() && def.has_flag("movablekeys") && conn.blocked.is_none() {
        super::monitor::feed(state, thread, conn, def, args, None);
    }
    let mut ctx = Ctx {
        state,
        thread,
        conn,
        out: reply,
    };
    execute(&mut ctx, idx, def, args)
}

/// Whether the command names a key a script declared and has held past
/// `busy-script-time` on another core (its own core cannot serve this
/// connection meanwhile). Other keys are served as usual.
fn busy_keys(state: &ServerState, thread: &ThreadCtx, def: &CommandDef, args: Args<'_>) -> bool {
    let mut keys = Vec::new();
    def.keys_of(args, &mut keys);
    let threshold = state
        .settings
        .get(&citadel_settings::server::BUSY_SCRIPT_TIME);
    !keys.is_empty() && state.scripts.busy.holds_any(thread.index, &keys, threshold)
}

/// Commands that act at once between MULTI and EXEC instead of queuing.
fn runs_in_multi(def: &CommandDef) -> bool {
    matches!(
        def.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Runs a checked command's handler, timed for the statistics.
pub fn execute(ctx: &mut Ctx<'_>, idx: usize, def: &'static CommandDef, args: Args<'_>) -> Ran {
    let started = ctx.thread.command_clock.start();
    let failed = match super::hotkeys::refuse_write(ctx, def, args) {
        Some(e) => {
            // A refused write is still an access of its key (as the RPC
            // counts it): a key shed by the write limit must show in
            // HOTKEYS at the rate it is written, not the rate admitted.
            sample_keys(ctx, def, args);
            reply_error(&mut ctx.out, &e);
            true
        }
        None => run_handler(ctx, idx, def, args),
    };
    let nanos = ctx.thread.command_clock.finish(started);
    Ran::Executed {
        cmd: idx,
        def,
        nanos,
        failed,
    }
}

/// Hot-key sampling (`crate::hotkeys`): one decrement unless this is the
/// core's sampled command.
#[inline]
fn sample_keys(ctx: &mut Ctx<'_>, def: &CommandDef, args: Args<'_>) {
    if ctx.thread.hotkeys.due() {
        super::hotkeys::sample(ctx, def, args);
    }
}

/// Runs a checked command's handler; an error replaces whatever it wrote.
/// Returns whether it failed. EXEC runs its queued commands through here
/// (the EXEC is what is timed).
pub fn run_handler(ctx: &mut Ctx<'_>, idx: usize, def: &CommandDef, args: Args<'_>) -> bool {
    // Changes the cache logs now are this command's (keyspace events).
    super::key_events::tag_changes(ctx.state, ctx.thread, idx, def.name, args);
    if ctx.thread.cluster.is_some() && def.has_flag("write") {
        super::handoff::note_write(ctx, def, args);
    }
    sample_keys(ctx, def, args);
    let mark = ctx.out.buf.len();
    match call_handler(ctx, idx, def, args) {
        Ok(()) => {
            super::blocking::note_written(ctx.state, ctx.thread, ctx.conn.db, def, args);
            false
        }
        Err(e) => {
            // A failing handler's partial output never reaches the client.
            ctx.out.buf.truncate(mark);
            reply_error(&mut ctx.out, &e);
            super::blocking::failed(ctx);
            true
        }
    }
}

/// Runs `def`'s handler. A command that is not Redis's denyoom (LPOP,
/// HDEL, EXPIRE ...: it frees memory or does not grow it) may have its
/// writes take the free segments that a policy protecting keys keeps in
/// reserve, so a full noeviction cache still lets a queue's consumers pop
/// (alloc.rs in the cache engine); the others never may.
#[inline]
pub(super) fn call_handler(
    ctx: &mut Ctx<'_>,
    idx: usize,
    def: &CommandDef,
    args: Args<'_>,
) -> super::error::CmdResult {
    static NOT_DENYOOM: OnceLock<Box<[bool]>> = OnceLock::new();
    let table = NOT_DENYOOM.get_or_init(|| {
        (0..)
            .map_while(table::by_index)
            .map(|def| !def.has_flag("denyoom"))
            .collect()
    });
    if !table.get(idx).copied().unwrap_or(false) {
        return (def.handler)(ctx, args);
    }
    ctx.thread.cache.allow_reserve(true);
    let result = (def.handler)(ctx, args);
    ctx.thread.cache.allow_reserve(false);
    result
}
