//! Runs of plain data commands in a pipelined batch, without dispatch's
//! per-command checks.
//!
//! A batch the session skimmed (`prefetch.rs`) is mostly GETs and SETs,
//! or collection commands (LPUSH, HSET, ZADD, SPOP ...), on a connection
//! in the plain state. For those, most of what `dispatch::run` and
//! `observe::after` ask of every command cannot apply: no subcommand,
//! MULTI, subscribe-mode, MONITOR, cluster, proxy, hand-off or blocking
//! hooks, no keyspace-event tagging or flushing, no reply mode. The table
//! lookup is remembered from the run's previous command of the same name
//! (`Names`). What another core may change at any moment (CLIENT KILL,
//! CLIENT PAUSE, a new tracking client or keyspace-event setting, a script
//! turning busy, a new monitor, write limits: each one Relaxed load, read
//! once per run) and this core's shedding (per command) hand the run to
//! the normal path when on. What stays per command is the arity check, the
//! admission countdown, the command clock, hot-key sampling, the wake-up
//! of clients blocked on the keys written and the statistics
//! (`observe::executed`, or added up per run in `observe::RunStats` and
//! written once), so INFO, the slow log, latency monitor, CLIENT LIST and
//! HOTKEYS see exactly what the normal path shows.

mod names;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use citadel_cache::KeyHash;
use citadel_resp::Reply;

use super::args::Args;
use super::context::{ConnState, Ctx, ReplyMode};
use super::error::{reply_error, CmdResult};
use super::observe::RunStats;
use super::prefetch::Skim;
use super::table::CommandDef;

use crate::state::ServerState;
use crate::thread::ThreadCtx;
use names::{Kind, Names, Plain};

/// Whether the connection is in the state in which a command the run
/// takes only reads or writes its keys and answers: checked once per run
/// (none of them changes any of it).
fn plain_connection(thread: &ThreadCtx, conn: &ConnState) -> bool {
    !conn.tx.in_multi
        && conn.blocked.is_none()
        && conn.pending.is_none()
        && !conn.handed_off
        && conn.reply_mode == ReplyMode::On
        && !conn.no_touch
        && conn.subscriptions == 0
        && !conn.monitor
        && conn.tracking.is_none()
        && thread.cluster.is_none()
        && !thread.cache.in_txn()
}

/// Whether nothing another core may switch on at any moment asks for the
/// normal path (each a Relaxed load): read once per run. A run is one
/// input's commands, at most a skim's `AHEAD`, and Redis too runs all of a
/// client's input before anything another client asks: a change made
/// meanwhile applies from the next run on. Per command these loads cost
/// ~20 instructions a GET.
#[inline]
fn quiet(state: &ServerState, thread: &ThreadCtx, conn: &ConnState) -> bool {
    let now = thread.cache.now_ms();
    !conn.client.is_killed()
        && (conn.authed || !state.auth_required())
        && conn.acl.unrestricted
        && conn.acl.current(&state.acl)
        && state.introspect.pause.holds(now, true).is_none()
        && !state.key_changes_wanted()
        && !state.scripts.busy.any_running()
        && !state.monitors.active()
}

/// Whether this core sheds now (its own state, changed by its admission
/// as commands run): asked per command, as is the command's admission.
#[inline]
fn shedding(thread: &ThreadCtx) -> bool {
    thread.overload.as_ref().is_some_and(|o| o.shedding())
}

/// Runs the skimmed commands from `*pos` on while each is one the run
/// takes; advances `*pos` past them and returns how many ran. Stops
/// before any other command, and after one that parked the connection (a
/// read-through load).
pub fn run(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    skim: &mut Skim,
    input: &[u8],
    pos: &mut usize,
    out: &mut Vec<u8>,
) -> u64 {
    // The cheap test first: most other commands stop here.
    let Some((_, spans)) = skim.peek(*pos) else {
        return 0;
    };
    let mut names = Names::default();
    let rest = &input[*pos..];
    if spans.is_empty()
        || names.plain(rest, &spans[0], spans.len()).is_none()
        || !plain_connection(thread, conn)
        || !quiet(state, thread, conn)
    {
        return 0;
    }
    // A per-key write limit sends writes to the normal path (which applies it).
    let writes_limited = state.hotkeys.writes.limit().is_some();
    // As `admission::shed_from_frame` does first for each command (it is
    // not asked here: a shedding core takes the normal path).
    conn.overload.admitted_at_frame = false;
    // No change is recorded: nobody wants keyspace events or tracks (each
    // run's `quiet` ends the run when that changes).
    thread.cache.record_changes(false);
    let resp3 = conn.resp3;
    let mut ctx = Ctx {
        state,
        thread,
        conn,
        out: Reply::new(out, resp3),
    };
    let mut stats = RunStats::new(state);
    let mut ran = 0;
    while let Some((end, spans)) = skim.peek(*pos) {
        let rest = &input[*pos..];
        let Some(plain) = spans
            .first()
            .and_then(|name| names.plain(rest, name, spans.len()))
        else {
            break;
        };
        if (plain.write && writes_limited) || shedding(ctx.thread) {
            break;
        }
        one(
            &mut ctx,
            &mut stats,
            plain,
            skim.key_hash(),
            Args::new(rest, spans),
        );
        skim.advance();
        ran += 1;
        *pos += end;
        if ctx.conn.pending.is_some() {
            break;
        }
    }
    stats.flush(ctx.thread);
    ran
}

