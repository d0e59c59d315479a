//! Collection values from the commands' side: read a hash, list, set or
//! sorted set into a buffer (WRONGTYPE for another kind), write one back
//! keeping the key's TTL, and delete the key when it becomes empty (a
//! Redis collection never exists empty).

use citadel_cache::{CacheHandle, Changes, ItemRef, PutOptions, ValueKind};
use citadel_collections::paged::{flatten, is_paged, RootHeader};
use citadel_collections::{Corrupt, Packed};

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use super::paged::{keep_spare, spare_buf, update_paged_fresh, PagePlan, Step};
use super::small_form;
use citadel_resp::Reply;

use crate::command::context::Ctx;
use crate::command::error::CmdError;

impl From<Corrupt> for CmdError {
    fn from(_: Corrupt) -> Self {
        CmdError::CorruptValue
    }
}

/// What a write needs to know of the value it replaces.
#[derive(Clone, Copy, Debug, Default)]
pub struct Existing {
    pub expire_at: Option<u64>,
    /// In Redis's big encoding (marked so, or paged): an edit keeps it
    /// there (`small_form`).
    pub big: bool,
}

impl Existing {
    /// What a write keeps of `item` (whose value starts with `first`).
    pub fn of(item: &ItemRef<'_>) -> Existing {
        let mut first = [0u8; 1];
        if let Some(piece) = item.value_range(0, 1).next() {
            piece.copy_to(&mut first[..piece.len()]);
        }
        Existing {
            expire_at: item.expire_at(),
            big: small_form::is_big(&first) || is_paged(&first),
        }
    }
}

/// Copies `item`'s value into `buf` (cleared first) if it is a `kind`
/// collection; None when there is no item; WRONGTYPE for another kind.
/// For use inside an `update` closure (which may run more than once).
/// A paged root is copied as is: commands that may meet one run in
/// `update_paged_fresh` and read with [`load_whole`] (or their own pages).
pub fn load(
    item: Option<&ItemRef<'_>>,
    kind: ValueKind,
    buf: &mut Vec<u8>,
) -> Result<Option<Existing>, CmdError> {
    buf.clear();
    let Some(item) = item else {
        return Ok(None);
    };
    if item.kind() != kind {
        return Err(CmdError::WrongType);
    }
    item.write_value_to(buf);
    Ok(Some(Existing {
        expire_at: item.expire_at(),
        big: small_form::is_big(buf) || is_paged(buf),
    }))
}

/// Reads `key` as a `kind` collection into `buf`, in the packed form
/// (a paged collection is read whole: [`read_whole`]): false when
/// missing.
pub fn read(
    cache: &mut CacheHandle,
    key: &[u8],
    kind: ValueKind,
    buf: &mut Vec<u8>,
) -> Result<bool, CmdError> {
    read_whole(cache, key, kind, buf)
}

/// The packed view of a value `load`/`read` copied (empty when missing).
pub fn view(buf: &[u8], found: bool) -> Result<Packed<'_>, CmdError> {
    if found {
        Ok(Packed::parse(buf)?)
    } else {
        Ok(Packed::empty())
    }
}

/// Runs `f` on the `kind` collection at `key` (empty when missing), for
/// read-only commands; the connection's scratch buffer holds the copy.
pub fn with_value<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    kind: ValueKind,
    f: impl FnOnce(&mut Reply<'_>, Packed<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let mut buf = std::mem::take(&mut ctx.conn.scratch);
    let result = read(&mut ctx.thread.cache, key, kind, &mut buf)
        .and_then(|found| f(&mut ctx.out, view(&buf, found)?));
    buf.clear();
    ctx.conn.scratch = buf;
    result
}

/// Writes key `i` as a `kind` collection with the encoded `value` (an
/// edit of `existing`: in Redis's big encoding if that was, or if the
/// value is past the limits now), or deletes it when `elements` is zero.
pub fn store(
    changes: &mut Changes,
    i: usize,
    kind: ValueKind,
    value: &[u8],
    elements: u64,
    existing: Option<Existing>,
) -> Result<(), CmdError> {
    let was_big = existing.is_some_and(|e| e.big);
    store_marked(changes, i, kind, value, elements, existing, Some(was_big))
}

/// [`store`] of a value already marked (`small_form::mark`): stored as is.
pub fn store_as_is(
    changes: &mut Changes,
    i: usize,
    kind: ValueKind,
    value: &[u8],
    elements: u64,
    existing: Option<Existing>,
) -> Result<(), CmdError> {
    store_marked(changes, i, kind, value, elements, existing, None)
}

/// Stores `value`, marked as `put_collection` does with `was_big`, or
/// as is (None).
fn store_marked(
    changes: &mut Changes,
    i: usize,
    kind: ValueKind,
    value: &[u8],
    elements: u64,
    existing: Option<Existing>,
    was_big: Option<bool>,
) -> Result<(), CmdError> {
    if elements == 0 {
        if existing.is_some() {
            changes.delete(i);
        }
        return Ok(());
    }
    let opts = PutOptions {
        expire_at: existing.and_then(|e| e.expire_at),
        kind,
        ..PutOptions::default()
    };
    match was_big {
        Some(was_big) => put_collection(changes, i, value, opts, was_big),
        None => Ok(changes.put_with(i, &[value], opts)?),
    }
}

