//! DUMP and RESTORE: a key's value in Redis's serialization format (the
//! codec is `citadel_collections::rdb`; `rdb_value.rs` converts to and
//! from the stored kinds, `collections::stream::whole` reads and writes a
//! stream whole), so values move between Redis and Citadel.

use std::ops::Range;

use citadel_cache::{CacheHandle, Changes, ValueKind};
use citadel_collections::rdb::{self, Dumpable, RdbError};

use super::args::Args;
use super::collections::paged::{update_paged_fresh, PagePlan, Step};
use super::collections::stream::whole::{read_stream, store_stream};
use super::collections::value::read_whole;
use super::collections::whole::{store_whole, stored};
use super::collections::zset::paged_dump;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::rdb_value::{dump_stored, restorable, Restorable};

impl From<RdbError> for CmdError {
    fn from(e: RdbError) -> Self {
        CmdError::Static(match e {
            RdbError::VersionOrChecksum => "ERR DUMP payload version or checksum are wrong",
            RdbError::BadData => "ERR Bad data format",
        })
    }
}

const BUSY_KEY: CmdError = CmdError::Static("BUSYKEY Target key name already exists.");

/// DUMP key: the serialized value, or nil when the key is missing.
pub fn dump(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match dump_key(&mut ctx.thread.cache, args.get(1), &mut ctx.conn.scratch)? {
        Some(dumped) => ctx.out.bulk(&dumped.payload),
        None => ctx.out.null(),
    }
    Ok(())
}

/// A key's DUMP payload and expiry.
pub(super) struct Dumped {
    pub payload: Vec<u8>,
    /// Unix ms; None for no TTL.
    pub expire_at: Option<u64>,
}

