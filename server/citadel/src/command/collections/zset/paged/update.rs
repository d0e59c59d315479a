//! The updates of a paged sorted set: a command's first update reads the
//! key alone (a packed set is edited there, a paged root copied out); on
//! a paged root the command runs ahead (`ahead.rs`) and the update,
//! planned from that root and every page the run read or wrote, stores the
//! run's edit when it finds that root (else runs the command itself, its
//! tree's pages found level by level: `Step::More`). A read whose run
//! ahead changed nothing needs no update when the root is still the same.

use citadel_cache::{CacheHandle, Changes, ItemRef, PutOptions};
use citadel_collections::linear_hash::Root;
use citadel_collections::zset::paged::{ZRoot, BASE};
use citadel_collections::zset::tree::Tree;

use super::super::super::linear::{existing, page_copies};
use super::super::super::paged::{
    keep_spare, root_value, spare_buf, still_root, update_paged_fresh, update_paged_seeded,
    PagePlan, Seed, Step,
};
use super::super::super::value::{store, Existing};
use super::super::whole::{Whole, WholeRun};
use super::super::ZSET;
use super::ahead::{self, Ready};
use super::{Fail, PagedZ};
use crate::command::error::CmdError;

/// Plans the pages `pages_of` names and the free chain's head of a paged
/// sorted set (another root plans nothing: WRONGTYPE follows).
fn planner(
    mut pages_of: impl FnMut(&ZRoot) -> Vec<u64>,
) -> impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError> {
    move |user, root, plan| {
        if let Ok(root) = ZRoot::parse_for_plan(root) {
            for page in pages_of(&root) {
                plan.need(user, page);
            }
            if let Some(head) = Tree::free_head(&root.tree) {
                plan.need(user, head);
            }
        }
        Ok(())
    }
}

