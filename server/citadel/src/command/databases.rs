//! Redis's numbered databases: SELECT, SWAPDB, MOVE, DBSIZE, FLUSHDB and
//! FLUSHALL. A connection's database is a logical number (`ConnState::db`);
//! the cache keeps each database's keys in a physical namespace
//! (citadel_cache::namespace) and SWAPDB swaps two entries of the logical ->
//! physical table in the cache file's header, so it is O(1) and a restart
//! keeps it. The session sets the cache handle's namespace per command
//! (`namespace_of`); database 0, while unswapped, is namespace 0: its keys
//! are stored as they are and keep the GET/SET fast path.

use std::sync::atomic::Ordering;

use citadel_cache::namespace::{self, MAX_NAMESPACES};
use citadel_cache::{Cache, CacheHandle};

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use crate::state::ServerState;

/// How many databases there are (`databases`, not live).
pub fn count(state: &ServerState) -> usize {
    let n = state.settings.get(&citadel_settings::server::DATABASES);
    (n as usize).clamp(1, MAX_NAMESPACES)
}

/// The physical namespace of the connection's database `db`.
#[inline(always)]
pub fn namespace_of(cache: &Cache, db: u8) -> u8 {
    if db == 0 && cache.namespaces_identity() {
        return 0;
    }
    cache.namespace_of(usize::from(db))
}

/// The logical database whose keys are in namespace `ns` (keyspace events).
pub fn db_of_namespace(cache: &Cache, ns: u8) -> usize {
    if cache.namespaces_identity() {
        return usize::from(ns);
    }
    (0..MAX_NAMESPACES)
        .find(|&db| cache.namespace_of(db) == ns)
        .unwrap_or(usize::from(ns))
}

