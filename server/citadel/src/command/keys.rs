//! Keyspace commands on named keys: DEL UNLINK EXISTS TYPE TOUCH RENAME
//! RENAMENX COPY.

use citadel_cache::{CacheHandle, ValueKind};

use super::args::Args;
use super::collections::paged::{update_paged_fresh, Step};
use super::collections::whole::{copy_value, plan_source, stored};
use super::context::Ctx;
use super::error::{CmdError, CmdResult};

/// DEL and UNLINK (deletion is O(1) per key either way).
pub fn del(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let n = args
        .from(1)
        .iter()
        .filter(|k| ctx.thread.cache.delete(k))
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

pub fn exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let n = args
        .from(1)
        .iter()
        .filter(|k| ctx.thread.cache.peek(k, |_| ()).is_some())
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

/// Counts as an access (hit or miss), as Redis's TOUCH does.
pub fn touch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let n = args
        .from(1)
        .iter()
        .filter(|k| ctx.thread.cache.get(k, |_| ()).is_some())
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

pub fn type_(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let kind = ctx.thread.cache.peek(args.get(1), |item| item.kind());
    let name = kind.map_or("none", ValueKind::type_name);
    ctx.out.simple(name.as_bytes());
    Ok(())
}

/// Moves `src` to `dst` (TTL kept). `nx`: only when `dst` is absent.
/// Returns whether it moved.
fn rename_generic(ctx: &mut Ctx<'_>, args: Args<'_>, nx: bool) -> Result<bool, CmdError> {
    let (src, dst) = (args.get(1), args.get(2));
    if src == dst {
        // Same key: nothing moves, but the source must exist.
        return match ctx.thread.cache.peek(src, |_| ()) {
            Some(()) => Ok(!nx),
            None => Err(CmdError::NoSuchKey),
        };
    }
    transfer(&mut ctx.thread.cache, src, dst, !nx, false)?.ok_or(CmdError::NoSuchKey)
}

/// Copies `src` to `dst` (TTL kept), over a value there only if `replace`,
/// then deletes `src` unless `keep_source` (RENAME, COPY, MOVE). None when
/// `src` is absent, else whether it was copied. A paged collection's pages
/// are named after its key: it is rewritten under the new one (the engine
/// reclaims the old pages).
pub(super) fn transfer(
    cache: &mut CacheHandle,
    src: &[u8],
    dst: &[u8],
    replace: bool,
    keep_source: bool,
) -> Result<Option<bool>, CmdError> {
    update_paged_fresh(cache, &[src, dst], plan_source, |items, changes, plan| {
        let Some(item) = &items[0] else {
            return Ok(Step::Done(None));
        };
        if !replace && items[1].is_some() {
            return Ok(Step::Done(Some(false)));
        }
        let wanted = copy_value(changes, items, plan, item.expire_at())?;
        if wanted.is_none() && !keep_source {
            changes.delete(0);
        }
        Ok(stored(1, wanted, Some(true)))
    })
}

pub fn rename(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rename_generic(ctx, args, false)?;
    ctx.out.ok();
    Ok(())
}

pub fn renamenx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let moved = rename_generic(ctx, args, true)?;
    ctx.out.int(moved as i64);
    Ok(())
}

/// COPY src dst [DB n] [REPLACE].
pub fn copy(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut replace = false;
    let mut to = ctx.conn.db;
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "replace") {
            replace = true;
        } else if args.is(i, "db") && i + 1 < args.len() {
            i += 1;
            to = super::databases::parse_db(ctx.state, args, i)?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if ctx.thread.cluster.is_some() && (ctx.conn.db != 0 || to != 0) {
        return Err(CmdError::Static(
            "ERR Copying to another database is not allowed in cluster mode",
        ));
    }
    let (src, dst) = (args.get(1), args.get(2));
    let copy =
        |cache: &mut CacheHandle, src: &[u8], dst: &[u8]| transfer(cache, src, dst, replace, true);
    let copied = if to == ctx.conn.db {
        if src == dst {
            return Err(CmdError::SameObject);
        }
        copy(&mut ctx.thread.cache, src, dst)?
    } else {
        super::databases::across(ctx, (src, dst), to, copy)?
    };
    ctx.out.int(i64::from(copied == Some(true)));
    Ok(())
}

/// MOVE key db: moves the key (its TTL too) to database `db` unless a key
/// of that name is there.
pub fn move_key(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.thread.cluster.is_some() {
        return Err(CmdError::Static("ERR MOVE is not allowed in cluster mode"));
    }
    let to = super::databases::parse_db(ctx.state, args, 2)?;
    if to == ctx.conn.db {
        return Err(CmdError::SameObject);
    }
    let key = args.get(1);
    let moved = super::databases::across(ctx, (key, key), to, |cache, src, dst| {
        transfer(cache, src, dst, false, false)
    })?;
    ctx.out.int(i64::from(moved == Some(true)));
    Ok(())
}