/// Runs a command on the sorted set at `key` in one update: `packed` on
/// the packed form (or no key; through the whole-value path, which also
/// pages a set that grows past the limits), `paged` on a paged one.
/// `members`, `adds`, `removes`: what to plan from a paged root.
pub(in crate::command::collections::zset) fn update_one<R>(
    cache: &mut CacheHandle,
    key: &[u8],
    (members, adds, removes): (&[&[u8]], u64, u64),
    packed: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &mut Whole<'_>) -> Result<R, CmdError>,
    paged: impl FnMut(&mut PagedZ<'_>) -> Result<R, Fail>,
) -> Result<R, CmdError> {
    let pages_of = |root: &ZRoot| root.index_pages(members.iter().copied(), adds, removes);
    update_planned(cache, key, pages_of, packed, paged)
}

/// [`update_one`] with the pages to plan from a paged root named by
/// `pages_of` (absolute numbers: index pages from `BASE`).
pub(in crate::command::collections::zset) fn update_planned<R>(
    cache: &mut CacheHandle,
    key: &[u8],
    pages_of: impl FnMut(&ZRoot) -> Vec<u64>,
    packed: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &mut Whole<'_>) -> Result<R, CmdError>,
    paged: impl FnMut(&mut PagedZ<'_>) -> Result<R, Fail>,
) -> Result<R, CmdError> {
    update_guarded(cache, &[key], pages_of, packed, paged)?.ok_or(CmdError::CorruptValue)
}

/// [`update_planned`] on `keys[0]` while every other key of `keys` is
/// missing, checked in the same update (a multi-key pop takes from its
/// first existing key: the keys before it are the guards); None, nothing
/// written, when a guard exists.
pub(in crate::command::collections::zset) fn update_guarded<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    mut pages_of: impl FnMut(&ZRoot) -> Vec<u64>,
    mut packed: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &mut Whole<'_>) -> Result<R, CmdError>,
    mut paged: impl FnMut(&mut PagedZ<'_>) -> Result<R, Fail>,
) -> Result<Option<R>, CmdError> {
    if let [key] = keys {
        // Most sorted sets are packed and stay so: one plain update, no
        // plan. A paged root, or a set growing past the limits, takes the
        // planned path below (nothing was written); a paged root is kept:
        // the command runs ahead on it (`ahead.rs`).
        let mut seen_root = None;
        let direct = cache.update(&[key], |items, changes| {
            if let Some(item) = items[0].as_ref().filter(|item| item.is_root()) {
                seen_root = zset_root(item);
                return Ok(None);
            }
            let mut whole = WholeRun::unplanned();
            let result = packed(items, changes, &mut whole.whole)?;
            Ok(match whole.finish(result) {
                Step::Done(result) => Some(result),
                _ => None,
            })
        });
        if let Some(result) = direct.map_err(CmdError::from).and_then(|r| r)? {
            return Ok(Some(result));
        }
        if let Some(root) = seen_root {
            let then = |cache: &mut CacheHandle,
                        pages_of: &mut _,
                        paged: &mut _,
                        pages,
                        ready: Option<Ready<'_, R>>| {
                let seed = seed_of(&root, pages);
                update_paged_z(cache, keys, Some(seed), pages_of, &mut packed, paged, ready)
            };
            let done = ahead::run_ahead(cache, key, &root, &mut pages_of, &mut paged, then);
            keep_spare(root);
            return done;
        }
    }
    update_paged_z(
        cache,
        keys,
        None,
        &mut pages_of,
        &mut packed,
        &mut paged,
        None,
    )
}

/// Runs `paged`, a read, on the sorted set at `key` when it is paged
/// (None: it is not a paged sorted set; the caller reads it packed).
/// `members`: the members whose index pages to plan. The command runs
/// ahead over copies of the pages (`ahead.rs`); when it changed nothing
/// and the key holds the root it ran on still, its answer stands without
/// any update (every write of a paged set writes a new root, so the pages
/// it read were that root's); else it runs in the update.
pub(in crate::command::collections::zset) fn read_one<R>(
    cache: &mut CacheHandle,
    key: &[u8],
    members: &[&[u8]],
    mut paged: impl FnMut(&mut PagedZ<'_>) -> Result<R, Fail>,
) -> Result<Option<R>, CmdError> {
    // (A lookup that counts: a paged root's frequency keeps its pages.)
    let Some(root) = cache.get(key, zset_root).flatten() else {
        return Ok(None);
    };
    let mut pages_of = |root: &ZRoot| root.index_pages(members.iter().copied(), 0, 0);
    let mut paged = |z: &mut PagedZ<'_>| paged(z).map(Some);
    let then = |cache: &mut CacheHandle,
                pages_of: &mut _,
                paged: &mut _,
                pages,
                ready: Option<Ready<'_, Option<R>>>| {
        let stands = ready
            .as_ref()
            .is_some_and(|r| !r.z.edited() && still_root(cache, key, r.root));
        if stands {
            return Ok(ready.and_then(|r| r.result));
        }
        let seed = seed_of(&root, pages);
        let mut packed = |_: &[Option<ItemRef<'_>>], _: &mut Changes, _: &mut Whole<'_>| Ok(None);
        let done = update_paged_z(
            cache,
            &[key],
            Some(seed),
            pages_of,
            &mut packed,
            paged,
            ready,
        )?;
        Ok(done.flatten())
    };
    let done = ahead::run_ahead(cache, key, &root, &mut pages_of, &mut paged, then);
    keep_spare(root);
    done
}

/// A copy of `item` if it is a paged sorted set's root (another kind of
/// root is left to the path that answers WRONGTYPE).
fn zset_root(item: &ItemRef<'_>) -> Option<Vec<u8>> {
    (item.kind() == ZSET).then(|| root_value(item)).flatten()
}

/// The seed of the update after a run ahead on `root`: a copy of the
/// root (the kept run borrows the original) and the pages the runs read
/// or wrote beyond the planned ones.
fn seed_of(root: &[u8], pages: Vec<u64>) -> Seed {
    let mut copy = spare_buf();
    copy.extend_from_slice(root);
    Seed {
        user: 0,
        root: copy,
        pages,
    }
}

/// [`update_guarded`]'s update over the pages of a paged root (planned
/// from `seed` when given), or of a set growing past the packed limits.
/// `ready`: the command's run ahead on the seed's root, whose edit is
/// stored as it is when the update finds that root.
fn update_paged_z<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    seed: Option<Seed>,
    pages_of: &mut impl FnMut(&ZRoot) -> Vec<u64>,
    packed: &mut impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &mut Whole<'_>) -> Result<R, CmdError>,
    paged: &mut impl FnMut(&mut PagedZ<'_>) -> Result<R, Fail>,
    mut ready: Option<Ready<'_, R>>,
) -> Result<Option<R>, CmdError> {
    let mut plan_target = planner(pages_of);
    // (A guard's pages are never read: it only has to be missing.)
    let plan_pages = move |user: usize, root: &[u8], plan: &mut PagePlan| match user {
        0 => plan_target(user, root, plan),
        _ => Ok(()),
    };
    let f = |items: &[Option<ItemRef<'_>>], changes: &mut Changes, plan: &PagePlan| {
        // (The items after the user keys are the planned pages.)
        if items[1..keys.len()].iter().any(Option::is_some) {
            return Ok(Step::Done(None));
        }
        let existing = existing(items[0].as_ref(), ZSET)?;
        let Some(root) = plan.root(0) else {
            let mut whole = WholeRun::new(plan);
            let result = packed(items, changes, &mut whole.whole)?;
            return Ok(whole.finish(Some(result)));
        };
        // The run ahead read this very root, so these very pages (every
        // write of a paged set writes a new root): its edit is stored.
        if let Some(Ready { z, result, .. }) = ready.take_if(|r| r.root == root) {
            return finish_run(changes, plan, existing, z, Ok(result));
        }
        let pages = page_copies(items, plan, 0);
        let mut z = PagedZ::load(root, &pages)?;
        let result = paged(&mut z);
        finish_run(changes, plan, existing, z, result)
    };
    match seed {
        Some(seed) => update_paged_seeded(cache, keys, seed, plan_pages, f),
        None => update_paged_fresh(cache, keys, plan_pages, f),
    }
}

/// The step a paged run ends with: its writes stored (or the pages it
/// still needs asked for) and its result, or its error.
fn finish_run<R>(
    changes: &mut Changes,
    plan: &PagePlan,
    existing: Option<Existing>,
    z: PagedZ<'_>,
    result: Result<R, Fail>,
) -> Result<Step<Option<R>>, CmdError> {
    match result {
        Ok(result) => match write(changes, plan, existing, z)? {
            None => Ok(Step::Done(Some(result))),
            Some(more) => Ok(Step::More(more)),
        },
        Err(Fail::Need(pages)) => Ok(Step::More(pages.into_iter().map(|p| (0, p)).collect())),
        Err(Fail::Cmd(e)) => Err(e),
    }
}

/// Runs `paged` on the paged sorted set at `keys[1]` (read only: the
/// pages of its tree that `paged` asks for) in one update with `keys[0]`,
/// which `paged` may replace through the [`Whole`] it gets (a STORE form:
/// a big result is stored paged, with fresh pages). None, nothing
/// written, when the source is not a paged root (any more) or `paged`
/// answers None (a query it cannot serve from pages): the caller then
/// takes the whole path.
pub(in crate::command::collections::zset) fn update_into<R>(
    cache: &mut CacheHandle,
    keys: [&[u8]; 2],
    mut paged: impl FnMut(
        &mut PagedZ<'_>,
        &[Option<ItemRef<'_>>],
        &mut Changes,
        &mut Whole<'_>,
    ) -> Result<Option<R>, Fail>,
) -> Result<Option<R>, CmdError> {
    // (The tree's pages are found level by level; nothing is planned.)
    let plan_nothing = |_: usize, _: &[u8], _: &mut PagePlan| Ok(());
    update_paged_fresh(cache, &keys, plan_nothing, |items, changes, plan| {
        let Some(root) = plan.root(1) else {
            return Ok(Step::Done(None));
        };
        existing(items[1].as_ref(), ZSET)?;
        let pages = page_copies(items, plan, 1);
        let mut z = PagedZ::load(root, &pages)?;
        let mut run = WholeRun::new(plan);
        match paged(&mut z, items, changes, &mut run.whole) {
            Ok(result) => Ok(run.finish(result)),
            Err(Fail::Need(pages)) => Ok(Step::More(pages.into_iter().map(|p| (1, p)).collect())),
            Err(Fail::Cmd(e)) => Err(e),
        }
    })
}

/// Stores what a paged run changed: the new root (the key deleted when
/// empty: the engine reclaims the pages), changed index and tree pages.
/// Returns the pages to plan first when the run allocated unplanned ones
/// (nothing was written; the next run allocates the same).
fn write(
    changes: &mut Changes,
    plan: &PagePlan,
    existing: Option<Existing>,
    z: PagedZ<'_>,
) -> Result<Option<Vec<(usize, u64)>>, CmdError> {
    let PagedZ {
        root, table, tree, ..
    } = z;
    if !tree.changed() {
        return Ok(None);
    }
    let index = table.finish()?;
    let shape = tree.shape.clone();
    let tree_pages = tree.finish();
    let base = BASE;
    let unplanned: Vec<(usize, u64)> = tree_pages
        .iter()
        .map(|(p, _)| *p)
        .chain(index.pages.iter().map(|(p, _)| base + p))
        .filter(|p| plan.item(0, *p).is_none())
        .map(|p| (0, p))
        .collect();
    if !unplanned.is_empty() {
        return Ok(Some(unplanned));
    }
    let index_root = match (index.changed, index.root) {
        (true, Some(bytes)) => Root::parse(&bytes)?,
        (true, None) => {
            changes.delete(0);
            return Ok(None);
        }
        (false, _) => Root {
            header: root.index.header.next(),
            ..root.index
        },
    };
    if shape.top.is_empty() {
        changes.delete(0);
        return Ok(None);
    }
    for (page, bytes) in &index.pages {
        let at = plan.item(0, base + page).ok_or(CmdError::CorruptValue)?;
        match bytes {
            Some(bytes) => changes.put_with(at, &[&bytes[..]], PutOptions::PAGE)?,
            None => changes.delete(at),
        }
    }
    for (page, bytes) in &tree_pages {
        let at = plan.item(0, *page).ok_or(CmdError::CorruptValue)?;
        changes.put_with(at, &[&bytes[..]], PutOptions::PAGE)?;
    }
    let root = ZRoot {
        index: index_root,
        tree: shape,
    };
    store(changes, 0, ZSET, &root.encode(), 1, existing)?;
    Ok(None)
}
