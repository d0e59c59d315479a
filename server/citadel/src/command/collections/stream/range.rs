//! The stream reads of one key: XLEN, XRANGE, XREVRANGE, and the entry
//! replies every stream read shares.

use citadel_collections::stream::page::entries;
use citadel_collections::stream::{Entry, StreamId, StreamRoot};
use citadel_resp::Reply;

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::args::interval_id;
use super::edit::{root_of, step, Fail, StreamTxn};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// One entry: `[id, [field, value, ...]]`.
pub fn reply_entry(out: &mut Reply<'_>, e: &Entry<'_>) {
    out.array(2);
    out.bulk(&e.id.text());
    out.array(e.fields.len());
    for f in &e.fields {
        out.bulk(f);
    }
}

/// The entries of `start..=end` (`rev`: from the end), at most `count`
/// (0: all), from the stream in an update; its pages must be planned by
/// [`plan_range`].
pub fn collect_range(
    s: &mut StreamTxn<'_, '_>,
    start: StreamId,
    end: StreamId,
    count: u64,
    rev: bool,
    mut f: impl FnMut(&Entry<'_>),
) -> Result<u64, Fail> {
    let pages = s.root.pages_in(start, end, count, rev);
    s.load_all(&pages)?;
    let mut n = 0u64;
    for page in pages {
        let list = entries(s.loaded(page)?)?;
        let in_range = |e: &&Entry<'_>| e.id >= start && e.id <= end;
        let mut emit = |e: &Entry<'_>| {
            if count != 0 && n >= count {
                return;
            }
            f(e);
            n += 1;
        };
        if rev {
            list.iter().rev().filter(in_range).for_each(&mut emit);
        } else {
            list.iter().filter(in_range).for_each(&mut emit);
        }
    }
    Ok(n)
}

/// Declares the pages [`collect_range`] reads.
pub fn plan_range(
    root: &[u8],
    user: usize,
    plan: &mut PagePlan,
    start: StreamId,
    end: StreamId,
    count: u64,
    rev: bool,
) {
    if let Ok(root) = StreamRoot::parse(root) {
        for page in root.pages_in(start, end, count, rev) {
            plan.need(user, page);
        }
    }
}

/// XRANGE key start end [COUNT count] / XREVRANGE key end start [COUNT count]
fn range(ctx: &mut Ctx<'_>, args: Args<'_>, rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev { (3, 2) } else { (2, 3) };
    let start = interval_id(args.get(start_arg), true)?;
    let end = interval_id(args.get(end_arg), false)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args.is(j, "count") && j + 1 < args.len() {
            count = citadel_resp::num::parse_i64(args.get(j + 1))
                .ok_or(CmdError::NotInteger)?
                .max(0);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // (-1: no COUNT, all; COUNT 0 answers an empty array once the key's
    // type is checked.)
    let limit = count.max(0) as u64;
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if count != 0 {
            plan_range(root, user, plan, start, end, limit, rev);
        }
        Ok(())
    };
    let resp3 = ctx.out.resp3;
    let mut reply = Vec::new();
    let n = update_paged_fresh(
        &mut ctx.thread.cache,
        &[args.get(1)],
        plan,
        |items, _, plan| {
            reply.clear();
            let Some(mut s) = StreamTxn::open(items, plan, 0)? else {
                return Ok(Step::Done(Some(0)));
            };
            if count == 0 {
                // Redis answers a null array here.
                return Ok(Step::Done(None));
            }
            let mut out = Reply::new(&mut reply, resp3);
            step(
                collect_range(&mut s, start, end, limit, rev, |e| reply_entry(&mut out, e))
                    .map(Some),
            )
        },
    )?;
    let Some(n) = n else {
        ctx.out.null_array();
        return Ok(());
    };
    ctx.out.array(n as usize);
    ctx.out.buf.extend_from_slice(&reply);
    Ok(())
}

pub fn xrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range(ctx, args, false)
}

pub fn xrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range(ctx, args, true)
}

/// XLEN key: the root alone.
pub fn xlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let found = ctx
        .thread
        .cache
        .get(args.get(1), |item| root_of(Some(item)));
    let length = match found {
        Some(root) => root?.map_or(0, |(root, _)| root.meta.length),
        None => 0,
    };
    ctx.out.int(length as i64);
    Ok(())
}