/// `key`'s DUMP payload and expiry, None when it is missing (DUMP, and
/// CLUSTER HANDOFF's answer). `buf`: scratch space.
pub(super) fn dump_key(
    cache: &mut CacheHandle,
    key: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Option<Dumped>, CmdError> {
    let found = cache.get(key, |item| {
        buf.clear();
        item.write_value_to(buf);
        (item.kind(), item.expire_at())
    });
    let Some((kind, expire_at)) = found else {
        return Ok(None);
    };
    if kind == ValueKind::Stream {
        // Read again with its pages, atomically (gone by then: missing).
        let Some(whole) = read_stream(cache, key)? else {
            return Ok(None);
        };
        let payload = rdb::dump(Dumpable::Stream(&whole));
        return Ok(Some(Dumped { payload, expire_at }));
    }
    let paged = kind != ValueKind::String && citadel_collections::paged::is_paged(buf);
    if kind == ValueKind::ZSet && paged {
        // A paged sorted set: its tree's leaves hold every pair in order.
        if let Some(payload) = paged_dump(cache, key)? {
            return Ok(Some(Dumped { payload, expire_at }));
        }
    }
    if paged {
        // A paged collection: read whole (its pages too), atomically.
        if !read_whole(cache, key, kind, buf)? {
            return Ok(None);
        }
    }
    let payload = dump_stored(kind, buf, paged)?;
    Ok(Some(Dumped { payload, expire_at }))
}

/// Stores the DUMP payload `payload` as `key` expiring at `expire_at`
/// (unix ms) unless `key` exists or that time has passed (the warm
/// hand-off's restore); true when stored.
pub(super) fn restore_absent(
    cache: &mut CacheHandle,
    key: &[u8],
    payload: &[u8],
    expire_at: Option<u64>,
) -> Result<bool, CmdError> {
    let value = restorable(payload)?;
    let now = cache.now_ms();
    let no_pages = |_: usize, _: &[u8], _: &mut PagePlan| Ok(());
    update_paged_fresh(cache, &[key], no_pages, |items, changes, plan| {
        if items[0].is_some() || expire_at.is_some_and(|at| at <= now) {
            return Ok(Step::Done(false));
        }
        let wanted = store_restored(changes, plan, 0, &value, false, expire_at)?;
        Ok(stored(0, wanted, true))
    })
}

/// Stores user key `i` as `value` with `expire_at` (`existed`: whether
/// the key holds something now); returns the fresh pages it needs first
/// (see [`store_whole`]).
fn store_restored(
    changes: &mut Changes,
    plan: &PagePlan,
    i: usize,
    value: &Restorable,
    existed: bool,
    expire_at: Option<u64>,
) -> Result<Option<Range<u64>>, CmdError> {
    match value {
        Restorable::Packed(kind, packed) => {
            store_whole(changes, plan, i, *kind, packed, existed, expire_at)
        }
        Restorable::Stream(whole) => store_stream(changes, plan, i, whole, expire_at),
    }
}

/// RESTORE's options after the payload.
#[derive(Default)]
struct Options {
    replace: bool,
    absolute_ttl: bool,
}

impl Options {
    /// REPLACE, ABSTTL, IDLETIME s, FREQ f (validated as Redis does; the
    /// cache keeps no per-key idle time or frequency to set).
    fn parse(args: &Args<'_>) -> Result<Options, CmdError> {
        let mut opts = Options::default();
        let (mut idle, mut freq) = (false, false);
        let mut i = 4;
        while i < args.len() {
            let more = i + 1 < args.len();
            if args.is(i, "replace") {
                opts.replace = true;
            } else if args.is(i, "absttl") {
                opts.absolute_ttl = true;
            } else if args.is(i, "idletime") && more && !freq {
                i += 1;
                if args.int(i)? < 0 {
                    return Err(CmdError::Static("ERR Invalid IDLETIME value, must be >= 0"));
                }
                idle = true;
            } else if args.is(i, "freq") && more && !idle {
                i += 1;
                if !(0..=255).contains(&args.int(i)?) {
                    return Err(CmdError::Static(
                        "ERR Invalid FREQ value, must be >= 0 and <= 255",
                    ));
                }
                freq = true;
            } else {
                return Err(CmdError::Syntax);
            }
            i += 1;
        }
        Ok(opts)
    }
}

/// What RESTORE writes: the key's value and expiry.
struct Restored {
    value: Restorable,
    /// Unix ms; None for no TTL.
    expire_at: Option<u64>,
}

/// The TTL argument and the payload, checked in Redis's order.
fn prepare(args: &Args<'_>, absolute: bool, now: u64) -> Result<Restored, CmdError> {
    let ttl = args.int(2)?;
    if ttl < 0 {
        return Err(CmdError::Static("ERR Invalid TTL value, must be >= 0"));
    }
    let value = restorable(args.get(3))?;
    let expire_at = match (ttl as u64, absolute) {
        (0, _) => None,
        (at, true) => Some(at),
        (ttl, false) => Some(now.saturating_add(ttl)),
    };
    Ok(Restored { value, expire_at })
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]
pub fn restore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let opts = Options::parse(&args)?;
    let now = ctx.thread.cache.now_ms();
    // Checked before the write, answered after the BUSYKEY check (Redis's
    // order: a bad TTL or payload on an existing key is BUSYKEY).
    let prepared = prepare(&args, opts.absolute_ttl, now);
    let no_pages = |_: usize, _: &[u8], _: &mut PagePlan| Ok(());
    let cache = &mut ctx.thread.cache;
    let busy = update_paged_fresh(cache, &[args.get(1)], no_pages, |items, changes, plan| {
        if items[0].is_some() && !opts.replace {
            return Ok(Step::Done(true));
        }
        let Ok(restored) = &prepared else {
            return Ok(Step::Done(false));
        };
        match restored.expire_at {
            // Already expired: the old key goes, nothing is written.
            Some(at) if at <= now => {
                if items[0].is_some() {
                    changes.delete(0);
                }
                Ok(Step::Done(false))
            }
            expire_at => {
                let existed = items[0].is_some();
                let wanted = store_restored(changes, plan, 0, &restored.value, existed, expire_at)?;
                Ok(stored(0, wanted, false))
            }
        }
    })?;
    if busy {
        return Err(BUSY_KEY);
    }
    prepared?;
    ctx.out.ok();
    Ok(())
}
