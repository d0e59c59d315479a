//! The blocking list pops: BLPOP BRPOP BLMPOP BLMOVE BRPOPLPUSH. Each tries
//! once; when every key is empty (or another blocked client is ahead in a
//! key's line) it blocks through `command::blocking`, and the whole
//! command runs again when a key is written or the timeout passes.

use citadel_cache::ValueKind;

use super::super::paged::keep_spare;
use super::moves::{move_one, parse_mpop, pop_first, PopReply as Reply};
use super::{parse_end, End};
use crate::command::args::Args;
use crate::command::blocking::{
    self, block, may_block, may_serve_kind, parse_timeout, served, timed_out,
};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Pops from the first servable non-empty list of `keys`; replies and
/// returns true when it took something.
fn try_pop(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    end: End,
    count: usize,
    reply: &Reply,
) -> Result<bool, CmdError> {
    let servable: Vec<bool> = keys
        .iter()
        .map(|k| may_serve_kind(ctx, k, ValueKind::List))
        .collect();
    let Some((i, left)) = pop_first(ctx, keys, &servable, end, count, *reply)? else {
        return Ok(false);
    };
    served(ctx, keys[i], left > 0);
    Ok(true)
}

/// The shared flow of the pops: time up, try, block (or answer nil where
/// nothing may block).
fn blocking_pop(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    timeout: Option<u64>,
    end: End,
    count: usize,
    reply: Reply,
) -> CmdResult {
    if timed_out(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    if try_pop(ctx, keys, end, count, &reply)? {
        return Ok(());
    }
    if !may_block(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    block(ctx, keys.iter().copied(), timeout, |ctx| {
        try_pop(ctx, keys, end, count, &reply)
    })
}

/// BLPOP / BRPOP key [key ...] timeout.
fn bpop(ctx: &mut Ctx<'_>, args: Args<'_>, end: End) -> CmdResult {
    let timeout = parse_timeout(args.get(args.len() - 1))?;
    let keys: Vec<&[u8]> = (1..args.len() - 1).map(|i| args.get(i)).collect();
    blocking_pop(ctx, &keys, timeout, end, 1, Reply::KeyAndElement)
}

pub fn blpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop(ctx, args, End::Head)
}

pub fn brpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop(ctx, args, End::Tail)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
pub fn blmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let timeout = parse_timeout(args.get(1))?;
    let mpop = parse_mpop(&args, 2)?;
    blocking_pop(
        ctx,
        &mpop.keys,
        timeout,
        mpop.end,
        mpop.count,
        Reply::KeyAndElements,
    )
}

/// Moves one element if `src` has one this client may take; replies.
fn try_move(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<bool, CmdError> {
    if !may_serve_kind(ctx, src, ValueKind::List) {
        return Ok(false);
    }
    let Some((element, left)) = move_one(ctx, src, dst, from, to)? else {
        return Ok(false);
    };
    served(ctx, src, left > 0);
    ctx.out.bulk(&element);
    keep_spare(element);
    Ok(true)
}

fn blocking_move(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    from: End,
    to: End,
    timeout_at: usize,
) -> CmdResult {
    let timeout = parse_timeout(args.get(timeout_at))?;
    let (src, dst) = (args.get(1), args.get(2));
    if timed_out(ctx) {
        // Redis answers a timed-out move with a null array too.
        ctx.out.null_array();
        return Ok(());
    }
    if try_move(ctx, src, dst, from, to)? {
        return Ok(());
    }
    if !may_block(ctx) {
        ctx.out.null();
        return Ok(());
    }
    blocking::block(ctx, [src], timeout, |ctx| try_move(ctx, src, dst, from, to))
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout.
pub fn blmove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let from = parse_end(args.get(3))?;
    let to = parse_end(args.get(4))?;
    blocking_move(ctx, args, from, to, 5)
}

/// BRPOPLPUSH source destination timeout.
pub fn brpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    blocking_move(ctx, args, End::Tail, End::Head, 3)
}