/// Writes key `i` as the collection `value` with `opts`, its encoding
/// byte as `small_form::restamp` says (a hash, set or sorted set past
/// Redis's limits now, or big before: `was_big`, is marked big).
pub fn put_collection(
    changes: &mut Changes,
    i: usize,
    value: &[u8],
    opts: PutOptions,
    was_big: bool,
) -> Result<(), CmdError> {
    match small_form::restamp(opts.kind, value, was_big)? {
        None => changes.put_with(i, &[value], opts)?,
        Some(first) => changes.put_with(i, &[&[first][..], &value[1..]], opts)?,
    }
    Ok(())
}

/// Plans every page of a paged root (the whole collection).
pub fn plan_whole(user: usize, root: &[u8], plan: &mut PagePlan) -> Result<(), CmdError> {
    let (header, _) = RootHeader::parse(root)?;
    plan.need_all(user, header.pages);
    Ok(())
}

/// Paged collections read whole since the start ([`load_whole`]: O(N)
/// reads, which INFO stats shows as `collection_whole_reads`).
pub static WHOLE_READS: AtomicU64 = AtomicU64::new(0);

/// Copies user key `i`'s `kind` collection into `buf` in the packed form
/// (flattening a paged root from its planned pages, see [`plan_whole`]);
/// None when missing, WRONGTYPE for another kind.
pub fn load_whole(
    items: &[Option<ItemRef<'_>>],
    plan: &PagePlan,
    i: usize,
    kind: ValueKind,
    buf: &mut Vec<u8>,
) -> Result<Option<Existing>, CmdError> {
    let existing = load(items[i].as_ref(), kind, buf)?;
    if existing.is_none() || !is_paged(buf) {
        return Ok(existing);
    }
    WHOLE_READS.fetch_add(1, Ordering::Relaxed);
    let pages = page_copies(items, plan, i);
    if kind == ValueKind::ZSet {
        // A sorted set's elements are its tree's, in tree order.
        *buf = citadel_collections::zset::paged::flatten(buf, &pages)?;
    } else {
        // A missing page holds nothing (a hash or set's empty bucket).
        let parsed: Vec<Packed<'_>> = (pages.iter())
            .filter_map(|(_, page)| page.as_deref())
            .map(Packed::parse)
            .collect::<Result<_, _>>()?;
        *buf = match kind {
            // A list's root holds its end elements inline.
            ValueKind::List => citadel_collections::list::paged::flatten(buf, parsed)?,
            _ => flatten(parsed)?,
        };
    }
    Ok(existing)
}

/// The stored pages of user key `user` that `plan` planned, copied (None:
/// a page not stored) into the thread's spare buffers, which they go back
/// to when dropped.
pub fn page_copies(items: &[Option<ItemRef<'_>>], plan: &PagePlan, user: usize) -> PageCopies {
    let mut pages = PAGE_LISTS
        .with(|l| l.borrow_mut().pop())
        .unwrap_or_default();
    pages.extend(plan.pages_of(user).map(|(page, idx)| {
        let bytes = items[idx].as_ref().map(|item| {
            let mut value = spare_buf();
            item.write_value_to(&mut value);
            value
        });
        (page, bytes)
    }));
    PageCopies(pages)
}

/// A page copied: (page number, bytes; None: not stored).
type PageCopy = (u64, Option<Vec<u8>>);

/// Copied pages.
pub struct PageCopies(Vec<PageCopy>);

impl std::ops::Deref for PageCopies {
    type Target = [PageCopy];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for PageCopies {
    fn drop(&mut self) {
        for (_, bytes) in self.0.drain(..) {
            if let Some(bytes) = bytes {
                keep_spare(bytes);
            }
        }
        if self.0.capacity() <= MAX_PAGE_LIST {
            let pages = std::mem::take(&mut self.0);
            PAGE_LISTS.with(|l| {
                let mut lists = l.borrow_mut();
                if lists.len() < SPARE_PAGE_LISTS {
                    lists.push(pages);
                }
            });
        }
    }
}

/// Lists of page copies kept per thread, and the longest kept.
const SPARE_PAGE_LISTS: usize = 2;
const MAX_PAGE_LIST: usize = 64;

thread_local! {
    static PAGE_LISTS: RefCell<Vec<Vec<PageCopy>>> = const { RefCell::new(Vec::new()) };
}

/// Reads `key` whole as a `kind` collection into `buf` (packed form):
/// false when missing. A packed value costs one lookup; a paged root is
/// read with all its pages in one atomic update.
pub fn read_whole(
    cache: &mut CacheHandle,
    key: &[u8],
    kind: ValueKind,
    buf: &mut Vec<u8>,
) -> Result<bool, CmdError> {
    let found = cache.get(key, |item| {
        if item.is_root() {
            return Ok(None);
        }
        load(Some(item), kind, buf).map(|e| Some(e.is_some()))
    });
    match found {
        None => {
            buf.clear();
            Ok(false)
        }
        Some(Ok(Some(found))) => Ok(found),
        Some(Err(e)) => Err(e),
        Some(Ok(None)) => update_paged_fresh(cache, &[key], plan_whole, |items, _, plan| {
            let found = load_whole(items, plan, 0, kind, buf)?.is_some();
            Ok(Step::Done(found))
        }),
    }
}
