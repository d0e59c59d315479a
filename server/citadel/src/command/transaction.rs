//! MULTI / EXEC / DISCARD / WATCH / UNWATCH (Redis 7 semantics).
//!
//! Queuing happens in `dispatch` (every command but these and QUIT/RESET is
//! queued while `in_multi`; one refused there marks the transaction dirty).
//! EXEC runs the queue as one cache transaction over every key the queued
//! commands name plus the watched keys (`citadel_cache::CacheHandle::
//! txn_begin`): each command sees the earlier ones' writes, nobody else
//! sees any of them before all are published, and a conflicting writer on
//! another core makes the whole queue run again on a fresh snapshot
//! (commands have no effect outside the cache until then). Commands that
//! name no key (PING, PUBLISH, INFO, CONFIG ...) run right after the
//! publication, their replies in place. A queue with a keyspace-wide
//! command (KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHALL, FLUSHDB), which no
//! set of bucket locks can isolate, runs command by command while every
//! other server thread waits outside its loop turn (`crate::gate`): no
//! other client's command runs in between, as in Redis. If another thread
//! stays busy past busy-script-time (a looping script), EXEC answers
//! -BUSY and runs nothing.

use std::cell::Cell;

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::nested_calls;
use super::table::CommandDef;
use crate::clients::ClientMode;

/// Conflicting EXECs back off (yield) after this many immediate retries.
const SPIN_RETRIES: u32 = 8;

pub fn multi(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    if ctx.conn.tx.in_multi {
        return Err(CmdError::Static("ERR MULTI calls can not be nested"));
    }
    ctx.conn.tx.in_multi = true;
    ctx.conn.client.set_mode(ClientMode::Multi, true);
    ctx.out.ok();
    Ok(())
}

pub fn discard(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    if !ctx.conn.tx.in_multi {
        return Err(CmdError::Static("ERR DISCARD without MULTI"));
    }
    ctx.conn.tx.discard();
    ctx.conn.client.set_mode(ClientMode::Multi, false);
    ctx.conn.tx.unwatch();
    ctx.out.ok();
    Ok(())
}

pub fn watch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.conn.tx.in_multi {
        return Err(CmdError::Static("ERR WATCH inside MULTI is not allowed"));
    }
    for key in args.from(1).iter() {
        let cache = &mut ctx.thread.cache;
        let watch = cache.watch(key);
        let expire_at = cache.peek(key, |item| item.expire_at()).flatten();
        ctx.conn.tx.watch(key, watch, expire_at);
    }
    ctx.out.ok();
    Ok(())
}

pub fn unwatch(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.conn.tx.unwatch();
    ctx.out.ok();
    Ok(())
}

pub fn exec(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    if !ctx.conn.tx.in_multi {
        return Err(CmdError::Static("ERR EXEC without MULTI"));
    }
    // The queue leaves the connection while it runs (its commands get the
    // connection); the buffers come back emptied, for reuse.
    let mut tx = std::mem::take(&mut ctx.conn.tx);
    ctx.conn.tx.running = true;
    // Cluster mode: the whole queue must be served here (Redis discards
    // the transaction and redirects).
    let routed = match ctx.thread.cluster.as_mut() {
        Some(view) if !tx.dirty => super::redirect::check_queue(view, &tx),
        _ => Ok(()),
    };
    // Proxy mode: a queue on another node's slot runs there, whole
    // (not with WATCH: the watched keys are this connection's).
    let routed = match routed {
        Err(CmdError::Moved { addr, .. })
            if super::proxy::enabled(ctx.state)
                && !ctx.conn.no_proxy
                && tx.watched_keys().next().is_none() =>
        {
            super::proxy::forward_exec(ctx, &tx, addr);
            Ok(())
        }
        other => other,
    };
    let forwarded = ctx.conn.pending.is_some();
    let result = if tx.dirty {
        Err(CmdError::Static(
            "EXECABORT Transaction discarded because of previous errors.",
        ))
    } else {
        routed.and_then(|()| if forwarded { Ok(false) } else { run(ctx, &tx) })
    };
    ctx.conn.tx.running = false;
    if matches!(result, Ok(true)) {
        // What ran, in queue order, before EXEC's own line.
        super::monitor::feed_queue(ctx, &tx);
        if ctx.conn.tracking.is_some() {
            super::tracking::remember_queue(ctx, &tx);
        }
    }
    tx.discard();
    ctx.conn.client.set_mode(ClientMode::Multi, false);
    tx.unwatch();
    ctx.conn.tx = tx;
    result.map(|_| ())
}

