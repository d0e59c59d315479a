//! Read-through in GET, MGET and GETEX: a miss (or a stale value) of a key
//! under a `[[keyspace]]` prefix is loaded by the keyspace's loader
//! (`crate::readthrough`) while the client is parked. The hit path costs
//! what it did, plus one flag test for a soft expiry; the prefix check runs
//! only on a miss.
//!
//! A command with keys to load builds a [`Plan`]: the replies of the keys
//! it already has, rendered, and which slots wait for loads. It parks on
//! its wait (`Pending::Loads`); when every load it asked for finished, the
//! continuation ([`render`]) writes the whole reply, in key order.

use super::args::Args;
use super::context::Ctx;
use super::context::Pending;
use super::error::{CmdError, CmdResult};
use super::load_plan::{Plan, Slot};
use super::set_options::Change;
use super::value::{get_and_change_or, reply_value};
use crate::readthrough::stats::Stats;
use crate::readthrough::{LoadError, LoadResult, Loader};
use crate::wait::Caller;
use citadel_cache::{CacheHandle, ItemRef, KeyHash, ValueKind};
use citadel_resp::Reply;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Found {
    Fresh,
    /// Past its soft expiry (read-through's stale window): reload it.
    Stale,
    Missing,
    /// A collection: GET answers WRONGTYPE, MGET a null (as Redis).
    WrongType,
}

/// Reads `key` (hashed `hash`); a value (fresh or stale) is written to
/// `out`.
#[inline]
fn read(cache: &mut CacheHandle, (key, hash): (&[u8], KeyHash), out: &mut Reply<'_>) -> Found {
    let now = cache.now_ms();
    let mark = out.buf.len();
    let reply = |item: &ItemRef<'_>| {
        out.buf.truncate(mark);
        if item.kind() != ValueKind::String {
            return Found::WrongType;
        }
        reply_value(out, item);
        match item.soft_expire_at() {
            Some(t) if t <= now => Found::Stale,
            _ => Found::Fresh,
        }
    };
    cache.get_hashed(key, hash, reply).unwrap_or(Found::Missing)
}

/// GET.
pub fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let hash = ctx.thread.cache.key_hash(args.get(1));
    get_hashed(ctx, args, hash)
}

/// GET of a key hashed `hash` (a skimmed pipeline's: `fast_path.rs`).
/// Always inlined: as a function of its own (`#[inline]` left it one) its
/// call and saved registers cost ~35 instructions a pipelined GET.
#[inline(always)]
pub fn get_hashed(ctx: &mut Ctx<'_>, args: Args<'_>, hash: KeyHash) -> CmdResult {
    let key = args.get(1);
    let mark = ctx.out.buf.len();
    match read(&mut ctx.thread.cache, (key, hash), &mut ctx.out) {
        Found::Fresh => Ok(()),
        Found::WrongType => Err(CmdError::WrongType),
        found => match loadable(ctx, key) {
            Some(_) => {
                ctx.out.buf.truncate(mark);
                load(ctx, args.from(1), 1, false, None)
            }
            None if found == Found::Missing => {
                ctx.out.null();
                Ok(())
            }
            None => Ok(()),
        },
    }
}

/// MGET: replies at once unless a key must be loaded.
pub fn mget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let keys = args.from(1);
    let mark = ctx.out.buf.len();
    ctx.out.array(keys.len());
    for (i, key) in keys.iter().enumerate() {
        if i % PREFETCH_WINDOW == 0 && keys.len() > 1 {
            prefetch(&ctx.thread.cache, keys, i);
        }
        let hash = ctx.thread.cache.key_hash(key);
        let found = read(&mut ctx.thread.cache, (key, hash), &mut ctx.out);
        match found {
            Found::Fresh => continue,
            Found::WrongType => {
                ctx.out.null();
                continue;
            }
            _ => {}
        }
        if loadable(ctx, key).is_some() {
            ctx.out.buf.truncate(mark);
            return load(ctx, keys, keys.len(), true, None);
        }
        if found == Found::Missing {
            ctx.out.null();
        }
    }
    Ok(())
}

/// MGET keys whose index buckets, then items, are asked for at once.
const PREFETCH_WINDOW: usize = 16;

/// Starts loading the buckets, then the items, of up to `PREFETCH_WINDOW`
/// keys from `from`: an MGET of random keys otherwise waits for two memory
/// misses per key one after another (most of its time on a big cache).
fn prefetch(cache: &CacheHandle, keys: Args<'_>, from: usize) {
    let mut hashes = [0u64; PREFETCH_WINDOW];
    let n = (keys.len() - from).min(PREFETCH_WINDOW);
    for (hash, i) in hashes.iter_mut().zip(from..from + n) {
        *hash = cache.prefetch_bucket(keys.get(i));
    }
    for &hash in &hashes[..n] {
        cache.prefetch_item(hash);
    }
}

