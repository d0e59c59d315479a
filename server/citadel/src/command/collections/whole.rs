//! A collection written whole, in either stored form: the path of the
//! commands Redis documents as O(N) and of the generic ones (COPY,
//! RENAME, RESTORE, SORT ... STORE). (Reading whole is `value::read_whole`
//! and `value::load_whole`: a paged root's pages flattened into the packed
//! form, so every command written for packed values works on paged ones.)
//! Writing stores a packed value as is when small, else rebuilt as a new
//! root and pages (`Built`) in the same update (`Step::Fresh` declares
//! the pages first).

use std::ops::Range;

use citadel_cache::{CacheHandle, Changes, ItemRef, PutOptions, ValueKind};
use citadel_collections::paged::{Built, RootHeader, ROOT_HEADER_LEN};
use citadel_collections::{list, zset, Packed};

use super::paged::{keep_spare, spare_buf, update_paged_fresh, PagePlan, Step};
use super::shape;
use super::value::{plan_whole, put_collection};
use crate::command::error::CmdError;

/// The pages a packed `kind` value is stored in (None: it stays packed).
pub fn paged_form(kind: ValueKind, packed: &[u8]) -> Result<Option<Range<u64>>, CmdError> {
    Ok(match kind {
        ValueKind::List => {
            let limit = crate::collection_limits::list();
            let view = Packed::parse(packed)?;
            (!limit.fits(view.len(), packed.len()) && !view.is_empty())
                .then(|| list::paged::build_range(view.len(), view.body_len(), limit))
        }
        ValueKind::Hash => shape::HASH.paged_range(packed)?,
        ValueKind::Set => shape::SET.paged_range(packed)?,
        ValueKind::ZSet => shape::zset_paged_range(packed)?,
        // (A stream is always a root: it is never built from a packed form.)
        ValueKind::String | ValueKind::Page | ValueKind::Stream => None,
    })
}

/// The packed `kind` value as a root and pages under `generation` (the
/// pages `paged_form` named).
pub fn build(kind: ValueKind, packed: &[u8], generation: u64) -> Result<Built, CmdError> {
    match kind {
        ValueKind::List => {
            let elements = Packed::parse(packed)?.to_vec()?;
            Ok(list::paged::build(
                &elements,
                crate::collection_limits::list(),
                generation,
            ))
        }
        ValueKind::Hash => Ok((shape::HASH.build)(Packed::parse(packed)?, generation)?),
        ValueKind::Set => Ok((shape::SET.build)(Packed::parse(packed)?, generation)?),
        ValueKind::ZSet => Ok(zset::paged::build(Packed::parse(packed)?, generation)?),
        // See `paged_form`: never asked for another kind.
        ValueKind::String | ValueKind::Page | ValueKind::Stream => Err(CmdError::CorruptValue),
    }
}

/// Stores user key `i` as the `kind` value `packed` (a collection in the
/// packed form, or a string), with `expire_at`: packed when small, else
/// as a new root and pages; an empty collection deletes the key
/// (`existed`: whether it holds something now). Returns the fresh pages
/// it needs first (then nothing was written: return `Step::Fresh`).
pub fn store_whole(
    changes: &mut Changes,
    plan: &PagePlan,
    i: usize,
    kind: ValueKind,
    packed: &[u8],
    existed: bool,
    expire_at: Option<u64>,
) -> Result<Option<Range<u64>>, CmdError> {
    store_whole_in(changes, Some(plan), i, kind, packed, existed, expire_at)
}

/// [`store_whole`] in an update with a plan or none (`None`: no fresh
/// pages granted, so a value past the paging limits only asks for them).
pub fn store_whole_in(
    changes: &mut Changes,
    plan: Option<&PagePlan>,
    i: usize,
    kind: ValueKind,
    packed: &[u8],
    existed: bool,
    expire_at: Option<u64>,
) -> Result<Option<Range<u64>>, CmdError> {
    if kind != ValueKind::String && Packed::parse(packed)?.is_empty() {
        if existed {
            changes.delete(i);
        }
        return Ok(None);
    }
    let Some(pages) = paged_form(kind, packed)? else {
        put(changes, i, kind, packed, expire_at)?;
        return Ok(None);
    };
    match plan.map(|plan| (plan, plan.fresh(i))) {
        Some((plan, Some((generation, granted)))) if granted == pages => {
            let built = build(kind, packed, generation)?;
            write_built(changes, plan, i, kind, &built, expire_at)?;
            Ok(None)
        }
        _ => Ok(Some(pages)),
    }
}

/// [`store_whole`]'s answer as the step of an update.
pub fn stored<R>(i: usize, wanted: Option<Range<u64>>, done: R) -> Step<R> {
    match wanted {
        Some(pages) => Step::Fresh(vec![(i, pages)]),
        None => Step::Done(done),
    }
}

