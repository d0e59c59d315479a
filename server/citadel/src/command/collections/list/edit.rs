//! List edits inside the list: LSET LINSERT LREM LTRIM.

use citadel_collections::list::{clamp_range, encode, remove, resolve_index};

use super::{put, update_list};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// LSET key index element: "ERR no such key" or "ERR index out of range"
/// (the key is checked before the index is parsed, as Redis does).
pub fn lset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (cache, buf) = (&mut ctx.thread.cache, &mut ctx.conn.scratch);
    update_list(cache, buf, args.get(1), |changes, list, existing| {
        if existing.is_none() {
            return Err(CmdError::NoSuchKey);
        }
        let index = args.int(2)?;
        let at =
            resolve_index(list.len(), index).ok_or(CmdError::Static("ERR index out of range"))?;
        let element = args.get(3);
        let new = encode(
            list.iter()
                .enumerate()
                .map(|(i, e)| if i == at { element } else { *e }),
        );
        put(changes, 0, &new, existing)
    })?;
    ctx.out.ok();
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, -1 when the
/// pivot is missing, 0 when the key is.
pub fn linsert(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let after = if args.is(2, "after") {
        true
    } else if args.is(2, "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (pivot, element) = (args.get(3), args.get(4));
    let (cache, buf) = (&mut ctx.thread.cache, &mut ctx.conn.scratch);
    let len = update_list(cache, buf, args.get(1), |changes, list, existing| {
        if existing.is_none() {
            return Ok(0);
        }
        let Some(at) = list.iter().position(|e| *e == pivot) else {
            return Ok(-1);
        };
        let at = at + usize::from(after);
        let (before, rest) = list.split_at(at);
        let new = encode(before.iter().chain([&element]).chain(rest).copied());
        put(changes, 0, &new, existing)?;
        Ok(new.len as i64)
    })?;
    ctx.out.int(len);
    Ok(())
}

/// LREM key count element: how many were removed (count 0: all; negative:
/// from the tail).
pub fn lrem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = args.int(2)?;
    let element = args.get(3);
    let (cache, buf) = (&mut ctx.thread.cache, &mut ctx.conn.scratch);
    let removed = update_list(cache, buf, args.get(1), |changes, list, existing| {
        let mut kept = list.to_vec();
        let removed = remove(&mut kept, element, count);
        if removed > 0 {
            put(changes, 0, &encode(kept), existing)?;
        }
        Ok(removed)
    })?;
    ctx.out.int(removed as i64);
    Ok(())
}

/// LTRIM key start stop: keeps `start ..= stop`; OK even for no key.
pub fn ltrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (start, stop) = (args.int(2)?, args.int(3)?);
    let (cache, buf) = (&mut ctx.thread.cache, &mut ctx.conn.scratch);
    update_list(cache, buf, args.get(1), |changes, list, existing| {
        let keep = clamp_range(list.len(), start, stop);
        if keep.len() < list.len() {
            put(changes, 0, &encode(list[keep].iter().copied()), existing)?;
        }
        Ok(())
    })?;
    ctx.out.ok();
    Ok(())
}
