//! Hashes and sets in either form, for their commands. A small one is one
//! packed item (the type's own module edits it); past [`PAGED_ENTRIES`]
//! entries or [`PAGED_BYTES`] bytes a write turns it into the paged form
//! (`citadel_collections::linear_hash`: a root and pages) and it stays
//! paged until deleted, as Redis never converts a hashtable back. A
//! command on a paged value plans from the root the pages of the fields or
//! members it names (plus a split or merge pair) and runs over them in one
//! `update_paged_fresh`: root and pages are read and written atomically.

use citadel_cache::{Changes, ItemRef, PutOptions, ValueKind};
use citadel_collections::linear_hash::{scan, Output, Root, Table};
use citadel_collections::paged::is_paged;
use citadel_collections::{Corrupt, Packed};

use super::paged::{
    keep_spare, root_value, update_paged_fresh, update_paged_seeded, PagePlan, Seed, Step,
};
use super::shape::Shape;
use super::small_form;
pub use super::value::page_copies;
use super::value::{load, store, store_as_is, Existing};
use super::whole::{store_whole, stored};
use crate::command::context::Ctx;
use crate::command::error::CmdError;

mod unlocked;

use unlocked::read_unlocked;

/// Entries copied out of a value, each its elements.
pub type Copied = Vec<Vec<Vec<u8>>>;

/// What a packed edit did: the reply, and the value to store (its entry
/// count: 0 deletes the key), if it changed.
pub type PackedEdit<R> = (R, Option<(Vec<u8>, u64)>);

/// The kind check every command makes (WRONGTYPE), with what a write keeps.
pub fn existing(item: Option<&ItemRef<'_>>, kind: ValueKind) -> Result<Option<Existing>, CmdError> {
    match item {
        None => Ok(None),
        Some(item) if item.kind() != kind => Err(CmdError::WrongType),
        Some(item) => Ok(Some(Existing::of(item))),
    }
}

/// The table of user key `user`'s paged root over the planned pages.
pub fn table<'p>(
    root: &[u8],
    shape: Shape,
    pages: &'p [(u64, Option<Vec<u8>>)],
) -> Result<Table<'p>, CmdError> {
    let pages = pages.iter().map(|(n, b)| (*n, b.as_deref()));
    Ok(Table::load(root, shape.arity, pages)?)
}

/// Stores a finished table's root and pages (user key `user`).
pub fn write_output(
    changes: &mut Changes,
    plan: &PagePlan,
    user: usize,
    kind: ValueKind,
    existing: Option<Existing>,
    out: Output,
) -> Result<(), CmdError> {
    if !out.changed {
        return Ok(());
    }
    for (page, bytes) in &out.pages {
        let idx = plan.item(user, *page).ok_or(CmdError::CorruptValue)?;
        match bytes {
            Some(bytes) => changes.put_with(idx, &[&bytes[..]], PutOptions::PAGE)?,
            None => changes.delete(idx),
        }
    }
    match out.root {
        Some(root) => store(changes, user, kind, &root, 1, existing)?,
        None => changes.delete(user),
    }
    Ok(())
}

/// Plans the pages `plan_pages` asks of a paged root. Another type's root
/// (a paged list) plans nothing: the command then answers WRONGTYPE.
pub fn planner(
    mut plan_pages: impl FnMut(&Root) -> Vec<u64>,
) -> impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError> {
    move |user, root, plan| {
        if let Ok(root) = Root::parse(root) {
            for page in plan_pages(&root) {
                plan.need(user, page);
            }
        }
        Ok(())
    }
}

