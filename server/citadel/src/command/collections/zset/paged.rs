//! Sorted-set commands on the paged form (`citadel_collections::zset::
//! paged`): a root, a member index (linear-hash pages of member, score)
//! and an order-statistic B+tree of (score, member) in pages. A command
//! plans from the root the index pages of the members it names and the
//! free chain's head; the tree's pages are found level by level: a run
//! that meets a page it has not loaded asks for it (`Step::More`) and the
//! update runs again with it, the root unchanged (else everything is
//! planned afresh). So ZADD, ZINCRBY, ZREM, ZSCORE, ZRANK, ZCARD, ZCOUNT,
//! ZRANGE by rank or score and ZPOPMIN/MAX read and write O(log n) pages,
//! all in one update of root and pages (atomic to readers, crash-atomic).

use std::borrow::Cow;
use std::collections::BTreeSet;

use citadel_cache::{CacheHandle, Changes, ItemRef, PutOptions, ValueKind};
use citadel_collections::linear_hash::{Root, Table};
use citadel_collections::zset::paged::{index_score, ZRoot, ARITY, BASE};
use citadel_collections::zset::tree::{Key, Miss, Tree};
use citadel_collections::Corrupt;

use super::super::linear::{existing, loaded_entries, page_copies, scan_table};
use super::super::paged::{
    keep_spare, spare_buf, update_paged_fresh, update_paged_seeded, PagePlan, Seed, Step,
};
use super::super::value::{store, Existing};
use super::whole::{Whole, WholeRun};
use super::ZSET;
use crate::command::error::CmdError;

mod ahead;

use ahead::Ready;

/// Why a paged run stopped: pages to load first, or an error to answer.
pub(super) enum Fail {
    Need(Vec<u64>),
    Cmd(CmdError),
}

impl From<Miss> for Fail {
    fn from(miss: Miss) -> Fail {
        match miss {
            Miss::Need(pages) => Fail::Need(pages),
            Miss::Corrupt => Fail::Cmd(CmdError::CorruptValue),
        }
    }
}

impl From<CmdError> for Fail {
    fn from(e: CmdError) -> Fail {
        Fail::Cmd(e)
    }
}

impl From<Corrupt> for Fail {
    fn from(_: Corrupt) -> Fail {
        Fail::Cmd(CmdError::CorruptValue)
    }
}

/// Several tree probes in one round: each answer, or the pages it still
/// needs gathered into `need` (then None), so probes whose paths differ
/// load their pages together instead of one run per probe and level.
pub(super) fn gather<T>(probe: Result<T, Miss>, need: &mut Vec<u64>) -> Result<Option<T>, Fail> {
    match probe {
        Ok(value) => Ok(Some(value)),
        Err(Miss::Need(pages)) => {
            need.extend(pages);
            Ok(None)
        }
        Err(Miss::Corrupt) => Err(Fail::Cmd(CmdError::CorruptValue)),
    }
}

/// The (member, score) pairs of one ZSCAN call.
pub(super) type ScanPage = Vec<(Vec<u8>, f64)>;

/// A paged sorted set loaded for one run of a command.
pub(super) struct PagedZ<'p> {
    root: ZRoot<'p>,
    planned: BTreeSet<u64>,
    table: Table<'p>,
    pub tree: Tree<'p>,
}

