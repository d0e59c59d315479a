//! Collections stored as a root plus pages (`citadel_cache::owned`): a
//! command that meets a paged root learns from it which pages it needs,
//! then runs over the user keys and those pages in one `update`, checking
//! that every root is still the one it planned from by its header (each
//! write of a paged collection rewrites its root, whose version then
//! moves: `matches_plan`). So a paged
//! collection is read and written atomically, and crash-atomically, like a
//! packed one; a command on packed collections pays one byte compare.

use std::cell::RefCell;

use citadel_cache::owned::{page_key, OWNER_MARK};
use citadel_cache::{CacheHandle, Changes, InPlaceEdit, ItemRef};
use citadel_collections::list::paged::EndEdit;

use super::few::Few;
use crate::command::error::CmdError;

mod hints;
mod matches;
mod spare;

pub use matches::root_value;
use matches::{is_root, matches_plan};

use spare::Spares;
pub use spare::{keep_spare, spare_buf};

// The collections crate knows nothing of the engine: its paged encoding
// byte must be the engine's root mark.
const _: () = assert!(citadel_collections::paged::ENCODING_PAGED == OWNER_MARK);

/// The pages a command needs, planned from the roots it saw.
#[derive(Default, Debug)]
pub struct PagePlan {
    users: usize,
    /// Each user key's root value when it was planned (None: not paged).
    roots: Vec<Option<Vec<u8>>>,
    /// (user key index, page number), sorted; the page's item index is
    /// `users + position`.
    pages: Vec<(usize, u64)>,
    keys: Vec<Vec<u8>>,
    /// Pages of new roots (a collection rebuilt under a fresh generation):
    /// (user key index, generation, pages), items after the planned pages.
    fresh: Vec<(usize, u64, std::ops::Range<u64>)>,
    fresh_keys: Vec<Vec<u8>>,
    /// The roots `f` wrote (None: the key is no longer paged), for the
    /// thread's root hints (see `hints.rs`); only a hinted update reads it.
    written: RefCell<Vec<(usize, Option<Vec<u8>>)>>,
    /// Buffers of earlier keys and roots, reused (see [`SPARE`]).
    bufs: Vec<Vec<u8>>,
    /// The thread's root hints (`hints.rs`), kept with its plan.
    hints: hints::Hints,
    /// Buffers a list edit takes and gives back (its inline ends, its new
    /// root; a planned root's once the command is done with it).
    spare: RefCell<Spares>,
    /// A list root the command edited in place (user key, the edit, the
    /// buffer it was planned into): `hints::keep` applies it to the
    /// planned root, which is then the thread's hint (no copy).
    edited: RefCell<Option<(usize, EndEdit, Vec<u8>)>>,
}

/// Buffers a thread's spare plan keeps.
const SPARE_BUFS: usize = 16;

thread_local! {
    /// The thread's plan, borrowed in place by each command (one
    /// thread-local access, nothing moved), whose buffers the next one
    /// reuses: a command on a paged collection then allocates no page
    /// keys.
    static SPARE: RefCell<PagePlan> = RefCell::default();
}

impl PagePlan {
    /// Empties the plan for `users` user keys, keeping its buffers.
    fn clear(&mut self, users: usize) {
        self.users = users;
        let PagePlan {
            roots,
            pages,
            keys,
            fresh,
            fresh_keys,
            written,
            bufs,
            spare,
            edited,
            ..
        } = self;
        // Plain loops: the generic drain/flatten/resize cost more than the
        // few buffers they move. A root's buffer goes to the plan's
        // spares (the next root written is built in one).
        let spare = spare.get_mut();
        for root in roots.iter_mut() {
            if let Some(root) = root.take() {
                spare.keep(root);
            }
        }
        roots.truncate(users);
        while roots.len() < users {
            roots.push(None);
        }
        if let Some((_, _, bytes)) = edited.get_mut().take() {
            spare.keep(bytes);
        }
        for (_, root) in written.get_mut().drain(..) {
            if let Some(root) = root {
                spare.keep(root);
            }
        }
        // (Most commands name no page: nothing to move.)
        if !keys.is_empty() || !fresh_keys.is_empty() {
            bufs.append(keys);
            bufs.append(fresh_keys);
        }
        pages.clear();
        fresh.clear();
    }