/// One command: admission, then as `dispatch::run` and `observe::after`
/// do it for a command that ran (its statistics added up in `stats`
/// unless the slow log or latency monitor wants it). `hash`: the skim's
/// hash of its key.
#[inline]
fn one(
    ctx: &mut Ctx<'_>,
    stats: &mut RunStats,
    plain: Plain,
    hash: Option<KeyHash>,
    args: Args<'_>,
) {
    let Plain { kind, idx, def, .. } = plain;
    let mark = ctx.out.buf.len();
    if let Some(e) = super::admission::check(ctx.thread, ctx.conn, idx, def, args) {
        reply_error(&mut ctx.out, &e);
        let calls = &ctx.thread.stats.calls;
        calls.rejected(idx);
        calls.error_reply(&ctx.out.buf[mark..]);
        return;
    }
    ctx.conn
        .client
        .last_cmd
        .store(idx as u32, Ordering::Relaxed);
    let started = ctx.thread.command_clock.start();
    let result = match kind {
        Kind::Get | Kind::Set => {
            // A lone command in its input is skimmed but not hashed.
            let hash = hash.unwrap_or_else(|| ctx.thread.cache.key_hash(args.get(1)));
            // As `dispatch::sample_keys`, with the key's hash at hand.
            if ctx.thread.hotkeys.due() {
                super::hotkeys::sample_one(ctx, args.get(1), hash);
            }
            // Called directly (not through the table's pointer): inlined here.
            if kind == Kind::Get {
                super::loading::get_hashed(ctx, args, hash)
            } else {
                super::strings::set_plain(ctx, args, hash)
            }
        }
        Kind::Other => other(ctx, idx, def, args, hash),
    };
    let failed = match result {
        Ok(()) => false,
        Err(e) => {
            // A failing handler's partial output never reaches the client.
            ctx.out.buf.truncate(mark);
            reply_error(&mut ctx.out, &e);
            true
        }
    };
    let nanos = ctx.thread.command_clock.finish(started);
    // As `dispatch::run` after each command: clients blocked on the keys
    // it wrote are woken (nothing noted when nobody is blocked; GET and
    // SET note nothing).
    if kind == Kind::Other {
        super::blocking::signal_written(ctx.state, ctx.thread);
    }
    if !failed && stats.add(idx, nanos) {
        return;
    }
    let error = failed.then(|| &ctx.out.buf[mark..]);
    super::observe::executed(
        ctx.state,
        ctx.thread,
        ctx.conn,
        (idx, def, args),
        nanos,
        error,
    );
}

/// A collection command's handler, as `dispatch::run_handler` runs it on
/// a plain connection. Out of line: the handler costs thousands of
/// instructions, and inlined this kept GET's and SET's loop from its
/// registers (~20 instructions a GET). `hash`: the skim's hash of the
/// first argument after the name, which the handler's cache calls and
/// the hot-key sample take instead of hashing it again.
#[inline(never)]
fn other(
    ctx: &mut Ctx<'_>,
    idx: usize,
    def: &'static CommandDef,
    args: Args<'_>,
    hash: Option<KeyHash>,
) -> CmdResult {
    if ctx.thread.hotkeys.due() {
        match hash {
            // The one key is that argument (most collection commands).
            Some(hash) if def.find_keys.is_none() && def.keys == (1, 1, 1) => {
                super::hotkeys::sample_one(ctx, args.get(1), hash);
            }
            _ => super::hotkeys::sample(ctx, def, args),
        }
    }
    if let Some(hash) = hash {
        ctx.thread.cache.hint_key_hash(args.get(1), hash);
    }
    let result = super::dispatch::call_handler(ctx, idx, def, args);
    // (The input these bytes lie in changes after the run.)
    ctx.thread.cache.clear_key_hint();
    result?;
    super::blocking::note_written(ctx.state, ctx.thread, ctx.conn.db, def, args);
    Ok(())
}