/// Commands that read or change the whole keyspace, or change the
/// database the commands after them use: a queue holding one runs command
/// by command, in order (see the module comment).
fn keyspace_wide(def: &CommandDef) -> bool {
    matches!(
        def.name,
        "keys" | "scan" | "randomkey" | "dbsize" | "flushall" | "flushdb" | "select" | "swapdb"
    )
}

/// EXEC's working lists, kept per thread for the next EXEC: a steady
/// stream of MULTI/EXEC allocates none of them once warm.
#[derive(Default)]
struct Scratch {
    /// The declared keys; always empty here (so `'static` is only the
    /// type a borrowed list is kept under, see `keep`).
    keys: Vec<&'static [u8]>,
    /// Per queued command: it names no key (runs after the publication).
    keyless: Vec<bool>,
    /// The keyless commands' places: (queue index, reply offset).
    deferred: Vec<(usize, usize)>,
}

thread_local! {
    /// Taken while an EXEC runs (EXECs never nest; one would start empty).
    static SCRATCH: Cell<Scratch> = Cell::default();
}

/// A list longer than this is freed after its EXEC, not kept.
const KEEP_ITEMS: usize = 1024;

impl Scratch {
    /// Keeps the lists' allocations for the next EXEC.
    fn keep(mut keys: Vec<&[u8]>, mut keyless: Vec<bool>, mut deferred: Vec<(usize, usize)>) {
        keys.clear();
        keyless.clear();
        deferred.clear();
        if keys.capacity() > KEEP_ITEMS || keyless.capacity() > KEEP_ITEMS {
            return;
        }
        // The empty list's allocation under the `'static` element type:
        // an in-place collect (same layout), no element is converted.
        let keys = keys.into_iter().map(|_| &[][..]).collect();
        SCRATCH.set(Scratch {
            keys,
            keyless,
            deferred,
        });
    }
}

/// Runs the queue; false when a watched key changed (nothing ran).
fn run(ctx: &mut Ctx<'_>, tx: &super::queue::TxState) -> Result<bool, CmdError> {
    let Scratch {
        keys,
        mut keyless,
        mut deferred,
    } = SCRATCH.take();
    // Covariant: the kept (empty) list holds the queue's borrowed keys.
    let mut keys: Vec<&[u8]> = keys;
    let ran = run_with(ctx, tx, &mut keys, &mut keyless, &mut deferred);
    Scratch::keep(keys, keyless, deferred);
    ran
}

