//! SMOVE source destination member, packed or paged on either side: both
//! keys (and the member's pages of paged ones) in one update.

use citadel_cache::{Changes, ItemRef};
use citadel_collections::linear_hash::{entry_bytes, Root};
use citadel_collections::{Packed, SetView};

use super::{SET, SHAPE};
use crate::command::args::Args;
use crate::command::collections::linear::{existing, page_copies, table, write_output};
use crate::command::collections::paged::{update_paged, PagePlan};
use crate::command::collections::value::{load, store, Existing};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Adds (`add`) or removes `member` at user key `i`; true when it changed.
fn edit(
    items: &[Option<ItemRef<'_>>],
    changes: &mut Changes,
    plan: &PagePlan,
    i: usize,
    existing: Option<Existing>,
    member: &[u8],
    add: bool,
) -> Result<bool, CmdError> {
    if let Some(root) = plan.root(i) {
        let pages = page_copies(items, plan, i);
        let mut table = table(root, SHAPE, &pages)?;
        let changed = if add {
            table.put(&[member], true)?
        } else {
            table.remove(member)?.is_some()
        };
        write_output(changes, plan, i, SET, existing, table.finish()?)?;
        return Ok(changed);
    }
    let mut buf = Vec::new();
    load(items[i].as_ref(), SET, &mut buf)?;
    let set = SetView::new(match existing {
        Some(_) => Packed::parse(&buf)?,
        None => Packed::empty(),
    });
    // A set grown past the paging limits here is paged by its next SADD.
    let edited = if add {
        set.with_members(&[member])?
    } else {
        set.without_members(&[member])?
    };
    if edited.changed > 0 {
        store(changes, i, SET, &edited.value, edited.members, existing)?;
    }
    Ok(edited.changed > 0)
}

/// SMOVE source destination member: 1 when moved (or, with source and
/// destination the same set, when the member is there), else 0.
pub fn smove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (source, destination, member) = (args.get(1), args.get(2), args.get(3));
    let cost = entry_bytes([member]);
    let plan = |i: usize, root: &[u8], plan: &mut PagePlan| {
        // Another type's root plans nothing: SMOVE answers WRONGTYPE.
        if let Ok(root) = Root::parse(root) {
            let (adds, removes) = if i == 0 { (0, 1) } else { (1, 0) };
            for page in root.pages_for([member], adds, cost * adds, removes) {
                plan.need(i, page);
            }
        }
        Ok(())
    };
    let moved = update_paged(
        &mut ctx.thread.cache,
        &[source, destination],
        plan,
        |items, changes, plan| {
            // A missing source moves nothing, whatever the destination holds.
            let Some(src_existing) = existing(items[0].as_ref(), SET)? else {
                return Ok(false);
            };
            let dst_existing = existing(items[1].as_ref(), SET)?;
            if source == destination {
                return is_member(items, plan, member);
            }
            if !edit(items, changes, plan, 0, Some(src_existing), member, false)? {
                return Ok(false);
            }
            edit(items, changes, plan, 1, dst_existing, member, true)?;
            Ok(true)
        },
    )?;
    ctx.out.int(i64::from(moved));
    Ok(())
}

/// Whether the source set (user key 0) holds `member`.
fn is_member(
    items: &[Option<ItemRef<'_>>],
    plan: &PagePlan,
    member: &[u8],
) -> Result<bool, CmdError> {
    if let Some(root) = plan.root(0) {
        let pages = page_copies(items, plan, 0);
        return Ok(table(root, SHAPE, &pages)?.get(member)?.is_some());
    }
    let mut buf = Vec::new();
    load(items[0].as_ref(), SET, &mut buf)?;
    Ok(SetView::new(Packed::parse(&buf)?).contains(member)?)
}
