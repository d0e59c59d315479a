//! MONITOR (Redis 7.0): the connection answers `+OK`, then gets a line for
//! every command any client runs on any thread (`crate::monitor` formats
//! it and holds the registry). What Redis shows, Citadel shows:
//!
//! * a command is fed after it ran (`observe::after`), failed or not; one
//!   refused before its handler (unknown, arity, NOAUTH, a refusal of
//!   subscribe mode) is not, nor one queued by MULTI: EXEC feeds the
//!   commands it ran, in queue order, before its own line ([`feed_queue`]);
//! * commands flagged `admin` or `skip_monitor` are never shown; AUTH's
//!   and HELLO's passwords read "(redacted)" ([`redacted`], which the
//!   slow log uses too);
//! * a monitor may go on running commands that do not touch the keyspace
//!   (PING, ECHO, CLIENT ID ...), each reply followed by its own line; one
//!   that reads or writes keys (or publishes) is refused as Redis refuses a
//!   replica's ([`refuse_keyspace`]); a second MONITOR gets no reply; RESET
//!   (or the disconnect) ends monitoring;
//! * a monitor with CLIENT REPLY OFF gets nothing, as in Redis.
//!
//! Divergence kept on purpose: a monitor running MULTI/EXEC itself gets its
//! own lines for the queued commands after EXEC's reply, where Redis writes
//! them inside it.

use std::sync::Arc;
use std::time::SystemTime;

use super::args::Args;
use super::context::{ConnState, Ctx, ReplyMode};
use super::error::{CmdError, CmdResult};
use super::table::CommandDef;
use crate::clients::ClientShared;
use crate::monitor::{line, Origin};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::Mail;

