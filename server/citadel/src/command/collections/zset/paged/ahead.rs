//! A command on a paged sorted set run ahead of its update, over copies
//! of its pages read without locks (`CacheHandle::peek`; inside a
//! transaction, its view) into an arena. Its tree pages are found level
//! by level: a run that meets a page it has not read asks for it
//! (`Fail::Need`), the page is read and the command runs again on the
//! same loaded set (what it decoded stays decoded; a run that edited
//! before it asked starts over on a fresh one), all outside any update.
//! The run that finishes is kept with the pages it read and wrote: the
//! update plans them all with the root it ran on, and when it finds that
//! root stores the run's edit as it is, without running the command
//! again.
//!
//! Why the copies are the update's pages: every write of a paged sorted
//! set writes a new root (its version moves; a new set draws a new
//! generation), and the update checks the root it planned from
//! (`matches_plan`). A page copied from another version than the root
//! comes with another root by the time the update looks, and the update
//! then plans from what it sees and runs the command itself, as without
//! the run ahead. So a run ahead never decides anything alone; it saves
//! the update's rounds (one per tree level, one more for a page a split
//! allocates) and the command's run inside it.

use std::cell::Cell;
use std::collections::BTreeSet;

use bumpalo::Bump;
use citadel_cache::owned::{owner_generation, page_key};
use citadel_cache::CacheHandle;
use citadel_collections::zset::paged::ZRoot;
use citadel_collections::zset::tree::Tree;

use super::{Fail, PagedZ};

/// Most runs ahead: a path's levels, a split's new page, a merge's
/// neighbour (a set that keeps changing under them is left to the
/// update's own rounds).
const RUNS: usize = 8;

/// A command's finished run ahead: the root it ran on, its set with the
/// edit made (over the copied pages), its result.
pub(in crate::command::collections::zset) struct Ready<'p, R> {
    pub root: &'p [u8],
    pub z: PagedZ<'p>,
    pub result: R,
}

/// Runs `paged` ahead over the paged sorted set `root` at `key`, then
/// `then` with the pages (absolute numbers) the runs read or wrote beyond
/// those `pages_of` plans, and the finished run (None: none finished, or
/// the command answered an error, which the update answers again).
pub(in crate::command::collections::zset) fn run_ahead<R, T, P, F>(
    cache: &mut CacheHandle,
    key: &[u8],
    root: &[u8],
    pages_of: &mut P,
    paged: &mut F,
    then: impl FnOnce(&mut CacheHandle, &mut P, &mut F, Vec<u64>, Option<Ready<'_, R>>) -> T,
) -> T
where
    P: FnMut(&ZRoot) -> Vec<u64>,
    F: FnMut(&mut PagedZ<'_>) -> Result<R, Fail>,
{
    // (Pages copied once each, kept while the kept run borrows them, in
    // the thread's arena: emptied after each command, its memory kept.)
    let lent = Lent(ARENA.take().unwrap_or_default());
    let arena = &lent.0;
    let (Ok(parsed), Some(generation)) = (ZRoot::parse(root), owner_generation(root)) else {
        return then(cache, pages_of, paged, Vec::new(), None);
    };
    let mut wanted: BTreeSet<u64> = pages_of(&parsed).into_iter().collect();
    wanted.extend(Tree::free_head(&parsed.tree));
    let planned = wanted.clone();
    let extra = |wanted: &BTreeSet<u64>| wanted.difference(&planned).copied().collect();
    let mut copier = Copier {
        key,
        generation,
        arena,
        key_buf: Vec::new(),
        value_buf: Vec::new(),
    };
    let mut read: Vec<Copied<'_>> = wanted.iter().map(|&p| copier.copy(cache, p)).collect();
    let Ok(mut z) = PagedZ::from_parsed(parsed, read.iter().copied()) else {
        return then(cache, pages_of, paged, extra(&wanted), None);
    };
    for _ in 0..RUNS {
        let more = match paged(&mut z) {
            Ok(result) => {
                let Ok(written) = z.written_pages() else {
                    break;
                };
                wanted.extend(written);
                let ready = Ready { root, z, result };
                return then(cache, pages_of, paged, extra(&wanted), Some(ready));
            }
            Err(Fail::Need(more)) => more,
            Err(Fail::Cmd(_)) => break,
        };
        let new: Vec<u64> = more.into_iter().filter(|p| wanted.insert(*p)).collect();
        if new.is_empty() {
            break;
        }
        let copied: Vec<Copied<'_>> = new.iter().map(|&p| copier.copy(cache, p)).collect();
        read.extend_from_slice(&copied);
        let added = match z.edited() {
            false => z.add_pages(copied).is_ok(),
            // (Rare: a run that edited before it asked. The root parsed
            // again rather than kept for it.)
            true => match PagedZ::from_slices(root, read.iter().copied()) {
                Ok(fresh) => {
                    z = fresh;
                    true
                }
                Err(_) => false,
            },
        };
        if !added {
            break;
        }
    }
    then(cache, pages_of, paged, extra(&wanted), None)
}

/// Arena bytes a thread keeps between commands (a range read over many
/// pages may take more; that arena is dropped).
const ARENA_KEPT: usize = 1 << 20;

thread_local! {
    static ARENA: Cell<Option<Bump>> = const { Cell::new(None) };
}

/// The thread's arena while a command runs ahead; given back, emptied,
/// when dropped (after everything that borrows it).
struct Lent(Bump);

impl Drop for Lent {
    fn drop(&mut self) {
        // (An empty `Bump` holds no memory: taking it costs nothing.)
        let mut arena = std::mem::take(&mut self.0);
        if arena.allocated_bytes() <= ARENA_KEPT {
            arena.reset();
            ARENA.set(Some(arena));
        }
    }
}

/// A page copied: its number, its bytes (None: not stored).
type Copied<'a> = (u64, Option<&'a [u8]>);

/// Copies the pages of one root into an arena.
struct Copier<'k, 'a> {
    key: &'k [u8],
    generation: u64,
    arena: &'a Bump,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl<'a> Copier<'_, 'a> {
    fn copy(&mut self, cache: &mut CacheHandle, page: u64) -> Copied<'a> {
        page_key(self.key, self.generation, page, &mut self.key_buf);
        let (value, arena) = (&mut self.value_buf, self.arena);
        let found = cache.peek(&self.key_buf, |item| {
            // (A page is one contiguous area: copied once, into the arena.)
            if let Some(area) = item.contiguous().and_then(|a| a.get(0..item.value_len())) {
                let copy = arena.alloc_slice_fill_copy(area.len(), 0u8);
                area.copy_to(copy);
                return &*copy;
            }
            value.clear();
            item.write_value_to(value);
            &*arena.alloc_slice_copy(value)
        });
        (page, found)
    }
}