    /// `N` cleared buffers from the plan's spares (a list edit's ends and
    /// new root).
    pub fn spare_bufs<const N: usize>(&self) -> [Vec<u8>; N] {
        self.spare.borrow_mut().take()
    }

    /// Gives `bufs` back to the plan's spares.
    pub fn keep_spares<const N: usize>(&self, bufs: [Vec<u8>; N]) {
        let mut spare = self.spare.borrow_mut();
        bufs.into_iter().for_each(|b| spare.keep(b));
    }

    /// The root value user key `user` had when planned (paged roots only).
    pub fn root(&self, user: usize) -> Option<&[u8]> {
        self.roots[user].as_deref()
    }

    /// Notes the root the command writes for user key `user` (None: it
    /// stores the key packed, or deletes it), so the thread's next
    /// command on the key plans from it in one pass (`update_paged_hinted`).
    pub fn wrote_root(&self, user: usize, root: Option<Vec<u8>>) {
        self.written.borrow_mut().push((user, root));
    }

    /// Notes that the command edited user key `user`'s list root in
    /// place (`edit`, planned into `bytes`): the planned root gets the
    /// same writes once the command is done and is the thread's next
    /// hint for the key (`hints::keep`).
    pub fn edited_root(&self, user: usize, edit: EndEdit, bytes: Vec<u8>) {
        let old = self.edited.borrow_mut().replace((user, edit, bytes));
        if let Some((_, _, bytes)) = old {
            self.spare.borrow_mut().keep(bytes);
        }
    }

    /// Forgets what an attempt that runs again wrote or edited.
    #[inline]
    fn forget_writes(&self) {
        self.written.borrow_mut().clear();
        if let Some((_, _, bytes)) = self.edited.borrow_mut().take() {
            self.spare.borrow_mut().keep(bytes);
        }
    }

    /// Declares page `page` of user key `user` (whose root is paged).
    pub fn need(&mut self, user: usize, page: u64) {
        self.pages.push((user, page));
    }

    /// Declares pages `pages` of user key `user`.
    pub fn need_all(&mut self, user: usize, pages: std::ops::Range<u64>) {
        self.pages.extend(pages.map(|page| (user, page)));
    }

    /// The item index of page `page` of user key `user`, if planned.
    pub fn item(&self, user: usize, page: u64) -> Option<usize> {
        self.pages
            .binary_search(&(user, page))
            .ok()
            .map(|at| self.users + at)
    }