pub fn monitor(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    if ctx.conn.tx.running {
        return Err(CmdError::Static(
            "ERR MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    // Already monitoring: Redis ignores it, without a reply.
    if ctx.conn.monitor {
        return Ok(());
    }
    ctx.state.monitors.add(ctx.conn.client.id, ctx.thread.index);
    ctx.conn.monitor = true;
    ctx.out.ok();
    Ok(())
}

/// The connection stops monitoring (RESET).
pub fn stop(ctx: &mut Ctx<'_>) {
    if ctx.conn.monitor {
        ctx.state.monitors.remove(ctx.conn.client.id);
        ctx.conn.monitor = false;
        ctx.conn.monitor_attached = false;
    }
}

/// Redis's refusal of a command that touches the keyspace (or may be
/// replicated) on a monitor, which Redis treats as a replica.
pub fn refuse_keyspace(conn: &ConnState, def: &CommandDef) -> Option<CmdError> {
    // The cheap test first: it runs for every command.
    let touches = || {
        def.has_flag("readonly")
            || def.has_flag("write")
            || matches!(def.name, "publish" | "spublish")
    };
    (conn.monitor && touches()).then_some(CmdError::Static(
        "ERR Replica can't interact with the keyspace",
    ))
}

/// Whether monitors see `def` at all.
fn shown(def: &CommandDef) -> bool {
    !def.has_flag("admin") && !def.has_flag("skip_monitor")
}

/// Whether a monitor's own line follows its reply: not with CLIENT REPLY
/// OFF, nor for the command CLIENT REPLY SKIP skips (`mode` is the mode
/// after the handler ran, before the reply was dropped).
pub fn own_line_shown(mode: ReplyMode) -> bool {
    matches!(mode, ReplyMode::On | ReplyMode::Skip)
}

/// Sends the line of a command that ran to every monitor: mailed to each
/// thread serving one; written into `own` (after the reply) when the
/// connection that ran it monitors and shows it. Called only while
/// someone monitors.
pub fn feed(
    state: &ServerState,
    thread: &ThreadCtx,
    conn: &ConnState,
    def: &CommandDef,
    args: Args<'_>,
    own: Option<&mut Vec<u8>>,
) {
    let client = &conn.client;
    let origin = Origin::Client {
        peer: &client.peer,
        local: &client.local,
    };
    let Some(text) = line_of(origin, conn.db, def, args) else {
        return;
    };
    if conn.monitor {
        if let Some(out) = own {
            out.extend_from_slice(&text);
        }
    }
    send(state, thread, client.id, text);
}

/// A request that reached the server another way (an RPC operation, as
/// the Redis command that does the same): its line, from `client`.
pub fn feed_line(state: &ServerState, thread: &ThreadCtx, client: &ClientShared, args: &[&[u8]]) {
    let origin = Origin::Client {
        peer: &client.peer,
        local: &client.local,
    };
    let text = line(SystemTime::now(), 0, origin, args.iter().copied());
    send(state, thread, client.id, text);
}

/// A command a script ran (`redis.call`): its line says "lua", as Redis's.
pub fn feed_script(
    state: &ServerState,
    thread: &ThreadCtx,
    client: u64,
    db: u8,
    def: &CommandDef,
    args: Args<'_>,
) {
    if let Some(text) = line_of(Origin::Script, db, def, args) {
        send(state, thread, client, text);
    }
}

/// The MONITOR line of a command run in database `db`, if monitors are
/// shown it.
fn line_of(origin: Origin<'_>, db: u8, def: &CommandDef, args: Args<'_>) -> Option<Vec<u8>> {
    // Scripts are `skip_monitor`, yet shown: Redis feeds their line itself
    // before they run (dispatch does here), then the lines of what they run.
    if !shown(def) && !def.has_flag("movablekeys") {
        return None;
    }
    let hidden = redacted(def.name, args);
    let shown_args = (0..args.len()).map(|i| {
        if hidden.contains(&i) {
            &b"(redacted)"[..]
        } else {
            args.get(i)
        }
    });
    Some(line(SystemTime::now(), db.into(), origin, shown_args))
}

/// Mails a line to every thread serving a monitor (but `client`'s own).
fn send(state: &ServerState, thread: &ThreadCtx, client: u64, text: Vec<u8>) {
    let receivers = state.monitors.receivers(client);
    if receivers.is_empty() {
        return;
    }
    let text: Arc<[u8]> = text.into();
    for (to, monitors) in receivers {
        let mail = Mail::Monitor {
            line: text.clone(),
            monitors,
        };
        thread.inboxes.send(to, mail);
    }
}

/// EXEC ran its queue: each command's line, in queue order (EXEC's own
/// follows from `observe::after`, as Redis orders them).
pub fn feed_queue(ctx: &mut Ctx<'_>, tx: &super::queue::TxState) {
    if !ctx.state.monitors.active() {
        return;
    }
    for i in 0..tx.len() {
        let (_, def, args) = tx.command(i);
        feed(
            ctx.state,
            ctx.thread,
            ctx.conn,
            def,
            args,
            Some(&mut *ctx.out.buf),
        );
    }
}

/// The arguments Redis replaces with "(redacted)" in the slow log and for
/// MONITOR, as its handlers mark them: AUTH's (unless it has too many
/// arguments), HELLO's AUTH pair (once the protocol version parsed, up to
/// the first bad option), CONFIG SET requirepass's value, MIGRATE's AUTH
/// and AUTH2 values.
pub fn redacted(command: &str, args: Args<'_>) -> Vec<usize> {
    let mut hidden = Vec::new();
    match command {
        "auth" if args.len() <= 3 => hidden.extend(1..args.len()),
        "hello" => {
            let version_ok = args.len() < 2 || args.int(1).is_ok_and(|v| (2..=3).contains(&v));
            let mut j = 2;
            while version_ok && j < args.len() {
                let more = args.len() - 1 - j;
                let opt = args.get(j);
                if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
                    hidden.extend([j + 1, j + 2]);
                    j += 3;
                } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
                    j += 2;
                } else {
                    break;
                }
            }
        }
        "migrate" => hidden = super::migrate::secret_args(args),
        "config|set" => {
            for i in (2..args.len()).step_by(2) {
                if args.get(i).eq_ignore_ascii_case(b"requirepass") && i + 1 < args.len() {
                    hidden.push(i + 1);
                }
            }
        }
        _ => {}
    }
    hidden
}
