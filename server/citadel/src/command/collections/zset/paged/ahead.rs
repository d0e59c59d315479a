//! A command on a paged sorted set run ahead of its update, over copies
//! of its pages read without locks (`CacheHandle::peek`; inside a
//! transaction, its view). Its tree pages are found level by level: a
//! run that meets a page it has not read asks for it (`Fail::Need`), the
//! page is read and the command runs again, all outside any update. The
//! run that finishes is kept with the pages it read and wrote: the update
//! plans them all with the root it ran on, and when it finds that root
//! stores the run's edit as it is, without running the command again.
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

use std::collections::BTreeSet;

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
    let (Ok(parsed), Some(generation)) = (ZRoot::parse(root), owner_generation(root)) else {
        return then(cache, pages_of, paged, Vec::new(), None);
    };
    let mut wanted: BTreeSet<u64> = pages_of(&parsed).into_iter().collect();
    wanted.extend(Tree::free_head(&parsed.tree));
    let planned = wanted.clone();
    let extra = |wanted: &BTreeSet<u64>| wanted.difference(&planned).copied().collect();
    let mut pages: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
    let mut page_key_buf = Vec::new();
    for _ in 0..RUNS {
        for &page in &wanted {
            if pages.binary_search_by_key(&page, |(p, _)| *p).is_err() {
                page_key(key, generation, page, &mut page_key_buf);
                let bytes = cache.peek(&page_key_buf, |item| {
                    let mut value = Vec::new();
                    item.write_value_to(&mut value);
                    value
                });
                pages.push((page, bytes));
            }
        }
        pages.sort_unstable_by_key(|(p, _)| *p);
        let more = {
            let Ok(mut z) = PagedZ::load(root, &pages) else {
                break;
            };
            match paged(&mut z) {
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
            }
        };
        let before = wanted.len();
        wanted.extend(more);
        if wanted.len() == before {
            break;
        }
    }
    then(cache, pages_of, paged, extra(&wanted), None)
}
