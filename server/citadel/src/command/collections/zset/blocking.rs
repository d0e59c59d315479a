//! The blocking sorted-set pops: BZPOPMIN BZPOPMAX BZMPOP, over
//! `command::blocking` like the list pops (served in Redis's order,
//! woken by any write to a key, the command run again).

use super::pop::{parse_zmpop, pop_first, reply_key_and_entries};
use super::reply_score;
use crate::command::args::Args;
use citadel_cache::ValueKind;

use crate::command::blocking::{
    block, may_block, may_serve_kind, parse_timeout, served, timed_out,
};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Pops from the first servable non-empty sorted set of `keys`; replies
/// and returns true when it took something. `flat`: BZPOPMIN/MAX's
/// `[key, member, score]`, else BZMPOP's `[key, [[member, score] ...]]`.
fn try_pop(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    max: bool,
    count: usize,
    flat: bool,
) -> Result<bool, CmdError> {
    let servable: Vec<bool> = keys
        .iter()
        .map(|k| may_serve_kind(ctx, k, ValueKind::ZSet))
        .collect();
    let Some((i, popped, left)) = pop_first(ctx, keys, &servable, count, max)? else {
        return Ok(false);
    };
    served(ctx, keys[i], left > 0);
    if flat {
        let (score, member) = popped.first().ok_or(CmdError::CorruptValue)?;
        ctx.out.array(3);
        ctx.out.bulk(keys[i]);
        ctx.out.bulk(member);
        reply_score(&mut ctx.out, *score);
    } else {
        reply_key_and_entries(ctx, keys[i], &popped);
    }
    Ok(true)
}

fn blocking_pop(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    timeout: Option<u64>,
    max: bool,
    count: usize,
    flat: bool,
) -> CmdResult {
    if timed_out(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    if try_pop(ctx, keys, max, count, flat)? {
        return Ok(());
    }
    if !may_block(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    block(ctx, keys.iter().copied(), timeout, |ctx| {
        try_pop(ctx, keys, max, count, flat)
    })
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout.
fn bzpop(ctx: &mut Ctx<'_>, args: Args<'_>, max: bool) -> CmdResult {
    let timeout = parse_timeout(args.get(args.len() - 1))?;
    let keys: Vec<&[u8]> = (1..args.len() - 1).map(|i| args.get(i)).collect();
    blocking_pop(ctx, &keys, timeout, max, 1, true)
}

pub fn bzpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bzpop(ctx, args, false)
}

pub fn bzpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bzpop(ctx, args, true)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
pub fn bzmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let timeout = parse_timeout(args.get(1))?;
    let (keys, max, count) = parse_zmpop(&args, 2)?;
    blocking_pop(ctx, &keys, timeout, max, count, false)
}

/// BZMPOP's keys (numkeys after the timeout).
pub fn bzmpop_keys<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    if let Some(keys) = super::numkeys_range(&args, 2) {
        keys.for_each(|i| f(args.get(i)));
    }
}