/// GETEX with options on a key to load: loads it, then applies `change`.
/// False when the key needs no load (the caller goes on as usual).
pub fn getex(ctx: &mut Ctx<'_>, args: Args<'_>, change: Change<'static>) -> Result<bool, CmdError> {
    let key = args.get(1);
    if loadable(ctx, key).is_none() || ctx.thread.cache.peek(key, |_| ()).is_some() {
        return Ok(false);
    }
    load(ctx, args.from(1), 1, false, Some((key.to_vec(), change)))?;
    Ok(true)
}

/// Whether a miss of `key` is loaded: it falls under a `[[keyspace]]`
/// and the command is not part of a transaction (MULTI/EXEC, a script),
/// which cannot wait: there, a key not in the cache is a plain miss.
fn loadable(ctx: &Ctx<'_>, key: &[u8]) -> Option<()> {
    if ctx.thread.cache.in_txn() {
        return None;
    }
    ctx.thread.loads.keyspace(key).map(|_| ())
}

/// The slow path: each of the first `n` keys is read again; the missing
/// and stale ones of a keyspace are loaded (joining loads in flight).
fn load(
    ctx: &mut Ctx<'_>,
    keys: Args<'_>,
    n: usize,
    array: bool,
    getex: Option<(Vec<u8>, Change<'static>)>,
) -> CmdResult {
    let t = &mut *ctx.thread;
    let wait = t.loads.new_wait(n);
    let mut plan = Plan {
        array,
        slots: Vec::with_capacity(n),
        rendered: Vec::new(),
        getex,
    };
    for (i, key) in keys.iter().take(n).enumerate() {
        let mut out = Reply::new(&mut plan.rendered, ctx.conn.resp3);
        let start = out.buf.len();
        let hash = t.cache.key_hash(key);
        let found = read(&mut t.cache, (key, hash), &mut out);
        let keyspace = match found {
            Found::Fresh => None,
            Found::WrongType if !array => return Err(CmdError::WrongType),
            Found::WrongType => None,
            _ => t.loads.keyspace(key),
        };
        let Some(keyspace) = keyspace else {
            if matches!(found, Found::Missing | Found::WrongType) {
                out.null();
            }
            plan.slots.push(Slot::Rendered(start..plan.rendered.len()));
            continue;
        };
        let negative = t.cache.get_any(key, |item| item.is_negative()) == Some(true);
        if found == Found::Missing && negative {
            out.null();
            if let Some(s) = t.loads.stats() {
                Stats::add(&s.negative_hits, 1);
            }
            plan.slots.push(Slot::Rendered(start..plan.rendered.len()));
            continue;
        }
        let loader = Loader {
            plugins: &mut t.plugins,
            caller: Caller::ReadThrough,
        };
        match t.loads.load(&mut t.cache, loader, keyspace, key, (wait, i)) {
            Ok(()) => {
                plan.rendered.truncate(start);
                plan.slots.push(Slot::Load);
            }
            Err(_) if found == Found::Stale => {
                if let Some(s) = t.loads.stats() {
                    Stats::add(&s.stale_served, 1);
                }
                plan.slots.push(Slot::Rendered(start..plan.rendered.len()));
            }
            Err(e) => {
                t.loads.take(wait);
                if e.is_shed() {
                    let priority = ctx.conn.overload.priority;
                    t.count_downstream(crate::overload::Reason::LoaderLimit, priority);
                }
                return Err(load_error(&e));
            }
        }
    }
    if t.loads.is_pending(wait) {
        ctx.conn.pending = Some(Pending::Loads {
            wait,
            plan: Box::new(plan),
        });
        return Ok(());
    }
    let results = t.loads.take(wait);
    render(ctx, plan, results)
}

fn load_error(e: &LoadError) -> CmdError {
    let prefix = if e.is_shed() {
        "OVERLOAD downstream"
    } else {
        "ERR"
    };
    CmdError::Text(format!("{prefix} {e}"))
}

/// Writes the reply: any failed load fails the whole command.
pub fn render(ctx: &mut Ctx<'_>, plan: Plan, results: Vec<Option<LoadResult>>) -> CmdResult {
    if let Some(Err(e)) = results.iter().flatten().find(|r| r.is_err()) {
        return Err(load_error(e));
    }
    if let Some((key, change)) = plan.getex {
        let loaded = match results.first() {
            Some(Some(Ok(None))) => {
                ctx.out.null();
                return Ok(());
            }
            Some(Some(Ok(Some(value)))) => Some(&value[..]),
            _ => None,
        };
        // An invalidation may drop the loaded value before the change
        // runs (a row's NOTIFY can land after its load): the GETEX still
        // read it, so it answers the loaded value.
        return get_and_change_or(ctx, &key, change, loaded);
    }
    if plan.array {
        ctx.out.array(plan.slots.len());
    }
    for (i, slot) in plan.slots.iter().enumerate() {
        match slot {
            Slot::Rendered(r) => ctx.out.buf.extend_from_slice(&plan.rendered[r.clone()]),
            Slot::Load => match results.get(i) {
                Some(Some(Ok(Some(v)))) => ctx.out.bulk(v),
                _ => ctx.out.null(),
            },
        }
    }
    Ok(())
}