/// An `int` argument as Redis's `getIntFromObjectOrReply` reads it.
pub(super) fn int32(args: Args<'_>, i: usize) -> Result<i64, CmdError> {
    let n = args.int(i)?;
    if i32::try_from(n).is_err() {
        return Err(CmdError::Static(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    Ok(n)
}

/// A database index argument: Redis's integer errors, then its range error.
pub(super) fn parse_db(state: &ServerState, args: Args<'_>, i: usize) -> Result<u8, CmdError> {
    let db = int32(args, i)?;
    usize::try_from(db)
        .ok()
        .filter(|&db| db < count(state))
        .map(|db| db as u8)
        .ok_or(CmdError::DbIndex)
}

/// Makes `db` the connection's database (SELECT, RESET, a script's end).
pub fn use_db(ctx: &mut Ctx<'_>, db: u8) {
    ctx.conn.db = db;
    ctx.conn.client.db.store(db, Ordering::Relaxed);
    let ns = namespace_of(&ctx.state.cache, db);
    ctx.thread.cache.set_namespace(ns);
}

pub fn select(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let db = int32(args, 1)?;
    if ctx.thread.cluster.is_some() && db != 0 {
        return Err(CmdError::Static(
            "ERR SELECT is not allowed in cluster mode",
        ));
    }
    let db = parse_db(ctx.state, args, 1)?;
    use_db(ctx, db);
    ctx.out.ok();
    Ok(())
}

/// SWAPDB a b: the two databases trade keys in O(1). It runs while every
/// other core is outside its loop turn (the world gate), so no command
/// runs across the swap; clients blocked on keys are woken to look again,
/// as Redis re-checks them.
pub fn swapdb(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.thread.cluster.is_some() {
        return Err(CmdError::Static(
            "ERR SWAPDB is not allowed in cluster mode",
        ));
    }
    let index = |i: usize, error: &'static str| {
        args.int(i)
            .ok()
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or(CmdError::Static(error))
    };
    let a = index(1, "ERR invalid first DB index")?;
    let b = index(2, "ERR invalid second DB index")?;
    if ctx.thread.cache.in_txn() {
        // Its writes wait for the commit; the swap could not wait with them.
        return Err(CmdError::Static(
            "ERR SWAPDB inside a script is not supported",
        ));
    }
    let n = count(ctx.state) as i64;
    if !(0..n).contains(&a) || !(0..n).contains(&b) {
        return Err(CmdError::DbIndex);
    }
    let state = ctx.state.clone();
    if state.gate.held_by(ctx.thread.index) {
        // An EXEC running alone already holds it.
        state.cache.swap_namespaces(a as usize, b as usize);
    } else {
        swap_alone(ctx, a as usize, b as usize)?;
    }
    // This connection's own database may have moved.
    use_db(ctx, ctx.conn.db);
    state.blocked.wake_all(&ctx.thread.inboxes);
    ctx.out.ok();
    Ok(())
}

/// Swaps under the world gate.
fn swap_alone(ctx: &mut Ctx<'_>, a: usize, b: usize) -> Result<(), CmdError> {
    let state = ctx.state.clone();
    let patience = std::time::Duration::from_millis(
        state
            .settings
            .get(&citadel_settings::server::BUSY_SCRIPT_TIME),
    );
    state
        .gate
        .exclusive(ctx.thread.index, patience, || {
            state.cache.swap_namespaces(a, b)
        })
        .map_err(|_| {
            CmdError::Static("BUSY another core stayed busy (a long script?): SWAPDB did not run")
        })
}

/// Runs `f` on the stored keys of `keys.0` in the connection's database and
/// `keys.1` in database `to`, the handle taking stored keys meanwhile.
pub fn across<R>(
    ctx: &mut Ctx<'_>,
    keys: (&[u8], &[u8]),
    to: u8,
    f: impl FnOnce(&mut CacheHandle, &[u8], &[u8]) -> R,
) -> R {
    let cache = &mut ctx.thread.cache;
    let (from_ns, to_ns) = (cache.namespace(), namespace_of(&ctx.state.cache, to));
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    namespace::stored_key(from_ns, keys.0, &mut src);
    namespace::stored_key(to_ns, keys.1, &mut dst);
    cache.note_namespace_written(to_ns);
    cache.set_namespace(namespace::RAW);
    let r = f(cache, &src, &dst);
    cache.set_namespace(from_ns);
    r
}

pub fn dbsize(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let keys = ctx.thread.cache.namespace_len();
    ctx.out.int(keys as i64);
    Ok(())
}

/// FLUSHDB / FLUSHALL [ASYNC|SYNC]: both flush synchronously (flushing is
/// cheap in the cache's layout); FLUSHDB only the connection's database.
pub fn flush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if !args.is_flush_mode(1) {
        return Err(CmdError::Syntax);
    }
    if args.is(0, "flushall") {
        ctx.thread.cache.flush_all();
    } else {
        ctx.thread.cache.flush_namespace();
    }
    // Also with nobody tracking now: the table may still hold keys of
    // clients that stopped (dropped lazily), which Redis's flush frees.
    if ctx.state.tracking.active() || ctx.state.tracking.keys() > 0 {
        ctx.state.tracking.flushed(&ctx.thread.inboxes);
    }
    ctx.out.ok();
    Ok(())
}

/// INFO keyspace's numbers: (database, keys, keys with a TTL) of every
/// database holding keys: each namespace's counters
/// (`Cache::namespace_counts`); a walk of the index per namespace written
/// only when they cannot say (2^31 keys or more).
pub fn keyspace(state: &ServerState, cache: &mut CacheHandle) -> Vec<(usize, u64, u64)> {
    let shared = &state.cache;
    let used = shared.namespaces_used() | 1;
    let mut out = Vec::new();
    let before = cache.namespace();
    for db in 0..count(state) {
        let ns = namespace_of(shared, db as u8);
        if used & (1 << ns) == 0 {
            continue;
        }
        let (keys, expires) = shared.namespace_counts(ns).unwrap_or_else(|| {
            cache.set_namespace(ns);
            count_keys(cache)
        });
        if keys > 0 {
            out.push((db, keys, expires));
        }
    }
    cache.set_namespace(before);
    out
}

/// Keys, and keys with a TTL, of the handle's namespace.
fn count_keys(cache: &mut CacheHandle) -> (u64, u64) {
    let (mut cursor, mut keys, mut expires) = (0, 0, 0);
    loop {
        cursor = cache.scan(cursor, 4096, |item| {
            keys += 1;
            expires += u64::from(item.expire_at().is_some());
        });
        if cursor == 0 {
            return (keys, expires);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::command::tests::{bulk, Harness, OK};

    #[test]
    fn databases_keep_their_own_keys() {
        let mut h = Harness::new();
        h.cmd(&["SET", "k", "zero"]);
        assert_eq!(h.cmd(&["SELECT", "1"]), OK);
        assert_eq!(h.cmd(&["GET", "k"]), "$-1\r\n");
        h.cmd(&["SET", "k", "one"]);
        h.cmd(&["RPUSH", "list", "a", "b"]);
        assert_eq!(h.cmd(&["DBSIZE"]), ":2\r\n");
        assert_eq!(h.cmd(&["KEYS", "k*"]), "*1\r\n$1\r\nk\r\n");
        assert_eq!(
            h.cmd(&["MOVE", "k", "1"]),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(h.cmd(&["MOVE", "k", "0"]), ":0\r\n", "k is in db 0 too");
        assert_eq!(h.cmd(&["MOVE", "list", "2"]), ":1\r\n");
        assert_eq!(h.cmd(&["MOVE", "nope", "2"]), ":0\r\n");
        assert_eq!(h.cmd(&["SELECT", "2"]), OK);
        assert_eq!(
            h.cmd(&["LRANGE", "list", "0", "-1"]),
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(h.cmd(&["SWAPDB", "0", "2"]), OK);
        assert_eq!(h.cmd(&["GET", "k"]), bulk("zero"));
        assert_eq!(h.cmd(&["SELECT", "0"]), OK);
        assert_eq!(h.cmd(&["TYPE", "list"]), "+list\r\n");
        assert_eq!(
            h.cmd(&["SWAPDB", "0", "16"]),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            h.cmd(&["SWAPDB", "x", "1"]),
            "-ERR invalid first DB index\r\n"
        );
        assert_eq!(h.cmd(&["FLUSHDB"]), OK);
        assert_eq!(h.cmd(&["DBSIZE"]), ":0\r\n");
        assert_eq!(h.cmd(&["SELECT", "1"]), OK);
        assert_eq!(h.cmd(&["GET", "k"]), bulk("one"));
        assert_eq!(h.cmd(&["RESET"]), "+RESET\r\n");
        assert_eq!(h.cmd(&["GET", "k"]), "$-1\r\n", "RESET is back in db 0");
        assert_eq!(h.cmd(&["FLUSHALL"]), OK);
        assert_eq!(h.cmd(&["SELECT", "1"]), OK);
        assert_eq!(h.cmd(&["DBSIZE"]), ":0\r\n");
    }

    #[test]
    fn a_script_selects_for_itself_only() {
        let mut h = Harness::new();
        let script = "redis.call('SELECT', 1); return redis.call('SET', 'k', 'in1')";
        assert_eq!(h.cmd(&["EVAL", script, "0"]), OK);
        assert_eq!(h.cmd(&["GET", "k"]), "$-1\r\n");
        assert_eq!(h.cmd(&["SELECT", "1"]), OK);
        assert_eq!(h.cmd(&["GET", "k"]), bulk("in1"));
    }
}
