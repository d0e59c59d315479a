//! The blocking commands' side of `crate::blocking`: a handler tries to
//! serve; when it cannot, `block` registers the client on its keys (once),
//! looks once more, and parks the connection with the command unconsumed
//! (`Pending::Blocked`). Woken by a write to a key or by its timeout, the
//! command runs again from the start: `begin` answers whether its time is
//! up, `may_serve` keeps Redis's order (the first blocked is served
//! first), `served` releases the registration and passes the turn on.
//! Inside MULTI/EXEC and scripts nothing blocks: an empty key answers at
//! once, as in Redis.
//!
//! The registry's keys are a database's keys: a key of database 0 as it
//! is, another database's key prefixed with its number (`blocked_key`), so
//! a push wakes only the clients blocked in its own database. Logical
//! numbers, not namespaces: SWAPDB wakes every blocked client to look again.

use std::borrow::Cow;

use citadel_cache::ValueKind;
use citadel_resp::num;

use super::args::Args;
use super::context::{Ctx, Pending};
use super::error::{CmdError, CmdResult};
use super::table::CommandDef;
use crate::blocking::BlockState;
use crate::clients::Unblock;
use crate::state::ServerState;
use crate::thread::ThreadCtx;

/// A blocking command's timeout argument: seconds, fractions allowed, 0
/// for no timeout. Returns the timeout in ms (None: forever).
pub fn parse_timeout(arg: &[u8]) -> Result<Option<u64>, CmdError> {
    let secs = num::parse_f64(arg)
        .filter(|s| s.is_finite())
        .ok_or(CmdError::Static(
            "ERR timeout is not a float or out of range",
        ))?;
    if secs < 0.0 {
        return Err(CmdError::Static("ERR timeout is negative"));
    }
    let ms = (secs * 1000.0).ceil();
    if ms > (i64::MAX / 2) as f64 {
        return Err(CmdError::Static("ERR timeout is out of range"));
    }
    Ok((ms > 0.0).then_some(ms as u64))
}

/// Whether this run of a blocking command comes after its timeout: then
/// the client is released and the command answers its timeout reply.
pub fn timed_out(ctx: &mut Ctx<'_>) -> bool {
    let passed = match &ctx.conn.blocked {
        Some(b) => b.timed_out(citadel_cache::unix_millis()),
        None => false,
    };
    if passed {
        release(ctx);
    }
    passed
}

/// Before a blocked command runs again: applies a CLIENT UNBLOCK request.
/// TIMEOUT makes its timeout pass (the command answers as timed out);
/// ERROR releases the client and returns true: the caller answers
/// `-UNBLOCKED` instead of running the command.
pub fn unblocked_with_error(state: &ServerState, conn: &mut super::context::ConnState) -> bool {
    match conn.client.take_unblock() {
        Unblock::None => false,
        Unblock::Timeout => {
            if let Some(b) = conn.blocked.as_mut() {
                b.expire_now();
            }
            false
        }
        Unblock::Error => {
            if let Some(b) = conn.blocked.take() {
                b.release(&state.blocked, conn.client.id);
            }
            true
        }
    }
}

