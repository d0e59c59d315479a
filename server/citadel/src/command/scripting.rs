//! Lua scripting commands: EVAL EVALSHA EVAL_RO EVALSHA_RO and SCRIPT
//! LOAD|EXISTS|FLUSH|KILL|HELP, over this thread's script engine.
//!
//! The engine (`crate::script::Engine`, one Lua state) is owned by the
//! command layer, one per server thread in a thread-local created on the
//! thread's first script; it is taken out while a script runs, so the
//! script's `redis.call` can borrow the command context
//! (`script_host::call`).

use std::cell::Cell;
use std::ops::Range;
use std::sync::Arc;

use citadel_resp::Reply;

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::script_host::CtxHost;
use super::table::{keyless, CommandDef};
use crate::script::{sha1_hex, CallArgs, Engine, Invocation, Store};

thread_local! {
    /// Boxed: taking it out and putting it back per run moves a pointer,
    /// not the whole engine.
    static ENGINE: Cell<Option<Box<Engine>>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's engine (created on first use).
pub(super) fn with_engine<R>(
    ctx: &mut Ctx<'_>,
    f: impl FnOnce(&mut Engine, &mut Ctx<'_>) -> R,
) -> Result<R, CmdError> {
    let mut engine = match ENGINE.take() {
        Some(e) => e,
        None => {
            let slot = ctx.state.scripts.busy.slot(ctx.thread.index);
            let (state, watched) = (ctx.state.clone(), slot.clone());
            // At each hook check: a stalled core's door (one thread), and
            // whether the server shuts down.
            let watch = move || {
                super::busy_door::serve(&state, &watched);
                state.shutdown.is_requested()
            };
            Engine::new(slot, Arc::new(watch), super::connection::REDIS_VERSION)
                .map(Box::new)
                .map_err(|e| CmdError::Text(format!("ERR could not start the Lua engine: {e}")))?
        }
    };
    let r = f(&mut engine, ctx);
    ENGINE.set(Some(engine));
    Ok(r)
}

/// The keys of EVAL / EVALSHA / FCALL (and their _RO forms): arguments
/// `3 .. 3 + numkeys` (numkeys is argument 2), checked as Redis does.
pub fn script_keys(args: Args<'_>) -> Result<Range<usize>, CmdError> {
    let n = args.int(2)?;
    if n < 0 {
        return Err(CmdError::Static("ERR Number of keys can't be negative"));
    }
    if n as u64 > (args.len() - 3) as u64 {
        return Err(CmdError::Static(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(3..3 + n as usize)
}

/// The keys of EVAL / FCALL and their forms (their `KeyFinder`).
pub fn for_each_script_key<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    if let Ok(range) = script_keys(args) {
        range.for_each(|i| f(args.get(i)));
    }
}

/// What a script or function is run with: the command line as parsed,
/// its KEYS checked as Redis does (`script_keys`).
pub(super) fn invocation<'a>(
    ctx: &Ctx<'_>,
    args: Args<'a>,
    ro: bool,
) -> Result<Invocation<'a>, CmdError> {
    let keys = script_keys(args)?;
    let (buf, spans) = args.parts();
    Ok(Invocation {
        command: CallArgs { buf, spans },
        keys,
        ro_command: ro,
        out_limit: ctx.state.limits.client_output_limit,
    })
}

/// Runs `f` with `keys` as a list of slices (on the stack when few).
fn with_key_list<R>(keys: CallArgs<'_>, f: impl FnOnce(&[&[u8]]) -> R) -> R {
    const INLINE: usize = 8;
    if keys.len() <= INLINE {
        let mut list: [&[u8]; INLINE] = [&[]; INLINE];
        for (slot, key) in list.iter_mut().zip(keys.iter()) {
            *slot = key;
        }
        f(&list[..keys.len()])
    } else {
        f(&keys.iter().collect::<Vec<_>>())
    }
}

thread_local! {
    /// A script's reply while its transaction may still run it again;
    /// reused from run to run (runs never nest).
    static REPLY: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A reply buffer kept for the next run only up to this size.
const KEEP_REPLY: usize = 64 << 10;

/// Runs a script or function through `run`, its reply into `ctx.out`.
pub(super) fn run_script(
    ctx: &mut Ctx<'_>,
    inv: &Invocation<'_>,
    what: &str,
    mut run: impl FnMut(&mut Engine, &Store, &Invocation<'_>, &mut Reply<'_>, &mut CtxHost<'_, '_>),
) -> CmdResult {
    let state = ctx.state;
    let store = &state.scripts;
    let resp3 = ctx.conn.resp3;
    let mut took_ms = 0;
    let mut buf = REPLY.take();
    // Atomic like a transaction over its KEYS (see `transaction.rs`): run
    // on a snapshot, publish every write at once, run again on a conflict.
    // Inside MULTI/EXEC the EXEC's transaction (which declared these keys)
    // is the one.
    let own = !ctx.thread.cache.in_txn();
    let logged = ctx.thread.nested_calls.mark();
    let mut attempt = 0u32;
    let mut hold = super::write_hold::WriteHold::none();
    // A SELECT in the script changes the script's database only (Redis 7).
    let caller_db = ctx.conn.db;
    let ran = loop {
        buf.clear();
        ctx.thread.nested_calls.retry_from(logged);
        if ctx.conn.db != caller_db {
            super::databases::use_db(ctx, caller_db);
        }
        if own {
            let cache = &mut ctx.thread.cache;
            with_key_list(inv.keys(), |keys| cache.txn_begin(keys));
        }
        let ran = with_engine(ctx, |engine, ctx| {
            let mut out = Reply::new(&mut buf, resp3);
            run(engine, store, inv, &mut out, &mut CtxHost { ctx });
            took_ms += engine.take_run_ms();
        });
        if let Err(e) = ran {
            if own {
                ctx.thread.cache.txn_abort();
                ctx.thread.drop_attempt_effects();
            }
            ctx.thread.nested_calls.retry_from(logged);
            break Err(e);
        }
        if !own {
            // The EXEC around it counts its commands when it publishes.
            break Ok(());
        }
        let committed = ctx.thread.cache.txn_commit();
        if committed == Ok(true) {
            ctx.thread.release_held_mail(state.forwarder.get());
            super::nested_calls::count_from(ctx.thread, logged);
            break Ok(());
        }
        ctx.thread.drop_attempt_effects();
        if let Err(full) = committed {
            // No room for a new key under the policy: nothing published.
            ctx.thread.nested_calls.retry_from(logged);
            break Err(full.into());
        }
        ctx.thread.stats.script_retried();
        attempt += 1;
        hold.after_conflict(ctx, attempt);
        if attempt > 8 {
            std::thread::yield_now();
        }
    };
    drop(hold);
    if ctx.conn.db != caller_db {
        super::databases::use_db(ctx, caller_db);
    }
    if ran.is_ok() {
        ctx.out.buf.extend_from_slice(&buf);
    }
    if buf.capacity() <= KEEP_REPLY {
        REPLY.set(buf);
    }
    ran?;
    // A run within one tick of the coarse clock ran past nothing (and
    // needs no read of the settings).
    if took_ms > 0 {
        let busy = state
            .settings
            .get(&citadel_settings::server::BUSY_SCRIPT_TIME);
        if took_ms >= busy {
            tracing::warn!(
                script = what,
                ms = took_ms,
                "a slow script ran past busy-script-time"
            );
        }
    }
    Ok(())
}

fn eval_common(ctx: &mut Ctx<'_>, args: Args<'_>, by_sha: bool, ro: bool) -> CmdResult {
    let inv = invocation(ctx, args, ro)?;
    let mut lower = [0u8; 40];
    let sha: std::borrow::Cow<'_, str> = if by_sha {
        let given = args.get(1);
        let hex = (given.len() == 40)
            .then(|| {
                lower.copy_from_slice(given);
                lower.make_ascii_lowercase();
                // SAFETY: ASCII is UTF-8 (a word-wide check, cheaper than
                // `from_utf8`'s validation of every EVALSHA's digest).
                lower
                    .is_ascii()
                    .then(|| unsafe { std::str::from_utf8_unchecked(&lower) })
            })
            .flatten();
        let Some(hex) = hex else {
            return Err(CmdError::Static(
                "NOSCRIPT No matching script. Please use EVAL.",
            ));
        };
        hex.into()
    } else {
        let body = args.get(1);
        let sha = sha1_hex(body);
        let state = ctx.state;
        with_engine(ctx, |engine, _| engine.compile(&state.scripts, &sha, body))?
            .map_err(CmdError::Text)?;
        state.scripts.add_script(&sha, body);
        sha.into()
    };
    run_script(ctx, &inv, &sha, |engine, store, inv, out, host| {
        engine.eval(store, &sha, inv, out, host)
    })
}

pub fn eval(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_common(ctx, args, false, false)
}

pub fn evalsha(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_common(ctx, args, true, false)
}

pub fn eval_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_common(ctx, args, false, true)
}

pub fn evalsha_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_common(ctx, args, true, true)
}