/// Runs a command on the hash or set at `key` in one update: `packed` on
/// the packed form (None: no key), `paged` on a paged one with the pages
/// `plan_pages` asks for. A packed result past the paging limits is
/// stored paged (`packed` then runs again, with fresh pages declared:
/// `whole::store_whole`).
pub fn update_one<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    shape: Shape,
    plan_pages: impl FnMut(&Root) -> Vec<u64>,
    mut packed: impl FnMut(Option<Packed<'_>>) -> Result<PackedEdit<R>, CmdError>,
    paged: impl FnMut(&mut Table<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    // A packed value is loaded into the connection's scratch buffer (no
    // allocation, no thread-local pool).
    let mut buf = std::mem::take(&mut ctx.conn.scratch);
    // Most values are packed and stay so: one plain update, no plan. A
    // paged root, or a value growing past the limits, takes the planned
    // path below (nothing was written); a paged root is kept to plan it
    // from.
    let mut seen_root = None;
    let direct = ctx.thread.cache.update(&[key], |items, changes| {
        let item = items[0].as_ref();
        if let Some(root) = item.and_then(root_value) {
            seen_root = Some(root);
            return Ok(None);
        }
        let existing = load(item, shape.kind, &mut buf)?;
        let value = existing.map(|_| Packed::parse(&buf)).transpose()?;
        let (reply, write) = packed(value)?;
        let Some((mut value, count)) = write else {
            return Ok(Some(reply));
        };
        // A write that changes no element (HSET of a field to the value
        // it holds) stores nothing: the key only counts as written, and
        // keeps its mark (`small_form`; the encoding byte is the one
        // byte not compared).
        let unchanged = existing.is_some() && value.get(1..) == buf.get(1..);
        if unchanged && changes.rewrite_unchanged(0) {
            keep_spare(value);
            return Ok(Some(reply));
        }
        // An edit of a value in Redis's big encoding stays there.
        if count > 0 {
            small_form::mark(shape.kind, &mut value, existing.is_some_and(|e| e.big))?;
        }
        let stays = shape.stays_packed(count, value.len());
        if stays {
            store_as_is(changes, 0, shape.kind, &value, count, existing)?;
        }
        // (The next edit's value is written into it: no allocation per
        // HSET.)
        keep_spare(value);
        Ok(stays.then_some(reply))
    });
    let result = match direct.map_err(CmdError::from).and_then(|r| r) {
        Ok(Some(reply)) => Ok(reply),
        Err(e) => Err(e),
        Ok(None) => {
            let seed = seen_root.map(|root| Seed {
                user: 0,
                root,
                pages: Vec::new(),
            });
            update_planned(ctx, key, shape, &mut buf, seed, plan_pages, packed, paged)
        }
    };
    buf.clear();
    ctx.conn.scratch = buf;
    result
}

/// [`update_one`]'s path over a paged root (planned pages; from `seed`,
/// the root the direct update saw, when given) or a packed value growing
/// past the limits (fresh pages).
#[allow(clippy::too_many_arguments)]
fn update_planned<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    shape: Shape,
    buf: &mut Vec<u8>,
    seed: Option<Seed>,
    mut plan_pages: impl FnMut(&Root) -> Vec<u64>,
    mut packed: impl FnMut(Option<Packed<'_>>) -> Result<PackedEdit<R>, CmdError>,
    mut paged: impl FnMut(&mut Table<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let plan = planner(&mut plan_pages);
    let cache = &mut ctx.thread.cache;
    let f = |items: &[Option<ItemRef<'_>>], changes: &mut Changes, plan: &PagePlan| {
        let existing = existing(items[0].as_ref(), shape.kind)?;
        if let Some(root) = plan.root(0) {
            let pages = page_copies(items, plan, 0);
            let mut table = table(root, shape, &pages)?;
            let reply = paged(&mut table)?;
            write_output(changes, plan, 0, shape.kind, existing, table.finish()?)?;
            return Ok(Step::Done(reply));
        }
        load(items[0].as_ref(), shape.kind, buf)?;
        let value = existing.map(|_| Packed::parse(buf)).transpose()?;
        let (reply, write) = packed(value)?;
        let Some((value, count)) = write else {
            return Ok(Step::Done(reply));
        };
        if shape.stays_packed(count, value.len()) {
            store(changes, 0, shape.kind, &value, count, existing)?;
            // (The next edit's value is written into it: no
            // allocation per HSET.)
            keep_spare(value);
            return Ok(Step::Done(reply));
        }
        let expire_at = existing.and_then(|e| e.expire_at);
        let wanted = store_whole(changes, plan, 0, shape.kind, &value, true, expire_at)?;
        Ok(stored(0, wanted, reply))
    };
    match seed {
        Some(seed) => update_paged_seeded(cache, &[key], seed, plan, f),
        None => update_paged_fresh(cache, &[key], plan, f),
    }
}

/// Runs a read-only command on the hash or set at `key`: `packed` on the
/// packed form (an empty one when missing; read with a plain get),
/// `paged` on the pages `plan_pages` asks of a paged root (read without
/// an update when nothing changes it meanwhile: `unlocked.rs`).
pub fn read_one<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    shape: Shape,
    mut plan_pages: impl FnMut(&Root) -> Vec<u64>,
    mut packed: impl FnMut(Packed<'_>) -> Result<R, CmdError>,
    mut paged: impl FnMut(&Table<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let mut buf = std::mem::take(&mut ctx.conn.scratch);
    // As stored: a paged root is read through the pages it plans, never whole.
    let found = ctx
        .thread
        .cache
        .get(key, |item| load(Some(item), shape.kind, &mut buf))
        .transpose()
        .map(|existing| existing.flatten().is_some());
    let cache = &mut ctx.thread.cache;
    let result = match found {
        Ok(true) if is_paged(&buf) => {
            match read_unlocked(cache, key, shape, &buf, &mut plan_pages, &mut paged) {
                Some(answer) => Ok(answer),
                None => update_one(
                    ctx,
                    key,
                    shape,
                    plan_pages,
                    // The key turned packed meanwhile (deleted and re-created).
                    |value| Ok((packed(value.unwrap_or(Packed::empty()))?, None)),
                    |table| paged(table),
                ),
            }
        }
        Ok(true) => Packed::parse(&buf)
            .map_err(CmdError::from)
            .and_then(&mut packed),
        Ok(false) => packed(Packed::empty()),
        Err(e) => Err(e),
    };
    buf.clear();
    ctx.conn.scratch = buf;
    result
}

/// Entries a random run of pages holds at least (about 4 pages' worth).
const RUN_ENTRIES: u64 = 256;

/// The pages to read for about `entries` random entries: a run of
/// consecutive pages from a random one (keys lie on pages by their hash,
/// so a run is as good a sample as any pages), all of them when `entries`
/// reaches the count.
pub fn random_pages(root: &Root, entries: u64, rng: &mut impl FnMut() -> u64) -> Vec<u64> {
    let pages = root.page_count();
    if entries >= root.count {
        return (0..pages).collect();
    }
    // A run of several pages evens out their loads: drawing from one or
    // two would favour the entries of lightly loaded pages, and SPOP would
    // drain those pages first.
    let entries = entries.max(RUN_ENTRIES);
    let per_page = (root.count / pages).max(1);
    let run = entries.div_ceil(per_page).saturating_add(1).min(pages);
    let start = rng() % pages;
    (0..run).map(|i| (start + i) % pages).collect()
}

/// The entries of a table's loaded pages, in page order.
pub fn loaded_entries<'t, 'a>(
    table: &'t Table<'a>,
) -> Result<Vec<&'t [std::borrow::Cow<'a, [u8]>]>, Corrupt> {
    Ok(table
        .pages()?
        .into_iter()
        .flat_map(|(_, entries)| entries)
        .collect())
}

/// How many pages a scan call of about `count` entries reads.
fn scan_run(root: &Root, count: usize) -> usize {
    let per_page = (root.count / root.page_count()).max(1);
    (count as u64)
        .div_ceil(per_page)
        .saturating_add(1)
        .min(1024) as usize
}

/// The pages a scan call from `cursor` of about `count` entries reads.
pub fn scan_plan(root: &Root, cursor: u64, count: usize) -> Vec<u64> {
    scan::pages_from(root, cursor, scan_run(root, count))
        .into_iter()
        .map(|(page, _)| page)
        .collect()
}

/// One scan call over a paged table (planned by [`scan_plan`]): the
/// entries from `cursor` on, whole pages until about `count`, and the
/// next cursor (0: done). See `linear_hash::scan` for why it is exact.
pub fn scan_table(table: &Table<'_>, cursor: u64, count: usize) -> Result<(Copied, u64), CmdError> {
    let visit = scan::pages_from(table.root(), cursor, scan_run(table.root(), count));
    let loaded: std::collections::HashMap<u64, _> = table.pages()?.into_iter().collect();
    let mut out = Vec::new();
    let mut next = cursor;
    for (page, after) in visit {
        let entries = loaded.get(&page).ok_or(CmdError::CorruptValue)?;
        for entry in entries.clone() {
            if scan::position(&entry[0]) >= cursor {
                out.push(entry.iter().map(|e| e.to_vec()).collect());
            }
        }
        next = after;
        if out.len() >= count || next == 0 {
            break;
        }
    }
    Ok((out, next))
}

thread_local! {
    static RANDOM: std::cell::Cell<u64> = std::cell::Cell::new(
        std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::thread::current().id()) | 1,
    );
}

/// The thread's next random word (xorshift64*: sampling needs no more).
pub fn next_random() -> u64 {
    RANDOM.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A number below `n`.
pub fn random_below(n: usize) -> usize {
    (next_random() % n.max(1) as u64) as usize
}

/// `count` distinct indexes below `len`, ascending (selection sampling).
pub fn distinct_indexes(count: usize, len: usize) -> Vec<usize> {
    let mut picked = Vec::with_capacity(count);
    for i in 0..len {
        if random_below(len - i) < count - picked.len() {
            picked.push(i);
        }
    }
    picked
}

/// Entries (copied) to draw `want` random ones from: every entry of a
/// packed value; of a paged one, those of a random run of pages holding
/// at least `want` of them (or all). Each entry of a run is as likely as
/// any other; a page's chance to be in a run does not depend on its load,
/// so an entry of a lightly loaded page is a little likelier to be drawn
/// than Redis would draw it (pages of one level differ in load by
/// chance, split pages hold about half of an unsplit one's).
pub fn sample_pool(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    shape: Shape,
    want: u64,
) -> Result<Copied, CmdError> {
    let copy = |entry: &[std::borrow::Cow<'_, [u8]>]| entry.iter().map(|e| e.to_vec()).collect();
    let mut whole = false;
    loop {
        let pool = read_one(
            ctx,
            key,
            shape,
            |root| match whole {
                true => (0..root.page_count()).collect(),
                false => random_pages(
                    root,
                    want.saturating_mul(2).saturating_add(16),
                    &mut next_random,
                ),
            },
            |packed| {
                let elements = packed.to_vec()?;
                Ok(Some(
                    elements
                        .chunks(shape.arity)
                        .map(|e| e.iter().map(|e| e.to_vec()).collect())
                        .collect(),
                ))
            },
            |table| {
                let entries = loaded_entries(table)?;
                let enough = entries.len() as u64 >= want.min(table.len());
                Ok(enough.then(|| entries.into_iter().map(copy).collect()))
            },
        )?;
        match pool {
            Some(pool) => return Ok(pool),
            None => whole = true,
        }
    }
}
