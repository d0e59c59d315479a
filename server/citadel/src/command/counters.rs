//! INCR DECR INCRBY DECRBY INCRBYFLOAT: atomic read-modify-write of a
//! number stored as text; the key's TTL is kept.

use citadel_cache::CacheHandle;

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::value::{item_i64, string_item};
use citadel_resp::ext_float::{self, ExtFloat};
use citadel_resp::num;

fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> CmdResult {
    let new = add(&mut ctx.thread.cache, key, delta)?;
    ctx.out.int(new);
    Ok(())
}

/// Adds `delta` to the integer at `key` (absent: 0), keeping its TTL;
/// returns the new value (INCR and the RPC `incr`).
pub fn add(cache: &mut CacheHandle, key: &[u8], delta: i64) -> Result<i64, CmdError> {
    cache.update(&[key], |items, changes| {
        let (current, expire) = match string_item(items[0].as_ref())? {
            None => (0, None),
            Some(item) => (
                item_i64(item).ok_or(CmdError::NotInteger)?,
                item.expire_at(),
            ),
        };
        let new = current.checked_add(delta).ok_or(CmdError::Overflow)?;
        let mut digits = [0u8; 21];
        changes.put(0, &[num::fmt_i64(&mut digits, new)], expire)?;
        Ok::<_, CmdError>(new)
    })?
}

pub fn incr(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    incr_by(ctx, args.get(1), 1)
}

pub fn decr(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    incr_by(ctx, args.get(1), -1)
}

pub fn incrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let delta = args.int(2)?;
    incr_by(ctx, args.get(1), delta)
}

pub fn decrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let delta = args.int(2)?;
    let negated = delta.checked_neg().ok_or(CmdError::DecrementOverflow)?;
    incr_by(ctx, args.get(1), negated)
}

/// Replies with a bulk string, as Redis 7 does in RESP2 and RESP3 alike.
/// Computed in x87 extended precision like Redis's `long double`; the
/// stored value is checked (WRONGTYPE, then not a float) before the
/// increment, in Redis's order.
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let out = &mut ctx.out;
    let mark = out.buf.len();
    ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let (current, expire) = match string_item(items[0].as_ref())? {
            None => (ExtFloat::ZERO, None),
            Some(item) => {
                // ExtFloat::parse refuses 5 KiB or more, as Redis does.
                let v = item
                    .small_value(&mut [0; ext_float::MAX_CHARS])
                    .and_then(ExtFloat::parse);
                (v.ok_or(CmdError::NotFloat)?, item.expire_at())
            }
        };
        let delta = ExtFloat::parse(args.get(2)).ok_or(CmdError::NotFloat)?;
        let text = ext_float::human_sum(current, delta).ok_or(CmdError::NanOrInfinity)?;
        changes.put(0, &[&text], expire)?;
        out.buf.truncate(mark);
        out.bulk(&text);
        Ok::<_, CmdError>(())
    })??;
    Ok(())
}