const SC: &str = "scripting";

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    keyless("script|load", 3, &["noscript", "stale"], SC, "2.6.0", "Loads a server-side Lua script to the script cache.", load),
    keyless("script|exists", -3, &["noscript"], SC, "2.6.0", "Determines whether server-side Lua scripts exist in the script cache.", exists),
    keyless("script|flush", -2, &["noscript"], SC, "2.6.0", "Removes all server-side Lua scripts from the script cache.", flush),
    keyless("script|kill", 2, &["noscript", "allow_busy"], SC, "2.6.0", "Terminates a server-side Lua script during execution.", kill),
    keyless("script|debug", 3, &["noscript"], SC, "3.2.0", "Sets the debug mode of server-side Lua scripts.", debug),
    keyless("script|help", 2, &["loading", "stale"], SC, "5.0.0", "Returns helpful text about the different subcommands.", help),
];

fn load(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let body = args.get(2);
    let sha = sha1_hex(body);
    let store = ctx.state.scripts.clone();
    with_engine(ctx, |engine, _| engine.compile(&store, &sha, body))?.map_err(CmdError::Text)?;
    store.add_script(&sha, body);
    ctx.out.bulk(sha.as_bytes());
    Ok(())
}

fn exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let shas = args.from(2);
    ctx.out.array(shas.len());
    for sha in shas.iter() {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        let known = ctx.state.scripts.script(&sha).is_some();
        ctx.out.int(known as i64);
    }
    Ok(())
}