/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]: 1 if the client was blocked
/// on keys (it is woken and answers as its timeout, or with an error), else 0.
pub fn client_unblock(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let id = num::parse_i64(args.get(2)).ok_or(CmdError::Static(
        "ERR value is not an integer or out of range",
    ))?;
    let how = match args.len() {
        3 => Unblock::Timeout,
        4 if args.get(3).eq_ignore_ascii_case(b"timeout") => Unblock::Timeout,
        4 if args.get(3).eq_ignore_ascii_case(b"error") => Unblock::Error,
        4 => {
            return Err(CmdError::Static(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
        _ => {
            return Err(CmdError::quoting(
                "ERR unknown subcommand or wrong number of arguments for '",
                args.get(1),
                "'. Try CLIENT HELP.",
            ))
        }
    };
    let target = u64::try_from(id).ok().and_then(|id| {
        let thread = ctx.state.blocked.thread_of(id)?;
        Some((ctx.state.clients.get(id)?, thread))
    });
    let Some((client, thread)) = target else {
        ctx.out.int(0);
        return Ok(());
    };
    client.request_unblock(how);
    ctx.state
        .blocked
        .wake(client.id, thread, &ctx.thread.inboxes);
    ctx.out.int(1);
    Ok(())
}

/// Whether this client may take from `key` now (nobody waits for it, or
/// this client is first in line).
pub fn may_serve(ctx: &Ctx<'_>, key: &[u8]) -> bool {
    let key = blocked_key(ctx.conn.db, key);
    ctx.state.blocked.may_serve(ctx.conn.client.id, &key)
}

/// `may_serve` for a pop waiting for a `kind` key: once blocked, a key
/// that now holds another type is passed over (the client stays blocked,
/// as Redis leaves a woken client whose key became, say, a string), where
/// the first try answers WRONGTYPE.
pub fn may_serve_kind(ctx: &mut Ctx<'_>, key: &[u8], kind: ValueKind) -> bool {
    if !may_serve(ctx, key) {
        return false;
    }
    ctx.conn.blocked.is_none()
        || ctx
            .thread
            .cache
            .peek(key, |item| item.kind())
            .is_none_or(|held| held == kind)
}

/// The registry's name of `key` of database `db` (module comment).
#[inline]
fn blocked_key(db: u8, key: &[u8]) -> Cow<'_, [u8]> {
    if !citadel_cache::namespace::needs_prefix(db, key) {
        return Cow::Borrowed(key);
    }
    let mut named = Vec::with_capacity(key.len() + citadel_cache::namespace::PREFIX_LEN);
    citadel_cache::namespace::append_stored(db, key, &mut named);
    Cow::Owned(named)
}

/// The command took from `key`; `left`: the key still has elements, so
/// the next client in line looks too.
pub fn served(ctx: &mut Ctx<'_>, key: &[u8], left: bool) {
    release(ctx);
    if left {
        let key = blocked_key(ctx.conn.db, key);
        ctx.state.blocked.signal([&key[..]], &ctx.thread.inboxes);
    }
}

/// A blocked command failed when it ran again (BLMOVE whose destination
/// became a string: WRONGTYPE, as Redis answers it): the client leaves its
/// keys' lines, and the next client in each line looks in its place, since
/// what woke this one is still there.
pub fn failed(ctx: &mut Ctx<'_>) {
    if let Some(b) = ctx.conn.blocked.take() {
        b.release_passing_on(&ctx.state.blocked, ctx.conn.client.id, &ctx.thread.inboxes);
    }
}

fn release(ctx: &mut Ctx<'_>) {
    if let Some(b) = ctx.conn.blocked.take() {
        b.release(&ctx.state.blocked, ctx.conn.client.id);
    }
}

/// Whether this command may block at all (not inside MULTI/EXEC or a
/// script, which answer at once).
pub fn may_block(ctx: &Ctx<'_>) -> bool {
    !ctx.thread.cache.in_txn() && !ctx.conn.cannot_wait
}

/// Nothing to take from `keys`: waits for them. The first time, the
/// client joins the keys' lines and `retry` looks once more (a write that
/// committed before the registration was seen finds no one to wake);
/// `retry` returns whether it served the command. `timeout_ms`: None waits
/// forever.
pub fn block<'k>(
    ctx: &mut Ctx<'_>,
    keys: impl IntoIterator<Item = &'k [u8]>,
    timeout_ms: Option<u64>,
    retry: impl FnOnce(&mut Ctx<'_>) -> Result<bool, CmdError>,
) -> CmdResult {
    let client = ctx.conn.client.id;
    if ctx.conn.blocked.is_none() {
        let db = ctx.conn.db;
        let keys: Vec<Box<[u8]>> = keys
            .into_iter()
            .map(|key| Box::from(blocked_key(db, key).as_ref()))
            .collect();
        let blocked = &ctx.state.blocked;
        blocked.block(client, ctx.thread.index, keys.iter().map(|k| &k[..]));
        blocked.fence_after_block();
        let deadline_ms = timeout_ms.map(|ms| citadel_cache::unix_millis().saturating_add(ms));
        if let Some(at) = deadline_ms {
            ctx.thread.block_deadlines.push((client, at));
        }
        ctx.conn.blocked = Some(BlockState::new(keys, deadline_ms));
        if retry(ctx)? {
            return Ok(());
        }
    }
    ctx.conn.pending = Some(Pending::Blocked { client });
    Ok(())
}

/// Whether a successful run of `def` may give a blocked client what it
/// waits for (a push, a ZADD, a RENAME onto its key ...).
#[inline(always)]
fn may_feed_blocked(def: &CommandDef) -> bool {
    // The group first: it rules out the hot string commands at once.
    matches!(def.group, "list" | "sorted-set" | "stream" | "generic") && def.has_flag("write")
}

/// Notes the keys `def` wrote (its handler succeeded), to be signalled
/// once the whole command (an EXEC, a script) committed. Every command
/// that succeeds passes here: the group test is inlined into the caller,
/// the key walk is not, and is skipped while nobody is blocked.
#[inline(always)]
pub fn note_written(
    state: &ServerState,
    thread: &mut ThreadCtx,
    db: u8,
    def: &CommandDef,
    args: Args<'_>,
) {
    if may_feed_blocked(def) && (thread.cache.in_txn() || state.blocked.any_after_write()) {
        note_keys(thread, db, def, args);
    }
}

#[inline(never)]
fn note_keys(thread: &mut ThreadCtx, db: u8, def: &CommandDef, args: Args<'_>) {
    def.for_each_key(args, |key| thread.written_keys.push(&blocked_key(db, key)));
}

/// After a command: wakes the clients blocked on the keys it wrote.
pub fn signal_written(state: &ServerState, thread: &mut ThreadCtx) {
    if thread.written_keys.is_empty() {
        return;
    }
    state
        .blocked
        .signal(thread.written_keys.iter(), &thread.inboxes);
    thread.written_keys.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_redis_does() {
        assert_eq!(parse_timeout(b"0"), Ok(None));
        assert_eq!(parse_timeout(b"1.5"), Ok(Some(1500)));
        assert_eq!(parse_timeout(b"0.0001"), Ok(Some(1)));
        assert!(parse_timeout(b"-1").is_err());
        assert!(parse_timeout(b"abc").is_err());
        assert!(parse_timeout(b"inf").is_err());
    }
}
