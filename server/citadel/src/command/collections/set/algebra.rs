//! SINTER SUNION SDIFF, SINTERSTORE SUNIONSTORE SDIFFSTORE and SINTERCARD.
//! Every key is read in one atomic snapshot (`update` over all of them);
//! a missing key is an empty set, and a key of another kind is WRONGTYPE
//! wherever it stands. The STORE forms replace the destination whatever
//! it held (its TTL too), and delete it when the result is empty.

use std::ops::Range;

use citadel_cache::ItemRef;
use citadel_collections::set::{algebra, encode};
use citadel_collections::{Corrupt, SetView};

use super::{reply_set, SET};
use crate::command::args::Args;
use crate::command::collections::paged::{update_paged, update_paged_fresh, PagePlan};
use crate::command::collections::value::view;
use crate::command::collections::value::{load_whole, plan_whole};
use crate::command::collections::whole::{store_whole, stored};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

#[derive(Clone, Copy)]
enum Op {
    /// SINTERCARD's LIMIT (0: none).
    Inter {
        limit: usize,
    },
    Union,
    Diff,
}

impl Op {
    fn apply<'a>(self, sets: &[SetView<'a>]) -> Result<Vec<&'a [u8]>, Corrupt> {
        match self {
            Op::Inter { limit } => algebra::inter(sets, limit),
            Op::Union => algebra::union(sets),
            Op::Diff => algebra::diff(sets),
        }
    }
}

/// Copies each set of `users` (whole: `plan` planned every page of the
/// paged ones) into its buffer; WRONGTYPE for another kind.
fn load_sets(
    items: &[Option<ItemRef<'_>>],
    plan: &PagePlan,
    users: Range<usize>,
    bufs: &mut Vec<Vec<u8>>,
) -> Result<Vec<bool>, CmdError> {
    bufs.resize_with(users.len(), Vec::new);
    users
        .zip(bufs.iter_mut())
        .map(|(i, buf)| Ok(load_whole(items, plan, i, SET, buf)?.is_some()))
        .collect()
}

fn views<'b>(bufs: &'b [Vec<u8>], found: &[bool]) -> Result<Vec<SetView<'b>>, CmdError> {
    bufs.iter()
        .zip(found)
        .map(|(buf, &found)| Ok(SetView::new(view(buf, found)?)))
        .collect()
}

/// The result of `op` over the sets at `keys`, applied to `f`.
fn combine<R>(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    op: Op,
    f: impl FnOnce(&mut Ctx<'_>, Vec<&[u8]>) -> R,
) -> Result<R, CmdError> {
    let mut bufs = Vec::new();
    // Nothing is written: the update only proves the snapshot consistent.
    let found = update_paged(&mut ctx.thread.cache, keys, plan_whole, |items, _, plan| {
        load_sets(items, plan, 0..keys.len(), &mut bufs)
    })?;
    let sets = views(&bufs, &found)?;
    let members = op.apply(&sets)?;
    Ok(f(ctx, members))
}

fn reply_combined(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op) -> CmdResult {
    let keys: Vec<&[u8]> = args.from(1).iter().collect();
    combine(ctx, &keys, op, |ctx, members| {
        reply_set(&mut ctx.out, members.into_iter())
    })
}

pub fn sinter(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_combined(ctx, args, Op::Inter { limit: 0 })
}

pub fn sunion(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_combined(ctx, args, Op::Union)
}

pub fn sdiff(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_combined(ctx, args, Op::Diff)
}

/// The STORE forms: destination first, then the sources; replies the
/// size of the stored set.
fn store_combined(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op) -> CmdResult {
    let keys: Vec<&[u8]> = args.from(1).iter().collect();
    let mut bufs = Vec::new();
    // The destination is replaced whole: only the sources' pages are read
    // (a replaced paged destination's pages are the engine's to reclaim).
    let plan_sources = |i: usize, root: &[u8], plan: &mut PagePlan| match i {
        0 => Ok(()),
        _ => plan_whole(i, root, plan),
    };
    let size = update_paged_fresh(
        &mut ctx.thread.cache,
        &keys,
        plan_sources,
        |items, changes, plan| {
            let found = load_sets(items, plan, 1..keys.len(), &mut bufs)?;
            let sets = views(&bufs, &found)?;
            let mut members = op.apply(&sets)?;
            let value = encode(&mut members);
            // The destination is replaced, never merged: no TTL carries
            // over; a big result is stored paged at once.
            let wanted = store_whole(changes, plan, 0, SET, &value, items[0].is_some(), None)?;
            Ok(stored(0, wanted, members.len()))
        },
    )?;
    ctx.out.int(size as i64);
    Ok(())
}

pub fn sinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    store_combined(ctx, args, Op::Inter { limit: 0 })
}

pub fn sunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    store_combined(ctx, args, Op::Union)
}

pub fn sdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    store_combined(ctx, args, Op::Diff)
}

/// SINTERCARD's keys: `2 .. 2 + numkeys`, checked as Redis checks them.
fn sintercard_keys(args: Args<'_>) -> Result<Range<usize>, CmdError> {
    let numkeys = args
        .int(1)
        .ok()
        .filter(|&n| n > 0)
        .ok_or(CmdError::Static("ERR numkeys should be greater than 0"))?;
    if numkeys as u64 > (args.len() - 2) as u64 {
        return Err(CmdError::Static(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(2..2 + numkeys as usize)
}

/// SINTERCARD's `KeyFinder` (cluster routing, COMMAND GETKEYS).
pub fn for_each_sintercard_key<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    if let Ok(range) = sintercard_keys(args) {
        range.for_each(|i| f(args.get(i)));
    }
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]: the intersection's
/// size, counting stopped at the limit (0: no limit).
pub fn sintercard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let range = sintercard_keys(args)?;
    let mut limit = 0;
    let mut i = range.end;
    while i < args.len() {
        if !args.is(i, "limit") || i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        limit = args
            .int(i + 1)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(CmdError::Static("ERR LIMIT can't be negative"))?;
        i += 2;
    }
    let keys: Vec<&[u8]> = range.map(|i| args.get(i)).collect();
    combine(ctx, &keys, Op::Inter { limit }, |ctx, members| {
        ctx.out.int(members.len() as i64)
    })
}