fn flush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if !args.is_flush_mode(2) {
        return Err(CmdError::Static(
            "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
        ));
    }
    ctx.state.scripts.flush_scripts();
    ctx.out.ok();
    Ok(())
}

fn kill(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    kill_running(ctx, true)
}

/// SCRIPT KILL (`eval`) / FUNCTION KILL.
pub(super) fn kill_running(ctx: &mut Ctx<'_>, eval: bool) -> CmdResult {
    let threshold = ctx
        .state
        .settings
        .get(&citadel_settings::server::BUSY_SCRIPT_TIME);
    match ctx.state.scripts.busy.kill(eval, threshold) {
        Ok(()) => {
            ctx.out.ok();
            Ok(())
        }
        Err(e) => Err(CmdError::Static(e.text())),
    }
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "HELP",
            "    Print this help.",
        ],
    );
    Ok(())
}

/// SCRIPT DEBUG YES|SYNC|NO: there is no Lua debugger; NO (debugging
/// off) is what every connection has.
fn debug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.is(2, "no") {
        ctx.out.ok();
        Ok(())
    } else if args.is(2, "yes") || args.is(2, "sync") {
        Err(CmdError::Static(
            "ERR SCRIPT DEBUG is not supported: Citadel has no Lua debugger (SCRIPT DEBUG NO is accepted)",
        ))
    } else {
        Err(CmdError::Static("ERR Use SCRIPT DEBUG YES/SYNC/NO"))
    }
}
