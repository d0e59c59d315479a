//! A group's pending entries list inside an update: lookups, inserts and
//! removals over its pages (`citadel_collections::stream::pel`), keeping
//! the group's and its consumers' counts. Each change rewrites the one
//! PEL page it touches (a full page splits, an emptied one goes).

use citadel_collections::stream::pel::{self, PEL_PAGE_MAX};
use citadel_collections::stream::{Group, PelPage, Pending, StreamId, StreamRoot};

use super::super::paged::PagePlan;
use super::edit::{Fail, StreamTxn};
use crate::command::error::CmdError;

/// The entries of group `g`'s PEL page at directory index `at`.
fn page_entries(s: &mut StreamTxn<'_, '_>, g: usize, at: usize) -> Result<Vec<Pending>, Fail> {
    let page = s.group(g).pel[at].page;
    Ok(pel::entries(s.page(page)?)?)
}

/// Stores `list` as the PEL page at directory index `at` (gone when empty).
fn store(s: &mut StreamTxn<'_, '_>, g: usize, at: usize, list: &[Pending]) -> Result<(), Fail> {
    let page = s.group(g).pel[at].page;
    if list.is_empty() {
        s.group(g).pel.remove(at);
        return s.set_page(page, None);
    }
    let info = &mut s.group(g).pel[at];
    info.first = list[0].id;
    info.last = list[list.len() - 1].id;
    info.count = list.len() as u32;
    s.set_page(page, Some(pel::encode(list)))
}

fn count_for(group: &mut Group, consumer: u32, delta: i64) {
    if let Some(c) = group.consumer_by_id(consumer) {
        let c = &mut group.consumers[c];
        c.pending = c.pending.saturating_add_signed(delta);
    }
}

/// Group `g`'s pending entry for `id`.
pub fn get(s: &mut StreamTxn<'_, '_>, g: usize, id: StreamId) -> Result<Option<Pending>, Fail> {
    let Some(at) = s.group(g).pel_page_for(id) else {
        return Ok(None);
    };
    let list = page_entries(s, g, at)?;
    Ok(list
        .binary_search_by_key(&id, |p| p.id)
        .ok()
        .map(|i| list[i]))
}

/// Puts `entry` in group `g`'s PEL (replacing the one with its ID).
pub fn put(s: &mut StreamTxn<'_, '_>, g: usize, entry: Pending) -> Result<(), Fail> {
    let Some(at) = s.group(g).pel_page_for(entry.id) else {
        let page = s.new_page();
        s.set_page(page, Some(pel::encode(&[entry])))?;
        let group = s.group(g);
        group.pel.push(PelPage {
            page,
            first: entry.id,
            last: entry.id,
            count: 1,
        });
        group.pel_count += 1;
        count_for(group, entry.consumer, 1);
        return Ok(());
    };
    let mut list = page_entries(s, g, at)?;
    match list.binary_search_by_key(&entry.id, |p| p.id) {
        Ok(i) => {
            let old = std::mem::replace(&mut list[i], entry);
            let group = s.group(g);
            count_for(group, old.consumer, -1);
            count_for(group, entry.consumer, 1);
            store(s, g, at, &list)
        }
        Err(i) => {
            let group = s.group(g);
            group.pel_count += 1;
            count_for(group, entry.consumer, 1);
            list.insert(i, entry);
            if list.len() <= PEL_PAGE_MAX {
                return store(s, g, at, &list);
            }
            // A full page: an append past the last page starts a new one
            // (reads deliver in ID order), else it splits in halves.
            let appended = i == list.len() - 1 && at + 1 == s.group(g).pel.len();
            let tail = list.split_off(if appended {
                list.len() - 1
            } else {
                list.len() / 2
            });
            let page = s.new_page();
            s.group(g).pel.insert(
                at + 1,
                PelPage {
                    page,
                    first: tail[0].id,
                    last: tail[tail.len() - 1].id,
                    count: tail.len() as u32,
                },
            );
            s.set_page(page, Some(pel::encode(&tail)))?;
            store(s, g, at, &list)
        }
    }
}

/// Removes `id` from group `g`'s PEL; returns the entry it had.
pub fn remove(s: &mut StreamTxn<'_, '_>, g: usize, id: StreamId) -> Result<Option<Pending>, Fail> {
    let Some(at) = s.group(g).pel_page_for(id) else {
        return Ok(None);
    };
    let mut list = page_entries(s, g, at)?;
    let Ok(i) = list.binary_search_by_key(&id, |p| p.id) else {
        return Ok(None);
    };
    let old = list.remove(i);
    let group = s.group(g);
    group.pel_count -= 1;
    count_for(group, old.consumer, -1);
    store(s, g, at, &list)?;
    Ok(Some(old))
}