/// Replaces `key` (whatever it holds, its TTL too) by the `kind` value
/// `packed` (SORT ... STORE).
pub fn replace_whole(
    cache: &mut CacheHandle,
    key: &[u8],
    kind: ValueKind,
    packed: &[u8],
) -> Result<(), CmdError> {
    let no_pages = |_: usize, _: &[u8], _: &mut PagePlan| Ok(());
    update_paged_fresh(cache, &[key], no_pages, |items, changes, plan| {
        let existed = items[0].is_some();
        let wanted = store_whole(changes, plan, 0, kind, packed, existed, None)?;
        Ok(stored(0, wanted, ()))
    })
}

/// Copies user key 0's value to user key 1 (with `expire_at`) in an
/// update planned with [`plan_source`]: an item as it is; a paged root's
/// pages byte for byte under a fresh generation of key 1 (a root's pages
/// are named after its key and generation; nothing in a page or root
/// names either), then the root with that generation. Nothing is decoded
/// or rebuilt, and one page is held at a time. Returns None when done,
/// else the fresh pages key 1 needs.
pub fn copy_value(
    changes: &mut Changes,
    items: &[Option<ItemRef<'_>>],
    plan: &PagePlan,
    expire_at: Option<u64>,
) -> Result<Option<Range<u64>>, CmdError> {
    let Some(item) = &items[0] else {
        return Ok(None);
    };
    let Some(root) = plan.root(0) else {
        crate::command::value::put_value(changes, 1, item, None, expire_at)?;
        return Ok(None);
    };
    let (header, _) = RootHeader::parse(root)?;
    let generation = match plan.fresh(1) {
        Some((generation, granted)) if granted == header.pages => generation,
        _ => return Ok(Some(header.pages)),
    };
    let mut bytes = spare_buf();
    for (page, at) in plan.pages_of(0) {
        // (A missing page holds nothing: a hash or set's empty bucket.)
        if let Some(page_item) = &items[at] {
            bytes.clear();
            page_item.write_value_to(&mut bytes);
            let to = plan.fresh_item(1, page).ok_or(CmdError::CorruptValue)?;
            put_page(changes, to, &bytes)?;
        }
    }
    bytes.clear();
    RootHeader {
        generation,
        ..header
    }
    .write(&mut bytes);
    bytes.extend_from_slice(&root[ROOT_HEADER_LEN..]);
    let result = put(changes, 1, item.kind(), &bytes, expire_at);
    keep_spare(bytes);
    result.map(|()| None)
}

/// Plans the whole of user key 0 (the source of a copy), no other key.
pub fn plan_source(user: usize, root: &[u8], plan: &mut PagePlan) -> Result<(), CmdError> {
    match user {
        0 => plan_whole(user, root, plan),
        _ => Ok(()),
    }
}

/// Bytes `key` takes in the cache: its item, plus its pages when it is a
/// paged root (each looked up on its own: an estimate, as Redis's).
pub fn stored_bytes(cache: &mut CacheHandle, key: &[u8]) -> Option<u64> {
    let (len, stamp) = cache.peek(key, |item| {
        let stamp = item.is_root().then(|| {
            let mut value = Vec::new();
            item.write_value_to(&mut value);
            citadel_cache::owned::owner_stamp(&value)
        });
        (item.stored_len() as u64, stamp.flatten())
    })?;
    let Some((generation, pages)) = stamp else {
        return Some(len);
    };
    let mut page_key = Vec::new();
    let mut total = len;
    for page in pages {
        citadel_cache::owned::page_key(key, generation, page, &mut page_key);
        total += cache
            .peek(&page_key, |item| item.stored_len() as u64)
            .unwrap_or(0);
    }
    Some(total)
}

fn put(
    changes: &mut Changes,
    i: usize,
    kind: ValueKind,
    value: &[u8],
    expire_at: Option<u64>,
) -> Result<(), CmdError> {
    let opts = PutOptions {
        expire_at,
        kind,
        ..PutOptions::default()
    };
    // A value written whole has no past: its content decides whether it
    // is in Redis's big encoding (an edit marks it before: `small_form`).
    put_collection(changes, i, value, opts, false)
}

/// Writes a page item (no TTL: a page dies with its root).
pub fn put_page(changes: &mut Changes, at: usize, page: &[u8]) -> Result<(), CmdError> {
    put(changes, at, ValueKind::Page, page, None)
}

/// Writes `built` as user key `i` and its fresh pages.
pub fn write_built(
    changes: &mut Changes,
    plan: &PagePlan,
    i: usize,
    kind: ValueKind,
    built: &Built,
    expire_at: Option<u64>,
) -> Result<(), CmdError> {
    for (page, bytes) in &built.pages {
        let at = plan.fresh_item(i, *page).ok_or(CmdError::CorruptValue)?;
        put_page(changes, at, bytes)?;
    }
    put(changes, i, kind, &built.root, expire_at)
}
