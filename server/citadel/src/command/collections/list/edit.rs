//! List edits inside the list: LSET (one page) and LTRIM (the dropped
//! pages and two boundary pages); LINSERT and LREM rewrite the list whole
//! (O(N), as Redis documents them).

use citadel_collections::list::paged::{ListEdit, ListRoot};
use citadel_collections::list::{clamp_range, remove, resolve_index};

use super::read::whole;
use super::update_lists;
use crate::command::args::Args;
use crate::command::collections::paged::PagePlan;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// `plan` for user key 0 only (the single-key edits).
fn key0(
    mut plan: impl FnMut(&ListRoot, &mut PagePlan),
) -> impl FnMut(usize, &ListRoot, &mut PagePlan) {
    move |_, root, pages| plan(root, pages)
}

/// LSET key index element: "ERR no such key" or "ERR index out of range"
/// (the key is checked before the index is parsed, as Redis does).
pub fn lset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let index = |len: u64| {
        args.int(2)
            .ok()
            .and_then(|i| resolve_index(len as usize, i))
    };
    let plan = key0(|root, plan| {
        if let Some(at) = index(root.len) {
            plan.need_all(0, root.pages_covering(at as u64..at as u64 + 1));
        }
    });
    update_lists(&mut ctx.thread.cache, &[args.get(1)], plan, |lists| {
        let Some(mut list) = lists.open(0)? else {
            return Err(CmdError::NoSuchKey);
        };
        args.int(2)?;
        let at = index(list.edit.len()).ok_or(CmdError::Static("ERR index out of range"))?;
        list.edit.set(at as u64, args.get(3))?;
        lists.save(0, list);
        Ok(())
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
    let len = update_lists(
        &mut ctx.thread.cache,
        &[args.get(1)],
        key0(whole),
        |lists| {
            let Some(mut list) = lists.open(0)? else {
                return Ok(0);
            };
            let elements = list.edit.elements()?;
            let Some(at) = elements.iter().position(|e| *e == pivot) else {
                return Ok(-1);
            };
            let at = at + usize::from(after);
            let (before, rest) = elements.split_at(at);
            let new: Vec<&[u8]> = before
                .iter()
                .chain([&element])
                .chain(rest)
                .copied()
                .collect();
            let len = new.len() as i64;
            list.edit = ListEdit::rewritten(&new);
            lists.save(0, list);
            Ok(len)
        },
    )?;
    ctx.out.int(len);
    Ok(())
}

/// LREM key count element: how many were removed (count 0: all; negative:
/// from the tail).
pub fn lrem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = args.int(2)?;
    let element = args.get(3);
    let removed = update_lists(
        &mut ctx.thread.cache,
        &[args.get(1)],
        key0(whole),
        |lists| {
            let Some(mut list) = lists.open(0)? else {
                return Ok(0);
            };
            let mut kept = list.edit.elements()?;
            let removed = remove(&mut kept, element, count);
            if removed > 0 {
                list.edit = ListEdit::rewritten(&kept);
                lists.save(0, list);
            }
            Ok(removed)
        },
    )?;
    ctx.out.int(removed as i64);
    Ok(())
}

/// LTRIM key start stop: keeps `start ..= stop`; OK even for no key.
pub fn ltrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (start, stop) = (args.int(2)?, args.int(3)?);
    let keep = |len: u64| {
        let keep = clamp_range(len as usize, start, stop);
        keep.start as u64..keep.end as u64
    };
    let plan = key0(|root, plan| {
        let keep = keep(root.len);
        if !keep.is_empty() {
            for pages in root.pages_for_trim(&keep) {
                plan.need_all(0, pages);
            }
        }
    });
    update_lists(&mut ctx.thread.cache, &[args.get(1)], plan, |lists| {
        let Some(mut list) = lists.open(0)? else {
            return Ok(());
        };
        let keep = keep(list.edit.len());
        if keep.is_empty() {
            list.edit.clear();
        } else {
            list.edit.trim(keep)?;
        }
        lists.save(0, list);
        Ok(())
    })?;
    ctx.out.ok();
    Ok(())
}