    /// The pages planned for user key `user`, with their item indices.
    pub fn pages_of(&self, user: usize) -> impl Iterator<Item = (u64, usize)> + '_ {
        let start = self.pages.partition_point(|&(u, _)| u < user);
        self.pages[start..]
            .iter()
            .take_while(move |&&(u, _)| u == user)
            .enumerate()
            .map(move |(i, &(_, page))| (page, self.users + start + i))
    }

    /// The fresh generation and pages granted to user key `user` (see
    /// [`Step::Fresh`]).
    pub fn fresh(&self, user: usize) -> Option<(u64, std::ops::Range<u64>)> {
        self.fresh
            .iter()
            .find(|f| f.0 == user)
            .map(|f| (f.1, f.2.clone()))
    }

    /// The item index of fresh page `page` of user key `user`.
    pub fn fresh_item(&self, user: usize, page: u64) -> Option<usize> {
        let mut at = self.users + self.pages.len();
        for (u, _, pages) in &self.fresh {
            if *u == user && pages.contains(&page) {
                return Some(at + (page - pages.start) as usize);
            }
            at += (pages.end - pages.start) as usize;
        }
        None
    }

    /// Grants `pages` under a new generation to user key `user`.
    fn grant(&mut self, keys: &[&[u8]], user: usize, pages: std::ops::Range<u64>) {
        self.fresh.retain(|f| f.0 != user);
        let generation = citadel_cache::owned::new_generation();
        self.fresh.push((user, generation, pages));
        self.fresh_keys.clear();
        for (user, generation, pages) in &self.fresh {
            for page in pages.clone() {
                let mut key = Vec::new();
                page_key(keys[*user], *generation, page, &mut key);
                self.fresh_keys.push(key);
            }
        }
    }

    fn finish(&mut self, keys: &[&[u8]]) -> Result<(), CmdError> {
        // (A push or pop plans its pages in order: nothing to sort.)
        if !self.pages.windows(2).all(|w| w[0] < w[1]) {
            self.pages.sort_unstable();
            self.pages.dedup();
        }
        self.bufs.append(&mut self.keys);
        for &(user, page) in &self.pages {
            let generation = self
                .root(user)
                .and_then(citadel_cache::owned::owner_generation)
                .ok_or(CmdError::CorruptValue)?;
            // (`page_key` clears it.)
            let mut key = self.bufs.pop().unwrap_or_default();
            page_key(keys[user], generation, page, &mut key);
            self.keys.push(key);
        }
        Ok(())
    }
}

enum Outcome<R> {
    Done(Result<Step<R>, CmdError>),
    /// A root differs from the plan: these are the roots seen.
    Replan(Vec<Option<Vec<u8>>>),
}

/// Most fresh-page grants (or rounds of more pages) in a row before a
/// command gives up.
const MAX_GRANTS: usize = 64;

/// What an update over paged collections did.
pub enum Step<R> {
    Done(R),
    /// Nothing written: these user keys are to be rebuilt as new roots
    /// and need these pages declared (a fresh generation each); run again.
    Fresh(Vec<(usize, std::ops::Range<u64>)>),
    /// Nothing written: a structure read from the planned pages (a sorted
    /// set's tree) needs these pages of these user keys too; run again.
    More(Vec<(usize, u64)>),
}

/// [`update_paged_fresh`] for a command that never asks for fresh pages.
pub fn update_paged<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    plan: impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    mut f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &PagePlan) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    update_paged_fresh(cache, keys, plan, |items, changes, plan| {
        f(items, changes, plan).map(Step::Done)
    })
}

/// Runs `f` over `keys` and the pages `plan` asks for, in one `update`.
/// `f` sees the user keys' items first (index i for `keys[i]`), then the
/// planned pages (`PagePlan::item`). `plan(i, root, plan)` is called for
/// each user key whose item is a paged root, with the root's value, and
/// declares the pages the command needs. While no key is paged, `f` runs
/// on the first attempt with an empty plan. `f` may also ask for fresh
/// pages (to store a collection as a new root and pages: a packed value
/// outgrowing its form, a value rebuilt whole); it then runs again with
/// them declared (`PagePlan::fresh`, `PagePlan::fresh_item`), in a new
/// update.
pub fn update_paged_fresh<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    plan: impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &PagePlan) -> Result<Step<R>, CmdError>,
) -> Result<R, CmdError> {
    run(cache, keys, Start::Unplanned, no_edit, plan, f)
}

/// Whether `key` holds the paged root `root` still (its length and
/// header, as `matches_plan` checks a plan's): a read over pages copied
/// since `root` was read then read that root's pages, as every write of
/// a paged collection writes a new root.
pub fn still_root(cache: &mut CacheHandle, key: &[u8], root: &[u8]) -> bool {
    cache.peek(key, |item| is_root(item, root)).unwrap_or(false)
}

