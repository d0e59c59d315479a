//! LMOVE and RPOPLPUSH (pop from one list, push to another, atomically)
//! and LMPOP (pop from the first non-empty of several lists).

use citadel_collections::{ListView, Packed};

use super::{pop_from, push, pushed, split_end, End, LIST};
use crate::command::args::Args;
use crate::command::collections::value::{load, view};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Moves one element from `from` of `src` to `to` of `dst`; replies with
/// it, or nil when `src` is missing.
fn move_element(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) -> CmdResult {
    let (cache, buf, out) = (&mut ctx.thread.cache, &mut ctx.conn.scratch, &mut ctx.out);
    let mark = out.buf.len();
    let mut dst_buf = Vec::new();
    let moved = cache.update(&[src, dst], |items, changes| {
        out.buf.truncate(mark);
        let Some(src_existing) = load(items[0].as_ref(), LIST, buf)? else {
            out.null();
            return Ok(false);
        };
        let dst_existing = load(items[1].as_ref(), LIST, &mut dst_buf)?;
        let list = ListView::new(Packed::parse(buf)?).elements()?;
        let (popped, rest) = split_end(&list, from, 1);
        let element = *popped.first().ok_or(CmdError::CorruptValue)?;
        if src == dst {
            // A rotation: both ends are the same list.
            push(changes, 0, rest, Some(src_existing), &[element], to)?;
        } else {
            let dst_list = ListView::new(view(&dst_buf, dst_existing.is_some())?).elements()?;
            pop_from(changes, 0, &list, Some(src_existing), from, 1)?;
            push(changes, 1, &dst_list, dst_existing, &[element], to)?;
        }
        out.bulk(element);
        Ok::<_, CmdError>(true)
    })??;
    if moved {
        pushed(ctx, dst);
    }
    Ok(())
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let from = End::parse(args.get(3))?;
    let to = End::parse(args.get(4))?;
    move_element(ctx, args.get(1), args.get(2), from, to)
}

/// RPOPLPUSH source destination: LMOVE source destination RIGHT LEFT.
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    move_element(ctx, args.get(1), args.get(2), End::Tail, End::Head)
}

/// LMPOP's parsed arguments.
struct Mpop<'a> {
    keys: Vec<&'a [u8]>,
    end: End,
    count: usize,
}

/// The key count of `numkeys key ... ` at argument 1, if valid.
fn numkeys(args: &Args<'_>) -> Option<usize> {
    args.int(1).ok().filter(|&n| n >= 1).map(|n| n as usize)
}

fn parse_mpop<'a>(args: &Args<'a>) -> Result<Mpop<'a>, CmdError> {
    let n = numkeys(args).ok_or(CmdError::Static("ERR numkeys should be greater than 0"))?;
    let end_at = n
        .checked_add(2)
        .filter(|&i| i < args.len())
        .ok_or(CmdError::Syntax)?;
    let end = End::parse(args.get(end_at))?;
    let mut count = None;
    let mut i = end_at + 1;
    while i < args.len() {
        if count.is_none() && args.is(i, "count") && i + 1 < args.len() {
            let n = args.int(i + 1).ok().filter(|&n| n >= 1);
            count = Some(n.ok_or(CmdError::Static("ERR count should be greater than 0"))? as usize);
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(Mpop {
        keys: (2..end_at).map(|i| args.get(i)).collect(),
        end,
        count: count.unwrap_or(1),
    })
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: [key, elements]
/// of the first non-empty list, or a nil array.
pub fn lmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mpop = parse_mpop(&args)?;
    let (cache, buf, out) = (&mut ctx.thread.cache, &mut ctx.conn.scratch, &mut ctx.out);
    let mark = out.buf.len();
    cache.update(&mpop.keys, |items, changes| {
        out.buf.truncate(mark);
        for (i, item) in items.iter().enumerate() {
            let Some(existing) = load(item.as_ref(), LIST, buf)? else {
                continue;
            };
            let list = ListView::new(Packed::parse(buf)?).elements()?;
            let popped = pop_from(changes, i, &list, Some(existing), mpop.end, mpop.count)?;
            out.array(2);
            out.bulk(mpop.keys[i]);
            out.array(popped.len());
            popped.iter().for_each(|e| out.bulk(e));
            return Ok(());
        }
        out.null_array();
        Ok::<_, CmdError>(())
    })?
}

/// LMPOP's keys, for routing and COMMAND GETKEYS.
pub fn lmpop_keys<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    if let Some(n) = numkeys(&args) {
        (2..args.len().min(n.saturating_add(2))).for_each(|i| f(args.get(i)));
    }
}