/// Group `g`'s pending entries from `start` to `end` in ID order, while
/// `f` asks for more (`f` returns false to stop).
pub fn scan(
    s: &mut StreamTxn<'_, '_>,
    g: usize,
    start: StreamId,
    end: StreamId,
    mut f: impl FnMut(&Pending) -> bool,
) -> Result<(), Fail> {
    let Some(first) = s.group(g).pel_page_for(start) else {
        return Ok(());
    };
    let pages: Vec<u64> = s.group(g).pel[first..].iter().map(|p| p.page).collect();
    for page in pages {
        let list = pel::entries(s.page(page)?)?;
        for p in list.iter().filter(|p| p.id >= start) {
            if p.id > end || !f(p) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The group named `name` in a planned root, with the root.
pub fn planned_group(root: &[u8], name: &[u8]) -> Option<(StreamRoot, Group)> {
    let root = StreamRoot::parse(root).ok()?;
    let groups = citadel_collections::stream::group::parse(&root.rest, &root.header.pages).ok()?;
    let g = groups.into_iter().find(|g| g.name == name)?;
    Some((root, g))
}

/// Declares the PEL pages of `group` holding `ids`.
pub fn plan_ids(group: &Group, ids: &[StreamId], user: usize, plan: &mut PagePlan) {
    for &id in ids {
        if let Some(at) = group.pel_page_for(id) {
            plan.need(user, group.pel[at].page);
        }
    }
}

/// Declares `group`'s PEL pages from the one holding `start` on (at most
/// `pages` of them; 0: all).
pub fn plan_scan(group: &Group, start: StreamId, pages: usize, user: usize, plan: &mut PagePlan) {
    let Some(first) = group.pel_page_for(start) else {
        return;
    };
    let span = &group.pel[first..];
    let span = if pages == 0 {
        span
    } else {
        &span[..pages.min(span.len())]
    };
    for p in span {
        plan.need(user, p.page);
    }
}

/// Declares the stream pages holding `ids` (their entries are read).
pub fn plan_entries(root: &StreamRoot, ids: &[StreamId], user: usize, plan: &mut PagePlan) {
    for &id in ids {
        let at = root.first_page_from(id);
        if root.dir.get(at).is_some_and(|p| p.first <= id) {
            plan.need(user, root.dir[at].page);
        }
    }
}

/// Declares `n` new page numbers (PEL pages a change may start).
pub fn plan_new(root: &StreamRoot, n: u64, user: usize, plan: &mut PagePlan) {
    plan.need_all(user, root.header.pages.end..root.header.pages.end + n);
}

/// The stream entry `id` (None: not in the stream), its pages loaded
/// together for `ids` first (see [`load_entries`]).
pub fn entry_fields(s: &mut StreamTxn<'_, '_>, id: StreamId) -> Result<Option<Vec<Vec<u8>>>, Fail> {
    let at = s.root.first_page_from(id);
    let Some(info) = s.root.dir.get(at).copied().filter(|p| p.first <= id) else {
        return Ok(None);
    };
    let list = citadel_collections::stream::page::entries(s.page(info.page)?)?;
    Ok(list
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.fields.iter().map(|f| f.to_vec()).collect()))
}

/// Loads the stream pages holding `ids` (all asked for in one round).
pub fn load_entries(s: &mut StreamTxn<'_, '_>, ids: &[StreamId]) -> Result<(), Fail> {
    let mut pages = Vec::new();
    for &id in ids {
        let at = s.root.first_page_from(id);
        if let Some(p) = s.root.dir.get(at).filter(|p| p.first <= id) {
            pages.push(p.page);
        }
    }
    pages.sort_unstable();
    pages.dedup();
    s.load_all(&pages)
}

/// The stream at the update's one key and its group `group` (NOGROUP
/// when either is missing).
pub fn open_group<'p, 'i>(
    items: &'p [Option<citadel_cache::ItemRef<'i>>],
    plan: &'p PagePlan,
    key: &[u8],
    group: &[u8],
) -> Result<(StreamTxn<'p, 'i>, usize), CmdError> {
    if let Some(mut s) = StreamTxn::open(items, plan, 0)? {
        if let Some(g) = s.find_group(group)? {
            return Ok((s, g));
        }
    }
    Err(no_group(key, group))
}

/// NOGROUP for a missing key or group, as most group commands word it.
pub fn no_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Text(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}