/// A root a command has already read and the pages it will need beyond
/// those `plan` names (a sorted set's tree pages, found by a run over
/// pages read without locks: `zset/paged/ahead.rs`), to plan its first update
/// from: a guess, checked like a hint.
pub struct Seed {
    pub user: usize,
    pub root: Vec<u8>,
    pub pages: Vec<u64>,
}

/// [`update_paged_fresh`] whose first update is planned from `seed`
/// instead of a pass that reads the roots; a root that moved since costs
/// that pass.
pub fn update_paged_seeded<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    seed: Seed,
    plan: impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &PagePlan) -> Result<Step<R>, CmdError>,
) -> Result<R, CmdError> {
    run(cache, keys, Start::Seeded(seed), no_edit, plan, f)
}

/// How a command's first update is planned.
enum Start {
    /// From nothing: a first pass reads the roots.
    Unplanned,
    /// From the thread's root hints (`hints.rs`).
    Hinted,
    Seeded(Seed),
}

/// [`update_paged_fresh`] that first plans from the roots this thread
/// last saw or wrote at `keys` (`hints.rs`): a paged collection the
/// thread wrote last is then read and written in one pass instead of a
/// discovery pass and a planned one. `f` notes each root it writes
/// (`PagePlan::wrote_root`); `plan` must be a pure function of the root
/// (it may run for a hint that turns out stale) and must not read
/// `PagePlan::root`.
pub fn update_paged_hinted<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    plan: impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &PagePlan) -> Result<Step<R>, CmdError>,
) -> Result<R, CmdError> {
    run(cache, keys, Start::Hinted, no_edit, plan, f)
}

/// [`update_paged_fresh`] whose one key's paged root, when no plan names
/// it (the first pass), is first offered to `edit` (`Changes::plan_edit`),
/// which may do the whole command as an edit of the root in place from
/// its bytes as stored (a list push or pop inside its root's end,
/// `list/end.rs`: no pages, so no plan) or decline (None, nothing
/// written): the update then plans from the roots it saw, as without
/// `edit`. A packed or missing value matches the empty plan and is not
/// offered.
pub fn update_paged_direct<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    edit: impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
    plan: impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &PagePlan) -> Result<Step<R>, CmdError>,
) -> Result<R, CmdError> {
    run(cache, keys, Start::Unplanned, edit, plan, f)
}

/// Offers one user key's paged root, which no plan names (the first
/// pass), to `edit` (`Changes::plan_edit`): what it answers once its edit
/// is recorded, or None.
fn offer<R>(
    users: &[Option<ItemRef<'_>>],
    changes: &mut Changes,
    edit: &mut impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
) -> Option<R> {
    let [Some(item)] = users else {
        return None;
    };
    let done = changes.plan_edit(0, item, edit)?;
    // (A paged root's access count keeps its pages through eviction.)
    changes.touch(0);
    Some(done)
}

/// The `edit` of a command that has none.
fn no_edit<R>(_: &ItemRef<'_>, _: &mut InPlaceEdit<'_>) -> Option<R> {
    None
}

fn run<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    start: Start,
    edit: impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
    plan: impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &PagePlan) -> Result<Step<R>, CmdError>,
) -> Result<R, CmdError> {
    SPARE.with(|spare| match spare.try_borrow_mut() {
        Ok(mut current) => {
            let result = run_in(&mut current, cache, keys, start, edit, plan, f);
            // (A few: a command over thousands of pages does not pin
            // their keys.)
            current.bufs.truncate(SPARE_BUFS);
            result
        }
        // A command run inside another's update plans on its own.
        Err(_) => run_in(&mut PagePlan::default(), cache, keys, start, edit, plan, f),
    })
}

/// Plans `current` (cleared) from `seed`; false when its root does not
/// plan (the caller clears `current`).
fn plan_seed(
    keys: &[&[u8]],
    seed: Seed,
    plan: &mut impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    current: &mut PagePlan,
) -> bool {
    let Seed { user, root, pages } = seed;
    if user >= keys.len() || plan(user, &root, current).is_err() {
        return false;
    }
    current.roots[user] = Some(root);
    for page in pages {
        current.need(user, page);
    }
    current.finish(keys).is_ok()
}

