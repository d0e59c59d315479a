//! Read-only list commands: LLEN LRANGE LINDEX LPOS.

use citadel_collections::list::paged::{ListEdit, ListRoot};
use citadel_collections::list::{clamp_range, positions, resolve_index, PosQuery};

use super::{update_lists, LIST};
use crate::command::args::Args;
use crate::command::collections::paged::PagePlan;
use crate::command::collections::value::load;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Runs `f` on the list at `key` (None when missing) with the pages
/// `plan` names of a paged one. One lookup (counted as a hit or miss)
/// answers a packed list; a paged one is then read in an update over its
/// root and planned pages, where `f`'s reply replaces any an earlier
/// attempt wrote.
fn with_list(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    mut plan: impl FnMut(&ListRoot, &mut PagePlan),
    mut f: impl FnMut(&mut citadel_resp::Reply<'_>, Option<&ListEdit>) -> CmdResult,
) -> CmdResult {
    let mut buf = std::mem::take(&mut ctx.conn.scratch);
    let found = ctx.thread.cache.get(key, |item| {
        if item.is_root() {
            return Ok(false);
        }
        load(Some(item), LIST, &mut buf).map(|_| true)
    });
    let result = match found {
        None => f(&mut ctx.out, None),
        Some(Err(e)) => Err(e),
        Some(Ok(true)) => {
            let list = ListEdit::packed(&buf);
            list.map_err(CmdError::from)
                .and_then(|l| f(&mut ctx.out, Some(&l)))
        }
        Some(Ok(false)) => {
            let out = &mut ctx.out;
            let mark = out.buf.len();
            update_lists(
                &mut ctx.thread.cache,
                &[key],
                |_, root, pages| plan(root, pages),
                |lists| {
                    out.buf.truncate(mark);
                    let list = lists.open(0)?;
                    f(out, list.as_ref().map(|l| &l.edit))
                },
            )
        }
    };
    buf.clear();
    ctx.conn.scratch = buf;
    result
}

pub fn llen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_list(
        ctx,
        args.get(1),
        |_, _| {},
        |out, list| {
            out.int(list.map_or(0, |l| l.len()) as i64);
            Ok(())
        },
    )
}

/// LRANGE key start stop (both inclusive, negative from the tail): reads
/// only the pages of the range.
pub fn lrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (start, stop) = (args.int(2)?, args.int(3)?);
    let range = |len: u64| {
        let r = clamp_range(len as usize, start, stop);
        r.start as u64..r.end as u64
    };
    with_list(
        ctx,
        args.get(1),
        |root, plan| plan.need_all(0, root.pages_covering(range(root.len))),
        |out, list| {
            let Some(list) = list else {
                out.array(0);
                return Ok(());
            };
            let elements = list.range(range(list.len()))?;
            out.array(elements.len());
            elements.iter().for_each(|e| out.bulk(e));
            Ok(())
        },
    )
}

/// LINDEX key index: nil past either end (the key is checked first).
pub fn lindex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_list(
        ctx,
        args.get(1),
        |root, plan| {
            let index = args.int(2).ok();
            let at = index.and_then(|i| resolve_index(root.len as usize, i));
            if let Some(at) = at {
                plan.need_all(0, root.pages_covering(at as u64..at as u64 + 1));
            }
        },
        |out, list| {
            let Some(list) = list.filter(|l| !l.is_empty()) else {
                out.null();
                return Ok(());
            };
            match list.get(args.int(2)?)? {
                Some(element) => out.bulk(element),
                None => out.null(),
            }
            Ok(())
        },
    )
}

/// LPOS's options: the query and whether COUNT was given.
fn parse_lpos(args: &Args<'_>) -> Result<(PosQuery, bool), CmdError> {
    let mut query = PosQuery {
        rank: 1,
        count: 0,
        max_len: 0,
    };
    let mut with_count = false;
    let mut rank_min = false;
    let non_negative = |i: usize, err: &'static str| {
        let n = args.int(i).ok().filter(|&n| n >= 0);
        n.map(|n| n as usize).ok_or(CmdError::Static(err))
    };
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        if args.is(i, "rank") {
            query.rank = args.int(i + 1)?;
            // Redis negates it in place (still negative): every match then
            // reaches the rank, and the COUNT test overflows, so it reads
            // as rank -1 without a COUNT limit.
            rank_min = query.rank == i64::MIN;
            if query.rank == 0 {
                return Err(CmdError::Static(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if args.is(i, "count") {
            query.count = non_negative(i + 1, "ERR COUNT can't be negative")?;
            with_count = true;
        } else if args.is(i, "maxlen") {
            query.max_len = non_negative(i + 1, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    if rank_min {
        query.rank = -1;
        query.count = 0;
    }
    Ok((query, with_count))
}

/// LPOS key element [RANK rank] [COUNT num] [MAXLEN len]: the first
/// match's index (or nil), or with COUNT an array of them.
pub fn lpos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (query, with_count) = parse_lpos(&args)?;
    let query = PosQuery {
        count: if with_count { query.count } else { 1 },
        ..query
    };
    with_list(ctx, args.get(1), whole, |out, list| {
        let elements = list
            .map(ListEdit::elements)
            .transpose()?
            .unwrap_or_default();
        let found = positions(&elements, args.get(2), query);
        if with_count {
            out.array(found.len());
            found.iter().for_each(|&i| out.int(i as i64));
        } else {
            match found.first() {
                Some(&i) => out.int(i as i64),
                None => out.null(),
            }
        }
        Ok(())
    })
}

/// Plans every page (the commands Redis documents as O(N)).
pub(super) fn whole(root: &ListRoot, plan: &mut PagePlan) {
    plan.need_all(0, root.header.pages.clone());
}