fn run_with<'t>(
    ctx: &mut Ctx<'_>,
    tx: &'t super::queue::TxState,
    keys: &mut Vec<&'t [u8]>,
    keyless: &mut Vec<bool>,
    deferred: &mut Vec<(usize, usize)>,
) -> Result<bool, CmdError> {
    let now = ctx.thread.cache.now_ms();
    if tx.watched_key_expired(now) {
        ctx.thread.stats.exec_done(0, true);
        ctx.out.null_array();
        return Ok(false);
    }
    keys.extend(tx.watched_keys());
    let watched = keys.len();
    let mut sequential = false;
    // Commands that name no key are kept out of the atomic part.
    for i in 0..tx.len() {
        let (_, def, args) = tx.command(i);
        sequential |= keyspace_wide(def);
        let before = keys.len();
        def.keys_of(args, keys);
        // A script may name keys it did not declare: it runs inside.
        keyless.push(keys.len() == before && !def.has_flag("movablekeys"));
    }
    if sequential {
        return run_alone(ctx, tx, &keys[..watched]);
    }
    let mark = ctx.out.buf.len();
    let logged = ctx.thread.nested_calls.mark();
    let mut attempt = 0u32;
    // Released when the EXEC is done, whichever way.
    let mut hold = super::write_hold::WriteHold::none();
    loop {
        ctx.thread.nested_calls.retry_from(logged);
        ctx.thread.cache.txn_begin(keys);
        if !ctx.thread.cache.txn_watches_hold(tx.watches()) {
            ctx.thread.cache.txn_abort();
            ctx.thread.stats.exec_done(attempt, true);
            ctx.out.buf.truncate(mark);
            ctx.out.null_array();
            return Ok(false);
        }
        ctx.out.array(tx.len());
        deferred.clear();
        let mut since = nested_calls::monotonic_nanos();
        for (i, &keyless) in keyless.iter().enumerate() {
            if keyless {
                deferred.push((i, ctx.out.buf.len()));
                continue;
            }
            nested_calls::run_logged(ctx, tx.command(i), &mut since);
        }
        let committed = ctx.thread.cache.txn_commit();
        if committed == Ok(true) {
            ctx.thread.release_held_mail(ctx.state.forwarder.get());
            break;
        }
        ctx.thread.drop_attempt_effects();
        ctx.out.buf.truncate(mark);
        if let Err(full) = committed {
            // The policy protects every index slot a new key could take:
            // nothing ran, and Redis refuses such an EXEC with -OOM too.
            ctx.thread.nested_calls.retry_from(logged);
            ctx.thread.stats.exec_done(attempt, false);
            return Err(full.into());
        }
        attempt += 1;
        hold.after_conflict(ctx, attempt);
        if attempt > SPIN_RETRIES {
            std::thread::yield_now();
        }
    }
    ctx.thread.stats.exec_done(attempt, false);
    run_deferred(ctx, tx, deferred);
    nested_calls::count_from(ctx.thread, logged);
    Ok(true)
}

/// Runs the keyless commands after the publication, splicing each reply in
/// at its place among the others.
fn run_deferred(ctx: &mut Ctx<'_>, tx: &super::queue::TxState, deferred: &[(usize, usize)]) {
    let Some(&(_, first)) = deferred.first() else {
        return;
    };
    let tail = ctx.out.buf.split_off(first);
    let mut since = nested_calls::monotonic_nanos();
    for (n, &(i, at)) in deferred.iter().enumerate() {
        nested_calls::run_logged(ctx, tx.command(i), &mut since);
        let end = deferred.get(n + 1).map_or(tail.len() + first, |&(_, e)| e);
        ctx.out
            .buf
            .extend_from_slice(&tail[at - first..end - first]);
    }
}

/// A queue with a keyspace-wide command runs while every other server
/// thread is outside its loop turn (`crate::gate`), so nothing else runs
/// in between: it waits for them up to busy-script-time, then gives up
/// with -BUSY and runs nothing.
fn run_alone(
    ctx: &mut Ctx<'_>,
    tx: &super::queue::TxState,
    watched: &[&[u8]],
) -> Result<bool, CmdError> {
    let state = ctx.state.clone();
    let patience = std::time::Duration::from_millis(
        state
            .settings
            .get(&citadel_settings::server::BUSY_SCRIPT_TIME),
    );
    state
        .gate
        .exclusive(ctx.thread.index, patience, || run_one_by_one(ctx, tx, watched))
        .unwrap_or(Err(CmdError::Static(
            "BUSY another core stayed busy (a long script?): the transaction's keyspace-wide command could not run alone; nothing ran",
        )))
}

/// The watches are checked, then the commands run one by one.
fn run_one_by_one(
    ctx: &mut Ctx<'_>,
    tx: &super::queue::TxState,
    watched: &[&[u8]],
) -> Result<bool, CmdError> {
    ctx.thread.cache.txn_begin(watched);
    let hold = ctx.thread.cache.txn_watches_hold(tx.watches());
    ctx.thread.cache.txn_abort();
    ctx.thread.stats.exec_done(0, !hold);
    if !hold {
        ctx.out.null_array();
        return Ok(false);
    }
    ctx.out.array(tx.len());
    let logged = ctx.thread.nested_calls.mark();
    let mut since = nested_calls::monotonic_nanos();
    for i in 0..tx.len() {
        nested_calls::run_logged(ctx, tx.command(i), &mut since);
    }
    nested_calls::count_from(ctx.thread, logged);
    Ok(true)
}
