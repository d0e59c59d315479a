//! LMOVE and RPOPLPUSH (pop from one list, push to another, atomically)
//! and LMPOP (pop from the first non-empty of several lists).

use super::super::paged::{keep_spare, spare_buf};
use super::{parse_end, update_lists, End};
use crate::command::args::Args;
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
    let same = src == dst;
    // A blocked client's source that became another type after
    // `may_serve_kind` looked is passed over, as that look would have.
    let pass_over = ctx.conn.blocked.is_some();
    update_lists(
        &mut ctx.thread.cache,
        &[src, dst],
        |i, root, plan| {
            // A rotation touches both ends of one list, planned as key 0.
            if i == 0 {
                plan.need_all(0, root.pages_for_pop(from, 1));
            }
            if same || i == 1 {
                let user = if same { 0 } else { 1 };
                plan.need_all(user, root.pages_for_push(to, 1));
            }
        },
        |lists| {
            if pass_over && lists.holds_other_kind(0) {
                return Ok(None);
            }
            let Some(mut source) = lists.open(0)? else {
                return Ok(None);
            };
            // (Into a spare buffer: the caller hands it back once replied.)
            let mut element = spare_buf();
            let popped = source
                .edit
                .pop_with(from, 1, |e| element.extend_from_slice(e))?;
            if popped == 0 {
                return Err(CmdError::CorruptValue);
            }
            if same {
                source.edit.push(to, &[&element])?;
                let left = source.edit.len() as usize;
                lists.save(0, source);
                return Ok(Some((element, left)));
            }
            let mut target = lists.open_or_new(1)?;
            target.edit.push(to, &[&element])?;
            let left = source.edit.len() as usize;
            lists.save(0, source);
            lists.save(1, target);
            Ok(Some((element, left)))
        },
    )
}

/// Replies with the moved element, or nil when `src` is missing.
fn move_element(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) -> CmdResult {
    match move_one(ctx, src, dst, from, to)? {
        Some((element, _)) => {
            ctx.out.bulk(&element);
            keep_spare(element);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let from = parse_end(args.get(3))?;
    let to = parse_end(args.get(4))?;
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
    let end = parse_end(args.get(end_at))?;
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

/// How [`pop_first`] replies with what it took.
#[derive(Clone, Copy)]
pub(super) enum PopReply {
    /// BLPOP / BRPOP: `[key, element]`.
    KeyAndElement,
    /// LMPOP, BLMPOP: `[key, [elements]]`.
    KeyAndElements,
}

/// Pops up to `count` elements off `end` of the first non-empty list of
/// `keys` that `servable` allows (blocked clients' order), atomically,
/// replying as `reply` says (the elements go straight into the reply, no
/// copies; nothing is written when nothing was taken). Returns the key's
/// index and how many elements are left in that list.
pub(super) fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    servable: &[bool],
    end: End,
    count: usize,
    reply: PopReply,
) -> Result<Option<(usize, usize)>, CmdError> {
    // A blocked client passes over a key that holds another type (Redis
    // leaves it blocked), also one that changed type after
    // `may_serve_kind` looked.
    let pass_over = ctx.conn.blocked.is_some();
    let out = &mut ctx.out;
    let mark = out.buf.len();
    let taken = update_lists(
        &mut ctx.thread.cache,
        keys,
        |i, root, plan| {
            if servable[i] {
                plan.need_all(i, root.pages_for_pop(end, count as u64));
            }
        },
        |lists| {
            // An attempt that runs again takes back what it wrote.
            out.buf.truncate(mark);
            for (i, &servable) in servable.iter().enumerate() {
                // A key this client may not take from now (another is
                // ahead in its line, or it waits for the key to hold a
                // list again) is passed over, whatever it holds.
                if !servable || (pass_over && lists.holds_other_kind(i)) {
                    continue;
                }
                let Some(mut list) = lists.open(i)? else {
                    continue;
                };
                // A stored list is never empty; a corrupt one may read so.
                let n = (count as u64).min(list.edit.len());
                if n == 0 {
                    return Err(CmdError::CorruptValue);
                }
                out.array(2);
                out.bulk(keys[i]);
                match reply {
                    PopReply::KeyAndElement => {}
                    PopReply::KeyAndElements => out.array(n as usize),
                }
                list.edit.pop_with(end, n, |e| out.bulk(e))?;
                let left = list.edit.len() as usize;
                lists.save(i, list);
                return Ok(Some((i, left)));
            }
            Ok(None)
        },
    );
    if taken.is_err() {
        out.buf.truncate(mark);
    }
    taken
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: [key, elements]
/// of the first non-empty list, or a nil array.
pub fn lmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mpop = parse_mpop(&args, 1)?;
    let servable = vec![true; mpop.keys.len()];
    let reply = PopReply::KeyAndElements;
    if pop_first(ctx, &mpop.keys, &servable, mpop.end, mpop.count, reply)?.is_none() {
        ctx.out.null_array();
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