impl<'p> PagedZ<'p> {
    /// The set whose root is `root`, over the copied pages `pages`.
    fn load(root: &'p [u8], pages: &'p [(u64, Option<Vec<u8>>)]) -> Result<PagedZ<'p>, CmdError> {
        PagedZ::from_slices(root, pages.iter().map(|(p, b)| (*p, b.as_deref())))
    }

    /// The set whose root is `root`, over pages (page number, bytes; None:
    /// not stored) borrowed from wherever they were read.
    fn from_slices(
        root: &'p [u8],
        pages: impl IntoIterator<Item = (u64, Option<&'p [u8]>)>,
    ) -> Result<PagedZ<'p>, CmdError> {
        let root = ZRoot::parse(root)?;
        let mut z = PagedZ {
            planned: BTreeSet::new(),
            table: Table::from_root(root.index.clone(), ARITY, std::iter::empty())?,
            tree: Tree::new(root.tree.clone(), BASE, std::iter::empty()),
            root,
        };
        z.add_pages(pages)?;
        Ok(z)
    }

    /// Loads more pages (absolute numbers), as [`PagedZ::from_slices`].
    fn add_pages(
        &mut self,
        pages: impl IntoIterator<Item = (u64, Option<&'p [u8]>)>,
    ) -> Result<(), Corrupt> {
        for (page, bytes) in pages {
            self.planned.insert(page);
            match (page >= BASE, bytes) {
                (true, bytes) => self.table.add_page(page - BASE, bytes)?,
                (false, Some(bytes)) => self.tree.add_page(page, bytes),
                (false, None) => {}
            }
        }
        Ok(())
    }

    /// Whether a run changed anything.
    fn edited(&self) -> bool {
        self.tree.changed() || self.table.changed()
    }

    pub fn len(&self) -> u64 {
        self.root.len()
    }

    /// Asks for the index pages of `members` (and of the splits or merges
    /// `adds`/`removes` entries may cause) when they were not planned.
    pub fn need_members<'m>(
        &self,
        members: impl IntoIterator<Item = &'m [u8]>,
        adds: u64,
        removes: u64,
    ) -> Result<(), Fail> {
        let missing: Vec<u64> = self
            .root
            .index_pages(members, adds, removes)
            .into_iter()
            .filter(|p| !self.planned.contains(p))
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(Fail::Need(missing)),
        }
    }

    /// `member`'s score, if present.
    pub fn score(&self, member: &[u8]) -> Result<Option<f64>, Fail> {
        self.need_members([member], 0, 0)?;
        match self.table.get(member)? {
            Some(entry) => Ok(Some(index_score(entry)?)),
            None => Ok(None),
        }
    }

    /// Sets `member`'s score (`old`: its current one, if any).
    pub fn set(&mut self, member: &[u8], old: Option<f64>, score: f64) -> Result<(), Fail> {
        let score = score + 0.0;
        if let Some(old) = old {
            self.tree.remove(&(old, Cow::Borrowed(member)))?;
        }
        self.tree.insert((score, Cow::Owned(member.to_vec())))?;
        self.table.put(&[member, &score.to_le_bytes()], false)?;
        Ok(())
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Result<Option<f64>, Fail> {
        let Some(score) = self.score(member)? else {
            return Ok(None);
        };
        self.tree.remove(&(score, Cow::Borrowed(member)))?;
        self.table.remove(member)?;
        Ok(Some(score))
    }

    /// One ZSCAN call from `cursor` over the member index (its pages
    /// planned by `linear::scan_plan`): (member, score) pairs and the next
    /// cursor (0: done).
    pub fn scan(&self, cursor: u64, count: usize) -> Result<(ScanPage, u64), Fail> {
        let (entries, next) = scan_table(&self.table, cursor, count)?;
        let pairs = entries.into_iter().map(|mut entry| {
            let score = entry.pop().ok_or(Corrupt)?;
            let score = <[u8; 8]>::try_from(&score[..]).map_err(|_| Corrupt)?;
            let member = entry.pop().ok_or(Corrupt)?;
            Ok((member, f64::from_le_bytes(score)))
        });
        Ok((pairs.collect::<Result<_, Corrupt>>()?, next))
    }

    /// The (member, score) pairs of the loaded index pages if they hold at
    /// least `want` members (or the whole set); None: plan more pages.
    pub fn sample(&self, want: u64) -> Result<Option<ScanPage>, Fail> {
        let entries = loaded_entries(&self.table)?;
        if (entries.len() as u64) < want.min(self.table.len()) {
            return Ok(None);
        }
        let pairs = entries.into_iter().map(|entry| {
            let score = index_score(entry)?;
            Ok((entry[0].to_vec(), score))
        });
        Ok(Some(pairs.collect::<Result<_, Corrupt>>()?))
    }

    /// The pages (absolute numbers) this run's edits write, when it
    /// changed anything.
    fn written_pages(&mut self) -> Result<Vec<u64>, Corrupt> {
        if !self.tree.changed() {
            return Ok(Vec::new());
        }
        let mut pages = self.tree.pages_to_write();
        let index = self.table.pages_to_write()?;
        pages.extend(index.into_iter().map(|p| BASE + p));
        Ok(pages)
    }

    /// Loads the tree paths of `keys` in one round (an edit naming many).
    pub fn prefetch<'k, 'm: 'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k Key<'m>>,
    ) -> Result<(), Fail> {
        let need = self.tree.missing_for(keys)?;
        match need.is_empty() {
            true => Ok(()),
            false => Err(Fail::Need(need)),
        }
    }
}

/// Plans the pages `pages_of` names and the free chain's head of a paged
/// sorted set (another root plans nothing: WRONGTYPE follows).
fn planner(
    mut pages_of: impl FnMut(&ZRoot) -> Vec<u64>,
) -> impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError> {
    move |user, root, plan| {
        if let Ok(root) = ZRoot::parse(root) {
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
pub(super) fn update_one<R>(
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
pub(super) fn update_planned<R>(
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
pub(super) fn update_guarded<R>(
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
                if item.kind() == ZSET {
                    let mut root = spare_buf();
                    item.write_value_to(&mut root);
                    seen_root = Some(root);
                }
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
                let mut copy = spare_buf();
                copy.extend_from_slice(&root);
                let seed = Seed {
                    user: 0,
                    root: copy,
                    pages,
                };
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
pub(super) fn update_into<R>(
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
    const PAGE: PutOptions = PutOptions {
        expire_at: None,
        soft_expire_at: None,
        negative: false,
        kind: ValueKind::Page,
        editable: false,
        raw_string: false,
    };
    for (page, bytes) in &index.pages {
        let at = plan.item(0, base + page).ok_or(CmdError::CorruptValue)?;
        match bytes {
            Some(bytes) => changes.put_with(at, &[&bytes[..]], PAGE)?,
            None => changes.delete(at),
        }
    }
    for (page, bytes) in &tree_pages {
        let at = plan.item(0, *page).ok_or(CmdError::CorruptValue)?;
        changes.put_with(at, &[&bytes[..]], PAGE)?;
    }
    let root = ZRoot {
        index: index_root,
        tree: shape,
    };
    store(changes, 0, ZSET, &root.encode(), 1, existing)?;
    Ok(None)
}

/// Whether `key` holds a paged sorted set now (a read then takes the
/// paged path; a packed one is read with one lookup as before).
pub(super) fn is_paged(cache: &mut CacheHandle, key: &[u8]) -> bool {
    cache
        .get(key, |item| item.is_root() && item.kind() == ZSET)
        .unwrap_or(false)
}
