//! Runs of plain GETs and SETs in a pipelined batch, without dispatch's
//! per-command checks.
//!
//! A batch the session skimmed (`prefetch.rs`) is mostly GET key and SET
//! key value on a connection in the plain state. For those, most of what
//! `dispatch::run` and `observe::after` ask of every command cannot apply:
//! no table lookup (the name is matched as three letters), no subcommand,
//! arity, MULTI, subscribe-mode, MONITOR, cluster, proxy, hand-off or
//! blocking hooks, no keyspace-event tagging or flushing, no reply mode.
//! What another core may change at any moment (CLIENT KILL, CLIENT PAUSE,
//! a new tracking client or keyspace-event setting, a script turning busy,
//! a new monitor, write limits: each one Relaxed load, read once per run)
//! and this core's shedding (per command) hand the run to the normal path
//! when on. What stays per command is the admission countdown, the command
//! clock, hot-key sampling and the statistics (`observe::executed`, or
//! added up per run in `observe::RunStats` and written once), so INFO, the
//! slow log, latency monitor, CLIENT LIST and HOTKEYS see exactly what the
//! normal path shows.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use citadel_cache::KeyHash;
use citadel_resp::Reply;

use super::args::Args;
use super::context::{ConnState, Ctx, ReplyMode};
use super::error::{reply_error, CmdResult};
use super::observe::RunStats;
use super::prefetch::Skim;
use super::table::{self, CommandDef};
use crate::state::ServerState;
use crate::thread::ThreadCtx;

/// GET or SET: the global index and the definition.
type Plain = (usize, &'static CommandDef);

fn plain_commands() -> &'static [Plain; 2] {
    static PLAIN: OnceLock<[Plain; 2]> = OnceLock::new();
    PLAIN.get_or_init(|| {
        let find = |name: &[u8]| table::lookup(name).expect("GET and SET are in the table");
        [find(b"get"), find(b"set")]
    })
}

/// Whether the connection is in the state in which a GET or SET only reads
/// or writes its key and answers: checked once per run (neither command
/// changes any of it).
fn plain_connection(thread: &ThreadCtx, conn: &ConnState) -> bool {
    !conn.tx.in_multi
        && conn.blocked.is_none()
        && conn.pending.is_none()
        && !conn.handed_off
        && conn.reply_mode == ReplyMode::On
        && conn.subscriptions == 0
        && !conn.monitor
        && conn.tracking.is_none()
        && thread.cluster.is_none()
        && !thread.cache.in_txn()
}

/// GET key (0) or SET key value (1), the name in any case; None for
/// anything else (SET with options included).
#[inline]
fn which(input: &[u8], spans: &[Range<usize>]) -> Option<usize> {
    let name = input.get(spans.first()?.clone())?;
    let [a, b, c] = name else {
        return None;
    };
    // `| 0x20` lowers a letter and maps no other byte to one.
    if (b | 0x20, c | 0x20) != (b'e', b't') {
        return None;
    }
    match (a | 0x20, spans.len()) {
        (b'g', 2) => Some(0),
        (b's', 3) => Some(1),
        _ => None,
    }
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

/// Runs the skimmed commands from `*pos` on while each is a plain GET or
/// SET the fast path may take; advances `*pos` past them and returns how
/// many ran. Stops before any other command, and after one that parked
/// the connection (a read-through load).
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
    if which(&input[*pos..], spans).is_none()
        || !plain_connection(thread, conn)
        || !quiet(state, thread, conn)
    {
        return 0;
    }
    // A per-key write limit sends SETs to the normal path (which applies it).
    let writes_limited = state.hotkeys.writes.limit().is_some();
    let plain = plain_commands();
    // As `admission::shed_from_frame` does first for each command (it is
    // not asked here: a shedding core takes the normal path).
    conn.overload.admitted_at_frame = false;
    // No change is recorded: nobody wants keyspace events or tracks (each
    // command's `quiet` ends the run when that changes).
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
        let Some(which) = which(rest, spans) else {
            break;
        };
        if (which == 1 && writes_limited) || shedding(ctx.thread) {
            break;
        }
        let command = (which, plain[which], skim.key_hash());
        one(&mut ctx, &mut stats, command, Args::new(rest, spans));
        skim.advance();
        ran += 1;
        *pos += end;
        if ctx.conn.pending.is_some() {
            break;
        }
    }
    stats.flush(ctx.thread, [plain[0].0, plain[1].0]);
    ran
}

/// One command: admission, then as `dispatch::execute` and
/// `observe::after` do it for a command that ran (its statistics added
/// up in `stats` unless the slow log or latency monitor wants it).
#[inline]
fn one(
    ctx: &mut Ctx<'_>,
    stats: &mut RunStats,
    (which, (idx, def), hash): (usize, Plain, Option<KeyHash>),
    args: Args<'_>,
) {
    // A lone command in its input is skimmed but not hashed.
    let hash = hash.unwrap_or_else(|| ctx.thread.cache.key_hash(args.get(1)));
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
    // As `dispatch::sample_keys`, with the key's hash at hand.
    if ctx.thread.hotkeys.due() {
        super::hotkeys::sample_one(ctx, args.get(1), hash);
    }
    // Called directly (not through the table's pointer): inlined here.
    let result: CmdResult = if which == 0 {
        super::loading::get_hashed(ctx, args, hash)
    } else {
        super::strings::set_plain(ctx, args, hash)
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
    if !failed && stats.add(which, nanos) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `which` over the arguments laid end to end.
    fn which_of(args: &[&str]) -> Option<usize> {
        let (mut buf, mut spans) = (Vec::new(), Vec::new());
        for a in args {
            spans.push(buf.len()..buf.len() + a.len());
            buf.extend_from_slice(a.as_bytes());
        }
        which(&buf, &spans)
    }

    #[test]
    fn only_plain_get_and_set_in_any_case_are_taken() {
        assert_eq!(which_of(&["GET", "k"]), Some(0));
        assert_eq!(which_of(&["gEt", "k"]), Some(0));
        assert_eq!(which_of(&["SET", "k", "v"]), Some(1));
        assert_eq!(which_of(&["set", "k", "v"]), Some(1));
        // Options, wrong arity, look-alike names: the normal path.
        assert_eq!(which_of(&["SET", "k", "v", "NX"]), None);
        assert_eq!(which_of(&["GET"]), None);
        assert_eq!(which_of(&["GET", "k", "x"]), None);
        assert_eq!(which_of(&["SET", "k"]), None);
        assert_eq!(which_of(&["GETS", "k"]), None);
        assert_eq!(which_of(&["G\u{7}T", "k"]), None);
        assert_eq!(which_of(&["'ET", "k"]), None);
        assert_eq!(which_of(&["DEL", "k"]), None);
        assert_eq!(which_of(&[]), None);
    }

    #[test]
    fn the_plain_commands_are_get_and_set() {
        let [(_, get), (_, set)] = plain_commands();
        assert_eq!((get.name, set.name), ("get", "set"));
    }
}
