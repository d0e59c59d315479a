//! LMOVE and RPOPLPUSH (pop from one list, push to another, atomically)
//! and LMPOP (pop from the first non-empty of several lists).

use citadel_collections::{ListView, Packed};

use super::{pop_from, push, split_end, End, LIST};
use crate::command::args::Args;
use crate::command::collections::value::{load, view};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Moves one element from `from` of `src` to `to` of `dst` atomically:
/// the element and how many are left in `src`, or None when `src` is
/// missing.
pub(super) fn move_one(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<(Vec<u8>, usize)>, CmdError> {
    let (cache, buf) = (&mut ctx.thread.cache, &mut ctx.conn.scratch);
    let mut dst_buf = Vec::new();
    cache.update(&[src, dst], |items, changes| {
        let Some(src_existing) = load(items[0].as_ref(), LIST, buf)? else {
            return Ok(None);
        };
        let dst_existing = load(items[1].as_ref(), LIST, &mut dst_buf)?;
        let list = ListView::new(Packed::parse(buf)?).elements()?;
        let (popped, rest) = split_end(&list, from, 1);
        let element = *popped.first().ok_or(CmdError::CorruptValue)?;
        if src == dst {
            // A rotation: both ends are the same list.
            push(changes, 0, rest, Some(src_existing), &[element], to)?;
            return Ok(Some((element.to_vec(), list.len())));
        }
        let dst_list = ListView::new(view(&dst_buf, dst_existing.is_some())?).elements()?;
        pop_from(changes, 0, &list, Some(src_existing), from, 1)?;
        push(changes, 1, &dst_list, dst_existing, &[element], to)?;
        Ok::<_, CmdError>(Some((element.to_vec(), rest.len())))
    })?
}

/// Replies with the moved element, or nil when `src` is missing.
fn move_element(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) -> CmdResult {
    match move_one(ctx, src, dst, from, to)? {
        Some((element, _)) => ctx.out.bulk(&element),
        None => ctx.out.null(),
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

/// LMPOP's (and BLMPOP's) parsed arguments.
pub(super) struct Mpop<'a> {
    pub keys: Vec<&'a [u8]>,
    pub end: End,
    pub count: usize,
}

/// The key count of `numkeys key ... ` at argument `at`, if valid.
fn numkeys(args: &Args<'_>, at: usize) -> Option<usize> {
    args.int(at).ok().filter(|&n| n >= 1).map(|n| n as usize)
}

/// `numkeys key [key ...] LEFT|RIGHT [COUNT count]` from argument `at`
/// (1 for LMPOP, 2 for BLMPOP after its timeout).
pub(super) fn parse_mpop<'a>(args: &Args<'a>, at: usize) -> Result<Mpop<'a>, CmdError> {
    let n = numkeys(args, at).ok_or(CmdError::Static("ERR numkeys should be greater than 0"))?;
    let end_at = n
        .checked_add(at + 1)
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
        keys: (at + 1..end_at).map(|i| args.get(i)).collect(),
        end,
        count: count.unwrap_or(1),
    })
}

/// What `pop_first` took: the key's index, the elements in pop order, and
/// how many are left in that list.
pub(super) type Popped = (usize, Vec<Vec<u8>>, usize);

/// Pops up to `count` elements off `end` of the first non-empty list of
/// `keys` that `servable` allows (blocked clients' order), atomically.
pub(super) fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    servable: &[bool],
    end: End,
    count: usize,
) -> Result<Option<Popped>, CmdError> {
    let (cache, buf) = (&mut ctx.thread.cache, &mut ctx.conn.scratch);
    cache.update(keys, |items, changes| {
        for (i, item) in items.iter().enumerate() {
            let Some(existing) = load(item.as_ref(), LIST, buf)? else {
                continue;
            };
            if !servable[i] {
                continue;
            }
            let list = ListView::new(Packed::parse(buf)?).elements()?;
            let popped = pop_from(changes, i, &list, Some(existing), end, count)?;
            let left = list.len() - popped.len();
            let popped = popped.iter().map(|e| e.to_vec()).collect();
            return Ok(Some((i, popped, left)));
        }
        Ok::<_, CmdError>(None)
    })?
}

/// Replies `[key, [elements]]` (LMPOP, BLMPOP).
pub(super) fn reply_key_and_elements(ctx: &mut Ctx<'_>, key: &[u8], popped: &[Vec<u8>]) {
    ctx.out.array(2);
    ctx.out.bulk(key);
    ctx.out.array(popped.len());
    popped.iter().for_each(|e| ctx.out.bulk(e));
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: [key, elements]
/// of the first non-empty list, or a nil array.
pub fn lmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mpop = parse_mpop(&args, 1)?;
    let servable = vec![true; mpop.keys.len()];
    match pop_first(ctx, &mpop.keys, &servable, mpop.end, mpop.count)? {
        Some((i, popped, _)) => reply_key_and_elements(ctx, mpop.keys[i], &popped),
        None => ctx.out.null_array(),
    }
    Ok(())
}

/// LMPOP's keys, for routing and COMMAND GETKEYS.
pub fn lmpop_keys<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    mpop_keys(args, 1, f);
}

/// BLMPOP's keys (numkeys after the timeout).
pub fn blmpop_keys<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    mpop_keys(args, 2, f);
}

fn mpop_keys<'a>(args: Args<'a>, at: usize, f: &mut dyn FnMut(&'a [u8])) {
    if let Some(n) = numkeys(&args, at) {
        (at + 1..args.len().min(n.saturating_add(at + 1))).for_each(|i| f(args.get(i)));
    }
}