fn run_in<R>(
    current: &mut PagePlan,
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    start: Start,
    mut edit: impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
    mut plan: impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    mut f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &PagePlan) -> Result<Step<R>, CmdError>,
) -> Result<R, CmdError> {
    current.clear(keys.len());
    let hinted = matches!(start, Start::Hinted);
    let planned = match start {
        Start::Unplanned => true,
        Start::Hinted => hints::plan(keys, &mut plan, current),
        Start::Seeded(seed) => plan_seed(keys, seed, &mut plan, current),
    };
    if !planned {
        current.clear(keys.len());
    }
    // Fresh pages granted in a row: a value asking again and again is
    // corrupt (its pages never settle), not a reason to spin.
    let mut grants = 0;
    loop {
        // Only a paged or growing collection declares pages: the common
        // packed case runs over the user keys as given, a push or pop's
        // few keys from the stack (no allocation either way).
        let every: Few<&[u8]>;
        let declared = if current.keys.is_empty() && current.fresh_keys.is_empty() {
            keys
        } else {
            every = keys
                .iter()
                .copied()
                .chain(current.keys.iter().map(Vec::as_slice))
                .chain(current.fresh_keys.iter().map(Vec::as_slice))
                .collect();
            &every
        };
        let outcome = cache.update(declared, |items, changes| {
            let users = &items[..keys.len()];
            if users
                .iter()
                .enumerate()
                .all(|(i, item)| matches_plan(item, current.root(i)))
            {
                current.forget_writes();
                let step = f(items, changes, current);
                if matches!(step, Ok(Step::Done(_))) {
                    // `update` counts no access: a paged root's frequency
                    // is what keeps its pages through eviction (owned.rs).
                    for i in 0..keys.len() {
                        if current.root(i).is_some() || !current.fresh_keys.is_empty() {
                            changes.touch(i);
                        }
                    }
                }
                Outcome::Done(step)
            } else if let Some(done) = offer(users, changes, &mut edit) {
                Outcome::Done(Ok(Step::Done(done)))
            } else {
                Outcome::Replan(
                    users
                        .iter()
                        .map(|i| i.as_ref().and_then(root_value))
                        .collect(),
                )
            }
        })?;
        match outcome {
            Outcome::Done(Ok(Step::Done(result))) => {
                if hinted {
                    hints::keep(keys, current);
                }
                return Ok(result);
            }
            Outcome::Done(Ok(Step::Fresh(wanted))) => {
                grants += 1;
                if grants > MAX_GRANTS {
                    return Err(CmdError::CorruptValue);
                }
                for (user, pages) in wanted {
                    current.grant(keys, user, pages);
                }
            }
            Outcome::Done(Ok(Step::More(pages))) => {
                grants += 1;
                if grants > MAX_GRANTS || pages.is_empty() {
                    return Err(CmdError::CorruptValue);
                }
                for (user, page) in pages {
                    current.need(user, page);
                }
                current.finish(keys)?;
            }
            Outcome::Done(Err(e)) => return Err(e),
            Outcome::Replan(roots) => {
                grants = 0;
                // (Cleared in place: its buffers serve the planned pass.)
                current.clear(keys.len());
                for (planned, seen) in current.roots.iter_mut().zip(roots) {
                    *planned = seen;
                }
                if hinted {
                    hints::remember(keys, current);
                }
                for i in 0..keys.len() {
                    // Lent out while it plans (`plan` reads the root it is
                    // given, not `PagePlan::root`), then put back: no copy.
                    if let Some(root) = current.roots[i].take() {
                        let planned = plan(i, &root, current);
                        current.roots[i] = Some(root);
                        planned?;
                    }
                }
                current.finish(keys)?;
            }
        }
    }
}
