//! Sorted sets read and written whole, in either stored form: the path of
//! every sorted-set command without a paged one of its own (`paged.rs`).
//! A paged sorted set is read with all its pages (`value::load_whole`)
//! and stored back packed when small, else rebuilt as a new root and
//! pages in the same update (`whole::store_whole`).

use std::ops::Range;

use citadel_cache::{CacheHandle, Changes, ItemRef, ValueKind};
use citadel_collections::zset::{self, Entry};
use citadel_collections::ZSetEdit;

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::super::small_form;
use super::super::value::{load, load_whole, plan_whole, view, Existing};
use super::super::whole::store_whole_in;
use super::ZSET;
use crate::command::error::CmdError;

/// What a whole-value update needs: its plan (to read pages and to know
/// fresh ones; None: an update over packed values only, which reads no
/// page and has none granted) and the fresh pages its writes asked for.
pub(in crate::command::collections) struct Whole<'p> {
    plan: Option<&'p PagePlan>,
    wanted: Vec<(usize, Range<u64>)>,
}

impl Whole<'_> {
    /// Loads user key `i` (WRONGTYPE for another kind) for editing.
    pub fn load_edit<'b>(
        &self,
        items: &[Option<ItemRef<'_>>],
        i: usize,
        buf: &'b mut Vec<u8>,
    ) -> Result<(Option<Existing>, ZSetEdit<'b>), CmdError> {
        let existing = self.load(items, i, ZSET, buf)?;
        let entries = zset::entries(view(buf, existing.is_some())?)?;
        Ok((existing, ZSetEdit::new(entries)))
    }

    /// Loads user key `i` as `kind` (a sorted set, or a set for the
    /// algebra commands) in the packed form; None when missing.
    pub fn load(
        &self,
        items: &[Option<ItemRef<'_>>],
        i: usize,
        kind: ValueKind,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Existing>, CmdError> {
        match self.plan {
            Some(plan) => load_whole(items, plan, i, kind, buf),
            // (Its caller saw no paged root.)
            None => load(items[i].as_ref(), kind, buf),
        }
    }

    /// Writes key `i` back (deleted when empty), keeping its TTL.
    pub fn save(
        &mut self,
        changes: &mut Changes,
        i: usize,
        z: &ZSetEdit<'_>,
        existing: Option<Existing>,
    ) -> Result<(), CmdError> {
        let expire_at = existing.and_then(|e| e.expire_at);
        let mut packed = z.encode();
        // An edit of a sorted set in Redis's big encoding stays there.
        if !z.is_empty() {
            small_form::mark(ZSET, &mut packed, existing.is_some_and(|e| e.big))?;
        }
        self.store(changes, i, &packed, existing.is_some(), expire_at)
    }

    /// Replaces key `i` (of any kind, TTL dropped) with the sorted set
    /// `entries`, or deletes it when they are none.
    pub fn replace(
        &mut self,
        changes: &mut Changes,
        i: usize,
        exists: bool,
        entries: &[Entry<'_>],
    ) -> Result<(), CmdError> {
        self.store(changes, i, &zset::encode(entries), exists, None)
    }

    fn store(
        &mut self,
        changes: &mut Changes,
        i: usize,
        packed: &[u8],
        exists: bool,
        expire_at: Option<u64>,
    ) -> Result<(), CmdError> {
        let wanted = store_whole_in(changes, self.plan, i, ZSET, packed, exists, expire_at)?;
        self.wanted.extend(wanted.map(|pages| (i, pages)));
        Ok(())
    }
}

/// Runs `f` over `keys` in one update, every paged key read whole (a
/// write asking for fresh pages runs again with them).
pub(in crate::command::collections) fn update_whole<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &mut Whole<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    run_whole(cache, keys, plan_whole, f)
}

/// [`update_whole`] for a STORE form when `dest`: key 0 is replaced
/// whatever it holds, so its pages are not read (the engine reclaims a
/// replaced root's pages), only the sources'. (A destination that is also
/// a source is read as that source, under its own index.)
pub(in crate::command::collections) fn update_store<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    dest: bool,
    f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &mut Whole<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let plan_sources = |i: usize, root: &[u8], plan: &mut PagePlan| match i {
        0 if dest => Ok(()),
        _ => plan_whole(i, root, plan),
    };
    run_whole(cache, keys, plan_sources, f)
}

fn run_whole<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    plan: impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    mut f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes, &mut Whole<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    update_paged_fresh(cache, keys, plan, |items, changes, plan| {
        let mut run = WholeRun::new(plan);
        let result = f(items, changes, &mut run.whole)?;
        Ok(run.finish(result))
    })
}

/// A [`Whole`] for one run of an update's closure.
pub(in crate::command::collections) struct WholeRun<'p> {
    pub whole: Whole<'p>,
}

impl<'p> WholeRun<'p> {
    pub fn new(plan: &'p PagePlan) -> WholeRun<'p> {
        WholeRun {
            whole: Whole {
                plan: Some(plan),
                wanted: Vec::new(),
            },
        }
    }

    /// A run over packed values only: a write past the paging limits asks
    /// for fresh pages (`finish` answers `Step::Fresh`), which only a
    /// planned update grants.
    pub fn unplanned() -> WholeRun<'p> {
        WholeRun {
            whole: Whole {
                plan: None,
                wanted: Vec::new(),
            },
        }
    }

    /// The run's step: done, or run again with the fresh pages asked for.
    pub fn finish<R>(self, result: R) -> Step<R> {
        match self.whole.wanted.is_empty() {
            true => Step::Done(result),
            false => Step::Fresh(self.whole.wanted),
        }
    }
}
